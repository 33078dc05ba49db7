"""`handrail worker` in processes of its own, and `handrail run --submit` handing documents to
it: queued without a worker, taken by one when it starts, waited for, and a clean exit on
SIGTERM or Ctrl-C."""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
from pathlib import Path

import pytest

from handrail.durable import SqlStore

from .conftest import Invoke
from .triage import DOCUMENTS, STATUSES, TARGET, TOTALS, by_document, start_worker, statuses

HOST = socket.gethostname().split(".")[0] or "host"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'runs' / 'handrail.db'}"


def dbos_statuses(db: str) -> dict[str, str]:
    """Workflow id -> DBOS status, from DBOS's own table."""
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        return dict(conn.execute("SELECT workflow_uuid, status FROM workflow_status").fetchall())


def test_submit_waits_for_a_worker_and_prints_like_a_run(
    cli: Invoke, db: str, tmp_path: Path
) -> None:
    worker = start_worker(tmp_path, TARGET, "--db", db, "--concurrency", "4")
    try:
        assert worker.first_line() == (
            f"worker worker-{HOST} serving support_triage on {db} (concurrency 4)"
        )
        result = cli("run", TARGET, DOCUMENTS, "--db", db, "--submit", "--timeout", "60")
        assert result.exit_code == 0, result.stderr
        assert result.stdout.splitlines()[-1] == TOTALS
        as_json = cli("run", TARGET, DOCUMENTS, "--db", db, "--submit", "--json").json_lines()
        assert statuses(as_json) == STATUSES
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, worker.output()
    assert worker.err.read_text() == ""
    with SqlStore(db) as store:
        assert store.pipeline_target("support_triage") == TARGET
    # The worker ran them: the runs' DBOS workflows were taken from the pipeline's queue.
    workflows = dbos_statuses(db)
    assert {workflows[line["run_id"]] for line in as_json if line["steps"]} == {"SUCCESS"}


def test_submit_no_wait_queues_runs_a_worker_started_later_completes(
    cli: Invoke, db: str, tmp_path: Path
) -> None:
    result = cli("run", TARGET, DOCUMENTS, "--db", db, "--submit", "--no-wait", "--json")
    assert result.exit_code == 0, result.stderr
    queued = by_document(result.json_lines())
    assert [line["status"] for line in queued.values()].count("queued") == 9
    assert queued["08_blank_upload.txt"]["status"] == "failed"  # unreadable: failed here
    # Nothing ran: no run records but the failed one, the workflows wait in DBOS's queue.
    assert [line["run_id"] for line in cli("runs", "list", "--db", db, "--json").json_lines()] == [
        queued["08_blank_upload.txt"]["run_id"]
    ]
    workflows = dbos_statuses(db)
    waiting = [line["run_id"] for line in queued.values() if line["status"] == "queued"]
    assert {workflows[run_id] for run_id in waiting} == {"ENQUEUED"}

    text = cli("run", TARGET, DOCUMENTS, "--db", db, "--submit", "--no-wait")
    lines = text.stdout.splitlines()
    assert lines[-1] == "9 queued for `handrail worker`; follow them with `handrail runs list`"
    kettle = queued["01_refund_cracked_kettle.eml"]
    assert lines[0].split() == [kettle["run_id"], "queued", kettle["document"]]

    worker = start_worker(tmp_path, TARGET, "--db", db)
    try:
        worker.first_line()
        waited = cli("run", TARGET, DOCUMENTS, "--db", db, "--submit", "--json", "--timeout", "60")
    finally:
        code = worker.stop(signal.SIGINT)
    assert code == 0, worker.output()
    assert waited.exit_code == 0, waited.stderr
    done = by_document(waited.json_lines())
    assert statuses(list(done.values())) == STATUSES
    for name, line in queued.items():
        if line["status"] == "queued":
            assert done[name]["run_id"] == line["run_id"]


