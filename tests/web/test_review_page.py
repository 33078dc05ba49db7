"""The review page and its decisions on real reviews: the form built from the Invoice schema,
edits validated before anything is recorded (422 at the fields, values kept), exactly one
decision (409 naming who and when), rejections with a reason, claims, and HTML escaping."""

from __future__ import annotations

import asyncio
import html
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from tests.pipelines import inbox_invoice

from handrail import Document
from handrail._utils import now
from handrail.durable import DurableRunner
from handrail.review import ReviewService

from .conftest import (
    NOTES,
    ORIGIN,
    Inbox,
    client_for,
    element_text,
    form_values,
    review_ids,
    run_documents,
    sign_in,
    signed_in,
)
from .notes import BODY, DOCUMENT, TITLE
from .notes import pipeline as notes_pipeline


def invoice_review(inbox: Inbox, number: str) -> str:
    """The pending review of the invoice numbered `number`."""
    for view in inbox.service.reviews():
        if view.request.output["number"] == number:
            return view.request.review_id
    raise AssertionError(f"no review of {number}")


def decide(client: TestClient, review_id: str, form: dict[str, str], action: str):
    return client.post(
        f"/reviews/{review_id}/decide", data=form | {"action": action}, headers={"Origin": ORIGIN}
    )


def test_the_inbox_lists_the_pending_reviews_with_why_and_links(
    ana: TestClient, inbox: Inbox
) -> None:
    page = ana.get("/").text
    assert sorted(review_ids(page)) == sorted(inbox.pending())
    assert 'id="inbox"' in page and 'class="open-review" href="/reviews/' in page
    hf = invoice_review(inbox, "HF-2291")
    row = re.search(rf'<tr data-review-id="{hf}".*?</tr>', page, re.S)
    assert row is not None
    assert "`total` 0.41 &lt; 0.80" in row.group(0)  # the reasons in a few words
    assert "payables" in row.group(0)
    deadline_sorted = ana.get("/?sort=deadline&per_page=2").text
    assert sorted(review_ids(deadline_sorted)) == sorted(inbox.pending())
    assert review_ids(ana.get("/?overdue=1").text) == []  # deadlines are 4 h away


def test_the_form_follows_the_schema_with_each_fields_confidence(
    ana: TestClient, inbox: Inbox
) -> None:
    review_id = invoice_review(inbox, "HF-2291")
    page = ana.get(f"/reviews/{review_id}").text
    form = form_values(page)
    assert form["out.vendor"] == "Harbour & Finch Ltd."
    assert form["out.address.city"] == "Bristol"  # a nested model: a fieldset
    assert form["out.lines.0.quantity"] == "2" and form["out.lines.1.amount"] == "240"  # a list
    assert form["out.lines.2.description"] == ""  # the blank item that adds one
    assert form["out.issued"] == "2026-11-14" and 'type="date"' in page
    assert form["out.currency"] == "GBP" and form["out.kind"] == "invoice"  # enum, Literal
    currency = page[
        page.index('id="field-currency"') : page.index(
            "</select>", page.index('id="field-currency"')
        )
    ]
    assert re.findall(r'<option value="(\w+)"', currency) == ["EUR", "GBP", "USD"]
    assert form["out.po_number"] == "PO-7781"
    total = element_text(page, "field-total".replace("field-", "error-"))
    assert total == ""  # no error yet
    field = re.search(r'<div class="field flagged" data-path="total">.*?</div>\s*\n', page, re.S)
    assert field is not None  # below its threshold: flagged
    assert "confidence 0.41 &lt; 0.80" in field.group(0)
    assert 'id="document"' in page and "Total due (" in page
    assert 'data-path="vendor"' in page  # the extracted value highlighted in the document
    assert element_text(page, "run-status") == "needs_review"
    assert 'id="history"' in page


def test_an_invalid_edit_answers_422_at_the_fields_and_records_nothing(
    ana: TestClient, inbox: Inbox
) -> None:
    review_id = invoice_review(inbox, "HF-2291")
    form = form_values(ana.get(f"/reviews/{review_id}").text)
    form |= {"out.po_number": "7781", "out.lines.0.quantity": "two", "out.total": "1420"}
    response = decide(ana, review_id, form, "edit")
    assert response.status_code == 422
    page = response.text
    assert "starts with PO-" in element_text(page, "error-po_number")
    assert "valid integer" in element_text(page, "error-lines-0-quantity")
    assert element_text(page, "error-total") == ""
    kept = form_values(page)
    assert (kept["out.po_number"], kept["out.lines.0.quantity"], kept["out.total"]) == (
        "7781",
        "two",
        "1420",
    )
    assert review_id in inbox.pending()
    assert inbox.actions("decide") == []


