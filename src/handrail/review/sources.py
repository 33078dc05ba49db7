"""A review's page images: the run's document file, read again only while it is still the file
the run read, and one page of it rendered by `handrail.documents.render`.

What the review page may read is narrow on purpose: only the file the run recorded as its
document's `source` (a relative path is taken from `folder`, where `handrail serve` runs), only
while its sha256 is the `file_sha256` the run recorded (`handrail run` records it), only a
regular file of at most `MAX_SOURCE_BYTES`, and only pages the document has. Anything else is a
message saying why the page cannot be shown, and the text is shown instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

from handrail.core.state import Document
from handrail.exceptions import InputError

if TYPE_CHECKING:
    from handrail.documents.render import PageImage

MAX_SOURCE_BYTES = 200 * 1024 * 1024
"""The largest file a review page reads again (four times the default limit of a PDF input)."""
PAGE_SIDE = 1600
"""The longest side of a page image, in pixels."""
PASSWORD_ENV = "HANDRAIL_PDF_PASSWORD"
"""An encrypted PDF's password, read as `handrail run` reads it (never shown nor logged)."""
_SHOWN = "the text below is what the run read"


def source_file(document: Document, folder: str | os.PathLike[str] | None = None) -> Path:
    """The file the run read `document` from, checked: it is still there, a regular file within
    `MAX_SOURCE_BYTES`, and its sha256 is the one the run recorded. `InputError` saying which of
    these fails (the message is for a reviewer: the page image is not shown, the text is)."""
    source = document.source
    if not source or source == "-":
        raise InputError(
            "the document was not read from a file (stdin, or built in code), so its pages "
            f"cannot be shown as images; {_SHOWN}"
        )
    recorded = document.metadata.get("file_sha256")
    if not isinstance(recorded, str) or not recorded:
        raise InputError(
            f"the run did not record the sha256 of `{source}` (documents read by `handrail run` "
            f"have it), so it cannot be told to be the file the run read: its pages are not "
            f"shown as images; {_SHOWN}"
        )
    path = Path(source)
    if not path.is_absolute():
        path = Path(folder if folder is not None else Path.cwd()) / path
    try:
        found = path.resolve(strict=True)
        info = found.stat()
    except (OSError, RuntimeError):  # missing, unreadable folder, a symlink loop
        raise InputError(
            f"`{source}` is gone (nothing readable at {path}): its pages cannot be shown as "
            f"images; {_SHOWN}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"`{source}` is not a regular file any more; {_SHOWN}")
    if info.st_size > MAX_SOURCE_BYTES:
        raise InputError(
            f"`{source}` is {info.st_size / 1e6:.0f} MB, over the {MAX_SOURCE_BYTES // 2**20} MiB "
            f"a review page reads again; {_SHOWN}"
        )
    if _sha256(found) != recorded:
        raise InputError(
            f"`{source}` changed since the run read it (its sha256 differs): its pages now are "
            f"not the ones the run read, so they are not shown; {_SHOWN}"
        )
    return found


def images_problem(document: Document, folder: str | os.PathLike[str] | None = None) -> str | None:
    """Why `document`'s pages cannot be shown as images (None when they can, or it has none)."""
    if not document.pages:
        return None
    try:
        source_file(document, folder)
    except InputError as e:
        return str(e)
    return None


class PageImages:
    """Page images of review documents, rendered on demand and the last `kept` of them kept
    (a review page shows one image, and a reviewer flips between a few). Thread-safe. The
    file is checked on every request, kept image or not: a changed file is never shown."""

    def __init__(self, kept: int = 16) -> None:
        self.kept = kept
        self._lock = threading.Lock()
        self._images: OrderedDict[tuple[str, int, str], PageImage] = OrderedDict()

    def image(
        self,
        run_id: str,
        document: Document,
        number: int,
        folder: str | os.PathLike[str] | None = None,
        *,
        max_side: int = PAGE_SIDE,
    ) -> PageImage:
        """Page `number` of run `run_id`'s `document` as a PNG, from its checked source file.
        `InputError` when the document has no such page, its file cannot be used
        (`source_file`), or it cannot be rendered; the message says why."""
        if not any(page.number == number for page in document.pages):
            raise InputError(f"the document has no page {number} (it has {len(document.pages)})")
        checked = source_file(document, folder)
        key = (run_id, number, str(document.metadata["file_sha256"]))
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        from handrail.documents import LoadOptions
        from handrail.documents.render import render_pages

        options = LoadOptions(password=os.environ.get(PASSWORD_ENV) or None)
        # The checked path, absolute, so rendering reads exactly the file that was checked.
        here = dataclasses.replace(document, source=str(checked))
        (image,) = render_pages(here, [number], max_side=max_side, options=options)
        with self._lock:
            self._images[key] = image
            while len(self._images) > self.kept:
                self._images.popitem(last=False)
        return image


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


__all__ = ["MAX_SOURCE_BYTES", "PAGE_SIDE", "PageImages", "images_problem", "source_file"]
