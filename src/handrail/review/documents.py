"""A review's document, ready to show beside the form: an e-mail split into its headers and
body, JSON pretty-printed, plain text as it is; with each extracted value highlighted where it
occurs (character offsets into the body shown). A paged document (a PDF, a scan, an e-mail read
with its attachments) keeps its text as it is, and each highlight on a page becomes a place on
that page with the boxes of its words (`review_document`)."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from email import policy
from email.message import EmailMessage
from email.parser import Parser
from typing import Any

from handrail.core.state import Document
from handrail.review.views import DocumentView, FieldView, Highlight, PageView, ValuePlace

_HEADER = re.compile(r"^[A-Za-z][A-Za-z0-9-]*:[ \t]")
_EMAIL_HEADERS = frozenset({"from", "to", "subject", "date", "message-id", "cc", "reply-to"})
_METADATA_HEADERS = {"to": "To", "cc": "Cc", "message_id": "Message-ID"}
_EMAIL_METADATA = {
    "from": "From",
    "to": "To",
    "cc": "Cc",
    "subject": "Subject",
    "date": "Date",
    "message_id": "Message-ID",
}
"""The headers an e-mail's loader keeps in `Document.metadata`, as a review shows them."""
_MIN_LENGTH = 2
"""Values shorter than this (`a`, `1`) would light up half the document: not highlighted."""


def review_document(
    document: Document, fields: Sequence[FieldView] = (), *, images: str | None = None
) -> DocumentView:
    """How a review shows `document`: `paged_view` for one with pages or parts, else
    `document_view` of its text. `images`: why its pages cannot be shown as images, if so."""
    if document.pages or document.parts:
        return paged_view(document, fields, images=images)
    view = document_view(document.text, fields, name=document.id, metadata=document.metadata)
    return dataclasses.replace(view, media_type=document.media_type, warnings=document.warnings)


def paged_view(
    document: Document, fields: Sequence[FieldView] = (), *, images: str | None = None
) -> DocumentView:
    """A document with pages or parts, its text shown as the prompts saw it (an e-mail's headers
    from its metadata), each value highlighted, and each highlight on a page listed on that
    page with the boxes of its words."""
    marks = highlights(document.text, fields)
    on_page: dict[int, list[ValuePlace]] = {}
    for mark in marks:
        page = document.page_at(mark.start)
        if page is None:
            continue  # in an e-mail's body, or across a page break
        boxes = tuple(
            word.box
            for word in page.words
            if word.start < mark.end and word.start + len(word.text) > mark.start
        )
        on_page.setdefault(page.number, []).append(
            ValuePlace(
                path=mark.path, page=page.number, start=mark.start, end=mark.end, boxes=boxes
            )
        )
    parts = document.parts
    pages = tuple(
        PageView(
            number=page.number,
            label=page.label or f"page {page.number}",
            width=page.width,
            height=page.height,
            unit=page.unit,
            text_from=page.text_from,
            part=parts[page.part].name if page.part < len(parts) else None,
            places=tuple(on_page.get(page.number, ())),
        )
        for page in document.pages
    )
    email = document.media_type == "message/rfc822"
    headers = {
        header: value
        for key, header in _EMAIL_METADATA.items()
        if isinstance(value := document.metadata.get(key), str) and email
    }
    return DocumentView(
        kind="email" if email else "text",
        text=document.text,
        headers=headers,
        body=document.text,
        highlights=marks,
        media_type=document.media_type,
        pages=pages,
        parts=parts,
        warnings=document.warnings,
        images=images if pages else None,
    )


