#!/usr/bin/env python
"""Documents as they arrive: text-layer PDF pages per second, OCR seconds and character error
rate on real receipt scans, and what the OCR costs the receipt Extract.

    python bench/documents.py                 # full run: SROIE scans 000-039, default engine
    python bench/documents.py --quick         # CI smoke run: 5 scans, no Extract (< 1 minute)
    python bench/documents.py --json          # exactly one JSON object on stdout
    python bench/documents.py --engines rapidocr,tesseract --receipts 120 --no-extract
                                              # the comparison in docs/ocr.md

PDF (figure `pdf_pages_per_s`): a 100-page PDF generated with reportlab (an invoice-like page:
a header, 40 lines of a table, totals), read by `handrail.documents.load_bytes` (text, pages,
words with boxes); the best of 3 reads. Anchor `pdfium_text_pages_per_s`: pypdfium2 reading each
page's raw text (`PdfTextPage.get_text_range()`), nothing more.

OCR (figures `ocr_s_per_page`, `ocr_cer`): the declared subset is SROIE's scans by id order,
000..N-1 (../shared/data/sroie/img; full: 40, --quick: 5, --receipts N), read one at a time
through `handrail.documents.ocr.read_image` with the default engine (or each of `--engines`).
The engine is created and warmed on one scan before timing (its start time is reported apart).
Anchor `ocr_engine_s_per_page`: the engine's own call on the same image (RapidOCR on the pixel
array, Tesseract's `image_to_data`), without handrail's reading order and words.
Character error rate: Levenshtein distance (insertions, deletions, substitutions) between the
OCR text and SROIE's gold text, over all receipts' characters (sum of distances / sum of gold
lengths). Both texts are normalised first: NFKC, upper-case (the gold is upper-case), lines
joined by one space, every run of white space one space. The gold lines are put in the same
reading order as the OCR's (the same grouping of boxes into lines), so the rate counts
characters, not line order. `ocr_cer_no_spaces` (a detail) drops the spaces too: what is left is
misread characters, not words run together.

Extract (figures `extract_field_accuracy_ocr`, `extract_field_accuracy_gold`): bench/models.py's
receipt Extract (default prompt and gate, SROIE's four fields, its scoring) with the embedded
model `local/gemma3-270m`, on the OCR text of the same scans and on their gold text. Skipped when
the model is not installed (`pip install 'handrail[local]'`) and in --quick.

Targets (the issue, on 2 cores): >= 50 text pages/s; OCR <= 2 s per receipt; CER <= 5 %.
A benchmark, not a test: it exits 0 whether or not they are met. Without ../shared/data the
OCR and Extract parts say "skipped: no data" and only the PDF figure is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
import unicodedata
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SROIE = DATA / "sroie"

try:
    import handrail  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(ROOT / "src"))

from _host import handrail_source, machine_facts, package_versions  # noqa: E402 - bench/_host.py

TARGETS = {"pdf_pages_per_s": 50.0, "ocr_s_per_page": 2.0, "ocr_cer": 0.05}
PACKAGES = (
    "handrail",
    "pypdfium2",
    "pillow",
    "rapidocr-onnxruntime",
    "onnxruntime",
    "pytesseract",
    "reportlab",
    "rapidfuzz",
    "llama-cpp-python",
)
MODEL = "local/gemma3-270m"


@dataclass(frozen=True)
class Config:
    mode: str
    pdf_pages: int = 100
    pdf_repeats: int = 3
    receipts: int = 40
    extract: bool = True


FULL = Config(mode="full")
QUICK = Config(mode="quick", pdf_pages=30, pdf_repeats=2, receipts=5, extract=False)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- PDF --------------------------------------------------------------------------------------


def make_pdf(pages: int) -> bytes:
    """An invoice-like PDF of `pages` pages: a header, a table of 40 lines, totals."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for page in range(1, pages + 1):
        pdf.setFont("Helvetica-Bold", 14)
        pdf.drawString(50, 800, f"Northwind Supplies Ltd - Invoice INV-{page:05d}")
        pdf.setFont("Helvetica", 9)
        pdf.drawString(50, 784, f"PO number: PO-{4400 + page}   Date: 2026-03-{page % 28 + 1:02d}")
        for line in range(40):
            y = 760 - line * 16
            pdf.drawString(50, y, f"{line + 1:3d}  Item SKU-{page * 100 + line:06d} widget")
            pdf.drawRightString(400, y, f"{line % 7 + 1}")
            pdf.drawRightString(480, y, f"{(line * 3.17) % 90 + 1:.2f}")
            pdf.drawRightString(550, y, f"{((line * 3.17) % 90 + 1) * (line % 7 + 1):,.2f}")
        pdf.drawRightString(550, 90, f"Total due: EUR {page * 1234.5:,.2f}")
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def measure_pdf(cfg: Config) -> tuple[dict[str, float], dict[str, Any]]:
    """`pdf_pages_per_s` through handrail and the pdfium anchor, best of `cfg.pdf_repeats`."""
    import pypdfium2

    from handrail.documents import load_bytes

    data = make_pdf(cfg.pdf_pages)

    def handrail_read() -> int:
        return len(load_bytes(data, name="bench.pdf").pages)

    def pdfium_read() -> int:
        pdf = pypdfium2.PdfDocument(data)
        for page in pdf:
            page.get_textpage().get_text_range()
        return len(pdf)

    def best(read: Any) -> float:
        times = []
        for _ in range(cfg.pdf_repeats):
            started = time.perf_counter()
            assert read() == cfg.pdf_pages
            times.append(time.perf_counter() - started)
        return cfg.pdf_pages / min(times)

    anchors = {"pdfium_text_pages_per_s": best(pdfium_read)}
    try:
        figures = {"pdf_pages_per_s": best(handrail_read)}
    except Exception as e:  # e.g. the PDF loader not there yet: the anchor still stands
        _note(f"[documents] pdf_pages_per_s skipped: {type(e).__name__}: {e}")
        figures = {}
    return figures, {**anchors, "pdf_bytes": len(data)}


