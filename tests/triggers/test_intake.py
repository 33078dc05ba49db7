"""The one intake path, on SQLite and Postgres: the receipt and the queued run commit together,
a repeat of a key is one run, two takers racing on one key give one run, the same content under
another key points at the same run, and an unreadable document gets a failed run, not silence.
Documents handed in together commit in one transaction, each answered after it; one that fails
there fails alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import select
from tests.pipelines import happy

from handrail import Document
from handrail.core.records import RunStatus
from handrail.durable import schema
from handrail.durable.outbox import Route
from handrail.triggers.intake import Accepted, Intake
from handrail.triggers.state import trigger_states

from .conftest import SPEC, receipts, runs, workflows

TEXT = "Refund please: Order: A-17, amount 100.0"


def test_a_document_is_received_and_queued_once_and_a_repeat_answers_with_its_run(
    intake: Intake,
) -> None:
    first = intake.accept_bytes("http:crm", "order-17", TEXT.encode(), name="order.txt")
    again = intake.accept_bytes("http:crm", "order-17", TEXT.encode(), name="order.txt")

    assert (first.new, first.repeat) == (True, False)
    assert (again.run_id, again.new, again.repeat) == (first.run_id, False, True)
    assert first.run_id == intake._submitter.runner.run_id_for(Document(text=TEXT))
    [receipt] = receipts(intake)
    assert (receipt.source, receipt.key, receipt.pipeline) == ("http:crm", "order-17", "happy")
    assert receipt.detail["name"] == "order.txt" and receipt.detail["size"] == len(TEXT)
    assert TEXT not in str(receipt.detail)
    assert workflows(intake) == 1 and workflows(intake, first.run_id) == 1
    [state] = trigger_states(intake.store)
    assert (state.name, state.kind, state.pipeline) == ("http:crm", "http", "happy")
    assert state.last_pickup_at is not None and state.last_error is None


def test_the_same_content_under_another_key_points_at_the_same_run(intake: Intake) -> None:
    first = intake.accept_bytes("http:crm", "a", TEXT.encode(), name="a.txt")
    other = intake.accept_bytes("http:forms", "b", TEXT.encode(), name="b.txt")

    assert other.run_id == first.run_id
    assert (other.new, other.repeat) == (False, False)
    assert [r.key for r in receipts(intake)] == ["a", "b"]
    assert workflows(intake) == 1


def test_a_failed_commit_leaves_neither_receipt_nor_run_and_the_retry_takes_it(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(conn: Any, job: Any) -> None:
        raise RuntimeError("the queue is gone")

    with monkeypatch.context() as m:
        m.setattr(intake._submitter, "enqueue_in", broken)
        with pytest.raises(RuntimeError, match="the queue is gone"):
            intake.accept_bytes("http:crm", "k", TEXT.encode(), name="k.txt")

    assert receipts(intake) == [] and workflows(intake) == 0
    [state] = trigger_states(intake.store)
    assert state.last_error == "RuntimeError: the queue is gone" and state.last_pickup_at is None
    retried = intake.accept_bytes("http:crm", "k", TEXT.encode(), name="k.txt")
    assert retried.new and len(receipts(intake)) == 1 and workflows(intake) == 1


def test_two_takers_racing_on_the_same_keys_give_one_run_each(db: str) -> None:
    keys = [f"order-{i}" for i in range(6)]
    takers = [Intake(happy.pipeline, db=db, model_spec=SPEC) for _ in range(3)]
    start = threading.Barrier(len(takers))
    answers: list[list[Accepted]] = [[] for _ in takers]
    failures: list[BaseException] = []

    def take(n: int) -> None:
        try:
            start.wait()
            for key in keys:
                data = f"Refund for {key}, amount 10".encode()
                answers[n].append(takers[n].accept_bytes("http:crm", key, data, name="x.txt"))
        except BaseException as e:  # reported below, with the thread's answers
            failures.append(e)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(len(takers))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert failures == []
        for i, _key in enumerate(keys):
            taken = [a[i] for a in answers]
            assert len({a.run_id for a in taken}) == 1
            assert sum(a.new for a in taken) == 1
        assert len(receipts(takers[0])) == len(keys)
        assert workflows(takers[0]) == len(keys)
    finally:
        for taker in takers:
            taker.close()


def test_an_unreadable_document_gets_a_receipt_and_one_failed_run(intake: Intake) -> None:
    broken = b'{"order": "A-17", '
    first = intake.accept_bytes("http:crm", "bad", broken, name="order.json")
    again = intake.accept_bytes("http:crm", "bad", broken, name="order.json")

    assert first.error is not None and "order.json" in first.error
    assert (first.new, again.repeat, again.run_id) == (False, True, first.run_id)
    record = intake.store.get_run(first.run_id)
    assert record is not None and record.status is RunStatus.FAILED
    assert record.error is not None and record.error.type == "InputError"
    assert runs(intake) == 1 and workflows(intake) == 0 and len(receipts(intake)) == 1
    [state] = trigger_states(intake.store)
    assert state.last_error == first.error and state.last_pickup_at is not None


def test_a_document_over_its_size_limit_fails_its_own_run(intake: Intake) -> None:
    from handrail.triggers.intake import TEXT_LIMIT

    accepted = intake.accept_bytes("http:crm", "big", b"a" * (TEXT_LIMIT + 1), name="big.txt")
    assert accepted.error is not None and "5 MB limit" in accepted.error
    record = intake.store.get_run(accepted.run_id)
    assert record is not None and record.status is RunStatus.FAILED


def test_a_taker_that_looked_before_the_winner_committed_loses_on_the_key(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = intake.accept_bytes("http:crm", "k", TEXT.encode(), name="k.txt")
    looks = iter([None])  # the loser's first look saw no receipt yet; its insert then fails
    real = intake.receipt
    monkeypatch.setattr(intake, "receipt", lambda s, k: next(looks, None) or real(s, k))

    loser = intake.accept(
        "http:crm", "k", Document(text="other content, same key"), detail={"name": "k.txt"}
    )

    assert (loser.run_id, loser.new, loser.repeat) == (winner.run_id, False, True)
    assert len(receipts(intake)) == 1 and workflows(intake) == 1  # nothing of the loser committed


def test_with_channels_a_failing_trigger_and_an_unreadable_document_are_announced(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    routes = [Route(channel="ops")]
    with Intake(happy.pipeline, db=db, model_spec=SPEC, routes=routes) as intake:
        with monkeypatch.context() as m:
            m.setattr(intake._submitter, "enqueue_in", _queue_gone)
            with pytest.raises(RuntimeError):
                intake.accept_bytes("http:crm", "k", TEXT.encode(), name="k.txt")
        broken = intake.accept_bytes("http:crm", "bad", b"{not json", name="bad.json")
        assert broken.error is not None
        table = schema.outbox
        with intake.store.reading() as conn:
            rows = conn.execute(select(table).order_by(table.c.event)).all()

    assert [(r.event, r.channel, r.status) for r in rows] == [
        ("run.failed", "ops", "pending"),
        ("trigger.failed", "ops", "pending"),
    ]
    failed, trigger = rows
    assert failed.payload["run_id"] == broken.run_id
    assert trigger.event_id == "trigger.failed:http:crm:k"
    assert trigger.payload == {
        "trigger": "http:crm",
        "pipeline": "happy",
        "key": "k",
        "error": "RuntimeError: the queue is gone",
    }


def _queue_gone(conn: Any, job: Any) -> None:
    raise RuntimeError("the queue is gone")


# --- documents handed in together ----------------------------------------------------------


class Held:
    """The intake's writer, made to hold its first transaction (the first document's, alone)
    until `waiting` more documents were handed to it: those then commit as one group."""

    def __init__(
        self,
        intake: Intake,
        monkeypatch: pytest.MonkeyPatch,
        waiting: int,
        refuse: Callable[[str], bool] = lambda run_id: False,
    ) -> None:
        self.intake = intake
        self.holding = threading.Event()
        self.commits = 0
        """Transactions committed by the writer (and by noting errors)."""
        real_enqueue, real_transaction = intake._submitter.enqueue_in, intake.store.transaction

        def enqueue_in(conn: Any, job: Any) -> None:
            if not self.holding.is_set():
                self.holding.set()
                deadline = time.monotonic() + 30
                while intake._writer._queue.qsize() < waiting and time.monotonic() < deadline:
                    time.sleep(0.01)
            if refuse(job.run_id):
                raise RuntimeError("the queue refused it")
            real_enqueue(conn, job)

        @contextmanager
        def transaction() -> Iterator[Any]:
            with real_transaction() as conn:
                yield conn
            self.commits += 1

        monkeypatch.setattr(intake._submitter, "enqueue_in", enqueue_in)
        monkeypatch.setattr(intake.store, "transaction", transaction)

    def take(self, deliveries: list[tuple[str, str]]) -> list[Any]:
        """Each (key, text) handed to `accept_bytes` by a thread of its own: the first one, and
        once the writer holds it, the others at once. Each one's answer, or what it raised."""
        found: list[Any] = [None] * len(deliveries)

        def take(i: int, key: str, text: str) -> None:
            try:
                found[i] = self.intake.accept_bytes(
                    "http:crm", key, text.encode(), name=f"{key}.txt"
                )
            except Exception as e:  # the caller's to see
                found[i] = e

        threads = [
            threading.Thread(target=take, args=(i, key, text))
            for i, (key, text) in enumerate(deliveries)
        ]
        threads[0].start()
        assert self.holding.wait(30)
        for thread in threads[1:]:
            thread.start()
        for thread in threads:
            thread.join()
        return found


