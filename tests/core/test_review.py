"""A person's decision: approve, edit (validated), reject (ends the run or takes the `rejected`
path). Resuming never re-runs a completed step; a decision is applied exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from inline_snapshot import snapshot
from pydantic import BaseModel
from tests.pipelines import approval, low_confidence

from handrail import (
    Classify,
    ErrorInfo,
    Extract,
    FakeModel,
    Gate,
    InMemoryStore,
    PipelineBuilder,
    Reply,
    Review,
    ReviewAlreadyDecided,
    ReviewDecision,
    ReviewNotFound,
    Rule,
    Runner,
    RunStatus,
    StepStatus,
)
from handrail.exceptions import InvalidDecision

from ._helpers import history, step


@pytest.fixture(autouse=True)
def _fresh_counts() -> Iterator[None]:
    approval.calls.clear()
    yield
    approval.calls.clear()


async def paused(
    pipeline: Any = None, model: FakeModel | None = None, text: str = "doc"
) -> tuple[Runner, Any]:
    runner = Runner(pipeline or low_confidence.pipeline, model=model or low_confidence.model(0.6))
    record = await runner.run(text)
    assert record.status is RunStatus.NEEDS_REVIEW
    return runner, record


# --- approve / edit / reject -------------------------------------------------------------------


async def test_approve_continues_with_the_output_under_review() -> None:
    runner, record = await paused()
    done = await runner.resume(record.run_id, ReviewDecision.approve(reviewer="ann"))

    assert done.run_id == record.run_id
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == {"category": "bug", "shout": "BUG"}
    assert history(done) == snapshot(
        [
            ("category", 1, "needs_review", "bug", ()),
            ("category", 1, "completed", "bug", ("shout",)),
            ("shout", 1, "completed", None, ()),
        ]
    )
    decided = step(done, "category")
    assert decided.review_id == record.review.review_id
    assert decided.confidence == record.review.confidence
    assert done.reviews == ()
    [(review_id, decision)] = done.decisions
    assert review_id == record.review.review_id
    assert (decision.action, decision.reviewer) == ("approve", "ann")
    assert decision.decided_at is not None


async def test_edit_continues_with_the_corrected_output_and_its_route() -> None:
    pipeline = (
        PipelineBuilder("edit")
        .add(low_confidence.pipeline["category"])
        .add(Rule("refund", lambda s: "R"), after="category", route="refund")
        .add(Rule("bug", lambda s: "B"), after="category", route="bug")
        .add(Rule("question", lambda s: "Q"), after="category", route="question")
        .build()
    )
    runner, record = await paused(pipeline)
    done = await runner.resume(record.run_id, ReviewDecision.edit("refund"))

    assert done.status is RunStatus.COMPLETED
    assert done.outputs == {"category": "refund", "refund": "R"}
    assert history(done)[1:] == [
        ("category", 1, "completed", "refund", ("refund",)),
        ("refund", 1, "completed", None, ()),
    ]


class Order(BaseModel):
    order_id: str
    amount: float


def order_pipeline() -> Any:
    return (
        PipelineBuilder("orders")
        .add(Extract("order", Order, gate=Gate(accept=0.9)))
        .add(Rule("double", lambda s: s["order"].amount * 2), after="order")
        .build()
    )


async def test_an_edit_is_validated_against_the_node_schema() -> None:
    model = FakeModel({"order": Reply({"order_id": "A-1", "amount": 1}, confidence=0.5)})
    runner, record = await paused(order_pipeline(), model)
    done = await runner.resume(
        record.run_id, ReviewDecision.edit({"order_id": "A-1", "amount": "10.5"})
    )

    assert done.status is RunStatus.COMPLETED
    assert done.outputs["order"] == Order(order_id="A-1", amount=10.5)
    assert done.outputs["double"] == 21.0


async def test_an_invalid_edit_is_refused_and_writes_nothing() -> None:
    model = FakeModel({"order": Reply({"order_id": "A-1", "amount": 1}, confidence=0.5)})
    runner, record = await paused(order_pipeline(), model)
    store = runner.store
    review_id = record.review.review_id

    with pytest.raises(InvalidDecision) as info:
        await runner.resume(record.run_id, ReviewDecision.edit({"order_id": "A-1"}))
    message = str(info.value)
    assert message.startswith(
        "the edited output for `order` does not fit its schema: 1 validation error for Order"
    )
    assert "amount\n  Field required" in message
    assert message.endswith("; correct it and decide again")

    assert store.get_run(record.run_id) == record
    assert store.get_review(review_id).status == "pending"
    assert store.list_reviews() == [record.review]
    # the review is still open: a valid decision is accepted afterwards
    done = await runner.resume(record.run_id, ReviewDecision.approve())
    assert done.status is RunStatus.COMPLETED


async def test_reject_ends_the_run_as_rejected() -> None:
    runner, record = await paused()
    done = await runner.resume(record.run_id, ReviewDecision.reject("spam", reviewer="bob"))

    assert done.status is RunStatus.REJECTED
    assert done.error == ErrorInfo(type="Rejected", message="spam")
    assert history(done) == [
        ("category", 1, "needs_review", "bug", ()),
        ("category", 1, "rejected", "rejected", ()),
    ]
    assert done.outputs == {}


async def test_reject_without_a_reason_names_the_node() -> None:
    runner, record = await paused()
    done = await runner.resume(record.run_id, ReviewDecision.reject())
    assert done.error == ErrorInfo(type="Rejected", message="`category` rejected by a reviewer")


async def test_reject_takes_the_rejected_route_when_the_pipeline_has_one() -> None:
    runner, record = await paused(approval.rejectable, approval.model("bug", 0.5))
    done = await runner.resume(record.run_id, ReviewDecision.reject())

    assert done.status is RunStatus.COMPLETED
    assert history(done) == [
        ("received", 1, "completed", None, ("category",)),
        ("category", 1, "needs_review", "bug", ()),
        ("category", 1, "rejected", "rejected", ("manual",)),
        ("manual", 1, "completed", None, ()),
    ]
    assert "act" not in done.outputs
    assert done.outputs["manual"] == "queued for a person"


async def test_approve_does_not_take_the_rejected_route() -> None:
    runner, record = await paused(approval.rejectable, approval.model("bug", 0.5))
    done = await runner.resume(record.run_id, ReviewDecision.approve())
    assert done.outputs == {"received": 3, "category": "bug", "act": "handle bug"}


async def test_an_unknown_action_is_refused() -> None:
    runner, record = await paused()
    with pytest.raises(InvalidDecision, match="unknown decision 'maybe'; use approve, edit or"):
        await runner.resume(record.run_id, ReviewDecision(action="maybe"))  # type: ignore[arg-type]


# --- resuming re-runs nothing ------------------------------------------------------------------


async def test_resuming_never_re_runs_a_completed_step() -> None:
    model = approval.model("bug", 0.5)
    runner, record = await paused(approval.rejectable, model)
    assert approval.calls == {"received": 1}
    assert len(model.calls) == 1

    done = await runner.resume(record.run_id, ReviewDecision.approve())

    assert done.status is RunStatus.COMPLETED
    assert len(model.calls) == 1
    assert approval.calls == {"received": 1, "act": 1}


async def test_a_new_runner_on_the_same_store_resumes_without_re_running() -> None:
    store = InMemoryStore()
    first_model = approval.model("bug", 0.5)
    record = await Runner(approval.rejectable, model=first_model, store=store).run("doc")

    second_model = approval.model("bug", 0.5)
    done = await Runner(approval.rejectable, model=second_model, store=store).resume(
        record.run_id, ReviewDecision.edit("refund")
    )

    assert done.status is RunStatus.COMPLETED
    assert done.outputs == {"received": 3, "category": "refund", "act": "handle refund"}
    assert second_model.calls == []
    assert approval.calls == {"received": 1, "act": 1}


async def test_a_resumed_run_can_pause_again() -> None:
    pipeline = (
        PipelineBuilder("twice")
        .add(low_confidence.pipeline["category"])
        .add(Extract("order", Order, gate=Gate(accept=0.9)), after="category")
        .build()
    )
    model = FakeModel(
        {
            "category": Reply("bug", confidence=0.5),
            "order": Reply({"order_id": "A", "amount": 1}, confidence=0.5),
        }
    )
    runner, record = await paused(pipeline, model)
    again = await runner.resume(record.run_id, ReviewDecision.approve())

    assert again.status is RunStatus.NEEDS_REVIEW
    assert again.review is not None
    assert again.review.node == "order"
    done = await runner.decide(again.review.review_id, ReviewDecision.approve())
    assert done.status is RunStatus.COMPLETED
    assert [rid for rid, _ in done.decisions] == [record.review.review_id, again.review.review_id]
    assert len(model.calls) == 2


# --- exactly once ------------------------------------------------------------------------------


async def test_a_second_decision_is_refused_with_a_clear_error() -> None:
    runner, record = await paused()
    await runner.resume(record.run_id, ReviewDecision.approve(reviewer="ann"))
    review_id = record.review.review_id

    with pytest.raises(ReviewAlreadyDecided) as info:
        await runner.resume(record.run_id, ReviewDecision.reject(reviewer="bob"))
    assert str(info.value) == (
        f"review `{review_id}` of run `{record.run_id}` was already decided (approve by ann); "
        "a decision is applied exactly once"
    )
    with pytest.raises(ReviewAlreadyDecided, match=r"already decided \(approve by ann\)"):
        await runner.decide(review_id, ReviewDecision.reject(reviewer="bob"))
    assert runner.store.get_run(record.run_id).status is RunStatus.COMPLETED


async def test_deciding_a_run_that_is_not_waiting_is_refused() -> None:
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.95))
    record = await runner.run("doc")
    with pytest.raises(InvalidDecision) as info:
        await runner.resume(record.run_id, ReviewDecision.approve())
    assert str(info.value) == (
        f"run `{record.run_id}` is completed, not waiting for review; nothing to decide"
    )


async def test_unknown_runs_and_reviews() -> None:
    runner, record = await paused()
    with pytest.raises(ReviewNotFound) as info:
        await runner.resume("run-nope", ReviewDecision.approve())
    assert str(info.value) == "no run `run-nope`; list runs with `handrail runs list`"
    with pytest.raises(ReviewNotFound) as info:
        await runner.decide("rv-nope", ReviewDecision.approve())
    assert str(info.value) == (
        "no review `rv-nope`; list pending reviews with `handrail review list`"
    )
    with pytest.raises(ReviewNotFound, match="has no pending review `rv-nope`"):
        await runner.resume(record.run_id, ReviewDecision.approve(review_id="rv-nope"))


# --- several reviews, decide(review_id) --------------------------------------------------------


def two_reviews() -> tuple[Any, FakeModel]:
    pipeline = (
        PipelineBuilder("two", start=["a", "b"])
        .add(Classify("a", labels=["x", "y"]))
        .add(Classify("b", labels=["x", "y"]))
        .add(Rule("join", lambda s: s["a"] + s["b"]), after=["a", "b"])
        .build()
    )
    model = FakeModel({"a": Reply("x", confidence=0.5), "b": Reply("y", confidence=0.4)})
    return pipeline, model


async def test_decide_by_review_id_when_a_run_waits_on_several() -> None:
    pipeline, model = two_reviews()
    runner, record = await paused(pipeline, model)
    by_node = {r.node: r.review_id for r in record.reviews}
    assert sorted(by_node) == ["a", "b"]

    with pytest.raises(InvalidDecision) as info:
        await runner.resume(record.run_id, ReviewDecision.approve())
    ids = ", ".join(r.review_id for r in record.reviews)
    assert str(info.value) == (
        f"run `{record.run_id}` waits on 2 reviews ({ids}); say which with review_id="
    )

    half = await runner.decide(by_node["b"], ReviewDecision.edit("x"))
    assert half.status is RunStatus.NEEDS_REVIEW
    assert [r.node for r in half.reviews] == ["a"]
    assert "join" not in half.outputs  # the join waits for the branch still under review

    done = await runner.decide(by_node["a"], ReviewDecision.approve())
    assert done.status is RunStatus.COMPLETED
    assert done.outputs["join"] == "xx"
    assert len(model.calls) == 2


# --- Review gate nodes -------------------------------------------------------------------------


async def test_a_review_gate_lets_through_what_its_condition_does_not_select() -> None:
    record = await Runner(approval.pipeline, model=approval.model("bug")).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert record.outputs["approve_refund"] == "not_required"
    assert record.outputs["act"] == "handle bug"


async def test_a_review_gate_stops_what_its_condition_selects() -> None:
    _, record = await paused(approval.pipeline, approval.model("refund"))

    assert history(record)[-1] == ("approve_refund", 1, "needs_review", None, ())
    review = record.review
    assert (review.node, review.target, review.output) == ("approve_refund", "category", "refund")
    assert [(r.kind, r.message) for r in review.reasons] == [
        ("review_node", "refunds need a person's approval")
    ]
    assert "act" not in record.outputs
    assert approval.calls == {"received": 1}


async def test_approving_a_review_gate() -> None:
    runner, record = await paused(approval.pipeline, approval.model("refund"))
    done = await runner.decide(record.review.review_id, ReviewDecision.approve())

    assert done.status is RunStatus.COMPLETED
    assert done.outputs["approve_refund"] == "approved"
    assert done.outputs["act"] == "handle refund"
    assert approval.calls == {"received": 1, "act": 1}


async def test_editing_through_a_review_gate_replaces_the_reviewed_output() -> None:
    runner, record = await paused(approval.pipeline, approval.model("refund"))
    done = await runner.decide(record.review.review_id, ReviewDecision.edit("bug"))

    assert done.status is RunStatus.COMPLETED
    assert done.outputs["category"] == "bug"
    assert done.outputs["approve_refund"] == "edited"
    assert done.outputs["act"] == "handle bug"
    gate = step(done, "approve_refund")
    assert gate.status is StepStatus.COMPLETED
    assert dict(gate.updates) == {"category": "bug"}


async def test_an_edit_through_a_review_gate_is_validated_against_the_reviewed_node() -> None:
    runner, record = await paused(approval.pipeline, approval.model("refund"))
    with pytest.raises(InvalidDecision, match="the edited output for `category` does not fit"):
        await runner.decide(record.review.review_id, ReviewDecision.edit("spam"))


async def test_rejecting_at_a_review_gate() -> None:
    runner, record = await paused(approval.pipeline, approval.model("refund"))
    done = await runner.decide(record.review.review_id, ReviewDecision.reject("not eligible"))

    assert done.status is RunStatus.REJECTED
    assert done.error == ErrorInfo(type="Rejected", message="not eligible")
    assert "act" not in done.outputs


async def test_a_review_condition_that_raises_fails_its_step() -> None:
    pipeline = (
        PipelineBuilder("broken_when")
        .add(Classify("category", labels=["refund", "bug"], gate=None))
        .add(Review("check", of="category", when=lambda s: s["nope"]), after="category")
        .build()
    )
    record = await Runner(pipeline, model=approval.model("bug")).run("doc")

    assert record.status is RunStatus.FAILED
    assert history(record)[-1] == ("check", 1, "failed", None, ())
    assert record.error is not None
    assert record.error.message.startswith("`check` raised NoOutput: `nope` has no output")
