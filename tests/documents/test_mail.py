"""E-mails: one document with parts (the body, then each attachment read by its own loader), an
attachment that cannot be read failing only its part, the split into one document per
attachment, and `attachment_data` giving an attachment's bytes back."""

from __future__ import annotations

import importlib.util
from email.message import EmailMessage

import pytest
from tests.documents.conftest import image_bytes, pdf_bytes, text_image

from handrail import InputError, Part
from handrail.documents import LoadOptions, load_bytes
from handrail.documents.mail import attachment_data, split_email

PDF = "application/pdf"


def email_with(
    *attachments: tuple[str | None, str, bytes],
    body: str = "Please find the invoice attached.\nOrder ID: A-17\n",
    subject: str | None = "Invoice INV-7",
    html: str | None = None,
) -> bytes:
    """An e-mail from Ann to support with `body` (and an `html` alternative) and the
    attachments (file name or None, media type, bytes), as a .eml file's bytes."""
    message = EmailMessage()
    message["From"] = "Ann Lee <ann@example.com>"
    message["To"] = "support@example.com"
    if subject is not None:
        message["Subject"] = subject
    message["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    message["Message-ID"] = "<1@example.com>"
    message.set_content(body)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, media_type, data in attachments:
        maintype, subtype = media_type.split("/")
        if media_type == "message/rfc822":
            inner = EmailMessage()
            inner.set_content(data.decode())
            inner["Subject"] = "Forwarded"
            message.add_attachment(inner, filename=filename)
        else:
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


HEADERS = (
    "Subject: Invoice INV-7\nFrom: Ann Lee <ann@example.com>\nDate: Mon, 01 Jan 2024 10:00:00 +0000"
)


def test_an_email_without_attachments_is_its_headers_and_body_with_no_parts() -> None:
    doc = load_bytes(email_with(), name="mail.eml")
    assert doc.text == HEADERS + "\n\nPlease find the invoice attached.\nOrder ID: A-17\n"
    assert (doc.media_type, doc.parts, doc.pages) == ("message/rfc822", (), ())
    assert doc.metadata["message_id"] == "<1@example.com>"


def test_attachments_are_parts_read_by_their_own_loaders() -> None:
    eml = email_with(
        ("notes.txt", "text/plain", b"Deliver to dock 4"),
        ("lines.csv", "text/csv", b'item,amount\ndesk,"1,234.50"\n'),
    )
    doc = load_bytes(eml, name="mail.eml")
    assert doc.text == (
        HEADERS + "\n\nPlease find the invoice attached.\nOrder ID: A-17\n\n"
        "[attachment notes.txt]\n\nDeliver to dock 4\n\n"
        "[attachment lines.csv]\n\nitem | amount\ndesk | 1,234.50"
    )
    body, notes, lines = doc.parts
    assert (body.name, body.media_type, doc.text[body.start : body.end]) == (
        "body",
        "text/plain",
        HEADERS + "\n\nPlease find the invoice attached.\nOrder ID: A-17",
    )
    assert notes == Part(
        name="notes.txt",
        media_type="text/plain",
        start=doc.text.index("Deliver"),
        end=doc.text.index("Deliver") + len("Deliver to dock 4"),
    )
    assert (lines.media_type, doc.text[lines.start : lines.end]) == (
        "text/csv",
        "item | amount\ndesk | 1,234.50",
    )
    assert doc.warnings == ()
    assert doc.metadata == {
        "subject": "Invoice INV-7",
        "from": "Ann Lee <ann@example.com>",
        "date": "Mon, 01 Jan 2024 10:00:00 +0000",
        "to": "support@example.com",
        "message_id": "<1@example.com>",
    }


def test_an_attachment_that_cannot_be_read_fails_its_part_not_the_email() -> None:
    eml = email_with(
        ("broken.json", "application/json", b'{"total": '),
        ("archive.zip", "application/zip", b"PK\x05\x06" + bytes(18)),
        ("ok.txt", "text/plain", b"fine"),
    )
    doc = load_bytes(eml, name="mail.eml")
    broken, archive, ok = doc.parts[1:]
    assert broken.error is not None and broken.error.startswith("`broken.json` is not valid JSON")
    assert (
        doc.text[broken.start : broken.end]
        == f"[attachment broken.json could not be read: {broken.error}]"
    )
    assert archive.error is not None
    assert archive.error.startswith("unsupported file type `.zip` (handrail reads .txt, .md")
    assert (ok.error, doc.text[ok.start : ok.end]) == (None, "fine")
    assert doc.warnings == (
        f"attachment broken.json could not be read: {broken.error}",
        f"attachment archive.zip could not be read: {archive.error}",
    )


def test_attachment_names_are_unique_and_give_their_bytes_back() -> None:
    eml = email_with(
        ("scan.txt", "text/plain", b"first"),
        ("scan.txt", "text/plain", b"second"),
        (None, "text/csv", b"a,b\n1,2\n"),
        ("../../etc/passwd.txt", "text/plain", b"only a name"),
    )
    doc = load_bytes(eml, name="mail.eml")
    names = [part.name for part in doc.parts]
    assert names == ["body", "scan.txt", "scan (2).txt", "attachment-3.csv", "passwd.txt"]
    assert [attachment_data(eml, name) for name in names[1:]] == [
        b"first",
        b"second",
        b"a,b\n1,2\n",
        b"only a name",
    ]
    with pytest.raises(InputError, match=r"the e-mail has no attachment `gone\.pdf`"):
        attachment_data(eml, "gone.pdf")


def test_an_attachment_named_without_its_type_is_read_by_its_media_type() -> None:
    doc = load_bytes(email_with(("data", "application/json", b'{"a": 1}')), name="mail.eml")
    assert (doc.parts[1].name, doc.parts[1].media_type) == ("data", "application/json")
    assert doc.text.endswith('[attachment data]\n\n{"a": 1}')


def test_an_attachment_whose_extra_is_missing_fails_its_part_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *args: None if name == "pypdfium2" else find_spec(name, *args),
    )
    eml = email_with(("invoice.pdf", PDF, b"%PDF-1.4"))
    doc = load_bytes(eml, name="mail.eml")
    assert doc.parts[1].error == (
        "`invoice.pdf`: reading a PDF needs handrail's `documents` extra (missing: pypdfium2); "
        "install it with `pip install 'handrail[documents]'`"
    )


