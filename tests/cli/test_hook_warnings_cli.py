"""A hook error is kept on the durable run (a real SQLite file) and `handrail runs show` shows it,
in the table and in `--json` (issue 12, A5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.pipelines import low_confidence

from handrail import Hooks, RunStatus
from handrail.durable import DurableRunner

from .conftest import Invoke


class Notify(Hooks):
    def review_requested(self, **_: Any) -> None:
        raise ConnectionError("helpdesk down")


WARNING = "hook Notify.review_requested raised ConnectionError: helpdesk down; the run went on"


async def test_runs_show_lists_the_warnings_of_a_run(cli: Invoke, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'hooks.db'}"
    async with DurableRunner(
        low_confidence.pipeline, model=low_confidence.model(0.6), hooks=[Notify()], db=db
    ) as runner:
        record = await runner.run("it crashes")
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.warnings == (WARNING,)

    shown = cli("runs", "show", record.run_id, "--db", db, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["warnings"] == [WARNING]
    table = cli("runs", "show", record.run_id, "--db", db)
    assert table.exit_code == 0, table.stderr
    assert WARNING in " ".join(table.stdout.split())
