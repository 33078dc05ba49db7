"""`handrail.inputs` over the new formats: every file through `load_bytes`, the file's SHA-256 in
the metadata, size limits per format, a missing extra or a reader's crash failing only its own
document, e-mails split into one document per attachment, and stdin holding a PDF."""

from __future__ import annotations

import hashlib
import importlib.util
import io
from pathlib import Path
from typing import Any

import pytest

from handrail import Document, InputError
from handrail.documents import LoadOptions
from handrail.inputs import DEFAULT_MAX_FILE_BYTES, Skipped, read_inputs

from .test_mail import _pdf, _png, email_with
from .test_office import _invoice_docx
from .test_sheets import _workbook


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_folder_of_every_format_gives_documents_with_their_media_type_and_sha256(
    in_tmp: Path,
) -> None:
    files = {
        "a.csv": b"item,amount\ndesk,10\n",
        "b.docx": _invoice_docx(),
        "c.eml": email_with(("notes.txt", "text/plain", b"dock 4")),
        "d.html": b"<p>Order A-17</p>",
        "e.pdf": _pdf(["Invoice INV-7"]),
        "f.xlsx": _workbook(),
        "g.txt": b"Order A-17",
    }
    for name, data in files.items():
        _write(in_tmp / "inbox" / name, data)
    loaded = read_inputs(["inbox"], options=LoadOptions(ocr="never"))
    assert loaded.skipped == ()
    documents = [item for item in loaded.items if isinstance(item, Document)]
    assert [(d.id, d.source, d.media_type) for d in documents] == [
        ("inbox/a.csv", "inbox/a.csv", "text/csv"),
        (
            "inbox/b.docx",
            "inbox/b.docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ),
        ("inbox/c.eml", "inbox/c.eml", "message/rfc822"),
        ("inbox/d.html", "inbox/d.html", "text/html"),
        ("inbox/e.pdf", "inbox/e.pdf", "application/pdf"),
        (
            "inbox/f.xlsx",
            "inbox/f.xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        ("inbox/g.txt", "inbox/g.txt", "text/plain"),
    ]
    for document, data in zip(documents, files.values(), strict=True):
        assert document.metadata["file_sha256"] == hashlib.sha256(data).hexdigest()
    assert documents[4].pages[0].number == 1  # the PDF has its pages


def test_text_formats_keep_the_5_mb_limit_and_binary_formats_get_50_mb(in_tmp: Path) -> None:
    _write(in_tmp / "big.csv", b"a,b\n" * (6 * 1024 * 1024 // 4))
    _write(in_tmp / "big.xlsx", b"x" * (6 * 1024 * 1024))  # under 50 MB: read, and not a zip
    with open(in_tmp / "huge.pdf", "wb") as file:  # 51 MB as stat says it, never read
        file.truncate(DEFAULT_MAX_FILE_BYTES + 1024 * 1024)
    items = read_inputs(["big.csv", "big.xlsx", "huge.pdf"]).items
    messages = [str(item) for item in items]
    assert messages[0].startswith("`big.csv` is 6 MB, over the 5 MB limit;")
    assert messages[1].startswith("`big.xlsx` is not an Excel workbook (.xlsx)")
    assert messages[2].startswith("`huge.pdf` is 51 MB, over the 50 MB limit;")
    given = read_inputs(["big.xlsx"], max_bytes=1024).items
    assert str(given[0]).startswith("`big.xlsx` is 6 MB, over the 1024 bytes limit;")


def test_a_missing_extra_fails_its_own_documents_naming_the_extra(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    find_spec = importlib.util.find_spec

    def without_openpyxl(name: str, *args: Any) -> Any:
        return None if name == "openpyxl" else find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_openpyxl)
    _write(in_tmp / "inbox" / "a.xlsx", _workbook())
    _write(in_tmp / "inbox" / "b.txt", b"fine")
    first, second = read_inputs(["inbox"]).items
    assert isinstance(first, InputError) and first.document_id == "inbox/a.xlsx"
    assert str(first) == (
        "`inbox/a.xlsx`: reading an Excel workbook needs handrail's `documents` extra (missing: "
        "openpyxl); install it with `pip install 'handrail[documents]'`"
    )
    assert isinstance(second, Document)


def _csv_reader_raising(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    from handrail.documents import sheets

    def load_csv(*_: object, **__: object) -> Document:
        raise error

    monkeypatch.setattr(sheets, "load_csv", load_csv)


def test_a_readers_crash_fails_only_its_document(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _csv_reader_raising(monkeypatch, RuntimeError("boom"))
    _write(in_tmp / "a.csv", b"a,b\n")
    _write(in_tmp / "b.txt", b"fine")
    first, second = read_inputs(["a.csv", "b.txt"]).items
    assert str(first) == (
        "`a.csv` could not be read (RuntimeError: boom); this is a bug in handrail's reader for "
        "its format: please report it"
    )
    assert isinstance(second, Document)


def test_the_pdf_password_never_shows_in_a_message(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _csv_reader_raising(monkeypatch, InputError("`a.csv` did not open with password s3cret-Pw"))
    _write(in_tmp / "a.csv", b"a,b\n")
    (item,) = read_inputs(["a.csv"], options=LoadOptions(password="s3cret-Pw")).items
    assert str(item) == "`a.csv` did not open with password ***"


def test_split_attachments_make_one_document_each_and_list_unsupported_ones(
    in_tmp: Path,
) -> None:
    eml = email_with(
        ("invoice.pdf", "application/pdf", _pdf(["Invoice INV-7", "Total 1,234.50"])),
        ("notes.txt", "text/plain", b"Deliver to dock 4"),
        ("smime.p7s", "application/pkcs7-signature", b"\x30\x82"),
    )
    _write(in_tmp / "inbox" / "mail.eml", eml)
    _write(in_tmp / "inbox" / "z.txt", b"after")
    loaded = read_inputs(["inbox"], options=LoadOptions(split_attachments=True))
    ids = [item.id if isinstance(item, Document) else item.document_id for item in loaded.items]
    assert ids == [
        "inbox/mail.eml",
        "inbox/mail.eml#invoice.pdf",
        "inbox/mail.eml#notes.txt",
        "inbox/z.txt",
    ]
    body, invoice, notes, _ = loaded.items
    assert isinstance(body, Document) and isinstance(invoice, Document)
    assert isinstance(notes, Document)
    sha256 = hashlib.sha256(eml).hexdigest()
    assert {d.metadata["file_sha256"] for d in (body, invoice, notes)} == {sha256}
    assert (invoice.source, invoice.media_type, invoice.parts[0].name) == (
        "inbox/mail.eml",
        "application/pdf",
        "invoice.pdf",
    )
    assert invoice.find("1,234.50")[0].page == 1
    assert invoice.pages[0].label == "invoice.pdf, page 1"
    assert loaded.skipped == (
        Skipped(
            path="inbox/mail.eml#smime.p7s",
            reason="unsupported file type `.p7s` (handrail reads .txt, .md, .json, .csv, .eml, "
            ".html, .htm, .pdf, .png, .jpg, .jpeg, .tif, .tiff, .docx, .xlsx)",
        ),
    )
    together = read_inputs(["inbox/mail.eml"]).items
    assert len(together) == 1 and isinstance(together[0], Document)
    assert [part.name for part in together[0].parts] == [
        "body",
        "invoice.pdf",
        "notes.txt",
        "smime.p7s",
    ]


def test_a_pdf_piped_into_stdin_is_read_as_a_pdf() -> None:
    (item,) = read_inputs(["-"], stdin=io.BytesIO(_pdf(["Invoice INV-7"]))).items
    assert isinstance(item, Document)
    assert (item.id, item.source, item.media_type, item.text) == (
        "-",
        "-",
        "application/pdf",
        "Invoice INV-7",
    )
    assert "file_sha256" not in item.metadata  # stdin is no file to compare with later


def test_an_image_left_unread_fails_saying_why_and_how_to_read_it(in_tmp: Path) -> None:
    _write(in_tmp / "scan.png", _png("Total 12.00"))
    (item,) = read_inputs(["scan.png"], options=LoadOptions(ocr="never")).items
    assert isinstance(item, InputError) and item.document_id == "scan.png"
    message = str(item)
    assert message.startswith("`scan.png` has no text to process (")
    assert "OCR is off" in message  # the loader's warning says why
    assert message.endswith("; check the file, or leave it out of the batch")


def test_an_attachments_page_renders_from_the_email_file_in_both_modes(in_tmp: Path) -> None:
    from handrail.documents import render_pages

    eml = email_with(
        ("notes.txt", "text/plain", b"Deliver to dock 4"),
        ("invoice.pdf", "application/pdf", _pdf(["Invoice INV-7"])),
        ("scan.png", "image/png", _png("Receipt 99")),
    )
    _write(in_tmp / "mail.eml", eml)
    never = LoadOptions(ocr="never")
    (together,) = read_inputs(["mail.eml"], options=never).items
    split = read_inputs(["mail.eml"], options=LoadOptions(split_attachments=True))  # OCR: auto
    invoice, scan = split.items[2:]
    assert isinstance(together, Document)
    assert isinstance(invoice, Document) and isinstance(scan, Document)
    pdf_page, png_page = render_pages(together, [1, 2], max_side=400)
    assert (pdf_page.page, png_page.page) == (1, 2)
    assert png_page.width == 400  # the 900 x 300 image, scaled to fit
    assert render_pages(invoice, [1], max_side=400)[0].data == pdf_page.data
    assert render_pages(scan, [1], max_side=400)[0].data == png_page.data
