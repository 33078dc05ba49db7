"""A database password appears in no output of any command: not in a shown URL, an error, a
worker's ready line or a log line (DBOS's included), whether it is given as `user:password@`
(even holding `@`), as `?password=`, or through HANDRAIL_DATABASE_URL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests import _postgres  # noqa: E402

from .conftest import REFUND, Invoke  # noqa: E402
from .triage import DOCUMENTS, TARGET, start_worker  # noqa: E402

SECRET = "p@ss-S3CRET-w0rd"
LEAKS = ("S3CRET", "ss-S3", "p@ss")
"""Any of these in an output is (part of) the password."""


def url_forms(port: int, database: str) -> list[str]:
    return [
        f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/{database}",
        f"postgresql://postgres@127.0.0.1:{port}/{database}?password={SECRET}",
        f"postgresql://postgres:{SECRET}@127.0.0.1:{port}/{database}?sslmode=disable",
    ]


def assert_no_secret(*outputs: str) -> None:
    for output in outputs:
        for leak in LEAKS:
            assert leak not in output, output


@pytest.mark.parametrize("form", [0, 1, 2])
def test_commands_on_an_unreachable_database_never_show_the_password(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: int
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ticket.txt").write_text(REFUND)
    url = url_forms(_postgres.free_port(), "runs")[form]  # nothing listens there
    commands = [
        ("runs", "list", "--db", url),
        ("runs", "show", "run-1", "--db", url),
        ("review", "list", "--db", url),
        ("review", "show", "rv-1", "--db", url),
        ("report", "--db", url),
        ("run", TARGET, "ticket.txt", "--db", url),
        ("run", TARGET, "ticket.txt", "--db", url, "--submit"),
    ]
    for command in commands:
        result = cli(*command)
        assert result.exit_code == 1, (command, result.stdout, result.stderr)
        assert "127.0.0.1" in result.stderr  # the URL is named, its password masked
        assert_no_secret(result.stdout, result.stderr)
    through_env = cli("runs", "list", env={"HANDRAIL_DATABASE_URL": url})
    assert through_env.exit_code == 1
    assert_no_secret(through_env.stdout, through_env.stderr)


@pytest.fixture(scope="module")
def server() -> Iterator[_postgres.PostgresServer]:
    try:
        running = _postgres.start()
    except _postgres.PostgresNotFound as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e}; CI must run the Postgres tests", pytrace=False)
        pytest.skip(str(e))
    try:
        yield running
    finally:
        running.stop()


def test_a_worker_and_a_batch_on_postgres_never_show_the_password(
    server: _postgres.PostgresServer, tmp_path: Path
) -> None:
    """The test cluster trusts every login, so a URL with any password connects."""
    server.create_database("secrets")
    url = url_forms(server.port, "secrets")[0]
    worker = start_worker(tmp_path, TARGET, "--db", url, "--concurrency", "2")
    try:
        ready = worker.first_line()
        assert ready.startswith("worker ") and "postgresql://postgres:***@127.0.0.1:" in ready
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
        env["HANDRAIL_DATABASE_URL"] = url_forms(server.port, "secrets")[1]
        for command in (
            ("run", TARGET, DOCUMENTS, "--submit", "--timeout", "120"),
            ("runs", "list"),
            ("review", "list"),
            ("report",),
        ):
            result = subprocess.run(
                [sys.executable, "-m", "handrail.cli", *command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert result.returncode == 0, result.stderr
            assert_no_secret(result.stdout, result.stderr)
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, worker.output()
    assert_no_secret(worker.output())
