"""`handrail review approve|edit|reject|escalate` read `[tool.handrail.notify]` from the
project's pyproject.toml, as `handrail worker` does: what a decision or an escalation raises (a
new review, a failed run, a review moved to another queue) is written to the outbox in the same
transaction, for a worker or `handrail serve` to send. Without the table, nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from handrail.durable import SqlStore

from .conftest import Invoke

DEADLINES = Path(__file__).with_name("deadlines.py")

# Every classifier's gate is above what the heuristic fake model reaches: each waits for review.
GATED = """
from datetime import timedelta

from handrail import Classify, Escalation, Gate, PipelineBuilder, ReviewPolicy, Rule


def _follow_up(state):
    raise RuntimeError("the follow-up system is down")


twice = (
    PipelineBuilder("twice")
    .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.999)))
    .add(Classify("urgency", labels=["low", "high"], gate=Gate(accept=0.999)), after="category")
    .build()
)
breaks = (
    PipelineBuilder("breaks")
    .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.999)))
    .add(Rule("follow_up", _follow_up), after="category")
    .build()
)
soon = (
    PipelineBuilder(
        "soon",
        review=ReviewPolicy(
            deadline=timedelta(minutes=10), on_deadline=Escalation.to_queue("supervisors")
        ),
    )
    .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.999)))
    .build()
)
"""


def notify_config(events: list[str]) -> str:
    shown = ", ".join(f'"{e}"' for e in events)
    return (
        "[tool.handrail.notify]\n"
        'base_url = "http://inbox.test"\n'
        "[[tool.handrail.notify.channels]]\n"
        'name = "hook"\nkind = "webhook"\nurl = "http://127.0.0.1:9/hook"\n'
        f"events = [{shown}]\n"
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder (the current folder) with the pipelines' code and a ticket."""
    monkeypatch.chdir(tmp_path)
    shutil.copy2(DEADLINES, tmp_path / "deadlines.py")
    (tmp_path / "gated.py").write_text(GATED)
    (tmp_path / "ticket.txt").write_text("Please refund my order.\n")
    return tmp_path


def db_of(project: Path) -> str:
    return f"sqlite:///{project / 'runs' / 'handrail.db'}"


def run(cli: Invoke, project: Path, target: str) -> dict[str, Any]:
    [line] = cli("run", target, "ticket.txt", "--db", db_of(project), "--json").json_lines()
    assert line["status"] == "needs_review", line
    return line


def outbox(project: Path) -> list[tuple[str, str, str, str]]:
    """(event, event id, channel, status) of every outbox row, oldest first."""
    with SqlStore(db_of(project)) as store:
        return [(r.event, r.event_id, r.channel, r.status) for r in store.outbox_rows()]


def test_escalate_writes_review_escalated_for_a_channel_that_wants_it(
    cli: Invoke, project: Path
) -> None:
    (project / "pyproject.toml").write_text(notify_config(["review.escalated"]))
    moved = run(cli, project, "deadlines.py:move_late")
    run(cli, project, "deadlines.py:reject_late")
    assert outbox(project) == []  # `handrail run` raised nothing this channel wants

    result = cli("review", "escalate", "--db", db_of(project), "--json")

    assert result.exit_code == 0, result.stderr
    assert {line["action"] for line in result.json_lines()} == {"queue", "reject"}
    review_id = moved["review"]["review_id"]
    # The move is announced; the rejection ends its run `rejected`, which is not an event.
    assert outbox(project) == [
        ("review.escalated", f"review.escalated:{review_id}", "hook", "pending")
    ]
    with SqlStore(db_of(project)) as store:
        [row] = store.outbox_rows()
    assert row.queue == "supervisors"  # the queue it moved to
    again = cli("review", "escalate", "--db", db_of(project))
    assert again.exit_code == 0 and len(outbox(project)) == 1


