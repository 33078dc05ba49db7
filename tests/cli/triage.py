"""The support-triage example as the durable CLI tests use it: where it is, what it gives with
`--model fake`, and a folder of its own to run it from (its helpdesk writes there)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .conftest import ROOT, Invoke

EXAMPLE = ROOT / "examples" / "support_triage"
TARGET = f"{EXAMPLE / 'pipeline.py'}:pipeline"
DOCUMENTS = str(EXAMPLE / "documents")
TOTALS = "10 documents: 5 completed, 3 needs review, 2 failed, 0 rejected"
STATUSES = {"completed": 5, "needs_review": 3, "failed": 2}
"""What the example's ten documents come to with the heuristic fake model."""


def statuses(lines: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(line["status"] for line in lines))


def by_document(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """JSON lines keyed by the document's file name."""
    return {Path(line["document"]).name: line for line in lines}


def project_copy(folder: Path | None = None) -> str:
    """The example's code and prompts copied into `folder` (default: the current folder), as a
    project of one's own holds its pipeline; its target there. `handrail review` imports a
    pipeline recorded in the database only from the folder it runs in."""
    folder = Path(folder or os.getcwd()).resolve()
    code = folder / "examples" / "support_triage"
    if not (code / "pipeline.py").exists():
        code.mkdir(parents=True)
        shutil.copy2(EXAMPLE / "pipeline.py", code / "pipeline.py")
        shutil.copytree(ROOT / "prompts" / "support_triage", folder / "prompts" / "support_triage")
    return f"{code / 'pipeline.py'}:pipeline"


def run_example(cli: Invoke, db: str, target: str = TARGET) -> dict[str, dict[str, Any]]:
    """The example run (its code at `target`: pass `project_copy()` for `handrail review` to
    find it from the current folder without --target)."""
    result = cli("run", target, DOCUMENTS, "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    lines = result.json_lines()
    assert statuses(lines) == STATUSES
    return by_document(lines)


# --- `handrail worker` in a process of its own --------------------------------------------------


@dataclass
class Worker:
    """A `handrail worker` subprocess, its stdout and stderr in files."""

    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    def output(self) -> str:
        return self.out.read_text(errors="replace") + self.err.read_text(errors="replace")

    def first_line(self, timeout: float = 30) -> str:
        """The line it prints once it serves."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.out.read_text(errors="replace")
            if "\n" in text:
                return text.splitlines()[0]
            assert self.popen.poll() is None, f"the worker exited early:\n{self.output()}"
            time.sleep(0.05)
        raise AssertionError(f"the worker printed nothing in {timeout}s:\n{self.output()}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `signum` and return the exit code."""
        self.popen.send_signal(signum)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            raise AssertionError(f"the worker ignored signal {signum}:\n{self.output()}") from None


def start_worker(folder: Path, *args: str, env: dict[str, str] | None = None) -> Worker:
    """`handrail worker ARGS...` run from `folder` (no model, database or tracing from the
    environment; `env` adds variables)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))} | (
        env or {}
    )
    n = 0  # files of their own for each worker started in `folder`
    while (folder / f"worker{n or ''}.out").exists():
        n += 1
    out, err = folder / f"worker{n or ''}.out", folder / f"worker{n or ''}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        popen = subprocess.Popen(
            [sys.executable, "-m", "handrail.cli", "worker", *args],
            cwd=folder,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    return Worker(popen, out, err)


def wait_for(check: Any, timeout: float = 60, what: str = "the condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen in {timeout}s")
