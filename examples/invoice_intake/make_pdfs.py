"""Writes the example's PDF invoices and its scan into `documents/`.

    python examples/invoice_intake/make_pdfs.py

The invoices are drawn with reportlab the way an accounts package prints them: a letterhead, the
invoice's details, a table of lines, the totals and the payment terms. Labels and values sit on
lines of their own (`Invoice number:  SPC-25-0412`), so the text a PDF loader pulls out of the page
still has the `Key: value` lines the offline `FakeModel` reads; a real model reads the table too.

The scan is a typed invoice put through an office scanner: the page is drawn, rendered to an image
with pypdfium2, tilted, blurred, speckled and saved as a grey JPEG inside a PDF with no text layer,
so handrail has to OCR it. Random noise is seeded and reportlab's output is invariant, so running
this again writes the same files. Needs reportlab, pypdfium2 and Pillow (`pip install -e
".[documents,test]"`).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageChops, ImageFilter
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

DOCUMENTS = Path(__file__).resolve().parent / "documents"
WIDTH, HEIGHT = A4
LEFT, RIGHT = 50.0, WIDTH - 50.0
VAT_RATE = Decimal("0.20")
INK = (0.13, 0.16, 0.22)
CUSTOMER = (
    "Alder & Quay Architects LLP",
    "3rd Floor, 21 Queen Square",
    "Bristol BS1 4ND",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class Line:
    """One line of an invoice's table."""

    quantity: int
    description: str
    unit_price: Decimal

    @property
    def amount(self) -> Decimal:
        return self.quantity * self.unit_price


@dataclass(frozen=True, kw_only=True, slots=True)
class Invoice:
    """What one invoice prints."""

    file: str
    """The file name in `documents/`."""
    supplier: str
    letterhead: tuple[str, ...]
    """Address, phone and e-mail lines under the supplier's name."""
    vat_number: str
    title: str
    details: tuple[tuple[str, str], ...]
    """(label, value) lines under the customer's address: number, dates, order..."""
    lines: tuple[Line, ...]
    footer: tuple[str, ...]
    accent: tuple[float, float, float]
    """The letterhead's colour (RGB, 0..1)."""
    labels: tuple[str, str, str] = ("Subtotal", "VAT", "Total due")
    """How this supplier labels net, tax and total."""
    notes: tuple[str, ...] = field(default=())
    """Lines printed between the details and the table."""

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal(0))

    @property
    def tax(self) -> Decimal:
        return (self.subtotal * VAT_RATE).quantize(Decimal("0.01"))

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax


def money(value: Decimal, sign: str = "£") -> str:
    return f"{sign}{value:,.2f}"


# --- the printed invoices -----------------------------------------------------------------------


def draw_invoice(invoice: Invoice, path: Path) -> None:
    """An invoice as an accounts package prints it; the table runs onto more pages if needed."""
    canvas = Canvas(str(path), pagesize=A4, invariant=True, pageCompression=True)
    canvas.setTitle(f"{invoice.title.title()} {invoice.details[0][1]}")
    canvas.setAuthor(invoice.supplier)
    y = _customer_and_details(canvas, invoice, _letterhead(canvas, invoice))
    pages = _paginate(invoice.lines, y)
    for number, rows in enumerate(pages, start=1):
        if number > 1:
            _page_footer(canvas, number - 1, len(pages))
            canvas.showPage()
            y = _continued(canvas, invoice)
        if rows:
            y = _table_header(canvas, y, invoice.accent)
            for line in rows:
                y = _row(canvas, line, y)
    _footer(canvas, invoice, _totals(canvas, invoice, y))
    if len(pages) > 1:
        _page_footer(canvas, len(pages), len(pages))
    canvas.save()


ROW, TABLE_END, TOTALS = 17.0, 130.0, 250.0
"""A table row's height; the lowest a row may sit; the room the totals and terms need."""
CONTINUED_TOP = HEIGHT - 96


def _paginate(lines: tuple[Line, ...], y: float) -> list[tuple[Line, ...]]:
    """The table's rows on each page, from `y` on the first; the totals follow the last rows,
    or a page of their own when they do not fit under them."""
    pages: list[tuple[Line, ...]] = []
    rows: list[Line] = []
    y -= 24  # the table header
    for line in lines:
        if y < TABLE_END:
            pages.append(tuple(rows))
            rows, y = [], CONTINUED_TOP - 24
        rows.append(line)
        y -= ROW
    pages.append(tuple(rows))
    if y < TOTALS:
        pages.append(())
    return pages