def test_documents_handed_in_together_commit_in_one_transaction(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = Held(intake, monkeypatch, waiting=5)

    answers = held.take([(f"k{i}", f"Order: A-{i}, amount {i}") for i in range(6)])

    assert [(a.new, a.repeat, a.error) for a in answers] == [(True, False, None)] * 6
    assert len({a.run_id for a in answers}) == 6
    assert len(receipts(intake)) == 6 and workflows(intake) == 6
    assert held.commits == 2  # the first alone; the five handed in meanwhile, together
    [state] = trigger_states(intake.store)
    assert state.last_pickup_at is not None and state.last_error is None


def test_a_document_that_fails_in_a_group_fails_alone(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    poison = intake._submitter.runner.run_id_for(Document(text="Order: P-1, amount 1"))
    held = Held(intake, monkeypatch, waiting=4, refuse=lambda run_id: run_id == poison)
    deliveries = [(f"k{i}", f"Order: A-{i}, amount {i}") for i in range(4)]

    answers = held.take([*deliveries, ("p", "Order: P-1, amount 1")])

    *taken, refused = answers
    assert isinstance(refused, RuntimeError) and "refused" in str(refused)
    assert all(a.new for a in taken)
    assert sorted(r.key for r in receipts(intake)) == ["k0", "k1", "k2", "k3"]
    assert workflows(intake) == 4 and workflows(intake, poison) == 0
    [state] = trigger_states(intake.store)
    assert state.last_error == "RuntimeError: the queue refused it"
    monkeypatch.undo()
    again = intake.accept_bytes("http:crm", "p", b"Order: P-1, amount 1", name="p.txt")
    assert (again.run_id, again.new) == (poison, True) and workflows(intake) == 5


def test_one_key_twice_in_a_group_is_one_run_and_a_repeat(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, *twice = Held(intake, monkeypatch, waiting=2).take(
        [("k", "Order: A-1"), ("dup", TEXT), ("dup", TEXT)]
    )

    assert first.new
    assert sorted((a.new, a.repeat) for a in twice) == [(False, True), (True, False)]
    assert twice[0].run_id == twice[1].run_id
    assert sorted(r.key for r in receipts(intake)) == ["dup", "k"] and workflows(intake) == 2


def test_one_content_under_two_keys_in_a_group_is_one_new_run(
    intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, *same = Held(intake, monkeypatch, waiting=2).take(
        [("k", "Order: A-1"), ("a", TEXT), ("b", TEXT)]
    )

    assert first.new and same[0].run_id == same[1].run_id
    assert sorted((a.new, a.repeat) for a in same) == [(False, False), (True, False)]
    assert len(receipts(intake)) == 3 and workflows(intake) == 2
