"""Word documents (`.docx`), with python-docx: paragraphs and tables in the order they come.

The text is the headers' text (once each), the body's paragraphs and tables as they follow each
other, then the footers'. A table row is one line with its cells separated by ` | ` (a merged
cell counts once). Footnotes, comments, text boxes and images are not read. Word has no fixed
pages, so a Word document has no pages either.

Office files are zips of XML files: `open_zip` refuses one that would unpack to more than
`LoadOptions.max_unzipped_bytes` before anything is unpacked, and names an encrypted
(password-protected) file or an old binary `.doc`/`.xls` for what it is.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

from handrail.core.state import Document
from handrail.documents.options import LoadOptions
from handrail.documents.text import not_empty, shown
from handrail.exceptions import InputError

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
_COMPOUND_FILE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""How an OLE compound file starts: an encrypted Office file, or an old .doc / .xls."""


def check_zip(data: bytes, *, name: str, kind: str, options: LoadOptions) -> None:
    """Refuse what is not an Office Open XML file (`kind`: "a Word document"...), saying what it
    is, and a zip that would unpack to more than `options.max_unzipped_bytes`."""
    if data.startswith(_COMPOUND_FILE):
        raise InputError(
            f"{shown(name)} is password-protected, or an old-format Office file saved under a "
            f"new name; handrail reads neither: save an unprotected copy as {kind}"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, EOFError):
        raise InputError(
            f"{shown(name)} is not {kind} (it is not a zip file, or it is truncated); "
            f"open it and save it again as {kind}"
        ) from None
    if unpacked > options.max_unzipped_bytes:
        raise InputError(
            f"{shown(name)} would unpack to {unpacked:,} bytes, over the "
            f"{options.max_unzipped_bytes:,} limit (a zip bomb?); raise "
            "LoadOptions.max_unzipped_bytes if the file is genuine"
        )


def load_docx(data: bytes, *, name: str, options: LoadOptions) -> Document:
    """A Word document's text: headers, body paragraphs and tables, footers."""
    import docx

    check_zip(data, name=name, kind="a Word document", options=options)
    try:
        word = docx.Document(io.BytesIO(data))
        body = _blocks(word.iter_inner_content())
        headers, footers = _margins(word)
    except Exception as e:  # python-docx raises KeyError, ValueError... for a damaged file
        raise InputError(
            f"{shown(name)} is not a Word document handrail can read ({type(e).__name__}: "
            f"{e}); open it and save it again as .docx"
        ) from e
    text = "\n".join(line for line in (*headers, *body, *footers) if line.strip())
    properties = word.core_properties
    metadata = {key: value for key, value in (("title", properties.title),) if value}
    return Document(
        text=not_empty(text, name=name),
        id=name,
        source=name,
        metadata=metadata,
        media_type=MEDIA_TYPE,
    )


def _blocks(content: Any) -> list[str]:
    """The lines of paragraphs and tables, in order."""
    from docx.table import Table

    lines: list[str] = []
    for block in content:
        if isinstance(block, Table):
            lines.extend(_table(block))
        else:
            lines.append(block.text)
    return lines


def _table(table: Any) -> list[str]:
    lines = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell appears once per column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            lines.append(" | ".join(cells))
    return lines


def _margins(word: Any) -> tuple[list[str], list[str]]:
    """The lines of the sections' headers and footers, each distinct one once."""
    headers: list[str] = []
    footers: list[str] = []
    for section in word.sections:
        for part, lines in ((section.header, headers), (section.footer, footers)):
            if part.is_linked_to_previous:
                continue
            for line in _blocks(part.iter_inner_content()):
                if line.strip() and line not in lines:
                    lines.append(line)
    return headers, footers


__all__ = ["check_zip", "load_docx"]
