"""`handrail eval SUITE --calibrate` and `handrail calibrate`: the table, the calibration file,
and what they say when there is too little to go on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.evals.test_eval_run import write_suite

from handrail import FakeModel, Reply
from handrail.core.model import ModelRequest
from handrail.core.records import ReviewDecision
from handrail.core.runner import Runner
from handrail.durable import SqlStore
from handrail.targets import load_pipeline

from .conftest import PIPELINES, Invoke

LOW = str(PIPELINES / "low_confidence.py")


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> None:
    """`handrail eval` answers with the orders fixture's scripted model."""
    from tests.evals.fixtures import orders

    monkeypatch.setattr("handrail.cli.eval_cmd._model", lambda *a, **k: orders.model())


def test_eval_calibrate_prints_the_table_and_writes_the_file(
    cli: Invoke, tmp_path: Path, scripted: None
) -> None:
    suite = write_suite(tmp_path / "orders")
    out = tmp_path / "cal.json"
    result = cli("eval", str(suite), "--calibrate", "--min-cases", "3", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    table = result.stdout.split("thresholds for 95.0% accuracy (eval)")[1]
    line = next(x for x in table.splitlines() if x.startswith("│ category"))
    assert [cell.strip() for cell in line.strip("│").split("│")] == [
        "category",
        "—",
        "6",
        "0.80 → 0.90",
        "66.7% → 50.0%",
        "75.0% → 100.0%",
    ]
    assert f"calibration written to {out}" in result.stdout
    written = json.loads(out.read_text())["pipelines"]["orders"]
    assert written["nodes"]["category"]["node"]["threshold"] == 0.9
    assert written["source"] == "eval" and written["suite"] == "orders"


def test_eval_calibrate_json_and_too_few_cases(
    cli: Invoke, tmp_path: Path, scripted: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    suite = write_suite(tmp_path / "orders")
    result = cli("eval", str(suite), "--calibrate", "--json")
    assert result.exit_code == 0, result.stderr
    calibrated = json.loads(result.stdout)["calibrate"]
    assert calibrated["path"] == "handrail.calibration.json"  # the default, in this folder
    (row,) = calibrated["rows"]
    assert row["new"] is None
    assert row["reason"] == (
        "`category` has 6 answers with a confidence; a threshold needs at least 30 (24 more)"
    )
    assert (tmp_path / "handrail.calibration.json").is_file()


def _decided_reviews(db: str) -> None:
    """Runs of the low-confidence pipeline, each waiting for review, then decided: approved
    from confidence 0.7 up, rejected or edited below."""
    pipeline = load_pipeline(LOW)

    def answer(request: ModelRequest) -> Reply:
        text = " ".join(m.content for m in request.messages)
        return Reply("bug", confidence=float(text.split("conf=")[1].split()[0]))

    store = SqlStore(db)
    try:
        runner = Runner(pipeline, model=FakeModel({"category": answer}), store=store)

        async def run() -> None:
            for i, confidence in enumerate([0.3, 0.4, 0.5, 0.7, 0.75, 0.8, 0.85]):
                record = await runner.run(f"ticket {i} conf={confidence} ")
                decision: Any = ReviewDecision.approve()
                if confidence < 0.5:
                    decision = ReviewDecision.reject("wrong")
                elif confidence < 0.7:
                    decision = ReviewDecision.edit("refund")
                await runner.resume(record.run_id, decision)

        asyncio.run(run())
    finally:
        store.close()


def test_calibrate_from_decided_reviews(cli: Invoke, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    _decided_reviews(db)
    out = tmp_path / "cal.json"
    args = ("calibrate", LOW, "--db", db, "--out", str(out), "--target-accuracy", "0.9")
    result = cli(*args, "--min-cases", "5")
    assert result.exit_code == 0, result.stderr
    assert "7 decided reviews of pipeline `low_confidence`" in result.stdout
    assert "0.90 → 0.70" in result.stdout and "0.0% → 57.1%" in result.stdout
    written = json.loads(out.read_text())["pipelines"]["low_confidence"]
    assert written["source"] == "reviews"
    assert written["nodes"]["category"]["node"]["threshold"] == 0.7

    data = json.loads(cli(*args, "--json").stdout)
    assert data["decided"] == 7
    assert "needs at least 30 (23 more)" in data["rows"][0]["reason"]


def test_calibrate_without_reviews_says_what_is_needed(cli: Invoke, tmp_path: Path) -> None:
    result = cli("calibrate", LOW, "--db", f"sqlite:///{tmp_path / 'none.db'}")
    assert result.exit_code == 2
    assert "no decided reviews of pipeline `low_confidence`'s gated nodes" in result.stderr
    assert "needs at least 30 per node" in result.stderr
