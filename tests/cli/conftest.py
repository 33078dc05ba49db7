"""Shared helpers for the CLI tests: an invoker, a folder of tickets, deterministic ids."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from handrail.cli.main import app

ROOT = Path(__file__).parents[2]
PIPELINES = ROOT / "tests" / "pipelines"
HAPPY = str(PIPELINES / "happy.py")

# Documents the heuristic FakeModel handles in known ways with the `happy` pipeline: "refund"
# twice gives a confident label, `Key: value` lines give the order; one "bug" is not confident.
REFUND = "Please refund me, I want a refund.\nOrder ID: A-17\nAmount: 100\n"
BUG = "The app has a bug.\n"


@dataclass(frozen=True)
class Result:
    exit_code: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines()]


Invoke = Callable[..., Result]


@pytest.fixture
def cli() -> Invoke:
    """Run `handrail ARGS...` in-process; a wide terminal keeps table rows on one line."""

    def invoke(*args: str, input: str | bytes | None = None, env: dict[str, str] | None = None):
        result = CliRunner().invoke(
            app, list(args), input=input, env={"COLUMNS": "250", **(env or {})}
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)

    return invoke


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No model from the environment, durable runs kept in a database of the test's own,
    numbered ids for runs of unreadable documents, and sys.path restored after targets made
    folders importable."""
    monkeypatch.delenv("HANDRAIL_MODEL", raising=False)
    monkeypatch.setenv("HANDRAIL_DATABASE_URL", f"sqlite:///{tmp_path / 'state' / 'handrail.db'}")
    counter = itertools.count(1)
    monkeypatch.setattr("handrail.core.runner.new_id", lambda prefix: f"{prefix}-{next(counter)}")
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield


@pytest.fixture
def tickets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of four tickets (the current directory): one completes, one needs review, two
    cannot be read."""
    folder = tmp_path / "tickets"
    (folder / "sub").mkdir(parents=True)
    (folder / "refund.txt").write_text(REFUND)
    (folder / "sub" / "bug.md").write_text(BUG)
    (folder / "empty.txt").write_text("")
    (folder / "binary.txt").write_bytes(b"\x89PNG\x00\x01")
    monkeypatch.chdir(tmp_path)
    return folder
