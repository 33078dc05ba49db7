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
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from handrail.evals.scorers import _Record, _same_length

__all__ = [
    "CurvePoint",
    "ReliabilityBin",
    "expected_calibration_error",
    "calibration_error",
    "lowest_threshold",
    "reliability_table",
    "review_curve",
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
    edges = [i / bins for i in range(bins)]
    members: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for confidence, right in _checked(confidences, correct):
        members[bisect_right(edges, confidence) - 1].append((confidence, right))
    table = []
    for i, cases in enumerate(members):
        count = len(cases)
        table.append(
            ReliabilityBin(
                lo=edges[i],
                hi=(i + 1) / bins,
                count=count,
                mean_confidence=math.fsum(c for c, _ in cases) / count if count else None,
                accuracy=sum(r for _, r in cases) / count if count else None,
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


def review_curve(confidences: Sequence[float], correct: Sequence[bool]) -> list[CurvePoint]:
    """One point per distinct confidence used as the threshold, sorted by threshold ascending:
    the first (the lowest confidence) accepts everything; a last point, at the smallest number
    above every confidence, accepts nothing (review rate 1, accepted_accuracy None). Empty
    without cases. Thresholds between two points behave like the higher one."""
    pairs = sorted(_checked(confidences, correct))
    n = len(pairs)
    if not n:
        return []
    right_from = [0] * (n + 1)  # right_from[i]: cases right among pairs[i:]
    for i in range(n - 1, -1, -1):
        right_from[i] = right_from[i + 1] + pairs[i][1]
    points = []
    for i, (confidence, _) in enumerate(pairs):
        if i and pairs[i - 1][0] == confidence:
            continue
        points.append(
            CurvePoint(
                threshold=confidence,
                accepted=n - i,
                review_rate=i / n,
                accepted_accuracy=right_from[i] / (n - i),
            )
        )
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
    pairs = sorted(_checked(confidences, correct))
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
