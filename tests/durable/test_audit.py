"""The audit trail: written with the decision or not at all, one row per decision under races,
append-only in the database, and a hash chain that names the first row someone changed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from tests.durable.test_people import T0, pending, sql

from handrail import ReviewAlreadyDecided, ReviewDecision
from handrail.durable import AuditCheck, SqlStore, StoreError
from handrail.durable.audit import GENESIS, changed_fields, entry_hash

INVOICE = {"vendor": "Acme", "total": 10.0, "lines": [{"amount": 5}, {"amount": 5}]}


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    with SqlStore(url) as opened:
        yield opened


def postgres(url: str) -> bool:
    return url.startswith("postgresql")


def drop_append_only(url: str) -> None:
    """What someone with the database's owner rights can do before editing the trail."""
    if postgres(url):
        sql(url, "DROP TRIGGER handrail_audit_no_change ON handrail_audit")
    else:
        sql(url, "DROP TRIGGER handrail_audit_no_update")
        sql(url, "DROP TRIGGER handrail_audit_no_delete")


# --- what a decision writes ----------------------------------------------------------------------


def test_a_decision_writes_one_audit_row_saying_what_was_done(store: SqlStore) -> None:
    pending(store, "rv-1", queue="invoices", output=INVOICE)
    corrected = {"vendor": "ACME Ltd", "total": 10, "lines": [{"amount": 5}, {"amount": 5.5}]}
    at = datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=UTC)
    store.record_decision(
        "rv-1", ReviewDecision.edit(corrected, reviewer="ann", reason="typo", decided_at=at)
    )
    [entry] = store.audit_entries()
    assert (entry.seq, entry.at, entry.actor, entry.action) == (1, at, "ann", "decide")
    assert (entry.review_id, entry.run_id, entry.queue) == ("rv-1", "run-rv-1", "invoices")
    assert entry.detail == {
        "action": "edit",
        "reason": "typo",
        "queue": "invoices",
        # total 10.0 -> 10 is the same number: not a change
        "changed": {"vendor": ["Acme", "ACME Ltd"], "lines.1.amount": [5, 5.5]},
    }
    assert entry.prev_hash == GENESIS
    assert entry.hash == entry_hash(
        seq=1,
        at=at,
        actor="ann",
        action="decide",
        review_id="rv-1",
        run_id="run-rv-1",
        queue="invoices",
        detail=entry.detail,
        prev_hash=GENESIS,
    )

    pending(store, "rv-2")
    store.record_decision("rv-2", ReviewDecision.reject("not ours"))  # nobody named
    second = store.audit_entries(review_id="rv-2")[0]
    assert (second.actor, second.detail) == (
        "unknown",
        {"action": "reject", "reason": "not ours", "queue": "default"},
    )
    assert second.prev_hash == entry.hash
    assert store.verify_audit() == AuditCheck(ok=True, rows=2, first_bad=None, problem=None)


def test_a_second_decision_names_who_decided_when_and_how(store: SqlStore) -> None:
    pending(store, "rv-1")
    at = datetime(2026, 3, 2, 11, 5, tzinfo=UTC)
    store.record_decision("rv-1", ReviewDecision.approve(reviewer="ann", decided_at=at))
    with pytest.raises(ReviewAlreadyDecided) as info:
        store.record_decision("rv-1", ReviewDecision.reject("late", reviewer="bob"))
    assert (info.value.by, info.value.at, info.value.action) == ("ann", at, "approve")
    assert str(info.value).startswith("review `rv-1` was already decided (approve by ann); ")
    assert len(store.audit_entries()) == 1  # the loser wrote nothing


def block_audit_inserts(url: str) -> None:
    if postgres(url):
        sql(
            url,
            "CREATE FUNCTION block_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'audit insert blocked by the test'; END $$",
        )
        sql(
            url,
            "CREATE TRIGGER block_audit BEFORE INSERT ON handrail_audit "
            "FOR EACH ROW EXECUTE FUNCTION block_audit()",
        )
    else:
        sql(
            url,
            "CREATE TRIGGER block_audit BEFORE INSERT ON handrail_audit "
            "BEGIN SELECT RAISE(ABORT, 'audit insert blocked by the test'); END",
        )