def _letterhead(canvas: Canvas, invoice: Invoice) -> float:
    canvas.setFillColorRGB(*invoice.accent)
    canvas.rect(0, HEIGHT - 12, WIDTH, 12, stroke=0, fill=1)
    canvas.setFont("Helvetica-Bold", 18)
    canvas.drawString(LEFT, HEIGHT - 62, invoice.supplier.upper())
    canvas.setFont("Helvetica-Bold", 22)
    canvas.drawRightString(RIGHT, HEIGHT - 62, invoice.title)
    canvas.setFillColorRGB(*INK)
    canvas.setFont("Helvetica", 9)
    y = HEIGHT - 80
    for text in (*invoice.letterhead, f"VAT registration: {invoice.vat_number}"):
        canvas.drawString(LEFT, y, text)
        y -= 12
    canvas.setStrokeColorRGB(*invoice.accent)
    canvas.setLineWidth(1.2)
    canvas.line(LEFT, y - 2, RIGHT, y - 2)
    return y - 26


def _customer_and_details(canvas: Canvas, invoice: Invoice, y: float) -> float:
    canvas.setFont("Helvetica-Bold", 9)
    canvas.drawString(LEFT, y, "Invoice to")
    canvas.setFont("Helvetica", 10)
    for text in CUSTOMER:
        y -= 13
        canvas.drawString(LEFT, y, text)
    y -= 26
    for label, value in (("Supplier", invoice.supplier), *invoice.details):
        canvas.setFont("Helvetica-Bold", 10)
        canvas.drawString(LEFT, y, f"{label}:")
        canvas.setFont("Helvetica", 10)
        canvas.drawString(LEFT + 110, y, value)
        y -= 14
    canvas.setFont("Helvetica-Oblique", 9)
    for text in invoice.notes:
        y -= 4
        canvas.drawString(LEFT, y, text)
        y -= 10
    return y - 14


_COLUMNS = (LEFT + 30, LEFT + 44, RIGHT - 80, RIGHT - 6)
"""Right edge of Qty, left edge of Description, right edges of Unit price and Amount."""


def _table_header(canvas: Canvas, y: float, accent: tuple[float, float, float]) -> float:
    canvas.setFillColorRGB(*accent)
    canvas.rect(LEFT, y - 5, RIGHT - LEFT, 17, stroke=0, fill=1)
    canvas.setFillColorRGB(1, 1, 1)
    canvas.setFont("Helvetica-Bold", 9)
    qty, description, unit, amount = _COLUMNS
    canvas.drawRightString(qty, y, "Qty")
    canvas.drawString(description, y, "Description")
    canvas.drawRightString(unit, y, "Unit price")
    canvas.drawRightString(amount, y, "Amount")
    canvas.setFillColorRGB(*INK)
    return y - 24


def _row(canvas: Canvas, line: Line, y: float) -> float:
    qty, description, unit, amount = _COLUMNS
    canvas.setFont("Helvetica", 9.5)
    canvas.drawRightString(qty, y, str(line.quantity))
    canvas.drawString(description, y, line.description)
    canvas.drawRightString(unit, y, f"{line.unit_price:,.2f}")
    canvas.drawRightString(amount, y, f"{line.amount:,.2f}")
    canvas.setStrokeColorRGB(0.85, 0.86, 0.88)
    canvas.setLineWidth(0.5)
    canvas.line(LEFT, y - 5, RIGHT, y - 5)
    return y - ROW


def _totals(canvas: Canvas, invoice: Invoice, y: float) -> float:
    y -= 10
    net, tax, total = invoice.labels
    rows = ((net, invoice.subtotal), (tax, invoice.tax), (total, invoice.total))
    for i, (label, value) in enumerate(rows):
        bold = i == len(rows) - 1
        if bold:
            canvas.setStrokeColorRGB(*INK)
            canvas.setLineWidth(0.8)
            canvas.line(RIGHT - 190, y + 13, RIGHT, y + 13)
        canvas.setFont("Helvetica-Bold" if bold else "Helvetica", 11 if bold else 10)
        canvas.drawString(RIGHT - 190, y, f"{label}:")
        canvas.drawRightString(RIGHT - 6, y, money(value))
        y -= 17
    return y - 20


def _footer(canvas: Canvas, invoice: Invoice, y: float) -> None:
    canvas.setFont("Helvetica", 9)
    for text in invoice.footer:
        canvas.drawString(LEFT, y, text)
        y -= 12


