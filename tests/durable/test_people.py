"""Reviewers, sessions, claims and the inbox query of `SqlStore`, on a SQLite file and on a real
PostgreSQL server. The helpers at the top (`paused_record`, `pending`, `sql`) are shared with
test_audit.py and test_schema_v2.py."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
import sqlalchemy as sa
from tests.pipelines import low_confidence

from handrail import (
    InMemoryStore,
    InputError,
    ReviewAlreadyDecided,
    ReviewClaimed,
    ReviewDecision,
    ReviewNotFound,
    ReviewRequest,
    Runner,
    RunRecord,
    SignInFailed,
)
from handrail.durable import Claim, Reviewer, SqlStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@cache
def paused_record() -> RunRecord:
    """One real paused run (low_confidence), the template for the reviews the tests need."""
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), store=InMemoryStore())
    record = asyncio.run(runner.run("doc"))
    assert record.review is not None
    return record


def pending(
    store: SqlStore,
    review_id: str,
    *,
    queue: str = "default",
    created_at: datetime = T0,
    deadline: datetime | None = None,
    escalated: bool = False,
    output: Any = None,
) -> ReviewRequest:
    """Save a paused run of its own waiting on one review with these properties."""
    base = paused_record()
    assert base.review is not None
    review = replace(
        base.review,
        review_id=review_id,
        run_id=f"run-{review_id}",
        queue=queue,
        created_at=created_at,
        deadline=deadline,
        escalated_at=created_at if escalated else None,
        output=base.review.output if output is None else output,
    )
    store.save_run(replace(base, run_id=review.run_id, steps=(), reviews=(review,)))
    return review


def sql(url: str, statement: str, **params: Any) -> list[tuple[Any, ...]]:
    """Run one statement on the database with a connection of its own; the rows it returns."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            result = conn.execute(sa.text(statement), params)
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    return str(
        request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "fresh_postgres_url")
    )


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    with SqlStore(url) as opened:
        yield opened


def actions(store: SqlStore) -> list[tuple[str, str]]:
    return [(e.actor, e.action) for e in store.audit_entries()]


# --- reviewers -----------------------------------------------------------------------------------


def test_reviewers_are_added_listed_found_by_token_and_removed(store: SqlStore, url: str) -> None:
    ann = store.add_reviewer(
        "ann", queues=["invoices", "claims"], lead=False, token_hash="a" * 64, actor="cli"
    )
    store.add_reviewer("bob", queues=["*"], lead=True, token_hash="b" * 64, actor="cli")
    assert ann.queues == ("invoices", "claims") and not ann.lead and not ann.disabled
    assert store.get_reviewer("ann") == ann
    assert [r.name for r in store.list_reviewers()] == ["ann", "bob"]
    assert store.reviewer_by_token("b" * 64) == Reviewer(
        name="bob",
        queues=("*",),
        lead=True,
        created_at=store.get_reviewer("bob").created_at,  # type: ignore[union-attr]
    )
    assert store.reviewer_by_token("c" * 64) is None and store.get_reviewer("cy") is None

    with pytest.raises(InputError) as info:
        store.add_reviewer("ann", queues=["x"], lead=True, token_hash="d" * 64, actor="cli")
    assert str(info.value) == (
        "reviewer `ann` already exists; to replace them (new queues or a new token), remove them "
        "first: `handrail reviewers remove ann`"
    )
    assert store.get_reviewer("ann") == ann  # unchanged

    store.create_session("s" * 64, reviewer="ann", csrf="tok", expires_at=T0 + timedelta(days=9999))
    assert store.remove_reviewer("ann", actor="bob") is True
    assert store.remove_reviewer("ann", actor="bob") is False
    assert store.get_reviewer("ann") is None and store.reviewer_by_token("a" * 64) is None
    assert store.get_session("s" * 64) is None
    assert sql(url, "SELECT count(*) FROM handrail_sessions") == [(0,)]
    assert actions(store) == [
        ("cli", "reviewer_added"),
        ("cli", "reviewer_added"),
        ("ann", "sign_in"),
        ("bob", "reviewer_removed"),
    ]
    added = store.audit_entries(action="reviewer_added")[0]
    assert added.detail == {"reviewer": "ann", "queues": ["invoices", "claims"], "lead": False}
    removed = store.audit_entries(action="reviewer_removed")[0]
    assert removed.detail == {"reviewer": "ann", "sessions_ended": 1, "claims_dropped": 0}
    # the name is free again
    assert store.add_reviewer(
        "ann", queues=["x"], lead=False, token_hash="e" * 64, actor="cli"
    ).queues == ("x",)


