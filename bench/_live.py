"""What the benchmarks that talk to a live server share: their command line, a fresh database
per backend (a SQLite file, or a database on a throwaway Postgres cluster) measured in turn, a
server process waited for by its ready line, percentiles, ratios to the anchor and the table.
Imported by the bench scripts, which run from this folder (`python bench/web.py`); importing it
puts the repository root on `sys.path` (for `tests/`), and `src/` when handrail is not
installed."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from _host import handrail_source, machine_facts, package_versions

ROOT = Path(__file__).resolve().parent.parent
# Run from a checkout even when handrail is not installed, and reach `tests/` from the root.
try:
    import handrail  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(ROOT / "src"))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import _postgres  # noqa: E402 - the throwaway cluster the tests start


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (linear between the two nearest ranks)."""
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def ratios(mine: dict[str, float | None], bare: dict[str, float | None]) -> dict[str, Any]:
    """handrail's figure / the anchor's, per figure (None where either is missing)."""
    out: dict[str, Any] = {}
    for key, value in mine.items():
        other = bare.get(key)
        out[key] = None if value is None or not other else round(value / other, 2)
    return out


def print_rows(header: list[str], rows: list[list[str]], left: Sequence[int]) -> None:
    """A table under a blank line: the columns in `left` aligned left, the others right."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    print()
    for row in [header, ["-" * w for w in widths], *rows]:
        print(
            "  ".join(
                c.ljust(w) if i in left else c.rjust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            ).rstrip()
        )


def parser(doc: str | None, quick: str) -> argparse.ArgumentParser:
    """The options every live benchmark has: --quick, --postgres, --json, and the hidden
    --serve-anchor URL PORT that starts its anchor in a process of its own."""
    found = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    found.add_argument("--quick", action="store_true", help=quick)
    found.add_argument("--postgres", action="store_true", help="also on a throwaway Postgres")
    found.add_argument("--json", action="store_true", help="print exactly one JSON object")
    found.add_argument("--serve-anchor", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    return found


def measure_backends(
    dbs: Databases, postgres: bool, measure: Callable[[str, str], Any], tag: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """`measure(backend, url)` on SQLite, then (with `postgres`) on Postgres: each backend's
    result, and why each one that failed did (the other's figures are still worth printing)."""
    results: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for backend in ("sqlite", "postgres") if postgres else ("sqlite",):
        try:
            if backend == "postgres":
                print(f"[{tag}] starting Postgres", file=sys.stderr, flush=True)
            url = dbs.sqlite() if backend == "sqlite" else dbs.postgres()
            results[backend] = measure(backend, url)
        except Exception as e:
            traceback.print_exc()
            failed[backend] = f"{type(e).__name__}: {str(e).strip()[:500]}"
            print(f"[{tag}] {backend} FAILED: {failed[backend]}", file=sys.stderr, flush=True)
    return results, failed


def run_facts(
    *,
    source: dict[str, Any],
    packages: Sequence[str],
    databases: dict[str, str],
    config: Any,
    started: float,
    failed: dict[str, str],
    **extra: Any,
) -> dict[str, Any]:
    """The JSON's `machine`: where and on what it ran (`source` from `handrail_source()`, taken
    before measuring), the config, the time since `started` (perf_counter), what failed."""
    return {
        **machine_facts(),
        **extra,
        "packages": package_versions(packages),
        "handrail_source": source,
        "databases": databases,
        "config": asdict(config),
        "elapsed_s": round(time.perf_counter() - started, 1),
        "failed": failed or None,
    }


class Databases:
    """A fresh SQLite file, or a fresh database on a throwaway Postgres cluster (fsync on, a
    real server's durability), per backend; `described` says what each one was."""

    def __init__(self, bench: str, sqlite_file: str) -> None:
        self.bench = bench
        self.sqlite_file = sqlite_file
        self.root = Path(tempfile.mkdtemp(prefix=f"handrail-bench-{bench}-"))
        self.server: Any = None
        self.described: dict[str, str] = {}

    def sqlite(self) -> str:
        import sqlite3

        self.described["sqlite"] = f"SQLite {sqlite3.sqlite_version}, a WAL file in {self.root}"
        return f"sqlite:///{self.root / self.sqlite_file}"

    def postgres(self) -> str:
        import psycopg

        self.server = _postgres.start(durable=True)
        admin = self.server.url("postgres")
        name = f"bench_{self.bench}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
            row = conn.execute("SHOW server_version").fetchone()
        self.described["postgres"] = (
            f"PostgreSQL {row[0] if row else '?'}, a throwaway cluster from {self.server.bindir} "
            f"on 127.0.0.1:{self.server.port} (fsync on)"
        )
        return str(self.server.url(name))

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)


def cpu_seconds(pid: int) -> float | None:
    """The CPU time (user and system, in seconds) process `pid` has used so far, from
    /proc/PID/stat; None where there is no /proc (not Linux)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Served:
    """A server process that is up: its URL and its process id."""

    url: str
    pid: int


@contextmanager
def server(command: list[str], ready: str, env: dict[str, str]) -> Iterator[Served]:
    """A server process; yields its URL (from its ready line, `<ready> http://...`) and pid."""
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
    )
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if ready in line and not url:
                url.append(line.split(ready, 1)[1].split()[0].rstrip("/"))
                found.set()
        found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        found.wait(120)
        if not url or proc.poll() is not None:
            raise RuntimeError(f"{command[2:5]} did not start:\n" + "".join(lines[-40:]))
        yield Served(url=url[0], pid=proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=10)


@contextmanager
def process(command: list[str], ready: str, env: dict[str, str]) -> Iterator[str]:
    """A server process; yields the URL from its ready line (`<ready> http://...`)."""
    with server(command, ready, env) as served:
        yield served.url


__all__ = [
    "ROOT",
    "Databases",
    "Served",
    "cpu_seconds",
    "handrail_source",
    "measure_backends",
    "parser",
    "percentile",
    "print_rows",
    "process",
    "ratios",
    "run_facts",
    "server",
]
