"""`handrail eval`: the terminal report, JSON, HTML, the baseline gate's exit codes, recordings
and a malformed suite, on a copy of the support-triage suite with the offline fake model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from .conftest import Invoke

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "evals" / "support_triage"


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    """The support-triage suite (its documents, no recordings) in the test's folder, its
    pipeline's path made absolute."""
    folder = tmp_path / "triage"
    folder.mkdir()
    text = (SUITE / "suite.yaml").read_text()
    text = text.replace(
        "../../examples/support_triage/pipeline.py",
        str(ROOT / "examples" / "support_triage" / "pipeline.py"),
    )
    (folder / "suite.yaml").write_text(text)
    shutil.copyfile(SUITE / "cases.jsonl", folder / "cases.jsonl")
    shutil.copytree(SUITE / "documents", folder / "documents")
    return folder


@pytest.fixture
def recorded(suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The suite with its shipped recordings, run from a folder of its own (the example's
    helpdesk files tickets under the current folder)."""
    shutil.copytree(SUITE / "recordings", suite / "recordings")
    shutil.copyfile(SUITE / "baseline.json", suite / "baseline.json")
    monkeypatch.chdir(tmp_path)
    return suite


HELPDESK = Path(".handrail") / "support_triage_helpdesk.json"
"""Where the example's helpdesk keeps the tickets it files (under the current folder)."""


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


# --- evals never call the outside world (issue 12, A4) ------------------------------------------


def test_an_eval_files_no_ticket_unless_asked(cli: Invoke, recorded: Path, tmp_path: Path) -> None:
    report = as_json(cli("eval", str(recorded), "--offline", "--json"))
    assert not (tmp_path / HELPDESK).exists(), "the eval filed tickets in the helpdesk"
    assert report["actions"]["called"] is False
    calls = [c for case in report["cases_detail"] for c in case.get("actions_not_called", [])]
    assert calls and report["actions"]["not_called"] == len(calls)
    assert report["actions"]["not_called_by_node"] == {"create_ticket": len(calls)}
    kettle = next(c for c in report["cases_detail"] if c["id"] == "kettle-refund")
    (call,) = kettle["actions_not_called"]
    assert call["node"] == "create_ticket"
    assert call["idempotency_key"] == "eval-kettle-refund:create_ticket"
    assert call["inputs"]["category"] == "refund"
    assert call["inputs"]["details"]["order_id"] == "LH-48213"

    shown = cli("eval", str(recorded), "--offline")
    assert shown.exit_code == 0, shown.stderr
    assert f"actions: not called (create_ticket ×{len(calls)})" in shown.stdout
    assert not (tmp_path / HELPDESK).exists()

    called = as_json(cli("eval", str(recorded), "--offline", "--json", "--run-actions"))
    assert called["actions"] == {"called": True, "not_called": 0, "not_called_by_node": {}}
    tickets = json.loads((tmp_path / HELPDESK).read_text())
    assert len(tickets) == len(calls)
    assert {t["idempotency_key"] for t in tickets} == {
        c["idempotency_key"]
        for case in report["cases_detail"]
        for c in case.get("actions_not_called", [])
    }
    assert called["nodes"] == report["nodes"], "calling the actions changes no score"


def test_the_shipped_baseline_passes_offline(cli: Invoke, recorded: Path, tmp_path: Path) -> None:
    result = cli("eval", str(recorded), "--offline", "--baseline", str(recorded / "baseline.json"))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "passed" in result.stdout
    assert not (tmp_path / HELPDESK).exists()


def test_a_case_the_eval_cannot_finish_is_reported_and_the_eval_goes_on(
    cli: Invoke, tmp_path: Path
) -> None:
    """issue 12, E18: a review with nothing to approve fails its own case, not the eval."""
    folder = tmp_path / "stuck"
    folder.mkdir()
    target = ROOT / "tests" / "evals" / "fixtures" / "stuck.py"
    (folder / "suite.yaml").write_text(f"pipeline: {target}:pipeline\n")
    cases = [
        {"id": "fine", "document": "a fine document", "route": "accept"},
        {"id": "stuck", "document": "a stuck document", "route": "review"},
    ]
    (folder / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    baseline = tmp_path / "baseline.json"
    result = cli("eval", str(folder), "--save-baseline", str(baseline))
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "1 case the eval could not finish (scored as far as they ran):" in result.stdout
    assert "  stuck: InvalidDecision: review " in result.stdout
    assert "has no output to approve" in result.stdout
    report = as_json(cli("eval", str(folder), "--json", "--baseline", str(baseline)))
    assert [e["id"] for e in report["errors"]] == ["stuck"]
    assert report["routing"]["accuracy"] == 1.0  # both went where they should have, first
    assert report["comparison"]["passed"] is True


def test_a_pass_never_hides_cases_that_went_right_to_wrong(
    cli: Invoke, suite: Path, tmp_path: Path
) -> None:
    """issue 12, E20: the verdict says why a case that got worse does not fail the eval."""
    text = (suite / "suite.yaml").read_text().replace("default: 0.02", "default: 0.1")
    (suite / "suite.yaml").write_text(text)
    baseline = tmp_path / "baseline.json"
    saved = cli("eval", str(suite), "--model", "fake", "--save-baseline", str(baseline))
    assert saved.exit_code == 0, saved.stderr
    data = json.loads(baseline.read_text())
    wrong = [
        c for c in data["cases_detail"] if c["nodes"].get("category", {}).get("correct") is False
    ]
    wrong[0]["nodes"]["category"]["correct"] = True  # in the baseline, one more case was right
    scored = sum(1 for c in data["cases_detail"] if "category" in c["nodes"])
    data["nodes"]["category"]["scores"]["accuracy"] += 1 / scored
    baseline.write_text(json.dumps(data))

    result = cli("eval", str(suite), "--model", "fake", "--baseline", str(baseline))
    assert result.exit_code == 0, result.stdout
    assert f"  {wrong[0]['id']}: category right -> wrong" in result.stdout
    assert "passed, within noise or tolerance" in result.stdout
    assert "  passed, but 1 case went right → wrong: category.accuracy within its tolerance (" in (
        result.stdout
    )
    assert "category.accuracy: 1 case changed; the sign test cannot reach p < 0.05" in (
        result.stdout
    )