def test_no_token_or_session_hash_reaches_the_audit_trail(store: SqlStore, url: str) -> None:
    store.add_reviewer("ann", queues=["a"], lead=False, token_hash="f" * 64, actor="cli")
    store.create_session(
        "9" * 64, reviewer="ann", csrf="csrf-secret", expires_at=T0 + timedelta(days=9999)
    )
    store.delete_session("9" * 64)
    store.remove_reviewer("ann", actor="cli")
    text = " ".join(str(row) for row in sql(url, "SELECT * FROM handrail_audit"))
    assert "f" * 64 not in text and "9" * 64 not in text and "csrf-secret" not in text


def test_a_disabled_reviewer_cannot_sign_in(store: SqlStore, url: str) -> None:
    store.add_reviewer("ann", queues=["a"], lead=False, token_hash="a" * 64, actor="cli")
    store.create_session("s" * 64, reviewer="ann", csrf="c", expires_at=T0 + timedelta(days=9999))
    sql(url, "UPDATE handrail_reviewers SET disabled_at = :at WHERE name = 'ann'", at=T0)
    assert store.get_reviewer("ann").disabled  # type: ignore[union-attr]
    assert store.reviewer_by_token("a" * 64) is None
    assert store.get_session("s" * 64) is None


# --- sessions ------------------------------------------------------------------------------------


def test_sessions_live_until_they_expire_and_end_on_sign_out(store: SqlStore, url: str) -> None:
    ann = store.add_reviewer("ann", queues=["a"], lead=False, token_hash="a" * 64, actor="cli")
    expires = datetime.now(UTC) + timedelta(hours=12)
    store.create_session("1" * 64, reviewer="ann", csrf="csrf-1", expires_at=expires)
    assert store.get_session("1" * 64) == (ann, "csrf-1")
    assert store.get_session("1" * 64, at=expires - timedelta(seconds=1)) == (ann, "csrf-1")
    assert store.get_session("1" * 64, at=expires) is None  # expired
    assert store.get_session("2" * 64) is None  # unknown

    store.create_session("3" * 64, reviewer="ann", csrf="csrf-3", expires_at=T0)  # already over
    store.create_session("4" * 64, reviewer="ann", csrf="csrf-4", expires_at=expires)
    # creating a session forgets the expired ones
    assert sorted(sql(url, "SELECT session_hash FROM handrail_sessions")) == [
        ("1" * 64,),
        ("4" * 64,),
    ]

    store.delete_session("1" * 64)
    store.delete_session("1" * 64)  # again: nothing to do, no second audit row
    assert store.get_session("1" * 64) is None
    assert store.get_session("4" * 64) == (ann, "csrf-4")
    assert actions(store).count(("ann", "sign_out")) == 1
    assert actions(store).count(("ann", "sign_in")) == 3
    [signed_in, *_] = store.audit_entries(action="sign_in")
    assert signed_in.detail == {"expires_at": expires.isoformat(timespec="microseconds")}


def test_a_session_for_a_reviewer_who_is_gone_is_refused(store: SqlStore) -> None:
    with pytest.raises(SignInFailed) as info:
        store.create_session("1" * 64, reviewer="ghost", csrf="c", expires_at=T0)
    assert str(info.value) == (
        "reviewer `ghost` does not exist (removed?); sign in with the token of a current "
        "reviewer (`handrail reviewers list`)"
    )
    assert store.audit_entries() == []


