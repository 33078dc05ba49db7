"""Which loader reads which file: the table of formats, and `load_bytes`, the one entry point.

A loader is `load(data: bytes, *, name: str, options: LoadOptions) -> Document`. It raises
`InputError` with a message naming the file (`name`), the problem and the fix; the caller
(`handrail.inputs`) makes that the document's failed run. Loaders are imported when first
needed, so a missing extra fails only the documents that need it, naming the extra.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath

from handrail.core.state import Document
from handrail.documents.options import DEFAULT_OPTIONS, LoadOptions
from handrail.exceptions import InputError

Loader = Callable[..., Document]


@dataclass(frozen=True, kw_only=True, slots=True)
class Format:
    """One kind of file handrail reads."""

    suffixes: tuple[str, ...]
    media_type: str
    loader: str
    """`module:function` of its loader."""
    extra: str | None = None
    """The handrail extra that installs what it needs (None: the base install reads it)."""
    needs: tuple[str, ...] = ()
    """Modules that extra provides (checked before the loader is imported)."""
    name: str = ""
    """For messages: `PDF`, `a PNG image`..."""


_DOCS = ("pypdfium2", "PIL")
FORMATS: tuple[Format, ...] = (
    Format(suffixes=(".txt",), media_type="text/plain", loader="text:load_text", name="text"),
    Format(suffixes=(".md",), media_type="text/markdown", loader="text:load_text", name="Markdown"),
    Format(
        suffixes=(".json",), media_type="application/json", loader="text:load_json", name="JSON"
    ),
    Format(suffixes=(".csv",), media_type="text/csv", loader="sheets:load_csv", name="CSV"),
    Format(
        suffixes=(".eml",), media_type="message/rfc822", loader="mail:load_email", name="e-mail"
    ),
    Format(
        suffixes=(".html", ".htm"),
        media_type="text/html",
        loader="markup:load_html",
        extra="documents",
        needs=("bs4",),
        name="HTML",
    ),
    Format(
        suffixes=(".pdf",),
        media_type="application/pdf",
        loader="pdf:load_pdf",
        extra="documents",
        needs=_DOCS,
        name="PDF",
    ),
    Format(
        suffixes=(".png",),
        media_type="image/png",
        loader="images:load_image",
        extra="documents",
        needs=_DOCS,
        name="PNG image",
    ),
    Format(
        suffixes=(".jpg", ".jpeg"),
        media_type="image/jpeg",
        loader="images:load_image",
        extra="documents",
        needs=_DOCS,
        name="JPEG image",
    ),
    Format(
        suffixes=(".tif", ".tiff"),
        media_type="image/tiff",
        loader="images:load_image",
        extra="documents",
        needs=_DOCS,
        name="TIFF image",
    ),
    Format(
        suffixes=(".docx",),
        media_type="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        loader="office:load_docx",
        extra="documents",
        needs=("docx",),
        name="Word document",
    ),
    Format(
        suffixes=(".xlsx",),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        loader="sheets:load_xlsx",
        extra="documents",
        needs=("openpyxl",),
        name="Excel workbook",
    ),
)

_BY_SUFFIX = {suffix: f for f in FORMATS for suffix in f.suffixes}
_BY_MEDIA_TYPE = {f.media_type: f for f in FORMATS}
SUFFIXES: tuple[str, ...] = tuple(_BY_SUFFIX)
"""Every file suffix handrail reads."""


def format_for(name: str, media_type: str | None = None) -> Format | None:
    """The format of a file called `name` (its suffix first, then `media_type` if given)."""
    found = _BY_SUFFIX.get(PurePath(name).suffix.lower())
    if found is None and media_type is not None:
        found = _BY_MEDIA_TYPE.get(media_type.split(";")[0].strip().lower())
    return found


def _article(name: str) -> str:
    return "an" if name[:1].lower() in "aeiou" else "a"


def missing_extra(fmt: Format) -> str | None:
    """Why `fmt` cannot be read in this install (the extra to install), or None if it can."""
    missing = [module for module in fmt.needs if importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return (
        f"reading {_article(fmt.name)} {fmt.name} needs handrail's `{fmt.extra}` extra (missing: "
        f"{', '.join(missing)}); install it with `pip install 'handrail[{fmt.extra}]'`"
    )


def load_bytes(
    data: bytes,
    *,
    name: str,
    media_type: str | None = None,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> Document:
    """The `Document` in `data`, read by the loader its name (or media type) calls for. Its id
    and source are `name`; the caller sets its own. Raises `InputError` naming the problem."""
    fmt = format_for(name, media_type)
    if fmt is None:
        suffix = PurePath(name).suffix.lower() or "(no extension)"
        raise InputError(
            f"`{name}` has an unsupported file type `{suffix}`; handrail reads "
            f"{', '.join(SUFFIXES)} (convert it to one of these, or leave it out)"
        )
    problem = missing_extra(fmt)
    if problem is not None:
        raise InputError(f"`{name}`: {problem}")
    module, function = fmt.loader.split(":")
    load: Loader = getattr(importlib.import_module(f"handrail.documents.{module}"), function)
    document = load(data, name=name, options=options)
    if len(document.text) > options.max_chars:
        raise InputError(
            f"`{name}` holds {len(document.text):,} characters of text, over the "
            f"{options.max_chars:,} limit; split it, or raise LoadOptions.max_chars"
        )
    if document.media_type == "text/plain" and fmt.media_type != "text/plain":
        document = dataclasses.replace(document, media_type=fmt.media_type)
    return document


__all__ = ["FORMATS", "SUFFIXES", "Format", "format_for", "load_bytes", "missing_extra"]
