"""PDFs (pypdfium2): each page's text layer in reading order with its words' boxes; pages with
no text layer (scans) rendered and read by OCR; filled-in form fields as `Name: value` lines.

Text: pdfium's own order of characters (the content's order, lines joined, hyphenated line ends
joined with the hyphen kept: `INV-2024-` + `0042` stays `INV-2024-0042`). Between two words on a
line, a gap wider than about a line's height is a column gap and becomes a tab, so a table's
cells stay apart (`Widget A\\t2\\t10.00`). Boxes are in points from the page's top-left corner
as it is shown (its `/Rotate` applied).

Limits (LoadOptions): pages, page size, seconds per page (checked after each page), pixels of a
page rendered for OCR (the scale is lowered to fit). An encrypted PDF opens with
`LoadOptions.password` or fails its document saying so; a damaged one fails its document.

pdfium is not thread-safe: every call into it, from any thread, holds `PDFIUM_LOCK` (OCR runs
outside it).
"""

from __future__ import annotations

import ctypes
import dataclasses
import math
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handrail.core.pages import Box, Word
from handrail.core.state import Document
from handrail.documents.build import Builder, PageContent, words_in
from handrail.documents.images import blank_warning, ocr_page, unread_warning, why_no_ocr
from handrail.documents.options import LoadOptions
from handrail.exceptions import InputError

if TYPE_CHECKING:
    from PIL.Image import Image

PDFIUM_LOCK = threading.RLock()
"""Held around every call into pdfium (loading here, rendering in `render.py`)."""

COLUMN_GAP = 0.95
"""A gap between two words on a line wider than this many line heights separates two columns
(a tab); between words, justified text stays under about 0.85 (twice as wide after a sentence's
end, which counts double), table cells in generated PDFs are 1.0 and more apart."""

SCAN_TEXT_CHARS = 50
"""A page with fewer characters of text than this whose images cover half of it or more is a
scan (a scanner's stamp or an app's watermark is all the text it has): OCR reads it."""

_HYPHENS = {0x02, 0xAD, 0xFFFE}
"""How pdfium marks a hyphen at a line's end (it joins the two lines); kept as `-`."""

_OPEN_ERRORS = {
    1: "pdfium could not open it",  # FPDF_ERR_UNKNOWN
    2: "the file cannot be read",  # FPDF_ERR_FILE
    3: "it is damaged or truncated, or not a PDF",  # FPDF_ERR_FORMAT
}

Place = Callable[[float, float, float, float], Box]
"""(left, bottom, right, top) in PDF user space -> a box from the shown page's top-left."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Read:
    """One page as read under the lock: its content, or its image for OCR."""

    content: PageContent
    image: Image | None = None
    """The page rendered for OCR (None: read from its text layer, or left unread)."""
    scale: float = 1.0
    """The image's pixels per point."""
    scan: bool = False
    """The page has no text layer (or next to none): a scan."""


def load_pdf(data: bytes, *, name: str, options: LoadOptions) -> Document:
    """The text of a PDF's pages, with their words' boxes (see the module's docstring)."""
    no_ocr = why_no_ocr(options)
    builder = Builder()
    unread: list[int] = []
    blank: list[int] = []
    with PDFIUM_LOCK:
        pdf = open_pdf(data, name=name, password=options.password)
    try:
        with PDFIUM_LOCK, damaged(name):
            count = len(pdf)
            if count > options.max_pages:
                raise InputError(
                    f"`{name}` has {count:,} pages, over the {options.max_pages:,}-page limit "
                    "(LoadOptions.max_pages); split it, or raise the limit"
                )
            metadata = _metadata(pdf)
            builder.warnings.extend(_attachments(pdf))
        for index in range(count):
            label = f"{name}, page {index + 1}"
            with PDFIUM_LOCK, damaged(label):
                started = time.perf_counter()
                read = _read_page(pdf, index, name=name, options=options, ocr=no_ocr is None)
                elapsed = time.perf_counter() - started
            if elapsed > options.page_timeout_s:
                raise InputError(
                    f"`{label}` took {elapsed:.1f} s to read, over the "
                    f"{options.page_timeout_s:g} s limit (LoadOptions.page_timeout_s); raise "
                    "the limit if the file is trusted, or print it to a new PDF"
                )
            content = read.content
            if read.image is not None:
                ocr = ocr_page(
                    read.image, options, where=label, label=label, unit="pt", scale=read.scale
                )  # the page's size in points, not the image's rounded to whole pixels
                content = dataclasses.replace(ocr, width=content.width, height=content.height)
                if not content.text:
                    blank.append(index + 1)
            elif read.scan:
                unread.append(index + 1)
            builder.page(content)
    finally:
        with PDFIUM_LOCK:
            pdf.close()
    if unread:
        builder.warnings.append(unread_warning(unread, no_ocr or "", text_layer=True))
    if blank:
        builder.warnings.append(blank_warning(blank))
    return builder.build(id=name, source=name, media_type="application/pdf", metadata=metadata)