def test_an_email_that_is_only_a_file_is_read_as_its_attachment() -> None:
    message = EmailMessage()
    message["Subject"] = "Scan from MFP-3"
    message.set_content(b"a,b\n1,2\n", maintype="text", subtype="csv", filename="scan.csv")
    message.replace_header("Content-Type", "application/octet-stream; name=scan.csv")
    doc = load_bytes(message.as_bytes(), name="mail.eml")
    assert doc.text == "Subject: Scan from MFP-3\n\n[attachment scan.csv]\n\na | b\n1 | 2"
    assert [part.name for part in doc.parts] == ["body", "scan.csv"]


def test_an_email_attached_to_an_email_is_followed_up_to_max_depth() -> None:
    eml = email_with(("fwd.eml", "message/rfc822", b"The original order: A-17\n"))
    doc = load_bytes(eml, name="mail.eml")
    assert doc.parts[1].name == "fwd.eml"
    assert doc.text.endswith(
        "[attachment fwd.eml]\n\nSubject: Forwarded\n\nThe original order: A-17\n"
    )
    shallow = load_bytes(eml, name="mail.eml", options=LoadOptions(max_depth=0))
    assert shallow.parts[1].error == (
        "`fwd.eml` is an e-mail nested deeper than LoadOptions.max_depth allows; raise it to "
        "read it"
    )


def test_too_many_attachments_fail_the_email() -> None:
    eml = email_with(*[(f"{n}.txt", "text/plain", b"x") for n in range(3)])
    with pytest.raises(InputError) as info:
        load_bytes(eml, name="mail.eml", options=LoadOptions(max_attachments=2))
    assert str(info.value) == (
        "`mail.eml` has 3 attachments, over the 2 limit; forward them in smaller e-mails, or "
        "raise LoadOptions.max_attachments"
    )


def test_an_email_with_only_an_attachment_is_not_empty() -> None:
    eml = email_with(("notes.txt", "text/plain", b"Deliver to dock 4"), body="", subject=None)
    doc = load_bytes(eml, name="mail.eml")
    assert doc.text == (
        "From: Ann Lee <ann@example.com>\nDate: Mon, 01 Jan 2024 10:00:00 +0000\n\n"
        "[attachment notes.txt]\n\nDeliver to dock 4"
    )


