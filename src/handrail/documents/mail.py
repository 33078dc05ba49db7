"""E-mails (`.eml`): the headers and body, and every attachment read by its own loader.

An e-mail is one document with parts (the default): part 0 is the body (`Subject`, `From` and
`Date` lines, then the text body, or the HTML body reduced to text), then one part per
attachment, each read through `load_bytes` (PDFs, scans, Word, Excel, CSV, text, e-mails
attached to e-mails up to `LoadOptions.max_depth`). An attachment's text follows a line
`[attachment invoice.pdf]`; its pages join the document's pages. An attachment that cannot be
read, or is of a type handrail does not read, does not fail the e-mail: its part has the
`error`, its text says `[attachment x could not be read: why]`, and a warning says so.

`split_email` is the other choice (`LoadOptions.split_attachments`, `--split-attachments`): the
body is one document and each attachment another, `mail.eml#invoice.pdf`.

Attachments are named by their file names, made unique (`scan.pdf`, `scan (2).pdf`); an
attachment without one is `attachment-2.pdf` (its position, the suffix its media type calls
for). `attachment_data(eml, name)` gives an attachment's bytes back (to render its pages).
"""

from __future__ import annotations

import dataclasses
import email.policy
import html
import importlib.util
import mimetypes
import re
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import PurePosixPath
from typing import Any

from handrail.core.pages import Part
from handrail.core.state import Document
from handrail.documents.build import Builder
from handrail.documents.load import SUFFIXES, format_for, load_bytes
from handrail.documents.options import LoadOptions
from handrail.documents.text import not_empty, shown, unbom
from handrail.exceptions import InputError

MEDIA_TYPE = "message/rfc822"
_HEADERS = ("Subject", "From", "Date", "To")
_SHOWN_HEADERS = ("Subject", "From", "Date")


@dataclass(frozen=True, kw_only=True, slots=True)
class Attachment:
    """One file attached to an e-mail."""

    name: str
    """Its file name, made unique within the e-mail (`scan.pdf`, `scan (2).pdf`)."""
    media_type: str
    """What its MIME part declares (`application/pdf`); the name's suffix decides first."""
    data: bytes
    """Its decoded bytes."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Split:
    """An e-mail read as several documents (`split_email`)."""

    documents: tuple[Document | InputError, ...]
    """The body (id `mail.eml`), then one per attachment (`mail.eml#invoice.pdf`), or the
    `InputError` (with its `document_id`) of an attachment that cannot be read."""
    skipped: tuple[tuple[str, str], ...] = ()
    """(id, reason) of the attachments of types handrail does not read."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Mail:
    body: str
    """The header lines and the text body, as the body part reads."""
    body_type: str
    metadata: dict[str, str]
    attachments: tuple[Attachment, ...]


def load_email(data: bytes, *, name: str, options: LoadOptions) -> Document:
    """The e-mail in `data` as one document: its body, then each attachment as a part."""
    mail = _read(data, name=name, options=options)
    if not mail.attachments:
        text = not_empty(mail.body, name=name)
        return Document(
            text=text, id=name, source=name, metadata=mail.metadata, media_type=MEDIA_TYPE
        )
    builder = Builder()
    start, end = builder.text(mail.body.rstrip("\n"))
    builder.part(Part(name="body", media_type=mail.body_type, start=start, end=end))
    for attachment in mail.attachments:
        try:
            document = _load(attachment, options)
        except InputError as e:
            reason = str(e)
            start, end = builder.text(f"[attachment {attachment.name} could not be read: {reason}]")
            builder.part(
                Part(
                    name=attachment.name,
                    media_type=attachment.media_type,
                    start=start,
                    end=end,
                    error=reason,
                )
            )
            builder.warnings.append(f"attachment {attachment.name} could not be read: {reason}")
            continue
        builder.text(f"[attachment {attachment.name}]")
        builder.include(document, name=attachment.name)
    return builder.build(id=name, source=name, media_type=MEDIA_TYPE, metadata=mail.metadata)


