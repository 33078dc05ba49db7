"""A live review inbox for the browser tests, the screenshots and the benchmark: a project folder
with the `inbox_invoice` documents run into a SQLite file, reviewers added with their tokens, and
`handrail serve` in a process of its own on a free loopback port, waited for by its ready line.

Everything goes through `handrail` in subprocesses, as a user would type it; the tests read the
database itself (`SqlStore`) to check what was recorded.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TARGET = str(ROOT / "tests" / "pipelines" / "inbox_invoice.py") + ":pipeline"
CHROMIUM_ENV = "HANDRAIL_CHROMIUM"
DEBIAN_CHROMIUM = "/usr/bin/chromium"
READY = re.compile(r"handrail serve: (http://\S+)")
TOKEN = re.compile(r"\bhr_[A-Za-z0-9_-]{20,}")


def chromium() -> str | None:
    """The Chromium binary to drive: $HANDRAIL_CHROMIUM, else Debian's, else `chromium` on PATH."""
    chosen = os.environ.get(CHROMIUM_ENV)
    if chosen:
        return chosen if Path(chosen).is_file() else None
    if Path(DEBIAN_CHROMIUM).is_file():
        return DEBIAN_CHROMIUM
    return shutil.which("chromium")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (None when they can)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as e:
        return f"Playwright's Python package is not installed ({e}): pip install -e '.[test]'"
    if chromium() is None:
        where = os.environ.get(CHROMIUM_ENV)
        if where:
            return f"{CHROMIUM_ENV}={where} is not a file: point it at a Chromium binary"
        return (
            f"Chromium is not installed (no {DEBIAN_CHROMIUM}, none on PATH): "
            f"apt-get install chromium, or set {CHROMIUM_ENV} to a Chromium binary"
        )
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def clean_env(db: str, **extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
    return keep | {"HANDRAIL_DATABASE_URL": db, "PYTHONUNBUFFERED": "1"} | extra


@dataclass(frozen=True, kw_only=True, slots=True)
class Done:
    code: int
    stdout: str
    stderr: str


@dataclass(kw_only=True)
class Project:
    """A folder with the fixture's documents and a SQLite file for them."""

    folder: Path
    target: str = TARGET
    tokens: dict[str, str] = field(default_factory=dict)
    """Each reviewer's token, as `handrail reviewers add` printed it."""

    @property
    def db(self) -> str:
        return f"sqlite:///{self.folder / 'inbox.db'}"

    def handrail(self, *args: str, timeout: float = 120) -> Done:
        """`handrail ARGS... --db DB` in a process of its own, from the project folder."""
        done = subprocess.run(
            [sys.executable, "-m", "handrail.cli", *args, "--db", self.db],
            cwd=self.folder,
            env=clean_env(self.db),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Done(code=done.returncode, stdout=done.stdout, stderr=done.stderr)

    def run_documents(self, folder: str = "documents") -> None:
        from tests.pipelines.inbox_invoice import write_documents

        write_documents(self.folder / folder)
        done = self.handrail("run", self.target, folder)
        assert done.code == 0, f"handrail run failed:\n{done.stdout}\n{done.stderr}"

    def add_reviewer(self, name: str, queues: Sequence[str], *, lead: bool = False) -> str:
        args = ["reviewers", "add", name, "--queues", ",".join(queues)]
        done = self.handrail(*args, *(["--lead"] if lead else []))
        assert done.code == 0, f"handrail reviewers add failed:\n{done.stdout}\n{done.stderr}"
        found = TOKEN.search(done.stdout)
        assert found, f"no token in `handrail reviewers add`'s output:\n{done.stdout}"
        self.tokens[name] = found.group()
        return found.group()

    def store(self) -> Any:
        """A read-only `SqlStore` on the project's database (close it after use)."""
        from handrail.durable import SqlStore

        return SqlStore(self.db, read_only=True)

    def review_id(self, filename: str) -> str:
        """The id of the pending-or-decided review of the document named `filename`."""
        store = self.store()
        try:
            for review in store.list_reviews(pending_only=False):
                if review.document_id.endswith(filename):
                    return str(review.review_id)
        finally:
            store.close()
        raise AssertionError(f"no review for {filename} in {self.db}")


class Server:
    """`handrail serve` in a process of its own, on a free port, up once its ready line came."""

    def __init__(
        self, project: Project, *args: str, ready_within: float = 90, attempts: int = 3
    ) -> None:
        self.project = project
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        for attempt in range(attempts):
            self.port = free_port()
            self._start(args)
            if self._wait(ready_within):
                return
            self.stop()
            taken = any("address already in use" in ln.lower() for ln in self.lines)
            if not taken or attempt == attempts - 1:
                break
        raise AssertionError(
            f"`handrail serve` was not ready within {ready_within:.0f} s "
            f"(exit code {self.proc.poll()}); its output:\n" + "".join(self.lines[-60:])
        )

    def _start(self, args: Sequence[str]) -> None:
        self.lines.clear()
        self._ready.clear()
        command = [sys.executable, "-m", "handrail.cli", "serve", "--db", self.project.db]
        command += ["--port", str(self.port), "--target", self.project.target, *args]
        self.proc = subprocess.Popen(
            command,
            cwd=self.project.folder,
            env=clean_env(self.project.db),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:  # drained to the end, so the server never blocks on a pipe
            self.lines.append(line)
            found = READY.search(line)
            if found and not self._ready.is_set():
                self.url = found.group(1).rstrip("/")
                self._ready.set()
        self._ready.set()  # the process ended: wake the waiter

    def _wait(self, timeout: float) -> bool:
        self._ready.wait(timeout)
        return bool(self.url) and self.proc.poll() is None

    def output(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self._reader.join(timeout=10)


def wait_until(
    condition: Callable[[], Any], *, timeout: float = 60, what: str = "the condition"
) -> Any:
    """Poll `condition` until it returns something truthy; AssertionError naming `what` after
    `timeout` seconds. The poll interval grows from 20 ms to 250 ms."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(pause)
        pause = min(pause * 2, 0.25)
