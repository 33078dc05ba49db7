"""The HTTP trigger on a real `handrail serve` (a process of its own on a free loopback port):
a signed POST is run by the server's own worker; its status URL, read with the source's
signature, follows a run from queued to completed once a worker ran it, and from waiting for
review (a pending review) to rejected (decided) once a lead rejected it; a server killed
(SIGKILL) between the commit and its answer, restarted and asked again, answers with the run it
had queued, and that run ends, once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import pytest
from sqlalchemy import select, text
from tests.browser import live

from handrail.core.records import RunStatus
from handrail.durable import SqlStore, schema
from handrail.triggers.http import sign, sign_status

ROOT = Path(__file__).resolve().parents[2]
HAPPY = str(ROOT / "tests" / "pipelines" / "happy.py") + ":pipeline"
DYING = str(ROOT / "tests" / "triggers" / "dying.py") + ":pipeline"
BRANCHES = str(ROOT / "tests" / "pipelines" / "branches.py") + ":pipeline"
SECRET = "live-test-secret-0123456789abcdef"


class Serve(live.Server):
    """`handrail serve --source crm ARGS`, with the source's secret (and `env`) in its
    environment."""

    def __init__(
        self, project: live.Project, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.env = {"HANDRAIL_SOURCE_CRM_SECRET": SECRET, "PYTHONPATH": str(ROOT)} | (env or {})
        super().__init__(project, "--source", "crm", *args)

    def _start(self, args: Any) -> None:
        clean = live.clean_env
        with mock.patch.object(live, "clean_env", lambda db: clean(db, **self.env)):
            super()._start(args)


def post(server: live.Server, body: bytes, key: str, *, pipeline: str = "happy") -> httpx.Response:
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "text/plain",
        "Idempotency-Key": key,
        "X-Handrail-Source": "crm",
        "X-Handrail-Timestamp": stamp,
        "X-Handrail-Signature": sign(SECRET, stamp, body),
    }
    return httpx.post(
        f"{server.url}/api/v1/pipelines/{pipeline}/documents",
        content=body,
        headers=headers,
        timeout=60,
    )


def status(server: live.Server, url: str) -> dict[str, Any]:
    """The run's status at `url` (a 202's status_url), signed as the source."""
    stamp = str(int(time.time()))
    headers = {
        "X-Handrail-Source": "crm",
        "X-Handrail-Timestamp": stamp,
        "X-Handrail-Signature": sign_status(SECRET, stamp, url),
    }
    answer = httpx.get(f"{server.url}{url}", headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def finished(project: live.Project, run_id: str) -> RunStatus | None:
    """The run's status once its workflow has run it to an end (with `--model fake`'s
    heuristic, the happy pipeline stops for review), else None."""
    with SqlStore(project.db, read_only=True) as store:
        record = store.get_run(run_id)
    return None if record is None or record.status is RunStatus.RUNNING else record.status


def counts(project: live.Project, run_id: str) -> tuple[int, int, int]:
    """Receipts, run records and DBOS workflows for `run_id`."""
    with SqlStore(project.db, read_only=True) as store, store.reading() as conn:
        receipts = conn.execute(
            select(schema.receipts.c.key).where(schema.receipts.c.run_id == run_id)
        ).all()
        runs = conn.execute(
            select(schema.runs.c.run_id).where(schema.runs.c.run_id == run_id)
        ).all()
        flows = conn.execute(
            text("SELECT count(*) FROM workflow_status WHERE workflow_uuid = :id"), {"id": run_id}
        ).scalar_one()
    return len(receipts), len(runs), int(flows)


@pytest.fixture
def project(tmp_path: Path) -> live.Project:
    return live.Project(folder=tmp_path, target=HAPPY)


def test_a_signed_post_is_run_to_completion_by_the_server(project: live.Project) -> None:
    server = Serve(project)
    try:
        assert "takes documents for happy from crm" in server.output()
        answer = post(server, b"Refund please. Order: A-17, amount 100.0", "order-1")
        assert answer.status_code == 202, answer.text
        run_id = answer.json()["run_id"]
        ended = live.wait_until(lambda: finished(project, run_id), what=f"run {run_id} to end")
        assert ended in (RunStatus.NEEDS_REVIEW, RunStatus.COMPLETED)
        assert counts(project, run_id) == (1, 1, 1)
    finally:
        server.stop()


def test_the_status_url_follows_a_run_from_queued_to_completed(project: live.Project) -> None:
    project = live.Project(folder=project.folder, target=BRANCHES)
    server = Serve(project, "--no-worker")  # the run waits in the queue until a worker comes
    worker = None
    try:
        answer = post(server, b"Order: A-3, amount 30.0", "order-3", pipeline="branches").json()
        url = answer["status_url"]
        queued = status(server, url)
        assert queued["status"] == "queued" and queued["review"] is None
        assert (queued["run_id"], queued["pipeline"]) == (answer["run_id"], "branches")

        worker = subprocess.Popen(
            [sys.executable, "-m", "handrail.cli", "worker", BRANCHES, "--db", project.db],
            cwd=project.folder,
            env=live.clean_env(project.db, PYTHONPATH=str(ROOT)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        done = live.wait_until(
            lambda: (s := status(server, url))["status"] == "completed" and s,
            what="the worker to run it",
        )
        assert done == queued | {"status": "completed"}
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=60)
        server.stop()


def test_the_status_url_says_when_a_run_waits_for_review_and_when_it_was_decided(
    project: live.Project,
) -> None:
    token = project.add_reviewer("lee", ["default"], lead=True)
    server = Serve(project)
    try:
        answer = post(server, b"Refund please. Order: A-4, amount 40.0", "order-4").json()
        url = answer["status_url"]
        waiting = live.wait_until(
            lambda: (s := status(server, url))["status"] == "needs_review" and s,
            what="the run to wait for review",
        )
        assert waiting["review"] == "pending" and waiting["run_id"] == answer["run_id"]
        with project.store() as store:
            [review] = [r for r in store.list_reviews() if r.run_id == answer["run_id"]]
        decided = httpx.post(
            f"{server.url}/api/v1/reviews/{review.review_id}/decision",
            json={"action": "reject", "reason": "not ours"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        assert decided.status_code == 200, decided.text

        ended = live.wait_until(
            lambda: (s := status(server, url))["status"] == "rejected" and s,
            what="the rejected run to end",
        )
        assert ended == waiting | {"status": "rejected", "review": "decided"}
    finally:
        server.stop()


def test_a_server_killed_between_commit_and_answer_answers_the_retry_with_the_same_run(
    project: live.Project,
) -> None:
    body = b"Refund please. Order: B-2, amount 40.0"
    dying = Serve(
        live.Project(folder=project.folder, target=DYING),
        env={"TRIGGER_TEST_DIE_AFTER_COMMIT": "1"},
    )
    try:
        with pytest.raises(httpx.TransportError):
            post(dying, body, "order-2")
        assert dying.proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        dying.stop()
    with SqlStore(project.db, read_only=True) as store, store.reading() as conn:
        [receipt] = conn.execute(select(schema.receipts)).all()
    assert receipt.key == "happy/order-2"  # committed before the kill, never answered

    server = Serve(project)
    try:
        answer = post(server, body, "order-2")
        assert answer.status_code == 202, answer.text
        assert answer.json()["run_id"] == receipt.run_id and answer.json()["new"] is False
        ended = live.wait_until(lambda: finished(project, receipt.run_id), what="the run to end")
        assert ended in (RunStatus.NEEDS_REVIEW, RunStatus.COMPLETED)
        assert counts(project, receipt.run_id) == (1, 1, 1)
    finally:
        server.stop()
