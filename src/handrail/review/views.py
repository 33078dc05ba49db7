"""What the review service shows: a review with its decision, the inbox, a review's fields
and document, as plain frozen records the CLI and the web app render as they like."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from handrail.core.pages import Box, Part
from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, StepRecord

if TYPE_CHECKING:
    from handrail.durable import Claim


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewView:
    """A review with its decision, if it has one."""

    request: ReviewRequest
    decision: ReviewDecision | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Session:
    """A signed-in reviewer's session (the web app's cookie)."""

    session_id: str
    """The cookie's value (random); the store keeps only its sha256."""
    csrf: str
    """The token every form of this session posts back."""
    expires_at: datetime
    """When signing in again is needed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class InboxItem:
    """One pending review in the inbox."""

    review_id: str
    run_id: str
    pipeline: str
    node: str
    queue: str
    reasons: str
    """Why it waits, in a few words: "`total` 0.41 < 0.80; check totals_match"."""
    lowest_confidence: float | None
    """The lowest field confidence (else the output's), None when the model gave none."""
    lowest_field: str | None
    """The field with the lowest confidence (None for an output's own confidence)."""
    created_at: datetime
    age_s: float
    """Seconds since the review was raised."""
    deadline: datetime | None
    overdue: bool
    """The deadline has passed (the escalation is due)."""
    escalation: str | None
    """What an escalation did to it, if one moved it here."""
    claim: Claim | None
    """Who is working on it, until when (a live claim only)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class InboxPage:
    """A page of the inbox, with how many match in all."""

    items: list[InboxItem]
    total: int
    page: int
    """1-based."""
    per_page: int
    pages: int
    """How many pages `total` makes (at least 1)."""
    queues: dict[str, int]
    """Pending reviews per queue the viewer may see."""


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldView:
    """One leaf field of the output under review (the whole output, for a label)."""

    path: str
    """Dotted, list items by index: `vendor`, `address.city`, `lines.0.amount`."""
    label: str
    """For people: `Lines #1 amount`."""
    value: Any
    confidence: float | None
    """The model's confidence in it (its own, else its enclosing field's), if any."""
    threshold: float | None
    """What the gate holds it to; None when it holds it to none, or that is not known."""
    flagged: bool
    """Below its threshold, without the confidence its threshold needs, or named by a reason."""
    reasons: tuple[str, ...] = ()
    """The messages of the reasons naming it (or its enclosing field)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Highlight:
    """Where an extracted value occurs in `DocumentView.body`: `body[start:end]`."""

    start: int
    end: int
    path: str
    """The field whose value it is."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ValuePlace:
    """Where an extracted value sits on a page: one `Highlight` of a paged document's text."""

    path: str
    """The field whose value it is."""
    page: int
    """The page's number (`Document.pages` numbering, from 1)."""
    start: int
    """Its span of `DocumentView.body` (which is the document's text for a paged document)."""
    end: int
    boxes: tuple[Box, ...]
    """The boxes of the words it covers, in the page's unit from its top-left corner."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PageView:
    """One page of a paged document, with the extracted values on it."""

    number: int
    label: str
    """For people: `page 2`, or `invoice.pdf, page 1` for an e-mail's attachment."""
    width: float
    height: float
    """The page's size in its unit: what the value boxes are measured in."""
    unit: str
    """`pt` (a PDF page) or `px` (an image)."""
    text_from: str
    """`text` (the PDF's text layer), `ocr`, or `none` (an image page left unread)."""
    part: str | None
    """The name of the file it belongs to in an e-mail (`invoice.pdf`); None for a single file."""
    places: tuple[ValuePlace, ...] = ()
    """The extracted values on this page."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DocumentView:
    """The document of a review, ready to show."""

    kind: Literal["text", "email", "json"]
    text: str
    """The document's text as the run got it."""
    headers: dict[str, str] = field(default_factory=dict)
    """An e-mail's headers (From, To, Subject, Date...); empty for other kinds."""
    body: str = ""
    """What to show: an e-mail's body, JSON pretty-printed, or the text."""
    highlights: tuple[Highlight, ...] = ()
    """Extracted values where they occur in `body`, by start, never overlapping."""
    media_type: str = "text/plain"
    """What the file was (`application/pdf`, `message/rfc822`...)."""
    pages: tuple[PageView, ...] = ()
    """A paged document's pages (a PDF, a scan, an e-mail's such attachments); then `body` is
    the document's text as it is, so highlights and places share its offsets."""
    parts: tuple[Part, ...] = ()
    """An e-mail's body and attachments (name, media type, pages, and why one could not be
    read); empty for a single file."""
    warnings: tuple[str, ...] = ()
    """What the loader could not do (a page without text and OCR off, an unreadable
    attachment), as the run's warnings say it."""
    images: str | None = None
    """Why the pages cannot be shown as images (the file is gone, changed since the run read
    it, or was never a file); None when they can. The text is shown either way."""

    def pages_of(self, path: str) -> tuple[int, ...]:
        """The numbers of the pages `path`'s value is on, in order."""
        return tuple(sorted({p.page for page in self.pages for p in page.places if p.path == path}))

    def page(self, number: int) -> PageView | None:
        """Page `number`, if the document has it."""
        if 1 <= number <= len(self.pages) and self.pages[number - 1].number == number:
            return self.pages[number - 1]
        return next((page for page in self.pages if page.number == number), None)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewDetail:
    """Everything a reviewer needs to decide one review."""

    request: ReviewRequest
    decision: ReviewDecision | None
    run: RunRecord | None
    """The run it belongs to (None for a review kept without its run)."""
    output_type: Any
    """The node's output type (a pydantic model class, a Literal, str...); None when the
    pipeline's code cannot be found."""
    fields: tuple[FieldView, ...]
    document: DocumentView | None
    claim: Claim | None
    history: tuple[StepRecord, ...]
    """The run's steps."""
    decisions: tuple[tuple[str, ReviewDecision], ...]
    """The run's decisions so far: (review id, decision)."""
    schema_errors: tuple[tuple[str, str], ...]
    """After a schema failure: (field, why) for the node's last answer."""
    run_status: str | None
    """`needs_review`, `running`, `completed`, `rejected` or `failed`."""


__all__ = [
    "DocumentView",
    "FieldView",
    "Highlight",
    "InboxItem",
    "InboxPage",
    "PageView",
    "ReviewDetail",
    "ReviewView",
    "Session",
    "ValuePlace",
]
