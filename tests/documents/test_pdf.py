"""PDFs with a text layer, made on the spot with reportlab: text in reading order, words boxed
from the page's top-left corner, tables as tab-separated cells, form fields, the limits, an
encrypted PDF, broken files, pages that are only an image (OCR), and threads."""

from __future__ import annotations

import ctypes
import io
import threading

import pytest
from tests.documents.conftest import pdf_bytes, scan_pdf, text_image

from handrail.documents import LoadOptions, load_bytes
from handrail.documents.build import PAGE_BREAK
from handrail.exceptions import InputError

NO_OCR = LoadOptions(ocr="never")
A4_HEIGHT = 841.9


def test_text_pages_and_words_from_the_top_left_corner() -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    data = pdf_bytes(
        [(72, 800, "Invoice 42"), (72, 780, "Total: 1,234.50")],
        [(72, 800, "Page two")],
    )
    document = load_bytes(data, name="a.pdf", options=NO_OCR)

    assert document.text == f"Invoice 42\nTotal: 1,234.50{PAGE_BREAK}Page two"
    assert (document.id, document.source) == ("a.pdf", "a.pdf")
    assert document.media_type == "application/pdf"
    assert document.warnings == ()
    first, second = document.pages
    assert (first.number, first.unit, first.width, first.height) == (1, "pt", 595.3, A4_HEIGHT)
    assert [p.text_from for p in document.pages] == ["text", "text"]
    assert (first.label, second.label) == ("a.pdf, page 1", "a.pdf, page 2")
    assert document.text[second.start : second.end] == "Page two"
    assert [w.text for w in first.words] == ["Invoice", "42", "Total:", "1,234.50"]
    for word in first.words:
        assert document.text[word.start : word.start + len(word.text)] == word.text
    # drawn at x=72, baseline y=800 from the bottom: 41.9 pt below the top edge
    left, top, right, bottom = first.words[0].box
    assert left == pytest.approx(72, abs=1.5)
    assert 28 < top < 33 < 42 < bottom < 46
    assert right - left == pytest.approx(stringWidth("Invoice", "Helvetica", 12), abs=1)
    (place,) = document.find("1,234.50")
    assert place.page == 1
    ((_, total_top, _, total_bottom),) = place.boxes
    assert total_top == pytest.approx(top + 20, abs=0.2)  # the line 20 pt lower
    assert total_bottom == pytest.approx(bottom + 20, abs=0.2)


def test_a_table_reads_as_rows_of_tab_separated_cells() -> None:
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Table

    buffer = io.BytesIO()
    rows = [
        ["Item", "Qty", "Unit price", "Total"],
        ["Widget A", "2", "10.00", "20.00"],
        ["Gadget with a long name", "1", "1,234.50", "1,234.50"],
    ]
    text = "Thank you for your order. Payment is due within thirty days of the invoice date."
    style = getSampleStyleSheet()["Normal"]
    SimpleDocTemplate(buffer).build([Table(rows), Paragraph(text, style)])

    document = load_bytes(buffer.getvalue(), name="t.pdf", options=NO_OCR)

    assert document.text.splitlines() == [*("\t".join(row) for row in rows), text]


def test_rotated_pages_box_words_where_pdfium_shows_them() -> None:
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    pdf = Canvas(buffer, pagesize=(400, 600))
    for rotation in (0, 90, 180, 270):
        pdf.setPageRotation(rotation)
        pdf.setFont("Helvetica", 12)
        pdf.drawString(50, 300, f"Turned {rotation}")
        pdf.showPage()
    pdf.save()

    document = load_bytes(buffer.getvalue(), name="r.pdf", options=NO_OCR)

    source = pdfium.PdfDocument(buffer.getvalue())
    for page, shown in zip(document.pages, source, strict=True):
        # pdfium's own page-to-screen mapping (on a screen the page's size, in 1/100 points) of
        # the corners of the word's characters
        width, height = shown.get_size()
        textpage = shown.get_textpage()
        xs, ys = [], []
        for i in range(len("Turned")):
            left, bottom, right, top = textpage.get_charbox(i, loose=True)
            for x, y in ((left, bottom), (right, top)):
                dx, dy = ctypes.c_int(), ctypes.c_int()
                size = (round(width * 100), round(height * 100))
                raw.FPDF_PageToDevice(shown.raw, 0, 0, *size, 0, x, y, dx, dy)
                xs.append(dx.value / 100)
                ys.append(dy.value / 100)
        textpage.close()
        assert page.words[0].text == "Turned"
        assert page.words[0].box == pytest.approx((min(xs), min(ys), max(xs), max(ys)), abs=0.1)
        assert (page.width, page.height) == pytest.approx((width, height), abs=0.1)
    source.close()


