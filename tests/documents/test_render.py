"""Pages rendered as PNG from the document's source file: a PDF, an image, an e-mail's
attachment; word boxes land on the ink; a missing or changed source, or a page the document
does not have, raise InputError."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from email.message import EmailMessage
from pathlib import Path

import pytest
from tests.documents.conftest import image_bytes, pdf_bytes, text_image

from handrail.core.state import Document
from handrail.documents import LoadOptions, PageImage, load_bytes, render_pages
from handrail.exceptions import InputError

NO_OCR = LoadOptions(ocr="never")


def _from_file(tmp_path: Path, name: str, data: bytes, **options: object) -> Document:
    """The document read from a file, as handrail.inputs reads it (source, file_sha256)."""
    path = tmp_path / name
    path.write_bytes(data)
    document = load_bytes(data, name=name, options=LoadOptions(**options))  # type: ignore[arg-type]
    metadata = {**document.metadata, "file_sha256": hashlib.sha256(data).hexdigest()}
    return dataclasses.replace(document, source=str(path), metadata=metadata)


def _image(page: PageImage):
    from PIL import Image

    assert page.data.startswith(b"\x89PNG\r\n\x1a\n") and page.media_type == "image/png"
    image = Image.open(io.BytesIO(page.data))
    assert image.size == (page.width, page.height)
    return image.convert("L")


def _ink(image, box: tuple[float, float, float, float], scale: float) -> int:
    """The darkest pixel inside `box` (page units) on `image` rendered at `scale` px/unit."""
    left, top, right, bottom = (round(v * scale) for v in box)
    return int(image.crop((left, top, right, bottom)).getextrema()[0])


def test_pdf_pages_render_in_the_order_asked_with_words_on_their_ink(tmp_path: Path) -> None:
    data = pdf_bytes([(72, 800, "Invoice 42")], [(300, 400, "Total 1,234.50")])
    document = _from_file(tmp_path, "a.pdf", data, ocr="never")

    second, first = render_pages(document, [2, 1])

    assert (second.page, first.page) == (2, 1)
    assert first.height == 1600 and first.width == pytest.approx(1131, abs=1)  # A4
    for rendered in (first, second):
        page = document.pages[rendered.page - 1]
        image = _image(rendered)
        scale = rendered.width / page.width
        for word in page.words:
            assert _ink(image, word.box, scale) < 100  # text drawn where the box says
        assert _ink(image, (400, 50, 550, 100), scale) == 255  # blank paper elsewhere
    (small,) = render_pages(document, [1], max_side=400)
    assert max(small.width, small.height) == 400


def test_a_rotated_page_renders_upright_with_its_boxes_on_the_ink(tmp_path: Path) -> None:
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    pdf = Canvas(buffer, pagesize=(600, 400))
    pdf.setPageRotation(90)
    pdf.setFont("Helvetica", 24)
    pdf.drawString(100, 200, "Sideways")
    pdf.showPage()
    pdf.save()
    document = _from_file(tmp_path, "r.pdf", buffer.getvalue(), ocr="never")

    (rendered,) = render_pages(document, [1])

    page = document.pages[0]
    assert (rendered.width > rendered.height) == (page.width > page.height)
    image = _image(rendered)
    (word,) = page.words
    assert _ink(image, word.box, rendered.width / page.width) < 100


def test_an_image_s_page_renders_from_the_image(tmp_path: Path) -> None:
    frames = [text_image([f"PAGE {n}"], size=(2000, 600)) for n in (1, 2)]
    data = image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])
    document = _from_file(tmp_path, "fax.tif", data, ocr="never")

    (rendered,) = render_pages(document, [2], max_side=1000)

    assert (rendered.page, rendered.width, rendered.height) == (2, 1000, 300)
    (small,) = render_pages(_from_file(tmp_path, "s.png", image_bytes(frames[0])), [1])
    assert (small.width, small.height) == (1600, 480)


def test_an_e_mail_attachment_s_page_renders_from_the_e_mail(tmp_path: Path) -> None:
    message = EmailMessage()
    message["Subject"] = "Invoice"
    message["From"] = "billing@example.com"
    message.set_content("Please find the invoice attached.")
    attachment = pdf_bytes([(72, 800, "Cover")], [(72, 800, "Invoice 42")])
    message.add_attachment(
        attachment, maintype="application", subtype="pdf", filename="invoice.pdf"
    )
    document = _from_file(tmp_path, "mail.eml", message.as_bytes(), ocr="never")
    number = document.find("Invoice 42")[0].page
    assert number == 2

    (rendered,) = render_pages(document, [number])

    direct = _from_file(tmp_path, "invoice.pdf", attachment, ocr="never")
    (expected,) = render_pages(direct, [2])
    assert rendered.data == expected.data


def test_a_split_attachment_s_page_renders_from_its_e_mail(tmp_path: Path) -> None:
    from handrail.documents.mail import split_email

    message = EmailMessage()
    message["Subject"] = "Invoice"
    message.set_content("Attached.")
    attachment = pdf_bytes([(72, 800, "Invoice 42")])
    message.add_attachment(
        attachment, maintype="application", subtype="pdf", filename="invoice.pdf"
    )
    path = tmp_path / "mail.eml"
    path.write_bytes(message.as_bytes())
    split = split_email(path.read_bytes(), name=str(path), options=NO_OCR)
    (document,) = [d for d in split.documents if isinstance(d, Document) and d.pages]
    assert document.id == f"{path}#invoice.pdf"

    (rendered,) = render_pages(document, [1])

    (expected,) = render_pages(_from_file(tmp_path, "invoice.pdf", attachment, ocr="never"), [1])
    assert rendered.data == expected.data


def test_a_page_the_document_does_not_have_is_an_input_error(tmp_path: Path) -> None:
    document = _from_file(tmp_path, "a.pdf", pdf_bytes([(72, 800, "one")]), ocr="never")

    with pytest.raises(InputError, match=r"^`a.pdf` has no page 2 to render \(it has pages 1-1\)"):
        render_pages(document, [1, 2])
    with pytest.raises(InputError, match=r"has no page 1 to render \(it has no pages\)"):
        render_pages(Document(text="plain"), [1])


def test_a_source_that_is_gone_or_changed_is_an_input_error(tmp_path: Path) -> None:
    document = _from_file(tmp_path, "a.pdf", pdf_bytes([(72, 800, "one")]), ocr="never")
    assert document.source is not None
    path = Path(document.source)

    path.write_bytes(pdf_bytes([(72, 800, "another")]))
    with pytest.raises(InputError) as changed:
        render_pages(document, [1])
    path.unlink()
    with pytest.raises(InputError) as gone:
        render_pages(document, [1])

    assert str(changed.value) == (
        f"`{path}` changed since it was read; its pages would not match the document's text "
        "(run the document again to see its pages)"
    )
    assert str(gone.value).startswith(f"`{path}` cannot be read to render its pages (")
    assert str(gone.value).endswith("it was moved or deleted since the document was read")
    with pytest.raises(InputError, match="no source file to render its pages from"):
        render_pages(dataclasses.replace(document, source=None), [1])


def test_a_source_that_is_not_paged_is_an_input_error(tmp_path: Path) -> None:
    pdf = _from_file(tmp_path, "a.pdf", pdf_bytes([(72, 800, "one")]), ocr="never")
    (tmp_path / "a.txt").write_text("plain text")
    moved = dataclasses.replace(pdf, source=str(tmp_path / "a.txt"), metadata={})

    with pytest.raises(InputError, match=r"a.txt` \(text\) has no pages to render"):
        render_pages(moved, [1])
