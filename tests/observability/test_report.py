"""The workflow report computed from hand-built run records: every figure on known numbers."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from handrail.core.records import (
    Attempt,
    AttemptKind,
    DecisionAction,
    ErrorInfo,
    ReviewDecision,
    ReviewRequest,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    Usage,
)
from handrail.exceptions import InputError
from handrail.observability import report as report_module
from handrail.observability.report import (
    NO_ERROR,
    Durations,
    WorkflowReport,
    build_report,
    parse_since,
)

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def tries(*kinds: AttemptKind) -> tuple[Attempt, ...]:
    return tuple(
        Attempt(number=n, kind=kind, outcome="ok") for n, kind in enumerate(kinds, start=1)
    )


def step(
    node: str,
    *,
    kind: str = "classify",
    visit: int = 1,
    status: StepStatus = StepStatus.COMPLETED,
    duration: float = 1.0,
    attempts: tuple[Attempt, ...] = (),
    error: str | None = None,
    review_id: str | None = None,
    started: datetime = T0,
) -> StepRecord:
    return StepRecord(
        run_id="",
        node=node,
        kind=kind,
        visit=visit,
        status=status,
        duration_s=duration,
        attempts=attempts,
        error=ErrorInfo(type=error, message="boom") if error is not None else None,
        review_id=review_id,
        started_at=started,
    )


def run(
    run_id: str,
    status: RunStatus = RunStatus.COMPLETED,
    *,
    start: datetime | None = T0,
    wall: float = 1.0,
    duration: float = 1.0,
    steps: Sequence[StepRecord] = (),
    reviews: Sequence[ReviewRequest] = (),
    decisions: Sequence[tuple[str, ReviewDecision]] = (),
    error: str | None = None,
    pipeline: str = "intake",
    tokens: int = 0,
    cost: float | None = 0.0,
) -> RunRecord:
    return RunRecord(
        run_id=run_id,
        pipeline=pipeline,
        document_id=f"{run_id}.txt",
        document_hash="",
        status=status,
        steps=tuple(steps),
        reviews=tuple(reviews),
        decisions=tuple(decisions),
        error=ErrorInfo(type=error, message="boom") if error is not None else None,
        started_at=start,
        ended_at=start + timedelta(seconds=wall) if start is not None else None,
        duration_s=duration,
        usage=Usage(input_tokens=tokens, output_tokens=0, cost=cost),
    )


def review(review_id: str, run_id: str, created: datetime) -> ReviewRequest:
    return ReviewRequest(
        review_id=review_id,
        run_id=run_id,
        pipeline="intake",
        node="category",
        visit=1,
        output="refund",
        target="category",
        confidence=None,
        field_confidence={},
        reasons=(),
        document_id=f"{run_id}.txt",
        created_at=created,
    )


def decided(action: DecisionAction, when: datetime | None) -> ReviewDecision:
    return ReviewDecision(action=action, decided_at=when)


def report_of(
    runs: Sequence[RunRecord],
    reviews: Sequence[ReviewRequest] = (),
    *,
    since: datetime | None = None,
    pipeline: str | None = None,
) -> WorkflowReport:
    lookup = {r.review_id: r for r in reviews}
    return build_report(runs, lookup.get, now=NOW, since=since, pipeline=pipeline)


# --- medians and percentiles --------------------------------------------------------------------


def test_median_and_p90_on_known_durations() -> None:
    ten = Durations.of([7, 1, 10, 3, 2, 9, 4, 8, 6, 5])
    assert (ten.count, ten.total_s, ten.median_s, ten.p90_s) == (10, 55, 5.5, pytest.approx(9.1))
    odd = Durations.of([30, 10, 20])
    assert (odd.median_s, odd.p90_s) == (20, pytest.approx(28))
    one = Durations.of([4.0])
    assert (one.median_s, one.p90_s) == (4.0, 4.0)
    assert Durations.of([]) == Durations(count=0, total_s=0.0, median_s=None, p90_s=None)


def test_cycle_time_is_wall_time_and_processing_time_is_duration_of_finished_runs() -> None:
    finished = [
        run(f"r{i}", status, wall=wall, duration=wall / 10)
        for i, (status, wall) in enumerate(
            [
                (RunStatus.COMPLETED, 10),
                (RunStatus.COMPLETED, 50),
                (RunStatus.FAILED, 20),
                (RunStatus.REJECTED, 40),
                (RunStatus.COMPLETED, 30),
            ]
        )
    ]
    waiting = run("waiting", RunStatus.NEEDS_REVIEW, wall=1000, duration=1000)
    running = run("running", RunStatus.RUNNING, wall=2000, duration=2000)
    result = report_of([*finished, waiting, running])
    assert (result.cycle.count, result.cycle.median_s) == (5, 30)
    assert result.cycle.p90_s == pytest.approx(46)
    assert result.cycle.total_s == 150
    assert (result.processing.count, result.processing.median_s) == (5, 3)
    assert result.processing.p90_s == pytest.approx(4.6)


# --- runs, straight-through and reviews ---------------------------------------------------------


def test_straight_through_and_review_rates() -> None:
    runs = [
        run("plain-1"),
        run("plain-2"),
        run(
            "approved",
            steps=[
                step("category", status=StepStatus.NEEDS_REVIEW, review_id="rv-a"),
                step("category", review_id="rv-a", duration=0.0),
            ],
            decisions=[("rv-a", decided("approve", at(5)))],
        ),
        run(
            "waiting",
            RunStatus.NEEDS_REVIEW,
            steps=[step("category", status=StepStatus.NEEDS_REVIEW, review_id="rv-w")],
            reviews=[review("rv-w", "waiting", at(1))],
        ),
        run("failed", RunStatus.FAILED, error="OutputInvalid"),
        run(
            "rejected",
            RunStatus.REJECTED,
            decisions=[("rv-r", decided("reject", at(9)))],
            error="Rejected",
        ),
    ]
    result = report_of(runs)
    assert result.runs == 6
    assert dict(result.by_status) == {
        "completed": 3,
        "needs_review": 1,
        "failed": 1,
        "rejected": 1,
        "running": 0,
    }
    assert result.finished == 5
    assert result.straight_through == 2, "the approved run completed, but not straight through"
    assert result.straight_through_rate == pytest.approx(2 / 5)
    assert (result.reviews.runs, result.reviews.rate) == (3, 0.5)
    assert dict(result.reviews.decisions) == {"approve": 1, "edit": 0, "reject": 1}
    assert result.reviews.pending == 1


def test_review_wait_runs_from_created_at_to_decided_at() -> None:
    requests = [review("rv-1", "a", at(1)), review("rv-2", "b", at(0)), review("rv-3", "c", at(0))]
    runs = [
        run("a", decisions=[("rv-1", decided("approve", at(11)))]),  # 600 s
        run("b", decisions=[("rv-2", decided("edit", at(30)))]),  # 1800 s
        # not in the store: its wait starts at the end of the step that raised it
        run(
            "c",
            steps=[
                step(
                    "category",
                    status=StepStatus.NEEDS_REVIEW,
                    review_id="rv-gone",
                    started=at(9),
                    duration=60,
                ),
                step("category", review_id="rv-gone", duration=0.0),
            ],
            decisions=[("rv-gone", decided("approve", at(60)))],  # 3000 s
        ),
        run("d", decisions=[("rv-3", decided("reject", None))]),  # no time: unknown
        run(
            "e",
            RunStatus.NEEDS_REVIEW,
            reviews=[review("rv-young", "e", at(300)), review("rv-old", "e", at(120))],
        ),
    ]
    result = report_of(runs, [*requests, review("rv-young", "e", at(300))])
    wait = result.reviews.wait
    assert (wait.count, wait.median_s, wait.p90_s) == (3, 1800, pytest.approx(2760))
    assert result.reviews.wait_unknown == 1
    assert result.reviews.decided == 4
    assert result.reviews.pending == 2
    assert result.reviews.oldest_pending_id == "rv-old"
    assert result.reviews.oldest_pending_s == (NOW - at(120)).total_seconds()


def test_the_store_dates_a_pending_review() -> None:
    """An escalated review is replaced in the store; its date is the store's."""
    waiting = run(
        "w", RunStatus.NEEDS_REVIEW, reviews=[review("rv-1", "w", at(600))]
    )  # the record's copy
    result = report_of([waiting], [review("rv-1", "w", at(0))])
    assert result.reviews.oldest_pending_s == (NOW - T0).total_seconds()