@contextmanager
def damaged(where: str) -> Iterator[None]:
    """Turns pdfium's errors (a page or its text that cannot be loaded) into InputError."""
    import pypdfium2 as pdfium

    try:
        yield
    except pdfium.PdfiumError as e:
        raise InputError(
            f"`{where}` cannot be read ({e}); the PDF is damaged: export it again, or print it "
            "to a new PDF"
        ) from e


def open_pdf(data: bytes, *, name: str, password: str | None) -> Any:
    """The pypdfium2 `PdfDocument` in `data`, its forms ready (hold `PDFIUM_LOCK`). Raises
    InputError for an encrypted PDF without its password and for a damaged one."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    try:
        pdf = pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as e:
        code = getattr(e, "err_code", None)
        if code == raw.FPDF_ERR_PASSWORD:
            given = " and the password given does not open it" if password else ""
            raise InputError(
                f"`{name}` is encrypted{given}; pass its password (HANDRAIL_PDF_PASSWORD or "
                "LoadOptions(password=...))"
            ) from None  # the chained error would say nothing more, and never the password
        if code == raw.FPDF_ERR_SECURITY:
            raise InputError(
                f"`{name}` is protected by a security handler pdfium does not support; save an "
                "unprotected copy and read that"
            ) from e
        reason = _OPEN_ERRORS.get(code or 0, str(e))
        raise InputError(
            f"`{name}` is not a readable PDF ({reason}); download or export it again, or print "
            "it to a new PDF"
        ) from e
    try:
        with damaged(name):
            if pdf.get_formtype() != raw.FORMTYPE_NONE:
                pdf.init_forms()  # before any page is loaded, so that field values can be read
    except InputError:
        pdf.close()
        raise
    return pdf


def _read_page(pdf: Any, index: int, *, name: str, options: LoadOptions, ocr: bool) -> _Read:
    """Page `index`'s text layer and form fields, or, for a scan, its image to OCR (`ocr`: an
    engine is there to read it)."""
    label = f"{name}, page {index + 1}"
    page = pdf[index]
    try:
        width, height = page.get_size()
        if max(width, height) > options.max_page_side:
            raise InputError(
                f"`{label}` is {width:,.0f} × {height:,.0f} pt, over the "
                f"{options.max_page_side:,.0f} pt limit for a side (LoadOptions.max_page_side); "
                "raise the limit if the file is trusted"
            )
        place = _to_top_left(page)
        textpage = page.get_textpage()
        try:
            text, words = _text_layer(textpage, place)
        finally:
            textpage.close()
        if pdf.formenv:
            text, words = _with_fields(text, words, _fields(pdf, page, place))
        content = PageContent(text=text, words=words, width=width, height=height, label=label)
        scan = _is_scan(page, text)
        if ocr and (scan or options.ocr == "always"):
            image, scale = _render_for_ocr(page, options)
            return _Read(content=content, image=image, scale=scale, scan=scan)
        if scan:  # left as it is, and the document's warnings say so
            content = dataclasses.replace(content, text_from="text" if text else "none")
            return _Read(content=content, scan=True)
        return _Read(content=content)
    finally:
        page.close()


def _to_top_left(page: Any) -> Place:
    """How PDF user space maps onto the page as shown: from the top-left corner of its crop
    box, with its `/Rotate` (clockwise) applied."""
    left, bottom, right, top = page.get_bbox()
    rotation = page.get_rotation()

    def place(l: float, b: float, r: float, t: float) -> Box:  # noqa: E741
        if rotation == 90:
            return (b - bottom, l - left, t - bottom, r - left)
        if rotation == 180:
            return (right - r, b - bottom, right - l, t - bottom)
        if rotation == 270:
            return (top - t, right - r, top - b, right - l)
        return (l - left, top - t, r - left, top - b)

    return place


_CLEAN = {code: "-" for code in _HYPHENS} | {
    code: None for code in (*range(0x20), 0x7F, 0xFEFF, 0xFFFF) if code not in (0x02, 0x09)
}
"""Applied to each word: pdfium's hyphen marks read `-`; control characters and byte-order
marks go (a word is a run without white space, so line breaks never reach it)."""
_WORD = re.compile(r"[^\s\u2028\u2029]+")
_LIGATURES = re.compile("[\ufb00-\ufb06]")  # ﬁ, ﬂ...: read as their letters


def _page_chars(handle: Any, count: int) -> str:
    """The page's characters, one per pdfium character index (so `text[i]` is character i,
    whose box pdfium gives)."""
    import pypdfium2.raw as raw

    if count == 0:
        return ""
    # the whole text at once is 20x faster than character by character, but pdfium leaves out
    # a few characters there (seen in Arabic text); then it is read one by one
    buffer = (ctypes.c_ushort * (count + 1))()
    written = raw.FPDFText_GetText(handle, 0, count, buffer)
    if written == count + 1 and raw.FPDFText_GetTextIndexFromCharIndex(handle, count - 1) == (
        count - 1
    ):
        return bytes(buffer)[: 2 * count].decode("utf-16-le", errors="replace")
    codes = (raw.FPDFText_GetUnicode(handle, i) for i in range(count))
    return "".join(chr(c) if not 0xD800 <= c <= 0xDFFF else "\ufffd" for c in codes)


def _clean(word: str) -> str:
    if word.isascii() and word.isprintable():  # most words: nothing to clean
        return word
    word = word.translate(_CLEAN)
    if _LIGATURES.search(word):
        word = _LIGATURES.sub(lambda m: unicodedata.normalize("NFKC", m.group()), word)
    return word


def _tenth(value: float) -> float:
    """`value` to a tenth of a point (what `round(value, 1)` gives, in a tenth of its time)."""
    return math.floor(value * 10 + 0.5) / 10


def _column_gap(before: str, last: Box, box: Box) -> bool:
    """Whether the gap between two words on a line (`last`, then `box`) is a column gap. After a
    sentence's end, justified text stretches to twice the usual gap: that is no column."""
    gap = (box[0] - last[2]) / max(last[3] - last[1], 0.1)
    return gap > (2 * COLUMN_GAP if before[-1] in ".!?" else COLUMN_GAP)