def test_filled_in_form_fields_are_read_as_name_value_lines() -> None:
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    pdf = Canvas(buffer)
    pdf.drawString(72, 760, "Claim form")
    pdf.acroForm.textfield(name="policy", value="PX-2041-77", x=72, y=700, width=200, height=20)
    pdf.acroForm.textfield(name="empty", value="", x=72, y=660, width=200, height=20)
    pdf.acroForm.checkbox(name="urgent", checked=True, x=72, y=620, size=14)
    pdf.acroForm.checkbox(name="closed", checked=False, x=72, y=600, size=14)
    pdf.showPage()
    pdf.save()

    document = load_bytes(buffer.getvalue(), name="f.pdf", options=NO_OCR)

    assert document.text.splitlines() == ["Claim form", "policy: PX-2041-77", "urgent: Yes"]
    (place,) = document.find("PX-2041-77")
    ((left, top, right, bottom),) = place.boxes
    assert (left, right) == pytest.approx((72, 272), abs=1)  # the field's box, from the top
    assert (top, bottom) == pytest.approx((A4_HEIGHT - 720, A4_HEIGHT - 700), abs=1)


def test_a_200_page_pdf_stays_within_the_limits() -> None:
    pages = [
        [(72, 800, f"Page {n} of 200"), (72, 780, f"Line item {n}: {n * 3}.00 EUR")]
        for n in range(1, 201)
    ]

    document = load_bytes(pdf_bytes(*pages), name="long.pdf")

    assert len(document.pages) == 200
    assert [page.number for page in document.pages] == list(range(1, 201))
    assert document.text.split(PAGE_BREAK)[199] == "Page 200 of 200\nLine item 200: 600.00 EUR"
    assert (document.find("Line item 137:")[0].page) == 137
    assert document.warnings == ()


def test_more_pages_than_the_limit_fail_the_document() -> None:
    data = pdf_bytes([(72, 800, "one")], [(72, 800, "two")], [(72, 800, "three")])

    with pytest.raises(InputError) as error:
        load_bytes(data, name="big.pdf", options=LoadOptions(max_pages=2))

    assert str(error.value) == (
        "`big.pdf` has 3 pages, over the 2-page limit (LoadOptions.max_pages); split it, or "
        "raise the limit"
    )


def test_a_page_over_the_size_limit_fails_the_document_naming_the_page() -> None:
    data = pdf_bytes([(72, 800, "A4")])

    with pytest.raises(InputError, match=r"^`big.pdf, page 1` is 595 × 842 pt, over the 800 pt"):
        load_bytes(data, name="big.pdf", options=LoadOptions(max_page_side=800))


def test_a_page_over_the_time_limit_fails_the_document_naming_the_page() -> None:
    data = pdf_bytes([(72, 800, "slow")])

    with pytest.raises(InputError) as error:
        load_bytes(data, name="slow.pdf", options=LoadOptions(page_timeout_s=0.0))

    assert str(error.value).startswith("`slow.pdf, page 1` took ")
    assert "over the 0 s limit (LoadOptions.page_timeout_s)" in str(error.value)


def test_an_encrypted_pdf_opens_with_its_password_and_never_shows_it() -> None:
    data = pdf_bytes([(72, 800, "Confidential 7")], encrypt="s3cret-pw")

    with pytest.raises(InputError) as missing:
        load_bytes(data, name="x.pdf")
    with pytest.raises(InputError) as wrong:
        load_bytes(data, name="x.pdf", options=LoadOptions(password="guess-pw"))
    document = load_bytes(data, name="x.pdf", options=LoadOptions(password="s3cret-pw"))

    assert str(missing.value) == (
        "`x.pdf` is encrypted; pass its password (HANDRAIL_PDF_PASSWORD or "
        "LoadOptions(password=...))"
    )
    assert str(wrong.value).startswith("`x.pdf` is encrypted and the password given does not")
    assert "guess-pw" not in str(wrong.value) and wrong.value.__cause__ is None
    assert document.text == "Confidential 7"


@pytest.mark.parametrize(
    "data",
    [pdf_bytes([(72, 800, "cut short")])[:300], b"", b"%PDF-1.7\nnot really", b"\x89PNG\r\n\x1a\n"],
    ids=["truncated", "empty", "garbage", "not-a-pdf"],
)
def test_a_broken_pdf_fails_its_document_naming_it(data: bytes) -> None:
    with pytest.raises(InputError) as error:
        load_bytes(data, name="broken.pdf")

    assert str(error.value) == (
        "`broken.pdf` is not a readable PDF (it is damaged or truncated, or not a PDF); download "
        "or export it again, or print it to a new PDF"
    )


