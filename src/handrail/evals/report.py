"""The eval report: the scorers applied to a suite's results, as one JSON-able dict.

What is scored for a node is the model's own answer: the output of the node's last execution in
the run (before any review, since eval runs have no reviewer), with that execution's confidence.
A run that never reached the node (it failed earlier) counts as no answer: wrong for a label,
every field empty for an extraction.

Keys (docs/evals.md lists them): `suite`, `pipeline`, `model`, `generated_at`, `cases`, `runs`,
`nodes` (per scored node: `type`, `scores`, `calibration`, `review_curve`, `threshold`,
`target_accuracy`, and for extraction `match` and `field_thresholds`), `routing`, `usage`,
`cases_detail`, `actions` (whether the pipeline's actions were called; each case's calls not
made are in its `actions_not_called`), `errors` (cases the eval could not finish, each also
with `eval_error` in `cases_detail`), `timing`, and `comparison` (added by `compare`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from handrail.core.records import RunRecord, RunStatus, StepRecord, StepStatus
from handrail.evals.calibration import (
    lowest_threshold,
    summarise_confidence,
)
from handrail.evals.run import CaseResult, EvalRun
from handrail.evals.scorers import (
    MatchMode,
    field_outcomes,
    score_labels,
    score_routes,
    summarise,
    tally_fields,
)
from handrail.evals.suite import Suite

if TYPE_CHECKING:  # judge.py imports `model_step` from here
    from handrail.evals.judge import JudgeScores

_RIGHT = frozenset({"tp", "tn"})
"""Field outcomes that count as right (see `scorers.score_fields`)."""

ROUTES: Mapping[RunStatus, str] = {
    RunStatus.COMPLETED: "accept",
    RunStatus.NEEDS_REVIEW: "review",
    RunStatus.REJECTED: "reject",
    RunStatus.FAILED: "fail",
    RunStatus.RUNNING: "fail",
}
"""A run's final status as an eval route."""


def route_of(result: CaseResult) -> str:
    """Where the case's run went first (before the eval's reviewer settled anything)."""
    return ROUTES[result.status]


def scored_route(expected: str | None, actual: str) -> str:
    """The route compared with `expected`: an eval has no reviewer, so a case that should be
    rejected (a person rejected it) is right when it went to a person."""
    return "reject" if expected == "reject" and actual == "review" else actual


def build_report(
    suite: Suite,
    run: EvalRun,
    *,
    model: str,
    target_accuracy: float | None = None,
    target_review_rate: float | None = None,
    now: datetime | None = None,
    judged: Mapping[str, JudgeScores] | None = None,
) -> dict[str, Any]:
    """Score `run` (the suite's cases, run) into the report dict. `judged`: the LLM judge's
    scores per text node (`handrail.evals.judge.judge_run`), run beforehand: this is sync."""
    scoring_started = time.perf_counter()
    target = target_accuracy if target_accuracy is not None else suite.target_accuracy
    results = run.results
    by_status: dict[str, int] = {}
    for result in results:
        status = result.status.value
        by_status[status] = by_status.get(status, 0) + 1
    details: list[dict[str, Any]] = [_case_detail(r) for r in results]
    nodes: dict[str, Any] = {}
    for node, scoring in suite.scoring.items():
        kind = scoring.type
        if kind == "classification":
            nodes[node] = _classification(
                node, scoring, results, details, target, target_review_rate
            )
        elif kind == "extraction":
            nodes[node] = _extraction(node, scoring, results, details, target, target_review_rate)
        else:
            nodes[node] = _text(node, scoring, results, details, (judged or {}).get(node))
    routed = [
        (r.case.route, scored_route(r.case.route, route_of(r)))
        for r in results
        if r.case.route is not None
    ]
    routing = (
        score_routes([e for e, _ in routed], [a for _, a in routed]).to_dict() if routed else None
    )
    report: dict[str, Any] = {
        "suite": suite.name,
        "pipeline": results[0].record.pipeline if results else None,
        "model": model,
        "generated_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        "cases": len(results),
        "runs": {"by_status": by_status},
        "nodes": nodes,
        "routing": routing,
        "usage": {
            "tokens": summarise([r.record.usage.total_tokens for r in results]).to_dict(),
            "cost": summarise([r.record.usage.cost for r in results]).to_dict(),
            "latency_s": summarise([r.record.duration_s for r in results]).to_dict(),
        },
        "cases_detail": details,
        "actions": _actions(run),
        "errors": [{"id": r.case.id, "error": r.error} for r in results if r.error is not None],
        "comparison": None,
    }
    report["timing"] = {
        "run_s": round(run.wall_s, 6),
        "scoring_s": round(time.perf_counter() - scoring_started, 6),
    }
    return report


