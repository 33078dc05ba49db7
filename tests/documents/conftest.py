"""Shared by the documents tests: where the real files live (`../shared/data`, beside the
checkout) and `need_data`, which skips a test on a machine without them but fails it in CI;
and files made on the spot: `pdf_bytes` (reportlab), `text_image` and `scan_pdf` (a page that
is only an image), `image_bytes`."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from PIL.Image import Image

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
"""`../shared/data` next to the checkout: third-party files the repository does not copy."""


def need_data(*parts: str) -> Path:
    """`DATA / parts...`, or skip the test (fail it in CI, where the data must be present)."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        message = f"{path} is absent (the real files beside the checkout, ../shared/data)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must have them")
        pytest.skip(message)
    return path


def pdf_bytes(*pages: list[tuple[float, float, str]], **canvas: object) -> bytes:
    """A PDF made with reportlab: one A4 page per argument, each a list of (x, y, text) drawn in
    Helvetica 12 (x, y in points from the bottom-left corner, as PDF has them)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    pdf = Canvas(buffer, pagesize=canvas.pop("pagesize", A4), **canvas)
    for lines in pages:
        pdf.setFont("Helvetica", 12)
        for x, y, text in lines:
            pdf.drawString(x, y, text)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def text_image(lines: list[str], *, size: tuple[int, int] = (900, 300)) -> Image:
    """A white image with black text in large print, which OCR reads reliably."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=48)
    for i, line in enumerate(lines):
        draw.text((40, 40 + 80 * i), line, fill="black", font=font)
    return image


def image_bytes(image: Image, format: str = "PNG", **save: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **save)
    return buffer.getvalue()


def scan_pdf(image: Image, *, text_page: str | None = None) -> bytes:
    """A PDF whose (last) page is only `image`, as a scanner makes it; with `text_page`, a page
    with that text comes first."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    pdf = Canvas(buffer, pagesize=A4)
    if text_page is not None:
        pdf.setFont("Helvetica", 12)
        pdf.drawString(72, 760, text_page)
        pdf.showPage()
    width = A4[0] - 72
    height = width * image.height / image.width
    pdf.drawImage(ImageReader(image), 36, A4[1] - 36 - height, width, height)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
