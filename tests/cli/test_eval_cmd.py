"""`handrail eval`: the terminal report, JSON, HTML, the baseline gate's exit codes, recordings
and a malformed suite, on a copy of the support-triage suite with the offline fake model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import Invoke

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "evals" / "support_triage"


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """The support-triage suite with absolute paths and recordings in the test's folder."""
    folder = tmp_path / "triage"
    folder.mkdir()
    text = (SUITE / "suite.yaml").read_text()
    text = text.replace(
        "../../examples/support_triage/pipeline.py",
        str(ROOT / "examples" / "support_triage" / "pipeline.py"),
    )
    (folder / "suite.yaml").write_text(text)
    cases = (SUITE / "cases.jsonl").read_text()
    cases = cases.replace("../../examples/", f"{ROOT}/examples/")
    (folder / "cases.jsonl").write_text(cases)
    return folder


def as_json(result: Any) -> dict[str, Any]:
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_the_terminal_report(cli: Invoke, suite: Path) -> None:
    result = cli("eval", str(suite), "--model", "fake")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "eval support_triage: pipeline support_triage, model fake, 24 cases" in out
    for expected in ("category", "classification", "details", "extraction", "routing:"):
        assert expected in out
    assert "order_id" in out and "per document" in out


def test_json_and_html(cli: Invoke, suite: Path, tmp_path: Path) -> None:
    page = tmp_path / "out" / "report.html"
    report = as_json(cli("eval", str(suite), "--model", "fake", "--json", "--html", str(page)))
    assert report["cases"] == 24
    assert set(report["nodes"]) == {"category", "details"}
    assert report["nodes"]["category"]["type"] == "classification"
    assert len(report["cases_detail"]) == 24
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert 'class="plot confusion"' in html and 'class="plot review-curve"' in html


def test_limit_and_recordings_make_a_rerun_offline(cli: Invoke, suite: Path) -> None:
    text = (suite / "suite.yaml").read_text()
    assert "recordings: recordings" in text
    first = as_json(cli("eval", str(suite), "--model", "fake", "--limit", "5", "--json"))
    assert first["cases"] == 5
    assert any((suite / "recordings").iterdir())
    again = as_json(
        cli("eval", str(suite), "--model", "fake", "--limit", "5", "--json", "--offline")
    )
    assert again["nodes"] == first["nodes"]


def test_the_baseline_gate(cli: Invoke, suite: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    saved = cli("eval", str(suite), "--model", "fake", "--save-baseline", str(baseline))
    assert saved.exit_code == 0, saved.stderr
    assert f"baseline saved to {baseline}" in saved.stdout

    same = cli("eval", str(suite), "--model", "fake", "--baseline", str(baseline))
    assert same.exit_code == 0, same.stdout
    assert "passed" in same.stdout

    # A baseline where every label was right: today's wrong labels are a real drop.
    data = json.loads(baseline.read_text())
    data["nodes"]["category"]["scores"]["accuracy"] = 1.0
    for case in data["cases_detail"]:
        if "category" in case["nodes"]:
            case["nodes"]["category"]["correct"] = True
    baseline.write_text(json.dumps(data))
    worse = cli("eval", str(suite), "--model", "fake", "--baseline", str(baseline))
    assert worse.exit_code == 1
    assert "REGRESSED" in worse.stdout
    assert "category.accuracy" in worse.stdout
    report = as_json(cli("eval", str(suite), "--model", "fake", "--json"))
    assert report["comparison"] is None  # no baseline: nothing gated


def test_a_malformed_suite_exits_2_naming_line_and_field(cli: Invoke, suite: Path) -> None:
    with (suite / "cases.jsonl").open("a") as f:
        f.write('{"id": "bad", "document": "x", "expected": {"category": "refnud"}}\n')
    result = cli("eval", str(suite), "--model", "fake")
    assert result.exit_code == 2
    assert "cases.jsonl line 25" in result.stderr
    assert "refnud" in result.stderr


def test_a_missing_baseline_says_how_to_make_one(cli: Invoke, suite: Path) -> None:
    result = cli("eval", str(suite), "--model", "fake", "--baseline", "nowhere.json")
    assert result.exit_code == 2
    assert "--save-baseline nowhere.json" in result.stderr