# --- claims --------------------------------------------------------------------------------------


def test_a_claim_is_a_lease_only_its_holder_renews(store: SqlStore) -> None:
    pending(store, "rv-1")
    lease = timedelta(minutes=15)
    first = store.claim("rv-1", "ann", lease=lease, at=T0)
    assert first == Claim(review_id="rv-1", reviewer="ann", claimed_at=T0, until=T0 + lease)
    assert store.get_claim("rv-1", at=T0 + timedelta(minutes=14)) == first
    assert store.get_claim("rv-1", at=T0 + lease) is None  # lapsed

    with pytest.raises(ReviewClaimed) as info:
        store.claim("rv-1", "bob", lease=lease, at=T0 + timedelta(minutes=5))
    assert (info.value.by, info.value.until) == ("ann", T0 + lease)
    assert str(info.value) == (
        "review `rv-1` is claimed by ann until 2026-03-02 09:15:00 UTC; pick another review, "
        "or ask ann to release it"
    )

    renewed = store.claim("rv-1", "ann", lease=lease, at=T0 + timedelta(minutes=10))
    assert renewed == Claim(
        review_id="rv-1", reviewer="ann", claimed_at=T0, until=T0 + timedelta(minutes=25)
    )
    assert store.get_claim("rv-1", at=T0 + timedelta(minutes=20)) == renewed
    assert actions(store) == [("ann", "claim")]  # renewing writes no audit row

    # once it lapses, anyone may claim it
    taken = store.claim("rv-1", "bob", lease=lease, at=T0 + timedelta(minutes=30))
    assert taken.reviewer == "bob" and taken.claimed_at == T0 + timedelta(minutes=30)
    entry = store.audit_entries(action="claim")[-1]
    assert (entry.actor, entry.review_id, entry.run_id, entry.queue) == (
        "bob",
        "rv-1",
        "run-rv-1",
        "default",
    )
    assert entry.detail == {"until": "2026-03-02T09:45:00.000000+00:00", "lapsed_claim_of": "ann"}


