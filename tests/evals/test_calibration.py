"""Calibration and the review curve (`handrail.evals.calibration`) on small hand-made sets; the
expected numbers are worked out by hand in the comments."""

from __future__ import annotations

import json
import math

import pytest

from handrail.evals.calibration import (
    CurvePoint,
    expected_calibration_error,
    reliability_table,
    review_curve,
    threshold_for,
)

# --- calibration -------------------------------------------------------------------------------


def test_a_perfectly_calibrated_model_has_no_calibration_error() -> None:
    # confidence 0.8 on 10 cases, 8 right: accuracy 0.8 = confidence in the only bin.
    ece = expected_calibration_error([0.8] * 10, [True] * 8 + [False] * 2)
    assert ece == pytest.approx(0.0, abs=1e-12)


def test_an_over_confident_model() -> None:
    # confidence 0.95 on 10 cases, 6 right: |0.6 - 0.95| = 0.35, all the weight in one bin.
    ece = expected_calibration_error([0.95] * 10, [True] * 6 + [False] * 4)
    assert ece == pytest.approx(0.35)


def test_ece_weights_bins_by_their_cases() -> None:
    # bin [0.2, 0.3): 2 cases, mean 0.2, 1 right -> gap |0.5 - 0.2| = 0.3, weight 2/6
    # bin [0.9, 1.0]: 4 cases, mean 0.9, 3 right -> gap |0.75 - 0.9| = 0.15, weight 4/6
    # ECE = 0.3 * 2/6 + 0.15 * 4/6 = 0.1 + 0.1 = 0.2
    confidences = [0.2, 0.2, 0.9, 0.9, 0.9, 0.9]
    correct = [False, True, True, True, True, False]
    assert expected_calibration_error(confidences, correct) == pytest.approx(0.2)
    # With a single bin [0, 1]: mean confidence 4.0/6, accuracy 4/6 -> 0.
    assert expected_calibration_error(confidences, correct, bins=1) == pytest.approx(0.0, abs=1e-12)


def test_reliability_table_keeps_every_bin_and_puts_one_in_the_last() -> None:
    table = reliability_table(
        [0.0, 0.19, 0.2, 0.5, 0.99, 1.0],
        [False, False, True, True, True, False],
        bins=5,
    )
    assert [b.lo for b in table] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert [b.hi for b in table] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert [b.count for b in table] == [2, 1, 1, 0, 2]
    # [0, 0.2): 0.0 and 0.19, mean 0.095, none right; 0.2 opens the next bin.
    assert table[0].mean_confidence == pytest.approx(0.095)
    assert table[0].accuracy == 0.0
    assert table[1].mean_confidence == pytest.approx(0.2)
    assert table[1].accuracy == 1.0
    assert table[2].mean_confidence == pytest.approx(0.5)
    assert table[2].accuracy == 1.0
    # the empty bin stays, with nothing measured
    assert (table[3].mean_confidence, table[3].accuracy) == (None, None)
    # [0.8, 1.0]: 0.99 (right) and 1.0 (wrong): mean 0.995, accuracy 0.5
    assert table[4].mean_confidence == pytest.approx(0.995)
    assert table[4].accuracy == 0.5
    assert json.loads(json.dumps([b.to_dict() for b in table], allow_nan=False))[3] == {
        "lo": pytest.approx(0.6),
        "hi": pytest.approx(0.8),
        "count": 0,
        "mean_confidence": None,
        "accuracy": None,
    }


def test_calibration_without_cases() -> None:
    assert expected_calibration_error([], []) is None
    table = reliability_table([], [])
    assert len(table) == 10
    assert all(b.count == 0 and b.accuracy is None for b in table)


