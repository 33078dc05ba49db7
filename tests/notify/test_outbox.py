"""The store writes outbox rows in the transaction of the event they announce: one per (event,
channel), once, and none for an event that was rolled back. SQLite and Postgres."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import event

from handrail import RunStatus
from handrail.core.records import ErrorInfo
from handrail.durable import SqlStore
from handrail.notify import Route

from .helpers import paused

TWO = [Route(channel="ops"), Route(channel="mail", events=frozenset({"run.failed"}))]


async def test_a_saved_review_writes_one_row_per_channel_that_wants_it(db_url: str) -> None:
    with SqlStore(db_url, routes=TWO) as store:
        record = await paused(store)
        store.save_run(record)  # saved again (a replay): announced once all the same
        rows = store.outbox_rows()
    assert record.review is not None
    assert [(r.event, r.channel, r.status, r.attempts) for r in rows] == [
        ("review.waiting", "ops", "pending", 0)
    ]
    assert rows[0].event_id == f"review.waiting:{record.review.review_id}"
    assert rows[0].payload["queue"] == "default"
    assert rows[0].payload["reasons"], "the reasons travel with the event"


async def test_a_rolled_back_save_leaves_no_outbox_row(db_url: str) -> None:
    store = SqlStore(db_url, routes=TWO)
    runs_before = len(store.list_runs())

    def fail_after_outbox(conn, cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO HANDRAIL_OUTBOX"):
            raise RuntimeError("the database went away after the outbox insert")

    event.listen(store._engine, "after_cursor_execute", fail_after_outbox)
    try:
        with pytest.raises(RuntimeError, match="went away"):
            await paused(store)
    finally:
        event.remove(store._engine, "after_cursor_execute", fail_after_outbox)
    assert store.list_reviews() == []
    assert store.outbox_rows() == []
    record = await paused(store)  # the same save, committed: the row is there with the review
    assert [r.review_id for r in store.list_reviews()] == [record.review.review_id]  # type: ignore[union-attr]
    assert len(store.outbox_rows()) == 1
    assert len(store.list_runs()) >= runs_before
    store.close()


async def test_a_run_saved_failed_announces_run_failed_without_its_message(db_url: str) -> None:
    with SqlStore(db_url, routes=TWO) as store:
        record = await paused(store)
        failed = replace(
            record,
            status=RunStatus.FAILED,
            error=ErrorInfo(type="StepFailed", message="the amount Zanzibarquux is wrong"),
            reviews=(),
        )
        store.save_run(failed)
        store.save_run(failed)
        rows = [r for r in store.outbox_rows() if r.event == "run.failed"]
    assert [(r.channel, r.event_id) for r in rows] == [
        ("mail", f"run.failed:{record.run_id}"),
        ("ops", f"run.failed:{record.run_id}"),
    ]
    assert rows[0].payload["error_type"] == "StepFailed"
    assert "error" not in rows[0].payload  # an error message can quote an output


async def test_routes_choose_events_and_queues(sqlite_url: str) -> None:
    routes = [
        Route(channel="supervisors", queues=frozenset({"supervisors"})),
        Route(channel="everything"),
        Route(channel="failures", events=frozenset({"run.failed"})),
    ]
    with SqlStore(sqlite_url, routes=routes) as store:
        await paused(store)
        assert [r.channel for r in store.outbox_rows()] == ["everything"]


async def test_a_store_without_routes_writes_nothing(sqlite_url: str) -> None:
    with SqlStore(sqlite_url) as store:
        await paused(store)
        assert store.outbox_rows() == []


def test_record_event_joins_the_callers_transaction(db_url: str) -> None:
    """What triggers call for `trigger.failed`: in their transaction, so a rolled-back intake
    announces nothing; a repeat of the event id writes nothing more."""
    with SqlStore(db_url, routes=TWO) as store:
        with pytest.raises(RuntimeError), store._writer.begin() as conn:
            store.record_event(
                "trigger.failed",
                event_id="trigger.failed:inbox:1",
                payload={"trigger": "inbox", "error": "IMAP login refused"},
                conn=conn,
            )
            raise RuntimeError("rolled back")
        assert store.outbox_rows() == []
        for _ in range(2):
            wanted = store.record_event(
                "trigger.failed",
                event_id="trigger.failed:inbox:1",
                payload={"trigger": "inbox", "error": "IMAP login refused"},
            )
            assert wanted == 1
        assert [(r.event, r.channel) for r in store.outbox_rows()] == [("trigger.failed", "ops")]
        with pytest.raises(ValueError, match="unknown event"):
            store.record_event("trigger.exploded", event_id="x", payload={})


async def test_remind_due_writes_a_reminder_once_per_deadline(db_url: str) -> None:
    routes = [Route(channel="ops", remind_before=timedelta(minutes=30))]
    with SqlStore(db_url, routes=routes) as store:
        record = await paused(store)
        review = record.reviews[0]
        deadline = review.created_at + timedelta(hours=2)
        store.save_run(replace(record, reviews=(replace(review, deadline=deadline),)))
        assert store.remind_due(deadline - timedelta(hours=1)) == 0  # too early
        assert store.remind_due(deadline - timedelta(minutes=20)) == 1
        assert store.remind_due(deadline - timedelta(minutes=10)) == 1  # a no-op insert
        assert store.remind_due(deadline + timedelta(minutes=1)) == 0  # passed: escalation's
        reminders = [r for r in store.outbox_rows() if r.event == "review.due_soon"]
    assert len(reminders) == 1
    assert reminders[0].event_id == f"review.due_soon:{review.review_id}:{deadline.isoformat()}"


async def test_a_claim_takes_at_most_limit_rows(db_url: str) -> None:
    """A dispatcher holds no more rows than one round sends: the rows it claims but has not
    sent when their lease ends are sent again by another dispatcher. (On Postgres the batch is
    a MATERIALIZED CTE: as a subquery, Postgres ran it again per row and one claim took every
    due row.)"""
    with SqlStore(db_url, routes=[Route(channel="ops")]) as store:
        for n in range(10):
            await paused(store, n)
        at = store.outbox_rows()[-1].next_attempt_at + timedelta(seconds=1)
        claimed = store.claim_outbox(at=at, lease=timedelta(minutes=2), channels=["ops"], limit=3)
    assert len(claimed) == 3
