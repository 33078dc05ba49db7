"""`RunStore` and the in-memory store: runs, step checkpoints, the review queue, and a decision
accepted exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter
from tests.pipelines import branches, low_confidence

from handrail import (
    Extract,
    FakeModel,
    Hooks,
    InMemoryStore,
    Pipeline,
    PipelineBuilder,
    Reply,
    Review,
    ReviewAlreadyDecided,
    ReviewDecision,
    ReviewNotFound,
    Rule,
    Runner,
    RunRecord,
    RunStatus,
    RunStore,
    StepRecord,
)


async def paused(store: InMemoryStore, text: str = "doc") -> RunRecord:
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), store=store)
    return await runner.run(text)


def test_the_in_memory_store_is_a_run_store() -> None:
    assert isinstance(InMemoryStore(), RunStore)


async def test_runs_are_saved_and_replaced() -> None:
    store = InMemoryStore()
    runner = Runner(branches.pipeline, store=store)
    record = await runner.run("tiny")
    assert store.get_run(record.run_id) == record
    assert store.get_run("run-unknown") is None

    again = await runner.run("tiny", run_id=record.run_id, rerun=True)
    assert store.get_run(record.run_id) == again
    assert len(store.list_runs()) == 1


async def test_every_step_is_checkpointed_before_observers_hear_of_it() -> None:
    store = InMemoryStore()
    seen: list[tuple[str, list[str]]] = []

    class Check(Hooks):
        def step_finished(self, *, step: StepRecord, **_: Any) -> None:
            seen.append((step.node, [s.node for s in store.steps(step.run_id)]))

    record = await Runner(branches.pipeline, store=store, hooks=[Check()]).run("tiny")

    assert seen == [
        ("size", ["size"]),
        ("small", ["size", "small"]),
        ("join", ["size", "small", "join"]),
    ]
    assert store.steps(record.run_id) == list(record.steps)
    assert store.steps("run-unknown") == []


async def test_list_runs_filters_by_status_and_pipeline() -> None:
    store = InMemoryStore()
    done = await Runner(branches.pipeline, store=store).run("tiny")
    waiting = await paused(store)

    assert store.list_runs() == [waiting, done]  # newest first
    assert store.list_runs(status=RunStatus.NEEDS_REVIEW) == [waiting]
    assert store.list_runs(pipeline="branches") == [done]
    assert store.list_runs(pipeline="branches", status=RunStatus.NEEDS_REVIEW) == []
    assert store.list_runs(limit=1) == [waiting]


async def test_a_paused_run_puts_its_review_in_the_queue() -> None:
    store = InMemoryStore()
    record = await paused(store)
    review = record.review
    assert review is not None

    assert store.get_review(review.review_id) == review
    assert store.list_reviews() == [review]
    assert store.get_review("rv-unknown") is None


async def test_a_decided_review_leaves_the_pending_queue() -> None:
    store = InMemoryStore()
    record = await paused(store)
    review_id = record.review.review_id  # type: ignore[union-attr]

    decided = store.record_decision(review_id, ReviewDecision.approve(reviewer="ann"))
    assert decided.status == "decided"
    assert store.get_review(review_id) == decided
    assert store.list_reviews() == []
    assert store.list_reviews(pending_only=False) == [decided]

    # saving the old paused record again does not reopen the review
    store.save_run(record)
    assert store.get_review(review_id).status == "decided"  # type: ignore[union-attr]


async def test_a_decision_is_accepted_exactly_once() -> None:
    store = InMemoryStore()
    record = await paused(store)
    review_id = record.review.review_id  # type: ignore[union-attr]
    store.record_decision(review_id, ReviewDecision.approve(reviewer="ann"))

    with pytest.raises(ReviewAlreadyDecided) as info:
        store.record_decision(review_id, ReviewDecision.reject())
    assert str(info.value) == (
        f"review `{review_id}` was already decided (approve by ann); a decision is applied "
        "exactly once"
    )
    other = await paused(store, "other doc")
    other_id = other.review.review_id  # type: ignore[union-attr]
    store.record_decision(other_id, ReviewDecision.reject())
    with pytest.raises(ReviewAlreadyDecided, match=r"already decided \(reject\);"):
        store.record_decision(other_id, ReviewDecision.approve())


def test_deciding_an_unknown_review() -> None:
    with pytest.raises(ReviewNotFound) as info:
        InMemoryStore().record_decision("rv-x", ReviewDecision.approve())
    assert str(info.value) == "no review `rv-x`; list pending reviews with `handrail review list`"


async def test_review_ids_are_stable_for_a_run_node_and_visit() -> None:
    first = await paused(InMemoryStore())
    second = await paused(InMemoryStore())
    assert first.review is not None and second.review is not None
    assert first.review.review_id == second.review.review_id
    assert first.review.review_id.startswith("rv-")


async def test_records_round_trip_through_a_type_adapter() -> None:
    """How a persistent store serialises them; a resumed run must see the same document."""
    store = InMemoryStore()
    record = await paused(store)
    adapter = TypeAdapter(RunRecord)
    restored = adapter.validate_json(adapter.dump_json(record))
    assert restored == record

    other = InMemoryStore()
    other.save_run(restored)
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), store=other)
    done = await runner.resume(restored.run_id, ReviewDecision.approve())
    assert done.status is RunStatus.COMPLETED
    assert done.document_hash == record.document_hash
    assert done.document == record.document
    assert done.outputs == {"category": "bug", "shout": "BUG"}


async def test_the_runner_uses_the_store_it_is_given() -> None:
    class Counting(InMemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.saved: list[str] = []

        def save_run(self, run: RunRecord) -> None:
            self.saved.append(run.status.value)
            super().save_run(run)

    store = Counting()
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), store=store)
    record = await runner.run("doc")
    await runner.resume(record.run_id, ReviewDecision.approve())
    assert store.saved == ["needs_review", "completed"]
    assert runner.store is store


async def test_outputs_stored_as_json_come_back_as_their_node_types() -> None:
    """A serialising store gives pydantic outputs back as dicts; a resumed run revalidates them
    against each node's schema, so later nodes read `state["order"].amount` as before."""
    store = InMemoryStore()
    runner = Runner(approval_pipeline(), model=approval_model(), store=store)
    record = await runner.run("order A-17 for 900")
    assert record.status is RunStatus.NEEDS_REVIEW

    as_json = TypeAdapter(RunRecord).dump_python(record, mode="json")
    assert as_json["outputs"]["order"] == {"order_id": "A-17", "amount": 900.0}
    other = InMemoryStore()
    other.save_run(TypeAdapter(RunRecord).validate_python(as_json))
    resumed = Runner(approval_pipeline(), model=approval_model(), store=other)
    done = await resumed.resume(record.run_id, ReviewDecision.approve())

    assert done.status is RunStatus.COMPLETED
    assert done.outputs["order"] == Order(order_id="A-17", amount=900.0)
    assert done.outputs["charge"] == 900.0


class Order(BaseModel):
    order_id: str
    amount: float


def approval_pipeline() -> Pipeline:
    return (
        PipelineBuilder("json_round_trip")
        .add(Extract("order", Order, gate=None))
        .add(Review("check", of="order"), after="order")
        .add(Rule("charge", lambda s: s["order"].amount), after="check")
        .build()
    )


def approval_model() -> FakeModel:
    return FakeModel({"order": Reply({"order_id": "A-17", "amount": 900.0})})
