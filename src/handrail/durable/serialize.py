"""Records to JSON-able values and back, with pydantic's `TypeAdapter`.

Outputs that were pydantic models (or dataclasses) come back as plain dicts: the runner
re-validates them against each node's schema when it rebuilds a run. A `Document` comes back as a
`Document`, datetimes as timezone-aware values.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import TypeAdapter
from pydantic_core import PydanticSerializationError

from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, StepRecord
from handrail.durable.errors import StoreError

T = TypeVar("T")

_run = TypeAdapter(RunRecord)
_step = TypeAdapter(StepRecord)
_review = TypeAdapter(ReviewRequest)
_decision = TypeAdapter(ReviewDecision)


def _dump(adapter: TypeAdapter[T], value: T, what: str) -> Any:
    try:
        return adapter.dump_python(value, mode="json")
    except PydanticSerializationError as e:
        raise StoreError(
            f"cannot store {what}: {e}; node outputs must be JSON-able (pydantic models, "
            "dataclasses, dicts, lists, strings, numbers)"
        ) from e


def dump_run(run: RunRecord) -> Any:
    return _dump(_run, run, f"run `{run.run_id}`")


def load_run(data: Any) -> RunRecord:
    return _run.validate_python(data)


def dump_step(step: StepRecord) -> Any:
    return _dump(_step, step, f"step `{step.node}` of run `{step.run_id}`")


def load_step(data: Any) -> StepRecord:
    return _step.validate_python(data)


def dump_review(review: ReviewRequest) -> Any:
    return _dump(_review, review, f"review `{review.review_id}`")


def load_review(data: Any) -> ReviewRequest:
    return _review.validate_python(data)


def dump_decision(decision: ReviewDecision) -> Any:
    return _dump(_decision, decision, "the decision")


def load_decision(data: Any) -> ReviewDecision:
    return _decision.validate_python(data)
