"""A throwaway PostgreSQL server for tests.

`initdb` in a fresh temporary directory, `pg_ctl start` on a free loopback port (TCP on
127.0.0.1 only, the unix socket inside the temporary directory), trust authentication, and
`pg_ctl stop -m fast` plus removal of the directory at the end. When the process runs as root,
the server runs as the `postgres` OS user (PostgreSQL refuses to run as root).

It never uses a cluster the machine may already run (Debian's package starts one on 5432).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

DEBIAN_PACKAGE = "postgresql"
SUPERUSER = "postgres"


class PostgresNotFound(RuntimeError):
    """The PostgreSQL server binaries (`initdb`, `pg_ctl`, `postgres`) are not installed."""


class PostgresFailed(RuntimeError):
    """The server binaries are there but the cluster could not be created or started."""


def find_bindir() -> Path | None:
    """The directory holding `initdb`, `pg_ctl` and `postgres`, if any."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        candidates.append(Path(pg_ctl).resolve().parent)

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.name  # /usr/lib/postgresql/<version>/bin
        return tuple(int(p) for p in name.split(".") if p.isdigit())

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    ]
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    return None


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running throwaway cluster."""

    bindir: Path
    root: Path
    port: int

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database and return its URL."""
        self._client("createdb", name)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self._client("dropdb", "--if-exists", "--force", name)

    def stop(self) -> None:
        """Stop the server (fast mode: running sessions are ended) and remove its files."""
        try:
            pg_ctl = str(self.bindir / "pg_ctl")
            _run(_as_server_user([pg_ctl, "stop", "-D", str(self.data), "-m", "fast", "-w"]))
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _client(self, tool: str, *args: str) -> None:
        command = [str(self.bindir / tool), "-h", "127.0.0.1", "-p", str(self.port)]
        _run([*command, "-U", SUPERUSER, *args])


def start(*, attempts: int = 3, durable: bool = False) -> PostgresServer:
    """initdb and start a cluster; raises `PostgresNotFound` when the binaries are missing.

    A test server skips the disk flushes (fsync, synchronous commits, full-page writes);
    `durable=True` keeps a real server's defaults (what `bench/durable.py` measures)."""
    bindir = find_bindir()
    if bindir is None:
        raise PostgresNotFound(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: looked at `pg_config "
            "--bindir`, pg_ctl on PATH and /usr/lib/postgresql/*/bin; install the Debian "
            f"package `{DEBIAN_PACKAGE}` (apt-get install {DEBIAN_PACKAGE})"
        )
    root = Path(tempfile.mkdtemp(prefix="handrail-pg-"))
    try:
        _chown_to_server_user(root)
        initdb = [str(bindir / "initdb"), "-D", str(root / "data"), "-U", SUPERUSER]
        _run(_as_server_user([*initdb, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"]))
        last: PostgresFailed | None = None
        for _ in range(attempts):  # another process may take the free port before we bind it
            port = free_port()
            server = PostgresServer(bindir=bindir, root=root, port=port)
            relaxed = ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
            options = " ".join(
                [
                    f"-p {port}",
                    f"-k {root}",
                    "-c listen_addresses=127.0.0.1",
                    *([] if durable else relaxed),
                ]
            )
            log = root / "server.log"
            try:
                pg_ctl = [str(bindir / "pg_ctl"), "start", "-D", str(root / "data"), "-l", str(log)]
                _run(_as_server_user([*pg_ctl, "-w", "-t", "60", "-o", options]))
                return server
            except PostgresFailed as e:
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                last = PostgresFailed(f"{e}\n--- server log ---\n{tail}")
        assert last is not None
        raise last
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


@contextmanager
def server() -> Iterator[PostgresServer]:
    """A started cluster, stopped and removed on exit."""
    running = start()
    try:
        yield running
    finally:
        running.stop()


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _as_server_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SUPERUSER, "--", *command] if _is_root() else command


def _chown_to_server_user(path: Path) -> None:
    if _is_root():
        shutil.chown(path, user=SUPERUSER)


def _run(command: list[str]) -> None:
    try:
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            cwd=tempfile.gettempdir(),
        )
    except subprocess.CalledProcessError as e:
        raise PostgresFailed(
            f"`{' '.join(command)}` exited {e.returncode}: {(e.stderr or e.stdout).strip()}"
        ) from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise PostgresFailed(f"`{' '.join(command)}` failed: {e}") from e
