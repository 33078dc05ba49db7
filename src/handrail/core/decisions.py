"""Checking a person's decision before anything is written (DESIGN §3, review)."""

from __future__ import annotations

from typing import Any

from handrail.core.examples import VERDICTS, ReviewedExample
from handrail.core.nodes import Node, Review
from handrail.core.pipeline import Pipeline
from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, RunStatus
from handrail.exceptions import InvalidDecision, ReviewAlreadyDecided, ReviewNotFound


def pending_review(record: RunRecord, decision: ReviewDecision) -> ReviewRequest:
    """The pending review a decision is for; raises if there is none or it was decided."""
    pending = {r.review_id: r for r in record.reviews}
    decided = dict(record.decisions)
    wanted = decision.review_id
    already = wanted in decided if wanted is not None else (not pending and bool(decided))
    if already:
        rid = wanted or record.decisions[-1][0]
        previous = decided[rid]
        by = f" by {previous.reviewer}" if previous.reviewer else ""
        raise ReviewAlreadyDecided(
            f"review `{rid}` of run `{record.run_id}` was already "
            f"decided ({previous.action}{by}); a decision is "
            "applied exactly once"
        )
    if record.status is not RunStatus.NEEDS_REVIEW or not pending:
        raise InvalidDecision(
            f"run `{record.run_id}` is {record.status.value}, not waiting "
            "for review; nothing to decide"
        )
    if wanted is None:
        if len(pending) > 1:
            raise InvalidDecision(
                f"run `{record.run_id}` waits on {len(pending)} reviews "
                f"({', '.join(pending)}); say which with review_id="
            )
        return next(iter(pending.values()))
    if wanted not in pending:
        raise ReviewNotFound(
            f"run `{record.run_id}` has no pending review `{wanted}`; pending: {', '.join(pending)}"
        )
    return pending[wanted]


def decided_output(
    pipeline: Pipeline, node: Node, request: ReviewRequest, decision: ReviewDecision
) -> tuple[Any, dict[str, Any]]:
    """Validate the decision before anything is written; returns (output, state updates)."""
    if decision.action == "reject":
        return None, {}
    target = pipeline.nodes[request.target]
    if decision.action == "approve":
        if request.output is None and not isinstance(node, Review):
            raise InvalidDecision(
                f"review `{request.review_id}` has no output to approve "
                f"(`{node.name}` failed: {request.reasons[0].message}); "
                "edit it with a corrected output, or reject it"
            )
        return ("approved", {}) if isinstance(node, Review) else (request.output, {})
    if decision.action != "edit":
        raise InvalidDecision(f"unknown decision {decision.action!r}; use approve, edit or reject")
    adapter = target.output_adapter()
    value = decision.output
    if adapter is not None:
        try:
            value = adapter.validate_python(value)
        except Exception as e:
            raise InvalidDecision(
                f"the edited output for `{target.name}` does not fit its "
                f"schema: {e}; correct it and decide again"
            ) from e
    if isinstance(node, Review):
        return "edited", {request.target: value}
    return value, {}


def reviewed_example(
    pipeline: Pipeline,
    record: RunRecord,
    request: ReviewRequest,
    decision: ReviewDecision,
    output: Any,
    updates: dict[str, Any],
) -> ReviewedExample | None:
    """The example a decision makes when the reviewed node learns from reviews
    (`learn_from_reviews=True`), given what `decided_output` returned; None otherwise, or when
    there is nothing to learn (no document text, a reject of a node that gave no output)."""
    target = pipeline.nodes.get(request.target)
    document = record.document
    if not getattr(target, "learn_from_reviews", False) or document is None:
        return None
    if decision.action == "reject":
        value = request.output  # the answer the reviewer said was wrong
    elif request.node != request.target:  # a `Review` gate: its target's output, as decided
        value = updates.get(request.target, request.output)
    else:
        value = output
    if value is None or not document.text.strip():
        return None
    dump = getattr(value, "model_dump", None)
    return ReviewedExample(
        example_id=request.review_id,
        review_id=request.review_id,
        run_id=record.run_id,
        pipeline=record.pipeline,
        pipeline_version=record.pipeline_version or pipeline.fingerprint,
        node=request.target,
        document_hash=record.document_hash,
        text=document.text,
        output=dump(mode="json") if callable(dump) else value,
        verdict=VERDICTS[decision.action],
        reviewer=decision.reviewer,
        decided_at=decision.decided_at or record.ended_at or request.created_at,
    )
