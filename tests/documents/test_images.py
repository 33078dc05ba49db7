"""Images (PNG, JPEG, TIFF) read by OCR, in pixels: turned upright by their EXIF orientation, a
TIFF's frames as pages, decompression bombs refused before decoding, broken files failing their
own document."""

from __future__ import annotations

import pytest
from tests.documents.conftest import image_bytes, text_image

from handrail.documents import LoadOptions, load_bytes
from handrail.exceptions import InputError


def test_a_png_is_read_by_ocr_with_word_boxes_in_pixels() -> None:
    data = image_bytes(text_image(["INVOICE 4711", "TOTAL 99.50"]))

    document = load_bytes(data, name="scan.png")

    assert document.media_type == "image/png"
    (page,) = document.pages
    assert (page.unit, page.width, page.height, page.text_from) == ("px", 900, 300, "ocr")
    assert page.label == "scan.png"
    assert "INVOICE 4711" in document.text and "99.50" in document.text
    (place,) = document.find("4711")
    ((left, top, right, bottom),) = place.boxes
    # the first line is drawn at (40, 40) in 48 px letters
    assert 40 < left < right < 600 and 30 < top < bottom < 110
    assert document.warnings == ()


def test_a_jpeg_is_turned_upright_by_its_exif_orientation() -> None:
    from PIL import Image

    upright = text_image(["PAID 2026"], size=(600, 200))
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a phone held sideways saves it
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to show"
    data = image_bytes(stored, "JPEG", exif=exif.tobytes(), quality=95)

    document = load_bytes(data, name="photo.jpg")

    assert document.media_type == "image/jpeg"
    assert (document.pages[0].width, document.pages[0].height) == (600, 200)
    assert "PAID 2026" in document.text


def test_a_tiff_s_frames_are_its_pages() -> None:
    frames = [text_image([f"PAGE {n}"], size=(500, 150)) for n in (1, 2, 3)]
    data = image_bytes(frames[0], "TIFF", save_all=True, append_images=frames[1:])

    document = load_bytes(data, name="fax.tif", options=LoadOptions(ocr="never"))

    assert document.media_type == "image/tiff"
    assert [p.number for p in document.pages] == [1, 2, 3]
    assert [p.label for p in document.pages] == [f"fax.tif, page {n}" for n in (1, 2, 3)]
    assert [p.text_from for p in document.pages] == ["none"] * 3
    assert document.warnings == (
        "pages 1, 2, 3 were not read (OCR reads images): OCR is off (ocr='never'); turn it on "
        "with `--ocr auto` or LoadOptions(ocr='auto')",
    )
    with pytest.raises(InputError, match=r"^`fax.tif` has 3 pages, over the 2-page limit"):
        load_bytes(data, name="fax.tif", options=LoadOptions(max_pages=2))


def test_a_decompression_bomb_is_refused_from_its_header() -> None:
    from PIL import Image

    data = image_bytes(Image.new("1", (12_000, 6_000)))  # 72 Mpx in a few kilobytes
    assert len(data) < 100_000

    with pytest.raises(InputError) as error:
        load_bytes(data, name="bomb.png")

    assert str(error.value) == (
        "`bomb.png` is 12,000 × 6,000 pixels, over the 60,000,000-pixel limit "
        "(LoadOptions.max_image_pixels); scale it down, or raise the limit if you trust the file"
    )


def test_a_truncated_image_fails_its_document() -> None:
    data = image_bytes(text_image(["CUT"]))

    with pytest.raises(InputError, match=r"^`cut.png` cannot be decoded \(.*\); the file is"):
        load_bytes(data[: len(data) // 2], name="cut.png")


@pytest.mark.parametrize("data", [b"", b"not an image at all"], ids=["empty", "text"])
def test_what_is_no_image_fails_its_document(data: bytes) -> None:
    with pytest.raises(InputError, match=r"^`x.png` is not a readable image \("):
        load_bytes(data, name="x.png")


def test_another_image_format_under_a_png_name_is_refused_naming_it() -> None:
    data = image_bytes(text_image(["GIF"]), "GIF")

    with pytest.raises(InputError) as error:
        load_bytes(data, name="x.png")

    assert str(error.value) == (
        "`x.png` is a GIF image; handrail reads PNG, JPEG and TIFF (convert it to PNG)"
    )


def test_a_blank_image_gives_a_warning_not_silence() -> None:
    from PIL import Image

    document = load_bytes(image_bytes(Image.new("RGB", (400, 300), "white")), name="blank.png")

    assert document.text == ""
    assert document.pages[0].text_from == "ocr"
    assert document.warnings == (
        "OCR found no text on page 1 (blank, or too faint or small to read; a scan at 300 dpi "
        "reads best)",
    )


def test_damaged_copies_of_images_load_or_fail_their_own_document() -> None:
    import random

    image = text_image(["ABC 123"], size=(200, 80))
    goods = {
        "x.png": image_bytes(image),
        "x.jpg": image_bytes(image, "JPEG"),
        "x.tif": image_bytes(image, "TIFF", save_all=True, append_images=[image]),
    }
    rng = random.Random(14)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(300):
        name = rng.choice(sorted(goods))
        data = bytearray(goods[name])
        for _ in range(rng.randint(1, 10)):  # mostly in the headers, where decoders trip
            end = min(len(data), 400) if rng.random() < 0.7 else len(data)
            data[rng.randrange(end)] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(len(data))]
        try:
            load_bytes(bytes(data), name=name, options=LoadOptions(ocr="never"))
            outcomes["loaded"] += 1
        except InputError as e:
            assert str(e).startswith(f"`{name}")
            outcomes["refused"] += 1

    assert outcomes["loaded"] > 0 and outcomes["refused"] > 0
