"""What an operator sees: why an attempt was retried (`runs show`), and a worker that says each
escalation it applies and when it stops (a `handrail worker` process of its own)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from .conftest import Invoke
from .triage import run_example, start_worker, wait_for

DEADLINES = Path(__file__).parent / "deadlines.py"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'runs' / 'handrail.db'}"


def test_runs_show_says_why_each_attempt_was_retried(cli: Invoke, db: str) -> None:
    runs = run_example(cli, db)
    shown = {
        name: json.loads(cli("runs", "show", line["run_id"], "--db", db, "--json").stdout)
        for name, line in runs.items()
    }
    retried = [
        (name, step) for name, run in shown.items() for step in run["steps"] if step["attempts"] > 1
    ]
    assert retried, "the example with the fake model re-asks at least once"
    name, step = retried[0]
    assert len(step["retries"]) == step["attempts"] - 1
    first: dict[str, Any] = step["retries"][0]
    assert (first["attempt"], first["outcome"], first["then"]) == (1, "invalid_output", "reask")
    assert "validation error" in first["error"]

    table = cli("runs", "show", runs[name]["run_id"], "--db", db).stdout
    assert "retried because" in table
    # the schema failure in brief: which field, and why
    assert "1: invalid output (email: Field required" in table
    quiet = next(n for n, run in shown.items() if all(s["attempts"] == 1 for s in run["steps"]))
    assert "retried because" not in cli("runs", "show", runs[quiet]["run_id"], "--db", db).stdout


def test_a_worker_says_each_escalation_it_applies_and_when_it_stops(
    cli: Invoke, db: str, tmp_path: Path
) -> None:
    (tmp_path / "ticket.txt").write_text("Please refund my order.\n")
    [line] = cli("run", f"{DEADLINES}:reject_late", "ticket.txt", "--db", db, "--json").json_lines()
    assert line["status"] == "needs_review"
    review_id = line["review"]["review_id"]

    worker = start_worker(tmp_path, f"{DEADLINES}:reject_late", "--db", db)
    try:
        executor = worker.first_line().split()[1]
        said = wait_for(
            lambda: [
                text
                for text in worker.out.read_text().splitlines()
                if text.startswith("escalated review")
            ],
            what="the escalation line",
        )
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, worker.output()
    assert len(said) == 1
    assert said[0].startswith(f"escalated review {review_id}: reject: deadline ")
    assert said[0].endswith(f"passed: nobody looked in time; run {line['run_id']} is now rejected")
    assert worker.out.read_text().splitlines()[-1] == (
        f"worker {executor} stopped (a signal asked it to); it applied 1 escalation"
    )
