"""Ctrl-C during `handrail run`, in a real process: one handrail line (what finished, how to go
on), exit code 130, no traceback or DBOS "task cancelled" noise; and the same command run again
finishes the batch without DBOS's "Workflow already exists in queue"."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

PIPELINE = """
import asyncio
import os

from handrail import PipelineBuilder, Rule

SIDE = os.environ["SLOW_SIDE"]


async def slow(state):
    with open(SIDE, "a") as f:  # one line per execution of the step
        f.write(state.text.splitlines()[0] + "\\n")
    await asyncio.sleep(0.6)
    return len(state.text)


pipeline = (
    PipelineBuilder("slow")
    .add(Rule("wait", slow))
    .add(Rule("done", lambda s: s["wait"] + 1), after="wait")
    .build()
)
"""
DOCUMENTS = 16


def handrail(folder: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
    env["SLOW_SIDE"] = str(folder / "executions.txt")
    return subprocess.Popen(
        [sys.executable, "-m", "handrail.cli", *args],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished_runs(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            [(count,)] = conn.execute(
                "SELECT count(*) FROM handrail_runs WHERE status = 'completed'"
            ).fetchall()
            return int(count)
    except sqlite3.OperationalError:  # the tables are not there yet
        return 0


def test_ctrl_c_prints_one_line_and_the_same_command_finishes_the_batch(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(PIPELINE)
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(DOCUMENTS):
        (docs / f"doc{i:02}.txt").write_text(f"document {i:02}\nsome text\n")
    db = tmp_path / "state" / "handrail.db"
    command = ("run", "slow.py:pipeline", "docs", "--db", str(db), "--concurrency", "2")

    first = handrail(tmp_path, *command)
    deadline = time.monotonic() + 60
    while finished_runs(db) < 2:  # mid-batch: some finished, others running or waiting
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no run finished in 60 s"
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=60)

    assert first.returncode == 130, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    [line] = lines
    said = re.fullmatch(
        r"handrail: stopped by Ctrl-C after (\d+) of 16 documents; run the same command again "
        r"to finish the other (\d+) \(finished ones are not run again\)",
        line,
    )
    assert said is not None, line
    finished, left = int(said[1]), int(said[2])
    assert finished + left == DOCUMENTS
    assert finished <= finished_runs(db) < DOCUMENTS  # a run may end as the batch stops
    assert stdout == ""

    again = handrail(tmp_path, *command)
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr
    assert "already exists" not in stderr
    assert stderr == ""
    assert finished_runs(db) == DOCUMENTS
    assert f"{DOCUMENTS} documents: {DOCUMENTS} completed" in stdout
    # A document finished before Ctrl-C was not run again; one cut off mid-step ran twice at most.
    executions = Counter((tmp_path / "executions.txt").read_text().splitlines())
    assert set(executions) == {f"document {i:02}" for i in range(DOCUMENTS)}
    assert max(executions.values()) <= 2
    assert sum(executions.values()) <= DOCUMENTS + 2  # at most the two running at Ctrl-C
