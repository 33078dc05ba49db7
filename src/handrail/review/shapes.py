"""The JSON shapes of runs, reviews and decisions (`--json` output, the web API): plain data,
the same wherever they are printed or sent."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from pydantic_core import to_jsonable_python

from handrail.core.records import (
    Attempt,
    ReviewDecision,
    ReviewReason,
    ReviewRequest,
    RunRecord,
    StepRecord,
)
from handrail.review.fields import FieldRow, field_rows, schema_errors
from handrail.review.views import ReviewView


def jsonable(value: Any) -> Any:
    """A value as plain JSON data (pydantic models dumped with mode="json"; else `str`)."""
    return to_jsonable_python(value, fallback=str)


def record_json(record: RunRecord, document_id: str | None = None) -> dict[str, Any]:
    """The JSON Lines object for one run."""
    review = record.review
    error = record.error
    return {
        "run_id": record.run_id,
        "document": document_id if document_id is not None else record.document_id,
        "status": record.status.value,
        "outputs": jsonable(dict(record.outputs)),
        "review": _brief_review_json(review) if review is not None else None,
        "error": {"type": error.type, "message": error.message} if error is not None else None,
        "steps": [
            {
                "node": step.node,
                "status": step.status.value,
                "route": step.route,
                "confidence": step.confidence.value if step.confidence is not None else None,
            }
            for step in record.steps
        ],
    }


def _brief_review_json(review: ReviewRequest) -> dict[str, Any]:
    return {
        "review_id": review.review_id,
        "node": review.node,
        "reasons": [
            {
                "kind": reason.kind,
                "message": reason.message,
                "field": reason.field,
                "value": reason.value,
                "threshold": reason.threshold,
                "check": reason.check,
            }
            for reason in review.reasons
        ],
        "output": jsonable(review.output),
    }


def run_summary_json(record: RunRecord) -> dict[str, Any]:
    """One line of `handrail runs list --json`."""
    return {
        "run_id": record.run_id,
        "document": record.document_id,
        "pipeline": record.pipeline,
        "status": record.status.value,
        "started_at": jsonable(record.started_at),
        "ended_at": jsonable(record.ended_at),
        "duration_s": record.duration_s,
        "steps": len(record.steps),
        "tokens": record.usage.total_tokens,
        "cost": record.usage.cost,
        "reviews": [review.review_id for review in record.reviews],
        "error": _error_json(record),
        "model": record.model.name if record.model is not None else None,
        "pipeline_version": record.pipeline_version or None,
    }


def run_detail_json(record: RunRecord) -> dict[str, Any]:
    """`handrail runs show --json`: the `handrail run --json` object with the whole story."""
    return record_json(record) | {
        "pipeline": record.pipeline,
        "started_at": jsonable(record.started_at),
        "ended_at": jsonable(record.ended_at),
        "duration_s": record.duration_s,
        "tokens": record.usage.total_tokens,
        "cost": record.usage.cost,
        "steps": [step_json(step) for step in record.steps],
        "reviews": [review_json(ReviewView(request=r)) for r in record.reviews],
        "decisions": [decision_json(rid, decision) for rid, decision in record.decisions],
        "model": jsonable(record.model),
        "pipeline_version": record.pipeline_version or None,
        "warnings": list(record.warnings),
    }


def step_json(step: StepRecord) -> dict[str, Any]:
    return {
        "node": step.node,
        "kind": step.kind,
        "visit": step.visit,
        "status": step.status.value,
        "attempts": len(step.attempts),
        "confidence": step.confidence.value if step.confidence is not None else None,
        "confidence_source": step.confidence.source if step.confidence is not None else None,
        "route": step.route,
        "started_at": jsonable(step.started_at),
        "duration_s": step.duration_s,
        "tokens": step.usage.total_tokens,
        "cost": step.usage.cost,
        "model": step.model,
        "warnings": [w for attempt in step.attempts for w in attempt.warnings],
        "retries": [
            {
                "attempt": attempt.number,
                "outcome": attempt.outcome,
                "error": attempt.error,
                "then": then,
            }
            for attempt, then in retried(step)
        ],
        "error": (
            {"type": step.error.type, "message": step.error.message}
            if step.error is not None
            else None
        ),
        "review_id": step.review_id,
        "output": jsonable(step.output),
    }


def retried(step: StepRecord) -> list[tuple[Attempt, str]]:
    """The attempts of `step` that were followed by another, with what came next (`reask`,
    `transport_retry`...): why each retry happened is the attempt's outcome and error."""
    attempts = step.attempts
    return [(attempt, following.kind) for attempt, following in pairwise(attempts)]


def review_json(
    view: ReviewView,
    *,
    run: RunRecord | None = None,
    thresholds: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """One review: what is under review, why, where it waits and what becomes of it; with its
    `run` (`review show`), also the document's text, the fields against their thresholds and
    the schema errors (see `review_detail`)."""
    review = view.request
    shown = _review_json(view)
    if run is not None:
        shown |= {
            "document_text": run.document.text if run.document is not None else None,
            "fields": [field_json(row) for row in field_rows(review, thresholds, run)],
            "schema_errors": [
                {"field": location, "message": message}
                for location, message in schema_errors(run, review)
            ],
        }
    return shown


def _review_json(view: ReviewView) -> dict[str, Any]:
    review = view.request
    return {
        "review_id": review.review_id,
        "status": review.status,
        "pipeline": review.pipeline,
        "node": review.node,
        "target": review.target,
        "run_id": review.run_id,
        "document": review.document_id,
        "queue": review.queue,
        "created_at": jsonable(review.created_at),
        "deadline": jsonable(review.deadline),
        "on_deadline": review.on_deadline.describe() if review.on_deadline is not None else None,
        "escalated_at": jsonable(review.escalated_at),
        "escalation": review.escalation,
        "confidence": review.confidence.value if review.confidence is not None else None,
        "confidence_source": review.confidence.source if review.confidence is not None else None,
        "field_confidence": {name: value.value for name, value in review.field_confidence.items()},
        "reasons": [reason_json(reason) for reason in review.reasons],
        "output": jsonable(review.output),
        "decision": (
            decision_json(review.review_id, view.decision) if view.decision is not None else None
        ),
    }


def reason_json(reason: ReviewReason) -> dict[str, Any]:
    return {
        "kind": reason.kind,
        "message": reason.message,
        "field": reason.field,
        "value": reason.value,
        "threshold": reason.threshold,
        "check": reason.check,
    }


def decision_json(review_id: str, decision: ReviewDecision) -> dict[str, Any]:
    return {
        "review_id": review_id,
        "action": decision.action,
        "reviewer": decision.reviewer,
        "decided_at": jsonable(decision.decided_at),
        "reason": decision.reason,
        "output": jsonable(decision.output),
    }


def field_json(row: FieldRow) -> dict[str, Any]:
    return {
        "field": row.field,
        "value": jsonable(row.value),
        "confidence": row.confidence.value if row.confidence is not None else None,
        "confidence_source": row.confidence.source if row.confidence is not None else None,
        "threshold": row.threshold,
        "status": row.status or None,
    }


def _error_json(record: RunRecord) -> dict[str, str] | None:
    error = record.error
    return {"type": error.type, "message": error.message} if error is not None else None


__all__ = [
    "decision_json",
    "field_json",
    "jsonable",
    "reason_json",
    "record_json",
    "retried",
    "review_json",
    "run_detail_json",
    "run_summary_json",
    "step_json",
]