def test_waiting_without_a_worker_times_out(cli: Invoke, db: str, tmp_path: Path) -> None:
    (tmp_path / "ticket.txt").write_text("Please refund order LH-1.\n")
    result = cli("run", TARGET, "ticket.txt", "--db", db, "--submit", "--timeout", "0.3")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == (
        "error: 1 submitted runs still waiting after 0.3s; is a `handrail worker` running for "
        "this pipeline on this database?\n"
    )


def test_a_worker_on_an_unusable_database_says_so(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    bad = f"sqlite:///{tmp_path / 'a-file' / 'handrail.db'}"
    worker = start_worker(tmp_path, TARGET, "--db", bad)
    assert worker.popen.wait(60) == 1
    assert worker.out.read_text() == ""
    assert worker.err.read_text().startswith(f"error: cannot use the SQLite database {bad} ")


def test_a_worker_with_a_held_executor_id_refuses_to_start(
    cli: Invoke, db: str, tmp_path: Path
) -> None:
    first = start_worker(tmp_path, TARGET, "--db", db, "--executor-id", "w1")
    try:
        assert first.first_line().startswith("worker w1 serving support_triage")
        (tmp_path / "second").mkdir()
        second = start_worker(tmp_path / "second", TARGET, "--db", db, "--executor-id", "w1")
        assert second.popen.wait(60) == 1
        assert second.err.read_text() == (
            f"error: executor id `w1` is held by another live process on {db}; give this one "
            "another --executor-id\n"
        )
    finally:
        assert first.stop() == 0


def test_submitting_a_failed_document_again_waits_for_its_retry(
    cli: Invoke, db: str, tmp_path: Path
) -> None:
    voicemail = str(Path(DOCUMENTS) / "09_voicemail_no_contact.txt")
    worker = start_worker(tmp_path, TARGET, "--db", db)
    try:
        worker.first_line()
        [first] = cli("run", TARGET, voicemail, "--db", db, "--submit", "--json").json_lines()
        [again] = cli("run", TARGET, voicemail, "--db", db, "--submit", "--json").json_lines()
        with SqlStore(db) as store:
            stored = store.get_run(again["run_id"])
    finally:
        assert worker.stop() == 0, worker.output()
    assert (first["status"], again["status"], again["run_id"]) == (
        "failed",
        "failed",
        first["run_id"],
    )
    assert stored is not None and stored.started_at is not None
    retried = [w for w in dbos_statuses(db).items() if w[0] != first["run_id"]]
    assert [status for _, status in retried] == ["SUCCESS"], "the retry ran to its end"
    assert worker.err.read_text() == ""


def test_a_traced_worker_sends_every_run_it_serves_before_it_exits(
    cli: Invoke, db: str, tmp_path: Path
) -> None:
    worker = start_worker(
        tmp_path, TARGET, "--db", db, "--trace", env={"OTEL_TRACES_EXPORTER": "console"}
    )
    try:
        worker.first_line()
        lines = cli("run", TARGET, DOCUMENTS, "--db", db, "--submit", "--json").json_lines()
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, worker.output()
    stderr = worker.err.read_text()
    decoder = json.JSONDecoder()
    spans = []
    at = stderr.find("{\n")
    while at != -1:
        span, end = decoder.raw_decode(stderr, at)
        spans.append(span)
        at = stderr.find("{\n", end)
    run_spans = {
        s["attributes"]["handrail.run.id"]: s
        for s in spans
        if s["name"] == "invoke_workflow support_triage"
    }
    # every document the worker ran (the blank upload fails before it reaches the queue)
    served = {line["run_id"] for line in lines if line["steps"]}
    assert served and served <= set(run_spans)
    for run_id in served:
        status = next(line["status"] for line in lines if line["run_id"] == run_id)
        assert run_spans[run_id]["attributes"]["handrail.run.status"] == status
    assert f"tracing: {len(spans)} spans sent to console" in stderr
