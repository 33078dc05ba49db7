"""The inbox and a review's detail, read through `ReviewService` from real reviews: filters,
paging, who sees what, each field against its threshold, the document with values
highlighted."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from tests.pipelines.inbox_invoice import LEADS, QUEUE, SOURCES, Invoice

from handrail import NotAllowed, ReviewNotFound
from handrail._utils import now
from handrail.durable import SqlStore
from handrail.review import ReviewService

N = len(SOURCES)


def test_the_inbox_lists_every_pending_review_with_why_in_a_few_words(
    service: ReviewService, reviews: dict[str, str]
) -> None:
    page = service.inbox(None)
    assert page.total == N and page.pages == 1 and page.page == 1
    assert page.queues == {QUEUE: N}
    by_id = {item.review_id: item for item in page.items}
    assert set(by_id) == set(reviews.values())
    invoice = by_id[reviews["HF-2291"]]
    assert invoice.queue == QUEUE and invoice.node == "invoice"
    assert invoice.pipeline == "inbox_invoice"
    assert invoice.reasons == "`total` 0.41 < 0.80; `lines` 0.50 < 0.80; check total_adds_up"
    assert (invoice.lowest_confidence, invoice.lowest_field) == (0.41, "total")
    assert invoice.deadline is not None and not invoice.overdue
    assert invoice.deadline - invoice.created_at == timedelta(hours=4)
    assert invoice.age_s >= 0 and invoice.claim is None
    mail = by_id[reviews["CN-0412"]]
    assert (mail.lowest_confidence, mail.lowest_field) == (0.55, "issued")
    assert mail.reasons == "`issued` 0.55 < 0.80"  # po_number is optional: the gate leaves it
    # oldest first
    assert [i.created_at for i in page.items] == sorted(i.created_at for i in page.items)


def test_pages_split_the_inbox_and_count_the_whole(service: ReviewService) -> None:
    size = N - 1  # two pages: a full one and one of one review
    first = service.inbox(None, per_page=size)
    second = service.inbox(None, per_page=size, page=2)
    assert (first.total, first.pages, len(first.items)) == (N, 2, size)
    assert (second.total, second.page, len(second.items)) == (N, 2, 1)
    seen = [i.review_id for i in first.items + second.items]
    assert len(set(seen)) == N
    assert service.inbox(None, per_page=size, page=3).items == []


def test_overdue_and_deadline_order(
    service: ReviewService, db: str, reviews: dict[str, str]
) -> None:
    assert service.inbox(None, overdue=True).total == 0
    late = reviews["KL-55012"]
    with SqlStore(db) as store:  # its deadline moved into the past (as if it waited 5 hours)
        review = store.get_review(late)
        assert review is not None
        store.escalate_review(replace(review, deadline=now() - timedelta(minutes=5)))
    overdue = service.inbox(None, overdue=True)
    assert [i.review_id for i in overdue.items] == [late] and overdue.items[0].overdue
    assert service.inbox(None, sort="deadline").items[0].review_id == late


def test_a_reviewer_sees_only_their_queues_and_a_lead_also_escalated_reviews(
    service: ReviewService, db: str, reviews: dict[str, str]
) -> None:
    payables, _ = service.add_reviewer("ana", queues=[QUEUE])
    other, _ = service.add_reviewer("bob", queues=["claims"])
    lead, _ = service.add_reviewer("lee", queues=["claims"], lead=True)
    everyone, _ = service.add_reviewer("eve", queues=["*"])
    assert service.inbox(payables).total == N
    assert service.inbox(everyone).total == N
    nothing = service.inbox(other)
    assert (nothing.total, nothing.items, nothing.queues) == (0, [], {})
    with pytest.raises(NotAllowed, match="bob does not review queue `payables`"):
        service.inbox(other, queue=QUEUE)
    with pytest.raises(NotAllowed, match="bob does not review queue `payables`"):
        service.review(reviews["HF-2291"], other)
    assert service.inbox(lead).total == 0

    moved = reviews["AP-10734"]  # its deadline passed: escalated to the leads' queue
    with SqlStore(db) as store:
        review = store.get_review(moved)
        assert review is not None
        store.escalate_review(
            replace(review, queue=LEADS, deadline=None, escalated_at=now(), escalation="late")
        )
    led = service.inbox(lead)
    assert [i.review_id for i in led.items] == [moved] and led.queues == {LEADS: 1}
    assert led.items[0].escalation == "late"
    assert [i.review_id for i in service.inbox(lead, queue=LEADS).items] == [moved]
    assert service.review(moved, lead).request.queue == LEADS
    assert service.inbox(other).total == 0  # not a lead
    assert service.inbox(payables).total == N - 1  # it left their queue


def test_a_review_shows_each_leaf_field_against_its_threshold(
    service: ReviewService, reviews: dict[str, str]
) -> None:
    detail = service.review(reviews["HF-2291"])
    assert detail.output_type.__name__ == "Invoice"  # the class in the pipeline's own module
    assert list(detail.output_type.model_fields) == list(Invoice.model_fields)
    assert detail.run_status == "needs_review" and detail.decision is None
    assert detail.run is not None and detail.request.run_id == detail.run.run_id
    fields = {f.path: f for f in detail.fields}
    assert list(fields)[:4] == ["kind", "vendor", "number", "issued"]
    assert {"address.city", "lines.0.amount", "lines.1.description", "po_number"} <= set(fields)
    total = fields["total"]
    assert (total.value, total.confidence, total.threshold) == (1240.0, 0.41, 0.8)
    assert total.flagged and any("0.41" in reason for reason in total.reasons)
    vendor = fields["vendor"]
    assert (vendor.confidence, vendor.threshold, vendor.flagged) == (0.97, 0.8, False)
    city = fields["address.city"]  # a nested field: held to its enclosing field's threshold
    assert (city.value, city.confidence, city.threshold, city.label) == (
        "Bristol",
        0.97,
        0.8,
        "Address city",
    )
    assert fields["lines.0.amount"].label == "Lines #1 amount"
    assert [s.node for s in detail.history] == ["invoice"]
    assert detail.schema_errors == () and detail.claim is None


def test_the_document_is_shown_with_the_extracted_values_highlighted(
    service: ReviewService, reviews: dict[str, str]
) -> None:
    detail = service.review(reviews["HF-2291"])
    document = detail.document
    assert document is not None and document.kind == "text"
    assert document.body == document.text and document.headers == {}
    marked = {(document.body[h.start : h.end], h.path) for h in document.highlights}
    assert ("Harbour & Finch Ltd.", "vendor") in marked
    assert ("HF-2291", "number") in marked
    assert ("1,180.00", "lines.0.amount") in marked
    assert ("Bristol", "address.city") in marked
    assert ("PO-7781", "po_number") in marked
    assert not any(path == "total" for _, path in marked)  # 1240 (misread) is nowhere
    starts = [h.start for h in document.highlights]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in itertools.pairwise(document.highlights))


def test_an_email_is_split_into_headers_and_body(
    service: ReviewService, reviews: dict[str, str]
) -> None:
    document = service.review(reviews["CN-0412"]).document
    assert document is not None and document.kind == "email"
    assert document.headers["Subject"] == "Credit note CN-0412 for order 5531"
    assert document.headers["To"] == "payables@example.com"  # kept by `handrail run`
    assert document.headers["From"] == "Accounts <accounts@northwind-supplies.example>"
    assert document.body.startswith("Hello,\n")
    assert "Subject:" not in document.body
    marked = {(document.body[h.start : h.end], h.path) for h in document.highlights}
    assert ("CN-0412", "number") in marked
    assert ("Hamburg", "address.city") in marked
    assert any(text == "318.50" for text, _ in marked)


def test_an_unknown_review_is_not_found(service: ReviewService) -> None:
    with pytest.raises(ReviewNotFound, match="no review `r-nope`"):
        service.review("r-nope")


def test_without_the_pipelines_code_the_review_still_shows(
    db: str, reviews: dict[str, str], tmp_path: Path
) -> None:
    # run from another folder: the recorded target is not inside it, so it is not imported
    with ReviewService(db, read_only=True, folder=tmp_path) as service:
        detail = service.review(reviews["HF-2291"])
    assert detail.output_type is None
    total = next(f for f in detail.fields if f.path == "total")
    assert total.threshold == 0.8 and total.flagged  # the threshold the reason names


def test_reading_a_database_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    with ReviewService(f"sqlite:///{path}", read_only=True) as service:
        assert service.inbox(None).total == 0
        assert service.runs() == []
        assert service.list_reviewers() == []
        assert service.verify_audit().ok
    assert not path.exists()
