"""Real PDFs from py-pdf's sample files (../shared/data/pdf-samples, see its README.txt): each
loads or fails its own document with a clear error; the password-protected one opens with the
passwords its README gives."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from tests.documents.conftest import need_data

from handrail.documents import LoadOptions, load_bytes, render_pages
from handrail.exceptions import InputError

SAMPLES = "pdf-samples"
NO_OCR = LoadOptions(ocr="never")
UNREADABLE = (
    "is not a readable PDF (it is damaged or truncated, or not a PDF); download or export it "
    "again, or print it to a new PDF"
)
ENCRYPTED = "is encrypted; pass its password (HANDRAIL_PDF_PASSWORD or LoadOptions(password=...))"
NOT_READ = "no text layer and {} not read: OCR is off"
LOREM = "Lorem ipsum dolor sit amet, consetetur sadipscing"

# file -> (pages, a line of its text, how many of its pages are scans left unread), or the end
# of the error it fails with
EXPECTED: dict[str, tuple[int, str, int] | str] = {
    "001-trivial_minimal-document.pdf": (1, LOREM, 0),
    "002-trivial-libre-office-writer_002-trivial-libre-office-writer.pdf": (
        1,
        LOREM,
        0,
    ),
    "003-pdflatex-image_pdflatex-image.pdf": (1, "1 Your Chapter", 0),
    "004-pdflatex-4-pages_pdflatex-4-pages.pdf": (4, "Hello, here is some text without a", 0),
    "005-libreoffice-writer-password_libreoffice-writer-password.pdf": ENCRYPTED,
    "006-pdflatex-outline_pdflatex-outline.pdf": (4, "1\tFoo\t2", 0),  # a table of contents
    "007-imagemagick-images_imagemagick-CCITTFaxDecode.pdf": (1, "", 1),
    "007-imagemagick-images_imagemagick-images.pdf": (6, "Background", 6),
    "010-pdflatex-forms_pdflatex-forms.pdf": (1, "Name", 0),
    "011-google-doc-document_google-doc-document.pdf": (
        1,
        "Indonesia\tGermany\tAustria\tFrance\tVatican",  # a table's header row
        0,
    ),
    "012-libreoffice-form_libreoffice-form.pdf": (1, "First Name: Alice", 0),  # a filled field
    "015-arabic_habibi-rotated.pdf": (4, "habibi يبيبَح يبيبَح˴ ϲΒϴΒ", 0),
    "015-arabic_habibi.pdf": (1, "يبيبَح˴ ϲΒϴΒhabibi يبيبَح", 0),
    "017-unreadable-meta-data_unreadablemetadata.pdf": UNREADABLE,
    "018-base64-image_base64image.pdf": (1, "Produced with a Trial Version of PDF Annotator", 0),
    "019-grayscale-image_grayscale-image.pdf": (1, "", 1),
    "021-pdfa_crazyones-pdfa.pdf": (1, "The Crazy Ones", 0),
    "022-pdfkit_pdfkit.pdf": (1, "Foo: bar", 0),
    "023-cmyk-image_cmyk-image.pdf": (1, "", 1),
    "024-annotations_annotated_pdf.pdf": (1, "Not highlighted", 0),
    "025-attachment_with-attachment.pdf": (1, LOREM, 0),
    "026-latex-multicolumn_multicolumn.pdf": (3, "Austria\t8.9\t83,879\tVienna\tGerman", 0),
    "broken-truncated.pdf": UNREADABLE,
}
OFF_THE_PAGE = {"007-imagemagick-images_imagemagick-images.pdf"}
"""Files whose text is drawn outside their (3.8 pt) pages: their words' boxes are too."""


def _data(name: str) -> bytes:
    return (need_data(SAMPLES) / name).read_bytes()


