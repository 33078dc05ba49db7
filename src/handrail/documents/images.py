"""Images (PNG, JPEG, TIFF): each image, or each frame of a multi-page TIFF, is a page read by
OCR, in the image's pixels (`unit="px"`), turned upright as its EXIF orientation says.

Also the OCR step the PDF loader shares: `ocr_page` reads one image into a `PageContent`, and
`why_no_ocr` says why a page cannot be read (OCR off, or no engine installed) so that the page
is left empty with a warning rather than failing the document.

An image over `LoadOptions.max_image_pixels` is refused from its header, before it is decoded
(a decompression bomb is a few kilobytes of PNG that decode to gigabytes).
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from handrail.core.pages import Word
from handrail.core.state import Document
from handrail.documents.build import Builder, PageContent
from handrail.documents.options import LoadOptions
from handrail.exceptions import InputError

if TYPE_CHECKING:
    from PIL.Image import Image

_MEDIA_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "MPO": "image/jpeg", "TIFF": "image/tiff"}


def load_image(data: bytes, *, name: str, options: LoadOptions) -> Document:
    """A PNG, JPEG or TIFF image as a document of pages (one per TIFF frame), read by OCR."""
    image = open_image(data, name=name, options=options)
    media_type = _MEDIA_TYPES[image.format or ""]
    no_ocr = why_no_ocr(options)
    builder = Builder()
    unread: list[int] = []
    blank: list[int] = []
    for number, picture in enumerate(frames(image, name=name, options=options), start=1):
        label = f"{name}, page {number}" if frame_count(image) > 1 else name
        if no_ocr is None:
            page = builder.page(ocr_page(picture, options, where=label, label=label, unit="px"))
            if page.start == page.end:
                blank.append(number)
        else:
            unread.append(number)
            builder.page(
                PageContent(
                    text="",
                    width=picture.width,
                    height=picture.height,
                    unit="px",
                    text_from="none",
                    label=label,
                )
            )
    if unread:
        builder.warnings.append(unread_warning(unread, no_ocr or "", text_layer=False))
    if blank:
        builder.warnings.append(blank_warning(blank))
    return builder.build(id=name, source=name, media_type=media_type)


def open_image(data: bytes, *, name: str, options: LoadOptions) -> Image:
    """The image in `data` (header read, not yet decoded), refused if it is not a PNG, JPEG or
    TIFF or is larger than `options.max_image_pixels`."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # handrail's own limit is checked below; Pillow's warning would say it twice
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)  # odd tags: what decodes is read
            image = Image.open(io.BytesIO(data))
            frame_count(image)  # a TIFF's frame headers, read now so that a bad one fails here
    except Image.DecompressionBombError as e:
        raise InputError(f"`{name}` is too large an image to decode ({e}); scale it down") from e
    except Exception as e:  # UnidentifiedImageError, or whatever a decoder raises on bad bytes
        raise InputError(
            f"`{name}` is not a readable image ({e}); check that the file is complete and really "
            "a PNG, JPEG or TIFF"
        ) from e
    if image.format not in _MEDIA_TYPES:
        raise InputError(
            f"`{name}` is a {image.format} image; handrail reads PNG, JPEG and TIFF (convert it "
            "to PNG)"
        )
    check_pixels(image.width, image.height, name=name, options=options)
    return image


def check_pixels(width: int, height: int, *, name: str, options: LoadOptions) -> None:
    """Refuse an image (or a page to render) larger than `options.max_image_pixels`."""
    if width * height > options.max_image_pixels:
        raise InputError(
            f"`{name}` is {width:,} × {height:,} pixels, over the {options.max_image_pixels:,}-"
            "pixel limit (LoadOptions.max_image_pixels); scale it down, or raise the limit if "
            "you trust the file"
        )


def frames(image: Image, *, name: str, options: LoadOptions) -> Iterator[Image]:
    """Each frame of `image` (one, or a TIFF's pages), decoded and turned upright; more than
    `options.max_pages` frames refuse the file."""
    count = frame_count(image)
    if count > options.max_pages:
        raise InputError(
            f"`{name}` has {count:,} pages, over the {options.max_pages:,}-page limit "
            "(LoadOptions.max_pages); split it, or raise the limit"
        )
    for index in range(count):
        yield frame(image, index, name=name, options=options)