def test_an_html_body_is_read_as_html_files_are() -> None:
    html = (
        "<html><body><p>Total:&nbsp;<b>1,234.50</b></p>"
        "<table><tr><td>desk</td><td>2</td></tr></table><script>x()</script></body></html>"
    )
    message = EmailMessage()
    message["Subject"] = "Hi"
    message.set_content(html, subtype="html")
    doc = load_bytes(message.as_bytes(), name="mail.eml")
    assert doc.text == "Subject: Hi\n\nTotal: 1,234.50\ndesk | 2\n"


def test_split_gives_the_body_and_one_document_per_attachment() -> None:
    eml = email_with(
        ("notes.txt", "text/plain", b"Deliver to dock 4"),
        ("broken.json", "application/json", b"{"),
        ("smime.p7s", "application/pkcs7-signature", b"\x30\x82"),
    )
    split = split_email(eml, name="in/mail.eml", options=LoadOptions(split_attachments=True))
    body, notes, broken = split.documents
    assert body.id == "in/mail.eml" and not isinstance(body, InputError)
    assert body.text == (
        HEADERS + "\n\nPlease find the invoice attached.\nOrder ID: A-17\n\n"
        "[attachment notes.txt]\n\n[attachment broken.json]\n\n[attachment smime.p7s]"
    )
    assert body.parts == ()
    assert not isinstance(notes, InputError)
    assert (notes.id, notes.source, notes.text, notes.media_type) == (
        "in/mail.eml#notes.txt",
        "in/mail.eml",
        "Deliver to dock 4",
        "text/plain",
    )
    assert notes.parts == (Part(name="notes.txt", media_type="text/plain", start=0, end=17),)
    assert notes.metadata["subject"] == "Invoice INV-7"
    assert notes.metadata["attachment"] == "notes.txt"
    assert isinstance(broken, InputError)
    assert broken.document_id == "in/mail.eml#broken.json"
    assert str(broken).startswith("in `in/mail.eml`: `broken.json` is not valid JSON")
    assert split.skipped == (
        (
            "in/mail.eml#smime.p7s",
            "unsupported file type `.p7s` (handrail reads .txt, .md, .json, .csv, .eml, .html, "
            ".htm, .pdf, .png, .jpg, .jpeg, .tif, .tiff, .docx, .xlsx)",
        ),
    )


# --- with the PDF and image loaders -------------------------------------------------------------


def _pdf(lines: list[str]) -> bytes:
    """A one-page PDF with these lines (a text layer)."""
    return pdf_bytes([(72, 760 - 20 * y, line) for y, line in enumerate(lines)])


def _png(text: str) -> bytes:
    """A PNG of `text` in large print (no text layer: OCR reads it)."""
    return image_bytes(text_image([text]))


def test_an_email_with_a_pdf_and_an_image_is_one_document_with_three_parts() -> None:
    eml = email_with(
        ("invoice.pdf", PDF, _pdf(["Invoice INV-7", "Total due 1,234.50"])),
        ("receipt.png", "image/png", _png("Receipt 99")),
    )
    doc = load_bytes(eml, name="mail.eml", options=LoadOptions(ocr="never"))
    body, invoice, receipt = doc.parts
    assert (body.name, invoice.name, receipt.name) == ("body", "invoice.pdf", "receipt.png")
    assert (invoice.media_type, receipt.media_type) == (PDF, "image/png")
    assert (invoice.pages, receipt.pages) == ((1,), (2,))
    first, second = doc.pages
    assert (first.part, first.unit, first.text_from, first.label) == (
        1,
        "pt",
        "text",
        "invoice.pdf, page 1",
    )
    assert (second.part, second.unit, second.text_from) == (2, "px", "none")
    (place,) = doc.find("1,234.50")
    assert place.page == 1 and len(place.boxes) == 1
    assert doc.page_at(place.start) == first
    assert any(w.startswith("receipt.png: ") for w in doc.warnings)  # not read: OCR is off
    assert attachment_data(eml, "invoice.pdf").startswith(b"%PDF")


def test_an_image_attachment_is_read_by_ocr_where_it_has_no_text() -> None:
    eml = email_with(("receipt.png", "image/png", _png("Receipt 99")))
    doc = load_bytes(eml, name="mail.eml")  # ocr="auto"
    receipt = doc.parts[1]
    assert "Receipt 99" in doc.text[receipt.start : receipt.end]
    assert (doc.pages[0].text_from, doc.pages[0].label) == ("ocr", "receipt.png")
    assert [place.page for place in doc.find("Receipt 99")] == [1]
