"""`handrail serve` as people start it: loopback only unless told, and a live server whose
worker loop continues a run as soon as a reviewer approves it in the inbox."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from handrail.cli.main import app

from .conftest import INVOICES, Inbox, csrf_of, form_values


def test_serve_refuses_an_address_other_machines_reach_without_allow_remote(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--db", str(tmp_path / "h.db")])
    assert result.exit_code == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr
    assert "--allow-remote" in result.stderr
    assert not (tmp_path / "h.db").exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_live_server_continues_the_run_a_reviewer_approves(inbox: Inbox, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "HANDRAIL_DATABASE_URL": inbox.db}
    command = [
        sys.executable,
        "-m",
        "handrail.cli",
        "serve",
        "--port",
        str(port),
        "--target",
        INVOICES,
    ]
    server = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: queue.Queue[str] = queue.Queue()
    assert server.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(x) for x in server.stdout], daemon=True)
    reader.start()
    try:
        ready = ""
        deadline = time.monotonic() + 120
        while not ready.startswith("handrail serve:"):
            assert time.monotonic() < deadline and server.poll() is None, server.stderr.read()
            try:
                ready = lines.get(timeout=1)
            except queue.Empty:
                continue
        assert ready.strip() == f"handrail serve: http://127.0.0.1:{port} (db {inbox.db})"
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"Origin": base}) as browser:
            assert browser.get("/", headers={"Host": "rebound.example"}).status_code == 400
            page = browser.get("/signin")
            signed = browser.post(
                "/signin", data={"token": inbox.tokens["ana"], "csrf": csrf_of(page.text)}
            )
            assert signed.status_code == 303
            review_id = inbox.pending()[0]
            form = form_values(browser.get(f"/reviews/{review_id}").text)
            decided = browser.post(
                f"/reviews/{review_id}/decide", data=form | {"action": "approve"}
            )
            assert decided.status_code == 303
            status = ""
            until = time.monotonic() + 60
            while status != "completed" and time.monotonic() < until:
                page = browser.get(f"/reviews/{review_id}").text
                status = re.search(r'id="run-status"[^>]*>([a-z_]+)<', page).group(1)
                time.sleep(0.2)
            assert status == "completed"
        run = inbox.service.run(inbox.service.review(review_id).request.run_id)
        assert run.outputs["book"].startswith("booked ")  # the rule after the review ran
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        reader.join(timeout=10)
    assert server.returncode == 0, server.stderr.read() if server.stderr else ""
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert "handrail serve stopped (a signal asked it to)\n" in rest


def test_which_pipeline_the_worker_loop_continues(tmp_path: Path, monkeypatch) -> None:
    from handrail.durable import SqlStore
    from handrail.review import ReviewService
    from handrail.web.server import allowed_hosts, worker_pipeline

    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'h.db'}"
    service = ReviewService(db)
    pipeline, note = worker_pipeline(service, None)
    assert pipeline is None and "no pipeline is recorded in the database yet" in note
    (tmp_path / "invoices.py").write_text(Path(INVOICES).read_text(encoding="utf-8"))
    with SqlStore(db) as store:
        store.save_pipeline("inbox_invoice", str(tmp_path / "invoices.py") + ":pipeline")
    pipeline, note = worker_pipeline(service, None)
    assert pipeline is not None and pipeline.name == "inbox_invoice" and note == ""
    with SqlStore(db) as store:
        store.save_pipeline("refunds", str(tmp_path / "refunds.py") + ":pipeline")
    pipeline, note = worker_pipeline(service, None)
    assert pipeline is None
    assert "`inbox_invoice`, `refunds`" in note and "handrail worker TARGET" in note
    pipeline, _ = worker_pipeline(service, INVOICES)
    assert pipeline is not None and pipeline.name == "inbox_invoice"
    service.close()
    assert allowed_hosts("127.0.0.1", 8765, ["inbox.example.com"]) == [
        "127.0.0.1:8765",
        "localhost:8765",
        "[::1]:8765",
        "inbox.example.com",
    ]
