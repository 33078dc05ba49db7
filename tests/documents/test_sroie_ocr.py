"""Real receipt scans (SROIE, ../shared/data/sroie/img) read by the default OCR engine: the text
is close to SROIE's gold text, its words are not run together, and the receipt's total is in it.
Slow (a few seconds a scan)."""

from __future__ import annotations

import json

import pytest
from tests.documents.conftest import need_data

from handrail.documents import DEFAULT_OPTIONS, load_bytes, ocr

pytest.importorskip("rapidocr_onnxruntime", reason="needs handrail's `ocr` extra")

IDS = ("000", "001", "002", "003")
CER_BOUND = 0.22
"""Per receipt (measured: 0.09, 0.20, 0.02, 0.06 for 000..003); bench/documents.py measures the
rate on 40 scans (docs/ocr.md)."""
WORDS_BOUND = 0.85
"""The share of the gold's words the text has at least (measured: 1.04, 0.88, 0.97, 0.98; before
handrail put spaces in RapidOCR's lines: 0.61, 0.76, 0.67, 0.65)."""


def _normalise(text: str) -> str:
    import unicodedata

    return " ".join(unicodedata.normalize("NFKC", text).upper().split())


def _in_reading_order(lines: list[dict[str, object]]) -> str:
    """The gold lines ordered as the OCR orders its own (so the rate counts characters)."""
    runs = []
    for line in lines:
        xs, ys = line["bbox"][0::2], line["bbox"][1::2]  # type: ignore[index]
        box = (min(xs), min(ys), max(xs), max(ys))
        runs.append(ocr._split(" ".join(str(line["text"]).split()), box, 1.0))
    return ocr._layout([run for run in runs if run.words])[0]


@pytest.mark.slow
@pytest.mark.parametrize("receipt_id", IDS)
def test_a_receipt_scan_reads_close_to_the_gold_text(receipt_id: str) -> None:
    from rapidfuzz.distance import Levenshtein

    folder = need_data("sroie", "img")
    rows = (json.loads(line) for line in (folder.parent / "sroie.jsonl").open())
    gold = next(row for row in rows if row["id"] == receipt_id)
    data = (folder / f"{receipt_id}.jpg").read_bytes()
    document = load_bytes(data, name=f"{receipt_id}.jpg", options=DEFAULT_OPTIONS)
    (page,) = document.pages
    assert page.text_from == "ocr" and page.unit == "px"
    got = _normalise(document.text)
    want = _normalise(_in_reading_order(gold["ocr_lines"]))
    assert Levenshtein.distance(got, want) / len(want) < CER_BOUND
    assert len(got.split()) >= WORDS_BOUND * len(want.split())
    total = gold["fields"]["total"]
    assert total in got
    assert document.find(total)[0].boxes  # and it is found on the page, with a box
