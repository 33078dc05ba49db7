"""`handrail worker` in a process of its own, in a project whose pyproject.toml declares a
webhook: the reviews and failures of the runs it takes are announced to a real HTTP sink, once
each, without document text."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from tests.cli.triage import DOCUMENTS, TARGET, TOTALS, start_worker, wait_for
from typer.testing import CliRunner

from handrail.cli.main import app
from handrail.durable import SqlStore

from .conftest import Sink


def test_a_worker_sends_what_its_runs_raise(
    tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'runs' / 'handrail.db'}"
    (tmp_path / "pyproject.toml").write_text(
        "[tool.handrail.notify]\n"
        'base_url = "http://inbox.test"\n'
        "[[tool.handrail.notify.channels]]\n"
        'name = "hook"\nkind = "webhook"\n'
        f'url = "{sink.url}"\n'
        'events = ["review.waiting", "run.failed"]\n'
    )
    worker = start_worker(tmp_path, TARGET, "--db", db)
    try:
        worker.first_line()
        result = CliRunner().invoke(
            app, ["run", TARGET, DOCUMENTS, "--db", db, "--submit", "--timeout", "120"]
        )
        assert result.exit_code == 0, result.output
        assert TOTALS in result.output
        wait_for(lambda: len(sink.received) >= 5, timeout=60, what="five notifications")
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, worker.output()
    events = sorted(json.loads(r.body)["event"] for r in sink.received)
    assert events == ["review.waiting"] * 3 + ["run.failed"] * 2
    with SqlStore(db) as store:
        assert {r.status for r in store.outbox_rows()} == {"delivered"}
        waiting = [r for r in store.outbox_rows() if r.event == "review.waiting"]
    texts = [json.loads(r.body)["text"] for r in sink.received]
    for row in waiting:
        assert any(f"http://inbox.test/reviews/{row.payload['review_id']}" in t for t in texts)
    for document in Path(DOCUMENTS).iterdir():
        lines = document.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        if lines:  # the documents' text is in no message
            longest = max(lines, key=len)
            assert all(longest not in t for t in texts)
