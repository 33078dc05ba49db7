"""`SqlStore` keeps what `InMemoryStore` keeps: the same behaviours run against the in-memory
store, a SQLite file and a real PostgreSQL server. Then what only a database can show:
idempotent step checkpoints, records surviving a new store (a new process), SQLite's WAL mode."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import TypeAdapter
from tests.pipelines import approval, branches, happy, low_confidence

from handrail import (
    Document,
    Extract,
    FakeModel,
    InMemoryStore,
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
    StepStatus,
)
from handrail.durable import SqlStore, StoreError

REFUND = "Please refund me.\nOrder ID: A-17\nAmount: 100\n"


def open_store(kind: str, request: pytest.FixtureRequest) -> RunStore:
    if kind == "memory":
        return InMemoryStore()
    url = request.getfixturevalue("sqlite_url" if kind == "sqlite" else "fresh_postgres_url")
    return SqlStore(url)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> Iterator[RunStore]:
    opened = open_store(request.param, request)
    yield opened
    if isinstance(opened, SqlStore):
        opened.close()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_store(request: pytest.FixtureRequest) -> Iterator[SqlStore]:
    opened = open_store(request.param, request)
    assert isinstance(opened, SqlStore)
    yield opened
    opened.close()


def as_json(value: Any) -> Any:
    """What a store keeps of a record: its JSON form (pydantic outputs become dicts)."""
    return TypeAdapter(type(value)).dump_python(value, mode="json")


async def paused(store: RunStore, text: str = "doc") -> RunRecord:
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), store=store)
    return await runner.run(text)


def pending_id(record: RunRecord) -> str:
    assert record.review is not None
    return record.review.review_id


# --- the same behaviours on every store ----------------------------------------------------------


def test_every_store_is_a_run_store(store: RunStore) -> None:
    assert isinstance(store, RunStore)


async def test_a_run_round_trips_with_its_steps_outputs_and_document(store: RunStore) -> None:
    document = Document(
        text=REFUND, id="tickets/17.txt", source="tickets/17.txt", metadata={"n": 1}
    )
    record = await Runner(happy.pipeline, model=happy.model(), store=store).run(document)
    assert record.status is RunStatus.COMPLETED

    restored = store.get_run(record.run_id)
    assert restored is not None
    assert as_json(restored) == as_json(record)
    assert isinstance(restored.document, Document)
    assert restored.document == document
    assert restored.steps[1].field_confidence == record.steps[1].field_confidence
    # an Extract output (a pydantic model) is kept as its fields
    assert dict(restored.outputs["order"]) == {"order_id": "A-17", "amount": 100.0}
    for moment in (restored.started_at, restored.ended_at, restored.steps[0].started_at):
        assert moment is not None and moment.utcoffset() == timedelta(0)
    assert restored.started_at == record.started_at
    assert store.get_run("run-unknown") is None


async def test_every_step_is_checkpointed_in_order(store: RunStore) -> None:
    record = await Runner(branches.pipeline, store=store).run("tiny")
    steps = store.steps(record.run_id)  # type: ignore[attr-defined]
    assert [(s.node, s.status) for s in steps] == [
        ("size", StepStatus.COMPLETED),
        ("small", StepStatus.COMPLETED),
        ("join", StepStatus.COMPLETED),
    ]
    assert [as_json(s) for s in steps] == [as_json(s) for s in record.steps]
    assert store.steps("run-unknown") == []  # type: ignore[attr-defined]


async def test_runs_are_replaced_not_duplicated(store: RunStore) -> None:
    runner = Runner(branches.pipeline, store=store)
    first = await runner.run("tiny")
    again = await runner.run("tiny", run_id=first.run_id, rerun=True)
    assert as_json(store.get_run(first.run_id)) == as_json(again)
    assert [r.run_id for r in store.list_runs()] == [first.run_id]


async def test_list_runs_filters_by_status_and_pipeline(store: RunStore) -> None:
    done = await Runner(branches.pipeline, store=store).run("tiny")
    waiting = await paused(store)

    def ids(runs: Any) -> set[str]:
        return {r.run_id for r in runs}

    assert ids(store.list_runs()) == {done.run_id, waiting.run_id}
    assert ids(store.list_runs(status=RunStatus.NEEDS_REVIEW)) == {waiting.run_id}
    assert ids(store.list_runs(pipeline="branches")) == {done.run_id}
    assert ids(store.list_runs(pipeline="branches", status=RunStatus.NEEDS_REVIEW)) == set()
    assert len(store.list_runs(limit=1)) == 1


async def test_a_paused_run_puts_its_review_in_the_queue(store: RunStore) -> None:
    record = await paused(store)
    review = record.review
    assert review is not None

    assert as_json(store.get_review(review.review_id)) == as_json(review)
    assert [as_json(r) for r in store.list_reviews()] == [as_json(review)]
    assert store.get_review("rv-unknown") is None


async def test_a_decided_review_leaves_the_queue_and_stays_decided(store: RunStore) -> None:
    record = await paused(store)
    review_id = pending_id(record)

    decided = store.record_decision(review_id, ReviewDecision.approve(reviewer="ann"))
    assert decided.status == "decided"
    assert decided.review_id == review_id
    assert as_json(store.get_review(review_id)) == as_json(decided)
    assert store.list_reviews() == []
    assert [r.review_id for r in store.list_reviews(pending_only=False)] == [review_id]

    store.save_run(record)  # the old paused record, saved again, does not reopen the review
    assert store.get_review(review_id).status == "decided"  # type: ignore[union-attr]
    assert store.list_reviews() == []


async def test_a_decision_is_accepted_exactly_once(store: RunStore) -> None:
    record = await paused(store)
    review_id = pending_id(record)
    store.record_decision(review_id, ReviewDecision.approve(reviewer="ann"))

    with pytest.raises(ReviewAlreadyDecided) as info:
        store.record_decision(review_id, ReviewDecision.reject())
    assert str(info.value).startswith(
        f"review `{review_id}` was already decided (approve by ann); a decision is applied "
        "exactly once"
    )
    if not isinstance(store, InMemoryStore):  # a durable decision may have been cut off
        assert "`handrail runs resume RUN_ID` finishes it" in str(info.value)
    other_id = pending_id(await paused(store, "other doc"))
    store.record_decision(other_id, ReviewDecision.reject())
    with pytest.raises(ReviewAlreadyDecided, match=r"already decided \(reject\);"):
        store.record_decision(other_id, ReviewDecision.approve())


def test_deciding_an_unknown_review(store: RunStore) -> None:
    with pytest.raises(ReviewNotFound) as info:
        store.record_decision("rv-x", ReviewDecision.approve())
    assert str(info.value) == "no review `rv-x`; list pending reviews with `handrail review list`"


async def test_a_paused_run_resumes_from_the_store(store: RunStore) -> None:
    record = await paused(store)
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), store=store)
    done = await runner.decide(pending_id(record), ReviewDecision.edit("refund", reviewer="bo"))

    assert done.status is RunStatus.COMPLETED
    assert done.outputs == {"category": "refund", "shout": "REFUND"}
    assert as_json(store.get_run(record.run_id)) == as_json(done)
    assert [(s.node, s.status) for s in store.steps(record.run_id)] == [  # type: ignore[attr-defined]
        ("category", StepStatus.NEEDS_REVIEW),
        ("category", StepStatus.COMPLETED),
        ("shout", StepStatus.COMPLETED),
    ]
    with pytest.raises(ReviewAlreadyDecided):
        await runner.decide(pending_id(record), ReviewDecision.approve())


async def test_a_review_gate_edit_and_its_decision_are_kept(store: RunStore) -> None:
    runner = Runner(approval.pipeline, model=approval.model("refund"), store=store)
    record = await runner.run("please refund")
    assert record.status is RunStatus.NEEDS_REVIEW
    done = await runner.resume(record.run_id, ReviewDecision.edit("bug", reviewer="cy"))

    restored = store.get_run(record.run_id)
    assert restored is not None
    assert restored.outputs["act"] == "handle bug"
    [(review_id, decision)] = restored.decisions
    assert review_id == pending_id(record)
    assert (decision.action, decision.output, decision.reviewer) == ("edit", "bug", "cy")
    assert decision.decided_at is not None and decision.decided_at.utcoffset() == timedelta(0)
    assert as_json(restored) == as_json(done)


async def test_a_pydantic_output_resumes_as_its_type_from_a_new_store(store: RunStore) -> None:
    """A review gate after an `Extract`: the stored order is a dict, and the run continued from a
    new store (another process) reads `state["order"].amount` again."""
    pipeline = (
        PipelineBuilder("order_review")
        .add(Extract("order", happy.Order, gate=None))
        .add(Review("check", of="order"), after="order")
        .add(Rule("charge", lambda s: s["order"].amount), after="check")
        .build()
    )
    model = FakeModel({"order": Reply({"order_id": "A-17", "amount": 900.0})})
    record = await Runner(pipeline, model=model, store=store).run("order A-17 for 900")
    assert record.status is RunStatus.NEEDS_REVIEW

    later = SqlStore(store.url) if isinstance(store, SqlStore) else store
    try:
        done = await Runner(pipeline, model=model, store=later).resume(
            record.run_id, ReviewDecision.approve()
        )
    finally:
        if later is not store:
            later.close()  # type: ignore[attr-defined]
    assert done.status is RunStatus.COMPLETED
    assert done.outputs["order"] == happy.Order(order_id="A-17", amount=900.0)
    assert done.outputs["charge"] == 900.0


# --- what only the SQL store promises ------------------------------------------------------------


async def test_list_runs_is_newest_first_and_filters_by_start(sql_store: SqlStore) -> None:
    record = await Runner(branches.pipeline, store=sql_store).run("tiny")
    base = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    for n in range(3):  # the same run saved under other ids, started a day apart
        sql_store.save_run(
            replace(record, run_id=f"run-{n}", started_at=base + timedelta(days=n), steps=())
        )
    listed = [r.run_id for r in sql_store.list_runs()]
    assert listed == [record.run_id, "run-2", "run-1", "run-0"]
    assert [r.run_id for r in sql_store.list_runs(limit=2)] == [record.run_id, "run-2"]
    # `since` compares instants, whatever the time zone it is given in
    paris = timezone(timedelta(hours=1))
    since = datetime(2025, 3, 2, 13, 0, tzinfo=paris)  # 12:00 UTC on the 2nd
    assert [r.run_id for r in sql_store.list_runs(since=since)] == [record.run_id, "run-2", "run-1"]
    assert [r.run_id for r in sql_store.list_runs(since=since, status="completed", limit=5)] == [
        record.run_id,
        "run-2",
        "run-1",
    ]


async def test_list_reviews_is_oldest_first(sql_store: SqlStore) -> None:
    first = pending_id(await paused(sql_store, "first"))
    second = pending_id(await paused(sql_store, "second"))
    assert [r.review_id for r in sql_store.list_reviews()] == [first, second]


async def test_saving_a_step_again_changes_nothing(sql_store: SqlStore) -> None:
    """A recovered workflow replays its steps and saves them again, in any order."""
    record = await Runner(happy.pipeline, model=happy.model(), store=sql_store).run(REFUND)
    before = [as_json(s) for s in sql_store.steps(record.run_id)]

    for step in reversed(record.steps):
        sql_store.save_step(step)
    for step in record.steps:
        sql_store.save_step(step)
    assert [as_json(s) for s in sql_store.steps(record.run_id)] == before

    # the same step again with new figures (a re-executed step) updates it in place
    replayed = replace(record.steps[1], duration_s=9.5)
    sql_store.save_step(replayed)
    after = sql_store.steps(record.run_id)
    assert [s.node for s in after] == ["category", "order", "with_tax", "reply"]
    assert after[1].duration_s == 9.5


async def test_a_new_store_on_the_same_database_sees_everything(sql_store: SqlStore) -> None:
    """What another process (a worker, the CLI) sees after this one stops."""
    record = await paused(sql_store)
    sql_store.close()

    with SqlStore(sql_store.url) as other:  # the test databases have no password to mask
        assert as_json(other.get_run(record.run_id)) == as_json(record)
        assert [r.review_id for r in other.list_reviews()] == [pending_id(record)]
        runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), store=other)
        done = await runner.resume(record.run_id, ReviewDecision.approve())
        assert done.status is RunStatus.COMPLETED


async def test_a_rerun_replaces_the_step_log_and_the_stale_reviews(sql_store: SqlStore) -> None:
    """A failed run is run again under the same id: the old attempt's steps and pending reviews
    must not linger beside the new attempt's."""
    record = await paused(sql_store)
    failed = replace(record, status=RunStatus.FAILED)
    sql_store.save_run(failed)
    assert len(sql_store.list_reviews()) == 1

    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.95), store=sql_store)
    again = await runner.run("doc")  # a failed run is retried under its id
    assert again.run_id == record.run_id
    assert again.status is RunStatus.COMPLETED
    assert [(s.node, s.status) for s in sql_store.steps(record.run_id)] == [
        ("category", StepStatus.COMPLETED),
        ("shout", StepStatus.COMPLETED),
    ]
    assert sql_store.list_reviews(pending_only=False) == []


async def test_a_record_with_no_json_form_is_refused_whole(sql_store: SqlStore) -> None:
    record = await Runner(branches.pipeline, store=sql_store).run("tiny")
    broken = replace(record, run_id="run-broken", outputs={"join": object()})
    with pytest.raises(StoreError, match=r"^cannot store run `run-broken`: .*must be JSON-able"):
        sql_store.save_run(broken)
    assert sql_store.get_run("run-broken") is None
    with pytest.raises(StoreError, match=r"^cannot store step `size` of run `run-x`"):
        sql_store.save_step(replace(record.steps[0], run_id="run-x", output=object()))
    assert sql_store.steps("run-x") == []


def test_repr_and_close(sql_store: SqlStore) -> None:
    assert repr(sql_store).startswith(f"SqlStore('{sql_store.dialect}")
    sql_store.close()
    assert sql_store.list_runs() == []  # a closed store reconnects when used again
