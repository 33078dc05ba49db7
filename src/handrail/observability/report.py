"""The workflow report: how a pipeline's runs went, computed from their stored records.

Pure computation over `RunRecord`s (no OpenTelemetry, no printing): `build_report(runs, lookup,
now=...)` returns a `WorkflowReport`, whose `to_dict()` is the JSON of `handrail report --json`.
`parse_since` reads `--since`. What each figure means: docs/report.md.

A step here is one execution of a node: a run's step records with the same (node, visit). A
reviewed step has two records (`needs_review`, then the decision's `completed` or `rejected`),
which count as one step whose duration is their sum (the decision record takes no time).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from handrail.core.records import (
    Attempt,
    ReviewRequest,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from handrail.exceptions import InputError

ReviewLookup = Callable[[str], ReviewRequest | None]
"""A review by id, as the store has it (`RunStore.get_review`), or None."""

STATUSES = ("completed", "needs_review", "failed", "rejected", "running")
FINISHED = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.REJECTED})
RETRY_KINDS = ("transport_retry", "reask", "check_retry", "fallback_model")
ACTIONS = ("approve", "edit", "reject")
NO_ERROR = "(no error recorded)"
"""The error type of a step that fell back or failed without an error of its own."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)([smhdw])", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --- records ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Durations:
    """Durations in seconds: how many, their sum, median and 90th percentile."""

    count: int = 0
    total_s: float = 0.0
    median_s: float | None = None
    """None when there are none."""
    p90_s: float | None = None
    """Interpolated linearly between the closest ranks (numpy's default); None when none."""

    @classmethod
    def of(cls, values: Iterable[float]) -> Durations:
        ordered = sorted(values)
        if not ordered:
            return cls()
        return cls(
            count=len(ordered),
            total_s=sum(ordered),
            median_s=quantile(ordered, 0.5),
            p90_s=quantile(ordered, 0.9),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Retries:
    """Attempts beyond each step's first (`StepRecord.attempts`), in all and by `Attempt.kind`."""

    total: int = 0
    by_kind: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(RETRY_KINDS, 0))
    """Every kind in `RETRY_KINDS`, zero included."""

    @classmethod
    def of(cls, attempts: Iterable[Sequence[Attempt]]) -> Retries:
        """The retries among the attempts of each of a set of steps."""
        by_kind = dict.fromkeys(RETRY_KINDS, 0)
        for step in attempts:
            for attempt in step[1:]:
                by_kind[attempt.kind] = by_kind.get(attempt.kind, 0) + 1
        return cls(total=sum(by_kind.values()), by_kind=by_kind)


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeFigures:
    """One node of one pipeline, over its steps in the runs reported on."""

    pipeline: str
    node: str
    kind: str
    steps: int
    duration: Durations
    """Processing time of its steps (review waits excluded)."""
    exceptions: int
    """Steps that failed, fell back, or recorded an error."""
    reviews: int
    """Steps that went to a person."""
    retries: Retries

    @property
    def exception_rate(self) -> float | None:
        return rate(self.exceptions, self.steps)

    @property
    def review_rate(self) -> float | None:
        return rate(self.reviews, self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "node": self.node,
            "kind": self.kind,
            "steps": self.steps,
            "duration": asdict(self.duration),
            "exceptions": self.exceptions,
            "exception_rate": self.exception_rate,
            "reviews": self.reviews,
            "review_rate": self.review_rate,
            "retries": asdict(self.retries),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ErrorFigures:
    """One error type (`ErrorInfo.type`, the exception class name)."""

    type: str
    steps: int
    """Steps that failed, fell back or recorded an error with this type."""
    step_rate: float | None
    """`steps` over all steps."""
    runs_failed: int
    """Runs that failed with this error (`RunRecord.error`)."""
    nodes: tuple[str, ...]
    """The nodes whose steps had it, in order of first appearance."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewFigures:
    """Who needed a person, how long people took, and what still waits."""

    runs: int = 0
    """Runs with at least one review (decided or pending)."""
    rate: float | None = None
    """`runs` over all runs."""
    decided: int = 0
    decisions: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    """Decisions by action."""
    wait: Durations = field(default_factory=Durations)
    """From the review's `created_at` to the decision's `decided_at`."""
    wait_unknown: int = 0
    """Decisions whose wait cannot be computed (no time recorded)."""
    pending: int = 0
    oldest_pending_s: float | None = None
    """How long the oldest pending review has waited, at `generated_at`."""
    oldest_pending_id: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class QueueFigures:
    """One review queue: how long its reviews waited for a person (human time, which node
    durations leave out)."""

    queue: str
    decided: int = 0
    wait: Durations = field(default_factory=Durations)
    """From each decided review's `created_at` to its decision."""
    pending: int = 0
    pending_age_s: float = 0.0
    """How long the pending reviews have waited so far, in all, at `generated_at`."""
    overdue: int = 0
    """Pending reviews past their deadline at `generated_at` (their escalation is due)."""

    @property
    def human_wait_s(self) -> float:
        """All the time documents spent waiting for a person in this queue: the decided
        reviews' waits and the pending ones' ages."""
        return self.wait.total_s + self.pending_age_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "queue": self.queue,
            "decided": self.decided,
            "wait": asdict(self.wait),
            "pending": self.pending,
            "pending_age_s": self.pending_age_s,
            "overdue": self.overdue,
            "human_wait_s": self.human_wait_s,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class UsageFigures:
    """Tokens and cost per document. An unknown cost is never counted as 0."""

    tokens_total: int = 0
    tokens_mean: float | None = None
    """Per run."""
    cost_total: float | None = None
    """Over the runs whose cost is known; None when no run's is."""
    cost_mean: float | None = None
    """Per run whose cost is known."""
    cost_known: int = 0
    cost_unknown: int = 0
    """Runs whose cost is unknown (a model without a price): left out of the cost figures."""


@dataclass(frozen=True, kw_only=True, slots=True)
class WorkflowReport:
    """The health of a workflow, computed from the runs started in a window."""

    generated_at: datetime
    since: datetime | None = None
    pipeline: str | None = None
    pipelines: tuple[str, ...] = ()
    """The pipelines of the runs reported on, sorted."""
    runs: int = 0
    by_status: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    straight_through: int = 0
    """Completed runs that never needed a review."""
    cycle: Durations = field(default_factory=Durations)
    """Wall time of finished runs, `ended_at - started_at`: review waits included."""
    processing: Durations = field(default_factory=Durations)
    """Processing time of finished runs, `duration_s`: review waits excluded."""
    reviews: ReviewFigures = field(default_factory=ReviewFigures)
    steps: int = 0
    exceptions: int = 0
    retries: Retries = field(default_factory=Retries)
    nodes: tuple[NodeFigures, ...] = ()
    """In order of first appearance, oldest run first."""
    queues: tuple[QueueFigures, ...] = ()
    """Review queues, the one documents waited in longest first."""
    errors: tuple[ErrorFigures, ...] = ()
    """Most frequent first."""
    usage: UsageFigures = field(default_factory=UsageFigures)

    @property
    def finished(self) -> int:
        """Runs completed, failed or rejected."""
        return sum(self.by_status[s.value] for s in FINISHED)

    @property
    def straight_through_rate(self) -> float | None:
        return rate(self.straight_through, self.finished)

    @property
    def exception_rate(self) -> float | None:
        return rate(self.exceptions, self.steps)

    @property
    def bottleneck(self) -> NodeFigures | None:
        """The node whose steps took the most time in all."""
        return max(self.nodes, key=lambda n: n.duration.total_s, default=None)

    @property
    def slowest_median(self) -> NodeFigures | None:
        """The node whose typical step is slowest."""
        return max(self.nodes, key=lambda n: n.duration.median_s or 0.0, default=None)

    @property
    def waiting(self) -> QueueFigures | None:
        """The review queue documents waited in longest (decided waits and pending ages)."""
        return max(self.queues, key=lambda q: q.human_wait_s, default=None)

    @property
    def human_bound(self) -> bool:
        """Whether documents waited longer for people (in the longest queue) than for the
        slowest node in all: then the bottleneck is the review queue."""
        top, waiting = self.bottleneck, self.waiting
        if waiting is None or waiting.human_wait_s <= 0:
            return False
        return top is None or waiting.human_wait_s > top.duration.total_s

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `handrail report --json` (keys documented in docs/report.md)."""
        top, typical = self.bottleneck, self.slowest_median
        return {
            "generated_at": self.generated_at.isoformat(),
            "filters": {
                "since": self.since.isoformat() if self.since is not None else None,
                "pipeline": self.pipeline,
            },
            "pipelines": list(self.pipelines),
            "runs": {
                "total": self.runs,
                "by_status": dict(self.by_status),
                "finished": self.finished,
            },
            "straight_through": {"runs": self.straight_through, "rate": self.straight_through_rate},
            "cycle_time": asdict(self.cycle),
            "processing_time": asdict(self.processing),
            "reviews": asdict(self.reviews),
            "steps": {
                "total": self.steps,
                "exceptions": self.exceptions,
                "exception_rate": self.exception_rate,
            },
            "retries": asdict(self.retries),
            "bottleneck": {
                "by_total": _node_ref(top, "total_s"),
                "by_median": _node_ref(typical, "median_s"),
                "by_human_wait": (
                    {"queue": self.waiting.queue, "human_wait_s": self.waiting.human_wait_s}
                    if self.waiting is not None
                    else None
                ),
                "is": "review" if self.human_bound else "node" if top is not None else None,
            },
            "nodes": [node.to_dict() for node in self.nodes],
            "review_queues": [queue.to_dict() for queue in self.queues],
            "errors": [{**asdict(error), "nodes": list(error.nodes)} for error in self.errors],
            "usage": asdict(self.usage),
        }


def _node_ref(node: NodeFigures | None, figure: str) -> dict[str, Any] | None:
    if node is None:
        return None
    return {"pipeline": node.pipeline, "node": node.node, figure: getattr(node.duration, figure)}


# --- computing it -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _Step:
    """One execution of a node: its records merged."""

    node: str
    kind: str
    duration_s: float
    attempts: tuple[Attempt, ...]
    error_type: str | None
    """None unless the step is an exception."""
    reviewed: bool


def build_report(
    runs: Iterable[RunRecord],
    lookup: ReviewLookup,
    *,
    now: datetime,
    since: datetime | None = None,
    pipeline: str | None = None,
) -> WorkflowReport:
    """The report on `runs` started at or after `since` (a run without a start time is then left
    out) of `pipeline` (else all). `lookup` gives a review's request (its `created_at`); `now`
    dates the report and the age of pending reviews."""
    chosen = sorted(
        (
            run
            for run in runs
            if (pipeline is None or run.pipeline == pipeline)
            and (since is None or (run.started_at is not None and run.started_at >= since))
        ),
        key=lambda run: (run.started_at or _EPOCH, run.run_id),
    )
    by_status = dict.fromkeys(STATUSES, 0) | Counter(run.status.value for run in chosen)
    finished = [run for run in chosen if run.status in FINISHED]
    steps = {run.run_id: _steps(run) for run in chosen}
    every_step = [step for run_steps in steps.values() for step in run_steps]
    return WorkflowReport(
        generated_at=now,
        since=since,
        pipeline=pipeline,
        pipelines=tuple(sorted({run.pipeline for run in chosen})),
        runs=len(chosen),
        by_status=by_status,
        straight_through=sum(
            run.status is RunStatus.COMPLETED and not _reviewed(run, steps[run.run_id])
            for run in chosen
        ),
        cycle=Durations.of(
            (run.ended_at - run.started_at).total_seconds()
            for run in finished
            if run.started_at is not None and run.ended_at is not None
        ),
        processing=Durations.of(run.duration_s for run in finished),
        reviews=_reviews(chosen, steps, lookup, now),
        steps=len(every_step),
        exceptions=sum(step.error_type is not None for step in every_step),
        retries=Retries.of(step.attempts for step in every_step),
        nodes=_nodes(chosen, steps),
        queues=_queues(chosen, lookup, now),
        errors=_errors(chosen, steps, len(every_step)),
        usage=_usage(chosen),
    )


def _steps(run: RunRecord) -> list[_Step]:
    groups: dict[tuple[str, int], list[StepRecord]] = {}
    for record in run.steps:
        groups.setdefault((record.node, record.visit), []).append(record)
    merged = []
    for (node, _), records in groups.items():
        failed = any(r.status in (StepStatus.FAILED, StepStatus.FALLBACK) for r in records)
        errors = [r.error.type for r in records if r.error is not None]
        merged.append(
            _Step(
                node=node,
                kind=records[0].kind,
                duration_s=sum(r.duration_s for r in records),
                attempts=tuple(a for r in records for a in r.attempts),
                error_type=errors[-1] if errors else NO_ERROR if failed else None,
                reviewed=any(
                    r.status is StepStatus.NEEDS_REVIEW or r.review_id is not None for r in records
                ),
            )
        )
    return merged


def _reviewed(run: RunRecord, steps: Sequence[_Step]) -> bool:
    return bool(run.decisions or run.reviews) or any(step.reviewed for step in steps)


def _reviews(
    runs: Sequence[RunRecord],
    steps: Mapping[str, Sequence[_Step]],
    lookup: ReviewLookup,
    now: datetime,
) -> ReviewFigures:
    actions = dict.fromkeys(ACTIONS, 0)
    waits: list[float] = []
    unknown = 0
    pending: list[tuple[datetime, str]] = []
    for run in runs:
        for review_id, decision in run.decisions:
            actions[decision.action] = actions.get(decision.action, 0) + 1
            created = _created_at(run, review_id, lookup)
            if created is None or decision.decided_at is None:
                unknown += 1
            else:
                waits.append((decision.decided_at - created).total_seconds())
        for review in run.reviews:  # the runner drops a review from them once it is decided
            stored = lookup(review.review_id) or review
            pending.append((stored.created_at, review.review_id))
    reviewed = sum(_reviewed(run, steps[run.run_id]) for run in runs)
    oldest = min(pending, default=None)
    return ReviewFigures(
        runs=reviewed,
        rate=rate(reviewed, len(runs)),
        decided=sum(actions.values()),
        decisions=actions,
        wait=Durations.of(waits),
        wait_unknown=unknown,
        pending=len(pending),
        oldest_pending_s=(now - oldest[0]).total_seconds() if oldest is not None else None,
        oldest_pending_id=oldest[1] if oldest is not None else None,
    )


def _queues(
    runs: Sequence[RunRecord], lookup: ReviewLookup, now: datetime
) -> tuple[QueueFigures, ...]:
    """Per review queue (the queue a review is in now, as the store has it): decided waits,
    pending reviews, their ages and how many are past their deadline."""
    waits: dict[str, list[float]] = {}
    pending: dict[str, list[float]] = {}
    overdue: Counter[str] = Counter()
    decided: Counter[str] = Counter()
    for run in runs:
        for review_id, decision in run.decisions:
            request = lookup(review_id)
            created = _created_at(run, review_id, lookup)
            queue = request.queue if request is not None else "default"
            spent = waits.setdefault(queue, [])
            decided[queue] += 1
            if created is not None and decision.decided_at is not None:
                spent.append(max((decision.decided_at - created).total_seconds(), 0.0))
        for review in run.reviews:
            stored = lookup(review.review_id) or review
            pending.setdefault(stored.queue, []).append(
                max((now - stored.created_at).total_seconds(), 0.0)
            )
            if stored.deadline is not None and stored.deadline <= now:
                overdue[stored.queue] += 1
    queues = [
        QueueFigures(
            queue=name,
            decided=decided[name],
            wait=Durations.of(waits.get(name, [])),
            pending=len(pending.get(name, [])),
            pending_age_s=sum(pending.get(name, [])),
            overdue=overdue[name],
        )
        for name in dict.fromkeys([*waits, *pending])
    ]
    return tuple(sorted(queues, key=lambda q: (-q.human_wait_s, q.queue)))


def _created_at(run: RunRecord, review_id: str, lookup: ReviewLookup) -> datetime | None:
    """When a review was raised: the store's request, else its step (the runner dates a review
    at the end of the step that raised it)."""
    request = lookup(review_id)
    if request is not None:
        return request.created_at
    for step in run.steps:
        if step.review_id == review_id and step.status is StepStatus.NEEDS_REVIEW:
            if step.started_at is None:
                return None
            return step.started_at + timedelta(seconds=step.duration_s)
    return None


def _nodes(
    runs: Sequence[RunRecord], steps: Mapping[str, Sequence[_Step]]
) -> tuple[NodeFigures, ...]:
    grouped: dict[tuple[str, str], list[_Step]] = {}
    for run in runs:
        for step in steps[run.run_id]:
            grouped.setdefault((run.pipeline, step.node), []).append(step)
    return tuple(
        NodeFigures(
            pipeline=pipeline,
            node=node,
            kind=node_steps[0].kind,
            steps=len(node_steps),
            duration=Durations.of(step.duration_s for step in node_steps),
            exceptions=sum(step.error_type is not None for step in node_steps),
            reviews=sum(step.reviewed for step in node_steps),
            retries=Retries.of(step.attempts for step in node_steps),
        )
        for (pipeline, node), node_steps in grouped.items()
    )


def _errors(
    runs: Sequence[RunRecord], steps: Mapping[str, Sequence[_Step]], total: int
) -> tuple[ErrorFigures, ...]:
    counts: Counter[str] = Counter()
    nodes: dict[str, dict[str, None]] = {}
    for run in runs:
        for step in steps[run.run_id]:
            if step.error_type is not None:
                counts[step.error_type] += 1
                nodes.setdefault(step.error_type, {})[step.node] = None
    failed = Counter(
        run.error.type if run.error is not None else NO_ERROR
        for run in runs
        if run.status is RunStatus.FAILED
    )
    types = sorted(set(counts) | set(failed), key=lambda t: (-counts[t] - failed[t], t))
    return tuple(
        ErrorFigures(
            type=kind,
            steps=counts[kind],
            step_rate=rate(counts[kind], total),
            runs_failed=failed[kind],
            nodes=tuple(nodes.get(kind, {})),
        )
        for kind in types
    )


def _usage(runs: Sequence[RunRecord]) -> UsageFigures:
    tokens = sum(run.usage.total_tokens for run in runs)
    costs = [run.usage.cost for run in runs if run.usage.cost is not None]
    return UsageFigures(
        tokens_total=tokens,
        tokens_mean=tokens / len(runs) if runs else None,
        cost_total=sum(costs) if costs else None,
        cost_mean=sum(costs) / len(costs) if costs else None,
        cost_known=len(costs),
        cost_unknown=len(runs) - len(costs),
    )


# --- helpers ------------------------------------------------------------------------------------


def quantile(ordered: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of sorted values, interpolated linearly between the closest ranks
    (numpy's default; the median for q=0.5)."""
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def rate(part: int, whole: int) -> float | None:
    """`part / whole`, or None when `whole` is 0 (no rate, rather than a made-up 0)."""
    return part / whole if whole else None


def parse_since(text: str, *, now: datetime) -> datetime:
    """`--since`: an ISO date (`2025-03-01`, midnight UTC), an ISO date and time
    (`2025-03-01T09:30`, UTC unless it names an offset) or a time back from `now`: a number and
    a unit, `s`, `m` (minutes), `h`, `d` or `w` (`30m`, `24h`, `7d`)."""
    value = text.strip()
    relative = _RELATIVE.fullmatch(value)
    if relative is not None:
        amount, unit = relative.groups()
        return now - timedelta(**{_UNITS[unit.lower()]: float(amount)})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"--since takes an ISO date (2025-03-01), an ISO date and time (2025-03-01T09:30, "
            f"UTC unless it says otherwise) or a time back from now (30m, 24h, 7d); got `{text}`"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


__all__ = [
    "Durations",
    "ErrorFigures",
    "NodeFigures",
    "Retries",
    "ReviewFigures",
    "ReviewLookup",
    "UsageFigures",
    "WorkflowReport",
    "build_report",
    "parse_since",
    "quantile",
    "rate",
]
