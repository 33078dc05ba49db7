"""The baseline gate: noise passes, a real drop fails, tolerances and the changed cases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from handrail.evals.compare import compare, load_baseline, save_baseline, sign_test
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


def test_three_of_thirty_flipping_is_noise_not_a_regression() -> None:
    before = [True] * 27 + [False] * 3
    after = [False] * 3 + [True] * 24 + [False] * 3  # 3 right -> wrong: 90% -> 80%
    result = compare(report(after), report(before), tolerances={"default": 0.02})

    (row,) = [r for r in result["metrics"] if r["name"] == "category.accuracy"]
    assert row["delta"] == pytest.approx(-0.1)
    assert row["p_value"] == pytest.approx(0.125)
    assert row["regressed"] is False
    assert row["noise"] is True
    assert result["passed"] is True
    assert [c["id"] for c in result["changed_cases"]] == ["case-0", "case-1", "case-2"]
    assert {(c["before"], c["after"]) for c in result["changed_cases"]} == {("right", "wrong")}


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
    def extraction(fields_right: list[int], route_ok: list[bool]) -> dict[str, Any]:
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
            "routing": {"accuracy": sum(route_ok) / n},
            "cases_detail": [
                {
                    "id": f"c{i}",
                    "nodes": {"details": {"correct": k == 3, "fields_right": k}},
                    "route_correct": ok,
                }
                for i, (k, ok) in enumerate(zip(fields_right, route_ok, strict=True))
            ],
        }

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

    before = judged([True] * 20)
    slip = compare(judged([False] * 2 + [True] * 18), before, tolerances={"default": 0.02})
    drop = compare(judged([False] * 8 + [True] * 12), before, tolerances={"default": 0.02})
    (row,) = [r for r in slip["metrics"] if r["name"] == "reply.judge_pass_rate"]
    assert row["p_value"] == pytest.approx(1 / 4) and row["noise"] is True
    assert slip["passed"] is True
    assert drop["passed"] is False