def _text_layer(textpage: Any, place: Place) -> tuple[str, tuple[Word, ...]]:
    """A page's text (words joined by a space, a tab across a column gap, or a line break) and
    its words, each boxed by its first and last characters' boxes."""
    import pypdfium2.raw as raw

    handle = textpage.raw
    chars = _page_chars(handle, raw.FPDFText_CountChars(handle))
    loose_box = raw.FPDFText_GetLooseCharBox
    rect = raw.FS_RECTF()
    pointer = ctypes.byref(rect)
    chunks: list[str] = []
    words: list[Word] = []
    length = 0
    last_end = 0
    last: Box | None = None  # the previous word's box
    for match in _WORD.finditer(chars):
        text = _clean(match.group())
        if not text:
            continue
        first, end = match.start(), match.end() - 1
        box: Box | None = None
        if loose_box(handle, first, pointer):
            box = place(rect.left, rect.bottom, rect.right, rect.top)
            if end != first and loose_box(handle, end, pointer):
                other = place(rect.left, rect.bottom, rect.right, rect.top)
                box = (
                    min(box[0], other[0]),
                    min(box[1], other[1]),
                    max(box[2], other[2]),
                    max(box[3], other[3]),
                )
            box = (_tenth(box[0]), _tenth(box[1]), _tenth(box[2]), _tenth(box[3]))
        if chunks:
            between = chars[last_end:first]
            if "\n" in between or "\r" in between or "\u2028" in between or "\u2029" in between:
                gap = "\n"
            elif last is not None and box is not None and _column_gap(chunks[-1], last, box):
                gap = "\t"
            else:
                gap = " "
            chunks.append(gap)
            length += 1
        if box is not None:
            words.append(Word(text=text, box=box, start=length))
        chunks.append(text)
        length += len(text)
        last, last_end = box, match.end()
    return "".join(chunks), tuple(words)


def _is_scan(page: Any, text: str) -> bool:
    """Whether a page needs OCR: no text, or next to none over images covering half of it."""
    import pypdfium2.raw as raw

    chars = sum(map(len, text.split()))
    if chars == 0:
        return True
    if chars >= SCAN_TEXT_CHARS:
        return False
    width, height = page.get_size()
    covered: float = 0.0
    for image in page.get_objects(filter=(raw.FPDF_PAGEOBJ_IMAGE,), max_depth=2):
        left, bottom, right, top = image.get_bounds()
        covered += max(0.0, right - left) * max(0.0, top - bottom)
    return bool(covered >= 0.5 * width * height)