# --- OCR --------------------------------------------------------------------------------------


def receipts(count: int) -> list[dict[str, Any]]:
    """SROIE's receipts 000..count-1 that have a scan (the declared subset)."""
    rows = []
    with (SROIE / "sroie.jsonl").open() as f:
        for line in f:
            row = json.loads(line)
            if (SROIE / "img" / f"{row['id']}.jpg").exists():
                rows.append(row)
            if len(rows) == count:
                break
    return rows


def gold_text(receipt: dict[str, Any]) -> str:
    """The gold lines in the OCR's reading order (its grouping of boxes into lines)."""
    # Private helpers on purpose: the same rule that orders the OCR's lines orders the gold's.
    from handrail.documents.ocr import _layout, _split

    runs = []
    for line in receipt["ocr_lines"]:
        xs, ys = line["bbox"][0::2], line["bbox"][1::2]
        box = (float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys)))
        runs.append(_split(" ".join(line["text"].split()), box, 1.0))
    return _layout([run for run in runs if run.words])[0]


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).upper().split())


def edits(got: str, gold: str) -> int:
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(got, gold))


def _engine_call(engine: str) -> Any:
    """The engine's own call on a PIL image (the anchor), without handrail's layout."""
    if engine == "rapidocr":
        import numpy as np

        from handrail.documents import ocr

        raw = ocr._rapidocr_engine("")
        return lambda image: raw(np.asarray(image.convert("RGB"))[:, :, ::-1])
    import pytesseract

    from handrail.documents.ocr import TESSERACT_CONFIG, TESSERACT_LANGUAGE

    return lambda image: pytesseract.image_to_data(
        image, lang=TESSERACT_LANGUAGE, config=TESSERACT_CONFIG
    )


