"""Where a document's text sits on its pages: `Page`, `Word`, `Part`, and `Place` (a value found
on a page).

A loader that reads a paged format (a PDF, a scan, an image) gives the `Document` its pages: each
page knows its size, the span of `Document.text` it produced, and its words with their boxes. The
prompts keep seeing `text`; what knows positions is what shows a person where a value came from
(the review inbox) and what says on which page a check found it.

Coordinates are the page's own: `unit` is `pt` (PDF points, 1/72 inch) or `px` (an image's
pixels), measured from the page's top-left corner, `box = (left, top, right, bottom)`.

    doc.find("1,234.50")      # (Place(page=2, start=..., end=..., boxes=((x0, y0, x1, y1),)),)
    doc.page_at(offset)       # the Page whose text holds that offset, if any
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Box = tuple[float, float, float, float]
"""(left, top, right, bottom) in the page's unit, from its top-left corner."""

PageText = Literal["text", "ocr", "none"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Word:
    """One word on a page."""

    text: str
    """The word as it reads in `Document.text`."""
    box: Box
    """Where it sits on its page: (left, top, right, bottom), from the top-left corner."""
    start: int
    """Its offset in `Document.text`: `text[start:start + len(word.text)] == word.text`."""
    confidence: float | None = None
    """How sure the OCR engine was (0..1), for words read from an image; None for a text layer."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Page:
    """One page of a paged document (a PDF page, a scan, an image)."""

    number: int
    """1-based, counted across the whole document (an e-mail's attachments follow each other)."""
    width: float
    height: float
    unit: Literal["pt", "px"] = "pt"
    start: int = 0
    """Where this page's text starts in `Document.text`."""
    end: int = 0
    """Where it ends (exclusive)."""
    words: tuple[Word, ...] = ()
    """Its words in reading order, each with its box and offset."""
    text_from: PageText = "text"
    """How its text was obtained: the PDF's text layer, OCR, or not at all (an image page left
    unread: OCR off or unavailable, which the document's `warnings` then say)."""
    part: int = 0
    """The index in `Document.parts` of the file it belongs to (0 for a plain PDF)."""
    label: str = ""
    """The page as a person would name it: `invoice.pdf, page 2`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Part:
    """One piece of a document made of several files: an e-mail's body and each attachment."""

    name: str
    """`body` for an e-mail's text, else the attachment's file name."""
    media_type: str
    """`text/plain`, `application/pdf`, `image/png`..."""
    start: int = 0
    """Where its text starts in `Document.text`."""
    end: int = 0
    pages: tuple[int, ...] = ()
    """The numbers of its pages in `Document.pages` (none for a format without pages)."""
    error: str | None = None
    """Why it could not be read, when it could not (its text then says so, never silently)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Place:
    """Where a value occurs: the span of `Document.text` and, for paged text, its page and boxes."""

    start: int
    end: int
    page: int | None = None
    """The page number, or None where the text has no pages (plain text, an e-mail body)."""
    boxes: tuple[Box, ...] = ()
    """The boxes of the words the value covers, in the page's unit."""


def page_at(pages: Sequence[Page], offset: int) -> Page | None:
    """The page whose text holds `offset`, if any."""
    for page in pages:
        if page.start <= offset < page.end:
            return page
    return None


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def find_places(
    text: str, pages: Sequence[Page], value: str, *, limit: int = 20
) -> tuple[Place, ...]:
    """Where `value` occurs in `text`, case-insensitive and with any run of white space matching
    any other (a value split over two lines is found), at most `limit` places."""
    words = value.split()
    if not words:
        return ()
    pattern = re.compile(r"\s+".join(re.escape(_fold(word)) for word in words))
    folded = _fold(text)
    if len(folded) != len(text):  # folding changed lengths (ß -> ss): offsets would drift
        pattern = re.compile(r"\s+".join(re.escape(word) for word in words), re.IGNORECASE)
        folded = text
    places = []
    for match in pattern.finditer(folded):
        places.append(_place(pages, match.start(), match.end()))
        if len(places) >= limit:
            break
    return tuple(places)


def _place(pages: Sequence[Page], start: int, end: int) -> Place:
    page = page_at(pages, start)
    if page is None:
        return Place(start=start, end=end)
    boxes = tuple(
        word.box for word in page.words if word.start < end and word.start + len(word.text) > start
    )
    return Place(start=start, end=end, page=page.number, boxes=boxes)


__all__ = ["Box", "Page", "PageText", "Part", "Place", "Word", "find_places", "page_at"]
