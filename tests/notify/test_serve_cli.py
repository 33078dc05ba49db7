"""`handrail serve` in a process of its own sends the outbox of the project's
`[tool.handrail.notify]` (its dispatcher runs beside the inbox, with or without its worker)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from tests.cli.triage import wait_for

from handrail.durable import SqlStore
from handrail.notify import Notifications, Webhook

from .conftest import Sink
from .helpers import SECRET_WORD, paused


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


async def test_serve_sends_the_outbox(tmp_path: Path, sink: Sink) -> None:
    db = f"sqlite:///{tmp_path / 'runs' / 'handrail.db'}"
    (tmp_path / "pyproject.toml").write_text(
        "[tool.handrail.notify]\n"
        "[[tool.handrail.notify.channels]]\n"
        f'name = "hook"\nkind = "webhook"\nurl = "{sink.url}"\nsecret_env = "HR_TEST_SECRET"\n'
    )
    notify = Notifications(channels=[Webhook(name="hook", url=sink.url)])
    with SqlStore(db, routes=notify.routes) as store:
        record = await paused(store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDRAIL_")}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "handrail.cli",
            "serve",
            "--no-worker",
            "--db",
            db,
            "--port",
            f"{port}",
        ],
        cwd=tmp_path,
        env=env | {"HR_TEST_SECRET": "serve-signing-secret"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for(lambda: sink.received, timeout=90, what="a notification")
        wait_for(lambda: listening(port), timeout=90, what="the server")  # SIGTERM stops it
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    [request] = sink.received
    assert json.loads(request.body)["link"].endswith(f"/reviews/{record.reviews[0].review_id}")
    assert request.headers["X-Handrail-Signature"].startswith("sha256=")
    assert SECRET_WORD not in request.body.decode()
    assert b"serve-signing-secret" not in err
    with SqlStore(db) as store:
        assert [r.status for r in store.outbox_rows()] == ["delivered"]
