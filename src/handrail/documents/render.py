"""Page images: pages of a document rendered as PNG from the file it was read from, for a model
that can see (`Extract(images=...)`) and for the review inbox (the page with a value's place).

    images = render_pages(document, [1, 2], max_side=1600)
    images[0].data          # PNG bytes; width/height in pixels, the page's box scaled to them

The pages come from `document.source`: a PDF or an image file, or an e-mail whose attachment
holds the page (read again from the .eml). A source that is gone, or that changed since it was
read (`metadata["file_sha256"]` differs), raises `InputError`; callers fall back to the text.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from handrail.core.state import Document
from handrail.documents.images import check_pixels, frame, frame_count, open_image
from handrail.documents.load import format_for
from handrail.documents.options import DEFAULT_OPTIONS, LoadOptions
from handrail.documents.pdf import PDFIUM_LOCK, damaged, open_pdf
from handrail.exceptions import InputError

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True, kw_only=True, slots=True)
class PageImage:
    """One page rendered as an image."""

    page: int
    """The page's number in `Document.pages` (1-based)."""
    media_type: str
    """`image/png`."""
    data: bytes
    """The encoded image."""
    width: int
    """In pixels; a word's box maps onto the image by `width / Page.width`."""
    height: int
    """In pixels."""


def render_pages(
    document: Document,
    pages: Sequence[int],
    *,
    max_side: int = 1600,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> tuple[PageImage, ...]:
    """Pages `pages` (numbers in `document.pages`) as PNG images, in the order asked: a PDF
    page rendered with its longest side `max_side` pixels, an image's page shrunk to fit in
    `max_side` (never enlarged).

    Raises InputError when the document has no such page, its source file is missing or has
    changed since it was read, or the file cannot be rendered."""
    if max_side < 1:
        raise ValueError(f"max_side must be at least 1 pixel, not {max_side}")
    for number in pages:
        if not 1 <= number <= len(document.pages):
            has = f"pages 1-{len(document.pages)}" if document.pages else "no pages"
            raise InputError(f"`{document.id}` has no page {number} to render (it has {has})")
    if not pages:
        return ()
    source = _source(document)
    rendered: dict[int, Image] = {}
    for (name, data), wanted in _files(document, source, pages).items():
        rendered |= _render_file(data, name=name, wanted=wanted, max_side=max_side, options=options)
    return tuple(_png(number, rendered[number]) for number in pages)


def _source(document: Document) -> bytes:
    """The bytes of the document's source file, checked against the hash taken when read."""
    if not document.source or document.source == "-":
        raise InputError(
            f"`{document.id}` has no source file to render its pages from (it was not read from "
            "a file)"
        )
    try:
        data = Path(document.source).read_bytes()
    except OSError as e:
        raise InputError(
            f"`{document.source}` cannot be read to render its pages ({e.strerror or e}); it was "
            "moved or deleted since the document was read"
        ) from e
    expected = document.metadata.get("file_sha256")
    if expected and hashlib.sha256(data).hexdigest() != expected:
        raise InputError(
            f"`{document.source}` changed since it was read; its pages would not match the "
            "document's text (run the document again to see its pages)"
        )
    return data


def _files(
    document: Document, source: bytes, pages: Sequence[int]
) -> dict[tuple[str, bytes], dict[int, int]]:
    """The files holding the pages: (name, bytes) -> {page number: index in that file}. The
    source itself, or for an e-mail the attachment each page belongs to."""
    assert document.source is not None
    fmt = format_for(document.source)
    if fmt is None or fmt.media_type != "message/rfc822":
        return {(document.source, source): {number: number - 1 for number in pages}}
    from handrail.documents.mail import attachment_data

    files: dict[tuple[str, bytes], dict[int, int]] = {}
    for number in pages:
        page = document.pages[number - 1]
        if not 0 <= page.part < len(document.parts):
            raise InputError(f"`{document.id}`: page {number} belongs to no attachment")
        part = document.parts[page.part]
        data = attachment_data(source, part.name)
        files.setdefault((part.name, data), {})[number] = part.pages.index(number)
    return files


def _render_file(
    data: bytes, *, name: str, wanted: dict[int, int], max_side: int, options: LoadOptions
) -> dict[int, Image]:
    """Pages of one file (`wanted`: page number -> index in the file) as images."""
    if data.find(b"%PDF-", 0, 1024) >= 0:  # where readers look for it
        return _render_pdf(data, name=name, wanted=wanted, max_side=max_side, options=options)
    fmt = format_for(name)
    if fmt is not None and not fmt.media_type.startswith("image/"):
        raise InputError(f"`{name}` ({fmt.name}) has no pages to render")
    return _render_image(data, name=name, wanted=wanted, max_side=max_side, options=options)


def _render_pdf(
    data: bytes, *, name: str, wanted: dict[int, int], max_side: int, options: LoadOptions
) -> dict[int, Image]:
    images: dict[int, Image] = {}
    with PDFIUM_LOCK:
        pdf = open_pdf(data, name=name, password=options.password)
        try:
            for number, index in wanted.items():
                if index >= len(pdf):
                    raise InputError(f"`{name}` has no page {index + 1} (it changed?)")
                with damaged(f"{name}, page {index + 1}"):
                    page = pdf[index]
                try:
                    width, height = page.get_size()
                    scale = max_side / max(width, height, 1.0)
                    check_pixels(
                        round(width * scale), round(height * scale), name=name, options=options
                    )
                    bitmap = page.render(scale=scale, may_draw_forms=True)
                    try:
                        images[number] = bitmap.to_pil().convert("RGB")  # a copy
                    finally:
                        bitmap.close()
                finally:
                    page.close()
        finally:
            pdf.close()
    return images


def _render_image(
    data: bytes, *, name: str, wanted: dict[int, int], max_side: int, options: LoadOptions
) -> dict[int, Image]:
    image = open_image(data, name=name, options=options)
    images: dict[int, Image] = {}
    for number, index in wanted.items():
        if index >= frame_count(image):
            raise InputError(f"`{name}` has no page {index + 1} (it changed?)")
        page = frame(image, index, name=name, options=options)
        page.thumbnail((max_side, max_side))
        if page.mode not in ("RGB", "RGBA", "L", "LA", "P", "1"):
            page = page.convert("RGB")
        images[number] = page
    return images


def _png(number: int, image: Image) -> PageImage:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return PageImage(
        page=number,
        media_type="image/png",
        data=buffer.getvalue(),
        width=image.width,
        height=image.height,
    )


__all__ = ["PageImage", "render_pages"]
