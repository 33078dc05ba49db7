"""Reading the text of an image: OCR with RapidOCR (the default) or Tesseract.

    result = read_image(image, options)      # a PIL image: a scan, a rendered PDF page
    result.text                              # lines in reading order, "\\n" between them
    result.words[0].box                      # (left, top, right, bottom) in the image's pixels

Both engines run offline: RapidOCR's ONNX models ship inside its wheel, Tesseract is a Debian
package (`tesseract-ocr`). Each engine is created once per process, when first needed, and
shared; calls are serialised (ONNX Runtime already spreads one call over the machine's cores).

Whatever an engine returns (RapidOCR: one box per run of text, Tesseract: words grouped in its
own lines), the runs are put in reading order the same way: runs whose heights overlap by half
or more form one line, lines go top to bottom and runs left to right, joined by a space. Where an
engine boxes a run and not its words, each word gets its share of the run's box by character
count. docs/ocr.md compares the engines on SROIE's receipt scans.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handrail.core.pages import Box, Word
from handrail.documents.options import LoadOptions, OcrEngine
from handrail.exceptions import InputError

if TYPE_CHECKING:
    from PIL.Image import Image

ENGINES: tuple[OcrEngine, ...] = ("rapidocr", "tesseract")

RAPIDOCR_SETTINGS: dict[str, Any] = {
    "print_verbose": False,
    # Detect on the image as it is (shrunk only past 960 px), not enlarged to 736 px on its
    # short side: faster on receipts and scans, and no worse (docs/ocr.md).
    "det_limit_type": "max",
    "det_limit_side_len": 960,
    # No classifier for text turned upside down: a scan's lines are upright (a fifth saved).
    "use_cls": False,
}
"""How RapidOCR is created (its own defaults otherwise); docs/ocr.md says why these."""

TESSERACT_CONFIG = ""
"""Extra command-line options for Tesseract (its defaults: page segmentation 3, `eng`)."""

TESSERACT_LANGUAGE = "eng"


@dataclass(frozen=True, kw_only=True, slots=True)
class OcrResult:
    """The text OCR read from one image."""

    text: str
    """The image's lines in reading order (top to bottom, left to right), one per line."""
    words: tuple[Word, ...]
    """Its words with their boxes in the image's pixels; `Word.start` is an offset into `text`
    and `Word.confidence` the engine's (0..1)."""
    width: int
    """The image's width in pixels."""
    height: int
    """The image's height in pixels."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Run:
    """A run of text an engine read on one line (a RapidOCR box, a Tesseract line)."""

    words: tuple[tuple[str, Box, float], ...]
    """Its words left to right: text, box, confidence."""
    box: Box


def available_engines() -> tuple[OcrEngine, ...]:
    """The OCR engines this install can run (none without handrail's `ocr` extra)."""
    found: list[OcrEngine] = []
    if importlib.util.find_spec("rapidocr_onnxruntime") is not None:
        found.append("rapidocr")
    if importlib.util.find_spec("pytesseract") is not None and shutil.which(_tesseract_cmd()):
        found.append("tesseract")
    return tuple(found)


def read_image(image: Image, options: LoadOptions, *, name: str | None = None) -> OcrResult:
    """The text and words of `image`, read by `options.ocr_engine`. Raises `InputError` (its
    message starts with `name` when given) when the engine is missing or fails."""
    where = f"`{name}`: " if name else ""
    engine = options.ocr_engine
    if engine not in ENGINES:
        raise InputError(
            f"{where}unknown OCR engine {engine!r}; LoadOptions.ocr_engine is one of "
            f"{', '.join(ENGINES)}"
        )
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    read: Callable[[Image, LoadOptions, str], list[_Run]]
    read = _read_rapidocr if engine == "rapidocr" else _read_tesseract
    runs = read(rgb, options, where)
    text, words = _layout(runs)
    return OcrResult(text=text, words=words, width=rgb.width, height=rgb.height)


# --- RapidOCR -------------------------------------------------------------------------------

_lock = threading.Lock()
_rapidocr: Any = None


def _rapidocr_engine(where: str) -> Any:
    """The process's RapidOCR engine, created on first use (under `_lock`)."""
    global _rapidocr
    if _rapidocr is None:
        try:
            module = importlib.import_module("rapidocr_onnxruntime")
        except ImportError as e:
            raise InputError(
                f"{where}OCR with rapidocr needs handrail's `ocr` extra (rapidocr-onnxruntime); "
                "install it with `pip install 'handrail[ocr]'`, or read without OCR "
                "(LoadOptions(ocr='never'), `handrail run --ocr never`)"
            ) from e
        _rapidocr = module.RapidOCR(**RAPIDOCR_SETTINGS)
    return _rapidocr


def _read_rapidocr(image: Image, options: LoadOptions, where: str) -> list[_Run]:
    import numpy as np

    with _lock:
        engine = _rapidocr_engine(where)
        try:
            found, _ = engine(np.asarray(image)[:, :, ::-1])  # RGB -> BGR, as OpenCV reads
        except Exception as e:  # onnxruntime and OpenCV raise their own types
            raise InputError(f"{where}rapidocr could not read the image: {e}") from e
    runs = []
    for quad, text, score in found or ():
        xs = [float(point[0]) for point in quad]
        ys = [float(point[1]) for point in quad]
        box = (min(xs), min(ys), max(xs), max(ys))
        runs.append(_split(_clean(text), box, float(score)))
    return [run for run in runs if run.words]


def _split(text: str, box: Box, confidence: float) -> _Run:
    """A run boxed as a whole: each word gets the share of the box its characters take."""
    left, top, right, bottom = box
    per_char = (right - left) / max(len(text), 1)
    words = []
    start = None
    for i, char in enumerate([*text, " "]):
        if not char.isspace():
            start = i if start is None else start
            continue
        if start is not None:
            word_box = (left + start * per_char, top, left + i * per_char, bottom)
            words.append((text[start:i], word_box, confidence))
            start = None
    return _Run(words=tuple(words), box=box)


# --- Tesseract ------------------------------------------------------------------------------


def _tesseract_cmd() -> str:
    try:
        module = importlib.import_module("pytesseract")
    except ImportError:
        return "tesseract"
    return str(module.pytesseract.tesseract_cmd)


def _read_tesseract(image: Image, options: LoadOptions, where: str) -> list[_Run]:
    try:
        pytesseract = importlib.import_module("pytesseract")
    except ImportError as e:
        raise InputError(
            f"{where}OCR with tesseract needs handrail's `ocr` extra (pytesseract); install it "
            "with `pip install 'handrail[ocr]'`, or use LoadOptions(ocr_engine='rapidocr')"
        ) from e
    try:
        data = pytesseract.image_to_data(
            image,
            lang=TESSERACT_LANGUAGE,
            config=TESSERACT_CONFIG,
            output_type=pytesseract.Output.DICT,
            timeout=options.ocr_timeout_s,
        )
    except pytesseract.TesseractNotFoundError as e:
        raise InputError(
            f"{where}OCR with tesseract needs the `tesseract` program: install Debian's "
            "`tesseract-ocr` package (`apt-get install tesseract-ocr`), or use "
            "LoadOptions(ocr_engine='rapidocr')"
        ) from e
    except RuntimeError as e:  # pytesseract's timeout; TesseractError is a RuntimeError too
        if "timeout" in str(e).lower():
            raise InputError(
                f"{where}OCR took longer than {options.ocr_timeout_s:g} s; raise "
                "LoadOptions.ocr_timeout_s, or send a smaller image"
            ) from e
        raise InputError(f"{where}tesseract could not read the image: {e}") from e
    lines: dict[tuple[int, int, int], list[tuple[str, Box, float]]] = {}
    for i, raw in enumerate(data["text"]):
        text = _clean(str(raw))
        if not text:
            continue
        left, top = float(data["left"][i]), float(data["top"][i])
        box = (left, top, left + float(data["width"][i]), top + float(data["height"][i]))
        confidence = max(0.0, min(float(data["conf"][i]) / 100, 1.0))
        key = (int(data["block_num"][i]), int(data["par_num"][i]), int(data["line_num"][i]))
        lines.setdefault(key, []).extend((word, box, confidence) for word in text.split())
    return [_Run(words=tuple(words), box=_union(w[1] for w in words)) for words in lines.values()]


# --- reading order --------------------------------------------------------------------------


def _clean(text: str) -> str:
    """NFKC, so full-width forms (`（`, `：`) read as their ASCII selves; runs of space as one."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


def _union(boxes: Iterable[Box]) -> Box:
    left, top, right, bottom = zip(*boxes, strict=True)
    return (min(left), min(top), max(right), max(bottom))


def _same_line(a: Box, b: Box) -> bool:
    """Whether two runs sit on one line: their heights overlap by half the smaller one."""
    overlap = min(a[3], b[3]) - max(a[1], b[1])
    return overlap >= 0.5 * min(a[3] - a[1], b[3] - b[1])


def _lines(runs: Sequence[_Run]) -> list[list[_Run]]:
    """Runs grouped into lines, top to bottom, each left to right. A run joins the first of the
    last few lines it shares with its first run (a receipt's price beside its item)."""
    lines: list[list[_Run]] = []
    for run in sorted(runs, key=lambda r: (r.box[1] + r.box[3]) / 2):
        for line in reversed(lines[-3:]):
            if _same_line(line[0].box, run.box):
                line.append(run)
                break
        else:
            lines.append([run])
    lines.sort(key=lambda line: min(r.box[1] for r in line))
    return [sorted(line, key=lambda r: r.box[0]) for line in lines]


def _layout(runs: Sequence[_Run]) -> tuple[str, tuple[Word, ...]]:
    """The text (one line per line, words joined by a space) and its words with offsets."""
    parts: list[str] = []
    words: list[Word] = []
    length = 0
    for number, line in enumerate(_lines(runs)):
        for index, (text, box, confidence) in enumerate(w for r in line for w in r.words):
            separator = "\n" if number and not index else " " if index else ""
            length += len(separator)
            parts.append(separator)
            rounded = (round(box[0], 1), round(box[1], 1), round(box[2], 1), round(box[3], 1))
            confidence = round(confidence, 3)
            words.append(Word(text=text, box=rounded, start=length, confidence=confidence))
            parts.append(text)
            length += len(text)
    return "".join(parts), tuple(words)


__all__ = ["ENGINES", "OcrResult", "available_engines", "read_image"]
