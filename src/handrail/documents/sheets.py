"""Spreadsheets as tables of text: CSV (standard library) and Excel workbooks (`.xlsx`, openpyxl).

Each row is one line, its cells separated by ` | `; empty rows are left out, and so are empty
cells at the end of a row. A CSV's delimiter (`,`, `;`, tab or `|`) is guessed from its first
lines, and its quoting resolved (`"1,234.50"` reads `1,234.50`); the text rules are those of
`.txt` files (UTF-8, UTF-16/32 with a byte-order mark). A workbook gives every worksheet in
order, each after a line `Sheet: <name>`; a cell reads as the value Excel last computed (a
formula's cached result), dates as ISO dates, whole numbers without `.0`. Number formats
(currency signs, thousands separators) are not applied.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable
from typing import Any

from handrail.core.state import Document
from handrail.documents.office import check_zip
from handrail.documents.options import LoadOptions
from handrail.documents.text import decode, not_empty, shown
from handrail.exceptions import InputError

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SEPARATOR = " | "


def load_csv(data: bytes, *, name: str, options: LoadOptions) -> Document:
    """A CSV file as a table of text."""
    text = not_empty(decode(data, name=name), name=name)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        lines = _lines(csv.reader(io.StringIO(text, newline=""), dialect), name, options)
    except csv.Error as e:
        raise InputError(
            f"{shown(name)} is not valid CSV ({e}); fix it, or rename it to .txt to read it as "
            "plain text"
        ) from None
    return Document(
        text=not_empty("\n".join(lines), name=name), id=name, source=name, media_type="text/csv"
    )


def load_xlsx(data: bytes, *, name: str, options: LoadOptions) -> Document:
    """An Excel workbook's worksheets as tables of text."""
    import openpyxl

    check_zip(data, name=name, kind="an Excel workbook (.xlsx)", options=options)
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises KeyError, ValueError... for a damaged file
        raise InputError(
            f"{shown(name)} is not an Excel workbook handrail can read ({type(e).__name__}: "
            f"{e}); open it and save it again as .xlsx"
        ) from e
    try:
        chunks = []
        for sheet in book.worksheets:
            rows = (
                tuple(_cell(value) for value in row) for row in sheet.iter_rows(values_only=True)
            )
            lines = _lines(rows, name, options)
            if lines:
                chunks.append("\n".join([f"Sheet: {sheet.title}", *lines]))
    finally:
        book.close()
    metadata = {"sheets": [sheet.title for sheet in book.worksheets]}
    return Document(
        text=not_empty("\n\n".join(chunks), name=name),
        id=name,
        source=name,
        metadata=metadata,
        media_type=XLSX,
    )


def _lines(rows: Iterable[Iterable[str]], name: str, options: LoadOptions) -> list[str]:
    """Rows as lines (empty ones left out), refusing at once a table over `max_chars`."""
    lines = []
    size = 0
    for row in rows:
        cells = [" ".join(cell.split()) for cell in row]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        line = SEPARATOR.join(cells)
        size += len(line) + 1
        if size > options.max_chars:  # a sheet of a million rows stops here, not in memory
            raise InputError(
                f"{shown(name)} holds more than {options.max_chars:,} characters of text, over "
                "the limit; split it, or raise LoadOptions.max_chars"
            )
        lines.append(line)
    return lines


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


__all__ = ["load_csv", "load_xlsx"]