def test_the_table_lists_every_sample_pdf() -> None:
    folder = need_data(SAMPLES)

    assert sorted(path.name for path in folder.glob("*.pdf")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_sample_loads_or_fails_its_own_document_clearly(name: str) -> None:
    data = _data(name)
    expected = EXPECTED[name]

    if isinstance(expected, str):
        with pytest.raises(InputError) as error:
            load_bytes(data, name=name, options=NO_OCR)
        assert str(error.value) == f"`{name}` {expected}"
        return
    document = load_bytes(data, name=name, options=NO_OCR)

    pages, line, unread = expected
    assert len(document.pages) == pages
    assert line in document.text
    assert not any(char in document.text for char in "\x00\x02\ufffe\r")
    for page in document.pages:
        for word in page.words:
            assert document.text[word.start : word.start + len(word.text)] == word.text
            left, top, right, bottom = word.box
            assert left <= right and top <= bottom
            if name not in OFF_THE_PAGE:
                assert left >= -1 and right <= page.width + 1
                assert top >= -1 and bottom <= page.height + 1
    scans = [w for w in document.warnings if "OCR is off" in w]
    if unread:
        (warning,) = scans
        assert NOT_READ.format("was" if unread == 1 else "were") in warning
        assert sum(p.text_from == "none" for p in document.pages) <= unread
    else:
        assert scans == []


def test_justified_text_has_no_column_gaps() -> None:
    for name in ("004-pdflatex-4-pages_pdflatex-4-pages.pdf", "021-pdfa_crazyones-pdfa.pdf"):
        document = load_bytes(_data(name), name=name, options=NO_OCR)
        assert "\t" not in document.text


def test_the_hyphen_that_joins_two_lines_stays_a_hyphen() -> None:
    name = "026-latex-multicolumn_multicolumn.pdf"

    document = load_bytes(_data(name), name=name, options=NO_OCR)

    assert "consectetuer adip-iscing elit." in document.text


@pytest.mark.parametrize("password", ["openpassword", "permissionpassword"])
def test_the_password_protected_sample_opens_with_the_passwords_in_its_readme(
    password: str,
) -> None:
    folder = need_data(SAMPLES)
    readme = (folder / "005-libreoffice-writer-password_README.md").read_text()
    assert f"`{password}`" in readme
    name = "005-libreoffice-writer-password_libreoffice-writer-password.pdf"

    document = load_bytes(_data(name), name=name, options=LoadOptions(password=password))

    assert document.text.startswith("Lorem ipsum dolor sit amet")
    with pytest.raises(InputError, match="the password given does not open it"):
        load_bytes(_data(name), name=name, options=LoadOptions(password="not-it"))


def test_the_attachment_sample_names_its_embedded_file() -> None:
    name = "025-attachment_with-attachment.pdf"

    document = load_bytes(_data(name), name=name, options=NO_OCR)

    assert document.warnings == (
        "the PDF holds 1 embedded file (image.png), not read: save it from the PDF and add it "
        "as a document of its own",
    )


def test_an_image_only_sample_goes_through_ocr() -> None:
    name = "019-grayscale-image_grayscale-image.pdf"

    document = load_bytes(_data(name), name=name)

    (page,) = document.pages
    assert page.text_from == "ocr"
    # a photograph without writing: OCR finds nothing, and the document says so
    assert document.text or document.warnings == (
        "OCR found no text on page 1 (blank, or too faint or small to read; a scan at 300 dpi "
        "reads best)",
    )


def test_every_readable_sample_renders_its_pages(tmp_path: Path) -> None:
    readable = [name for name, expected in EXPECTED.items() if not isinstance(expected, str)]
    for name in readable:
        path = tmp_path / name
        path.write_bytes(_data(name))
        document = dataclasses.replace(
            load_bytes(path.read_bytes(), name=name, options=NO_OCR), source=str(path)
        )

        images = render_pages(document, [p.number for p in document.pages], max_side=300)

        assert [i.page for i in images] == [p.number for p in document.pages]
        assert all(max(i.width, i.height) == 300 for i in images), name
