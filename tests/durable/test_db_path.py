"""`DurableRunner(pipeline, db=...)` takes a plain SQLite path, as docs/durable.md says, and keeps
its runs in that very file (a real SQLite file, read back by a second store)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from tests.pipelines import happy

from handrail import RunStatus
from handrail.durable import DurableRunner, SqlStore, StoreError, database_url


@pytest.mark.parametrize("as_text", [True, False], ids=["str", "Path"])
async def test_a_plain_sqlite_path_is_a_database(tmp_path: Path, as_text: bool) -> None:
    path = tmp_path / "state" / "x.db"
    db = str(path) if as_text else path
    async with DurableRunner(happy.pipeline, model=happy.model(), db=db) as runner:
        record = await runner.run("Refund order A-17, 100 EUR please")
    assert record.status is RunStatus.COMPLETED
    assert path.is_file()
    with sqlite3.connect(path) as conn:  # a real SQLite file holding the run
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = SqlStore(f"sqlite:///{path}")
    try:
        kept = store.get_run(record.run_id)
    finally:
        store.close()
    assert kept is not None and kept.status is RunStatus.COMPLETED


def test_a_relative_path_stays_relative_and_a_misspelt_url_is_still_refused() -> None:
    assert database_url("runs/handrail.db") == Path("runs/handrail.db")
    assert database_url("sqlite:///runs/handrail.db") == "sqlite:///runs/handrail.db"
    with pytest.raises(StoreError, match="is not a database URL"):
        SqlStore(database_url("postgresql:/db.example/runs"))