def _continued(canvas: Canvas, invoice: Invoice) -> float:
    canvas.setFillColorRGB(*invoice.accent)
    canvas.rect(0, HEIGHT - 12, WIDTH, 12, stroke=0, fill=1)
    canvas.setFillColorRGB(*INK)
    canvas.setFont("Helvetica-Bold", 11)
    number = invoice.details[0][1]
    canvas.drawString(LEFT, HEIGHT - 60, f"{invoice.supplier}, invoice {number} (continued)")
    return CONTINUED_TOP


def _page_footer(canvas: Canvas, page: int, pages: int) -> None:
    canvas.setFont("Helvetica", 8)
    canvas.drawRightString(RIGHT, 30, f"Page {page} of {pages}")


# --- the scan -----------------------------------------------------------------------------------


def typed_invoice(invoice: Invoice) -> bytes:
    """A plain typed invoice (a small firm's word-processor template), as PDF bytes."""
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, invariant=True)
    canvas.setFont("Helvetica-Bold", 22)
    canvas.drawString(LEFT + 10, HEIGHT - 80, invoice.supplier.upper())
    canvas.setFont("Helvetica", 12)
    y = HEIGHT - 104
    for text in (*invoice.letterhead, f"VAT no: {invoice.vat_number}"):
        canvas.drawString(LEFT + 10, y, text)
        y -= 16
    canvas.setFont("Helvetica-Bold", 20)
    canvas.drawString(LEFT + 10, y - 22, invoice.title)
    y -= 62
    canvas.setFont("Helvetica", 13)
    for label, value in (
        ("Invoice to", ", ".join(CUSTOMER[::2])),
        ("Supplier", invoice.supplier),
        *invoice.details,
    ):
        canvas.drawString(LEFT + 10, y, f"{label}: {value}")
        y -= 21
    y -= 18
    for line in invoice.lines:
        canvas.drawString(LEFT + 10, y, line.description)
        canvas.drawRightString(RIGHT - 10, y, money(line.amount))
        y -= 21
    y -= 18
    net, tax, total = invoice.labels
    for label, value in ((net, invoice.subtotal), (tax, invoice.tax), (total, invoice.total)):
        canvas.setFont("Helvetica-Bold" if label == total else "Helvetica", 13)
        canvas.drawString(LEFT + 10, y, f"{label}: {money(value)}")
        y -= 21
    canvas.setFont("Helvetica", 12)
    y -= 22
    for text in invoice.footer:
        canvas.drawString(LEFT + 10, y, text)
        y -= 16
    canvas.save()
    return out.getvalue()


