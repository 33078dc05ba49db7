"""documents/ocr.py: both engines read a generated image into lines in reading order with word
boxes; the layout rule on made-up runs; a missing engine is a clear InputError."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from tests.documents.conftest import text_image

from handrail.documents import LoadOptions, ocr
from handrail.documents.ocr import available_engines, read_image
from handrail.exceptions import InputError

pytest.importorskip("rapidocr_onnxruntime", reason="needs handrail's `ocr` extra")


@pytest.mark.parametrize("engine", ["rapidocr", "tesseract"])
def test_each_engine_reads_lines_in_order_with_word_boxes(engine: str) -> None:
    if engine not in available_engines():
        pytest.skip(f"{engine} is not installed here")
    image = text_image(["Invoice 4417", "Total 96.40"])
    result = read_image(image, LoadOptions(ocr_engine=engine))  # type: ignore[arg-type]
    assert result.text.split("\n") == ["Invoice 4417", "Total 96.40"]
    assert (result.width, result.height) == (900, 300)
    assert [w.text for w in result.words] == ["Invoice", "4417", "Total", "96.40"]
    for word in result.words:
        assert result.text[word.start : word.start + len(word.text)] == word.text
        left, top, right, bottom = word.box
        assert 0 <= left < right <= 900 and 0 <= top < bottom <= 300
        assert word.confidence is not None and 0.5 < word.confidence <= 1
    invoice, number, total, _ = result.words
    assert invoice.box[2] <= number.box[0]  # left to right
    assert number.box[3] <= total.box[1] + 10  # the second line below the first


def test_a_blank_image_reads_as_no_text() -> None:
    from PIL import Image

    result = read_image(Image.new("L", (200, 100), "white"), LoadOptions())
    assert (result.text, result.words, result.width, result.height) == ("", (), 200, 100)


def _run(text: str, box: tuple[float, float, float, float]) -> Any:
    return ocr._split(text, box, 0.9)


def test_runs_side_by_side_form_one_line_left_to_right() -> None:
    runs = [
        _run("9.00", (300, 102, 340, 118)),  # a price a little lower than its item
        _run("TOTAL:", (10, 100, 70, 120)),
        _run("THANK YOU", (10, 140, 110, 160)),
        _run("RECEIPT", (10, 10, 90, 30)),
    ]
    text, words = ocr._layout(runs)
    assert text == "RECEIPT\nTOTAL: 9.00\nTHANK YOU"
    assert [text[w.start : w.start + len(w.text)] for w in words] == text.split()


def test_a_run_boxed_as_a_whole_gives_each_word_its_share() -> None:
    run = ocr._split("AB CDEF", (0, 0, 70, 10), 0.8)
    assert run.words == (("AB", (0, 0, 20, 10), 0.8), ("CDEF", (30, 0, 70, 10), 0.8))


def test_full_width_forms_read_as_ascii() -> None:
    assert ocr._clean("（C0.REG：933109-X）  ") == "(C0.REG:933109-X)"


def test_an_unknown_engine_is_named() -> None:
    with pytest.raises(InputError, match=r"unknown OCR engine 'easyocr'; .* rapidocr, tesseract"):
        read_image(text_image(["x"]), LoadOptions(ocr_engine="easyocr"), name="a.png")  # type: ignore[arg-type]


def test_missing_rapidocr_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.import_module

    def without(name: str, *args: Any) -> Any:
        if name == "rapidocr_onnxruntime":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(ocr, "_rapidocr", None)
    monkeypatch.setattr(importlib, "import_module", without)
    with pytest.raises(InputError) as error:
        read_image(text_image(["x"]), LoadOptions(), name="scan.png")
    assert str(error.value).startswith("`scan.png`: OCR with rapidocr needs handrail's `ocr` extra")
    assert "pip install 'handrail[ocr]'" in str(error.value)


def test_missing_tesseract_program_names_the_debian_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytesseract = pytest.importorskip("pytesseract")
    monkeypatch.setattr(pytesseract.pytesseract, "tesseract_cmd", "/nonexistent/tesseract")
    assert "tesseract" not in available_engines()
    with pytest.raises(InputError) as error:
        read_image(text_image(["x"]), LoadOptions(ocr_engine="tesseract"), name="fax.tif")
    message = str(error.value)
    assert message.startswith("`fax.tif`: OCR with tesseract needs the `tesseract` program")
    assert "`tesseract-ocr`" in message


CHARACTERS = ["blank", "A", "B", "7", " "]  # RapidOCR's list: the blank first, the space last


def _decode(indices: list[int], spaces: list[float], **kwargs: Any) -> Any:
    return ocr._ctc_decode(indices, [0.9] * len(indices), spaces, CHARACTERS, **kwargs)


def test_ctc_decoding_merges_repeats_and_drops_blanks() -> None:
    decoded = _decode([1, 1, 0, 1, 2, 2, 0, 0], [0.0] * 8)
    assert decoded.text == "AAB"
    assert decoded.positions == (0.5 / 8, 3.5 / 8, 4.5 / 8)
    assert decoded.score == pytest.approx(0.9)


def test_a_likely_space_between_two_characters_becomes_a_space() -> None:
    indices = [1, 0, 0, 0, 2, 0, 3]
    assert _decode(indices, [0.0, 0.01, 0.02, 0.0, 0.0, 0.0, 0.0]).text == "AB7"
    spaced = _decode(indices, [0.0, 0.01, 0.2, 0.0, 0.0, 0.0, 0.0], width=14)
    assert spaced.text == "A B7"
    assert spaced.positions == (0.5 / 14, 2.5 / 14, 4.5 / 14, 6.5 / 14)
    assert spaced.confidences[1] == pytest.approx(0.2)  # the space's own probability
    assert spaced.score == pytest.approx(0.9)  # the characters read, not the space put in


def test_the_recognisers_own_space_is_kept_and_not_doubled() -> None:
    decoded = _decode([1, 0, 4, 0, 2], [0.0, 0.5, 0.9, 0.5, 0.0])
    assert decoded.text == "A B"


def test_words_are_boxed_where_their_characters_are() -> None:
    decoded = ocr._Decoded(
        text="AB  7",
        positions=(0.1, 0.2, 0.45, 0.5, 0.9),
        confidences=(0.9, 0.7, 0.1, 0.1, 1.0),
        score=0.9,
    )
    run = ocr._place(decoded, (100, 10, 200, 30))
    (ab, ab_box, ab_confidence), (seven, seven_box, seven_confidence) = run.words
    assert (ab, seven) == ("AB", "7")
    assert ab_box == pytest.approx((100, 10, 125, 30))  # the run's left edge; 0.2 + half a step
    assert seven_box == pytest.approx((185, 10, 200, 30))  # 0.9 - half a step; the right edge
    assert (ab_confidence, seven_confidence) == (pytest.approx(0.8), 1.0)


def test_full_width_characters_read_as_ascii_where_placed() -> None:
    decoded = ocr._Decoded(
        text="（9）", positions=(0.2, 0.5, 0.8), confidences=(1.0, 1.0, 1.0), score=1.0
    )
    assert [w[0] for w in ocr._place(decoded, (0, 0, 30, 10)).words] == ["(9)"]


def test_rapidocr_splits_a_line_at_a_wide_gap_into_two_words() -> None:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (900, 120), "white")
    font = ImageFont.load_default(size=40)
    draw = ImageDraw.Draw(image)
    draw.text((40, 40), "JALAN", fill="black", font=font)
    right = draw.textbbox((40, 40), "JALAN", font=font)[2]
    draw.text((right + 28, 40), "SAGU18", fill="black", font=font)  # about a letter's gap
    result = read_image(image, LoadOptions())
    assert result.text == "JALAN SAGU18"
    jalan, sagu = result.words
    assert (jalan.text, sagu.text) == ("JALAN", "SAGU18")
    assert jalan.box[2] <= sagu.box[0]
    assert jalan.box[0] < right + 10 < sagu.box[0] + 20
