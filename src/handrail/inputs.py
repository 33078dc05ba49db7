"""Loading documents from files, folders and stdin (used by the CLI and the evals).

    items = load_documents(["inbox/", "ticket.eml", "-"])   # list[Document | InputError]

A folder is read recursively in a stable sorted order, keeping only supported files
(`.txt`, `.md`, `.eml`, `.json`) and skipping hidden files and folders. A document that cannot be
used (unreadable, empty, binary, not UTF-8, too big, an unsupported type named explicitly, JSON
that does not parse) comes back as an `InputError` in its place, so one bad file never stops a
batch: `Runner.run_many` turns it into a failed run of its own. A path that does not exist is a
mistake in the command, not in a document, and raises `InputError`.

Document ids are paths as given: `inbox/a/b.txt` for a file found under the argument `inbox/`,
the argument itself for a file named explicitly, `-` for stdin.
"""

from __future__ import annotations

import email.policy
import html
import json
import os
import re
import sys
from collections.abc import Iterable
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import BinaryIO

from handrail.core.state import Document
from handrail.exceptions import InputError

SUPPORTED_SUFFIXES = (".txt", ".md", ".eml", ".json")
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
STDIN = "-"

_SUPPORTED = ", ".join(SUPPORTED_SUFFIXES)


def load_documents(
    paths: Iterable[str | os.PathLike[str]],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stdin: BinaryIO | None = None,
) -> list[Document | InputError]:
    """Every document the paths name, in order: files, folders (recursively) and `-` (stdin).

    Raises `InputError` for a path that does not exist; a document that cannot be used becomes an
    `InputError` item (with `document_id`) in its place.
    """
    items: list[Document | InputError] = []
    for path, document_id in find_documents(paths):
        if path is None:
            stream = stdin if stdin is not None else sys.stdin.buffer
            # One byte more than the limit is enough to tell that the input is too big.
            data = stream.read(max_bytes + 1)
            if len(data) > max_bytes:
                items.append(_too_big(document_id, None, max_bytes))
            else:
                items.append(_from_bytes(document_id, STDIN, data))
        else:
            items.append(load_document(path, document_id=document_id, max_bytes=max_bytes))
    return items


def find_documents(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[Path | None, str]]:
    """(path, document id) for every document the paths name; the path is None for stdin."""
    found: list[tuple[Path | None, str]] = []
    for given in paths:
        text = os.fspath(given)
        if text == STDIN:
            found.append((None, STDIN))
            continue
        path = Path(text)
        if path.is_dir():
            found.extend((file, (path / rel).as_posix()) for file, rel in _walk(path))
        elif path.exists():
            found.append((path, path.as_posix()))
        else:
            raise InputError(
                f"input `{text}` does not exist; check the path "
                f"(inputs are {_SUPPORTED} files, folders, or `-` for stdin)"
            )
    return found


def load_document(
    path: str | os.PathLike[str],
    *,
    document_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Document | InputError:
    """One file as a `Document`, or the `InputError` saying why it cannot be used."""
    path = Path(path)
    doc_id = document_id or path.as_posix()
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"type `{suffix}`" if suffix else "type (no extension)"
        return _error(
            doc_id,
            f"`{doc_id}` has an unsupported file {kind}; handrail reads {_SUPPORTED} "
            "(convert it to text, or leave it out)",
        )
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return _too_big(doc_id, size, max_bytes)
        data = path.read_bytes()
    except OSError as e:
        reason = e.strerror or type(e).__name__
        return _error(
            doc_id, f"`{doc_id}` cannot be read ({reason}); check that it is a readable file"
        )
    return _from_bytes(doc_id, path.as_posix(), data, suffix=suffix)


# --- reading and decoding ----------------------------------------------------------------------


def _walk(folder: Path) -> list[tuple[Path, Path]]:
    """(file, path relative to folder) for supported, non-hidden files, sorted by path parts."""
    found: list[tuple[Path, Path]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            file = Path(root, name)
            if not name.startswith(".") and file.suffix.lower() in SUPPORTED_SUFFIXES:
                found.append((file, file.relative_to(folder)))
    return sorted(found, key=lambda item: item[1].parts)


def _from_bytes(
    doc_id: str, source: str, data: bytes, *, suffix: str = ""
) -> Document | InputError:
    if b"\x00" in data:
        return _error(
            doc_id,
            f"{_name(doc_id)} looks binary (it contains NUL bytes); convert it to text "
            f"({_SUPPORTED}) first",
        )
    metadata: dict[str, str] = {}
    if suffix == ".eml":
        text, metadata = _email_text(data)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            return _error(
                doc_id,
                f"{_name(doc_id)} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
                f"{e.start}); re-save it as UTF-8",
            )
    if not text.strip():
        return _error(
            doc_id,
            f"{_name(doc_id)} is empty; there is nothing to process "
            "(check the file, or leave it out of the batch)",
        )
    if suffix == ".json":
        try:
            json.loads(text)
        except ValueError as e:
            return _error(
                doc_id,
                f"`{doc_id}` is not valid JSON ({e}); fix it, or rename it to .txt to read it as "
                "plain text",
            )
    return Document(text=text, id=doc_id, source=source, metadata=metadata)


def _email_text(data: bytes) -> tuple[str, dict[str, str]]:
    """Readable text of an email: its Subject, From and Date headers, then its text body."""
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)  # always so with policy.default
    headers = {key: str(message[key]) for key in ("Subject", "From", "Date", "To") if message[key]}
    metadata = {key.lower(): value for key, value in headers.items()}
    if message["Message-ID"]:
        metadata["message_id"] = str(message["Message-ID"])
    body = _email_body(message).strip()
    if not body and "Subject" not in headers:
        return "", metadata  # a bare From/Date carries nothing to process
    lines = [f"{key}: {value}" for key, value in headers.items() if key != "To"]
    return "\n".join(lines) + "\n\n" + body + "\n", metadata


def _email_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if not isinstance(part, EmailMessage):
        return ""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):  # an unknown or wrong charset
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    text = content if isinstance(content, str) else ""
    if part.get_content_subtype() == "html":  # a rough reading: tags out, paragraphs kept
        text = re.sub(r"(?i)<br\s*/?>|</p>|</div>", "\n", text)
        text = html.unescape(re.sub(r"<[^>]+>", "", text)).replace("\xa0", " ")
        text = "\n".join(line.strip() for line in text.splitlines())
    return text


def _too_big(doc_id: str, size: int | None, max_bytes: int) -> InputError:
    is_size = f"is {_mb(size)}, over" if size is not None else "is over"
    return _error(
        doc_id,
        f"{_name(doc_id)} {is_size} the {_mb(max_bytes)} limit; trim or split it, or raise "
        "the limit (--max-bytes)",
    )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.3g} MB" if size >= 1024 * 1024 else f"{size} bytes"


def _name(doc_id: str) -> str:
    return "stdin (`-`)" if doc_id == STDIN else f"`{doc_id}`"


def _error(document_id: str, message: str) -> InputError:
    # `Runner.failed_input` reads `document_id` to name the failed run after the file.
    return InputError(message, document_id=document_id)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "STDIN",
    "SUPPORTED_SUFFIXES",
    "find_documents",
    "load_document",
    "load_documents",
]
