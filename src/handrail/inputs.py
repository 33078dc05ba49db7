"""Loading documents from files, folders and stdin (used by the CLI and the evals).

    loaded = read_inputs(["inbox/", "ticket.eml", "-"])
    loaded.items     # tuple[Document | InputError, ...], one per document
    loaded.skipped   # tuple[Skipped, ...]: what the folders hold that is not a document, and why

A folder is read recursively in a stable sorted order. What it holds that is not a document is
skipped and listed in `skipped` with the reason: files of other types (only `.txt`, `.md`, `.eml`,
`.json` are read), hidden files and folders, special files (FIFOs, sockets, devices: never
opened), symlinks that leave the folder (unless `follow_symlinks`), broken symlinks, symlink
loops and folders that cannot be listed. A document that cannot be used (unreadable, empty,
binary, not UTF-8/UTF-16/UTF-32 text, too big, a special file or an unsupported type named
explicitly, JSON that does not parse) comes back as an `InputError` in its place, so one bad file
never stops a batch: `Runner.run_many` turns it into a failed run of its own. A path that does not
exist is a mistake in the command, not in a document, and raises `InputError`.

Nothing is read past `max_bytes` (a file is read up to one byte more than the limit, whatever its
size says), and a file is opened only after `stat` says it is a regular file. See docs/inputs.md.

Document ids are paths as given: `inbox/a/b.txt` for a file found under the argument `inbox/`,
the argument itself for a file named explicitly, `-` for stdin.
"""

from __future__ import annotations

import codecs
import email.policy
import errno
import html
import json
import os
import re
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
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
_LOOP = "a symlink loop (following its links never reaches a file)"


