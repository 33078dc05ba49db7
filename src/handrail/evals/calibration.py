"""Confidence scorers: is a node's confidence honest, and which gate threshold buys what.

Each takes one confidence (in [0, 1]) and one "was it right" per case, in case order, and is
pure, like the scorers in `handrail.evals.scorers`.

- `expected_calibration_error` and `reliability_table`: whether cases given confidence 0.8 are
  right 80% of the time.
- `review_curve` and `threshold_for`: for each gate threshold, how much goes to review and how
  accurate what is accepted is; and the threshold that reaches a target accuracy or review rate.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from handrail.evals.scorers import _Record, _same_length

__all__ = [
    "CurvePoint",
    "ReliabilityBin",
    "expected_calibration_error",
    "ConfidenceSummary",
    "calibration_error",
    "lowest_threshold",
    "reliability_table",
    "review_curve",
    "summarise_confidence",
    "threshold_for",
]


def _checked(confidences: Sequence[float], correct: Sequence[bool]) -> list[tuple[float, bool]]:
    _same_length(confidences=confidences, correct=correct)
    values = [float(c) for c in confidences]
    if values and not (min(values) >= 0 and max(values) <= 1 and all(v == v for v in values)):
        index = next(i for i, v in enumerate(values) if not 0 <= v <= 1)  # also finds NaN
        raise ValueError(f"confidence {index} is {confidences[index]!r}, not between 0 and 1")
    return list(zip(values, map(bool, correct), strict=True))


def _check_target(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{name}={value} is not between 0 and 1 (a share, 0.95 = 95%)")


# --- calibration -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ReliabilityBin(_Record):
    """One bin of confidences: cases with lo <= confidence < hi (the last bin includes 1.0)."""

    lo: float
    """The bin's lower edge, i / bins."""
    hi: float
    """The bin's upper edge, (i + 1) / bins."""
    count: int
    """Cases whose confidence falls in the bin."""
    mean_confidence: float | None
    """Their mean confidence; None for an empty bin."""
    accuracy: float | None
    """The share of them that were right; None for an empty bin."""


