"""Word documents: paragraphs and tables in order, headers and footers once, and the files that
are not Word documents (damaged, encrypted, old .doc, a zip bomb) failing with what they are."""

from __future__ import annotations

import io
import zipfile

import pytest

from handrail import InputError
from handrail.documents import LoadOptions, load_bytes

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _invoice_docx() -> bytes:
    import docx

    word = docx.Document()
    word.core_properties.title = "Invoice INV-7"
    word.sections[0].header.paragraphs[0].text = "Northgate Supplies Ltd, 4 Mill Lane"
    word.sections[0].footer.paragraphs[0].text = "VAT GB123456789"
    word.add_heading("Invoice INV-7", level=1)
    word.add_paragraph("Date: 2024-01-05")
    table = word.add_table(rows=3, cols=3)
    for row, cells in zip(
        table.rows,
        [("Item", "Qty", "Amount"), ("Oak  desk", "2", "1,000.00"), ("", "", "")],
        strict=True,
    ):
        for cell, text in zip(row.cells, cells, strict=True):
            cell.text = text
    total = word.add_table(rows=1, cols=3)
    total.rows[0].cells[0].merge(total.rows[0].cells[1]).text = "Total due"
    total.rows[0].cells[2].text = "1,234.50"
    word.add_paragraph("Thank you for your order.")
    out = io.BytesIO()
    word.save(out)
    return out.getvalue()


def test_a_word_document_reads_in_order_with_tables_as_rows_of_cells() -> None:
    doc = load_bytes(_invoice_docx(), name="invoice.docx")
    assert doc.text == (
        "Northgate Supplies Ltd, 4 Mill Lane\n"
        "Invoice INV-7\n"
        "Date: 2024-01-05\n"
        "Item | Qty | Amount\n"
        "Oak desk | 2 | 1,000.00\n"
        "Total due | 1,234.50\n"
        "Thank you for your order.\n"
        "VAT GB123456789"
    )
    assert (doc.media_type, doc.pages, doc.metadata) == (DOCX, (), {"title": "Invoice INV-7"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"not a zip at all",
            "`a.docx` is not a Word document (it is not a zip file, or it is truncated); open it "
            "and save it again as a Word document",
        ),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(512),
            "`a.docx` is password-protected, or an old-format Office file saved under a new "
            "name; handrail reads neither: save an unprotected copy as a Word document",
        ),
    ],
)
def test_what_is_not_a_word_document_says_what_it_is(data: bytes, message: str) -> None:
    with pytest.raises(InputError) as info:
        load_bytes(data, name="a.docx")
    assert str(info.value) == message


def test_a_zip_that_is_not_a_word_document_fails_naming_the_file() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(InputError, match=r"^`a\.docx` is not a Word document handrail can read"):
        load_bytes(out.getvalue(), name="a.docx")


def test_a_file_that_would_unpack_past_the_limit_is_refused_before_unpacking() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * 2_000_000)  # 2 MB of zeros, ~2 KB packed
    assert len(out.getvalue()) < 10_000
    with pytest.raises(InputError) as info:
        load_bytes(out.getvalue(), name="a.docx", options=LoadOptions(max_unzipped_bytes=1_000_000))
    assert str(info.value) == (
        "`a.docx` would unpack to 2,000,000 bytes, over the 1,000,000 limit (a zip bomb?); "
        "raise LoadOptions.max_unzipped_bytes if the file is genuine"
    )


def test_an_empty_word_document_is_empty() -> None:
    import docx

    out = io.BytesIO()
    docx.Document().save(out)
    with pytest.raises(InputError, match=r"^`a\.docx` is empty; there is nothing to process"):
        load_bytes(out.getvalue(), name="a.docx")
