#!/usr/bin/env python
"""Durable overhead of handrail: a run through `DurableRunner`, against a bare DBOS workflow.

    python bench/durable.py            # full run: 5 rounds x 100 runs per figure, a table
    python bench/durable.py --quick    # CI smoke run: 2 rounds x 20 runs
    python bench/durable.py --json     # exactly one JSON object on stdout (progress on stderr)
    python bench/durable.py --profile sqlite   # where one handrail run's wall time goes, then exit

The workload: a 4-node linear pipeline, Rule -> Classify -> Extract -> Rule, with `FakeModel` at
zero latency, each document run to completion before the next (sequential runs, distinct
documents, so every run is a new DBOS workflow). The anchor: a bare DBOS async workflow of 4
`DBOS.run_step_async` steps doing trivial work, started and awaited the same way (a workflow id,
`DBOS.start_workflow_async`, `get_result`). Both on SQLite (a WAL file in a temporary folder) and
on Postgres (a throwaway cluster this script starts, or `--postgres-url`), each measurement on a
fresh database. handrail and the bare workflow alternate in one process (DBOS is one runtime per
process: each measurement launches DBOS and destroys it); the figure is the median over rounds of
the wall time per run. Target: handrail <= 1.5 x the bare workflow. This is a benchmark, not a
test: it exits 0 whether or not the target is met. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import itertools
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# Run from a checkout even when handrail is not installed (`python bench/durable.py`).
try:
    import handrail  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(SRC))

from _host import handrail_source, machine_facts, package_versions  # noqa: E402 - bench/_host.py, beside this script
from pydantic import BaseModel  # noqa: E402 - handrail's own dependency, after the path fix

# The throwaway Postgres cluster the tests start (tests/_postgres.py), with a real server's
# durability unless --pg-no-fsync.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from tests import _postgres  # noqa: E402

TARGET_RATIO = 1.5
BACKENDS = ("sqlite", "postgres")
FRAMEWORKS = ("handrail", "dbos")
N_STEPS = 4
PIPELINE_NAME = "bench_durable"
BARE_WORKFLOW = "bench.bare_dbos"
POSTGRES_URL_ENV = "HANDRAIL_BENCH_POSTGRES_URL"
PACKAGES = ("handrail", "dbos", "sqlalchemy", "psycopg", "pydantic")
_batches = itertools.count()


@dataclass(frozen=True)
class Config:
    mode: str
    rounds: int
    runs: int
    warmup_runs: int
    """Untimed runs right after each launch (connection pools, caches), on the same database."""
    pg_fsync: bool = True
    """The throwaway cluster's fsync/synchronous_commit (on: a server's defaults)."""


FULL = Config(mode="full", rounds=5, runs=100, warmup_runs=10)
QUICK = Config(mode="quick", rounds=2, runs=20, warmup_runs=5)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the workload --------------------------------------------------------------------------------


class Ticket(BaseModel):
    order_id: str
    amount: float


CATEGORY = "refund"
DETAILS = {"order_id": "A-17", "amount": 12.5}


def _texts(n: int) -> list[str]:
    """Distinct documents (handrail dedupes runs by content hash; DBOS by workflow id)."""
    batch = f"{os.getpid()}-{next(_batches)}"
    return [
        f"Ticket {batch}/{i}: my order A-17 arrived broken, please refund the 12.50 I paid."
        for i in range(n)
    ]


def build_pipeline() -> Any:
    from handrail import Classify, Extract, PipelineBuilder, Rule

    def finish(s: Any) -> tuple[int, str, str]:
        return (s["prep"], s["category"], s["details"].order_id)

    return (
        PipelineBuilder(PIPELINE_NAME)
        .add(Rule("prep", lambda s: len(s.text)))
        .add(Classify("category", labels=[CATEGORY, "other"], gate=None), after="prep")
        .add(Extract("details", schema=Ticket, gate=None), after="category")
        .add(Rule("finish", finish), after="details")
        .build()
    )


def build_model() -> Any:
    from handrail import FakeModel, Reply

    return FakeModel(
        {"category": Reply(CATEGORY, confidence=0.95), "details": Reply(dict(DETAILS))},
        latency=0.0,
    )


# The bare workflow: the same four steps' worth of trivial work, as plain DBOS steps.


async def _prep(text: str) -> int:
    return len(text)


async def _classify(text: str) -> str:
    return CATEGORY


async def _extract(text: str) -> dict[str, Any]:
    return dict(DETAILS)


async def _finish(n: int, category: str, details: dict[str, Any]) -> list[Any]:
    return [n, category, details["order_id"]]


def _bare_body() -> Callable[[dict[str, Any]], Coroutine[Any, Any, list[Any]]]:
    """A new function per launch: DBOS's registry is destroyed with DBOS."""
    from dbos import DBOS

    async def bare(document: dict[str, Any]) -> list[Any]:
        text = document["text"]
        n = await DBOS.run_step_async({"name": "rule prep"}, _prep, text)
        category = await DBOS.run_step_async({"name": "classify category"}, _classify, text)
        details = await DBOS.run_step_async({"name": "extract details"}, _extract, text)
        return await DBOS.run_step_async({"name": "rule finish"}, _finish, n, category, details)

    return bare


