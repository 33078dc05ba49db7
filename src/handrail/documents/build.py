"""Putting a document together: its text, pages and parts, with every offset kept right.

Loaders give each page's text and its words (offsets relative to that page's text); `Builder`
joins the pages into one `Document.text` and moves every offset to where it lands. An e-mail
joins its body and its attachments' documents the same way (`Builder.include`).

    builder = Builder()
    builder.page(PageContent(text="Invoice 42", words=(...), width=612, height=792))
    document = builder.build(id="a.pdf", source="a.pdf", media_type="application/pdf")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from handrail.core.pages import Box, Page, PageText, Part, Word
from handrail.core.state import Document

PAGE_BREAK = "\n\n"
"""Between two pages' text (and between an e-mail's parts)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PageContent:
    """One page as a loader read it: its text and its words (offsets into this text)."""

    text: str
    words: tuple[Word, ...] = ()
    """Word.start is an offset into `text` (the builder moves it into the document's text)."""
    width: float
    height: float
    unit: Literal["pt", "px"] = "pt"
    text_from: PageText = "text"
    label: str = ""


def words_in(text: str, boxes: Sequence[Box | None]) -> tuple[Word, ...]:
    """The words of `text` (runs of non-space characters), each boxed by the union of its
    characters' boxes; `boxes[i]` is character i's box, or None where it has none (a space, a
    generated line break). A word none of whose characters has a box is left out."""
    words: list[Word] = []
    start = None
    for i, char in enumerate([*text, " "]):
        if not char.isspace():
            if start is None:
                start = i
            continue
        if start is not None:
            box = union(boxes[j] for j in range(start, i) if j < len(boxes))
            if box is not None:
                words.append(Word(text=text[start:i], box=box, start=start))
            start = None
    return tuple(words)


def union(boxes: Any) -> Box | None:
    """The smallest box holding all of `boxes` (None ones ignored); None if there are none."""
    left = top = float("inf")
    right = bottom = float("-inf")
    for box in boxes:
        if box is None:
            continue
        left, top = min(left, box[0]), min(top, box[1])
        right, bottom = max(right, box[2]), max(bottom, box[3])
    if left == float("inf"):
        return None
    return (round(left, 1), round(top, 1), round(right, 1), round(bottom, 1))


@dataclass(kw_only=True, slots=True)
class Builder:
    """Accumulates a document's text, pages and parts."""

    chunks: list[str] = field(default_factory=list)
    length: int = 0
    pages: list[Page] = field(default_factory=list)
    parts: list[Part] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def _append(self, text: str) -> int:
        """Append `text` (after a break if something came before); returns where it starts."""
        if self.length and text:
            self.chunks.append(PAGE_BREAK)
            self.length += len(PAGE_BREAK)
        start = self.length
        self.chunks.append(text)
        self.length += len(text)
        return start

    def text(self, text: str) -> tuple[int, int]:
        """Add text that is not on a page (an e-mail's body); returns its span."""
        start = self._append(text)
        return start, start + len(text)

    def page(self, content: PageContent, *, part: int = 0) -> Page:
        """Add one page; returns it with its number and offsets in the document."""
        start = self._append(content.text) if content.text else self.length
        page = Page(
            number=len(self.pages) + 1,
            width=round(content.width, 1),
            height=round(content.height, 1),
            unit=content.unit,
            start=start,
            end=start + len(content.text),
            words=tuple(dataclasses.replace(w, start=w.start + start) for w in content.words),
            text_from=content.text_from,
            part=part,
            label=content.label,
        )
        self.pages.append(page)
        return page

    def include(self, document: Document, *, name: str) -> Part:
        """Add another document (an attachment) as a part: its text, its pages renumbered and
        moved, its warnings prefixed with its name. Returns the part."""
        index = len(self.parts)
        start = self._append(document.text) if document.text else self.length
        numbers = []
        for page in document.pages:
            moved = dataclasses.replace(
                page,
                number=len(self.pages) + 1,
                start=page.start + start,
                end=page.end + start,
                words=tuple(dataclasses.replace(w, start=w.start + start) for w in page.words),
                part=index,
                label=page.label or f"{name}, page {page.number}",
            )
            self.pages.append(moved)
            numbers.append(moved.number)
        part = Part(
            name=name,
            media_type=document.media_type,
            start=start,
            end=start + len(document.text),
            pages=tuple(numbers),
        )
        self.parts.append(part)
        self.warnings.extend(f"{name}: {warning}" for warning in document.warnings)
        return part

    def part(self, part: Part) -> None:
        """Add a part whose text was added with `text` (or that failed: `part.error`)."""
        self.parts.append(part)

    def build(
        self,
        *,
        id: str,
        source: str | None,
        media_type: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> Document:
        return Document(
            text="".join(self.chunks),
            id=id,
            source=source,
            metadata=dict(metadata or {}),
            media_type=media_type,
            pages=tuple(self.pages),
            parts=tuple(self.parts),
            warnings=tuple(self.warnings),
        )


__all__ = ["PAGE_BREAK", "Builder", "PageContent", "union", "words_in"]