def test_embedded_files_are_named_in_a_warning() -> None:
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    pdf = Canvas(buffer)
    pdf.drawString(72, 760, "See the attached receipt")
    pdf.showPage()
    pdf.save()
    import pypdfium2 as pdfium

    with_file = pdfium.PdfDocument(buffer.getvalue())
    with_file.new_attachment("receipt.txt").set_data(b"Total 12.00")
    out = io.BytesIO()
    with_file.save(out)
    with_file.close()

    document = load_bytes(out.getvalue(), name="a.pdf")

    assert document.text == "See the attached receipt"
    assert document.warnings == (
        "the PDF holds 1 embedded file (receipt.txt), not read: save it from the PDF and add it "
        "as a document of its own",
    )


def test_an_image_only_page_is_read_by_ocr_and_boxed_in_points() -> None:
    data = scan_pdf(text_image(["INVOICE 4711", "TOTAL 99.50"]), text_page="Cover letter")

    document = load_bytes(data, name="scan.pdf")

    cover, scan = document.pages
    assert (cover.text_from, scan.text_from) == ("text", "ocr")
    assert document.text.startswith(f"Cover letter{PAGE_BREAK}")
    assert "INVOICE 4711" in document.text and "99.50" in document.text
    assert (scan.unit, scan.width, scan.height) == ("pt", 595.3, A4_HEIGHT)
    # the image fills the page's width from x=36 pt, its top at 36 pt from the page's top
    (place,) = document.find("4711")
    assert place.page == 2
    ((left, top, right, bottom),) = place.boxes
    assert 36 < left < right < 560 and 36 < top < bottom < 150
    assert all(w.confidence is not None for w in scan.words)
    assert document.warnings == ()


def test_ocr_always_reads_pages_that_have_a_text_layer_too() -> None:
    data = scan_pdf(text_image(["PAID 2026"]), text_page="Cover letter")

    document = load_bytes(data, name="scan.pdf", options=LoadOptions(ocr="always"))

    assert [p.text_from for p in document.pages] == ["ocr", "ocr"]
    assert "Cover letter" in document.text and "PAID 2026" in document.text


def test_without_ocr_an_image_only_page_is_left_empty_with_a_warning() -> None:
    data = scan_pdf(text_image(["INVOICE 4711"]), text_page="Cover letter")

    document = load_bytes(data, name="scan.pdf", options=NO_OCR)

    assert document.text == "Cover letter"
    assert [p.text_from for p in document.pages] == ["text", "none"]
    assert document.warnings == (
        "page 2 has no text layer and was not read: OCR is off (ocr='never'); turn it on with "
        "`--ocr auto` or LoadOptions(ocr='auto')",
    )


def test_without_an_ocr_engine_the_warning_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import handrail.documents.ocr as ocr

    monkeypatch.setattr(ocr, "available_engines", lambda: ())
    data = scan_pdf(text_image(["INVOICE 4711"]))

    document = load_bytes(data, name="scan.pdf")

    assert [p.text_from for p in document.pages] == ["none"]
    assert len(document.warnings) == 1
    assert "pip install 'handrail[ocr]'" in document.warnings[0]


def test_a_page_with_a_watermark_over_a_scan_is_still_read_by_ocr() -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    pdf = Canvas(buffer, pagesize=A4)
    pdf.drawImage(ImageReader(text_image(["INVOICE 4711"])), 0, 0, A4[0], A4[1])
    pdf.drawString(20, 20, "Scanned with an app")  # the little text a scan app adds
    pdf.showPage()
    pdf.save()

    document = load_bytes(buffer.getvalue(), name="scan.pdf")

    assert document.pages[0].text_from == "ocr"
    assert "4711" in document.text


def test_threads_load_pdfs_at_once() -> None:
    data = pdf_bytes(*[[(72, 800, f"Page {n}")] for n in range(1, 21)])
    expected = load_bytes(data, name="a.pdf", options=NO_OCR).text
    texts: list[str] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            for _ in range(5):
                texts.append(load_bytes(data, name="a.pdf", options=NO_OCR).text)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert texts == [expected] * 40


def test_damaged_copies_of_a_pdf_load_or_fail_their_own_document() -> None:
    import random

    good = pdf_bytes([(72, 800, "Invoice 42"), (300, 800, "Total 9.50")], [(72, 800, "two")])
    rng = random.Random(14)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(150):
        data = bytearray(good)
        for _ in range(rng.randint(1, 20)):  # bytes changed at random, and often cut short
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        try:
            load_bytes(bytes(data), name="d.pdf", options=NO_OCR)
            outcomes["loaded"] += 1
        except InputError as e:
            assert str(e).startswith("`d.pdf")
            outcomes["refused"] += 1

    assert outcomes["loaded"] > 0 and outcomes["refused"] > 0  # both kinds were tried