# --- databases -----------------------------------------------------------------------------------


class SqliteDatabases:
    """A fresh SQLite file (in its own folder) per measurement, under one temporary folder."""

    kind = "sqlite"

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="handrail-bench-sqlite-"))
        self._n = itertools.count(1)
        self.description = f"SQLite {sqlite3.sqlite_version}, WAL files under {self.root}"

    def new(self, label: str) -> str:
        folder = self.root / f"{next(self._n):03d}-{label}"
        folder.mkdir()
        path = folder / "bench.db"
        # handrail's store sets WAL itself; DBOS does not. WAL mode is kept in the file, so
        # setting it here puts the bare workflow on the same kind of file as handrail.
        with sqlite3.connect(path) as conn:
            conn.execute("PRAGMA journal_mode = WAL")
        conn.close()
        return f"sqlite:///{path}"

    def discard(self, url: str) -> None:
        shutil.rmtree(Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class PostgresDatabases:
    """A fresh database per measurement on one Postgres server (created, then dropped)."""

    kind = "postgres"

    def __init__(
        self, admin_url: str, description: str, server: _postgres.PostgresServer | None
    ) -> None:
        from sqlalchemy.engine import make_url

        self.admin_url = admin_url
        self.server = server
        self._base = make_url(admin_url)
        self._n = itertools.count(1)
        self.fresh = True
        self.version = self._query("SHOW server_version")
        self.description = f"PostgreSQL {self.version}, {description}"

    def _query(self, sql: str) -> str:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute(sql).fetchone()
            return str(row[0]) if row else ""

    def new(self, label: str) -> str:
        if not self.fresh:
            return self.admin_url
        import psycopg

        name = f"hrbench_{os.getpid()}_{next(self._n):03d}_{label}"
        try:
            with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn:
                conn.execute(f'CREATE DATABASE "{name}"')
        except psycopg.errors.InsufficientPrivilege as e:
            _note(
                f"[durable] note: cannot create databases on the server ({str(e).strip()}); "
                "every measurement uses the given database itself (tables are not fresh)"
            )
            self.fresh = False
            self.description += " (one shared database: no CREATEDB privilege)"
            return self.admin_url
        return self._base.set(database=name).render_as_string(hide_password=False)

    def discard(self, url: str) -> None:
        if url == self.admin_url:
            return
        import psycopg
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        with (
            suppress(psycopg.Error),
            psycopg.connect(self.admin_url, autocommit=True, connect_timeout=10) as conn,
        ):
            conn.execute(drop)

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()


def open_postgres(url: str | None, cfg: Config) -> tuple[PostgresDatabases | None, str | None]:
    """The Postgres databases to measure on, or None and why Postgres is skipped."""
    try:
        import psycopg  # noqa: F401
    except ImportError as e:
        return None, f"psycopg is not installed ({e}); pip install -e '.[postgres]'"
    if url:
        try:
            return PostgresDatabases(url, "the server at --postgres-url", None), None
        except Exception as e:
            return None, f"cannot use --postgres-url ({type(e).__name__}: {str(e).strip()})"
    try:
        server = _postgres.start(durable=cfg.pg_fsync)
    except _postgres.PostgresNotFound as e:
        return None, f"{e}, or pass --postgres-url / {POSTGRES_URL_ENV}"
    except _postgres.PostgresFailed as e:
        return None, str(e)
    durability = "fsync on" if cfg.pg_fsync else "fsync, synchronous_commit, full-page writes off"
    try:
        desc = f"a throwaway cluster from {server.bindir} on 127.0.0.1:{server.port} ({durability})"
        return PostgresDatabases(server.url("postgres"), desc, server), None
    except Exception as e:
        server.stop()
        return None, f"the throwaway cluster does not answer ({type(e).__name__}: {e})"


# --- one measurement -----------------------------------------------------------------------------


@dataclass
class Sample:
    wall_ms: float
    """Wall time per run (the figure)."""
    cpu_ms: float
    """CPU time per run, every thread of this process (the database server not included)."""


Region = Callable[[], AbstractContextManager[Any]]
"""Wrapped around the timed runs only (--profile puts its timers and cProfile there)."""


async def measure_handrail(
    url: str, texts: list[str], warmup: list[str], region: Region = nullcontext
) -> Sample:
    from handrail.durable import DurableRunner

    model = build_model()
    async with DurableRunner(PIPELINE, db=url, model=model) as runner:
        for text in warmup:
            await runner.run(text)
        gc.collect()
        records = []
        with region():
            c0, t0 = time.process_time(), time.perf_counter()
            for text in texts:
                records.append(await runner.run(text))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # Outside the timed region: every run completed, four steps each, the right outputs.
    for record in records:
        assert record.status.value == "completed", (record.status, record.error)
        assert len(record.steps) == N_STEPS, record.steps
    finish = records[-1].outputs["finish"]
    assert list(finish[1:]) == [CATEGORY, DETAILS["order_id"]], records[-1].outputs
    assert len(model.calls) == 2 * (len(texts) + len(warmup)), len(model.calls)
    return Sample(wall / len(texts) * 1000, cpu / len(texts) * 1000)


def dbos_url(url: str) -> str:
    """The URL DBOS connects with, as handrail's runtime gives it."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def measure_bare(
    url: str, texts: list[str], warmup: list[str], region: Region = nullcontext
) -> Sample:
    from dbos import DBOS, SetWorkflowID

    # The configuration handrail's runtime launches DBOS with (src/handrail/durable/runtime.py).
    config: Any = {
        "name": "handrail-bench",
        "system_database_url": dbos_url(url),
        "executor_id": "bench",
        "application_version": "bench",
        "log_level": "WARNING",
        "notification_listener_polling_interval_sec": 0.1,
    }

    def launch() -> None:  # as handrail's runtime does, off the event loop's thread
        DBOS(config=config)
        DBOS.launch()

    workflow = DBOS.workflow(name=BARE_WORKFLOW)(_bare_body())  # registered before launch
    batch = next(_batches)

    async def one(i: int, text: str) -> Any:
        document: dict[str, Any] = {
            "id": f"doc-{batch}-{i}",
            "text": text,
            "source": None,
            "metadata": {},
        }
        with SetWorkflowID(f"bare-{os.getpid()}-{batch}-{i}"):
            handle: Any = await DBOS.start_workflow_async(workflow, document)
        return await handle.get_result()

    try:
        await asyncio.to_thread(launch)
        for i, text in enumerate(warmup):
            await one(-1 - i, text)
        gc.collect()
        results = []
        with region():
            c0, t0 = time.process_time(), time.perf_counter()
            for i, text in enumerate(texts):
                results.append(await one(i, text))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        DBOS.destroy(destroy_registry=True, workflow_completion_timeout_sec=0)
        # DBOS made its thread pool this loop's default executor and has just shut it down: give
        # the loop a working one back, as DurableRunner.close does.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
    assert all(r[1:] == [CATEGORY, DETAILS["order_id"]] for r in results), results[:1]
    return Sample(wall / len(texts) * 1000, cpu / len(texts) * 1000)


MEASURE = {"handrail": measure_handrail, "dbos": measure_bare}
PIPELINE: Any = None


def measure(
    loop: asyncio.AbstractEventLoop,
    dbs: Any,
    framework: str,
    runs: int,
    warm: int,
    region: Region = nullcontext,
) -> Sample:
    """One measurement: a fresh database, launch, warm-up runs, `runs` timed runs, destroy."""
    url = dbs.new(framework)
    try:
        texts = _texts(runs + warm)
        go = MEASURE[framework](url, texts[warm:], texts[:warm], region)
        return loop.run_until_complete(go)
    finally:
        dbs.discard(url)


# --- the protocol --------------------------------------------------------------------------------


@dataclass
class Results:
    samples: dict[str, dict[str, list[Sample]]] = field(
        default_factory=lambda: {b: {f: [] for f in FRAMEWORKS} for b in BACKENDS}
    )
    databases: dict[str, str | None] = field(default_factory=dict)
    postgres_skipped: str | None = None
    elapsed_s: float = 0.0

    def median(self, backend: str, framework: str, what: str = "wall_ms") -> float | None:
        values = [getattr(s, what) for s in self.samples[backend][framework]]
        return statistics.median(values) if values else None

    def ratio(self, backend: str) -> float | None:
        mine, bare = self.median(backend, "handrail"), self.median(backend, "dbos")
        return mine / bare if mine is not None and bare else None


def run_bench(cfg: Config, postgres_url: str | None) -> Results:
    global PIPELINE
    PIPELINE = build_pipeline()
    results = Results()
    started = time.perf_counter()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    opened: dict[str, Any] = {"sqlite": SqliteDatabases()}
    try:
        _note("[durable] starting Postgres" + (" (--postgres-url)" if postgres_url else ""))
        pg, why = open_postgres(postgres_url, cfg)
        if pg is None:
            results.postgres_skipped = why
            _note(f"[durable] Postgres skipped: {why}")
        else:
            opened["postgres"] = pg
        for backend in BACKENDS:
            results.databases[backend] = opened[backend].description if backend in opened else None

        _note("[durable] warming up (one short measurement of each, discarded)")
        for dbs in opened.values():
            for framework in FRAMEWORKS:
                measure(loop, dbs, framework, max(5, cfg.runs // 10), cfg.warmup_runs)

        for r in range(cfg.rounds):
            t0 = time.perf_counter()
            order = FRAMEWORKS[r % 2 :] + FRAMEWORKS[: r % 2]  # alternate who goes first
            for backend, dbs in opened.items():
                for framework in order:
                    sample = measure(loop, dbs, framework, cfg.runs, cfg.warmup_runs)
                    results.samples[backend][framework].append(sample)
            _note(f"[durable] round {r + 1}/{cfg.rounds} done in {time.perf_counter() - t0:.1f}s")
    finally:
        for dbs in opened.values():
            dbs.close()
        loop.close()
        asyncio.set_event_loop(None)
    results.elapsed_s = time.perf_counter() - started
    return results


# --- output --------------------------------------------------------------------------------------


_SOURCE: dict[str, Any] = {}


def machine(cfg: Config, results: Results) -> dict[str, Any]:
    return {
        **machine_facts(),
        "packages": package_versions(PACKAGES),
        "handrail_source": _SOURCE or handrail_source(),
        "databases": results.databases,
        "config": asdict(cfg),
        "elapsed_s": round(results.elapsed_s, 1),
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def to_json(results: Results, cfg: Config) -> dict[str, Any]:
    payload: dict[str, Any] = {"bench": "durable"}
    for backend in BACKENDS:
        payload[f"{backend}_ms_per_run"] = _round(results.median(backend, "handrail"))
    for backend in BACKENDS:
        payload[f"dbos_{backend}_ms_per_run"] = _round(results.median(backend, "dbos"))
    for backend in BACKENDS:
        payload[f"{backend}_ratio_to_dbos"] = _round(results.ratio(backend))
    payload["target_ratio"] = TARGET_RATIO
    payload["meets_target"] = {
        b: (None if (r := results.ratio(b)) is None else r <= TARGET_RATIO) for b in BACKENDS
    }
    payload["rounds"] = cfg.rounds
    payload["runs"] = cfg.runs
    payload["postgres_skipped"] = results.postgres_skipped
    payload["cpu_ms_per_run"] = {
        f"{fw}_{b}": _round(results.median(b, fw, "cpu_ms")) for b in BACKENDS for fw in FRAMEWORKS
    }
    payload["all_rounds_ms_per_run"] = {
        f"{fw}_{b}": [_round(s.wall_ms) for s in results.samples[b][fw]]
        for b in BACKENDS
        for fw in FRAMEWORKS
    }
    payload["machine"] = machine(cfg, results)
    return payload


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def print_table(results: Results, cfg: Config, verbose: bool) -> None:
    m = machine(cfg, results)
    src = m["handrail_source"]
    if src.get("git_commit"):
        state = "with uncommitted changes in src" if src.get("src_modified") else "clean"
        where = f"commit {src['git_commit']}, {state}"
    else:
        where = src.get("path", "?")
    print(
        f"handrail durable benchmark, {cfg.mode} run: median of {cfg.rounds} rounds x "
        f"{cfg.runs} sequential runs (after {cfg.warmup_runs} warm-up runs per launch), "
        "handrail and bare DBOS alternating"
    )
    print(
        f"  workload: Rule -> Classify -> Extract -> Rule, FakeModel at 0 ms; anchor: a bare DBOS "
        f"workflow of {N_STEPS} async steps; wall ms per run, fresh database per measurement"
    )
    print(
        f"  Python {m['python']}, {m['cpus_usable']} usable CPUs; handrail "
        f"{m['packages']['handrail']} ({where}), dbos {m['packages']['dbos']}"
    )
    for backend in BACKENDS:
        print(f"  {backend}: {results.databases.get(backend) or 'skipped'}")
    headers = ["database", "handrail ms/run", "bare DBOS ms/run", "ratio", "target", "result"]
    rows = []
    for backend in BACKENDS:
        ratio = results.ratio(backend)
        verdict = "—" if ratio is None else ("PASS" if ratio <= TARGET_RATIO else "over")
        rows.append(
            [
                backend,
                _ms(results.median(backend, "handrail")),
                _ms(results.median(backend, "dbos")),
                "—" if ratio is None else f"{ratio:.3f}x",
                f"≤ {TARGET_RATIO:g}x",
                verdict,
            ]
        )
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    print()
    for row in [headers, ["-" * w for w in widths], *rows]:
        cells = zip(row, widths, strict=True)
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells)))
    if results.postgres_skipped:
        print(f"\nPostgres skipped: {results.postgres_skipped}")
    print()
    print("informational (medians over rounds):")
    for backend in BACKENDS:
        mine, bare = results.median(backend, "handrail"), results.median(backend, "dbos")
        if mine is None or bare is None:
            continue
        print(
            f"  {backend:<9} handrail adds {mine - bare:.2f} ms per run "
            f"({(mine - bare) / N_STEPS:.2f} ms per step); CPU of this process per run: "
            f"handrail {_ms(results.median(backend, 'handrail', 'cpu_ms'))} ms, "
            f"bare DBOS {_ms(results.median(backend, 'dbos', 'cpu_ms'))} ms"
        )
    print(f"  finished in {results.elapsed_s:.0f} s")
    if verbose:
        print()
        print("all rounds (wall ms per run, in run order):")
        for backend in BACKENDS:
            for framework in FRAMEWORKS:
                values = ", ".join(_ms(s.wall_ms) for s in results.samples[backend][framework])
                if values:
                    print(f"  {backend:<9} {framework:<9} {values}")


# --- profiling -----------------------------------------------------------------------------------


@dataclass
class _Timer:
    calls: int = 0
    seconds: float = 0.0
    cpu: float = 0.0
    """CPU time of the calling thread during the call (`thread_time`)."""


def _defining(owner: Any, attribute: str) -> Any:
    """The class of `owner`'s MRO (or the module) whose namespace holds `attribute`."""
    for space in getattr(owner, "__mro__", (owner,)):
        if attribute in vars(space):
            return space
    raise AttributeError(f"{owner!r} has no attribute {attribute!r}")


@contextmanager
def _timers(timers: dict[str, _Timer], targets: list[tuple[str, Any, str]]) -> Iterator[None]:
    """Wrap each `owner.attribute` (function, method or classmethod; sync or async) so that its
    wall time adds up in `timers[label]`; a call inside a call of the same label is counted once.
    Runs are sequential, so the wall time inside a call is that call's own."""
    depth: dict[str, int] = {}
    saved: list[tuple[Any, str, Any]] = []

    def wrap(fn: Any, timer: _Timer, label: str) -> Any:
        def enter() -> tuple[float, float]:
            depth[label] = depth.get(label, 0) + 1
            return time.perf_counter(), time.thread_time()

        def leave(t0: tuple[float, float]) -> None:
            depth[label] -= 1
            if depth[label] == 0:
                timer.calls += 1
                timer.seconds += time.perf_counter() - t0[0]
                timer.cpu += time.thread_time() - t0[1]

        if asyncio.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                t0 = enter()
                try:
                    return await fn(*args, **kwargs)
                finally:
                    leave(t0)

            return timed_async

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = enter()
            try:
                return fn(*args, **kwargs)
            finally:
                leave(t0)

        return timed

    try:
        for label, owner, attribute in targets:
            space = _defining(owner, attribute)
            raw = vars(space)[attribute]
            timer = timers.setdefault(label, _Timer())
            if isinstance(raw, classmethod | staticmethod):
                replacement: Any = type(raw)(wrap(raw.__func__, timer, label))
            else:
                replacement = wrap(raw, timer, label)
            saved.append((space, attribute, raw))
            setattr(space, attribute, replacement)
        yield
    finally:
        for space, attribute, raw in reversed(saved):
            setattr(space, attribute, raw)


def _profile_targets() -> list[tuple[str, Any, str]]:
    """What --profile times: (label, owner, attribute). Indented labels are inside the line
    above them (in wall time); "sysdb" lines are DBOS's system-database calls."""
    from dbos import DBOS
    from dbos import _core as dbos_core
    from dbos._dbos import StepReservation
    from dbos._sys_db import SystemDatabase

    from handrail.core.runner import Runner
    from handrail.durable import runner as durable_runner
    from handrail.durable import store as durable_store
    from handrail.durable.store import SqlStore

    step = "    DBOS step (reservation.run_async, DBOS.run_step_async)"
    return [
        ("a run, end to end", Runner, "run"),
        ("  SqlStore.get_run (before the run, and its result)", SqlStore, "get_run"),
        ("    load_run (the record from its JSON)", durable_store, "load_run"),
        ("  DBOS.start_workflow_async", DBOS, "start_workflow_async"),
        ("    sysdb init_workflow", SystemDatabase, "init_workflow"),
        ("  workflow handle get_result", dbos_core.WorkflowHandleAsyncTask, "get_result"),
        ("    sysdb record_get_result", SystemDatabase, "record_get_result"),
        ("  workflow body (Runner._run_new)", Runner, "_run_new"),
        (step, StepReservation, "run_async"),
        (step, DBOS, "run_step_async"),
        ("      node work (Runner._execute_step)", Runner, "_execute_step"),
        ("      _pack (the outcome's checkpoint form)", durable_runner, "_pack"),
        ("      DBOS serialize_value (pickle, base64)", dbos_core, "serialize_value"),
        ("      sysdb check_operation_execution", SystemDatabase, "check_operation_execution"),
        ("      sysdb record_operation_result", SystemDatabase, "record_operation_result"),
        ("    _revive (outputs from JSON)", Runner, "_revive"),
        ("    SqlStore.save_step", SqlStore, "save_step"),
        ("      dump_step", durable_store, "dump_step"),
        ("    SqlStore.save_run", SqlStore, "save_run"),
        ("      dump_run", durable_store, "dump_run"),
        ("    sysdb update_workflow_outcome", SystemDatabase, "update_workflow_outcome"),
    ]


def _package_of(filename: str) -> str:
    path = Path(filename)
    parts = path.parts
    if "handrail" in parts:
        return "handrail"
    if path.name == Path(__file__).name:
        return "bench (node functions)"
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if filename.startswith("<"):
        return "builtins" if filename == "~" else filename
    return path.stem if path.parent.name.startswith("python3") else path.parent.name


def profile(cfg: Config, backend: str, postgres_url: str | None, top: int) -> None:
    """Where the wall time of a handrail run goes on one database, beside a bare DBOS run: timers
    around handrail's store calls, its checkpoint packing, DBOS's steps and system-database calls;
    then cProfile of the handrail runs (main thread only: DBOS also works on its own threads)."""
    import cProfile

    global PIPELINE
    PIPELINE = build_pipeline()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    if backend == "sqlite":
        dbs: Any = SqliteDatabases()
    else:
        dbs, why = open_postgres(postgres_url, cfg)
        if dbs is None:
            print(f"Postgres skipped: {why}")
            return
    runs, warm = cfg.runs, cfg.warmup_runs
    try:
        _note(f"[durable] profile on {backend}: {dbs.description}")
        for framework in FRAMEWORKS:  # warm up
            measure(loop, dbs, framework, max(5, runs // 10), warm)
        plain: dict[str, list[float]] = {f: [] for f in FRAMEWORKS}
        for _ in range(3):
            for framework in FRAMEWORKS:
                plain[framework].append(measure(loop, dbs, framework, runs, warm).wall_ms)
        mine, bare = (statistics.median(plain[f]) for f in FRAMEWORKS)
        timers: dict[str, dict[str, _Timer]] = {f: {} for f in FRAMEWORKS}
        timed = {}
        for f in FRAMEWORKS:
            region = functools.partial(_timers, timers[f], _profile_targets())
            timed[f] = measure(loop, dbs, f, runs, warm, region).wall_ms
        print(
            f"{backend}: handrail {mine:.2f} ms per run, bare DBOS {bare:.2f} ms "
            f"({mine / bare:.2f}x; medians of 3 x {runs} runs); with the timers "
            f"{timed['handrail']:.2f} and {timed['dbos']:.2f} ms"
        )
        print()
        print("per run, inside each call: wall ms, CPU ms of the calling thread (thread_time; for")
        print(
            "an async call, all the loop ran meanwhile), calls. Indented lines are inside the line"
        )
        print("above; runs are sequential, so a call's wall time is its own.")
        print(f"{'handrail':^24} {'bare DBOS':^24}")
        print(f"{'wall':>7} {'cpu':>7} {'calls':>6}  " * 2 + "where")
        for label in dict.fromkeys(label for label, _, _ in _profile_targets()):
            cells = []
            for framework in FRAMEWORKS:
                t = timers[framework].get(label)
                cells.append(
                    f"{t.seconds / runs * 1000:>7.3f} {t.cpu / runs * 1000:>7.3f} "
                    f"{t.calls / runs:>6.1f}"
                    if t and t.calls
                    else f"{'—':>7} {'':>7} {'':>6}"
                )
            print(f"{cells[0]}  {cells[1]}  {label}")

        def per_run(framework: str, label: str) -> float:
            t = timers[framework].get(label)
            return t.seconds / runs * 1000 if t else 0.0

        h = {label.strip(): per_run("handrail", label) for label, _, _ in _profile_targets()}
        b = {label.strip(): per_run("dbos", label) for label, _, _ in _profile_targets()}
        step = "DBOS step (reservation.run_async, DBOS.run_step_async)"
        store = (
            h["SqlStore.get_run (before the run, and its result)"]
            + h["SqlStore.save_step"]
            + h["SqlStore.save_run"]
        )
        inner = h["node work (Runner._execute_step)"] + h["_pack (the outcome's checkpoint form)"]
        print()
        print(f"handrail adds {mine - bare:.2f} ms per run here; of which, measured with timers:")
        print(
            f"  {store:.2f} ms  handrail's run store (3 get_run, {N_STEPS} save_step, 1 save_run)"
        )
        print(f"  {inner:.2f} ms  the nodes' own work and _pack, inside the DBOS steps")
        print(
            f"  {h[step] - inner:.2f} ms  DBOS's step machinery around them "
            f"(bare DBOS: {b[step]:.2f} ms for its {N_STEPS} steps)"
        )
        print(f"  {h['_revive (outputs from JSON)']:.2f} ms  _revive")

        profiler = cProfile.Profile(time.thread_time)  # CPU of the main thread, not its waits

        @contextmanager
        def profiled() -> Iterator[None]:
            profiler.enable()
            try:
                yield
            finally:
                profiler.disable()

        measure(loop, dbs, "handrail", runs, warm, profiled)
    finally:
        dbs.close()
        loop.close()
        asyncio.set_event_loop(None)

    rows: dict[str, list[float]] = {}
    packages: dict[str, float] = {}
    for entry in profiler.getstats():
        code = entry.code
        if isinstance(code, str):
            label, package = code, "builtins"
        else:
            package = _package_of(code.co_filename)
            label = f"{package}:{Path(code.co_filename).name}:{code.co_firstlineno}({code.co_name})"
        row = rows.setdefault(label, [0, 0.0, 0.0])
        row[0] += entry.callcount
        row[1] += entry.inlinetime
        row[2] += entry.totaltime
        packages[package] = packages.get(package, 0.0) + entry.inlinetime
    total = sum(r[1] for r in rows.values())
    print()
    print(
        f"cProfile of {runs} handrail runs, CPU of the main thread (thread_time): "
        f"{total / runs * 1000:.2f} ms per run profiled; top {top} functions by own time"
    )
    print(f"{'calls/run':>9} {'own ms/run':>10} {'share':>6} {'cum ms/run':>10}  function")
    for label, (calls, own, cum) in sorted(rows.items(), key=lambda kv: -kv[1][1])[:top]:
        print(
            f"{calls / runs:>9.1f} {own / runs * 1000:>10.3f} {own / total:>6.1%} "
            f"{cum / runs * 1000:>10.3f}  {label}"
        )
    shares = sorted(packages.items(), key=lambda kv: -kv[1])
    print("own time by package: " + ", ".join(f"{k} {v / total:.0%}" for k, v in shares[:10]))


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 rounds x 20 runs (CI smoke run)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument(
        "--json-out", metavar="PATH", help="also write the JSON object to PATH (with the table)"
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--runs", type=int, help="override the timed runs per measurement")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_URL_ENV, "").strip() or None,
        metavar="URL",
        help=f"measure on this server instead of a throwaway cluster (env {POSTGRES_URL_ENV}); "
        "each measurement creates and drops its own database there when allowed",
    )
    parser.add_argument(
        "--pg-no-fsync",
        action="store_true",
        help="start the throwaway cluster without disk flushes (as the tests do)",
    )
    parser.add_argument("--verbose", action="store_true", help="also print every round's value")
    parser.add_argument(
        "--profile",
        choices=BACKENDS,
        help="time where a handrail run's wall time goes on one database, cProfile it, and exit",
    )
    parser.add_argument("--top", type=int, default=25, help="rows of the --profile listings")
    args = parser.parse_args(argv)

    cfg = QUICK if args.quick else FULL
    custom = args.rounds is not None or args.runs is not None
    cfg = replace(
        cfg,
        mode=f"{cfg.mode} (custom)" if custom else cfg.mode,
        rounds=args.rounds or cfg.rounds,
        runs=args.runs or cfg.runs,
        pg_fsync=not args.pg_no_fsync,
    )
    try:
        import handrail.durable  # noqa: F401
    except ImportError as e:
        _note(f"[durable] handrail.durable cannot be imported ({e}); pip install -e .")
        return 0
    if args.profile:
        profile(cfg, args.profile, args.postgres_url, args.top)
        return 0
    _SOURCE.update(handrail_source())
    results = run_bench(cfg, args.postgres_url)
    _note(f"[durable] finished in {results.elapsed_s:.0f}s")
    payload = to_json(results, cfg)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n")
    if args.json:
        print(json.dumps(payload))
    else:
        print_table(results, cfg, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