def split_email(data: bytes, *, name: str, options: LoadOptions) -> Split:
    """The e-mail in `data` as several documents: the body (`name`), listing its attachments,
    then each attachment (`name#attachment`), with the e-mail's headers in its metadata and one
    part naming the attachment. Raises `InputError` when the e-mail itself cannot be read."""
    mail = _read(data, name=name, options=options)
    listed = "".join(f"\n\n[attachment {a.name}]" for a in mail.attachments)
    body_text = mail.body.rstrip("\n") + listed if listed else mail.body
    documents: list[Document | InputError] = []
    try:
        text = not_empty(body_text, name=name)
        documents.append(
            Document(text=text, id=name, source=name, metadata=mail.metadata, media_type=MEDIA_TYPE)
        )
    except InputError as e:
        documents.append(InputError(str(e), document_id=name))
    skipped: list[tuple[str, str]] = []
    for attachment in mail.attachments:
        document_id = f"{name}#{attachment.name}"
        problem = _unsupported(attachment)
        if problem is not None:
            skipped.append((document_id, problem))
            continue
        try:
            document = _load(attachment, options)
        except InputError as e:
            documents.append(InputError(f"in `{name}`: {e}", document_id=document_id))
            continue
        builder = Builder()
        builder.include(document, name=attachment.name)
        metadata = {**mail.metadata, **document.metadata, "attachment": attachment.name}
        documents.append(
            builder.build(
                id=document_id, source=name, media_type=document.media_type, metadata=metadata
            )
        )
    return Split(documents=tuple(documents), skipped=tuple(skipped))


def attachment_data(eml: bytes, name: str) -> bytes:
    """The bytes of the attachment called `name` (as `Part.name` reads) in the e-mail `eml`."""
    message = _parse(eml, name="the e-mail")
    for attachment in _attachments(message):
        if attachment.name == name:
            return attachment.data
    raise InputError(
        f"the e-mail has no attachment `{name}`; it may have changed since it was read"
    )


# --- reading the message --------------------------------------------------------------------


def _read(data: bytes, *, name: str, options: LoadOptions) -> _Mail:
    message = _parse(unbom(data, name=name), name=name)
    metadata = _metadata(message)
    body, body_type = _body(message)
    lines = [f"{key}: {metadata[key.lower()]}" for key in _SHOWN_HEADERS if key.lower() in metadata]
    if not body.strip() and "subject" not in metadata:
        text = ""  # a bare From/Date carries nothing to process
    else:
        text = "\n".join(lines) + "\n\n" + body.strip() + "\n"
    attachments = _attachments(message)
    if len(attachments) > options.max_attachments:
        raise InputError(
            f"{shown(name)} has {len(attachments)} attachments, over the "
            f"{options.max_attachments} limit; forward them in smaller e-mails, or raise "
            "LoadOptions.max_attachments"
        )
    if attachments and not text:
        text = "\n".join(lines) + "\n" if lines else ""
    return _Mail(body=text, body_type=body_type, metadata=metadata, attachments=attachments)


def _parse(data: bytes, *, name: str) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)  # always so with policy.default
    return message


def _metadata(message: EmailMessage) -> dict[str, str]:
    """The headers handrail keeps: subject, from, date, to, message_id (those present)."""
    metadata = {key.lower(): str(message[key]) for key in _HEADERS if message[key]}
    if message["Message-ID"]:
        metadata["message_id"] = str(message["Message-ID"])
    return metadata


def _body(message: EmailMessage) -> tuple[str, str]:
    """The text body (plain text preferred, else HTML reduced to text) and its media type."""
    part = message.get_body(preferencelist=("plain", "html"))
    if not isinstance(part, EmailMessage):
        return "", "text/plain"
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or wrong charset
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    text = content if isinstance(content, str) else ""
    if part.get_content_subtype() == "html":
        return _html_text(text), "text/html"
    return text, "text/plain"


def _html_text(markup: str) -> str:
    """An HTML body as text: with BeautifulSoup (the `documents` extra) as HTML files are read,
    else a rough reading (tags out, paragraphs kept)."""
    if importlib.util.find_spec("bs4") is not None:
        from handrail.documents.markup import html_text

        return html_text(markup)[0]
    text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", markup)
    text = html.unescape(re.sub(r"<[^>]+>", "", text)).replace("\xa0", " ")
    return "\n".join(line.strip() for line in text.splitlines())