# --- per node ----------------------------------------------------------------------------------


def model_step(record: RunRecord, node: str) -> StepRecord | None:
    """The node's last execution that produced an answer of its own: superseded executions and
    the records of review decisions (the eval reviewer's edits) do not count."""
    for step in reversed(record.steps):
        if (
            step.node == node
            and step.status is not StepStatus.SUPERSEDED
            and (step.review_id is None or step.status is StepStatus.NEEDS_REVIEW)
            and (step.output is not None or step.status is StepStatus.FAILED)
        ):
            return step
    return None


def _classification(
    node: str,
    scoring: Any,
    results: Sequence[CaseResult],
    details: list[dict[str, Any]],
    target: float | None,
    rate: float | None = None,
) -> dict[str, Any]:
    expected: list[str] = []
    predicted: list[str | None] = []
    confidences: list[float] = []
    correct: list[bool] = []
    for result, detail in zip(results, details, strict=True):
        if node not in result.case.expected:
            continue
        want = str(result.case.expected[node])
        step = model_step(result.record, node)
        got = _label(step.output) if step is not None else None
        expected.append(want)
        predicted.append(got)
        right = got == want
        confidence = _confidence(step)
        if confidence is not None:
            confidences.append(confidence)
            correct.append(right)
        detail["nodes"][node] = {
            "correct": right,
            "expected": want,
            "got": got,
            "confidence": confidence,
        }
    labels = getattr(scoring, "labels", None)
    section: dict[str, Any] = {
        "type": "classification",
        "scores": score_labels(expected, predicted, labels=labels or None).to_dict(),
    }
    section.update(_confidence_section(confidences, correct, target, rate))
    return section


def _extraction(
    node: str,
    scoring: Any,
    results: Sequence[CaseResult],
    details: list[dict[str, Any]],
    target: float | None,
    rate: float | None = None,
) -> dict[str, Any]:
    match: MatchMode = getattr(scoring, "match", "normalised")
    threshold = getattr(scoring, "fuzzy_threshold", 0.9)
    wanted_fields = getattr(scoring, "fields", None) or None
    scored: list[tuple[dict[str, Any] | None, dict[str, Any] | None, StepRecord | None, Any]] = []
    for result, detail in zip(results, details, strict=True):
        if node in result.case.expected:
            step = model_step(result.record, node)
            got = _fields(step.output) if step is not None else None
            value = result.case.expected[node]
            scored.append((None if value is None else dict(value), got, step, detail))
    names = list(wanted_fields or dict.fromkeys(k for want, *_ in scored for k in want or {}))
    pooled_conf: list[float] = []
    pooled_right: list[bool] = []
    per_field: dict[str, tuple[list[float], list[bool]]] = {name: ([], []) for name in names}
    documents = []
    for named, got, step, detail in scored:
        # a case scores the fields it names (null: should be empty); the whole node null:
        # every field should be empty
        want: dict[str, Any] = dict.fromkeys(names) if named is None else named
        outcomes = field_outcomes(want, got, names, threshold=threshold)
        if not outcomes:  # it names none of the scored fields: nothing to score here
            continue
        documents.append(outcomes)
        right_fields = 0
        by_field = step.field_confidence if step is not None else {}
        overall = _confidence(step)
        for name in outcomes:
            right = outcomes[name][match] in _RIGHT
            right_fields += right
            field = by_field.get(name)
            confidence = field.value if field is not None else overall
            if confidence is not None:
                pooled_conf.append(confidence)
                pooled_right.append(right)
                conf, ok = per_field[name]
                conf.append(confidence)
                ok.append(right)
        detail["nodes"][node] = {
            "correct": right_fields == len(outcomes),
            "fields_right": right_fields,
            "fields_scored": len(outcomes),
            "expected": want,
            "got": got,
            "confidence": _confidence(step),
        }
    section: dict[str, Any] = {
        "type": "extraction",
        "match": match,
        "scores": tally_fields(documents, names, threshold=threshold).to_dict(),
    }
    section.update(_confidence_section(pooled_conf, pooled_right, target, rate))
    section["field_thresholds"] = {
        name: _point(lowest_threshold(conf, ok, target)) if target is not None else None
        for name, (conf, ok) in per_field.items()
        if conf
    }
    return section