def measure_ocr(engine: str, rows: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """One engine over the receipts: its figures, details, and the text it read of each."""
    from PIL import Image

    from handrail.documents import LoadOptions
    from handrail.documents.ocr import read_image

    options = LoadOptions(ocr_engine=engine)  # type: ignore[arg-type]
    images = []
    for row in rows:
        with Image.open(SROIE / "img" / f"{row['id']}.jpg") as image:
            images.append(image.convert("RGB"))
    started = time.perf_counter()
    read_image(images[0], options)  # creates the engine, loads its models
    start_s = time.perf_counter() - started
    texts, seconds = [], []
    for n, image in enumerate(images, 1):
        started = time.perf_counter()
        texts.append(read_image(image, options).text)
        seconds.append(time.perf_counter() - started)
        if n % 10 == 0:
            _note(f"[documents] {engine} {n}/{len(images)}")
    call = _engine_call(engine)
    raw = []
    for image in images:
        started = time.perf_counter()
        call(image)
        raw.append(time.perf_counter() - started)
    golds = [normalise(gold_text(row)) for row in rows]
    gots = [normalise(text) for text in texts]
    pairs = list(zip(gots, golds, strict=True))
    distances = [edits(got, gold) for got, gold in pairs]
    bare = [edits(got.replace(" ", ""), gold.replace(" ", "")) for got, gold in pairs]
    gold_chars = sum(len(gold) for gold in golds)
    bare_chars = sum(len(gold.replace(" ", "")) for gold in golds)
    totals = [normalise(row["fields"]["total"]) in got for row, got in zip(rows, gots, strict=True)]
    rates = [d / len(gold) for d, gold in zip(distances, golds, strict=True)]
    result = {
        "ocr_s_per_page": statistics.mean(seconds),
        "ocr_cer": sum(distances) / gold_chars,
        "ocr_engine_s_per_page": statistics.mean(raw),
        "ocr_p95_s": sorted(seconds)[max(0, round(0.95 * len(seconds)) - 1)],
        "ocr_cer_no_spaces": sum(bare) / bare_chars,
        "ocr_cer_median": statistics.median(rates),
        "ocr_total_found": sum(totals) / len(totals),
        "ocr_engine_start_s": start_s,
        "ocr_receipts": len(rows),
    }
    return result, texts


# --- Extract ----------------------------------------------------------------------------------


def measure_extract(rows: list[dict[str, Any]], texts: list[str]) -> dict[str, float]:
    """bench/models.py's receipt Extract on the OCR text and on the gold text."""
    from models import FIELDS, extract_pipeline, field_right  # bench/models.py

    from handrail import Runner
    from handrail.providers.litellm import LiteLLMModel

    async def accuracy(runner: Runner, inputs: list[str], label: str) -> float:
        marks: list[bool] = []
        for n, (row, text) in enumerate(zip(rows, inputs, strict=True), 1):
            record = await runner.run(text, rerun=True)
            output = record.steps[-1].output
            got = output.model_dump() if hasattr(output, "model_dump") else (output or {})
            marks += [
                field_right(f, row["fields"][f], got.get(f)) for f in FIELDS if f in row["fields"]
            ]
            if n % 10 == 0:
                _note(f"[documents] extract on {label} text {n}/{len(rows)}")
        return sum(marks) / len(marks)

    async def both() -> dict[str, float]:
        runner = Runner(extract_pipeline(), model=LiteLLMModel(MODEL))
        await runner.run("warm-up: load the model", rerun=True)
        started = time.perf_counter()
        ocr = await accuracy(runner, texts, "OCR")
        gold = await accuracy(runner, [row["ocr_text"] for row in rows], "gold")
        return {
            "extract_field_accuracy_ocr": ocr,
            "extract_field_accuracy_gold": gold,
            "extract_s_per_doc": (time.perf_counter() - started) / (2 * len(rows)),
        }

    return asyncio.run(both())


def model_problem() -> str | None:
    from models import embedded_model_problem  # bench/models.py

    return embedded_model_problem(MODEL)


# --- main -------------------------------------------------------------------------------------

FIGURES = (
    "pdf_pages_per_s",
    "ocr_s_per_page",
    "ocr_cer",
    "extract_field_accuracy_ocr",
    "extract_field_accuracy_gold",
)
ANCHORS = ("pdfium_text_pages_per_s", "ocr_engine_s_per_page")


def run(cfg: Config, engines: list[str]) -> dict[str, Any]:
    """Everything measured: `figures` (the default engine's), `anchors`, `details`, `skipped`."""
    figures, details = measure_pdf(cfg)
    out: dict[str, Any] = {"figures": figures, "anchors": {}, "details": details, "skipped": []}
    if not (SROIE / "img").is_dir():
        out["skipped"].append(f"OCR and Extract: no data ({SROIE / 'img'} is absent)")
        return out
    from handrail.documents.ocr import available_engines

    rows = receipts(cfg.receipts)
    details["subset"] = f"SROIE scans {rows[0]['id']}..{rows[-1]['id']} ({len(rows)})"
    per_engine: dict[str, dict[str, Any]] = {}
    texts: list[str] = []
    for engine in engines:
        if engine not in available_engines():
            out["skipped"].append(f"OCR with {engine}: the engine is not installed")
            continue
        per_engine[engine], read = measure_ocr(engine, rows)
        if engine == engines[0]:
            texts = read
    details["engines"] = per_engine
    first = per_engine.get(engines[0])
    if first is not None:
        figures.update({k: first[k] for k in ("ocr_s_per_page", "ocr_cer")})
        out["anchors"]["ocr_engine_s_per_page"] = first["ocr_engine_s_per_page"]
    if not texts:
        problem: str | None = "no OCR text"
    elif not cfg.extract:
        problem = "not asked (--quick or --no-extract)"
    else:
        problem = model_problem()
    if problem is None:
        extract = measure_extract(rows, texts)
        figures.update({k: v for k, v in extract.items() if k in FIGURES})
        details["extract_s_per_doc"] = extract["extract_s_per_doc"]
        details["extract_model"] = MODEL
    else:
        out["skipped"].append(f"Extract: {problem}")
    out["anchors"]["pdfium_text_pages_per_s"] = details.pop("pdfium_text_pages_per_s")
    return out


def print_table(out: dict[str, Any], cfg: Config, engines: list[str]) -> None:
    figures, anchors, details = out["figures"], out["anchors"], out["details"]
    print(f"documents bench, {cfg.mode} run; {details.get('subset', 'no SROIE data')}")
    rows = [
        ("pdf_pages_per_s", "pages/s", ">= 50", anchors.get("pdfium_text_pages_per_s")),
        ("ocr_s_per_page", "s", "<= 2", anchors.get("ocr_engine_s_per_page")),
        ("ocr_cer", "", "<= 0.05", None),
        ("extract_field_accuracy_ocr", "", "", None),
        ("extract_field_accuracy_gold", "", "", None),
    ]
    print(f"{'figure':30} {'value':>9} {'unit':8} {'target':8} anchor")
    for name, unit, target, anchor in rows:
        value = figures.get(name)
        shown = "-" if value is None else f"{value:9.3f}"
        print(
            f"{name:30} {shown:>9} {unit:8} {target:8} {'' if anchor is None else f'{anchor:.3f}'}"
        )
    per_engine = details.get("engines", {})
    if per_engine:
        print(
            f"\n{'engine':10} {'s/receipt':>9} {'p95 s':>6} {'CER':>6} {'CER w/o sp':>10} "
            f"{'total found':>11} {'engine s':>8} {'start s':>7}"
        )
        for engine, r in per_engine.items():
            print(
                f"{engine:10} {r['ocr_s_per_page']:9.2f} {r['ocr_p95_s']:6.2f} {r['ocr_cer']:6.3f} "
                f"{r['ocr_cer_no_spaces']:10.3f} {r['ocr_total_found']:11.2f} "
                f"{r['ocr_engine_s_per_page']:8.2f} {r['ocr_engine_start_s']:7.2f}"
            )
    for skipped in out["skipped"]:
        print(f"skipped: {skipped}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="30 PDF pages, 5 scans, no Extract")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument("--receipts", type=int, help="scans 000..N-1 (overrides the mode)")
    parser.add_argument("--engines", help="OCR engines, comma-separated; figures are the first's")
    parser.add_argument("--no-extract", action="store_true", help="skip the Extract figures")
    args = parser.parse_args(argv)
    from handrail.documents import DEFAULT_OPTIONS

    cfg = QUICK if args.quick else FULL
    if args.receipts:
        cfg = Config(**{**asdict(cfg), "receipts": args.receipts})
    if args.no_extract:
        cfg = Config(**{**asdict(cfg), "extract": False})
    engines = args.engines.split(",") if args.engines else [DEFAULT_OPTIONS.ocr_engine]
    source = handrail_source()
    started = time.perf_counter()
    out = run(cfg, engines)
    elapsed = time.perf_counter() - started
    _note(f"[documents] finished in {elapsed:.0f}s")
    if args.json:
        payload = {
            "bench": "documents",
            "figures": {k: round(v, 4) for k, v in out["figures"].items()},
            "targets": TARGETS,
            "anchors": {k: round(v, 4) for k, v in out["anchors"].items()},
            "details": out["details"],
            "skipped": out["skipped"],
            "machine": {
                **machine_facts(),
                "packages": package_versions(PACKAGES),
                "handrail_source": source,
                "engines": engines,
                "config": asdict(cfg),
                "elapsed_s": round(elapsed, 1),
            },
        }
        print(json.dumps(payload, default=str))
    else:
        print_table(out, cfg, engines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