def document_view(
    text: str,
    fields: Sequence[FieldView] = (),
    *,
    name: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> DocumentView:
    """`text` as an e-mail (headers, then a blank line: `.eml`-like), JSON, or plain text,
    with the values of `fields` highlighted in the body. `name` (the document's id or path)
    helps tell an e-mail by its suffix; an e-mail's headers the text leaves out (`To`) come
    from the document's `metadata` when it kept them (`handrail run` reading a `.eml`)."""
    email = _as_email(text, name)
    if email is not None:
        headers, body = email
        for key, value in (metadata or {}).items():
            header = _METADATA_HEADERS.get(key.lower())
            if header is not None and header not in headers and isinstance(value, str):
                headers[header] = value
        return DocumentView(
            kind="email",
            text=text,
            headers=headers,
            body=body,
            highlights=highlights(body, fields),
        )
    pretty = _as_json(text)
    if pretty is not None:
        return DocumentView(
            kind="json", text=text, body=pretty, highlights=highlights(pretty, fields)
        )
    return DocumentView(kind="text", text=text, body=text, highlights=highlights(text, fields))


def _as_email(text: str, name: str | None) -> tuple[dict[str, str], str] | None:
    head, sep, _ = text.replace("\r\n", "\n").partition("\n\n")
    lines = head.splitlines()
    if not sep or not lines or not _HEADER.match(lines[0]):
        return None
    names = {line.split(":", 1)[0].lower() for line in lines if _HEADER.match(line)}
    if not (names & _EMAIL_HEADERS) and not (name or "").lower().endswith(".eml"):
        return None
    if any(not _HEADER.match(line) and not line[:1].isspace() for line in lines):
        return None  # a line in the head that is neither a header nor a folded one
    message = Parser(policy=policy.default).parsestr(text)
    headers = {key: str(value) for key, value in message.items()}
    return headers, _body(message, text)


def _body(message: Any, text: str) -> str:
    """The plain-text body (the first text/plain part of a multipart message), decoded; the
    raw text after the headers when there is none."""
    if isinstance(message, EmailMessage):
        part = message.get_body(preferencelist=("plain",))
        if part is not None and part.get("Content-Transfer-Encoding", "7bit").strip().lower() in (
            "7bit",
            "8bit",
            "binary",
        ):
            # The document is text already decoded: the part's payload is what was written.
            # (get_content() of a message parsed from a str escapes non-ASCII, e.g. "\u20ac".)
            payload = part.get_payload()
            if isinstance(payload, str):
                return payload.replace("\r\n", "\n")
        if part is not None:
            try:
                content = part.get_content()
            except (LookupError, ValueError):  # an unknown charset or a broken encoding
                content = None
            if isinstance(content, str):
                return content
    return text.replace("\r\n", "\n").partition("\n\n")[2]


def _as_json(text: str) -> str | None:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        data = json.loads(stripped)
    except ValueError:
        return None
    return json.dumps(data, indent=2, ensure_ascii=False)


def highlights(body: str, fields: Iterable[FieldView]) -> tuple[Highlight, ...]:
    """Every place a field's value occurs in `body` (case-insensitive, any run of white space
    matching any other, so a name broken over two lines is found; not inside a longer word or
    number); where two overlap, the longer (then the earlier) wins."""
    found: list[Highlight] = []
    folded = body.casefold() if len(body.casefold()) == len(body) else None
    for view in fields:
        for needle in _spellings(view.value):
            haystack, wanted = (folded, needle.casefold()) if folded is not None else (body, needle)
            if folded is not None and len(wanted) != len(needle):
                haystack, wanted = body, needle
            for start, end in _occurrences(haystack, wanted):
                found.append(Highlight(start=start, end=end, path=view.path))
    found.sort(key=lambda h: (-(h.end - h.start), h.start))
    kept: list[Highlight] = []
    for candidate in found:
        if all(candidate.end <= h.start or candidate.start >= h.end for h in kept):
            kept.append(candidate)
    return tuple(sorted(kept, key=lambda h: h.start))


def _spellings(value: Any) -> list[str]:
    """How a value may be written in a document: a string as it is; a number as written
    (`1250.5`), with two decimals (`1250.50`) and with thousands separators (`1,250.50`); a
    date as ISO (`2025-03-05`)."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        forms = {repr(value) if isinstance(value, float) else str(value)}
        if isinstance(value, float) and value.is_integer():
            forms.add(str(int(value)))
        forms |= {f"{value:.2f}", f"{value:,.2f}", f"{value:,}"}
        return sorted(f for f in forms if len(f) >= _MIN_LENGTH)
    if isinstance(value, datetime | date):
        return [value.isoformat()[:10]]
    if isinstance(value, str):
        stripped = value.strip()
        return [stripped] if len(stripped) >= _MIN_LENGTH else []
    return []


def _occurrences(haystack: str, needle: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each occurrence of `needle`, its spaces matching any white space."""
    pattern = re.compile(r"\s+".join(re.escape(word) for word in needle.split()))
    start = 0
    while (match := pattern.search(haystack, start)) is not None:
        begin, end = match.span()
        before = haystack[begin - 1] if begin > 0 else ""
        after = haystack[end] if end < len(haystack) else ""
        if not (_joins(before, needle[0]) or _joins(after, needle[-1])):
            yield begin, end
        start = begin + 1


def _joins(neighbour: str, edge: str) -> bool:
    """Whether `neighbour` continues the word or number that `edge` begins or ends."""
    if not neighbour:
        return False
    if edge.isdigit():
        return neighbour.isdigit()
    return edge.isalnum() and neighbour.isalnum()


__all__ = ["document_view", "highlights", "paged_view", "review_document"]
