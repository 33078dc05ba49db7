"""The JSON the durable commands print, whole: `runs list`, `runs show`, `review show` and a
decision, on the `happy` fixture pipeline (timings masked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from inline_snapshot import snapshot

from .conftest import BUG, HAPPY, REFUND, Invoke

TIMINGS = {"duration_s", "started_at", "ended_at", "created_at", "decided_at"}


def masked(value: Any) -> Any:
    """Timings replaced by `...` (they depend on the machine), everything else kept."""
    if isinstance(value, dict):
        return {k: "..." if k in TIMINGS and v is not None else masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    return value


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "refund.txt").write_text(REFUND)
    (tmp_path / "bug.txt").write_text(BUG)
    return f"sqlite:///{tmp_path / 'runs.db'}"


def json_of(cli: Invoke, *args: str) -> Any:
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    return masked(lines[0] if len(lines) == 1 else lines)


def test_runs_list_and_show_json(cli: Invoke, db: str) -> None:
    assert cli("run", HAPPY, "refund.txt", "--db", db).exit_code == 0
    assert json_of(cli, "runs", "list", "--db", db) == snapshot(
        {
            "run_id": "run-a083918684de03c2",
            "document": "refund.txt",
            "pipeline": "happy",
            "status": "completed",
            "started_at": "...",
            "ended_at": "...",
            "duration_s": "...",
            "steps": 4,
            "tokens": 166,
            "cost": 0.0,
            "reviews": [],
            "error": None,
            "model": "fake",
            "pipeline_version": "118bdcee6089",
        }
    )
    assert json_of(cli, "runs", "show", "run-a083918684de03c2", "--db", db) == snapshot(
        {
            "run_id": "run-a083918684de03c2",
            "document": "refund.txt",
            "status": "completed",
            "outputs": {
                "category": "refund",
                "order": {"order_id": "A-17", "amount": 100.0},
                "with_tax": 120.0,
                "reply": """\
Hello,

Thank you for your message. We have received it and a member of our team will follow up shortly.

Kind regards,
Support\
""",
            },
            "review": None,
            "error": None,
            "steps": [
                {
                    "node": "category",
                    "kind": "classify",
                    "visit": 1,
                    "status": "completed",
                    "attempts": 1,
                    "confidence": 0.8181818181818182,
                    "confidence_source": "heuristic",
                    "route": "refund",
                    "started_at": "...",
                    "duration_s": "...",
                    "tokens": 33,
                    "cost": 0.0,
                    "model": "fake",
                    "warnings": [],
                    "retries": [],
                    "error": None,
                    "review_id": None,
                    "output": "refund",
                },
                {
                    "node": "order",
                    "kind": "extract",
                    "visit": 1,
                    "status": "completed",
                    "attempts": 1,
                    "confidence": 0.95,
                    "confidence_source": "heuristic",
                    "route": None,
                    "started_at": "...",
                    "duration_s": "...",
                    "tokens": 74,
                    "cost": 0.0,
                    "model": "fake",
                    "warnings": [],
                    "retries": [],
                    "error": None,
                    "review_id": None,
                    "output": {"order_id": "A-17", "amount": 100.0},
                },
                {
                    "node": "with_tax",
                    "kind": "rule",
                    "visit": 1,
                    "status": "completed",
                    "attempts": 0,
                    "confidence": 1.0,
                    "confidence_source": "rule",
                    "route": None,
                    "started_at": "...",
                    "duration_s": "...",
                    "tokens": 0,
                    "cost": 0.0,
                    "model": None,
                    "warnings": [],
                    "retries": [],
                    "error": None,
                    "review_id": None,
                    "output": 120.0,
                },
                {
                    "node": "reply",
                    "kind": "draft",
                    "visit": 1,
                    "status": "completed",
                    "attempts": 1,
                    "confidence": None,
                    "confidence_source": None,
                    "route": None,
                    "started_at": "...",
                    "duration_s": "...",
                    "tokens": 59,
                    "cost": 0.0,
                    "model": "fake",
                    "warnings": [],
                    "retries": [],
                    "error": None,
                    "review_id": None,
                    "output": """\
Hello,

Thank you for your message. We have received it and a member of our team will follow up shortly.

Kind regards,
Support\
""",
                },
            ],
            "pipeline": "happy",
            "started_at": "...",
            "ended_at": "...",
            "duration_s": "...",
            "tokens": 166,
            "cost": 0.0,
            "reviews": [],
            "decisions": [],
            "model": {"name": "fake", "params": {}, "record": None, "replay": None},
            "pipeline_version": "118bdcee6089",
            "warnings": [],
        }
    )


def test_review_show_and_decision_json(cli: Invoke, db: str) -> None:
    [line] = cli("run", HAPPY, "bug.txt", "--db", db, "--json").json_lines()
    review_id = line["review"]["review_id"]
    assert json_of(cli, "review", "show", review_id, "--db", db) == snapshot(
        {
            "review_id": "rv-f1e2b237a1e67e76",
            "status": "pending",
            "pipeline": "happy",
            "node": "category",
            "target": "category",
            "run_id": "run-e5ad944967c0b4d2",
            "document": "bug.txt",
            "queue": "default",
            "created_at": "...",
            "deadline": None,
            "on_deadline": None,
            "escalated_at": None,
            "escalation": None,
            "confidence": 0.7142857142857143,
            "confidence_source": "heuristic",
            "field_confidence": {},
            "reasons": [
                {
                    "kind": "low_confidence",
                    "message": "confidence 0.71 < 0.8 (heuristic)",
                    "field": None,
                    "value": 0.7142857142857143,
                    "threshold": 0.8,
                    "check": None,
                }
            ],
            "output": "bug",
            "decision": None,
            "document_text": "The app has a bug.\n",
            "fields": [
                {
                    "field": "category",
                    "value": "bug",
                    "confidence": 0.7142857142857143,
                    "confidence_source": "heuristic",
                    "threshold": 0.8,
                    "status": "below",
                }
            ],
            "schema_errors": [],
        }
    )
    decided = json_of(
        cli,
        "review",
        "edit",
        review_id,
        "--set",
        "category=refund",
        "--db",
        db,
        "-r",
        "dana",
        "--target",  # the recorded code is outside this folder (the test's): not imported
        HAPPY,
    )
    assert decided == snapshot(
        {
            "run_id": "run-e5ad944967c0b4d2",
            "document": "bug.txt",
            "status": "failed",
            "outputs": {"category": "refund"},
            "review": None,
            "error": {
                "type": "OutputInvalid",
                "message": "`order` returned output that does not fit its schema after 3 tries "
                "(2 errors, first: Field required); raise max_reasks, simplify the schema or "
                "use a stronger model",
            },
            "steps": [
                {
                    "node": "category",
                    "status": "needs_review",
                    "route": "bug",
                    "confidence": 0.7142857142857143,
                },
                {
                    "node": "category",
                    "status": "completed",
                    "route": "refund",
                    "confidence": 0.7142857142857143,
                },
                {"node": "order", "status": "failed", "route": None, "confidence": None},
            ],
        }
    )
    assert json_of(cli, "review", "list", "--all", "--db", db)["decision"] == snapshot(
        {
            "review_id": "rv-f1e2b237a1e67e76",
            "action": "edit",
            "reviewer": "dana",
            "decided_at": "...",
            "reason": None,
            "output": "refund",
        }
    )
