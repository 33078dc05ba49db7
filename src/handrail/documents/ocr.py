"""Reading the text of an image: OCR with RapidOCR (the default) or Tesseract.

    result = read_image(image, options)      # a PIL image: a scan, a rendered PDF page
    result.text                              # lines in reading order, "\\n" between them
    result.words[0].box                      # (left, top, right, bottom) in the image's pixels

Both engines run offline: RapidOCR's ONNX models ship inside its wheel, Tesseract is a Debian
package (`tesseract-ocr`). Each engine is created once per process, when first needed, and
shared; calls are serialised (ONNX Runtime already spreads one call over the machine's cores).

Whatever an engine returns (RapidOCR: one box per run of text, Tesseract: words grouped in its
own lines), the runs are put in reading order the same way: runs whose heights overlap by half
or more form one line, lines go top to bottom and runs left to right, joined by a space.

RapidOCR's recogniser often runs words together (`JALANSAGU18`): its CTC decoding keeps a space
only where the space is the likeliest character of a column. handrail decodes the recogniser's
output itself (`_ctc_decode`): a space goes between two characters where, in the columns from one
to the next, the space's probability reaches `SPACE_PROBABILITY`; and each word is boxed where
its characters' columns fall in the run. Where positions are unknown (Tesseract boxes words
itself; a run read another way), each word gets its share of the run's box by character count.
docs/ocr.md compares the engines on SROIE's receipt scans.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
import threading
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from handrail.core.pages import Box, Word
from handrail.documents.options import LoadOptions, OcrEngine
from handrail.exceptions import InputError

if TYPE_CHECKING:
    from PIL.Image import Image

ENGINES: tuple[OcrEngine, ...] = ("rapidocr", "tesseract")

RAPIDOCR_SETTINGS: dict[str, Any] = {
    "print_verbose": False,
    # Detect on the image as it is, not enlarged to 736 px on its short side: faster on receipts
    # and scans, and no worse (docs/ocr.md). With "max", RapidOCR 1.4.4 ignores the side length
    # below and shrinks only images longer than 2000 px (as it does before detecting anyway).
    "det_limit_type": "max",
    "det_limit_side_len": 960,
    # Keep a detected box whose mean text score is 0.3 or more (RapidOCR's default: 0.5): a few
    # faint lines more are read, at about the same time (docs/ocr.md).
    "det_box_thresh": 0.3,
    # No classifier for text turned upside down: a scan's lines are upright (a fifth saved).
    "use_cls": False,
}
"""How RapidOCR is created (its own defaults otherwise); docs/ocr.md says why these."""

SPACE_PROBABILITY = 0.03
"""A space goes between two characters RapidOCR read where the recogniser gives the space at
least this probability in a column between them (it keeps only spaces it finds likeliest);
chosen on SROIE scans 000..039, docs/ocr.md."""

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
        engine = module.RapidOCR(**RAPIDOCR_SETTINGS)
        _install_spacing(engine)
        _rapidocr = engine
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
    for quad, text, score, *decoded in found or ():
        xs = [float(point[0]) for point in quad]
        ys = [float(point[1]) for point in quad]
        box = (min(xs), min(ys), max(xs), max(ys))
        upright = box[3] - box[1] < 1.5 * (box[2] - box[0])  # RapidOCR turns tall crops
        if decoded and isinstance(decoded[0], _Decoded) and upright:
            runs.append(_place(decoded[0], box))
        else:
            runs.append(_split(_clean(text), box, float(score)))
    return [run for run in runs if run.words]


@dataclass(frozen=True, slots=True)
class _Decoded:
    """One line's characters as `_ctc_decode` read them."""

    text: str
    """The characters, spaces included (the recogniser's own and the ones put in)."""
    positions: tuple[float, ...]
    """Each character's place along the line: its column's middle, 0 (left) to 1 (right)."""
    confidences: tuple[float, ...]
    """Each character's probability (a space put in: the space's)."""
    score: float
    """The mean probability of the characters the recogniser read (RapidOCR's own score)."""


