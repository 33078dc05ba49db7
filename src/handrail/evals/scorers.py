"""Scorers: small pure functions that compare what a pipeline produced with what a case expected.

- `score_labels`: a classifier's labels (accuracy, per-label precision/recall/F1, confusion).
- `score_fields`, `field_match`, `normalise`: an extractor's fields in three modes (exact,
  normalised, fuzzy), counting "expected empty, got a value" and "expected a value, got empty".
- `score_routes`: where runs ended (accept, review, reject, fail), and what should have gone to a
  person but was accepted.
- `summarise`: a distribution (cost, tokens, latency per document) where a value may be unknown.

Confidence scorers (calibration, the review-rate curve) are in `handrail.evals.calibration`.

Writing your own scorer: follow the same four rules and it fits beside these in a report.

1. Plain sequences in, one item per case, in case order (`expected`, then what the run gave);
   raise `ValueError` when their lengths differ.
2. A frozen dataclass out that satisfies `Scores`: `to_dict()` returns JSON values only (ints,
   floats, strings, lists, dicts with string keys, None).
3. None means "nothing to measure" (the precision of a label never predicted, the mean of no
   known costs). Never NaN, and never 0 for an unknown.
4. Pure: no I/O, no printing, no clock, no randomness, so re-scoring a stored run gives the same
   numbers. Say in the docstring what is counted and over what.

    @dataclass(frozen=True, kw_only=True)
    class LengthScores:
        n: int
        too_long: int
        share_too_long: float | None

        def to_dict(self) -> dict[str, Any]:
            return {"n": self.n, "too_long": self.too_long, "share_too_long": self.share_too_long}

    def score_lengths(drafts: Sequence[str | None], limit: int = 800) -> LengthScores:
        '''Counts the drafts longer than `limit` characters; a missing draft is not too long.'''
        too_long = sum(1 for d in drafts if d is not None and len(d) > limit)
        return LengthScores(n=len(drafts), too_long=too_long,
                            share_too_long=too_long / len(drafts) if drafts else None)
"""

from __future__ import annotations

import functools
import json
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Literal, Protocol

from pydantic import BaseModel
from rapidfuzz import fuzz

from handrail.core.values import read_date, read_number

__all__ = [
    "MODES",
    "NO_LABEL",
    "ROUTES",
    "Distribution",
    "FieldCounts",
    "FieldScores",
    "LabelScore",
    "LabelScores",
    "MatchMode",
    "RouteScores",
    "Scores",
    "field_match",
    "normalise",
    "score_fields",
    "score_labels",
    "score_routes",
    "summarise",
]

MatchMode = Literal["exact", "normalised", "fuzzy"]
MODES: tuple[MatchMode, ...] = ("exact", "normalised", "fuzzy")
"""The field-match modes, strictest first."""

NO_LABEL = "(none)"
"""The confusion-matrix column for a run that produced no label (a prediction of None)."""

ROUTES = ("accept", "review", "reject", "fail")
"""Where a run can end, in the order `score_routes` uses for its confusion matrix."""


class Scores(Protocol):
    """What a scorer returns: a record whose `to_dict()` is JSON (no NaN; None for unknown)."""

    def to_dict(self) -> dict[str, Any]: ...


class _Record:
    """Gives a frozen dataclass its `to_dict()`: the fields in order, then the properties named in
    `_derived`; records, mappings and lists inside become dicts and lists too."""

    __slots__ = ()
    __dataclass_fields__: ClassVar[dict[str, Any]]
    _derived: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        names = [*self.__dataclass_fields__, *self._derived]
        return {name: _plain(getattr(self, name)) for name in names}


_SCALARS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


# --- shared arithmetic -------------------------------------------------------------------------


def _same_length(**sequences: Sequence[Any]) -> int:
    """The common length of `sequences`, or `ValueError` naming the two that differ."""
    (first, items), *rest = sequences.items()
    for name, other in rest:
        if len(other) != len(items):
            raise ValueError(
                f"`{first}` has {len(items)} items but `{name}` has {len(other)}: "
                "pass one item per case, in the same order"
            )
    return len(items)


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _f1(tp: int, precision: float | None, recall: float | None) -> float | None:
    """None when there was nothing to find (recall None); 0.0 when nothing was found, even if
    nothing was predicted (precision None); otherwise the harmonic mean."""
    if recall is None:
        return None
    if not tp or precision is None:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def _confusion(
    expected: Sequence[str], actual: Sequence[str], labels: Sequence[str]
) -> list[list[int]]:
    """Rows are expected, columns actual, both in `labels` order."""
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for want, got in zip(expected, actual, strict=True):
        matrix[index[want]][index[got]] += 1
    return matrix


