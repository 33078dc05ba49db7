"""A project folder of its own and `handrail` in processes of its own, for the tests of what a run
keeps across processes (its model, its pipeline version, where its code is)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A classifier whose gate the heuristic fake model cannot pass on BUG (the run waits for review),
# then a draft written by the model: the draft step's `model` says which model continued the run.
FLOW = textwrap.dedent(
    """
    from pathlib import Path

    from handrail import Classify, Draft, Gate, PipelineBuilder

    ACCEPT = 0.9

    pipeline = (
        PipelineBuilder("flow", prompts=Path(__file__).parent / "prompts")
        .add(Classify("category", labels=["refund", "bug", "question"], gate=Gate(accept=ACCEPT)))
        .add(Draft("reply", prompt="reply.md"), after="category")
        .build()
    )
    """
)
REPLY_PROMPT = "[system]\nDraft a short, polite reply to this message.\n[user]\n{{ text }}\n"
REFUND = "Please refund me, I want a refund.\nOrder ID: A-17\nAmount: 100\n"
BUG = "The app has a bug.\n"


@dataclass(frozen=True)
class Done:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.strip()]


@dataclass(frozen=True)
class Project:
    """A folder holding `flow.py` (pipeline `flow`), its prompts, two tickets and a database."""

    folder: Path

    @property
    def db(self) -> str:
        return f"sqlite:///{self.folder / '.handrail' / 'handrail.db'}"

    @property
    def target(self) -> str:
        return "flow.py:pipeline"

    def env(self, **extra: str) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
        return keep | {"HANDRAIL_DATABASE_URL": self.db} | extra

    def handrail(
        self, *args: str, timeout: float = 120, cwd: Path | None = None, **env: str
    ) -> Done:
        """`handrail ARGS...` in a process of its own, run from the project folder (or `cwd`)."""
        done = subprocess.run(
            [sys.executable, "-m", "handrail.cli", *args],
            cwd=cwd or self.folder,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Done(done.returncode, done.stdout, done.stderr)

    def handrail_python(self, script: str) -> Done:
        """`python -c SCRIPT` from the project folder, with the same environment."""
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=self.folder,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        return Done(done.returncode, done.stdout, done.stderr)

    def run(self, *args: str) -> dict[str, Any]:
        """`handrail run flow.py:pipeline ARGS... --json`: the one JSON line."""
        done = self.handrail("run", self.target, *args, "--json")
        assert done.code == 0, done.stderr
        (line,) = done.json_lines()
        return line

    def show(self, run_id: str) -> dict[str, Any]:
        done = self.handrail("runs", "show", run_id, "--json")
        assert done.code == 0, done.stderr
        result: dict[str, Any] = done.json()
        return result

    def status(self, run_id: str) -> str | None:
        """The run's status, or None while it has no record yet (a submitted run a worker has
        not started: `runs show` says there is no such run)."""
        done = self.handrail("runs", "show", run_id, "--json")
        if done.code != 0 and f"no run `{run_id}`" in done.stderr:
            return None
        assert done.code == 0, done.stderr
        status: str = done.json()["status"]
        return status

    def step_models(self, run_id: str) -> dict[str, str | None]:
        """The model each LLM step of a run was answered by, by node."""
        return {
            step["node"]: step["model"]
            for step in self.show(run_id)["steps"]
            if step["node"] in ("category", "reply") and step["status"] != "needs_review"
        }

    def edit_flow(self, old: str, new: str) -> None:
        path = self.folder / "flow.py"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))


def make_project(folder: Path) -> Project:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompts").mkdir(exist_ok=True)
    (folder / "flow.py").write_text(FLOW)
    (folder / "prompts" / "reply.md").write_text(REPLY_PROMPT)
    (folder / "refund.txt").write_text(REFUND)
    (folder / "bug.txt").write_text(BUG)
    return Project(folder)