def test_an_edit_is_recorded_typed_by_the_schema(ana: TestClient, inbox: Inbox) -> None:
    review_id = invoice_review(inbox, "HF-2291")
    form = form_values(ana.get(f"/reviews/{review_id}").text)
    form |= {
        "out.total": "1,420.00",
        "out.lines.2.description": "Delivery",  # the blank item filled in: a third line
        "out.lines.2.quantity": "1",
        "out.lines.2.amount": "0",
        "out.po_number": "",  # optional: emptied means None
        "drop.lines.1": "1",  # the second line removed
    }
    response = decide(ana, review_id, form, "edit")
    assert (response.status_code, response.headers["location"]) == (303, f"/reviews/{review_id}")
    detail = inbox.service.review(review_id)
    assert detail.decision is not None and detail.decision.reviewer == "ana"
    output = detail.decision.output
    assert output["total"] == 1420.0 and output["po_number"] is None
    assert [(line["description"], line["quantity"]) for line in output["lines"]] == [
        ("Oak desk, 160 cm", 2),
        ("Delivery", 1),
    ]
    assert output["address"] == {
        "street": "12 Quay Street",
        "city": "Bristol",
        "postcode": "BS1 4DJ",
    }
    page = ana.get(f"/reviews/{review_id}").text
    assert "Decided: edit" in element_text(page, "decision")
    assert "by ana at" in element_text(page, "decision")
    assert element_text(page, "run-status") == "needs_review"  # no worker in this test
    assert 'id="decision" method="post"' not in page  # no second form
    [row] = inbox.actions("decide")
    assert row.actor == "ana" and row.detail["changed"]["total"] == [1240.0, 1420.0]


def test_a_second_decision_answers_409_naming_who_and_when(inbox: Inbox, ana: TestClient) -> None:
    review_id = invoice_review(inbox, "AP-10734")
    carol = signed_in(inbox, "carol")
    carols_form = form_values(carol.get(f"/reviews/{review_id}").text)  # both have it open
    first = decide(ana, review_id, form_values(ana.get(f"/reviews/{review_id}").text), "approve")
    assert first.status_code == 303
    second = decide(carol, review_id, carols_form, "reject")  # even without a reason
    assert second.status_code == 409
    said = element_text(second.text, "already-decided")
    decided_at = inbox.service.review(review_id).decision.decided_at
    assert f"Already decided by ana at {decided_at:%Y-%m-%d %H:%M:%S} UTC (approve)" in said
    assert len(inbox.actions("decide")) == 1
    assert inbox.service.review(review_id).decision.action == "approve"


def test_rejecting_needs_a_reason(ana: TestClient, inbox: Inbox) -> None:
    review_id = invoice_review(inbox, "KL-55012")
    form = form_values(ana.get(f"/reviews/{review_id}").text)
    response = decide(ana, review_id, form | {"reason": "  "}, "reject")
    assert response.status_code == 422
    assert "say why" in element_text(response.text, "error-reason")
    assert inbox.actions("decide") == []
    done = decide(ana, review_id, form | {"reason": "duplicate of KL-55011"}, "reject")
    assert done.status_code == 303
    decision = inbox.service.review(review_id).decision
    assert (decision.action, decision.reason) == ("reject", "duplicate of KL-55011")


def test_approving_a_changed_form_is_refused_so_no_correction_is_lost(
    ana: TestClient, inbox: Inbox
) -> None:
    review_id = invoice_review(inbox, "HF-2291")
    form = form_values(ana.get(f"/reviews/{review_id}").text)
    response = decide(ana, review_id, form | {"out.total": "1420"}, "approve")
    assert response.status_code == 422
    assert "press Save edit" in element_text(response.text, "error-total")
    assert inbox.actions("decide") == []