# --- steps: exceptions, retries, reviews, the bottleneck ----------------------------------------


def test_a_reviewed_step_counts_once_and_each_loop_visit_counts() -> None:
    result = report_of(
        [
            run(
                "r",
                steps=[
                    step("category", status=StepStatus.NEEDS_REVIEW, review_id="rv", duration=2),
                    step("category", review_id="rv", duration=0.0),
                    step("draft", kind="draft", visit=1, duration=3),
                    step("draft", kind="draft", visit=2, duration=5),
                ],
                decisions=[("rv", decided("approve", at(1)))],
            )
        ]
    )
    category, draft = result.nodes
    assert (category.node, category.steps, category.reviews, category.duration.total_s) == (
        "category",
        1,
        1,
        2,
    )
    assert category.review_rate == 1.0
    assert (draft.steps, draft.reviews, draft.review_rate, draft.duration.median_s) == (2, 0, 0, 4)
    assert result.steps == 3


def test_exceptions_by_node_and_by_error_type() -> None:
    runs = [
        run(
            "a",
            RunStatus.FAILED,
            steps=[step("read", kind="rule"), step("extract", status=StepStatus.FAILED)],
            error="OutputInvalid",
        ),
        run("a-again", RunStatus.FAILED, steps=[step("read", kind="rule")], error="OutputInvalid"),
        run(
            "b",
            steps=[
                step("read", kind="rule"),
                step("extract", status=StepStatus.FALLBACK, error="RetriesExhausted"),
                step("extract", visit=2, error="OutputInvalid"),  # completed, with an error
                step("extract", visit=3),
            ],
        ),
        run("c", RunStatus.FAILED, steps=[step("read", kind="rule", status=StepStatus.FAILED)]),
        run("unreadable", RunStatus.FAILED, error="InputError"),
    ]
    result = report_of(runs)
    read, extract = result.nodes
    assert (read.node, read.steps, read.exceptions, read.exception_rate) == ("read", 4, 1, 0.25)
    assert (extract.steps, extract.exceptions, extract.exception_rate) == (4, 3, 0.75)
    assert (result.steps, result.exceptions, result.exception_rate) == (8, 4, 0.5)
    rows = [(e.type, e.steps, e.step_rate, e.runs_failed, e.nodes) for e in result.errors]
    assert rows == [  # most frequent (steps and failed runs) first
        (NO_ERROR, 2, 2 / 8, 1, ("extract", "read")),
        ("OutputInvalid", 1, 1 / 8, 2, ("extract",)),
        ("InputError", 0, 0.0, 1, ()),
        ("RetriesExhausted", 1, 1 / 8, 0, ("extract",)),
    ]