def _ctc_decode(
    indices: Sequence[int],
    probabilities: Sequence[float],
    space_probabilities: Sequence[float],
    characters: Sequence[str],
    *,
    width: float | None = None,
    threshold: float = SPACE_PROBABILITY,
) -> _Decoded:
    """A CTC output decoded (each column's likeliest class; repeats merged; class 0, the blank,
    dropped), with a space between two characters wherever a column from the first to the second
    gives the space (the last class) `threshold` or more. `width`: how many columns the line
    takes (the rest is padding), the unit of `positions`; all of them when None."""
    space = len(characters) - 1
    columns = [i for i, k in enumerate(indices) if k != 0 and (i == 0 or indices[i - 1] != k)]
    span = float(width if width else len(indices)) or 1.0
    text: list[str] = []
    positions: list[float] = []
    confidences: list[float] = []
    for n, column in enumerate(columns):
        if n and indices[column] != space and text[-1] != " ":
            before = columns[n - 1]
            between = max(range(before, column + 1), key=lambda i: space_probabilities[i])
            if space_probabilities[between] >= threshold:
                text.append(" ")
                positions.append((before + column + 1) / 2 / span)
                confidences.append(float(space_probabilities[between]))
        text.append(characters[indices[column]])
        positions.append((column + 0.5) / span)
        confidences.append(float(probabilities[column]))
    read = [float(probabilities[column]) for column in columns]
    return _Decoded(
        text="".join(text),
        positions=tuple(positions),
        confidences=tuple(confidences),
        score=sum(read) / len(read) if read else 0.0,
    )


class _SpacingDecoder:
    """Stands in for RapidOCR's CTC decoder (`TextRecognizer.postprocess_op`): the same text and
    score, spaces put in by `_ctc_decode`, and a `_Decoded` after them, which RapidOCR passes
    through to its result (`[box, text, score, decoded]`)."""

    def __init__(self, characters: list[str]) -> None:
        self.character = characters

    def __call__(self, preds: Any, return_word_box: bool = False, **kwargs: Any) -> list[Any]:
        indices = preds.argmax(axis=2)
        probabilities = preds.max(axis=2)
        spaces = preds[:, :, len(self.character) - 1]
        ratios = kwargs.get("wh_ratio_list")
        widest = kwargs.get("max_wh_ratio")
        results = []
        for i in range(preds.shape[0]):
            width = None
            if ratios is not None and widest:
                width = preds.shape[1] * float(ratios[i]) / float(widest)
            decoded = _ctc_decode(
                indices[i].tolist(),
                probabilities[i].tolist(),
                spaces[i].tolist(),
                self.character,
                width=width,
            )
            results.append((decoded.text, decoded.score, decoded))
        return results


def _install_spacing(engine: Any) -> None:
    """Put `_SpacingDecoder` in place of RapidOCR's decoder, where it has the one this module
    knows (1.4.x: `text_rec.postprocess_op.character`, the space last); else leave it be."""
    recogniser = getattr(engine, "text_rec", None)
    characters = getattr(getattr(recogniser, "postprocess_op", None), "character", None)
    if isinstance(characters, list) and len(characters) > 2 and characters[-1] == " ":
        recogniser.postprocess_op = _SpacingDecoder(characters)  # type: ignore[union-attr]


def _place(decoded: _Decoded, box: Box) -> _Run:
    """A run's words boxed where their characters are: a word from half a step (the median
    distance between two characters side by side) before its first character's column to half
    one after its last (the run's own edges for its first and last word); its confidence the
    mean of its characters'."""
    left, top, right, bottom = box
    width = right - left
    places = list(zip(decoded.text, decoded.positions, strict=True))
    steps = sorted(b - a for (s, a), (t, b) in pairwise(places) if s != " " != t)
    half = (steps[len(steps) // 2] if steps else 1 / max(len(places), 1)) / 2
    groups: list[list[tuple[str, float, float]]] = [[]]
    for char, position, confidence in zip(
        decoded.text, decoded.positions, decoded.confidences, strict=True
    ):
        normal = _clean(char) if not char.isspace() else ""
        if not normal:
            if groups[-1]:
                groups.append([])
            continue
        groups[-1].append((normal, position, confidence))
    groups = [group for group in groups if group]
    words = []
    for n, group in enumerate(groups):
        start = left if n == 0 else left + max(0.0, group[0][1] - half) * width
        end = right if n == len(groups) - 1 else left + min(1.0, group[-1][1] + half) * width
        text = "".join(char for char, _, _ in group)
        confidence = sum(c for _, _, c in group) / len(group)
        words.append((text, (start, top, max(end, start), bottom), confidence))
    return _Run(words=tuple(words), box=box)


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