def test_escalate_writes_the_reminders_of_deadlines_coming_up(cli: Invoke, project: Path) -> None:
    """Also of a pipeline with nothing to escalate yet: the worker's clock, ticked once."""
    (project / "pyproject.toml").write_text(notify_config(["review.due_soon"]))  # 1 h before
    soon = run(cli, project, "gated.py:soon")
    result = cli("review", "escalate", "--db", db_of(project))
    assert (result.exit_code, result.stdout) == (0, "no reviews past their deadline\n")
    [(event, event_id, channel, status)] = outbox(project)
    review_id = soon["review"]["review_id"]
    assert (event, channel, status) == ("review.due_soon", "hook", "pending")
    assert event_id.startswith(f"review.due_soon:{review_id}:")
    cli("review", "escalate", "--db", db_of(project))
    assert len(outbox(project)) == 1  # once per review and deadline


def test_decisions_write_what_their_runs_raise(cli: Invoke, project: Path) -> None:
    (project / "pyproject.toml").write_text(notify_config(["review.waiting", "run.failed"]))
    twice = run(cli, project, "gated.py:twice")
    breaks = run(cli, project, "gated.py:breaks")
    first, breaking = twice["review"]["review_id"], breaks["review"]["review_id"]
    assert [(e, i) for e, i, _, _ in outbox(project)] == [
        ("review.waiting", f"review.waiting:{first}"),
        ("review.waiting", f"review.waiting:{breaking}"),
    ]  # what `handrail run` wrote

    approved = cli("review", "approve", first, "--db", db_of(project), "--json")
    assert approved.exit_code == 0, approved.stderr
    [after] = approved.json_lines()
    assert (after["status"], after["review"]["node"]) == ("needs_review", "urgency")
    second = after["review"]
    edited = cli(
        "review", "edit", breaking, "--set", "category=bug", "--db", db_of(project), "--json"
    )
    assert edited.exit_code == 0, edited.stderr
    assert edited.json_lines()[0]["status"] == "failed"
    rejected = cli(
        "review", "reject", second["review_id"], "--reason", "spam", "--db", db_of(project)
    )
    assert rejected.exit_code == 0, rejected.stderr

    assert [(e, i) for e, i, _, _ in outbox(project)][2:] == [
        ("review.waiting", f"review.waiting:{second['review_id']}"),  # the approval's next review
        ("run.failed", f"run.failed:{breaks['run_id']}"),  # the edit's run failed after it
    ]  # and the rejection: its run ended `rejected`, not an event
    assert {status for _, _, _, status in outbox(project)} == {"pending"}  # a worker sends them


def test_without_a_notify_table_the_review_commands_write_no_rows(
    cli: Invoke, project: Path
) -> None:
    (project / "pyproject.toml").write_text('[project]\nname = "support"\n')
    twice = run(cli, project, "gated.py:twice")
    run(cli, project, "deadlines.py:move_late")
    approved = cli("review", "approve", twice["review"]["review_id"], "--db", db_of(project))
    escalated = cli("review", "escalate", "--db", db_of(project))
    assert (approved.exit_code, escalated.exit_code) == (0, 0), approved.stderr + escalated.stderr
    assert "moved from queue `default` to `supervisors`" in escalated.stdout
    assert outbox(project) == []


def test_a_wrong_notify_table_stops_the_decision_with_the_fix(cli: Invoke, project: Path) -> None:
    twice = run(cli, project, "gated.py:twice")
    (project / "pyproject.toml").write_text(
        '[[tool.handrail.notify.channels]]\nname = "hook"\nkind = "webhook"\n'
        'url = "http://127.0.0.1:9/hook"\nsecret = "abc123"\n'
    )
    result = cli("review", "approve", twice["review"]["review_id"], "--db", db_of(project))
    assert result.exit_code != 0
    assert "secret would put a secret in the config file" in result.stderr
    assert "abc123" not in result.stderr
    shown = cli("review", "list", "--db", db_of(project), "--json").json_lines()
    assert [line["status"] for line in shown] == ["pending"]  # nothing was decided
