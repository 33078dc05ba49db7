"""Running a suite: every case through the pipeline on the in-memory runner, nothing kept.

The model comes from the caller (the command line wraps it in the suite's record/replay cache),
so a re-run of an eval is offline, exact and free once its answers are recorded. A case whose
document cannot be run fails its own run, never the eval.

An eval has no person at the review queue. Where a run pauses for review, the eval's reviewer
decides as the case's expected outputs say: the expected value of the reviewed node as an edit
(merged over the model's output for a partial extraction), else an approval; so the nodes after
the pause run too, on the right inputs, and are scored. The route scored is where the run went
first (`CaseResult.first_status`); what each node is scored on is the model's own answer, never
the eval reviewer's edit.

An eval never calls the outside world: unless `run_actions=True`, the pipeline runs with its
`Action` nodes recording what they would have been called with (`handrail.evals.actions`), and
each case keeps those calls (`CaseResult.actions`).

A case the eval itself cannot finish (the runner raises, or its reviewer cannot settle a review,
such as one with no output to approve) is kept with its error (`CaseResult.error`) and the run as
far as it got; the other cases and the report go on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from handrail.core.model import Model
from handrail.core.pipeline import Pipeline
from handrail.core.records import ReviewDecision, RunRecord, RunStatus
from handrail.core.runner import Runner
from handrail.evals.actions import ActionCall, record_actions
from handrail.evals.suite import Case
from handrail.exceptions import ReviewError

MAX_DECISIONS = 20
"""The most reviews the eval's reviewer settles in one run (a loop that keeps pausing)."""


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case and the run it gave."""

    case: Case
    record: RunRecord
    """The run after the eval's reviewer settled its reviews."""
    first_status: RunStatus | None = None
    """Where the run went before any review was settled (default: `record.status`)."""
    actions: tuple[ActionCall, ...] = ()
    """The `Action` calls the run would have made (none when the eval ran the actions)."""
    error: str | None = None
    """Why the eval could not finish the case (`Type: message`); None when it could."""

    @property
    def status(self) -> RunStatus:
        return self.first_status if self.first_status is not None else self.record.status


@dataclass(frozen=True, slots=True)
class EvalRun:
    """What running a suite gave: the results in case order and the wall time of the runs."""

    results: tuple[CaseResult, ...]
    wall_s: float
    actions_called: bool = False
    """The pipeline's `Action` nodes were called (`run_actions=True`), not recorded."""


async def run_cases(
    pipeline: Pipeline,
    cases: Sequence[Case],
    *,
    model: Model,
    concurrency: int = 8,
    on_result: Callable[[RunRecord], None] | None = None,
    run_actions: bool = False,
) -> EvalRun:
    """Run every case (each its own run, even when two cases hold the same text) and return the
    records in case order. `run_actions`: call the pipeline's `Action` nodes (default: record
    what they would have been called with, and call nothing)."""
    log = None
    if not run_actions:
        pipeline, log = record_actions(pipeline)
    runner = Runner(pipeline, model=model)
    limit = asyncio.Semaphore(concurrency)

    async def one(case: Case) -> CaseResult:
        # a run id of its own: two cases with the same text are two runs
        run_id = f"eval-{case.id}"
        record: RunRecord | None = None
        first: RunStatus | None = None
        error: str | None = None
        async with limit:
            try:
                if isinstance(case.document, BaseException):
                    record = runner.failed_input(case.document)
                else:
                    record = await runner.run(case.document, run_id=run_id)
                first = record.status
                record = await settle_reviews(runner, record, case.expected)
            except Exception as e:  # the eval's own trouble with one case: keep it, go on
                error = f"{type(e).__name__}: {e}"
                record = runner.store.get_run(record.run_id if record else run_id) or record
                if record is None:
                    record = runner.failed_input(e, document_id=_document_id(case))
                if first is None:
                    first = record.status
        if on_result is not None:
            on_result(record)
        calls = log.for_run(record.run_id) if log is not None else ()
        return CaseResult(case=case, record=record, first_status=first, actions=calls, error=error)

    started = time.perf_counter()
    results = await asyncio.gather(*(one(case) for case in cases))
    return EvalRun(
        results=tuple(results),
        wall_s=time.perf_counter() - started,
        actions_called=run_actions,
    )


async def settle_reviews(
    runner: Runner, record: RunRecord, expected: Mapping[str, Any]
) -> RunRecord:
    """Decide every review the run raises as `expected` says (see the module), until it ends."""
    for _ in range(MAX_DECISIONS):
        review = record.review
        if record.status is not RunStatus.NEEDS_REVIEW or review is None:
            break
        decision = ReviewDecision.approve(reviewer="eval", review_id=review.review_id)
        if review.target in expected:
            output = _edited(review.output, expected[review.target])
            decision = ReviewDecision.edit(output, reviewer="eval", review_id=review.review_id)
        try:
            record = await runner.resume(record.run_id, decision)
        except ReviewError:  # the expected value does not fit the node's schema: approve
            approve = ReviewDecision.approve(reviewer="eval", review_id=review.review_id)
            record = await runner.resume(record.run_id, approve)
    return record


def _document_id(case: Case) -> str:
    document = case.document
    return document.id if not isinstance(document, BaseException) else case.id


def _edited(output: Any, expected: Any) -> Any:
    """The expected value, over the model's output when both are objects (a partial
    expectation keeps the fields it does not name)."""
    if isinstance(expected, Mapping):
        base = output.model_dump() if isinstance(output, BaseModel) else output
        if isinstance(base, Mapping):
            return {**base, **expected}
    return expected


__all__ = ["CaseResult", "EvalRun", "run_cases"]