def test_retries_are_attempts_beyond_the_first_by_kind_and_node() -> None:
    result = report_of(
        [
            run(
                "r",
                steps=[
                    step("category", attempts=tries("call", "transport_retry", "transport_retry")),
                    step("details", attempts=tries("call", "reask", "check_retry")),
                    step("details", visit=2, attempts=tries("call", "fallback_model")),
                    step("reply", attempts=tries("call")),
                    step("rule", kind="rule"),
                ],
            )
        ]
    )
    assert result.retries.total == 5
    assert dict(result.retries.by_kind) == {
        "transport_retry": 2,
        "reask": 1,
        "check_retry": 1,
        "fallback_model": 1,
    }
    by_node = {n.node: (n.retries.total, dict(n.retries.by_kind)) for n in result.nodes}
    assert by_node["details"] == (
        3,
        {"transport_retry": 0, "reask": 1, "check_retry": 1, "fallback_model": 1},
    )
    assert by_node["category"][0] == 2
    assert by_node["reply"][0] == by_node["rule"][0] == 0


def test_the_bottleneck_by_total_and_by_median() -> None:
    result = report_of(
        [
            run(f"r{i}", steps=[step("many", duration=d)] + ([step("slow", duration=5)] * (i < 2)))
            for i, d in enumerate([1, 1, 1, 1, 10])
        ]
    )
    many, slow = result.nodes
    assert (many.duration.total_s, many.duration.median_s) == (14, 1)
    assert (slow.duration.total_s, slow.duration.median_s) == (10, 5)
    assert result.bottleneck is many
    assert result.slowest_median is slow
    assert result.to_dict()["bottleneck"] == {
        "by_total": {"pipeline": "intake", "node": "many", "total_s": 14},
        "by_median": {"pipeline": "intake", "node": "slow", "median_s": 5},
        "by_human_wait": None,
        "is": "node",
    }