def test_a_decision_whose_audit_row_fails_is_not_recorded(store: SqlStore, url: str) -> None:
    review = pending(store, "rv-1")
    store.claim("rv-1", "ann", lease=timedelta(minutes=15))
    block_audit_inserts(url)

    with pytest.raises(StoreError, match="audit insert blocked by the test"):
        store.record_decision("rv-1", ReviewDecision.approve(reviewer="ann"))
    assert store.get_review("rv-1").status == "pending"  # type: ignore[union-attr]
    assert store.get_decision("rv-1") is None
    assert store.get_claim("rv-1") is not None  # the claim's end rolled back too
    moved = replace(review, queue="leads", deadline=None, escalated_at=T0, escalation="moved")
    with pytest.raises(StoreError, match="audit insert blocked by the test"):
        store.escalate_review(moved)
    assert sql(url, "SELECT queue, escalated FROM handrail_reviews") == [("default", False)]

    sql(url, "DROP TRIGGER block_audit" + (" ON handrail_audit" if postgres(url) else ""))
    assert store.record_decision("rv-1", ReviewDecision.approve(reviewer="ann")).status == "decided"
    assert [e.action for e in store.audit_entries()] == ["claim", "decide"]


def test_threads_racing_on_a_review_leave_one_decision_and_one_audit_row(url: str) -> None:
    with SqlStore(url) as store:
        pending(store, "rv-1")
        stores = [SqlStore(url) for _ in range(8)]  # connections of their own, like processes
        barrier = threading.Barrier(8)
        outcomes: list[Any] = []

        def decide(i: int) -> None:
            barrier.wait()
            try:
                stores[i].record_decision("rv-1", ReviewDecision.approve(reviewer=f"r{i}"))
                outcomes.append(f"r{i}")
            except BaseException as e:
                outcomes.append(e)

        threads = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in stores:
            s.close()
        won = [o for o in outcomes if isinstance(o, str)]
        lost = [o for o in outcomes if not isinstance(o, str)]
        assert len(won) == 1 and len(lost) == 7
        assert all(isinstance(e, ReviewAlreadyDecided) and e.by == won[0] for e in lost)
        [entry] = store.audit_entries()
        assert (entry.actor, entry.action, entry.review_id) == (won[0], "decide", "rv-1")
        assert store.verify_audit().ok