def _attachments(message: EmailMessage) -> tuple[Attachment, ...]:
    """Every attachment, in order, named uniquely; multiparts inside are looked into."""
    found: list[tuple[str | None, str, bytes]] = []
    _collect(message, found)
    taken: set[str] = set()
    attachments = []
    for index, (filename, media_type, data) in enumerate(found, start=1):
        name = _unique(filename or _unnamed(index, media_type), taken)
        taken.add(name)
        attachments.append(Attachment(name=name, media_type=media_type, data=data))
    return tuple(attachments)


def _collect(message: EmailMessage, found: list[tuple[str | None, str, bytes]]) -> None:
    if not message.is_multipart() and message.get_content_maintype() != "text":
        # The whole message is one file (a scanner's e-mail that is only its PDF).
        found.append((_filename(message), message.get_content_type(), _payload(message)))
        return
    for part in message.iter_attachments():
        assert isinstance(part, EmailMessage)
        media_type = part.get_content_type()
        if part.is_multipart() and media_type != MEDIA_TYPE:
            _collect(part, found)  # a multipart/mixed inside: its attachments are this e-mail's
            continue
        found.append((_filename(part), media_type, _payload(part)))


def _filename(part: EmailMessage) -> str | None:
    filename = part.get_filename()
    if not filename:
        return None
    # A name is only a name: no folders (`../../x.pdf` is `x.pdf`), no control characters.
    base = PurePosixPath(str(filename).replace("\\", "/")).name
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()
    return base or None


def _payload(part: Message) -> bytes:
    if part.get_content_type() == MEDIA_TYPE:
        inner = part.get_payload()
        message = inner[0] if isinstance(inner, list) and inner else None
        return message.as_bytes() if isinstance(message, Message) else b""
    data: Any = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _unnamed(index: int, media_type: str) -> str:
    if media_type == MEDIA_TYPE:
        suffix: str | None = ".eml"
    else:
        fmt = format_for("", media_type)
        suffix = fmt.suffixes[0] if fmt else mimetypes.guess_extension(media_type)
    return f"attachment-{index}{suffix or ''}"


def _unique(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    path = PurePosixPath(name)
    number = 2
    while f"{path.stem} ({number}){path.suffix}" in taken:
        number += 1
    return f"{path.stem} ({number}){path.suffix}"


# --- reading an attachment ------------------------------------------------------------------


def _unsupported(attachment: Attachment) -> str | None:
    """Why handrail does not read this attachment's type, if it does not."""
    if format_for(attachment.name, attachment.media_type) is not None:
        return None
    suffix = PurePosixPath(attachment.name).suffix.lower()
    kind = f"`{suffix}`" if suffix else f"`{attachment.media_type}` (no file extension)"
    return f"unsupported file type {kind} (handrail reads {', '.join(SUFFIXES)})"


def _load(attachment: Attachment, options: LoadOptions) -> Document:
    """The attachment read by its own loader; `InputError` when it cannot be."""
    problem = _unsupported(attachment)
    if problem is not None:
        raise InputError(problem)
    fmt = format_for(attachment.name, attachment.media_type)
    if fmt is not None and fmt.media_type == MEDIA_TYPE:
        if options.max_depth <= 0:
            raise InputError(
                f"`{attachment.name}` is an e-mail nested deeper than LoadOptions.max_depth "
                "allows; raise it to read it"
            )
        options = dataclasses.replace(options, max_depth=options.max_depth - 1)
    try:
        return load_bytes(
            attachment.data, name=attachment.name, media_type=attachment.media_type, options=options
        )
    except InputError:
        raise
    except Exception as e:  # a loader's bug must not lose the e-mail: the part says it
        raise InputError(
            f"`{attachment.name}` could not be read ({type(e).__name__}: {e}); this is a bug in "
            "handrail's reader for it: please report it"
        ) from e


__all__ = ["Attachment", "Split", "attachment_data", "load_email", "split_email"]