@dataclass(frozen=True, kw_only=True, slots=True)
class Skipped:
    """Something in a folder that is not read as a document."""

    path: str
    """Its path as the documents' ids read (`inbox/report.pdf`); a folder ends with `/`."""
    reason: str
    """Why it is not read (`unsupported file type `.pdf` (...)`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Inputs:
    """What `read_inputs` found: the documents (or why each cannot be used) and what it skipped."""

    items: tuple[Document | InputError, ...]
    """One per document, in order: a `Document`, or the `InputError` saying why it is unusable."""
    skipped: tuple[Skipped, ...] = ()
    """What the folders hold that is not a document, in path order."""


def read_inputs(
    paths: Iterable[str | os.PathLike[str]],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stdin: BinaryIO | None = None,
    follow_symlinks: bool = False,
) -> Inputs:
    """Every document the paths name, in order: files, folders (recursively) and `-` (stdin),
    and what the folders hold that is not a document.

    Symlinks are read when they point inside the folder they were found in (for a file named
    directly, the folder that holds it); `follow_symlinks` reads them wherever they point.
    Raises `InputError` for a path that does not exist; a document that cannot be used becomes
    an `InputError` item (with `document_id`) in its place.
    """
    found, skipped = _find(paths, follow_symlinks=follow_symlinks)
    items: list[Document | InputError] = []
    for path, document_id, within in found:
        if path is None:
            items.append(_read_stdin(stdin, max_bytes))
        else:
            items.append(
                load_document(path, document_id=document_id, max_bytes=max_bytes, within=within)
            )
    return Inputs(items=tuple(items), skipped=tuple(skipped))


def load_documents(
    paths: Iterable[str | os.PathLike[str]],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stdin: BinaryIO | None = None,
    follow_symlinks: bool = False,
) -> list[Document | InputError]:
    """The documents of `read_inputs`, without the list of what it skipped."""
    loaded = read_inputs(paths, max_bytes=max_bytes, stdin=stdin, follow_symlinks=follow_symlinks)
    return list(loaded.items)


def find_documents(
    paths: Iterable[str | os.PathLike[str]], *, follow_symlinks: bool = False
) -> list[tuple[Path | None, str]]:
    """(path, document id) for every document the paths name; the path is None for stdin."""
    found, _ = _find(paths, follow_symlinks=follow_symlinks)
    return [(path, document_id) for path, document_id, _ in found]


def load_document(
    path: str | os.PathLike[str],
    *,
    document_id: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    within: str | os.PathLike[str] | None = None,
) -> Document | InputError:
    """One file as a `Document`, or the `InputError` saying why it cannot be used.

    Special files (FIFOs, sockets, devices) are refused without being opened; at most
    `max_bytes` + 1 bytes are read. With `within`, a symlink must point inside that folder.
    """
    path = Path(path)
    doc_id = document_id or path.as_posix()
    if not _utf8(doc_id):  # it could be neither stored nor shown
        shown = _printable(doc_id)
        return _error(shown, f"`{shown}`: its name is not valid UTF-8; rename it")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        kind = f"type `{suffix}`" if suffix else "type (no extension)"
        return _error(
            doc_id,
            f"`{doc_id}` has an unsupported file {kind}; handrail reads {_SUPPORTED} "
            "(convert it to text, or leave it out)",
        )
    if within is not None:
        outside = _outside(path, Path(within))
        if outside is not None:
            return _error(
                doc_id,
                f"`{doc_id}` is a symlink to `{outside}`, outside its folder "
                f"`{Path(within).as_posix()}`; name that file itself, or pass --follow-symlinks",
            )
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):  # refused before `open`: opening a FIFO waits for a writer
            return _not_regular(doc_id, mode)
        data = _read_regular(path, max_bytes)
    except OSError as e:
        return _unreadable(doc_id, e)
    if isinstance(data, os.stat_result):
        if not stat.S_ISREG(data.st_mode):
            return _not_regular(doc_id, data.st_mode)
        return _too_big(doc_id, data.st_size, max_bytes)
    if len(data) > max_bytes:
        return _too_big(doc_id, None, max_bytes)
    return _from_bytes(doc_id, path.as_posix(), data, suffix=suffix)


# --- finding files -----------------------------------------------------------------------------

_Found = tuple[Path | None, str, Path | None]  # (path or None for stdin, document id, within)


def _find(
    paths: Iterable[str | os.PathLike[str]], *, follow_symlinks: bool
) -> tuple[list[_Found], list[Skipped]]:
    found: list[_Found] = []
    skipped: list[Skipped] = []
    for given in paths:
        text = os.fspath(given)
        if text == STDIN:
            found.append((None, STDIN, None))
            continue
        path = Path(text)
        try:
            os.lstat(path)
        except OSError:
            raise InputError(
                f"input `{text}` does not exist; check the path "
                f"(inputs are {_SUPPORTED} files, folders, or `-` for stdin)"
            ) from None
        if _is_dir(path):
            walk = _Walk(root=path, real_root=Path(os.path.realpath(path)), follow=follow_symlinks)
            walk.folder(path, (Path(os.path.realpath(path)),))
            found.extend((file, file.as_posix(), None) for file in sorted(walk.files, key=_parts))
            skipped.extend(sorted(walk.skipped, key=lambda s: _parts(Path(s.path))))
        else:
            within = None if follow_symlinks or not path.is_symlink() else path.parent
            found.append((path, path.as_posix(), within))
    return found, skipped


@dataclass(kw_only=True, slots=True)
class _Walk:
    """One folder argument read recursively: its documents' paths and what it skips."""

    root: Path
    real_root: Path
    follow: bool
    files: list[Path] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def folder(self, folder: Path, chain: tuple[Path, ...]) -> None:
        """Read `folder`; `chain` holds the real paths of it and the folders that hold it."""
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda entry: entry.name)
        except OSError as e:
            reason = e.strerror or type(e).__name__
            message = f"a folder that cannot be read ({reason}); check its permissions"
            self.skip(folder, message, folder=True)
            return
        for entry in entries:
            self.entry(folder / entry.name, entry, chain)

    def entry(self, path: Path, entry: os.DirEntry[str], chain: tuple[Path, ...]) -> None:
        if not _utf8(path.as_posix()):
            self.skip(path, "its name is not valid UTF-8 (rename it)")
            return
        if entry.name.startswith("."):
            self.skip(path, "hidden (names starting with `.` are not read)", folder=_is_dir(path))
            return
        link = entry.is_symlink()
        try:
            mode = os.stat(path).st_mode
        except OSError as e:
            self.skip(path, _stat_problem(path, e))
            return
        if link and not self.follow:
            outside = _outside(path, self.real_root)
            if outside is not None:
                self.skip(
                    path,
                    f"a symlink to `{outside}`, outside `{self.root.as_posix()}`; pass "
                    "--follow-symlinks to read it",
                    folder=stat.S_ISDIR(mode),
                )
                return
        if stat.S_ISDIR(mode):
            real = Path(os.path.realpath(path))
            if real in chain:
                self.skip(path, f"a symlink loop (it leads back to `{self.shown(real)}`)", True)
            else:
                self.folder(path, (*chain, real))
        elif not stat.S_ISREG(mode):
            self.skip(path, f"{_kind(mode)}, not a regular file")
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            suffix = path.suffix.lower()
            kind = f"unsupported file type `{suffix}`" if suffix else "no file extension"
            self.skip(path, f"{kind} (handrail reads {_SUPPORTED})")
        else:
            self.files.append(path)

    def skip(self, path: Path, reason: str, folder: bool = False) -> None:
        shown = _printable(path.as_posix()) + ("/" if folder else "")
        self.skipped.append(Skipped(path=shown, reason=reason))

    def shown(self, real: Path) -> str:
        """A real folder path as the ids read it (`inbox/sub/`), if it is under the root."""
        try:
            rel = real.relative_to(self.real_root)
        except ValueError:
            return real.as_posix()
        parts = (self.root / rel).as_posix() if rel.parts else self.root.as_posix()
        return parts.rstrip("/") + "/"


