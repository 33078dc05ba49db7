"""The durable commands on Postgres: a batch, its reviews, and a worker serving `--submit`.

Starts a throwaway cluster (`tests/_postgres.py`) when the server binaries are installed;
skipped without them outside CI, where they must run.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests import _postgres  # noqa: E402

from .conftest import Invoke  # noqa: E402
from .triage import DOCUMENTS, TARGET, project_copy, run_example, start_worker  # noqa: E402


@pytest.fixture(scope="module")
def postgres_db() -> Iterator[str]:
    """A database of this module's own on a cluster of its own."""
    try:
        server = _postgres.start()
    except _postgres.PostgresNotFound as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e}; CI must run the Postgres tests", pytrace=False)
        pytest.skip(str(e))
    try:
        yield server.create_database("handrail_cli")
    finally:
        server.stop()


def test_run_review_and_worker_on_postgres(
    cli: Invoke, postgres_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = postgres_db
    runs = run_example(cli, db, project_copy())
    review_id = runs["02_refund_espresso_machine.eml"]["review"]["review_id"]
    assert len(cli("review", "list", "--db", db, "--json").json_lines()) == 3

    approved = cli("review", "approve", review_id, "--db", db, "-r", "dana", "--json")
    assert approved.exit_code == 0, approved.stderr
    assert approved.json_lines()[0]["status"] == "completed"
    again = cli("review", "approve", review_id, "--db", db)
    assert again.exit_code == 1 and "was already decided (approve by dana)" in again.stderr
    listed = cli("runs", "list", "--db", db, "--status", "completed", "--json").json_lines()
    assert len(listed) == 6

    (tmp_path / "inbox").mkdir()
    for name in ("04_bug_checkout_button_android.md", "07_charged_twice.eml"):
        source = Path(DOCUMENTS) / name
        # new content, so new runs (a document already run is not run again)
        (tmp_path / "inbox" / name).write_text(source.read_text() + "\n(forwarded again)\n")
    worker = start_worker(tmp_path, TARGET, "--db", db, "--executor-id", "pg-worker")
    try:
        assert worker.first_line().startswith("worker pg-worker serving support_triage on ")
        submitted = cli("run", TARGET, "inbox", "--db", db, "--submit", "--timeout", "60")
    finally:
        assert worker.stop() == 0, worker.output()
    assert submitted.exit_code == 0, submitted.stderr
    assert submitted.stdout.splitlines()[-1] == (
        "2 documents: 1 completed, 1 needs review, 0 failed, 0 rejected"
    )