def test_human_wait_per_queue_and_the_bottleneck_it_makes() -> None:
    late = replace(review("rv-late", "c", at(0)), queue="claims", deadline=at(10))
    on_time = replace(review("rv-fresh", "d", at(50)), queue="claims", deadline=at(3000))
    requests = [review("rv-1", "a", at(0)), review("rv-2", "b", at(0)), late, on_time]
    slow = [step("category", duration=300)]
    runs = [
        run("a", steps=slow, decisions=[("rv-1", decided("approve", at(1)))]),
        run("b", steps=slow, decisions=[("rv-2", decided("edit", at(3)))]),
        run("c", RunStatus.NEEDS_REVIEW, reviews=[late]),
        run("d", RunStatus.NEEDS_REVIEW, reviews=[on_time]),
    ]
    result = report_of(runs, requests)
    claims, default = result.queues  # the longest human wait first
    assert (default.queue, default.decided, default.pending, default.overdue) == (
        "default", 2, 0, 0,
    )  # fmt: skip
    assert (default.wait.total_s, default.wait.median_s) == (240, 120)
    age = (NOW - at(0)).total_seconds() + (NOW - at(50)).total_seconds()
    assert (claims.queue, claims.decided, claims.pending, claims.overdue) == ("claims", 0, 2, 1)
    assert claims.pending_age_s == claims.human_wait_s == age
    # 10 min of node time against hours of waiting for people: the queue is the bottleneck.
    assert result.waiting is claims and result.human_bound
    bottleneck = result.to_dict()["bottleneck"]
    assert bottleneck["by_human_wait"] == {"queue": "claims", "human_wait_s": age}
    assert bottleneck["is"] == "review"
    assert result.to_dict()["review_queues"][1] == {
        "queue": "default",
        "decided": 2,
        "wait": {"count": 2, "total_s": 240, "median_s": 120, "p90_s": pytest.approx(168)},
        "pending": 0,
        "pending_age_s": 0.0,
        "overdue": 0,
        "human_wait_s": 240,
    }

    # People quicker than the node in all (4 min against 10): the node stays the bottleneck.
    quick = report_of(runs[:2], requests)
    assert quick.waiting is not None and quick.waiting.human_wait_s == 240
    assert not quick.human_bound
    assert quick.to_dict()["bottleneck"]["is"] == "node"


def test_nodes_of_different_pipelines_are_kept_apart() -> None:
    result = report_of(
        [
            run("a", steps=[step("category", duration=1)], pipeline="intake"),
            run("b", steps=[step("category", duration=2)], pipeline="claims", start=at(1)),
        ]
    )
    assert [(n.pipeline, n.node, n.steps) for n in result.nodes] == [
        ("intake", "category", 1),
        ("claims", "category", 1),
    ]
    assert result.pipelines == ("claims", "intake")


# --- tokens and cost ----------------------------------------------------------------------------


def test_unknown_cost_is_left_out_never_counted_as_zero() -> None:
    runs = [
        run("a", tokens=100, cost=0.02),
        run("b", tokens=300, cost=None),
        run("c", tokens=200, cost=0.04),
    ]
    usage = report_of(runs).usage
    assert (usage.tokens_total, usage.tokens_mean) == (600, 200)
    assert usage.cost_mean == pytest.approx(0.03), "not 0.02: the unknown cost is not a zero"
    assert usage.cost_total == pytest.approx(0.06)
    assert (usage.cost_known, usage.cost_unknown) == (2, 1)
    nothing_known = report_of([run("x", cost=None)]).usage
    assert (nothing_known.cost_mean, nothing_known.cost_total, nothing_known.cost_unknown) == (
        None,
        None,
        1,
    )


# --- filters ------------------------------------------------------------------------------------


def test_since_and_pipeline_filter_the_runs() -> None:
    runs = [
        run("old", start=at(0)),
        run("edge", start=at(60)),
        run("new", start=at(120), pipeline="claims"),
        run("undated", start=None),
    ]
    assert report_of(runs).runs == 4
    since = report_of(runs, since=at(60))
    assert (since.runs, since.pipelines, since.since) == (2, ("claims", "intake"), at(60))
    claims = report_of(runs, pipeline="claims")
    assert (claims.runs, claims.pipeline) == (1, "claims")
    both = report_of(runs, since=at(90), pipeline="intake")
    assert both.runs == 0
    assert both.to_dict()["filters"] == {"since": "2025-03-03T10:30:00+00:00", "pipeline": "intake"}