def _utf8(name: str) -> bool:
    """Whether a path can be stored and shown: not so when the file system gave bytes that are
    not UTF-8 (Python keeps them as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(name: str) -> str:
    """A path with its undecodable bytes shown as U+FFFD."""
    return os.fsencode(name).decode("utf-8", "replace")


def _parts(path: Path) -> tuple[str, ...]:
    return path.parts


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False


def _outside(path: Path, folder: Path) -> str | None:
    """Where the symlink `path` really leads, if that is outside `folder` (else None)."""
    real = os.path.realpath(path)
    boundary = os.path.realpath(folder)
    if os.path.commonpath([real, boundary]) == boundary:
        return None
    return real


def _stat_problem(path: Path, error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return _LOOP
    if error.errno == errno.ENOENT and path.is_symlink():
        return f"a broken symlink (`{os.readlink(path)}` does not exist)"
    return f"cannot be read ({error.strerror or type(error).__name__})"


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "a special file"


# --- reading and decoding ----------------------------------------------------------------------


def _read_regular(path: Path, max_bytes: int) -> bytes | os.stat_result:
    """At most `max_bytes` + 1 bytes of a regular file, or what `fstat` says of it when that is
    enough to refuse it (not a regular file after all, or over the limit)."""
    # O_NONBLOCK: should a FIFO take the file's place after `stat`, opening it does not wait.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return info
        # st_size can be 0 for a file that holds a lot (/proc files): only the read is bounded.
        return file.read(max_bytes + 1)


def _read_stdin(stdin: BinaryIO | None, max_bytes: int) -> Document | InputError:
    stream = stdin
    if stream is None and sys.stdin is not None:
        stream = sys.stdin.buffer
    closed = (
        "stdin (`-`) is closed; pipe a document into `-` (`... - < file.txt`), or name files "
        "instead"
    )
    if stream is None or stream.closed:
        return _error(STDIN, closed)
    try:
        # One byte more than the limit is enough to tell that the input is too big.
        data = stream.read(max_bytes + 1)
    except OSError as e:
        if e.errno == errno.EBADF:
            return _error(STDIN, closed)
        return _unreadable(STDIN, e)
    if len(data) > max_bytes:
        return _too_big(STDIN, None, max_bytes)
    return _from_bytes(STDIN, STDIN, data)


_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)


def _from_bytes(
    doc_id: str, source: str, data: bytes, *, suffix: str = ""
) -> Document | InputError:
    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            try:  # to UTF-8, so that what follows (and the email parser) reads one encoding
                data = data.decode(codec).encode("utf-8")
            except UnicodeDecodeError as e:
                return _error(
                    doc_id,
                    f"{_name(doc_id)} starts with a {name} byte-order mark but is not valid "
                    f"{name} (at offset {e.start}); re-save it as UTF-8",
                )
            break
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


def _not_regular(doc_id: str, mode: int) -> InputError:
    return _error(
        doc_id,
        f"`{doc_id}` is {_kind(mode)}, not a regular file; handrail reads regular files only "
        "(copy its content into a file, or pipe it into `-`)",
    )


def _unreadable(doc_id: str, error: OSError) -> InputError:
    if error.errno == errno.ELOOP:
        return _error(doc_id, f"{_name(doc_id)} is {_LOOP}; fix or remove the link")
    reason = error.strerror or type(error).__name__
    return _error(
        doc_id, f"{_name(doc_id)} cannot be read ({reason}); check that it is a readable file"
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
    "Inputs",
    "Skipped",
    "find_documents",
    "load_document",
    "load_documents",
    "read_inputs",
]