def test_concurrent_appends_keep_one_unbroken_chain(url: str) -> None:
    stores = [SqlStore(url) for _ in range(4)]
    barrier = threading.Barrier(4)

    def append(i: int) -> None:
        barrier.wait()
        for n in range(10):
            stores[i].append_audit(actor=f"w{i}", action="note", detail={"n": n})

    threads = [threading.Thread(target=append, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        entries = stores[0].audit_entries()
        assert [e.seq for e in entries] == list(range(1, 41))
        assert stores[0].verify_audit() == AuditCheck(
            ok=True, rows=40, first_bad=None, problem=None
        )
    finally:
        for s in stores:
            s.close()


def test_a_decision_after_the_server_dropped_the_connections_writes_one_row(
    fresh_postgres_url: str,
) -> None:
    url = fresh_postgres_url
    with SqlStore(url) as store:
        pending(store, "rv-1")
        store.get_review("rv-1")  # the pool holds a connection now...
        [(cut,)] = sql(  # ...which a server restart would cut
            url,
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'handrail' AND pid <> pg_backend_pid()",
        )
        assert cut >= 1
        store.record_decision("rv-1", ReviewDecision.approve(reviewer="ann"))
        assert [(e.actor, e.action) for e in store.audit_entries()] == [("ann", "decide")]
        assert store.verify_audit().ok


def test_an_escalation_writes_its_audit_row(store: SqlStore) -> None:
    review = pending(store, "rv-1", queue="invoices", deadline=T0)
    note = "deadline 2026-03-02 09:00:00 UTC passed: moved from queue `invoices` to `leads`"
    moved = replace(review, queue="leads", deadline=None, escalated_at=T0, escalation=note)
    assert store.escalate_review(moved) is True
    [entry] = store.audit_entries()
    assert (entry.at, entry.actor, entry.action, entry.queue) == (
        T0,
        "handrail (deadline)",
        "escalate",
        "leads",
    )
    assert entry.detail == {"from": "invoices", "to": "leads", "reason": note}
    store.record_decision("rv-1", ReviewDecision.approve(reviewer="ann"))
    assert store.escalate_review(moved) is False  # decided meanwhile: nothing written
    assert [e.action for e in store.audit_entries()] == ["escalate", "decide"]


# --- append-only, and the chain ------------------------------------------------------------------


def test_the_database_refuses_to_change_or_delete_audit_rows(store: SqlStore, url: str) -> None:
    store.append_audit(actor="cli", action="note", detail={"n": 1})
    for statement in ("UPDATE handrail_audit SET actor = 'eve'", "DELETE FROM handrail_audit"):
        with pytest.raises(sa.exc.DBAPIError, match="handrail_audit is append-only"):
            sql(url, statement)
    if postgres(url):
        with pytest.raises(sa.exc.DBAPIError, match="handrail_audit is append-only"):
            sql(url, "TRUNCATE handrail_audit")
    assert [e.actor for e in store.audit_entries()] == ["cli"]


def three_rows(store: SqlStore) -> None:
    for n in (1, 2, 3):
        store.append_audit(actor="ann", action="note", review_id=f"rv-{n}", detail={"n": n})
    assert store.verify_audit() == AuditCheck(ok=True, rows=3, first_bad=None, problem=None)


def test_verify_names_the_row_that_was_edited(store: SqlStore, url: str) -> None:
    three_rows(store)
    drop_append_only(url)
    sql(url, "UPDATE handrail_audit SET detail = :d WHERE seq = 2", d='{"n":20}')
    check = store.verify_audit()
    assert (check.ok, check.rows, check.first_bad) == (False, 1, 2)
    assert check.problem is not None
    assert check.problem.startswith("audit row 2: its contents do not match its hash")
    assert check.problem.endswith("it was changed after it was written")


def test_verify_names_a_row_rewritten_with_a_fresh_hash(store: SqlStore, url: str) -> None:
    three_rows(store)
    row = store.audit_entries()[1]
    forged = entry_hash(
        seq=2,
        at=row.at,
        actor="eve",
        action=row.action,
        review_id=row.review_id,
        run_id=row.run_id,
        queue=row.queue,
        detail=row.detail,
        prev_hash=row.prev_hash,
    )
    drop_append_only(url)
    sql(url, "UPDATE handrail_audit SET actor = 'eve', hash = :h WHERE seq = 2", h=forged)
    check = store.verify_audit()
    assert (check.ok, check.first_bad) == (False, 3)  # row 2 checks out; row 3 no longer links
    assert check.problem is not None
    assert check.problem.startswith("audit row 3: prev_hash ")
    assert "does not match the hash of row 2" in check.problem


def test_verify_names_a_deleted_row(store: SqlStore, url: str) -> None:
    three_rows(store)
    drop_append_only(url)
    sql(url, "DELETE FROM handrail_audit WHERE seq = 2")
    assert store.verify_audit() == AuditCheck(
        ok=False, rows=1, first_bad=3, problem="audit row 3 follows row 1: row 2 missing"
    )


def test_audit_entries_filter_and_page(store: SqlStore) -> None:
    pending(store, "rv-1")
    store.claim("rv-1", "ann", lease=timedelta(minutes=15))
    store.append_audit(actor="bob", action="note", review_id="rv-1", detail={"text": "é ✓"})
    store.record_decision("rv-1", ReviewDecision.approve(reviewer="ann"))
    everything = store.audit_entries()
    assert [(e.seq, e.actor, e.action) for e in everything] == [
        (1, "ann", "claim"),
        (2, "bob", "note"),
        (3, "ann", "decide"),
    ]
    assert everything[1].detail == {"text": "é ✓"}
    assert [e.seq for e in store.audit_entries(actor="ann")] == [1, 3]
    assert [e.seq for e in store.audit_entries(action="note")] == [2]
    assert [e.seq for e in store.audit_entries(review_id="rv-1", after_seq=1, limit=1)] == [2]
    assert store.audit_entries(review_id="rv-2") == []
    second = everything[1].at
    assert [e.seq for e in store.audit_entries(since=second)] == [2, 3]
    assert [e.seq for e in store.audit_entries(until=second)] == [1]
    assert store.append_audit(actor="x", action="y").seq == 4


def test_an_entry_reads_back_as_it_was_appended(store: SqlStore) -> None:
    appended = store.append_audit(
        actor="ann", action="note", run_id="run-1", queue="q", detail={"list": (1, 2), "n": None}
    )
    assert appended.detail == {"list": [1, 2], "n": None}  # as JSON keeps it
    assert store.audit_entries() == [appended]
    assert store.verify_audit().ok


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        ({"a": 1, "b": {"c": "x"}}, {"a": 1, "b": {"c": "y"}}, {"b.c": ["x", "y"]}),
        ({"a": 1}, {"a": 1.0}, {}),
        ({"a": 1}, {"a": True}, {"a": [1, True]}),
        ({"a": 1}, {"a": 1, "b": 2}, {"b": [None, 2]}),
        ({"lines": [{"x": 1}]}, {"lines": [{"x": 1}, {"x": 2}]}, {"lines.1.x": [None, 2]}),
        ({"lines": [1, 2]}, {"lines": [1]}, {"lines.1": [2, None]}),
        ({"a": None}, {"a": {"b": 1}}, {"a.b": [None, 1]}),
        ({"a": []}, {"a": None}, {"a": [[], None]}),
        ("bug", "refund", {"$": ["bug", "refund"]}),
        ("bug", "bug", {}),
    ],
)
def test_changed_fields_lists_the_leaves_that_differ(
    before: Any, after: Any, changed: dict[str, Any]
) -> None:
    assert changed_fields(before, after) == changed
