"""`handrail.durable.abandon` on the edges: this version, an empty version, a database that does
not exist (created by nothing), one no durable run ever touched. The runs another version left
pending are in test_recovery.py (real processes)."""

from __future__ import annotations

from pathlib import Path

import pytest

from handrail.durable import SqlStore, abandon
from handrail.durable.runtime import app_version
from handrail.durable.versions import how_to_finish, pending_elsewhere
from handrail.exceptions import InputError


def test_this_version_and_no_version_are_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    with pytest.raises(InputError, match="is this version"):
        abandon(url, app_version())
    with pytest.raises(InputError, match="--version is empty"):
        abandon(url, "  ")


def test_a_database_that_does_not_exist_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "none" / "h.db"
    assert abandon(f"sqlite:///{path}", "0.0.1") == []
    assert not path.parent.exists()


def test_a_database_without_durable_runs_has_nothing_to_abandon(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    SqlStore(url).close()  # handrail's tables, not DBOS's
    assert abandon(url, "0.0.1") == []


def test_the_notice_counts_runs_per_version_and_says_what_to_do() -> None:
    text = pending_elsewhere({"w1": "0.1.0", "w2": "0.1.0", "w3": "0.2.0"})
    assert text.startswith("3 runs are pending from another handrail version")
    assert "2 from handrail 0.1.0, 1 from handrail 0.2.0" in text
    assert f"this is {app_version()}" in text
    assert how_to_finish("0.1.0") in text and how_to_finish("0.2.0") in text
    assert "`handrail runs abandon --version 0.2.0`" in text
    assert pending_elsewhere({"w": "0.1.0"}).startswith("1 run is pending")
