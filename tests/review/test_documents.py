"""How a review shows its document: e-mails split into headers and body, text as written; a
paged document's values placed on their pages with their words' boxes, an e-mail's parts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.review.paged import (
    NUMBER,
    TOTAL,
    VENDOR,
    draw_pdf,
    email_document,
    pdf_document,
    write_email,
)

from handrail import Document
from handrail.review import FieldView
from handrail.review.documents import document_view, review_document

EMAIL = (
    "From: Aiko Tanaka <aiko@example.jp>\n"
    "Subject: Charged twice\n"
    'Content-Type: text/plain; charset="utf-8"\n'
    "\n"
    "Amount: €64.50, naïve café\n"
)


def test_an_email_body_keeps_its_non_ascii_text() -> None:
    view = document_view(EMAIL, [], name="07.eml")
    assert view.kind == "email"
    assert view.headers["Subject"] == "Charged twice"
    assert view.body == "Amount: €64.50, naïve café\n"


def test_a_quoted_printable_body_is_decoded() -> None:
    text = (
        "From: a@example.com\n"
        'Content-Type: text/plain; charset="utf-8"\n'
        "Content-Transfer-Encoding: quoted-printable\n"
        "\n"
        "Amount: =E2=82=AC64.50\n"
    )
    assert document_view(text, [], name="x.eml").body == "Amount: €64.50\n"


# --- paged documents ---------------------------------------------------------------------------


def fields(**values: Any) -> list[FieldView]:
    return [
        FieldView(path=path, label=path, value=value, confidence=0.9, threshold=0.8, flagged=False)
        for path, value in values.items()
    ]


def test_a_pdf_keeps_its_text_and_each_value_is_placed_on_its_page_with_word_boxes(
    tmp_path: Path,
) -> None:
    draw_pdf(tmp_path / "invoice.pdf")
    document = pdf_document(tmp_path / "invoice.pdf")
    view = review_document(document, fields(vendor=VENDOR, number=NUMBER, total=TOTAL))
    assert (view.kind, view.body, view.media_type) == ("text", document.text, "application/pdf")
    assert [(p.number, p.label, p.width, p.height, p.unit) for p in view.pages] == [
        (1, "page 1", 612.0, 792.0, "pt"),
        (2, "page 2", 612.0, 792.0, "pt"),
    ]
    assert view.pages_of("vendor") == (1,) and view.pages_of("number") == (1,)
    assert view.pages_of("total") == (2,)  # "402.00" is one of a number's spellings
    (total,) = view.pages[1].places
    assert document.text[total.start : total.end] == "402.00"
    words = {w.text: w.box for w in document.pages[1].words}
    assert total.boxes == (words["402.00"],)
    (vendor,) = [p for p in view.pages[0].places if p.path == "vendor"]
    # a value of several words has each word's box; case and the trailing dot are the PDF's
    assert document.text[vendor.start : vendor.end] == "HARBOUR & FINCH LTD."
    assert vendor.boxes == tuple(document.pages[0].words[i].box for i in range(4))
    assert view.images is None and view.parts == () and view.warnings == ()


def test_a_value_broken_over_two_lines_is_still_found() -> None:
    view = document_view("Supplier: Harbour &\nFinch Ltd.\n", fields(vendor=VENDOR))
    (mark,) = view.highlights
    assert view.body[mark.start : mark.end] == "Harbour &\nFinch Ltd."


def test_a_pdf_whose_text_reads_like_an_email_header_is_not_taken_for_one(tmp_path: Path) -> None:
    pages = (("Date: 2026-11-17", "", "Subject to our terms", "Total 402.00"),)
    draw_pdf(tmp_path / "a.pdf", pages)
    document = pdf_document(tmp_path / "a.pdf", pages)
    view = review_document(document, fields(total=TOTAL))
    assert view.kind == "text" and view.headers == {} and view.body == document.text
    assert view.pages_of("total") == (1,)


def test_an_email_shows_its_parts_headers_and_the_attachment_pages(tmp_path: Path) -> None:
    write_email(tmp_path / "mail.eml", draw_pdf(tmp_path / "invoice.pdf"))
    document = email_document(tmp_path / "mail.eml")
    view = review_document(document, fields(number=NUMBER, total=TOTAL), images="gone")
    assert view.kind == "email" and view.body == document.text
    assert view.headers == {
        "From": "accounts@harbourfinch.example",
        "Subject": "Invoice HF-2291",
        "Date": "Tue, 17 Nov 2026 09:12:00 +0000",
    }
    assert [(p.name, p.media_type, p.pages, p.error) for p in view.parts] == [
        ("body", "text/plain", (), None),
        ("invoice.pdf", "application/pdf", (1, 2), None),
        ("photo.heic", "image/heic", (), "unsupported file type `.heic`"),
    ]
    assert [(p.label, p.part) for p in view.pages] == [
        ("invoice.pdf, page 1", "invoice.pdf"),
        ("invoice.pdf, page 2", "invoice.pdf"),
    ]
    # the number is in the subject, the body and on page 1: only page 1 is a page
    assert len([h for h in view.highlights if h.path == "number"]) == 2
    assert view.pages_of("number") == (1,) and view.pages_of("total") == (2,)
    assert view.warnings == ("photo.heic: could not be read: unsupported file type `.heic`",)
    assert view.images == "gone"


def test_a_text_document_is_shown_as_before() -> None:
    document = Document(text=EMAIL, id="07.eml", media_type="message/rfc822")
    view = review_document(document, [])
    assert view.kind == "email" and view.body == "Amount: €64.50, naïve café\n"
    assert view.pages == () and view.media_type == "message/rfc822"