def reliability_table(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> list[ReliabilityBin]:
    """`bins` equal-width bins over [0, 1], every one kept (empty ones with None), so a
    reliability diagram has all its bars. Bin i holds i/bins <= confidence < (i+1)/bins; 1.0 goes
    in the last bin. A well-calibrated node has accuracy close to mean_confidence in each bin."""
    if bins < 1:
        raise ValueError(f"bins={bins}: need at least one bin")
    return _table(_checked(confidences, correct), bins)


def _table(pairs: Sequence[tuple[float, bool]], bins: int) -> list[ReliabilityBin]:
    ordered = sorted(pairs)  # then each bin is a slice: no per-case Python loop
    confidences = [c for c, _ in ordered]
    rights = [r for _, r in ordered]
    edges = [i / bins for i in range(bins)]
    starts = [bisect_left(confidences, edge) for edge in edges] + [len(ordered)]
    table = []
    for i in range(bins):
        a, b = starts[i], starts[i + 1]
        count = b - a
        table.append(
            ReliabilityBin(
                lo=edges[i],
                hi=(i + 1) / bins,
                count=count,
                mean_confidence=math.fsum(confidences[a:b]) / count if count else None,
                accuracy=sum(rights[a:b]) / count if count else None,
            )
        )
    return table


def expected_calibration_error(
    confidences: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> float | None:
    """The expected calibration error: over the `reliability_table` bins, the mean of
    |accuracy - mean_confidence| weighted by each bin's share of the cases. 0 is perfectly
    calibrated (confidence 0.8 on 10 cases, 8 of them right); 0.35 is 0.95 with 6 of 10 right.
    None when there are no cases."""
    return calibration_error(reliability_table(confidences, correct, bins))


def calibration_error(table: Sequence[ReliabilityBin]) -> float | None:
    """The expected calibration error of a `reliability_table` already made."""
    n = sum(b.count for b in table)
    if not n:
        return None
    return math.fsum(
        b.count / n * abs(b.accuracy - b.mean_confidence)
        for b in table
        if b.accuracy is not None and b.mean_confidence is not None
    )


# --- the review curve --------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)  # not frozen: a curve has a point per case; 2x faster
class CurvePoint(_Record):
    """A gate threshold: accept when confidence >= threshold, send the rest to review."""

    threshold: float
    """The gate's accept threshold."""
    accepted: int
    """Cases accepted at this threshold."""
    review_rate: float
    """The share of cases sent to review (confidence < threshold)."""
    accepted_accuracy: float | None
    """The share of the accepted cases that were right; None when nothing is accepted."""


def review_curve(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    every: float | None = None,
    keep: Collection[float] = (),
) -> list[CurvePoint]:
    """One point per distinct confidence used as the threshold, sorted by threshold ascending:
    the first (the lowest confidence) accepts everything; a last point, at the smallest number
    above every confidence, accepts nothing (review rate 1, accepted_accuracy None). Empty
    without cases. Thresholds between two points behave like the higher one.

    With `every` (e.g. 0.01), only the first point at or past each multiple of `every` in review
    rate is kept, with the first and last points and the thresholds in `keep`: a curve of about
    1 / `every` points for a plot or a report, however many cases (`threshold_for` wants the
    whole curve)."""
    return _curve(sorted(_checked(confidences, correct)), every, keep)


def _curve(
    pairs: Sequence[tuple[float, bool]], every: float | None, keep: Collection[float]
) -> list[CurvePoint]:
    n = len(pairs)
    if not n:
        return []
    right = sum(r for _, r in pairs)  # cases right among pairs[i:]
    points = []
    step = 0
    for i, (confidence, ok) in enumerate(pairs):
        if not (i and pairs[i - 1][0] == confidence):
            rate = i / n
            if every is None or rate >= step * every or confidence in keep:
                points.append(
                    CurvePoint(
                        threshold=confidence,
                        accepted=n - i,
                        review_rate=rate,
                        accepted_accuracy=right / (n - i),
                    )
                )
                if every is not None:
                    while step * every <= rate:
                        step += 1
        right -= ok
    points.append(
        CurvePoint(
            threshold=math.nextafter(pairs[-1][0], math.inf),
            accepted=0,
            review_rate=1.0,
            accepted_accuracy=None,
        )
    )
    return points


def lowest_threshold(
    confidences: Sequence[float], correct: Sequence[bool], target_accuracy: float
) -> CurvePoint | None:
    """`threshold_for(review_curve(confidences, correct), target_accuracy=...)` in one pass,
    without building the curve (per-field thresholds of large suites)."""
    _check_target("target_accuracy", target_accuracy)
    return _lowest(sorted(_checked(confidences, correct)), target_accuracy)


def _lowest(pairs: Sequence[tuple[float, bool]], target_accuracy: float) -> CurvePoint | None:
    n = len(pairs)
    right = sum(r for _, r in pairs)  # right among pairs[i:]
    for i, (confidence, ok) in enumerate(pairs):
        if not (i and pairs[i - 1][0] == confidence) and right / (n - i) >= target_accuracy:
            return CurvePoint(
                threshold=confidence,
                accepted=n - i,
                review_rate=i / n,
                accepted_accuracy=right / (n - i),
            )
        right -= ok
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfidenceSummary:
    """What an eval report says about one node's confidence (see `summarise_confidence`)."""

    table: list[ReliabilityBin]
    ece: float | None
    curve: list[CurvePoint]
    """Thinned to one point per `every` of review rate, with the chosen thresholds kept."""
    at_accuracy: CurvePoint | None
    """`threshold_for(..., target_accuracy=...)` on the whole curve; None without a target."""
    at_review_rate: CurvePoint | None
    """`threshold_for(..., target_review_rate=...)` on the whole curve; None without one."""


def summarise_confidence(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    target_accuracy: float | None = None,
    target_review_rate: float | None = None,
    every: float = 0.01,
    bins: int = 10,
) -> ConfidenceSummary:
    """The reliability table, ECE, a thinned review curve and the thresholds for the targets,
    checking and sorting the cases once (an eval scores thousands of confidences per node)."""
    pairs = sorted(_checked(confidences, correct))
    at_accuracy = None
    if target_accuracy is not None:
        _check_target("target_accuracy", target_accuracy)
        at_accuracy = _lowest(pairs, target_accuracy)
    at_review_rate = None
    if target_review_rate is not None and pairs:
        at_review_rate = threshold_for(
            _curve(pairs, None, ()), target_review_rate=target_review_rate
        )
    keep = {p.threshold for p in (at_accuracy, at_review_rate) if p is not None}
    table = _table(pairs, bins) if bins >= 1 else []
    return ConfidenceSummary(
        table=table,
        ece=calibration_error(table) if pairs else None,
        curve=_curve(pairs, every, keep),
        at_accuracy=at_accuracy,
        at_review_rate=at_review_rate,
    )


def threshold_for(
    curve: Sequence[CurvePoint],
    *,
    target_accuracy: float | None = None,
    target_review_rate: float | None = None,
) -> CurvePoint | None:
    """The point of `curve` that meets one target (give exactly one), or None when none does.

    - `target_accuracy`: the lowest threshold, so the least review, whose accepted_accuracy is at
      least the target with at least one case accepted.
    - `target_review_rate`: among the points sending at most that share to review, the one whose
      accepted cases are most accurate; on a tie, the lower threshold (less review).
    """
    if (target_accuracy is None) == (target_review_rate is None):
        raise ValueError("give exactly one of target_accuracy= or target_review_rate=")
    measured = [p for p in curve if p.accepted and p.accepted_accuracy is not None]
    if target_accuracy is not None:
        _check_target("target_accuracy", target_accuracy)
        reaching = [p for p in measured if (p.accepted_accuracy or 0) >= target_accuracy]
        return min(reaching, key=lambda p: p.threshold, default=None)
    assert target_review_rate is not None
    _check_target("target_review_rate", target_review_rate)
    within = [p for p in measured if p.review_rate <= target_review_rate]
    return min(within, key=lambda p: (-(p.accepted_accuracy or 0), p.threshold), default=None)
