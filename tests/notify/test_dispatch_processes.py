"""Two dispatchers in two OS processes, started at the same moment on the same outbox (a SQLite
file, then Postgres), sending to a real HTTP sink: every (event, channel) is delivered once.
The threads of `test_delivery.py` share one interpreter; these share only the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.cli.triage import wait_for

from handrail.durable import SqlStore
from handrail.notify import Notifications, Webhook

from .conftest import Sink
from .helpers import paused

HELPER = Path(__file__).with_name("dispatch_process.py")
NAMES = ("first", "second")
ROWS = 40


async def test_two_dispatcher_processes_deliver_each_row_once(
    db_url: str, sink: Sink, tmp_path: Path
) -> None:
    sink.delay = 0.05  # a send takes a while: the two processes' rounds interleave
    notify = Notifications(channels=[Webhook(name="hook", url=sink.url)])
    with SqlStore(db_url, routes=notify.routes) as store:
        for n in range(ROWS):
            await paused(store, n)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDRAIL_")}
    processes = [
        subprocess.Popen(
            [sys.executable, str(HELPER), db_url, sink.url, str(tmp_path), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=tmp_path,
        )
        for name in NAMES
    ]
    try:
        wait_for(
            lambda: (
                all((tmp_path / f"{n}.ready").exists() for n in NAMES)
                or any(p.poll() is not None for p in processes)
            ),
            timeout=60,
            what="both dispatchers ready",
        )
        (tmp_path / "go").touch()  # both start sending now
        outputs = [p.communicate(timeout=120) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err.decode()
    reports = [json.loads(out) for out, _ in outputs]
    ids = [r.headers["X-Handrail-Event-Id"] for r in sink.received]
    assert len(ids) == ROWS and len(set(ids)) == ROWS  # each event once, none lost
    assert sum(r["delivered"] for r in reports) == ROWS
    # Both were dispatching at once (which one sends what is up to their claims).
    assert max(r["started"] for r in reports) < min(r["stopped"] for r in reports), reports
    with SqlStore(db_url) as store:
        rows = store.outbox_rows()
    assert len(rows) == ROWS
    assert {(r.status, r.attempts) for r in rows} == {("delivered", 1)}  # claimed once each