def _render_for_ocr(page: Any, options: LoadOptions) -> tuple[Image, float]:
    """The page as an image at `options.ocr_scale`, lowered to stay within
    `options.max_image_pixels`; returns the image and its scale (pixels per point)."""
    width, height = page.get_size()
    scale = min(options.ocr_scale, math.sqrt(options.max_image_pixels / max(width * height, 1)))
    bitmap = page.render(scale=scale, may_draw_forms=False)
    try:
        image = bitmap.to_pil().convert("RGB")  # a copy: the bitmap's memory is freed below
    finally:
        bitmap.close()
    return image, image.width / width


def _fields(pdf: Any, page: Any, place: Place) -> list[tuple[str, str, Box]]:
    """The page's filled-in form fields: (name, value, box); a ticked box's value is its
    export value (`Yes`, or the option it stands for)."""
    import pypdfium2.raw as raw

    form = pdf.formenv.raw
    found: list[tuple[str, str, Box]] = []
    rect = raw.FS_RECTF()
    for i in range(raw.FPDFPage_GetAnnotCount(page.raw)):
        annot = raw.FPDFPage_GetAnnot(page.raw, i)
        try:
            if raw.FPDFAnnot_GetSubtype(annot) != raw.FPDF_ANNOT_WIDGET:
                continue
            kind = raw.FPDFAnnot_GetFormFieldType(form, annot)
            if kind in (raw.FPDF_FORMFIELD_PUSHBUTTON, raw.FPDF_FORMFIELD_SIGNATURE):
                continue
            value = _utf16(raw.FPDFAnnot_GetFormFieldValue, form, annot)
            boxed = kind in (raw.FPDF_FORMFIELD_CHECKBOX, raw.FPDF_FORMFIELD_RADIOBUTTON)
            if boxed and not raw.FPDFAnnot_IsChecked(form, annot):
                continue
            if not value.strip() or value == "Off":
                continue
            raw.FPDFAnnot_GetRect(annot, ctypes.byref(rect))
            field_name = _utf16(raw.FPDFAnnot_GetFormFieldName, form, annot)
            box = place(rect.left, rect.bottom, rect.right, rect.top)
            found.append((field_name, " ".join(value.split()), _normal(box)))
        finally:
            raw.FPDFPage_CloseAnnot(annot)
    return found


def _normal(box: Box) -> Box:
    return (min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3]))


def _utf16(function: Any, *args: Any) -> str:
    """A string pdfium writes as UTF-16 into a buffer it sizes (`function(*args, buf, len)`)."""
    size = function(*args, None, 0)
    if size <= 2:
        return ""
    buffer = (ctypes.c_ushort * (size // 2))()
    function(*args, buffer, size)
    return bytes(buffer)[: size - 2].decode("utf-16-le", errors="replace")


def _with_fields(
    text: str, words: tuple[Word, ...], fields: list[tuple[str, str, Box]]
) -> tuple[str, tuple[Word, ...]]:
    """The page's text with a `Name: value` line per filled-in field; each value's words are
    boxed by their share of the field's box (the names are not on the page: no box)."""
    if not fields:
        return text, words
    added = list(words)
    for field_name, value, (left, top, right, bottom) in fields:
        line = f"{field_name}: "
        step = (right - left) / max(len(value), 1)
        boxes: list[Box | None] = [None] * len(line)
        boxes += [(left + i * step, top, left + (i + 1) * step, bottom) for i in range(len(value))]
        offset = len(text) + 1 if text else 0
        line += value
        text = f"{text}\n{line}" if text else line
        added += [
            Word(text=w.text, box=w.box, start=w.start + offset) for w in words_in(line, boxes)
        ]
    return text, tuple(added)


def _metadata(pdf: Any) -> dict[str, Any]:
    """The PDF's information dictionary (title, author, producer...), what it has of it."""
    info = {key.lower(): value for key, value in pdf.get_metadata_dict(skip_empty=True).items()}
    return {"pdf": info} if info else {}


def _attachments(pdf: Any) -> list[str]:
    """A warning naming the files embedded in the PDF, which are not read."""
    count = pdf.count_attachments()
    if not count:
        return []
    names = [pdf.get_attachment(i).get_name() for i in range(min(count, 10))]
    more = f" and {count - 10} more" if count > 10 else ""
    if count == 1:
        fix = "save it from the PDF and add it as a document of its own"
    else:
        fix = "save them from the PDF and add them as documents of their own"
    files = "file" if count == 1 else "files"
    return [f"the PDF holds {count} embedded {files} ({', '.join(names)}{more}), not read: {fix}"]


__all__ = ["COLUMN_GAP", "PDFIUM_LOCK", "SCAN_TEXT_CHARS", "damaged", "load_pdf", "open_pdf"]