# --- labels ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class LabelScore(_Record):
    """How one label fared (see `score_labels`); None where there is nothing to measure."""

    tp: int
    """Cases of this label predicted as this label."""
    support: int
    """Cases whose expected label is this one."""
    predicted: int
    """Cases predicted as this label, right or wrong."""
    precision: float | None
    """tp / predicted; None when the label was never predicted."""
    recall: float | None
    """tp / support; None when no case expects the label."""
    f1: float | None
    """Harmonic mean of precision and recall; 0.0 when the label has support but none of it was
    found (also when it was never predicted); None when the label has no support."""


def _label_score(tp: int, support: int, predicted: int) -> LabelScore:
    precision, recall = _share(tp, predicted), _share(tp, support)
    return LabelScore(
        tp=tp,
        support=support,
        predicted=predicted,
        precision=precision,
        recall=recall,
        f1=_f1(tp, precision, recall),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class LabelScores(_Record):
    """A classifier's labels against the expected ones (see `score_labels`)."""

    n: int
    """Cases scored."""
    correct: int
    """Cases whose predicted label is the expected one."""
    accuracy: float | None
    """correct / n; None when there are no cases."""
    macro_f1: float | None
    """Mean F1 over the labels with support; None when no label has any."""
    labels: list[str]
    """The confusion matrix's order: given labels, others seen, then `NO_LABEL` if needed."""
    confusion: list[list[int]]
    """confusion[i][j]: cases expecting labels[i] that were predicted as labels[j]."""
    per_label: dict[str, LabelScore]
    """Every label but `NO_LABEL`, in `labels` order."""


def score_labels(
    expected: Sequence[str],
    predicted: Sequence[str | None],
    labels: Sequence[str] | None = None,
) -> LabelScores:
    """Scores predicted labels against expected ones, one pair per case.

    Counts: `accuracy` is the share of cases whose prediction equals the expected label (a None
    prediction, the run produced no label, is always wrong). Per label: `support` (cases
    expecting it), `predicted` (cases predicted as it), `tp` (both); precision = tp / predicted
    (None when never predicted: there is no prediction to be precise about), recall = tp /
    support (None without support), F1 0.0 for a label with support that was never found, None
    for a label without support. `macro_f1` averages F1 over the labels with support, so a label
    the model never predicts pulls it down and a label no case expects does not count.

    The confusion matrix has rows = expected and columns = predicted, in `labels` order: the
    labels given, then any other label seen (first appearance, expected before predicted), then
    `NO_LABEL` ("(none)") as a column only when some prediction is None.
    """
    n = _same_length(expected=expected, predicted=predicted)
    pairs = zip(expected, predicted, strict=True)
    seen = (label for pair in pairs for label in pair if label is not None)
    order = list(dict.fromkeys([*(labels or ()), *seen]))
    if NO_LABEL in order:
        raise ValueError(f"{NO_LABEL!r} is reserved for a missing prediction; rename that label")
    actual = [NO_LABEL if label is None else label for label in predicted]
    if NO_LABEL in actual:
        order.append(NO_LABEL)
    confusion = _confusion(expected, actual, order)
    per_label = {
        label: _label_score(
            tp=confusion[i][i],
            support=sum(confusion[i]),
            predicted=sum(row[i] for row in confusion),
        )
        for i, label in enumerate(order)
        if label != NO_LABEL
    }
    correct = sum(score.tp for score in per_label.values())
    f1s = [score.f1 for score in per_label.values() if score.f1 is not None]
    return LabelScores(
        n=n,
        correct=correct,
        accuracy=_share(correct, n),
        macro_f1=math.fsum(f1s) / len(f1s) if f1s else None,
        labels=order,
        confusion=confusion,
        per_label=per_label,
    )


# --- normalisation -----------------------------------------------------------------------------

_QUANTITY = re.compile(r"-?\d+(?:\.\d+)?|\d{4}-\d{2}-\d{2}")
"""A normalised number or date: fuzzy matching never forgives a difference in one."""


def _canonical(number: Decimal) -> str:
    if not number.is_finite():
        return str(number).casefold()
    if number.is_zero():
        return "0"
    return f"{number.normalize():f}"


def _loose(char: str) -> bool:
    return char.isspace() or unicodedata.category(char).startswith("P")


def _trim(text: str) -> str:
    """`text` without the punctuation and spaces around it ("(Acme Ltd.)" -> "Acme Ltd")."""
    start, end = 0, len(text)
    while start < end and _loose(text[start]):
        start += 1
    while end > start and _loose(text[end - 1]):
        end -= 1
    return text[start:end]


@functools.lru_cache(maxsize=1 << 16)
def _text(value: str) -> str | None:
    """Memoised: an eval normalises the same strings for every mode and every scorer."""
    text = " ".join(unicodedata.normalize("NFKC", value).split())
    if not text:
        return None
    if "@" not in text and any(c.isdigit() for c in text):  # dates and amounts have digits
        # The checks' reader (docs/values.md); numeric dates day first, an ambiguous number
        # ("1.234") stays text: the scorer does not guess either.
        day = read_date(text, dayfirst=True)
        if isinstance(day, date):
            return day.isoformat()
        amount = read_number(text)
        if isinstance(amount, Decimal):
            return _canonical(amount)
        trimmed = _trim(text.casefold())
        # Text the reader refused ("--5", "12.", "#12") is not the number trimming it would
        # leave: keep it whole, so it never matches that number when the check would not.
        return text.casefold() if _QUANTITY.fullmatch(trimmed) else trimmed or None
    return _trim(text.casefold()) or None


def _tree(value: Any) -> Any:
    """`value` normalised: None (empty), a string, or lists and dicts of those."""
    kind = type(value)
    if kind is str:  # the common case first: no ABC checks
        return _text(value)
    if value is None:
        return None
    if isinstance(value, BaseModel):
        value = value.model_dump()
    if isinstance(value, Enum):
        value = value.value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return _canonical(Decimal(value))
    if isinstance(value, float):
        return _canonical(Decimal(repr(value)))
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        kept = {str(k): leaf for k, v in value.items() if (leaf := _tree(v)) is not None}
        return kept or None
    if isinstance(value, list | tuple | AbstractSet):
        items = [_tree(v) for v in value]
        if isinstance(value, AbstractSet):
            items.sort(key=lambda item: json.dumps(item, sort_keys=True))
        return items if any(item is not None for item in items) else None
    return _text(str(value))


def normalise(value: Any) -> str | None:
    """`value` in a canonical form for matching, or None when it is empty.

    Empty: None, "" or only whitespace or punctuation ("-", "n/a" is not empty), an empty list
    or dict, a list of empties, a dict whose values are all empty.

    Numbers and dates are read as the checks read them, by `handrail.core.values`
    (docs/values.md states the rule), so a check and a score never disagree on a value.

    - Dates (`date`, `datetime`, and text `read_date` reads: 2024-12-25, 25/12/2024, 25.12.24,
      25 Dec 2024, Dec 25, 2024) become ISO `2024-12-25`; a time is dropped. Day first:
      03/04/2025 is 3 April 2025, as in the UK, most of Europe and Asia (12-25-2024 is still
      25 December: only one reading is a real date). Write expected dates in ISO so no reading
      is needed.
    - Numbers and amounts (int, float, Decimal, and text `read_number` reads: "$1,234.50",
      "1.234,50 EUR", "RM 12.00", "-£3", "US$ 5") become a canonical decimal: "1234.5", "12",
      "-3"; so 1, 1.0 and "1.00" are equal. The currency is dropped, not compared. 1,234 is
      1234 and 12,50 is 12.5; an ambiguous "1.234" (a decimal point, or a thousands separator)
      and an identifier with a leading zero (00123) stay text.
    - Other text: unicode NFKC, case-folded, whitespace collapsed, punctuation around it
      trimmed ("  ACME  Ltd. " -> "acme ltd"); punctuation inside is kept.
    - Booleans become "true" / "false"; enums their value; pydantic models their fields.
    - Lists, tuples, sets and dicts: each leaf normalised as above, then written as compact JSON
      with sorted keys (sets sorted, dict entries with an empty value dropped).
    """
    tree = _tree(value)
    if tree is None or isinstance(tree, str):
        return tree
    return json.dumps(tree, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


# --- fields ------------------------------------------------------------------------------------


def _fuzzy(a: Any, b: Any, threshold: float) -> bool:
    if a == b:
        return True
    if isinstance(a, str) and isinstance(b, str):
        if _QUANTITY.fullmatch(a) or _QUANTITY.fullmatch(b):
            return False
        return fuzz.ratio(a, b) / 100 >= threshold
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return all(_fuzzy(x, y, threshold) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        return all(_fuzzy(a[key], b[key], threshold) for key in a)
    return False


def _match(a: Any, b: Any, tree_a: Any, tree_b: Any, mode: MatchMode, threshold: float) -> bool:
    if tree_a is None or tree_b is None:
        return tree_a is None and tree_b is None
    if mode == "exact":
        return str(a).strip() == str(b).strip()
    if mode == "normalised":
        return bool(tree_a == tree_b)
    return _fuzzy(tree_a, tree_b, threshold)


def _check_options(mode: str, threshold: float) -> None:
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {', '.join(MODES)}")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold {threshold} is not between 0 and 1 (a share, 0.9 = 90%)")


def field_match(
    expected: Any, got: Any, mode: MatchMode = "normalised", threshold: float = 0.9
) -> bool:
    """Whether `got` matches `expected` in `mode`. Two empties (see `normalise`) always match,
    an empty and a filled value never do.

    - `exact`: equal after `str()` and stripping the ends: "12" matches 12, but not 12.0, and
      "ACME" does not match "acme".
    - `normalised`: `normalise` gives the same text: case, spacing, date and amount formats
      ignored.
    - `fuzzy`: normalised-equal, or text whose `rapidfuzz.fuzz.ratio` / 100 is at least
      `threshold`. Numbers and dates are never fuzzy: 1234.50 and 1234.60 are different amounts
      at any threshold. Lists and dicts match leaf by leaf, with the same keys and lengths.
    """
    _check_options(mode, threshold)
    return _match(expected, got, _tree(expected), _tree(got), mode, threshold)


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldCounts(_Record):
    """One field (or all fields together) in one mode. Every case lands in exactly one of the
    five outcomes; `fp` and `fn` are derived, and a wrong value counts in both."""

    _derived = ("n", "fp", "fn", "precision", "recall", "f1", "accuracy")

    tp: int
    """Expected a value and got a matching one."""
    tn: int
    """Expected empty and got empty: right."""
    wrong: int
    """Expected a value and got a different one (a false positive and a false negative)."""
    missed: int
    """Expected a value and got empty (a false negative)."""
    spurious: int
    """Expected empty and got a value (a false positive)."""

    @property
    def fp(self) -> int:
        return self.wrong + self.spurious

    @property
    def fn(self) -> int:
        return self.wrong + self.missed

    @property
    def n(self) -> int:
        return self.tp + self.tn + self.wrong + self.missed + self.spurious

    @property
    def precision(self) -> float | None:
        """tp / (tp + fp); None when no value was given."""
        return _share(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float | None:
        """tp / (tp + fn); None when no value was expected."""
        return _share(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float | None:
        """Harmonic mean of precision and recall; 0.0 when values were expected but none was
        found (even if none was given: precision None); None when no value was expected."""
        return _f1(self.tp, self.precision, self.recall)

    @property
    def accuracy(self) -> float | None:
        """(tp + tn) / n: the share of cases where the field is right, empty or filled."""
        return _share(self.tp + self.tn, self.n)


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldScores(_Record):
    """An extractor's fields against the expected ones (see `score_fields`)."""

    n: int
    """Documents scored."""
    fields: list[str]
    """The fields scored, in order."""
    threshold: float
    """The fuzzy-match threshold used."""
    per_field: dict[str, dict[MatchMode, FieldCounts]]
    """per_field[field][mode]."""
    micro: dict[MatchMode, FieldCounts]
    """Per mode, the counts of all fields added up (micro-average)."""
    all_fields_right: dict[MatchMode, float | None]
    """Per mode, the share of documents with every field right (tp or tn); None when there are
    no documents or no fields."""


_OUTCOMES = ("tp", "tn", "wrong", "missed", "spurious")
_RIGHT = frozenset({"tp", "tn"})


def _outcome(a: Any, b: Any, tree_a: Any, tree_b: Any, mode: MatchMode, threshold: float) -> str:
    if tree_a is None:
        return "tn" if tree_b is None else "spurious"
    if tree_b is None:
        return "missed"
    return "tp" if _match(a, b, tree_a, tree_b, mode, threshold) else "wrong"


def score_fields(
    expected: Sequence[Mapping[str, Any]],
    predicted: Sequence[Mapping[str, Any] | None],
    *,
    fields: Sequence[str] | None = None,
    threshold: float = 0.9,
) -> FieldScores:
    """Scores extracted fields against expected ones, one document per case, in every mode.

    For each field and mode (`field_match`), each document counts once as one of:
    expected filled and got a matching value, TP; expected filled and got a different value,
    FP and FN both (a wrong value is a wrong answer and a missed one); expected filled and got
    empty, FN; expected empty and got a value, FP; both empty, TN (right: it counts toward
    accuracy, not toward precision or recall). precision = TP / (TP + FP), recall = TP /
    (TP + FN), accuracy = (TP + TN) / documents that name the field. A document is scored only
    on the fields its expected mapping names: a field it does not name is not part of that case
    (whatever was extracted), and a named field whose value is None means "should be empty". In
    `predicted`, a missing key and an empty value are the same; `predicted` None (the run
    produced no output) has every field empty.

    `fields` defaults to the expected keys, in order of first appearance. `micro` adds the counts
    of all fields per mode; `all_fields_right` is the share of documents (naming at least one of
    `fields`) with every field they name right.
    Nested values (dicts, lists) are normalised leaf by leaf (see `normalise`, `field_match`).
    """
    _same_length(expected=expected, predicted=predicted)
    _check_options("fuzzy", threshold)
    names = list(dict.fromkeys(fields if fields is not None else (k for e in expected for k in e)))
    return tally_fields(
        [
            field_outcomes(want, output, names, threshold=threshold)
            for want, output in zip(expected, predicted, strict=True)
        ],
        names,
        threshold=threshold,
    )


_ALL_TP: dict[MatchMode, str] = dict.fromkeys(MODES, "tp")


def _same_filled(a: Any, b: Any) -> bool:
    """`a` and `b` are the same filled value, so a true positive in every mode without
    normalising: equal text with a letter or digit in it (never empty), or equal numbers."""
    kind = type(a)
    if kind is not type(b) or a != b:
        return False
    if kind is str:
        return any(c.isalnum() for c in a)
    return kind is int or kind is float


def field_outcomes(
    expected: Mapping[str, Any],
    predicted: Mapping[str, Any] | None,
    fields: Sequence[str],
    *,
    threshold: float = 0.9,
) -> dict[str, dict[MatchMode, str]]:
    """One document's outcome per field and mode: `tp`, `tn`, `wrong`, `missed` or `spurious`
    (see `score_fields`), for the `fields` that `expected` names (a field it does not name is
    not scored). Each value is normalised once for all three modes."""
    got: Mapping[str, Any] = predicted or {}
    found: dict[str, dict[MatchMode, str]] = {}
    for name in fields:
        if name not in expected:
            continue
        a, b = expected[name], got.get(name)
        if _same_filled(a, b):  # the common case: nothing to normalise
            found[name] = _ALL_TP
            continue
        tree_a, tree_b = _tree(a), _tree(b)
        found[name] = {mode: _outcome(a, b, tree_a, tree_b, mode, threshold) for mode in MODES}
    return found


def tally_fields(
    documents: Sequence[Mapping[str, Mapping[MatchMode, str]]],
    fields: Sequence[str],
    *,
    threshold: float = 0.9,
) -> FieldScores:
    """`FieldScores` from each document's `field_outcomes`: a field missing from a document's
    outcomes was not named by its case and is not counted; a document with none of `fields` is
    not scored."""
    names = list(fields)
    scored = [o for o in documents if any(name in o for name in names)]
    n = len(scored)
    tally = {name: {mode: dict.fromkeys(_OUTCOMES, 0) for mode in MODES} for name in names}
    documents_right = dict.fromkeys(MODES, 0)
    cells = [(name, mode, tally[name][mode]) for name in names for mode in MODES]
    for outcomes in scored:
        wrong: set[str] = set()
        for name, mode, counts in cells:
            if name not in outcomes:
                continue
            outcome = outcomes[name][mode]
            counts[outcome] += 1
            if outcome not in _RIGHT:
                wrong.add(mode)
        for mode in MODES:
            documents_right[mode] += mode not in wrong
    per_field = {
        name: {mode: FieldCounts(**counts) for mode, counts in modes.items()}
        for name, modes in tally.items()
    }
    micro = {
        mode: FieldCounts(**{o: sum(tally[name][mode][o] for name in names) for o in _OUTCOMES})
        for mode in MODES
    }
    return FieldScores(
        n=n,
        fields=names,
        threshold=threshold,
        per_field=per_field,
        micro=micro,
        all_fields_right={
            mode: _share(documents_right[mode], n) if names else None for mode in MODES
        },
    )


# --- routes ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class RouteScores(_Record):
    """Where runs ended against where they should have (see `score_routes`)."""

    n: int
    """Cases scored."""
    correct: int
    """Cases that ended where expected."""
    accuracy: float | None
    """correct / n; None when there are no cases."""
    review_recall: float | None
    """Of the cases that should have gone to review, the share that did; None if there were none."""
    review_precision: float | None
    """Of the cases that went to review, the share that should have; None if none went."""
    missed_reviews: int
    """Cases that should have gone to review or been rejected but were accepted: the dangerous
    error, a wrong result flowing downstream unseen."""
    unneeded_reviews: int
    """Cases that should have been accepted but went to review: a person's time spent."""
    labels: list[str]
    """The confusion matrix's order: always `ROUTES`."""
    confusion: list[list[int]]
    """confusion[i][j]: cases expected at labels[i] that ended at labels[j]."""


def score_routes(expected: Sequence[str], actual: Sequence[str]) -> RouteScores:
    """Scores where runs ended ("accept", "review", "reject", "fail") against where they should.

    Counts: `accuracy`, the share ending where expected; `review_recall`, of the cases expected
    at review, the share that went there; `review_precision`, of the cases that went to review,
    the share expected there; `missed_reviews`, cases expected at review or reject that were
    accepted; `unneeded_reviews`, cases expected to be accepted that went to review. The
    confusion matrix (rows expected, columns actual) always has all four routes, in `ROUTES`
    order, so matrices from different runs line up.
    """
    n = _same_length(expected=expected, actual=actual)
    for name, values in (("expected", expected), ("actual", actual)):
        for index, value in enumerate(values):
            if value not in ROUTES:
                raise ValueError(
                    f"`{name}` item {index} is {value!r}, not a route: use one of "
                    f"{', '.join(ROUTES)}"
                )
    confusion = _confusion(expected, actual, ROUTES)
    accept, review, reject = (ROUTES.index(route) for route in ("accept", "review", "reject"))
    correct = sum(confusion[i][i] for i in range(len(ROUTES)))
    return RouteScores(
        n=n,
        correct=correct,
        accuracy=_share(correct, n),
        review_recall=_share(confusion[review][review], sum(confusion[review])),
        review_precision=_share(confusion[review][review], sum(row[review] for row in confusion)),
        missed_reviews=confusion[review][accept] + confusion[reject][accept],
        unneeded_reviews=confusion[accept][review],
        labels=list(ROUTES),
        confusion=confusion,
    )


# --- distributions -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Distribution(_Record):
    """A per-document measure (cost, tokens, latency) summarised; None where nothing is known."""

    count: int
    """Values given, known or not."""
    known: int
    """Values that are not None."""
    total: float | None
    mean: float | None
    median: float | None
    p90: float | None
    min: float | None
    max: float | None


def _quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of k sorted values x[0..k-1], interpolating linearly like numpy's default:
    h = (k - 1) * q, i = floor(h), quantile = x[i] + (h - i) * (x[i + 1] - x[i])."""
    h = (len(ordered) - 1) * q
    low = math.floor(h)
    if low + 1 >= len(ordered):
        return ordered[low]
    return ordered[low] + (h - low) * (ordered[low + 1] - ordered[low])


def summarise(values: Sequence[float | None]) -> Distribution:
    """Summarises the known values: None is unknown (a cost the provider did not report), counted
    in `count` but never as 0. total, mean, median, p90 (linear interpolation, see `_quantile`),
    min and max are over the known values and None when there are none. NaN is refused: pass
    None for an unknown."""
    known = [float(v) for v in values if v is not None]
    if any(math.isnan(v) for v in known):
        raise ValueError("a value is NaN; pass None for a value that is not known")
    ordered = sorted(known)
    if not ordered:
        return Distribution(
            count=len(values),
            known=0,
            total=None,
            mean=None,
            median=None,
            p90=None,
            min=None,
            max=None,
        )
    total = math.fsum(ordered)
    return Distribution(
        count=len(values),
        known=len(ordered),
        total=total,
        mean=total / len(ordered),
        median=_quantile(ordered, 0.5),
        p90=_quantile(ordered, 0.9),
        min=ordered[0],
        max=ordered[-1],
    )
