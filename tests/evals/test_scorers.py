"""The scorers in `handrail.evals.scorers`, on small cases whose numbers are worked out by hand in
the comments: labels, normalisation, field matching in every mode, fields with every empty/filled
combination, routes and distributions."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from handrail.evals.scorers import (
    MODES,
    NO_LABEL,
    ROUTES,
    FieldCounts,
    MatchMode,
    field_match,
    normalise,
    score_fields,
    score_labels,
    score_routes,
    summarise,
)


def _json(result: Any) -> Any:
    """`result.to_dict()` through strict JSON (no NaN) and back: what a report would store."""
    return json.loads(json.dumps(result.to_dict(), allow_nan=False))


# --- labels ------------------------------------------------------------------------------------


def test_labels_with_missing_predictions_and_a_label_never_predicted() -> None:
    scores = score_labels(
        ["billing", "billing", "refund", "refund", "tech", "tech"],
        ["billing", "refund", "refund", None, "billing", None],
        labels=["billing", "refund", "tech", "spam"],
    )
    # Right: case 1 (billing) and case 3 (refund): 2 of 6.
    assert scores.n == 6
    assert scores.correct == 2
    assert scores.accuracy == pytest.approx(2 / 6)
    # The given labels (spam too, though no case has it), then "(none)" for the None predictions.
    assert scores.labels == ["billing", "refund", "tech", "spam", NO_LABEL]
    assert scores.confusion == [
        [1, 1, 0, 0, 0],  # billing: once billing, once refund
        [0, 1, 0, 0, 1],  # refund: once refund, once no label
        [1, 0, 0, 0, 1],  # tech: once billing, once no label
        [0, 0, 0, 0, 0],  # spam
        [0, 0, 0, 0, 0],  # (none) is never expected
    ]
    billing, refund, tech, spam = (
        scores.per_label[k] for k in ("billing", "refund", "tech", "spam")
    )
    # billing: predicted twice (cases 1 and 5), right once; expected twice, found once.
    assert (billing.tp, billing.support, billing.predicted) == (1, 2, 2)
    assert (billing.precision, billing.recall, billing.f1) == (0.5, 0.5, 0.5)
    # refund: predicted in cases 2 and 3, right once; expected twice, found once.
    assert (refund.precision, refund.recall, refund.f1) == (0.5, 0.5, 0.5)
    # tech: never predicted: no precision to speak of, recall 0, F1 0 (it has support).
    assert (tech.tp, tech.support, tech.predicted) == (0, 2, 0)
    assert tech.precision is None
    assert tech.recall == 0.0
    assert tech.f1 == 0.0
    # spam: neither expected nor predicted: nothing to measure.
    assert (spam.precision, spam.recall, spam.f1) == (None, None, None)
    # Macro-F1 over the labels with support (billing, refund, tech): (0.5 + 0.5 + 0) / 3.
    assert scores.macro_f1 == pytest.approx(1 / 3)
    assert NO_LABEL not in scores.per_label


def test_a_label_predicted_but_never_expected_counts_against_precision_not_macro_f1() -> None:
    scores = score_labels(["a", "a"], ["a", "b"])
    # a: tp 1, support 2, predicted 1 -> precision 1, recall 0.5, F1 2*1*0.5/1.5 = 2/3.
    # b: tp 0, support 0, predicted 1 -> precision 0, recall None, F1 None (not in the macro).
    assert scores.labels == ["a", "b"]
    assert scores.confusion == [[1, 1], [0, 0]]
    assert scores.per_label["b"].precision == 0.0
    assert scores.per_label["b"].recall is None
    assert scores.per_label["b"].f1 is None
    assert scores.per_label["a"].f1 == pytest.approx(2 / 3)
    assert scores.macro_f1 == pytest.approx(2 / 3)


def test_labels_not_given_are_ordered_by_first_appearance_expected_before_predicted() -> None:
    scores = score_labels(["b", "a"], ["c", "a"])
    assert scores.labels == ["b", "c", "a"]
    # b -> c, a -> a.
    assert scores.confusion == [[0, 1, 0], [0, 0, 0], [0, 0, 1]]


def test_labels_to_dict_is_json() -> None:
    scores = score_labels(["x", "y"], ["x", None])
    data = _json(scores)
    assert data == {
        "n": 2,
        "correct": 1,
        "accuracy": 0.5,
        # x: F1 1 (found its one case); y: F1 0 (never predicted) -> macro 0.5.
        "macro_f1": 0.5,
        "labels": ["x", "y", "(none)"],
        "confusion": [[1, 0, 0], [0, 0, 1], [0, 0, 0]],
        "per_label": {
            "x": {
                "tp": 1,
                "support": 1,
                "predicted": 1,
                "precision": 1.0,
                "recall": 1.0,
                "f1": 1.0,
            },
            "y": {
                "tp": 0,
                "support": 1,
                "predicted": 0,
                "precision": None,
                "recall": 0.0,
                "f1": 0.0,
            },
        },
    }


def test_labels_without_cases_measure_nothing() -> None:
    scores = score_labels([], [])
    assert (scores.n, scores.accuracy, scores.macro_f1) == (0, None, None)
    assert scores.labels == []
    assert scores.confusion == []


def test_labels_refuse_mismatched_lengths_and_the_reserved_label() -> None:
    with pytest.raises(ValueError, match="`expected` has 2 items but `predicted` has 1"):
        score_labels(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="reserved"):
        score_labels([NO_LABEL], ["a"])


# --- normalise ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # empties
        (None, None),
        ("", None),
        ("  \t\n", None),
        ([], None),
        ({}, None),
        ([None, " "], None),
        ({"a": None}, None),
        ("-", None),
        # text: case, unicode, whitespace, punctuation around it (not inside)
        ("  ACME   Ltd. ", "acme ltd"),
        ("(Harbour & Finch)", "harbour & finch"),
        ("Ｆｉｎｃｈ", "finch"),  # full-width letters, NFKC
        ("Straße", "strasse"),  # case-folded, not just lower-cased
        ("n/a", "n/a"),
        # dates: ISO, day first, the only real reading, written months, a time dropped
        ("2024-12-25", "2024-12-25"),
        ("25/12/2024", "2024-12-25"),
        ("12-25-2024", "2024-12-25"),
        ("03/04/2025", "2025-04-03"),
        ("25 Dec 2024", "2024-12-25"),
        ("Dec 25, 2024", "2024-12-25"),
        ("2024-12-25T10:30:00", "2024-12-25"),
        (date(2024, 12, 25), "2024-12-25"),
        (datetime(2024, 12, 25, 10, 30), "2024-12-25"),
        # amounts and numbers
        ("$1,234.50", "1234.5"),
        ("1.234,50 EUR", "1234.5"),
        ("1 234,50 €", "1234.5"),
        ("RM 12.00", "12"),
        ("rm12.00", "12"),
        ("US$ 5", "5"),
        ("-£3.10", "-3.1"),
        ("1,234", "1234"),
        ("12,50", "12.5"),
        ("1.234", "1.234"),
        ("1.234.567", "1234567"),
        ("0.50", "0.5"),
        (Decimal("1234.50"), "1234.5"),
        (1234.5, "1234.5"),
        (1, "1"),
        (1.0, "1"),
        ("1.00", "1"),
        (-0.0, "0"),
        ("00123", "00123"),  # a leading zero: an identifier, kept as text
        ("eur 12", "eur 12"),  # currency codes are capitals
        ("12 apples", "12 apples"),
        (True, "true"),
        # nested: each leaf normalised, compact JSON with sorted keys, empty entries dropped
        (["A ", "$1.00"], '["a","1"]'),
        ({"b": " X ", "a": None}, '{"b":"x"}'),
        ({"total": "12.00", "date": "25/12/2024"}, '{"date":"2024-12-25","total":"12"}'),
    ],
)
def test_normalise(value: Any, expected: str | None) -> None:
    assert normalise(value) == expected


def test_normalise_reads_pydantic_models_field_by_field() -> None:
    class Line(BaseModel):
        description: str
        amount: float | None = None

    assert (
        normalise(Line(description=" Paper ", amount=4.5))
        == '{"amount":"4.5","description":"paper"}'
    )
    assert normalise(Line(description="  ")) is None


# --- field_match -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "got", "exact", "normalised", "fuzzy"),
    [
        (" ACME ", "ACME", True, True, True),  # exact strips the ends
        ("ACME", "acme", False, True, True),
        (12, "12", True, True, True),  # exact compares str()
        (12.0, "12", False, True, True),
        (12.5, "$12.50", False, True, True),
        ("25/12/2024", date(2024, 12, 25), False, True, True),
        # "harbour finch" (13) vs "harbor finch" (12): one deletion, ratio 1 - 1/25 = 0.96
        ("Harbour Finch", "harbor finch", False, False, True),
        ("Initech", "Globex", False, False, False),
        # numbers and dates are never fuzzy, however close their text
        ("1234.50", "1234.60", False, False, False),
        ("2024-12-25", "2024-12-26", False, False, False),
    ],
)
def test_field_match_modes(
    expected: Any, got: Any, exact: bool, normalised: bool, fuzzy: bool
) -> None:
    assert field_match(expected, got, "exact") is exact
    assert field_match(expected, got, "normalised") is normalised
    assert field_match(expected, got, "fuzzy") is fuzzy


def test_fuzzy_threshold_edge() -> None:
    # "acme" vs "acne": delete m, insert n: indel distance 2 over 8 characters -> 1 - 2/8 = 0.75.
    assert field_match("acme", "acne", "fuzzy", threshold=0.75)
    assert not field_match("acme", "acne", "fuzzy", threshold=0.76)
    # 0.96 (above) is over the default 0.9 but under 0.97.
    assert field_match("harbour finch", "harbor finch", "fuzzy")
    assert not field_match("harbour finch", "harbor finch", "fuzzy", threshold=0.97)


def test_fuzzy_numbers_stay_strict_even_at_threshold_zero() -> None:
    assert not field_match("109.00", "10.9", "fuzzy", threshold=0.0)
    assert field_match("Initech", "Globex", "fuzzy", threshold=0.0)


@pytest.mark.parametrize("mode", MODES)
def test_two_empties_match_and_empty_never_matches_filled(mode: Any) -> None:
    empties: tuple[Any, ...] = (None, "", "   ", [], {})
    for a in empties:
        for b in empties:
            assert field_match(a, b, mode)
        assert not field_match(a, "x", mode, threshold=0.0)
        assert not field_match("x", a, mode, threshold=0.0)


def test_nested_values_match_leaf_by_leaf() -> None:
    want = {"name": "ACME", "total": "$12.00", "lines": [{"amount": 4}, {"amount": 8}]}
    got = {"lines": [{"amount": "4.00"}, {"amount": 8.0}], "total": 12, "name": " acme "}
    assert field_match(want, got, "normalised")
    assert not field_match(want, got, "exact")
    # fuzzy forgives a typo in a text leaf, not in a number leaf, and not a different shape
    assert field_match(["harbour finch", 12], ["harbor finch", "12.00"], "fuzzy")
    assert not field_match(["harbour finch", 12], ["harbor finch", "12.00"], "normalised")
    assert not field_match(["harbour finch", 12], ["harbour finch", 13], "fuzzy")
    assert not field_match(["a", "b"], ["a", "b", "c"], "fuzzy", threshold=0.0)
    assert not field_match({"a": "x"}, {"b": "x"}, "fuzzy", threshold=0.0)


def test_field_match_refuses_bad_options() -> None:
    with pytest.raises(ValueError, match="not one of exact, normalised, fuzzy"):
        field_match("a", "a", "loose")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="between 0 and 1"):
        field_match("a", "a", "fuzzy", threshold=90)


# --- score_fields ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "got", "outcome"),
    [
        # (expected, got, per mode: exact / normalised / fuzzy)
        ("ACME Ltd", "ACME Ltd", ("tp", "tp", "tp")),
        ("ACME Ltd", "acme ltd.", ("wrong", "tp", "tp")),
        ("Harbour Finch", "harbor finch", ("wrong", "wrong", "tp")),
        ("Initech", "Globex", ("wrong", "wrong", "wrong")),
        ("Initech", None, ("missed", "missed", "missed")),
        ("Initech", "  ", ("missed", "missed", "missed")),
        (None, "Globex", ("spurious", "spurious", "spurious")),
        ("", "Globex", ("spurious", "spurious", "spurious")),
        (None, None, ("tn", "tn", "tn")),
        ("", None, ("tn", "tn", "tn")),
    ],
)
def test_every_empty_filled_combination_in_every_mode(
    expected: Any, got: Any, outcome: tuple[str, str, str]
) -> None:
    scores = score_fields([{"vendor": expected}], [{"vendor": got}])
    for mode, want in zip(MODES, outcome, strict=True):
        counts = scores.per_field["vendor"][mode]
        assert counts.n == 1
        found = [o for o in ("tp", "tn", "wrong", "missed", "spurious") if getattr(counts, o)]
        assert found == [want], mode
        # a wrong value is both a false positive and a false negative
        assert counts.fp == int(want in ("wrong", "spurious"))
        assert counts.fn == int(want in ("wrong", "missed"))
        assert counts.accuracy == (1.0 if want in ("tp", "tn") else 0.0)


def test_score_fields_by_hand() -> None:
    expected: list[dict[str, Any]] = [
        {"vendor": "ACME Ltd", "total": 12.5},  # d1
        {"vendor": "Harbour Finch", "total": 40},  # d2
        {"vendor": None, "total": None},  # d3
        {"vendor": "Initech", "total": 7},  # d4
        {"vendor": "", "total": 99},  # d5
        {"vendor": "Umbrella", "total": None},  # d6
    ]
    predicted: list[dict[str, Any] | None] = [
        {"vendor": "acme ltd.", "total": "$12.50"},  # d1: vendor and total right once normalised
        {"vendor": "harbor finch", "total": None},  # d2: vendor fuzzy only; total missed
        {"vendor": "Globex", "total": ""},  # d3: vendor spurious; total both empty
        None,  # d4: no output: both missed
        {"total": 98},  # d5: vendor both empty; total wrong
        {"vendor": "Umbrella", "total": None},  # d6: all right
    ]
    scores = score_fields(expected, predicted)
    assert scores.n == 6
    assert scores.fields == ["vendor", "total"]

    def counts(field: str, mode: MatchMode) -> tuple[int, ...]:
        c = scores.per_field[field][mode]
        return (c.tp, c.tn, c.wrong, c.missed, c.spurious)

    # vendor: d1 wrong/tp/tp, d2 wrong/wrong/tp, d3 spurious, d4 missed, d5 tn, d6 tp
    assert counts("vendor", "exact") == (1, 1, 2, 1, 1)
    assert counts("vendor", "normalised") == (2, 1, 1, 1, 1)
    assert counts("vendor", "fuzzy") == (3, 1, 0, 1, 1)
    # total: d1 wrong/tp/tp, d2 missed, d3 tn, d4 missed, d5 wrong, d6 tn
    assert counts("total", "exact") == (0, 2, 2, 2, 0)
    assert counts("total", "normalised") == (1, 2, 1, 2, 0)
    assert counts("total", "fuzzy") == (1, 2, 1, 2, 0)

    vendor = scores.per_field["vendor"]
    # exact: fp = 2 wrong + 1 spurious = 3, fn = 2 wrong + 1 missed = 3: P = R = F1 = 1/4;
    # accuracy (1 + 1) / 6.
    assert (vendor["exact"].fp, vendor["exact"].fn) == (3, 3)
    assert vendor["exact"].precision == pytest.approx(1 / 4)
    assert vendor["exact"].recall == pytest.approx(1 / 4)
    assert vendor["exact"].f1 == pytest.approx(1 / 4)
    assert vendor["exact"].accuracy == pytest.approx(2 / 6)
    # normalised: fp = fn = 2: P = R = F1 = 2/4; accuracy 3/6.
    assert vendor["normalised"].f1 == pytest.approx(0.5)
    assert vendor["normalised"].accuracy == pytest.approx(0.5)
    # fuzzy: fp = fn = 1: P = R = F1 = 3/4; accuracy 4/6.
    assert vendor["fuzzy"].precision == pytest.approx(3 / 4)
    assert vendor["fuzzy"].accuracy == pytest.approx(4 / 6)

    total = scores.per_field["total"]
    # exact: tp 0, fp 2, fn 4: P = 0/2 = 0 (not None: values were given), R 0, F1 0.
    assert (total["exact"].precision, total["exact"].recall, total["exact"].f1) == (0.0, 0.0, 0.0)
    assert total["exact"].accuracy == pytest.approx(2 / 6)
    # normalised: tp 1, fp 1, fn 3: P 1/2, R 1/4, F1 2 * (1/8) / (3/4) = 1/3; accuracy 3/6.
    assert total["normalised"].precision == pytest.approx(0.5)
    assert total["normalised"].recall == pytest.approx(0.25)
    assert total["normalised"].f1 == pytest.approx(1 / 3)
    assert total["normalised"].accuracy == pytest.approx(0.5)

    # micro (12 field values): exact tp 1, tn 3, wrong 4, missed 3, spurious 1 -> fp 5, fn 7:
    # P 1/6, R 1/8, F1 2*1/(2*1 + 5 + 7) = 1/7, accuracy 4/12.
    micro = scores.micro
    assert (micro["exact"].n, micro["exact"].fp, micro["exact"].fn) == (12, 5, 7)
    assert micro["exact"].precision == pytest.approx(1 / 6)
    assert micro["exact"].recall == pytest.approx(1 / 8)
    assert micro["exact"].f1 == pytest.approx(1 / 7)
    assert micro["exact"].accuracy == pytest.approx(4 / 12)
    # normalised: tp 3, tn 3, fp 3, fn 5: P 1/2, R 3/8, F1 6/14, accuracy 6/12.
    assert micro["normalised"].f1 == pytest.approx(6 / 14)
    assert micro["normalised"].accuracy == pytest.approx(0.5)
    # fuzzy: tp 4, tn 3, fp 2, fn 4: P 4/6, R 4/8, F1 8/14, accuracy 7/12.
    assert micro["fuzzy"].precision == pytest.approx(4 / 6)
    assert micro["fuzzy"].recall == pytest.approx(0.5)
    assert micro["fuzzy"].f1 == pytest.approx(8 / 14)
    assert micro["fuzzy"].accuracy == pytest.approx(7 / 12)

    # every field right: exact d6 only; normalised and fuzzy d1 and d6.
    assert scores.all_fields_right["exact"] == pytest.approx(1 / 6)
    assert scores.all_fields_right["normalised"] == pytest.approx(2 / 6)
    assert scores.all_fields_right["fuzzy"] == pytest.approx(2 / 6)

    data = _json(scores)
    assert data["per_field"]["total"]["normalised"]["f1"] == pytest.approx(1 / 3)
    assert data["micro"]["fuzzy"]["tp"] == 4
    assert data["all_fields_right"]["exact"] == pytest.approx(1 / 6)
    assert data["threshold"] == 0.9


def test_a_field_never_given_has_no_precision_and_f1_zero() -> None:
    # expected once, never given: tp 0, fp 0, fn 1 -> P None, R 0, F1 0; accuracy 1/2 (d2 tn).
    counts = score_fields([{"po": "A1"}, {"po": None}], [None, {"po": None}]).per_field["po"]
    for mode in MODES:
        c = counts[mode]
        assert (c.precision, c.recall, c.f1, c.accuracy) == (None, 0.0, 0.0, 0.5)
    # never expected, given once: P 0/1, R None, F1 None; accuracy 0.
    c = score_fields([{"po": None}], [{"po": "X"}]).per_field["po"]["normalised"]
    assert (c.precision, c.recall, c.f1, c.accuracy) == (0.0, None, None, 0.0)


def test_fields_default_to_expected_keys_in_order_of_first_appearance() -> None:
    scores = score_fields([{"b": 1}, {"a": 2, "b": 3}], [{"b": 1, "extra": 5}, {"a": 2, "b": 3}])
    assert scores.fields == ["b", "a"]
    assert "extra" not in scores.per_field
    # a is not named by d1's expected: d1 is not scored on it (issue 12, E19), only d2 is
    assert scores.per_field["a"]["exact"] == FieldCounts(tp=1, tn=0, wrong=0, missed=0, spurious=0)
    assert scores.per_field["b"]["exact"].n == 2
    chosen = score_fields([{"b": 1, "a": 2}], [{"b": 1, "a": 3}], fields=["a"])
    assert chosen.fields == ["a"]
    assert chosen.all_fields_right["exact"] == 0.0


def test_a_document_is_scored_only_on_the_fields_its_case_names() -> None:
    # issue 12, E19: three fields named, all right; an unnamed field filled: still all right
    expected = [{"vendor": "ACME", "total": 12, "po": None}, {"vendor": "Initech"}]
    predicted = [
        {"vendor": "ACME", "total": 12, "po": None, "currency": "EUR"},
        {"vendor": "Initech", "total": 99, "po": "P-1"},
    ]
    scores = score_fields(expected, predicted, fields=["vendor", "total", "po", "currency"])
    assert scores.all_fields_right == {"exact": 1.0, "normalised": 1.0, "fuzzy": 1.0}
    assert scores.per_field["total"]["exact"].n == 1
    assert scores.per_field["currency"]["exact"].n == 0  # named by no case
    # null is named: "should be empty"; filled, it is spurious
    wrong = score_fields([{"po": None, "vendor": "A"}], [{"po": "P-1", "vendor": "A"}])
    assert wrong.per_field["po"]["exact"].spurious == 1
    assert wrong.all_fields_right["exact"] == 0.0
    # a document naming none of the fields is not scored at all
    none = score_fields(
        [{"vendor": "A"}, {}], [{"vendor": "A"}, {"vendor": "B"}], fields=["vendor"]
    )
    assert none.n == 1 and none.all_fields_right["exact"] == 1.0


def test_score_fields_without_documents_or_fields_measures_nothing() -> None:
    scores = score_fields([], [])
    assert scores.n == 0
    assert scores.fields == []
    assert scores.all_fields_right == {"exact": None, "normalised": None, "fuzzy": None}
    assert scores.micro["exact"] == FieldCounts(tp=0, tn=0, wrong=0, missed=0, spurious=0)
    assert scores.micro["exact"].accuracy is None
    assert _json(scores)["micro"]["fuzzy"]["f1"] is None


def test_score_fields_threshold_is_used_for_fuzzy() -> None:
    # "acme" vs "acne": ratio 0.75.
    loose = score_fields([{"v": "acme"}], [{"v": "acne"}], threshold=0.75)
    strict = score_fields([{"v": "acme"}], [{"v": "acne"}], threshold=0.8)
    assert loose.per_field["v"]["fuzzy"].tp == 1
    assert strict.per_field["v"]["fuzzy"].wrong == 1


def test_score_fields_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="`expected` has 1 items but `predicted` has 0"):
        score_fields([{"a": 1}], [])


# --- routes ------------------------------------------------------------------------------------


def test_routes_by_hand() -> None:
    expected = ["accept", "accept", "review", "review", "review", "reject", "reject", "fail"]
    actual = ["accept", "review", "review", "accept", "review", "accept", "review", "fail"]
    scores = score_routes(expected, actual)
    assert scores.labels == list(ROUTES)
    assert scores.confusion == [
        [1, 1, 0, 0],  # accept: once accepted, once reviewed (unneeded)
        [1, 2, 0, 0],  # review: once accepted (missed), twice reviewed
        [1, 1, 0, 0],  # reject: once accepted (missed), once reviewed
        [0, 0, 0, 1],  # fail
    ]
    # right: 1 + 2 + 0 + 1 = 4 of 8
    assert scores.correct == 4
    assert scores.accuracy == 0.5
    # 3 should have gone to review, 2 did; 4 went to review, 2 should have.
    assert scores.review_recall == pytest.approx(2 / 3)
    assert scores.review_precision == 0.5
    # accepted though it should have been reviewed (case 4) or rejected (case 6)
    assert scores.missed_reviews == 2
    assert scores.unneeded_reviews == 1
    assert _json(scores)["missed_reviews"] == 2


def test_routes_without_reviews_measure_nothing_for_review() -> None:
    scores = score_routes(["accept", "fail"], ["accept", "accept"])
    assert scores.review_recall is None
    assert scores.review_precision is None
    assert scores.missed_reviews == 0
    assert scores.accuracy == 0.5
    empty = score_routes([], [])
    assert (empty.n, empty.accuracy) == (0, None)
    assert empty.confusion == [[0] * 4 for _ in range(4)]


def test_routes_refuse_unknown_values() -> None:
    with pytest.raises(ValueError, match="`actual` item 1 is 'completed', not a route"):
        score_routes(["accept", "accept"], ["accept", "completed"])


# --- summarise ---------------------------------------------------------------------------------


def test_summarise_skips_unknowns_and_interpolates() -> None:
    d = summarise([0.2, None, 0.4, 0.1, None, 0.3])
    # known, sorted: 0.1 0.2 0.3 0.4 (k = 4)
    assert (d.count, d.known) == (6, 4)
    assert d.total == pytest.approx(1.0)
    assert d.mean == pytest.approx(0.25)  # 1.0 / 4, not 1.0 / 6
    # median: h = 3 * 0.5 = 1.5 -> 0.2 + 0.5 * (0.3 - 0.2) = 0.25
    assert d.median == pytest.approx(0.25)
    # p90: h = 3 * 0.9 = 2.7 -> 0.3 + 0.7 * (0.4 - 0.3) = 0.37
    assert d.p90 == pytest.approx(0.37)
    assert (d.min, d.max) == (0.1, 0.4)


def test_summarise_one_to_ten() -> None:
    d = summarise(list(range(1, 11)))
    # h = 9 * 0.5 = 4.5 -> 5 + 0.5 * 1 = 5.5; h = 9 * 0.9 = 8.1 -> 9 + 0.1 * 1 = 9.1
    assert d.median == pytest.approx(5.5)
    assert d.p90 == pytest.approx(9.1)
    assert d.total == 55


def test_summarise_nothing_known_is_none_not_zero() -> None:
    d = summarise([None, None])
    assert (d.count, d.known) == (2, 0)
    assert _json(d) == {
        "count": 2,
        "known": 0,
        "total": None,
        "mean": None,
        "median": None,
        "p90": None,
        "min": None,
        "max": None,
    }
    single = summarise([0.0, None])
    assert (single.known, single.total, single.mean, single.median, single.p90) == (
        1,
        0.0,
        0.0,
        0.0,
        0.0,
    )


def test_summarise_refuses_nan() -> None:
    with pytest.raises(ValueError, match="pass None"):
        summarise([1.0, float("nan")])