@pytest.mark.parametrize("confidence", [1.2, -0.1, math.nan])
def test_calibration_refuses_confidences_outside_zero_to_one(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence 1 is"):
        expected_calibration_error([0.5, confidence], [True, True])


def test_calibration_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one bin"):
        reliability_table([0.5], [True], bins=0)
    with pytest.raises(ValueError, match="`confidences` has 2 items but `correct` has 1"):
        review_curve([0.5, 0.6], [True])


# --- the review curve --------------------------------------------------------------------------

# sorted by confidence: 0.3 wrong, 0.6 wrong, 0.6 right, 0.9 right, 0.9 right, 0.95 right
CONFIDENCES = [0.9, 0.6, 0.9, 0.3, 0.6, 0.95]
CORRECT = [True, False, True, False, True, True]


def test_review_curve_by_hand() -> None:
    curve = review_curve(CONFIDENCES, CORRECT)
    assert [(p.threshold, p.accepted) for p in curve[:-1]] == [
        (0.3, 6),  # accepts everything
        (0.6, 5),
        (0.9, 3),
        (0.95, 1),
    ]
    # review rates: 0, 1/6, 3/6, 5/6, then 1 for the point accepting nothing
    assert [p.review_rate for p in curve] == pytest.approx([0, 1 / 6, 0.5, 5 / 6, 1])
    # accepted accuracy: 4/6, 4/5 (drops the wrong 0.3), 3/3, 1/1, nothing accepted
    assert [p.accepted_accuracy for p in curve[:-1]] == pytest.approx([4 / 6, 0.8, 1.0, 1.0])
    last = curve[-1]
    assert (last.accepted, last.accepted_accuracy) == (0, None)
    # the smallest threshold above every confidence: accepting nothing
    assert 0.95 < last.threshold < 0.95 + 1e-9
    assert [p.threshold for p in curve] == sorted(p.threshold for p in curve)
    assert json.loads(json.dumps([p.to_dict() for p in curve], allow_nan=False))[-1] == {
        "threshold": last.threshold,
        "accepted": 0,
        "review_rate": 1.0,
        "accepted_accuracy": None,
    }


def test_review_curve_edges() -> None:
    assert review_curve([], []) == []
    curve = review_curve([1.0, 1.0], [True, False])
    # one distinct confidence: accept both (accuracy 1/2), then a point above 1.0 accepting none
    assert [(p.threshold, p.accepted, p.accepted_accuracy) for p in curve] == [
        (1.0, 2, 0.5),
        (math.nextafter(1.0, 2.0), 0, None),
    ]


def test_threshold_for_a_target_accuracy_is_the_lowest_that_reaches_it() -> None:
    curve = review_curve(CONFIDENCES, CORRECT)
    # 0.3 gives 4/6 < 0.8; 0.6 gives 4/5 = 0.8: reached.
    point = threshold_for(curve, target_accuracy=0.8)
    assert point is not None
    assert point.threshold == 0.6
    assert point.review_rate == pytest.approx(1 / 6)
    # 1.0 first at 0.9 (0.95 reaches it too, with more review)
    point = threshold_for(curve, target_accuracy=1.0)
    assert point is not None and point.threshold == 0.9
    # 0.5: accepting everything (4/6) is enough
    point = threshold_for(curve, target_accuracy=0.5)
    assert point is not None and point.threshold == 0.3


def test_threshold_for_an_unreachable_accuracy_is_none() -> None:
    # the most confident case is wrong: 0.5 accepts both (1/2), 0.9 accepts the wrong one (0/1)
    curve = review_curve([0.9, 0.5], [False, True])
    assert threshold_for(curve, target_accuracy=0.6) is None
    assert threshold_for([], target_accuracy=0.6) is None


def test_threshold_for_a_target_review_rate_is_the_most_accurate_within_it() -> None:
    curve = review_curve(CONFIDENCES, CORRECT)
    # at most 0.2 reviewed: 0.3 (0 reviewed, 4/6) or 0.6 (1/6 reviewed, 0.8): 0.6
    point = threshold_for(curve, target_review_rate=0.2)
    assert point is not None and point.threshold == 0.6
    # at most 0.9: 0.9 and 0.95 both give 1.0; the tie goes to the lower threshold, less review
    point = threshold_for(curve, target_review_rate=0.9)
    assert point is not None and point.threshold == 0.9
    # none reviewed: accept everything
    point = threshold_for(curve, target_review_rate=0.0)
    assert point is not None and point.threshold == 0.3
    # all may go to review: the point accepting nothing has no accuracy and is never chosen
    point = threshold_for(curve, target_review_rate=1.0)
    assert point is not None and point.threshold == 0.9


def test_threshold_for_an_unreachable_review_rate_is_none() -> None:
    # a hand-made curve whose every point reviews half or more
    curve = [
        CurvePoint(threshold=0.5, accepted=2, review_rate=0.5, accepted_accuracy=1.0),
        CurvePoint(threshold=0.7, accepted=1, review_rate=0.75, accepted_accuracy=1.0),
    ]
    assert threshold_for(curve, target_review_rate=0.2) is None
    assert threshold_for([], target_review_rate=0.2) is None


def test_threshold_for_needs_exactly_one_target_in_range() -> None:
    curve = review_curve(CONFIDENCES, CORRECT)
    with pytest.raises(ValueError, match="exactly one"):
        threshold_for(curve)
    with pytest.raises(ValueError, match="exactly one"):
        threshold_for(curve, target_accuracy=0.9, target_review_rate=0.1)
    with pytest.raises(ValueError, match="target_accuracy=95 is not between 0 and 1"):
        threshold_for(curve, target_accuracy=95)


def test_lowest_threshold_is_threshold_for_on_the_whole_curve() -> None:
    import random

    from handrail.evals.calibration import lowest_threshold

    rng = random.Random(3)
    for _ in range(200):
        n = rng.randint(1, 30)
        confidences = [rng.choice([0.2, 0.5, 0.7, 0.9, 1.0, rng.random()]) for _ in range(n)]
        correct = [rng.random() < c for c in confidences]
        target = rng.choice([0.5, 0.8, 0.9, 1.0])
        whole = threshold_for(review_curve(confidences, correct), target_accuracy=target)
        assert lowest_threshold(confidences, correct, target) == whole


def test_a_thinned_curve_keeps_its_ends_the_kept_thresholds_and_whole_curve_values() -> None:
    import itertools
    import random

    rng = random.Random(5)
    confidences = [rng.random() for _ in range(3000)]
    correct = [rng.random() < c for c in confidences]
    whole = review_curve(confidences, correct)
    chosen = whole[1234]
    thin = review_curve(confidences, correct, every=0.01, keep={chosen.threshold})

    assert len(whole) == 3001
    assert 100 <= len(thin) <= 103
    assert thin[0] == whole[0] and thin[-1] == whole[-1]
    assert chosen in thin
    by_threshold = {p.threshold: p for p in whole}
    assert all(by_threshold[p.threshold] == p for p in thin)
    rates = [p.review_rate for p in thin]
    assert all(b - a <= 0.01 + 1 / 3000 for a, b in itertools.pairwise(rates))


def test_reliability_bins_hold_exactly_the_cases_between_their_edges() -> None:
    import random

    rng = random.Random(9)
    confidences = [
        rng.choice([0.0, 0.1, 0.2, 0.3, 0.7, 0.9, 1.0, rng.random()]) for _ in range(500)
    ]
    correct = [rng.random() < 0.6 for _ in confidences]
    table = reliability_table(confidences, correct)
    for index, row in enumerate(table):
        inside = [
            (c, r)
            for c, r in zip(confidences, correct, strict=True)
            if row.lo <= c < row.hi or (index == len(table) - 1 and c == 1.0)
        ]
        assert row.count == len(inside)
        if inside:
            assert row.accuracy == pytest.approx(sum(r for _, r in inside) / len(inside))
            assert row.mean_confidence == pytest.approx(sum(c for c, _ in inside) / len(inside))
