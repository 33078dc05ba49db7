"""The baseline gate: noise passes, a real drop fails, tolerances and the changed cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handrail.evals.compare import (
    compare,
    flips_needed,
    load_baseline,
    save_baseline,
    sign_test,
)
from handrail.exceptions import InputError


def report(right: list[bool], *, node: str = "category") -> dict[str, Any]:
    """A classification report whose cases are right or wrong as given."""
    return {
        "nodes": {
            node: {
                "type": "classification",
                "scores": {"accuracy": sum(right) / len(right), "macro_f1": None},
            }
        },
        "routing": None,
        "cases_detail": [
            {"id": f"case-{i}", "nodes": {node: {"correct": ok}}, "route_correct": None}
            for i, ok in enumerate(right)
        ],
    }


def test_sign_test_by_hand() -> None:
    assert sign_test(0, 0) == 1.0
    assert sign_test(3, 0) == 1 / 8  # all three flips the wrong way: (1/2)^3
    assert sign_test(2, 1) == 4 / 8  # P(X >= 2 | n=3) = (3 + 1) / 8
    assert sign_test(10, 0) == 1 / 1024
    assert sign_test(0, 5) == 1.0


def test_three_of_thirty_flipping_cannot_be_tested_so_the_tolerance_gates() -> None:
    # issue 12 E20: with 3 flips the sign test's smallest p is 1/8: it can never say "not noise",
    # so the drop is gated on the tolerance, and the row says why
    before = [True] * 27 + [False] * 3
    after = [False] * 3 + [True] * 24 + [False] * 3  # 3 right -> wrong: 90% -> 80%
    result = compare(report(after), report(before), tolerances={"default": 0.02})

    (row,) = [r for r in result["metrics"] if r["name"] == "category.accuracy"]
    assert row["delta"] == pytest.approx(-0.1)
    assert row["p_value"] == pytest.approx(0.125)
    assert (row["worse"], row["better"]) == (3, 0)
    assert row["gate"] == "tolerance"
    assert row["why"] == (
        "3 cases changed; the sign test cannot reach p < 0.05 with fewer than 5: gated on the "
        "tolerance"
    )
    assert row["regressed"] is True and row["noise"] is False
    assert result["passed"] is False
    assert result["summary"] == "regressed: category.accuracy dropped beyond the tolerance"
    assert [c["id"] for c in result["changed_cases"]] == ["case-0", "case-1", "case-2"]
    assert {(c["before"], c["after"]) for c in result["changed_cases"]} == {("right", "wrong")}


def test_mixed_flips_on_a_big_enough_sample_are_noise_and_the_pass_says_so() -> None:
    before = [True] * 27 + [False] * 3
    after = [False] * 7 + [True] * 20 + [True] * 3  # 7 right -> wrong, 3 wrong -> right
    result = compare(report(after), report(before), tolerances={"default": 0.02})

    (row,) = [r for r in result["metrics"] if r["name"] == "category.accuracy"]
    assert row["p_value"] == pytest.approx(176 / 1024)  # P(X >= 7 | n = 10)
    assert (row["gate"], row["why"]) == ("sign test", None)
    assert row["regressed"] is False and row["noise"] is True
    assert result["passed"] is True
    assert result["right_to_wrong"] == 7
    assert result["why_passed"] == "category.accuracy within noise (p = 0.172 ≥ 0.05)"
    assert result["summary"] == (
        "passed, but 7 cases went right → wrong: category.accuracy within noise (p = 0.172 ≥ 0.05)"
    )


def extraction(fields_right: list[int], route_ok: list[bool] | None = None) -> dict[str, Any]:
    """An extraction report of 3 fields per case, each case with its number of right fields."""
    n = len(fields_right)
    return {
        "nodes": {
            "details": {
                "type": "extraction",
                "match": "normalised",
                "scores": {
                    "micro": {"normalised": {"f1": sum(fields_right) / (3 * n)}},
                    "all_fields_right": {"normalised": fields_right.count(3) / n},
                },
            }
        },
        "routing": {"accuracy": sum(route_ok) / n} if route_ok else None,
        "cases_detail": [
            {
                "id": f"c{i}",
                "nodes": {"details": {"correct": k == 3, "fields_right": k}},
                "route_correct": route_ok[i] if route_ok else None,
            }
            for i, k in enumerate(fields_right)
        ],
    }


def test_a_nine_case_suite_cannot_pass_a_big_drop_as_noise() -> None:
    # issue 12 E20: on 9 cases, all-fields-right 0.667 -> 0.333 and F1 down by a quarter both
    # "passed" (3 flips: p = 0.125). Too small a sample for the test: the tolerance gates.
    before = extraction([3] * 6 + [2] * 3)
    after = extraction([3] * 3 + [1] * 3 + [2] * 3)
    for min_sample in (20, 0):  # below min_sample, and too few flips to test
        result = compare(after, before, tolerances={"default": 0.02}, min_sample=min_sample)
        rows = {r["name"]: r for r in result["metrics"]}
        assert rows["details.all_fields_right"]["current"] == pytest.approx(3 / 9)
        assert all(r["regressed"] and r["gate"] == "tolerance" for r in rows.values())
        assert result["passed"] is False
    small = compare(after, before, min_sample=20)["metrics"][0]["why"]
    assert small.startswith("9 cases scored by both runs, fewer than min_sample (20)")


def test_alpha_sets_how_many_flips_a_test_needs() -> None:
    assert flips_needed(0.05) == 5 and flips_needed(0.01) == 7 and flips_needed(0.2) == 3
    before = [True] * 30
    after = [False] * 5 + [True] * 25  # 5 of 5 flips the wrong way: p = 1/32
    strict = compare(report(after), report(before), alpha=0.01, tolerances={"default": 0.02})
    (row,) = [r for r in strict["metrics"] if r["name"] == "category.accuracy"]
    assert row["gate"] == "tolerance" and "fewer than 7" in row["why"]
    assert row["regressed"] is True
    with pytest.raises(ValueError, match="alpha must be between 0 and 1"):
        compare(report(after), report(before), alpha=1.5)


def test_a_real_drop_fails() -> None:
    before = [True] * 27 + [False] * 3
    after = [False] * 10 + [True] * 17 + [False] * 3  # 10 right -> wrong: 90% -> 56.7%
    result = compare(report(after), report(before), tolerances={"default": 0.02})

    (row,) = [r for r in result["metrics"] if r["name"] == "category.accuracy"]
    assert row["p_value"] == pytest.approx(1 / 1024)
    assert row["regressed"] is True
    assert result["passed"] is False


def test_a_drop_within_tolerance_passes_even_when_significant() -> None:
    before = [True] * 100
    after = [False] * 6 + [True] * 94  # p = 1/64, but 6% is within a 10% tolerance
    result = compare(report(after), report(before), tolerances={"category.accuracy": 0.10})
    (row,) = [r for r in result["metrics"] if r["name"] == "category.accuracy"]
    assert row["tolerance"] == 0.10
    assert row["regressed"] is False
    assert row["noise"] is False
    assert result["passed"] is True
    assert result["summary"] == (
        "passed, but 6 cases went right → wrong: category.accuracy within its tolerance "
        "(-0.060, allowed -0.100)"
    )


def test_improvements_and_unchanged_pass() -> None:
    before = [False] * 10 + [True] * 20
    assert compare(report(before), report(before))["passed"] is True
    better = compare(report([True] * 30), report(before))
    assert better["passed"] is True
    assert {(c["before"], c["after"]) for c in better["changed_cases"]} == {("wrong", "right")}


def test_a_metric_without_paired_verdicts_is_gated_on_tolerance_alone() -> None:
    now = report([True] * 10)
    then = report([True] * 10)
    now["nodes"]["category"]["scores"]["macro_f1"] = 0.70
    then["nodes"]["category"]["scores"]["macro_f1"] = 0.80
    result = compare(now, then, tolerances={"default": 0.05})
    (row,) = [r for r in result["metrics"] if r["name"] == "category.macro_f1"]
    assert row["p_value"] is None and row["test"] is None
    assert row["regressed"] is True


def test_routing_and_extraction_metrics_are_compared() -> None:
    before = extraction([3] * 12, [True] * 12)
    after = extraction([1] * 8 + [3] * 4, [False] * 8 + [True] * 4)
    result = compare(after, before, tolerances={"default": 0.02})
    rows = {r["name"]: r for r in result["metrics"]}
    assert set(rows) == {"details.all_fields_right", "details.f1", "routing.accuracy"}
    assert all(r["regressed"] for r in rows.values())
    assert rows["details.f1"]["p_value"] == pytest.approx(1 / 256)
    assert result["passed"] is False
    assert {c["node"] for c in result["changed_cases"]} == {"details", "route"}


def test_baselines_round_trip_and_bad_files_say_what_to_do(tmp_path: Path) -> None:
    saved = report([True, False])
    saved["timing"] = {"run_s": 1.0}
    path = save_baseline(saved, tmp_path / "deep" / "baseline.json")
    loaded = load_baseline(path)
    assert loaded["nodes"] == saved["nodes"]
    assert "timing" not in loaded

    with pytest.raises(InputError, match="does not exist; write one with `handrail eval SUITE"):
        load_baseline(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="is not a saved eval report"):
        load_baseline(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(InputError, match="no `nodes`/`cases_detail`"):
        load_baseline(tmp_path / "other.json")


def test_the_judges_pass_rate_is_gated_on_its_verdicts() -> None:
    def judged(passes: list[bool]) -> dict[str, Any]:
        return {
            "nodes": {
                "reply": {
                    "type": "text",
                    "checks": {},
                    "judge": {"pass_rate": sum(passes) / len(passes)},
                }
            },
            "cases_detail": [
                {"id": f"r{i}", "nodes": {"reply": {"judge": {"passed": ok, "confidence": 0.9}}}}
                for i, ok in enumerate(passes)
            ],
        }

    before = judged([True] * 17 + [False] * 3)
    # 7 verdicts worse, 3 better: p = 176/1024, noise
    slip = compare(judged([False] * 7 + [True] * 13), before, tolerances={"default": 0.02})
    drop = compare(judged([False] * 8 + [True] * 12), judged([True] * 20))
    (row,) = [r for r in slip["metrics"] if r["name"] == "reply.judge_pass_rate"]
    assert row["p_value"] == pytest.approx(176 / 1024) and row["noise"] is True
    assert slip["passed"] is True
    assert drop["passed"] is False
