"""Paged documents for the review tests: a real PDF drawn with reportlab (lines of Helvetica at
known places), and the `Document` a PDF loader gives for it, built with `Builder` so each word's
box is known exactly (from reportlab's own font metrics), whatever the PDF loader does. The
document's `source` and `file_sha256` are those of the file, as `handrail run` records them.

A `paged` pipeline reviews them: its scripted model reads the vendor, number and total, and is
unsure of the total, so every run waits for review.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from handrail import Document, Extract, FakeModel, Gate, PipelineBuilder, Reply
from handrail.core.pages import Part, Word
from handrail.documents import Builder, PageContent

WIDTH, HEIGHT = 612.0, 792.0
"""US Letter, in points."""
SIZE = 12.0
LEFT, TOP, LEADING = 72.0, 72.0, 18.0

PAGES = (
    ("HARBOUR & FINCH LTD.", "12 Quay Street, Bristol", "Invoice no: HF-2291"),
    ("Office chairs 2 x 189.00", "Delivery 24.00", "Total due GBP 402.00"),
)
"""The invoice's two pages: the vendor and number on page 1, the total on page 2."""
VENDOR, NUMBER, TOTAL = "Harbour & Finch Ltd.", "HF-2291", 402.0


def draw_pdf(path: Path, pages: Sequence[Sequence[str]] = PAGES) -> bytes:
    """Write a PDF with one page per entry, each line drawn at its `line_top`; its bytes."""
    from reportlab.pdfgen.canvas import Canvas

    canvas = Canvas(str(path), pagesize=(WIDTH, HEIGHT), invariant=1)
    for lines in pages:
        canvas.setFont("Helvetica", SIZE)
        for index, line in enumerate(lines):
            canvas.drawString(LEFT, HEIGHT - _baseline(index), line)
        canvas.showPage()
    canvas.save()
    return path.read_bytes()


def _baseline(index: int) -> float:
    """Line `index`'s baseline, from the page's top."""
    return TOP + index * LEADING


def page_content(lines: Sequence[str]) -> PageContent:
    """A page as a PDF loader reads it: its text, and each word boxed from the top-left."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    text = "\n".join(lines)
    words: list[Word] = []
    offset = 0
    for index, line in enumerate(lines):
        for match in re.finditer(r"\S+", line):
            left = LEFT + stringWidth(line[: match.start()], "Helvetica", SIZE)
            right = left + stringWidth(match.group(), "Helvetica", SIZE)
            base = _baseline(index)
            top, bottom = base - 0.8 * SIZE, base + 0.2 * SIZE
            box = (round(left, 1), round(top, 1), round(right, 1), round(bottom, 1))
            words.append(Word(text=match.group(), box=box, start=offset + match.start()))
        offset += len(line) + 1
    return PageContent(text=text, words=tuple(words), width=WIDTH, height=HEIGHT)


def pdf_document(
    pdf: Path, pages: Sequence[Sequence[str]] = PAGES, *, source: str | None = None
) -> Document:
    """The document of the PDF at `pdf` (drawn by `draw_pdf` from `pages`), as `handrail run`
    would keep it: source (`source`, else the file's name), file_sha256, pages with words."""
    builder = Builder()
    for lines in pages:
        builder.page(page_content(lines))
    name = source or pdf.name
    return builder.build(id=name, source=name, media_type="application/pdf", metadata=_sha(pdf))


def email_document(eml: Path, pdf_pages: Sequence[Sequence[str]] = PAGES) -> Document:
    """An e-mail (the file at `eml`) as one document: its body, `invoice.pdf` with its pages,
    and a `photo.heic` attachment that could not be read."""
    builder = Builder()
    body = (
        "Subject: Invoice HF-2291\nFrom: accounts@harbourfinch.example\n\nPlease find it attached."
    )
    start, end = builder.text(body)
    builder.part(Part(name="body", media_type="text/plain", start=start, end=end))
    attached = Builder()
    for lines in pdf_pages:
        attached.page(page_content(lines))
    pdf = attached.build(id="invoice.pdf", source="invoice.pdf", media_type="application/pdf")
    builder.include(pdf, name="invoice.pdf")
    why = "unsupported file type `.heic`"
    start, end = builder.text(f"[attachment photo.heic could not be read: {why}]")
    builder.part(Part(name="photo.heic", media_type="image/heic", start=start, end=end, error=why))
    builder.warnings.append(f"photo.heic: could not be read: {why}")
    metadata = {
        "subject": "Invoice HF-2291",
        "from": "accounts@harbourfinch.example",
        "date": "Tue, 17 Nov 2026 09:12:00 +0000",
    } | _sha(eml)
    return builder.build(
        id=eml.name, source=eml.name, media_type="message/rfc822", metadata=metadata
    )


def write_email(path: Path, pdf: bytes) -> bytes:
    """An .eml with a short body and `pdf` attached as invoice.pdf; its bytes."""
    from email.message import EmailMessage

    message = EmailMessage()
    message["Subject"] = "Invoice HF-2291"
    message["From"] = "accounts@harbourfinch.example"
    message["Date"] = "Tue, 17 Nov 2026 09:12:00 +0000"
    message.set_content("Please find it attached.")
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="invoice.pdf")
    path.write_bytes(message.as_bytes())
    return path.read_bytes()


def _sha(path: Path) -> dict[str, str]:
    return {"file_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


class Invoice(BaseModel):
    vendor: str
    number: str
    total: float


model = FakeModel(
    {
        "invoice": Reply(
            {"vendor": VENDOR, "number": NUMBER, "total": TOTAL},
            field_confidence={"vendor": 0.95, "number": 0.95, "total": 0.4},
        )
    },
    heuristic=False,
)

pipeline = (
    PipelineBuilder("paged")
    .add(Extract("invoice", schema=Invoice, model=model, gate=Gate(accept=0.8)))
    .build()
)