def _text(
    node: str,
    scoring: Any,
    results: Sequence[CaseResult],
    details: list[dict[str, Any]],
    judged: JudgeScores | None = None,
) -> dict[str, Any]:
    contains = [s.casefold() for s in getattr(scoring, "contains", None) or ()]
    not_contains = [s.casefold() for s in getattr(scoring, "not_contains", None) or ()]
    max_words = getattr(scoring, "max_words", None)
    checks: dict[str, dict[str, int]] = {}

    def tally(name: str, passed: bool) -> None:
        counts = checks.setdefault(name, {"passed": 0, "failed": 0})
        counts["passed" if passed else "failed"] += 1

    for result, detail in zip(results, details, strict=True):
        step = model_step(result.record, node)
        if step is None or step.output is None:
            continue
        text = step.output if isinstance(step.output, str) else str(step.output)
        folded = text.casefold()
        verdicts = []
        for phrase in contains:
            verdicts.append(phrase in folded)
            tally("contains", verdicts[-1])
        for phrase in not_contains:
            verdicts.append(phrase not in folded)
            tally("not_contains", verdicts[-1])
        if max_words is not None:
            verdicts.append(len(text.split()) <= max_words)
            tally("max_words", verdicts[-1])
        detail["nodes"][node] = {
            "correct": all(verdicts) if verdicts else None,
            "expected": None,
            "got": text,
            "confidence": _confidence(step),
        }
        if judged is not None and result.case.id in judged.verdicts:
            verdict = judged.verdicts[result.case.id]
            detail["nodes"][node]["judge"] = None if verdict is None else verdict.to_dict()
    return {"type": "text", "checks": checks, "judge": judged.to_dict() if judged else None}


CURVE_STEP = 0.01
"""The report keeps the review curve at one point per percent of review rate (`review_curve`'s
`every`); thresholds are always found on the whole data."""


def _confidence_section(
    confidences: list[float],
    correct: list[bool],
    target: float | None,
    rate: float | None = None,
) -> dict[str, Any]:
    summary = summarise_confidence(
        confidences, correct, target_accuracy=target, target_review_rate=rate, every=CURVE_STEP
    )
    budget: dict[str, Any] = {}
    if rate is not None:
        budget = {
            "target_review_rate": rate,
            "threshold_at_review_rate": _point(summary.at_review_rate),
        }
    return budget | {
        "calibration": {"ece": summary.ece, "bins": [b.to_dict() for b in summary.table]},
        "review_curve": [p.to_dict() for p in summary.curve],
        "threshold": _point(summary.at_accuracy),
        "target_accuracy": target,
    }


# --- helpers -----------------------------------------------------------------------------------


def _case_detail(result: CaseResult) -> dict[str, Any]:
    record = result.record
    route = route_of(result)
    expected = result.case.route
    detail: dict[str, Any] = {
        "id": result.case.id,
        "status": result.status.value,
        "route": route,
        "expected_route": expected,
        "route_correct": None if expected is None else scored_route(expected, route) == expected,
        "nodes": {},
        "tokens": record.usage.total_tokens,
        "cost": record.usage.cost,
        "latency_s": record.duration_s,
    }
    if record.error is not None:
        detail["error"] = f"{record.error.type}: {record.error.message}"
    if result.error is not None:
        detail["eval_error"] = result.error
    if result.actions:
        detail["actions_not_called"] = [call.to_dict() for call in result.actions]
    return detail


def _actions(run: EvalRun) -> dict[str, Any]:
    """Whether the eval called the pipeline's actions, and the calls it did not make."""
    by_node: dict[str, int] = {}
    for result in run.results:
        for call in result.actions:
            by_node[call.node] = by_node.get(call.node, 0) + 1
    return {
        "called": run.actions_called,
        "not_called": sum(by_node.values()),
        "not_called_by_node": by_node,
    }


def _point(point: Any) -> dict[str, Any] | None:
    return None if point is None else dict(point.to_dict())


def _confidence(step: StepRecord | None) -> float | None:
    if step is None or step.confidence is None:
        return None
    return step.confidence.value


def _label(output: Any) -> str | None:
    if output is None:
        return None
    return output if isinstance(output, str) else str(getattr(output, "value", output))


def _fields(output: Any) -> dict[str, Any] | None:
    """An extraction's output as a plain dict (pydantic models and dataclasses included)."""
    if output is None:
        return None
    if isinstance(output, BaseModel):
        return output.model_dump(mode="json")
    if is_dataclass(output) and not isinstance(output, type):
        return asdict(output)
    if isinstance(output, Mapping):
        return dict(output)
    return {"value": output}


__all__ = ["ROUTES", "build_report", "model_step", "route_of"]