def test_claims_are_visible_to_others_and_released(inbox: Inbox, ana: TestClient) -> None:
    review_id = invoice_review(inbox, "HF-2291")
    page = ana.get(f"/reviews/{review_id}").text
    claimed = ana.post(
        f"/reviews/{review_id}/claim", data=form_values(page, "claim"), headers={"Origin": ORIGIN}
    )
    assert claimed.status_code == 303
    assert "You are working on it" in ana.get(f"/reviews/{review_id}").text
    carol = signed_in(inbox, "carol")
    row = re.search(rf'<tr data-review-id="{review_id}"[^>]*>.*?</tr>', carol.get("/").text, re.S)
    assert row is not None and "ana" in row.group(0) and "claimed" in row.group(0)
    carols_page = carol.get(f"/reviews/{review_id}").text
    assert "ana is working on it until" in carols_page
    taken = carol.post(
        f"/reviews/{review_id}/claim",
        data={"csrf": form_values(carols_page, "signout")["csrf"]},
        headers={"Origin": ORIGIN},
    )
    assert taken.status_code == 409
    assert "ana is working on it until" in element_text(taken.text, "claim-problem")
    mine = ana.get("/?mine=1").text
    assert review_ids(mine) == [review_id]
    page = ana.get(f"/reviews/{review_id}").text
    released = ana.post(
        f"/reviews/{review_id}/release",
        data=form_values(page, "release"),
        headers={"Origin": ORIGIN},
    )
    assert released.status_code == 303
    assert review_ids(ana.get("/?mine=1").text) == []
    assert [e.action for e in inbox.service.audit_entries(review_id=review_id)] == [
        "claim",
        "release",
    ]


@pytest.fixture
def notes(tmp_path) -> ReviewService:
    db = f"sqlite:///{tmp_path / 'notes.db'}"
    run_documents(db, notes_pipeline, [Document(text=DOCUMENT, id="note<1>.txt")])
    return ReviewService(db, target=NOTES)


def test_markup_in_the_document_and_the_output_is_shown_as_text(notes: ReviewService) -> None:
    _, token = notes.add_reviewer("ana", queues=["*"])
    client = client_for(notes)
    sign_in(client, token)
    [view] = notes.reviews()
    page = client.get(f"/reviews/{view.request.review_id}").text
    assert "<script>alert" not in page and "<img src=x" not in page and "<b>pay</b>" not in page
    assert html.escape('<script>alert("document")</script>', quote=False) in page.replace(
        "&#34;", '"'
    )
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert form_values(page)["out.title"] == TITLE  # the value round-trips as text
    assert form_values(page)["out.urgent"] == "true"  # a bool: a select
    assert form_values(page)["out.amount"] == ""  # an optional number left empty
    assert form_values(page)["out.body"] == BODY  # a textarea keeps its first empty line
    # a browser sends a textarea's lines with CRLF: still the value shown, so approving is fine
    form = form_values(page) | {"out.body": BODY.replace("\n", "\r\n"), "action": "approve"}
    approved = client.post(
        f"/reviews/{view.request.review_id}/decide", data=form, headers={"Origin": ORIGIN}
    )
    assert approved.status_code == 303
    for path in ("/", "/runs", "/audit"):
        shown = client.get(path).text
        assert "<script>alert" not in shown and "<img src=x" not in shown
    notes.close()


def test_a_lead_sees_and_decides_the_reviews_escalated_past_their_deadline(inbox: Inbox) -> None:
    async def escalate() -> int:
        async with DurableRunner(inbox_invoice.pipeline, db=inbox.db, kind="cli") as runner:
            return len(await runner.escalate_due(at=now() + timedelta(hours=5)))

    moved = asyncio.run(escalate())
    assert moved == len(inbox.pending()) > 0
    lena = signed_in(inbox, "lena")
    page = lena.get("/").text
    assert sorted(review_ids(page)) == sorted(inbox.pending())
    assert "moved from queue `payables` to `payables-leads`" in html.unescape(page)
    ana = signed_in(inbox, "ana")
    assert review_ids(ana.get("/").text) == []  # no longer in ana's queue
    review_id = inbox.pending()[0]
    assert ana.get(f"/reviews/{review_id}").status_code == 403
    form = form_values(lena.get(f"/reviews/{review_id}").text)
    assert decide(lena, review_id, form, "approve").status_code == 303
    assert inbox.service.review(review_id).decision.reviewer == "lena"
