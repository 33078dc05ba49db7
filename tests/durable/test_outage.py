"""A `handrail worker` whose Postgres goes away for a few seconds and comes back: it stays up,
logs a handful of lines (repeats collapsed, no tracebacks) instead of thousands, and serves the
runs submitted once the server is back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import _postgres
from tests.cli.triage import DOCUMENTS, STATUSES, TARGET, start_worker, statuses

OUTAGE_S = 6
MAX_LINES = 20
"""What an outage of `OUTAGE_S` may cost in worker log lines: a first line for each kind of
failure, one more per 10 s, a count of the repeats at exit (without collapsing: hundreds)."""


@pytest.fixture
def server() -> Iterator[_postgres.PostgresServer]:
    """A cluster of this test's own: it is stopped and started again."""
    try:
        running = _postgres.start()
    except _postgres.PostgresNotFound as e:
        if os.environ.get("CI"):
            pytest.fail(str(e), pytrace=False)
        pytest.skip(str(e))
    try:
        yield running
    finally:
        running.stop()


def pg_ctl(server: _postgres.PostgresServer, *args: str) -> None:
    command = [str(server.bindir / "pg_ctl"), *args, "-D", str(server.data), "-w"]
    _postgres._run(_postgres._as_server_user(command))


def restart(server: _postgres.PostgresServer) -> None:
    options = (
        f"-p {server.port} -k {server.root} -c listen_addresses=127.0.0.1 "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    log = str(server.root / "server.log")
    pg_ctl(server, "start", "-l", log, "-t", "60", "-o", options)


def test_a_worker_rides_out_a_postgres_outage_quietly(
    server: _postgres.PostgresServer, tmp_path: Path
) -> None:
    url = server.create_database("outage")
    worker = start_worker(tmp_path, TARGET, "--db", url, "--concurrency", "4")
    try:
        assert worker.first_line().startswith("worker ")
        pg_ctl(server, "stop", "-m", "fast")
        time.sleep(OUTAGE_S)
        assert worker.popen.poll() is None, f"the worker died in the outage:\n{worker.output()}"
        restart(server)

        env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
        submitted = subprocess.run(
            [
                sys.executable,
                "-m",
                "handrail.cli",
                "run",
                TARGET,
                DOCUMENTS,
                "--db",
                url,
                "--submit",
                "--timeout",
                "120",
                "--json",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert submitted.returncode == 0, submitted.stderr + worker.output()
        assert statuses([json.loads(x) for x in submitted.stdout.splitlines()]) == STATUSES
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, worker.output()
    lines = worker.err.read_text().splitlines()
    assert "Traceback" not in worker.err.read_text()
    assert 1 <= len(lines) <= MAX_LINES, "\n".join(lines)
    # Each kind of line is printed once, then counted: no line is repeated as it was.
    kinds = [line.split(" (repeated ")[0] for line in lines]
    assert len(kinds) - len(set(kinds)) <= len(set(kinds)), "\n".join(lines)
