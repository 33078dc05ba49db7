"""What a loader may do and how far it may go: `LoadOptions`, the limits every loader keeps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

OcrMode = Literal["auto", "always", "never"]
OcrEngine = Literal["rapidocr", "tesseract"]


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadOptions:
    """How documents are read. The defaults suit intake (invoices, claims, forms); every limit
    refuses the one document that passes it, with a message naming the limit and the option."""

    max_pages: int = 500
    """Pages read from one file (a PDF, a TIFF); a file with more fails its own document."""
    max_page_side: float = 14_400.0
    """Longest side of a PDF page, in points (14,400 pt = 200 in, the PDF format's own limit)."""
    max_image_pixels: int = 60_000_000
    """Pixels of one image or rendered page (a decompression bomb is refused, not decoded)."""
    page_timeout_s: float = 10.0
    """Seconds for reading one page's text layer; checked after each page."""
    ocr: OcrMode = "auto"
    """`auto`: OCR only the pages (and images) without a text layer; `always`: OCR every page;
    `never`: no OCR (an image-only page is left empty, and the document's warnings say so)."""
    ocr_engine: OcrEngine = "rapidocr"
    """Which OCR engine reads scans (docs/ocr.md compares them on SROIE's receipts)."""
    ocr_timeout_s: float = 60.0
    """Seconds of OCR for one page; checked after each page."""
    ocr_scale: float = 2.0
    """Render scale for OCR of an image-only PDF page (2.0 = 144 dpi)."""
    password: str | None = field(default=None, repr=False)
    """The password for encrypted PDFs (`handrail run` reads `HANDRAIL_PDF_PASSWORD`). Never
    logged, never stored with the document, left out of the options' repr."""
    split_attachments: bool = False
    """An e-mail with attachments is one document with parts (the default), or, with this, one
    document per attachment (`mail.eml#invoice.pdf`) plus the body."""
    max_attachments: int = 20
    """Attachments read from one e-mail; more fail the e-mail's document."""
    max_depth: int = 3
    """How deep e-mails attached to e-mails are followed."""
    max_chars: int = 5_000_000
    """Characters of text from one document."""
    max_unzipped_bytes: int = 250_000_000
    """Bytes a Word or Excel file (a zip of XML files) may unpack to; one that would unpack to
    more (a zip bomb) is refused before anything is unpacked."""


DEFAULT_OPTIONS = LoadOptions()

__all__ = ["DEFAULT_OPTIONS", "LoadOptions", "OcrEngine", "OcrMode"]