def test_no_runs_gives_zero_counts_and_nulls() -> None:
    zero = {"count": 0, "total_s": 0.0, "median_s": None, "p90_s": None}
    assert report_of([]).to_dict() == {
        "generated_at": "2025-03-04T09:00:00+00:00",
        "filters": {"since": None, "pipeline": None},
        "pipelines": [],
        "runs": {
            "total": 0,
            "by_status": {
                "completed": 0,
                "needs_review": 0,
                "failed": 0,
                "rejected": 0,
                "running": 0,
            },
            "finished": 0,
        },
        "straight_through": {"runs": 0, "rate": None},
        "cycle_time": zero,
        "processing_time": zero,
        "reviews": {
            "runs": 0,
            "rate": None,
            "decided": 0,
            "decisions": {"approve": 0, "edit": 0, "reject": 0},
            "wait": zero,
            "wait_unknown": 0,
            "pending": 0,
            "oldest_pending_s": None,
            "oldest_pending_id": None,
        },
        "steps": {"total": 0, "exceptions": 0, "exception_rate": None},
        "retries": {
            "total": 0,
            "by_kind": {"transport_retry": 0, "reask": 0, "check_retry": 0, "fallback_model": 0},
        },
        "bottleneck": {
            "by_total": None,
            "by_median": None,
            "by_human_wait": None,
            "is": None,
        },
        "nodes": [],
        "review_queues": [],
        "errors": [],
        "usage": {
            "tokens_total": 0,
            "tokens_mean": None,
            "cost_total": None,
            "cost_mean": None,
            "cost_known": 0,
            "cost_unknown": 0,
        },
    }


def test_a_node_and_an_error_as_json() -> None:
    result = report_of(
        [
            run(
                "r",
                RunStatus.FAILED,
                steps=[step("extract", status=StepStatus.FAILED, error="OutputInvalid")],
                error="OutputInvalid",
            )
        ]
    )
    data = result.to_dict()
    assert data["nodes"] == [
        {
            "pipeline": "intake",
            "node": "extract",
            "kind": "classify",
            "steps": 1,
            "duration": {"count": 1, "total_s": 1.0, "median_s": 1.0, "p90_s": 1.0},
            "exceptions": 1,
            "exception_rate": 1.0,
            "reviews": 0,
            "review_rate": 0.0,
            "retries": {
                "total": 0,
                "by_kind": {
                    "transport_retry": 0,
                    "reask": 0,
                    "check_retry": 0,
                    "fallback_model": 0,
                },
            },
        }
    ]
    assert data["errors"] == [
        {
            "type": "OutputInvalid",
            "steps": 1,
            "step_rate": 1.0,
            "runs_failed": 1,
            "nodes": ["extract"],
        }
    ]


# --- --since ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("24h", NOW - timedelta(hours=24)),
        ("30m", NOW - timedelta(minutes=30)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2w", NOW - timedelta(weeks=2)),
        ("1.5H", NOW - timedelta(minutes=90)),
        ("2025-03-01", datetime(2025, 3, 1, tzinfo=UTC)),
        (" 2025-03-01T09:30 ", datetime(2025, 3, 1, 9, 30, tzinfo=UTC)),
        ("2025-03-01T09:30Z", datetime(2025, 3, 1, 9, 30, tzinfo=UTC)),
        (
            "2025-03-01T09:30+02:00",
            datetime(2025, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_since_accepts_dates_and_durations(text: str, expected: datetime) -> None:
    moment = parse_since(text, now=NOW)
    assert moment == expected
    assert moment.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("text", ["7", "7y", "d7", "yesterday", "", "-7d", "2025-13-01"])
def test_a_malformed_since_names_the_accepted_forms(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_since(text, now=NOW)
    assert str(caught.value) == (
        "--since takes an ISO date (2025-03-01), an ISO date and time (2025-03-01T09:30, UTC "
        f"unless it says otherwise) or a time back from now (30m, 24h, 7d); got `{text}`"
    )


def test_the_computation_imports_no_opentelemetry_rich_or_typer() -> None:
    tree = ast.parse(Path(report_module.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}  # fmt: skip
    imported |= {
        node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    roots = {name.split(".")[0] for name in imported}
    assert roots, "the module imports something"
    assert not roots & {"opentelemetry", "rich", "typer"}
    assert {name for name in imported if name.startswith("handrail")} <= {
        "handrail.core.records",
        "handrail.exceptions",
    }
