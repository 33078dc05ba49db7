"""Spreadsheets as tables of text: CSV (delimiters guessed, quoting resolved, the text rules) and
Excel workbooks (every sheet, dates and whole numbers as people write them, the size limit)."""

from __future__ import annotations

import codecs
import datetime as dt
import io

import pytest

from handrail import InputError
from handrail.documents import LoadOptions, load_bytes

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def test_a_csv_is_rows_of_cells_with_its_quoting_resolved() -> None:
    data = b'item,qty,amount\n"Oak desk, large",2,"1,234.50"\n\nchair,4,\n'
    doc = load_bytes(data, name="lines.csv")
    assert doc.text == "item | qty | amount\nOak desk, large | 2 | 1,234.50\nchair | 4"
    assert doc.media_type == "text/csv"


def test_a_semicolon_csv_with_a_byte_order_mark_reads_the_same() -> None:
    data = codecs.BOM_UTF8 + b"Artikel;Betrag\nSchreibtisch;1.234,50\n"
    assert load_bytes(data, name="lines.csv").text == "Artikel | Betrag\nSchreibtisch | 1.234,50"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b",,\n,,\n", "`a.csv` is empty; there is nothing to process"),
        ("é;1".encode("latin-1"), "`a.csv` is not UTF-8 text (byte 0xe9 at offset 0)"),
        (b'a,"b\0",c', "`a.csv` looks binary (it contains NUL bytes)"),
    ],
)
def test_a_bad_csv_fails_naming_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as info:
        load_bytes(data, name="a.csv")
    assert str(info.value).startswith(message)


def _workbook() -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Invoice"
    sheet.append(["Invoice", "INV-7"])
    sheet.append(["Date", dt.datetime(2024, 1, 5)])
    sheet.append([])
    sheet.append(["Item", "Qty", "Amount"])
    sheet.append(["Oak desk", 2.0, 1234.5])
    sheet.append(["Delivered", dt.datetime(2024, 1, 6, 14, 30), None, None])
    notes = book.create_sheet("Notes")
    notes.append(["Deliver to dock 4"])
    book.create_sheet("Empty")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_workbook_is_every_sheet_as_rows_of_cells() -> None:
    doc = load_bytes(_workbook(), name="invoice.xlsx")
    assert doc.text == (
        "Sheet: Invoice\n"
        "Invoice | INV-7\n"
        "Date | 2024-01-05\n"
        "Item | Qty | Amount\n"
        "Oak desk | 2 | 1234.5\n"
        "Delivered | 2024-01-06 14:30:00\n"
        "\n"
        "Sheet: Notes\n"
        "Deliver to dock 4"
    )
    assert doc.media_type == XLSX
    assert doc.metadata == {"sheets": ["Invoice", "Notes", "Empty"]}


def test_a_sheet_past_the_text_limit_stops_there() -> None:
    with pytest.raises(InputError) as info:
        load_bytes(_workbook(), name="invoice.xlsx", options=LoadOptions(max_chars=40))
    assert str(info.value) == (
        "`invoice.xlsx` holds more than 40 characters of text, over the limit; split it, or "
        "raise LoadOptions.max_chars"
    )


def test_what_is_not_a_workbook_says_so() -> None:
    with pytest.raises(InputError) as info:
        load_bytes(b"id,amount\n1,2\n", name="sheet.xlsx")
    assert str(info.value) == (
        "`sheet.xlsx` is not an Excel workbook (.xlsx) (it is not a zip file, or it is "
        "truncated); open it and save it again as an Excel workbook (.xlsx)"
    )