def scanned(pdf: bytes, *, dpi: int = 110, seed: int = 15) -> Image.Image:
    """The PDF's first page as an office scanner sees it: grey paper, tilted by half a degree,
    a little soft, speckled, darker towards one edge."""
    rng = random.Random(seed)
    page = pdfium.PdfDocument(pdf)[0]
    image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    image = image.rotate(-0.6, resample=Image.Resampling.BICUBIC, expand=False, fillcolor=255)
    image = image.filter(ImageFilter.GaussianBlur(0.6))
    paper = Image.linear_gradient("L").rotate(90).resize(image.size)  # light falls off
    image = ImageChops.multiply(image, paper.point(lambda v: 222 + v // 8))
    noise = Image.frombytes("L", image.size, rng.randbytes(image.width * image.height))
    image = ImageChops.subtract(image, noise.point(lambda v: max(0, v - 200)))  # grain
    for _ in range(260):  # dust
        x, y = rng.randrange(image.width), rng.randrange(image.height)
        image.putpixel((x, y), rng.randrange(120, 190))
    return image


def photographed(pdf: bytes, *, dpi: int = 100, seed: int = 24) -> Image.Image:
    """The PDF's first page photographed on a desk with a phone: the top half of the sheet,
    turned by two degrees on a dark desk, warm light falling off to one side, a little soft."""
    rng = random.Random(seed)
    page = pdfium.PdfDocument(pdf)[0]
    sheet = page.render(scale=dpi / 72).to_pil().convert("RGB")
    sheet = sheet.crop((0, 0, sheet.width, sheet.height * 3 // 5))
    sheet = ImageChops.multiply(sheet, Image.new("RGB", sheet.size, (250, 244, 230)))
    desk = Image.new("RGB", (sheet.width + 120, sheet.height + 90), (74, 62, 52))
    desk.paste(sheet, (60, 50))
    photo = desk.rotate(2.0, resample=Image.Resampling.BICUBIC, fillcolor=(74, 62, 52))
    light = Image.linear_gradient("L").rotate(-90).resize(photo.size).point(lambda v: 190 + v // 4)
    photo = ImageChops.multiply(photo, Image.merge("RGB", (light, light, light)))
    noise = Image.frombytes("L", photo.size, rng.randbytes(photo.width * photo.height))
    grain = noise.point(lambda v: max(0, v - 215)).convert("RGB")
    return ImageChops.subtract(photo, grain).filter(ImageFilter.GaussianBlur(0.7))


def image_pdf(image: Image.Image, path: Path, *, quality: int = 50) -> None:
    """A PDF holding only `image` (JPEG) on an A4 page: no text layer."""
    jpeg = io.BytesIO()
    image.save(jpeg, "JPEG", quality=quality, optimize=True)
    jpeg.seek(0)
    canvas = Canvas(str(path), pagesize=A4, invariant=True)
    canvas.setCreator("Office scanner")
    canvas.drawImage(ImageReader(jpeg), 0, 0, WIDTH, HEIGHT)
    canvas.save()


# --- the documents ------------------------------------------------------------------------------

SEVERN = Invoice(
    file="13_severn_print_boards.pdf",
    supplier="Severn Print & Copy Ltd",
    letterhead=(
        "14 Redcliff Street, Bristol BS1 6NP",
        "0117 925 4410 · accounts@severnprint.example",
    ),
    vat_number="GB 613 5580 37",
    title="INVOICE",
    details=(
        ("Invoice number", "SPC-25-0412"),
        ("Invoice date", "18 March 2025"),
        ("Payment due", "1 April 2025"),
        ("Currency", "GBP"),
    ),
    notes=("Collected from our Redcliff Street counter on 17 March by M. Osei.",),
    lines=(
        Line(quantity=2, description="A0 poster, satin 200 gsm", unit_price=Decimal("24.00")),
        Line(quantity=12, description="A3 drawing, plotted in colour", unit_price=Decimal("2.80")),
        Line(
            quantity=4,
            description="A1 mounted print on 5 mm foamboard, matt laminate",
            unit_price=Decimal("38.00"),
        ),
        Line(
            quantity=3,
            description="A4 wire-bound report, 60 pages colour",
            unit_price=Decimal("14.50"),
        ),
        Line(quantity=1, description="Delivery to 21 Queen Square", unit_price=Decimal("12.00")),
    ),
    labels=("Net total", "VAT", "Amount due"),
    footer=(
        "Payment within 14 days by bank transfer to Severn Print & Copy Ltd, NatWest,",
        "sort code 60-02-13, account 44019387. Please quote SPC-25-0412.",
        "Registered in England and Wales, company no. 07345128.",
    ),
    accent=(0.05, 0.36, 0.45),
)

_MATERIALS = (
    (6, "LED panel light 600x600, 40 W, 4000 K", "38.50"),
    (6, "Emergency conversion kit for LED panel, 3 h", "27.90"),
    (2, "Presence/absence detector, ceiling mounted", "46.20"),
    (1, "DALI dimming controller, 4 channel", "118.00"),
    (2, "Scene-set wall plate, 4 button, brushed steel", "39.75"),
    (8, "Double switched socket, brushed steel", "9.95"),
    (4, "USB-A/C double socket, 30 W, brushed steel", "24.60"),
    (2, "Floor box, 3 compartment, with 4 sockets", "64.00"),
    (2, "HDMI and network faceplate module", "18.40"),
    (1, "RCBO 32 A type A, 30 mA", "31.50"),
    (2, "RCBO 16 A type A, 30 mA", "29.80"),
    (1, "6242Y twin and earth 2.5 mm, 100 m drum", "96.00"),
    (1, "6242Y twin and earth 1.5 mm, 100 m drum", "68.00"),
    (1, "LSZH cable, 3 core 1.0 mm, 50 m", "42.50"),
    (12, "Back box 35 mm, metal, single/double mixed", "1.85"),
    (4, "Dado trunking 3 compartment, 3 m length", "26.40"),
    (1, "Trunking bends, end caps and couplers, set", "34.00"),
    (1, "Fixings, cable clips, glands and sundries", "22.80"),
    (3, "Fire hood for recessed downlight", "8.90"),
    (3, "Recessed downlight, 8 W, fire rated, dimmable", "21.40"),
    (1, "Ceiling tiles 600x600, replacement, pack of 8", "44.00"),
)
_LABOUR = (
    (3, "Electrician, day rate (2-person team)", "420.00"),
    (1, "Testing, inspection and EIC certificate", "145.00"),
    (1, "Waste removal and old fittings recycling", "35.00"),
)

BRIGHTWIRE = Invoice(
    file="14_brightwire_meeting_room_rewire.pdf",
    supplier="Brightwire Electrical Ltd",
    letterhead=(
        "9 Feeder Road, Bristol BS2 0SB",
        "0117 230 5566 · contracts@brightwire.example",
    ),
    vat_number="GB 731 0458 22",
    title="TAX INVOICE",
    details=(
        ("Invoice no", "BWE-2291"),
        ("Invoice date", "21 March 2025"),
        ("Due date", "20 April 2025"),
        ("Currency", "GBP"),
    ),
    notes=(
        "Job: new lighting, power and data for the second-floor meeting room, 21 Queen Square,",
        "carried out 17 to 19 March 2025 as quoted (our quote Q-0418).",
    ),
    lines=tuple(
        Line(quantity=q, description=d, unit_price=Decimal(p)) for q, d, p in _MATERIALS + _LABOUR
    ),
    footer=(
        "Payment within 30 days to Brightwire Electrical Ltd, HSBC, sort code 40-12-76,",
        "account 91827364, reference BWE-2291. Materials remain our property until paid.",
        "NICEIC approved contractor. Registered in England and Wales, company no. 08812345.",
    ),
    accent=(0.80, 0.42, 0.05),
)

DUNMORE = Invoice(
    file="15_dunmore_march_scan.pdf",
    supplier="Dunmore Cleaning Co.",
    letterhead=("42 Dunmore Street, Bristol BS2 9LP", "Tel 07700 900461"),
    vat_number="GB 190 7742 81",
    title="INVOICE",
    details=(
        ("Invoice number", "DC/25/0331"),
        ("Invoice date", "31 March 2025"),
        ("Due date", "14 April 2025"),
    ),
    lines=(
        Line(
            quantity=1,
            description="Office cleaning, March 2025 (21 visits)",
            unit_price=Decimal("325.50"),
        ),
        Line(
            quantity=1,
            description="Carpet shampoo, meeting room (29 March)",
            unit_price=Decimal("60.00"),
        ),
    ),
    labels=("Net total", "VAT", "Total"),
    footer=(
        "Many thanks. Please pay by BACS within 14 days:",
        "Dunmore Cleaning Co., sort code 20-32-06, account 70455129.",
    ),
    accent=INK,
)


HARBOUR = Invoice(
    file="16_harbour_finch_lunch_photo.jpg",
    supplier="Harbour & Finch Catering Ltd",
    letterhead=("The Old Pilot House, Wapping Wharf, Bristol BS1 6WP", "0117 329 1180"),
    vat_number="GB 402 9917 65",
    title="INVOICE",
    details=(
        ("Invoice #", "HF-2025-0246"),
        ("Date of issue", "26 March 2025"),
        ("Due date", "9 April 2025"),
    ),
    lines=(
        Line(
            quantity=1,
            description="Working lunch for 12, sandwich platters",
            unit_price=Decimal("96.00"),
        ),
        Line(quantity=1, description="Seasonal salad bowls (2)", unit_price=Decimal("28.00")),
        Line(quantity=1, description="Coffee and tea service (12)", unit_price=Decimal("51.00")),
    ),
    labels=("Subtotal", "VAT", "Total"),
    footer=(),
    accent=INK,
)


def main() -> None:
    for invoice in (SEVERN, BRIGHTWIRE):
        draw_invoice(invoice, DOCUMENTS / invoice.file)
    image_pdf(scanned(typed_invoice(DUNMORE)), DOCUMENTS / DUNMORE.file)
    photographed(typed_invoice(HARBOUR)).save(
        DOCUMENTS / HARBOUR.file, "JPEG", quality=55, optimize=True
    )
    for invoice in (SEVERN, BRIGHTWIRE, DUNMORE, HARBOUR):
        path = DOCUMENTS / invoice.file
        print(f"{path.name:40} {path.stat().st_size / 1000:6.1f} KB  total {money(invoice.total)}")


if __name__ == "__main__":
    main()
