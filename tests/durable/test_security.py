"""Whoever can write the database cannot run code in handrail: DBOS checkpoints are JSON, and a
planted pickle (in a step's checkpoint, under DBOS's pickle serializer or handrail's) is refused
with a clear error on the next `handrail run`, never loaded."""

from __future__ import annotations

import base64
import json
import os
import pickle
import re
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from handrail.core.outcome import Outcome, RecordedError
from handrail.core.records import (
    Attempt,
    CheckResult,
    Confidence,
    ReviewReason,
    StepStatus,
    Usage,
)
from handrail.durable.serialize import CHECKPOINTS, CheckpointRefused

ROOT = Path(__file__).parents[2]
HAPPY = f"{ROOT / 'tests' / 'pipelines' / 'happy.py'}:pipeline"
REFUND = "Please refund me, I want a refund.\nOrder ID: A-17\nAmount: 100\n"


class Planted:
    """Unpickling this makes a folder: the proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (str(self.marker),))


def handrail(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-m", "handrail.cli", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("serialization", ["py_pickle", "handrail_json", None])
def test_a_planted_pickle_in_a_step_checkpoint_is_refused_not_run(
    tmp_path: Path, serialization: str | None
) -> None:
    (tmp_path / "ticket.txt").write_text(REFUND)
    db = tmp_path / "handrail.db"
    first = handrail(tmp_path, "run", HAPPY, "ticket.txt", "--db", str(db), "--json")
    assert first.returncode == 0, first.stderr
    [line] = [json.loads(x) for x in first.stdout.splitlines()]
    assert line["status"] == "completed"
    run_id = line["run_id"]

    marker = tmp_path / "PWNED"
    pickled = base64.b64encode(pickle.dumps(Planted(marker))).decode()
    with sqlite3.connect(db) as conn:
        stored = conn.execute(
            "SELECT output, serialization FROM operation_outputs WHERE workflow_uuid = ? "
            "ORDER BY function_id LIMIT 1",
            (run_id,),
        ).fetchone()
        # What someone who can write the database does: a pickle as the first step's result,
        # the workflow pending again (DBOS replays it at the next start), the run record gone.
        conn.execute(
            "UPDATE operation_outputs SET output = ?, serialization = ? WHERE workflow_uuid = ? "
            "AND function_id = (SELECT min(function_id) FROM operation_outputs "
            "WHERE workflow_uuid = ?)",
            (pickled, serialization, run_id, run_id),
        )
        conn.execute(
            "UPDATE workflow_status SET status = 'PENDING', output = NULL WHERE workflow_uuid = ?",
            (run_id,),
        )
        for table in ("handrail_steps", "handrail_reviews", "handrail_runs"):
            conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    again = handrail(tmp_path, "run", HAPPY, "ticket.txt", "--db", str(db), "--json")

    assert not marker.exists(), "the planted pickle ran"
    assert stored[1] == "handrail_json" and json.loads(stored[0])["handrail"] == 1
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr
    [line] = [json.loads(x) for x in again.stdout.splitlines()]
    assert line["run_id"] == run_id and line["status"] == "failed"
    message = line["error"]["message"]
    refused = (
        "refused a pickled checkpoint"
        if serialization == "py_pickle"
        else ("refused a checkpoint that is not JSON")
    )
    assert refused in message
    assert "handrail writes checkpoints as JSON and never loads anything else" in message
    assert "check who can write the database" in message
    assert line["error"]["type"] == "CheckpointRefused"
    # the message is the refusal (the runner may say which run stopped before it)
    assert re.match(rf"(the durable run `{run_id}` stopped: )?refused a ", message), message


# --- the JSON form --------------------------------------------------------------------------------


def test_a_step_outcome_round_trips_through_json() -> None:
    outcome = Outcome(
        status=StepStatus.NEEDS_REVIEW,
        output={"order_id": "A-17", "amount": 100.0, "$odd": ["key"], "nested": [1, None]},
        route="refund",
        confidence=Confidence(value=0.5, source="scripted"),
        field_confidence={"amount": Confidence(value=0.4, source="scripted")},
        checks=(CheckResult(passed=False, message="too high", name="limit"),),
        attempts=[Attempt(number=1, kind="call", outcome="ok", duration_s=0.25)],
        usage=Usage(input_tokens=3, output_tokens=4, cost=None),
        model="fake",
        error=RecordedError("TimeoutError", "slow"),
        reasons=(ReviewReason(kind="low_confidence", message="below 0.9", value=0.5),),
        review_target="order",
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        duration_s=1.5,
    )
    text = CHECKPOINTS.serialize({"args": ("run-1", outcome), "kwargs": {}})
    assert "pickle" not in text and json.loads(text)["handrail"] == 1
    back = CHECKPOINTS.deserialize(text)
    assert back["args"][0] == "run-1"
    again = back["args"][1]
    assert isinstance(again, Outcome)
    assert isinstance(again.error, RecordedError)
    assert (again.error.type_name, str(again.error)) == ("TimeoutError", "slow")
    assert {f: getattr(again, f) for f in Outcome.__slots__ if f != "error"} == {
        f: getattr(outcome, f) for f in Outcome.__slots__ if f != "error"
    }


def test_errors_come_back_as_builtins_or_recorded_never_imported() -> None:
    back = CHECKPOINTS.deserialize(CHECKPOINTS.serialize(ValueError("bad")))
    assert type(back) is ValueError and str(back) == "bad"
    forged = json.dumps({"handrail": 1, "value": {"$error": {"type": "os.system", "message": "x"}}})
    back = CHECKPOINTS.deserialize(forged)
    assert type(back) is RecordedError and back.type_name == "os.system"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("gASVAAAAAAAAAACMBXBvc2l4lIwFc3lzdGVtlJOUjAJpZJSFlFKULg==", "not JSON"),
        ('{"value": 1}', "not in handrail's format"),
        ('{"handrail": 2, "value": 1}', "not in handrail's format"),
        ('{"handrail": 1, "value": {"$pickle": "x"}}', "holding `$pickle`"),
        (
            '{"handrail": 1, "value": {"$outcome": {"status": "nope"}}}',
            "`$outcome` value is malformed",
        ),
    ],
)
def test_anything_but_handrails_json_is_refused(text: str, said: str) -> None:
    with pytest.raises(CheckpointRefused, match=re.escape(said)):
        CHECKPOINTS.deserialize(text)


def test_a_value_json_cannot_hold_is_not_checkpointed() -> None:
    with pytest.raises(Exception, match="cannot checkpoint a object"):
        CHECKPOINTS.serialize(object())
