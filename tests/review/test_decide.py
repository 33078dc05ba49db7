"""Decisions through `ReviewService.decide`: recorded exactly once through the core runner's
conditional write, with the viewer's name and an audit row; an edit failing the schema or a
rejection without a reason recorded nothing; continuing the run is a worker's job."""

from __future__ import annotations

import sqlite3
from datetime import datetime

import pytest
from tests.pipelines.inbox_invoice import QUEUE, SOURCES

from handrail import InvalidDecision, NotAllowed, ReviewAlreadyDecided, ReviewDecision
from handrail.durable import SqlStore
from handrail.review import ReviewService


def _path(db: str) -> str:
    return db.removeprefix("sqlite:///")


def _decisions(db: str) -> int:
    with sqlite3.connect(_path(db)) as conn:
        query = "select count(*) from handrail_reviews where decision is not null"
        return int(conn.execute(query).fetchone()[0])


def _corrected(service: ReviewService, review_id: str) -> dict:
    output = dict(service.review(review_id).request.output)
    return output | {"total": 1420.0}


def test_approve_records_the_viewers_name_and_leaves_the_run_to_a_worker(
    service: ReviewService, db: str, reviews: dict[str, str]
) -> None:
    ana, _ = service.add_reviewer("ana", queues=[QUEUE])
    review_id = reviews["HF-2291"]
    forged = ReviewDecision.approve(reviewer="mallory")  # a form value never names who decides
    recorded = service.decide(review_id, forged, viewer=ana)
    assert recorded.status == "decided" and recorded.review_id == review_id
    detail = service.review(review_id)
    assert detail.decision is not None
    assert (detail.decision.action, detail.decision.reviewer) == ("approve", "ana")
    assert detail.run_status == "needs_review"  # not continued here
    entries = service.audit_entries(action="decide")
    assert [(e.actor, e.review_id, e.queue) for e in entries] == [("ana", review_id, QUEUE)]
    assert service.verify_audit().ok
    assert service.inbox(ana).total == len(SOURCES) - 1

    finished = service.finish(recorded.run_id)  # what a worker does with a decided run
    assert finished.record.status.value == "completed"
    assert finished.record.outputs["book"] == "booked invoice HF-2291: 1240.00 GBP"


def test_an_edit_is_checked_against_the_schema_and_its_changes_audited(
    service: ReviewService, reviews: dict[str, str]
) -> None:
    review_id = reviews["HF-2291"]
    corrected = _corrected(service, review_id)
    assert service.validate_edit(review_id, corrected) == []
    service.decide(review_id, ReviewDecision.edit(corrected, reviewer="ana"))
    decision = service.review(review_id).decision
    assert decision is not None and decision.action == "edit"
    assert decision.output["total"] == 1420.0
    (entry,) = service.audit_entries(action="decide", review_id=review_id)
    assert entry.detail["changed"] == {"total": [1240.0, 1420.0]}


def test_an_edit_failing_the_schema_names_each_field_and_records_nothing(
    service: ReviewService, db: str, reviews: dict[str, str]
) -> None:
    review_id = reviews["HF-2291"]
    bad = _corrected(service, review_id)
    bad["lines"] = [dict(bad["lines"][0], quantity=0), bad["lines"][1]]
    bad["po_number"] = "7781"
    bad["currency"] = "YEN"
    errors = service.validate_edit(review_id, bad)
    paths = [path for path, _ in errors]
    assert paths == ["currency", "lines.0.quantity", "po_number"]
    messages = dict(errors)
    assert "greater than or equal to 1" in messages["lines.0.quantity"]
    assert "starts with PO-" in messages["po_number"]
    with pytest.raises(InvalidDecision) as raised:
        service.decide(review_id, ReviewDecision.edit(bad, reviewer="ana"))
    assert raised.value.errors == tuple(errors)
    assert "lines.0.quantity" in str(raised.value)
    assert service.review(review_id).request.status == "pending"
    assert _decisions(db) == 0 and service.audit_entries(action="decide") == []


def test_a_rejection_needs_a_reason(
    service: ReviewService, db: str, reviews: dict[str, str]
) -> None:
    review_id = reviews["AP-10734"]
    for reason in (None, "   "):
        with pytest.raises(InvalidDecision, match="needs a reason"):
            service.decide(review_id, ReviewDecision.reject(reason, reviewer="ana"))
    assert _decisions(db) == 0
    service.decide(review_id, ReviewDecision.reject("a duplicate of AP-10733", reviewer="ana"))
    decision = service.review(review_id).decision
    assert decision is not None and decision.reason == "a duplicate of AP-10733"


def test_a_second_decision_names_who_decided_and_when(
    service: ReviewService, db: str, reviews: dict[str, str]
) -> None:
    review_id = reviews["KL-55012"]
    service.decide(review_id, ReviewDecision.approve(reviewer="ana"))
    with pytest.raises(ReviewAlreadyDecided) as raised:
        service.decide(review_id, ReviewDecision.reject("no", reviewer="bob"))
    error = raised.value
    assert (error.by, error.action) == ("ana", "approve")
    assert isinstance(error.at, datetime)
    assert "already decided (approve by ana at " in str(error)
    assert _decisions(db) == 1 and len(service.audit_entries(action="decide")) == 1


def test_the_conditional_write_refuses_a_decision_that_lost_the_race(
    service: ReviewService, db: str, reviews: dict[str, str]
) -> None:
    """Two services (two web workers) decide the same review: the second to write gets
    ReviewAlreadyDecided from the store's conditional write, with who won."""
    review_id = reviews["KL-55012"]
    with ReviewService(db, folder=service.folder) as other:
        other.review(review_id)  # both have read it pending
        service.review(review_id)
        other.decide(review_id, ReviewDecision.approve(reviewer="bob"))
        with pytest.raises(ReviewAlreadyDecided) as raised:
            service.decide(review_id, ReviewDecision.approve(reviewer="ana"))
    assert raised.value.by == "bob"
    with SqlStore(db, read_only=True) as store:
        decision = store.get_decision(review_id)
    assert decision is not None and decision.reviewer == "bob"


def test_a_reviewer_cannot_decide_outside_their_queues(
    service: ReviewService, db: str, reviews: dict[str, str]
) -> None:
    bob, _ = service.add_reviewer("bob", queues=["claims"])
    with pytest.raises(NotAllowed, match="bob does not review queue `payables`"):
        service.decide(reviews["HF-2291"], ReviewDecision.approve(), viewer=bob)
    assert _decisions(db) == 0


def test_a_read_only_service_decides_nothing(db: str, reviews: dict[str, str]) -> None:
    from handrail import InputError

    with (
        ReviewService(db, read_only=True) as service,
        pytest.raises(InputError, match="read_only=False"),
    ):
        service.decide(reviews["HF-2291"], ReviewDecision.approve(reviewer="ana"))
    assert _decisions(db) == 0