def test_reviewers_claiming_one_review_at_once_get_one_claim(url: str) -> None:
    with SqlStore(url) as store:
        pending(store, "rv-1")
        stores = [SqlStore(url) for _ in range(6)]  # connections of their own, like processes
        barrier = threading.Barrier(6)
        outcomes: list[Any] = []

        def claim(i: int) -> None:
            barrier.wait()
            try:
                outcomes.append(stores[i].claim("rv-1", f"r{i}", lease=timedelta(minutes=15)))
            except BaseException as e:
                outcomes.append(e)

        threads = [threading.Thread(target=claim, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in stores:
            s.close()
        [won] = [o for o in outcomes if isinstance(o, Claim)]
        lost = [o for o in outcomes if not isinstance(o, Claim)]
        assert len(lost) == 5
        assert all(isinstance(e, ReviewClaimed) and e.by == won.reviewer for e in lost)
        assert store.get_claim("rv-1") == won
        assert actions(store) == [(won.reviewer, "claim")]


def test_releasing_a_claim(store: SqlStore) -> None:
    pending(store, "rv-1", queue="invoices")
    store.claim("rv-1", "ann", lease=timedelta(minutes=15))
    assert store.release("rv-1", "bob") is False  # not bob's
    assert store.get_claim("rv-1") is not None
    assert store.release("rv-1", "ann") is True
    assert store.get_claim("rv-1") is None
    assert store.release("rv-1", "ann") is False  # nothing left

    store.claim("rv-1", "ann", lease=timedelta(minutes=15))
    assert store.release("rv-1", "lead", force=True) is True
    assert store.get_claim("rv-1") is None
    releases = store.audit_entries(action="release")
    assert [(e.actor, e.queue, e.detail) for e in releases] == [
        ("ann", "invoices", {"claimed_by": "ann"}),
        ("lead", "invoices", {"claimed_by": "ann", "forced": True}),
    ]

    store.claim("rv-1", "ann", lease=timedelta(minutes=15), at=T0)  # long lapsed
    assert store.release("rv-1", "ann") is False
    assert len(store.audit_entries(action="release")) == 2


def test_claims_on_unknown_and_decided_reviews_are_refused(store: SqlStore) -> None:
    with pytest.raises(ReviewNotFound, match="no review `rv-x`"):
        store.claim("rv-x", "ann", lease=timedelta(minutes=15))
    pending(store, "rv-1")
    decided_at = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    store.record_decision(
        "rv-1", ReviewDecision.reject("dup", reviewer="bob", decided_at=decided_at)
    )
    with pytest.raises(ReviewAlreadyDecided) as info:
        store.claim("rv-1", "ann", lease=timedelta(minutes=15))
    assert (info.value.by, info.value.at, info.value.action) == ("bob", decided_at, "reject")


def test_a_decision_ends_the_claim_and_a_dropped_review_takes_its_claim_along(
    store: SqlStore, url: str
) -> None:
    pending(store, "rv-1")
    store.claim("rv-1", "ann", lease=timedelta(minutes=15))
    store.record_decision("rv-1", ReviewDecision.approve(reviewer="ann"))
    assert store.get_claim("rv-1") is None

    review = pending(store, "rv-2")
    store.claim("rv-2", "ann", lease=timedelta(minutes=15))
    store.save_run(replace(paused_record(), run_id=review.run_id, steps=(), reviews=()))
    assert store.get_review("rv-2") is None
    assert sql(url, "SELECT count(*) FROM handrail_claims") == [(0,)]


# --- the inbox -----------------------------------------------------------------------------------


def minutes(n: int) -> datetime:
    return T0 + timedelta(minutes=n)


@pytest.fixture
def inbox(store: SqlStore) -> SqlStore:
    """Six pending reviews in three queues (one escalated into `leads`), one decided."""
    pending(store, "rv-a1", queue="a", created_at=minutes(1), deadline=minutes(100))
    pending(store, "rv-a2", queue="a", created_at=minutes(2))
    pending(store, "rv-b1", queue="b", created_at=minutes(3), deadline=minutes(50))
    pending(store, "rv-a3", queue="a", created_at=minutes(4), deadline=minutes(30))
    pending(store, "rv-l1", queue="leads", created_at=minutes(5), escalated=True)
    pending(store, "rv-b2", queue="b", created_at=minutes(6))
    pending(store, "rv-done", queue="a", created_at=minutes(0))
    store.record_decision("rv-done", ReviewDecision.approve(reviewer="ann"))
    return store


def ids(page: tuple[list[Any], int]) -> tuple[list[str], int]:
    rows, total = page
    return [row.request.review_id for row in rows], total


def test_the_inbox_filters_by_queue_and_escalation(inbox: SqlStore) -> None:
    everything = ["rv-a1", "rv-a2", "rv-b1", "rv-a3", "rv-l1", "rv-b2"]
    assert ids(inbox.inbox()) == (everything, 6)
    assert ids(inbox.inbox(queues=["*"])) == (everything, 6)
    assert ids(inbox.inbox(queues=["a"])) == (["rv-a1", "rv-a2", "rv-a3"], 3)
    assert ids(inbox.inbox(queues={"b", "nope"})) == (["rv-b1", "rv-b2"], 2)
    assert ids(inbox.inbox(queues=["b"], escalated_too=True)) == (["rv-b1", "rv-l1", "rv-b2"], 3)
    assert ids(inbox.inbox(queues=[], escalated_too=True)) == (["rv-l1"], 1)
    assert ids(inbox.inbox(queues=[])) == ([], 0)
    [row], _ = inbox.inbox(queues=["leads"])
    assert row.request.queue == "leads" and row.request.escalated_at == minutes(5)
    assert row.request.status == "pending" and row.claim is None
    assert inbox.queue_counts() == {"a": 3, "b": 2, "leads": 1}
    assert inbox.queue_counts(queues=["b"], escalated_too=True) == {"b": 2, "leads": 1}
    assert inbox.queue_counts(queues=[]) == {}


def test_the_inbox_sorts_by_age_or_deadline_and_pages(inbox: SqlStore) -> None:
    by_deadline = ["rv-a3", "rv-b1", "rv-a1", "rv-a2", "rv-l1", "rv-b2"]  # none last, then age
    assert ids(inbox.inbox(sort="deadline")) == (by_deadline, 6)
    assert ids(inbox.inbox(sort="deadline", offset=2, limit=3)) == (by_deadline[2:5], 6)
    assert ids(inbox.inbox(offset=4, limit=10)) == (["rv-l1", "rv-b2"], 6)
    assert ids(inbox.inbox(offset=10)) == ([], 6)
    assert ids(inbox.inbox(overdue_at=minutes(50))) == (["rv-b1", "rv-a3"], 2)
    assert ids(inbox.inbox(overdue_at=minutes(50), queues=["a"], sort="deadline")) == (["rv-a3"], 1)


def test_the_inbox_shows_live_claims_and_filters_by_claimer(inbox: SqlStore) -> None:
    lease = timedelta(minutes=15)
    inbox.claim("rv-a2", "ann", lease=lease, at=minutes(10))
    inbox.claim("rv-b1", "ann", lease=lease, at=minutes(20))
    inbox.claim("rv-a3", "bob", lease=lease, at=minutes(10))
    at = minutes(24)  # every claim is live (rv-a2's and rv-a3's lapse at minute 25)
    rows, total = inbox.inbox(at=at)
    claims = {row.request.review_id: row.claim for row in rows}
    assert total == 6
    assert claims["rv-a2"] == Claim(
        review_id="rv-a2", reviewer="ann", claimed_at=minutes(10), until=minutes(25)
    )
    assert claims["rv-a1"] is None
    assert ids(inbox.inbox(claimed_by="ann", at=at)) == (["rv-a2", "rv-b1"], 2)
    assert ids(inbox.inbox(claimed_by="ann", queues=["b"], at=at)) == (["rv-b1"], 1)
    later = minutes(30)  # rv-a2's and rv-a3's claims have lapsed
    assert ids(inbox.inbox(claimed_by="ann", at=later)) == (["rv-b1"], 1)
    assert ids(inbox.inbox(claimed_by="bob", at=later)) == ([], 0)
    rows, _ = inbox.inbox(at=later)
    assert {r.request.review_id for r in rows if r.claim is not None} == {"rv-b1"}


def test_save_run_and_escalate_review_keep_the_queue_columns_current(
    store: SqlStore, url: str
) -> None:
    review = pending(store, "rv-1", queue="a")
    assert sql(url, "SELECT queue, escalated FROM handrail_reviews") == [("a", False)]
    moved = replace(review, queue="leads", deadline=None, escalated_at=T0, escalation="moved")
    assert store.escalate_review(moved) is True
    assert sql(url, "SELECT queue, escalated FROM handrail_reviews") == [("leads", True)]
    assert ids(store.inbox(queues=["a"])) == ([], 0)
    assert ids(store.inbox(queues=[], escalated_too=True)) == (["rv-1"], 1)
    # a run saved again with its escalated review keeps it there
    store.save_run(replace(paused_record(), run_id=review.run_id, steps=(), reviews=(moved,)))
    assert sql(url, "SELECT queue, escalated FROM handrail_reviews") == [("leads", True)]


def test_recorded_pipelines_are_listed_by_name(store: SqlStore) -> None:
    assert store.pipelines() == {}
    store.save_pipeline("invoices", "pipes/invoices.py:pipeline")
    store.save_pipeline("claims", "pipes/claims.py:pipeline")
    store.save_pipeline("invoices", "pipes/invoices_v2.py:pipeline")  # recorded again: replaced
    assert list(store.pipelines().items()) == [
        ("claims", "pipes/claims.py:pipeline"),
        ("invoices", "pipes/invoices_v2.py:pipeline"),
    ]