def frame(image: Image, index: int, *, name: str, options: LoadOptions) -> Image:
    """Frame `index` of `image` (a TIFF's page; 0 for others), decoded and turned upright."""
    from PIL import ImageOps

    try:
        image.seek(index)
        check_pixels(image.width, image.height, name=name, options=options)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # odd EXIF tags: read what we can
            upright = ImageOps.exif_transpose(image)
        upright.load()
    except InputError:
        raise
    except Exception as e:  # whatever a decoder raises on bad bytes: the file's fault
        page = f", page {index + 1}" if image.format == "TIFF" and index else ""
        raise InputError(
            f"`{name}`{page} cannot be decoded ({e}); the file is damaged or truncated: "
            "export it again"
        ) from e
    return upright


def frame_count(image: Image) -> int:
    """How many pages an image has."""
    # a TIFF's frames are its pages; a JPEG's extra frames (MPO) are previews, not pages
    return int(getattr(image, "n_frames", 1)) if image.format == "TIFF" else 1


def why_no_ocr(options: LoadOptions) -> str | None:
    """Why pages without text cannot be read by OCR in this process, or None if they can."""
    if options.ocr == "never":
        return "OCR is off (ocr='never'); turn it on with `--ocr auto` or LoadOptions(ocr='auto')"
    from handrail.documents.ocr import available_engines

    engines = available_engines()
    if options.ocr_engine in engines:
        return None
    if not engines:
        return (
            "no OCR engine is installed; install one with `pip install 'handrail[ocr]'` "
            "(RapidOCR; Tesseract also needs Debian's `tesseract-ocr`)"
        )
    return (
        f"the OCR engine `{options.ocr_engine}` is not installed (installed: "
        f"{', '.join(engines)}); pick one with LoadOptions(ocr_engine=...) or install it"
    )


def ocr_page(
    image: Image,
    options: LoadOptions,
    *,
    where: str,
    label: str,
    unit: Literal["pt", "px"],
    scale: float = 1.0,
) -> PageContent:
    """The text OCR reads on `image`, as a page. `scale` is the image's pixels per unit of the
    page (a PDF page rendered at 2x: 2.0 pixels per point): boxes are divided by it, so a PDF
    page keeps its points. Over `options.ocr_timeout_s` the document fails naming the page."""
    from handrail.documents.ocr import read_image

    started = time.perf_counter()
    result = read_image(image, options, name=where)
    elapsed = time.perf_counter() - started
    if elapsed > options.ocr_timeout_s:
        raise InputError(
            f"`{where}`: OCR took {elapsed:.1f} s, over the {options.ocr_timeout_s:g} s limit "
            "(LoadOptions.ocr_timeout_s); raise the limit, or split the file"
        )
    words = result.words
    if scale != 1.0:
        words = tuple(
            Word(
                text=w.text,
                box=(
                    round(w.box[0] / scale, 1),
                    round(w.box[1] / scale, 1),
                    round(w.box[2] / scale, 1),
                    round(w.box[3] / scale, 1),
                ),
                start=w.start,
                confidence=w.confidence,
            )
            for w in words
        )
    return PageContent(
        text=result.text,
        words=words,
        width=result.width / scale,
        height=result.height / scale,
        unit=unit,
        text_from="ocr",
        label=label,
    )


def _pages(numbers: Sequence[int]) -> tuple[str, bool]:
    """`page 3` or `pages 2, 5, 7` (the first 20, then how many more), and whether plural."""
    if len(numbers) == 1:
        return f"page {numbers[0]}", False
    more = f" and {len(numbers) - 20} more" if len(numbers) > 20 else ""
    return f"pages {', '.join(str(n) for n in numbers[:20])}{more}", True


def unread_warning(numbers: Sequence[int], why: str, *, text_layer: bool) -> str:
    """The warning for pages left unread: which, and why."""
    pages, plural = _pages(numbers)
    has, was = ("have", "were") if plural else ("has", "was")
    if text_layer:
        return f"{pages} {has} no text layer and {was} not read: {why}"
    return f"{pages} {was} not read (OCR reads images): {why}"


def blank_warning(numbers: Sequence[int]) -> str:
    """The warning for pages OCR found no text on."""
    pages, _ = _pages(numbers)
    return (
        f"OCR found no text on {pages} (blank, or too faint or small to read; a scan at 300 dpi "
        "reads best)"
    )


__all__ = [
    "blank_warning",
    "check_pixels",
    "frame",
    "frame_count",
    "frames",
    "load_image",
    "ocr_page",
    "open_image",
    "unread_warning",
    "why_no_ocr",
]
