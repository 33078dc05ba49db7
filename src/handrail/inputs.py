"""Loading documents from files, folders and stdin (used by the CLI and the evals).

    loaded = read_inputs(["inbox/", "ticket.eml", "-"])
    loaded.items     # tuple[Document | InputError, ...], one per document
    loaded.skipped   # tuple[Skipped, ...]: what the folders hold that is not a document, and why

A folder is read recursively in a stable sorted order. What it holds that is not a document is
skipped and listed in `skipped` with the reason: files of types handrail does not read (the
formats are `handrail.documents.SUFFIXES`: text, Markdown, JSON, CSV, e-mail, HTML, PDF, images,
Word, Excel), hidden files and folders, special files (FIFOs, sockets, devices: never opened),
symlinks that leave the folder (unless `follow_symlinks`), broken symlinks, symlink loops and
folders that cannot be listed. A document that cannot be used (unreadable, empty, binary text,
not UTF-8/UTF-16/UTF-32 text, too big, a special file or an unsupported type named explicitly,
JSON that does not parse, a broken or encrypted PDF, a format whose extra is not installed)
comes back as an `InputError` in its place, so one bad file never stops a batch:
`Runner.run_many` turns it into a failed run of its own. A path that does not exist is a
mistake in the command, not in a document, and raises `InputError`.

Every file goes through `handrail.documents.load_bytes`, with the `LoadOptions` given (OCR,
password, limits); its document's `metadata["file_sha256"]` is the SHA-256 of the file's bytes,
so what renders its pages later can tell the file changed. With
`LoadOptions.split_attachments`, an e-mail becomes several documents: its body (`mail.eml`) and
each attachment (`mail.eml#invoice.pdf`).

Nothing is read past the size limit (a file is read up to one byte more than the limit, whatever
its size says), and a file is opened only after `stat` says it is a regular file. The limit is
`max_bytes` when given, else 5 MB for text formats and 50 MB for PDFs, images, Word and Excel
files and e-mails (`max_bytes_for`). See docs/inputs.md and docs/documents.md.

Document ids are paths as given: `inbox/a/b.txt` for a file found under the argument `inbox/`,
the argument itself for a file named explicitly, `-` for stdin.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import os
import stat
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from handrail._utils import mask_secrets
from handrail.core.state import Document
from handrail.documents import DEFAULT_OPTIONS, SUFFIXES, Format, LoadOptions, format_for
from handrail.documents.load import load_bytes, missing_extra
from handrail.documents.text import STDIN, shown
from handrail.exceptions import InputError

SUPPORTED_SUFFIXES = SUFFIXES
"""Every file suffix handrail reads (`handrail.documents.SUFFIXES`)."""
DEFAULT_MAX_BYTES = 5 * 1024 * 1024
"""The size limit of a text file (.txt, .md, .json, .csv, .html) unless `max_bytes` is given."""
DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024
"""The size limit of a PDF, an image, a Word or Excel file or an e-mail (which carries its
attachments) unless `max_bytes` is given."""

_SUPPORTED = ", ".join(SUPPORTED_SUFFIXES)
_LOOP = "a symlink loop (following its links never reaches a file)"
_MAGIC = (  # what stdin holds when it is not text
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)


def max_bytes_for(fmt: Format | None) -> int:
    """The default size limit of a file of this format: 5 MB for text, 50 MB for the rest."""
    if fmt is None or fmt.media_type.startswith("text/") or fmt.media_type == "application/json":
        return DEFAULT_MAX_BYTES
    return DEFAULT_MAX_FILE_BYTES


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
    max_bytes: int | None = None,
    stdin: BinaryIO | None = None,
    follow_symlinks: bool = False,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> Inputs:
    """Every document the paths name, in order: files, folders (recursively) and `-` (stdin),
    and what the folders hold that is not a document.

    Symlinks are read when they point inside the folder they were found in (for a file named
    directly, the folder that holds it); `follow_symlinks` reads them wherever they point.
    `max_bytes` bounds every file (default: `max_bytes_for` its format); `options` says how
    documents are read (OCR, the PDF password, `split_attachments`...). Raises `InputError` for
    a path that does not exist; a document that cannot be used becomes an `InputError` item
    (with `document_id`) in its place.
    """
    found, skipped = _find(paths, follow_symlinks=follow_symlinks)
    items: list[Document | InputError] = []
    for path, document_id, within in found:
        if path is None:
            items.append(_read_stdin(stdin, max_bytes, options))
            continue
        data = _read_file(path, document_id=document_id, max_bytes=max_bytes, within=within)
        if isinstance(data, InputError):
            items.append(data)
        elif options.split_attachments and _is_email(path):
            split = _split_email(data, document_id, path.as_posix(), options)
            items.extend(split.documents)
            skipped.extend(Skipped(path=name, reason=why) for name, why in split.skipped)
        else:
            items.append(document_from_bytes(data, document_id, path.as_posix(), options))
    return Inputs(items=tuple(items), skipped=tuple(skipped))


def load_documents(
    paths: Iterable[str | os.PathLike[str]],
    *,
    max_bytes: int | None = None,
    stdin: BinaryIO | None = None,
    follow_symlinks: bool = False,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> list[Document | InputError]:
    """The documents of `read_inputs`, without the list of what it skipped."""
    loaded = read_inputs(
        paths, max_bytes=max_bytes, stdin=stdin, follow_symlinks=follow_symlinks, options=options
    )
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
    max_bytes: int | None = None,
    within: str | os.PathLike[str] | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> Document | InputError:
    """One file as a `Document`, or the `InputError` saying why it cannot be used (an e-mail
    is one document here, whatever `options.split_attachments` says).

    Special files (FIFOs, sockets, devices) are refused without being opened; at most the size
    limit + 1 bytes are read. With `within`, a symlink must point inside that folder.
    """
    path = Path(path)
    doc_id = document_id or path.as_posix()
    data = _read_file(path, document_id=doc_id, max_bytes=max_bytes, within=within)
    if isinstance(data, InputError):
        return data
    return document_from_bytes(data, doc_id, path.as_posix(), options)


def _read_file(
    path: Path,
    *,
    document_id: str,
    max_bytes: int | None,
    within: str | os.PathLike[str] | Path | None,
) -> bytes | InputError:
    """The bytes of a file of a type handrail reads, or the `InputError` saying why not."""
    doc_id = document_id
    if not _utf8(doc_id):  # it could be neither stored nor shown
        printable = _printable(doc_id)
        return _error(printable, f"`{printable}`: its name is not valid UTF-8; rename it")
    fmt = format_for(path.name)
    if fmt is None:
        suffix = path.suffix.lower()
        kind = f"type `{suffix}`" if suffix else "type (no extension)"
        return _error(
            doc_id,
            f"`{doc_id}` has an unsupported file {kind}; handrail reads {_SUPPORTED} "
            "(convert it to one of these, or leave it out)",
        )
    if within is not None:
        outside = _outside(path, Path(within))
        if outside is not None:
            return _error(
                doc_id,
                f"`{doc_id}` is a symlink to `{outside}`, outside its folder "
                f"`{Path(within).as_posix()}`; name that file itself, or pass --follow-symlinks",
            )
    problem = missing_extra(fmt)
    if problem is not None:  # said before anything is read
        return _error(doc_id, f"`{doc_id}`: {problem}")
    limit = max_bytes if max_bytes is not None else max_bytes_for(fmt)
    try:
        mode = os.stat(path).st_mode
        if not stat.S_ISREG(mode):  # refused before `open`: opening a FIFO waits for a writer
            return _not_regular(doc_id, mode)
        data = _read_regular(path, limit)
    except OSError as e:
        return _unreadable(doc_id, e)
    if isinstance(data, os.stat_result):
        if not stat.S_ISREG(data.st_mode):
            return _not_regular(doc_id, data.st_mode)
        return _too_big(doc_id, data.st_size, limit)
    if len(data) > limit:
        return _too_big(doc_id, None, limit)
    return data


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
                "(inputs are files, folders, or `-` for stdin)"
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
        elif format_for(path.name) is None:
            suffix = path.suffix.lower()
            kind = f"unsupported file type `{suffix}`" if suffix else "no file extension"
            self.skip(path, f"{kind} (handrail reads {_SUPPORTED})")
        else:
            self.files.append(path)

    def skip(self, path: Path, reason: str, folder: bool = False) -> None:
        printable = _printable(path.as_posix()) + ("/" if folder else "")
        self.skipped.append(Skipped(path=printable, reason=reason))

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


def _read_stdin(
    stdin: BinaryIO | None, max_bytes: int | None, options: LoadOptions
) -> Document | InputError:
    stream = stdin
    if stream is None and sys.stdin is not None:
        stream = sys.stdin.buffer
    closed = (
        "stdin (`-`) is closed; pipe a document into `-` (`... - < file.txt`), or name files "
        "instead"
    )
    if stream is None or stream.closed:
        return _error(STDIN, closed)
    # One byte more than the limit is enough to tell that the input is too big; what it holds
    # (text, or a PDF or an image piped in) decides the limit when none is given.
    most = max_bytes if max_bytes is not None else DEFAULT_MAX_FILE_BYTES
    try:
        data = stream.read(most + 1)
    except OSError as e:
        if e.errno == errno.EBADF:
            return _error(STDIN, closed)
        return _unreadable(STDIN, e)
    media_type = next((kind for magic, kind in _MAGIC if data.startswith(magic)), "text/plain")
    limit = max_bytes if max_bytes is not None else max_bytes_for(format_for("", media_type))
    if len(data) > limit:
        return _too_big(STDIN, None, limit)
    return document_from_bytes(data, STDIN, STDIN, options, media_type=media_type, keep_hash=False)


def document_from_bytes(
    data: bytes,
    doc_id: str,
    source: str,
    options: LoadOptions,
    *,
    media_type: str | None = None,
    keep_hash: bool = True,
    name: str | None = None,
) -> Document | InputError:
    """The document in `data` (read by the loader its name, else `media_type`, calls for),
    named `doc_id`, with the file's SHA-256 in its metadata; or the `InputError` saying why it
    cannot be used (a reader's crash included; the PDF password never in the message). `name`
    (default: `doc_id`) is the file name the format is read from. The one reader for files,
    stdin and triggers."""
    try:
        document = load_bytes(data, name=name or doc_id, media_type=media_type, options=options)
    except InputError as e:
        return _error(doc_id, _secret(str(e), options))
    except Exception as e:  # a reader's bug fails its own document, not the batch
        return _error(doc_id, _secret(_crashed(doc_id, e), options))
    if not document.text.strip():
        return _error(doc_id, _no_text(doc_id, document))
    metadata = dict(document.metadata)
    if keep_hash:
        metadata["file_sha256"] = hashlib.sha256(data).hexdigest()
    return dataclasses.replace(document, id=doc_id, source=source, metadata=metadata)


def _is_email(path: Path) -> bool:
    fmt = format_for(path.name)
    return fmt is not None and fmt.media_type == "message/rfc822"


def _split_email(data: bytes, doc_id: str, source: str, options: LoadOptions) -> _Split:
    """An e-mail as its body and one document per attachment, each with the e-mail file's
    SHA-256 (the file they come from); unsupported attachments are skipped and listed."""
    from handrail.documents.mail import split_email

    try:
        split = split_email(data, name=doc_id, options=options)
    except InputError as e:
        return _Split(documents=(_error(doc_id, _secret(str(e), options)),))
    except Exception as e:
        return _Split(documents=(_error(doc_id, _secret(_crashed(doc_id, e), options)),))
    sha256 = hashlib.sha256(data).hexdigest()
    documents: list[Document | InputError] = []
    for item in split.documents:
        if isinstance(item, InputError):
            documents.append(_error(str(item.document_id), _secret(str(item), options)))
        elif not item.text.strip():
            documents.append(_error(item.id, _no_text(item.id, item)))
        else:
            metadata = {**item.metadata, "file_sha256": sha256}
            documents.append(dataclasses.replace(item, source=source, metadata=metadata))
    return _Split(documents=tuple(documents), skipped=split.skipped)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Split:
    documents: tuple[Document | InputError, ...]
    skipped: tuple[tuple[str, str], ...] = ()


def _no_text(doc_id: str, document: Document) -> str:
    """Why a document that loaded has no text: its warnings say (a scan with OCR off...)."""
    why = "; ".join(document.warnings)
    return (
        f"`{doc_id}` has no text to process" + (f" ({why})" if why else "") + "; check the file, "
        "or leave it out of the batch"
    )


def _secret(message: str, options: LoadOptions) -> str:
    """`message` with the PDF password masked, should a reader ever repeat it."""
    return mask_secrets(message, options.password, urls=False)


def _crashed(doc_id: str, error: Exception) -> str:
    return (
        f"`{doc_id}` could not be read ({type(error).__name__}: {error}); this is a bug in "
        "handrail's reader for its format: please report it"
    )


def _too_big(doc_id: str, size: int | None, max_bytes: int) -> InputError:
    is_size = f"is {_mb(size)}, over" if size is not None else "is over"
    return _error(
        doc_id,
        f"{shown(doc_id)} {is_size} the {_mb(max_bytes)} limit; trim or split it, or raise "
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
        return _error(doc_id, f"{shown(doc_id)} is {_LOOP}; fix or remove the link")
    reason = error.strerror or type(error).__name__
    return _error(
        doc_id, f"{shown(doc_id)} cannot be read ({reason}); check that it is a readable file"
    )


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.3g} MB" if size >= 1024 * 1024 else f"{size} bytes"


def _error(document_id: str, message: str) -> InputError:
    # `Runner.failed_input` reads `document_id` to name the failed run after the file.
    return InputError(message, document_id=document_id)


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_FILE_BYTES",
    "STDIN",
    "SUPPORTED_SUFFIXES",
    "Inputs",
    "Skipped",
    "document_from_bytes",
    "find_documents",
    "load_document",
    "load_documents",
    "max_bytes_for",
    "read_inputs",
]
