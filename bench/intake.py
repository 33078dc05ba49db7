#!/usr/bin/env python
"""Triggers under load: documents accepted per second by the HTTP trigger into the durable queue,
with 8 concurrent clients, against a bare FastAPI + SQLAlchemy anchor in the same run; and the
folder trigger's pick-up latency.

    python bench/intake.py                # full run: 2,000 documents each, on SQLite
    python bench/intake.py --postgres     # the same on SQLite and on a throwaway Postgres cluster
    python bench/intake.py --quick        # CI smoke run: 200 documents each
    python bench/intake.py --json         # exactly one JSON object on stdout (progress on stderr)

Documents per second (figures `http_docs_per_s_sqlite`, `http_docs_per_s_postgres`): a live
`handrail serve --no-worker --source bench --target tests/pipelines/happy.py:pipeline` on a free
loopback port and a fresh database, the source's secret in its environment. 8 client threads
(httpx, one connection each) POST small distinct text documents (about 170 bytes, a support
ticket each) to `/api/v1/pipelines/happy/documents`, each signed (X-Handrail-Source,
X-Handrail-Timestamp, X-Handrail-Signature: HMAC-SHA256 of the timestamp, a dot and the body)
and with an Idempotency-Key of its own. No worker runs, so this is acceptance only: the
signature checked, the receipt, the queued DBOS run and the trigger's pick-up committed in one
transaction, the 202 answered. Every answer must be a 202 for a new, queued run. The figure is
the documents timed over the wall time spent sending them (the clients' signing included); p50
and p95 are each request's latency seen by its client. `http_server_cpu_ms_per_doc_*` is the CPU
time (user and system, from /proc) the server process spent per document while timed: what a
document costs the server, which other work on a shared machine sways less than docs/s (the
clients run on the same cores).

The anchor: a bare FastAPI app under uvicorn in a process of its own (as `handrail serve` is),
on the same database: it checks the same headers and HMAC on the raw body, then INSERTs one row
(key, source, time, SHA-256, the text) in one transaction and answers 202; SQLite with the
pragmas handrail sets (WAL, synchronous=NORMAL, a busy timeout). Both servers run side by side
and are timed in alternating blocks (4 blocks, the order swapped each block), after a warm-up of
each, so that both see the same machine; the ratio is handrail / anchor.

Afterwards the database must hold exactly one receipt and one queued (ENQUEUED) run workflow per
document handrail was sent, and one anchor row per document the anchor was sent; otherwise the
benchmark fails (exit 1): a benchmark that loses documents is wrong.

Folder pick-up (figure `folder_pickup_s`): a live `handrail serve --no-worker --watch DIR` on a
fresh SQLite file; 10 small text files (`--quick`: 3) dropped one at a time, each written as
`NAME.part` and renamed (whole at once, and stable from the rename on), after a random pause of
0-2 s (a random phase of the trigger's 2 s poll); for each, the time from the rename until its
receipt is in the database (looked for every 10 ms). The figure is the median,
`folder_pickup_max_s` the slowest. Afterwards each file must have one receipt and one queued run
and be in `processed/`. When this handrail has no folder trigger (no `handrail.triggers.folder`,
or `handrail serve` without `--watch`), the script prints "folder_pickup_s: skipped: no folder
trigger in this version" and the figure is null.

Targets (the issue, 2 cores): >= 200 documents/s accepted on SQLite; folder pick-up <= 2 s
after the file is stable. A benchmark, not a test: it exits 0 whether or not they are met, and
1 when it is broken (a document lost or refused, a server that does not start).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import random
import secrets
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _live import (  # bench/_live.py, beside this script; puts the repository root on sys.path
    ROOT,
    Databases,
    cpu_seconds,
    handrail_source,
    measure_backends,
    percentile,
    print_rows,
    process,
    ratios,
    run_facts,
    server,
)
from _live import parser as live_parser
from starlette.requests import Request

TARGET_DOCS_PER_S = 200.0
TARGET_PICKUP_S = 2.0
CLIENTS = 8
BLOCKS = 4
SOURCE = "bench"
SECRET_VARIABLE = "HANDRAIL_SOURCE_BENCH_SECRET"
PIPELINE = "happy"
TARGET = str(ROOT / "tests" / "pipelines" / "happy.py") + ":pipeline"
HANDRAIL_PATH = f"/api/v1/pipelines/{PIPELINE}/documents"
ANCHOR_PATH = "/documents"
ANCHOR_TABLE = "bench_intake_anchor"
NO_FOLDER = "no folder trigger in this version"
PACKAGES = ("handrail", "dbos", "fastapi", "starlette", "uvicorn", "sqlalchemy", "psycopg", "httpx")


@dataclass(frozen=True)
class Config:
    mode: str
    documents: int
    """Documents timed, for handrail and for the anchor each."""
    warmup: int = 40
    """Untimed documents sent to each server first (the first ones load code, fill pools)."""
    clients: int = CLIENTS
    blocks: int = BLOCKS
    folder_files: int = 10
    """Files dropped one at a time in the watched folder."""


FULL = Config(mode="full", documents=2_000)
QUICK = Config(mode="quick", documents=200, warmup=24, folder_files=3)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the documents and their signatures ---------------------------------------------------------


def document(run: str, i: int) -> tuple[str, bytes]:
    """Document `i` of this run: its Idempotency-Key and a small support ticket, distinct from
    every other (handrail derives run ids from the content: equal texts would be one run)."""
    text = (
        f"Ticket {run}-{i:06d}: refund please. Order: A-{i}, amount {i % 500 + 1}.00. "
        "The parcel arrived damaged; send a replacement or refund the card I paid with."
    )
    return f"bench-{run}-{i:06d}", text.encode()


def signed(secret: str, key: str, body: bytes) -> dict[str, str]:
    """The headers of a signed text/plain delivery (docs/triggers.md), signed now."""
    stamp = str(int(time.time()))
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "text/plain",
        "Idempotency-Key": key,
        "X-Handrail-Source": SOURCE,
        "X-Handrail-Timestamp": stamp,
        "X-Handrail-Signature": f"sha256={mac}",
    }


# --- the anchor: bare FastAPI + SQLAlchemy under uvicorn ----------------------------------------


def anchor_engine(url: str) -> Any:
    """A SQLAlchemy engine on `url`; SQLite with the pragmas handrail's store sets (WAL,
    synchronous=NORMAL, a busy timeout), so both write with the same durability."""
    from sqlalchemy import create_engine, event

    from handrail.durable.engine import parse

    parsed, _ = parse(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_size=CLIENTS + 2)
    engine = create_engine(parsed, pool_size=CLIENTS + 2, connect_args={"timeout": 10})

    @event.listens_for(engine, "connect")
    def pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    return engine


def create_anchor_table(url: str) -> None:
    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text

    engine = anchor_engine(url)
    Table(
        ANCHOR_TABLE,
        meta := MetaData(),
        Column("key", String(200), primary_key=True),
        Column("source", String(100), nullable=False),
        Column("received_at", DateTime(timezone=True), nullable=False),
        Column("sha256", String(64), nullable=False),
        Column("size", Integer, nullable=False),
        Column("text", Text, nullable=False),
    )
    meta.create_all(engine)
    engine.dispose()


def anchor_app(url: str, secret: str) -> Any:
    """The anchor: the HTTP trigger's checks and one INSERT, with nothing of handrail."""
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse
    from sqlalchemy import text
    from starlette.concurrency import run_in_threadpool

    engine = anchor_engine(url)
    app = FastAPI()
    insert = text(
        f"INSERT INTO {ANCHOR_TABLE} (key, source, received_at, sha256, size, text) "
        "VALUES (:key, :source, :at, :sha256, :size, :text)"
    )

    def save(key: str, body: bytes) -> None:
        row = {
            "key": key,
            "source": SOURCE,
            "at": datetime.now(UTC),
            "sha256": hashlib.sha256(body).hexdigest(),
            "size": len(body),
            "text": body.decode(),
        }
        with engine.begin() as conn:
            conn.execute(insert, row)

    @app.post(ANCHOR_PATH, status_code=202)
    async def take(request: Request) -> JSONResponse:
        headers = request.headers
        stamp = headers.get("x-handrail-timestamp", "")
        signature = headers.get("x-handrail-signature", "")
        if headers.get("x-handrail-source") != SOURCE or not stamp.isdigit():
            return JSONResponse({"error": "unsigned"}, status_code=401)
        if abs(time.time() - int(stamp)) > 300:
            return JSONResponse({"error": "stale"}, status_code=401)
        body = await request.body()
        mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(signature, f"sha256={mac.hexdigest()}"):
            return JSONResponse({"error": "unsigned"}, status_code=401)
        key = headers.get("idempotency-key") or hashlib.sha256(body).hexdigest()
        await run_in_threadpool(save, key, body)
        return JSONResponse({"id": key, "new": True}, status_code=202)

    return app


def serve_anchor(url: str, port: int) -> None:
    """`bench/intake.py --serve-anchor URL PORT`: the anchor under uvicorn (a process of its
    own, as `handrail serve` is), the secret from the same variable."""
    import uvicorn

    app = anchor_app(url, os.environ[SECRET_VARIABLE])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    print(f"anchor ready: http://127.0.0.1:{port}", flush=True)
    server.run()


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Sent:
    """What one batch of POSTs took and got."""

    elapsed_s: float
    latencies_ms: list[float]
    answers: list[dict[str, Any]]
    cpu_s: float | None = None
    """The CPU time the server process used meanwhile (None where it cannot be read)."""


def post_many(clients: list[Any], path: str, secret: str, docs: list[tuple[str, bytes]]) -> Sent:
    """Each of `clients` (httpx clients, open) in a thread of its own, POSTing `docs` (each once,
    signed) until none is left; every answer must be a 202."""
    lock = threading.Lock()
    todo: Iterator[tuple[str, bytes]] = iter(docs)
    latencies: list[float] = []
    answers: list[dict[str, Any]] = []
    failures: list[str] = []

    def client(http: Any) -> None:
        while True:
            with lock:
                doc = next(todo, None)
            if doc is None:
                return
            key, body = doc
            t0 = time.perf_counter()
            response = http.post(path, content=body, headers=signed(secret, key, body))
            took = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(took)
                if response.status_code == 202:
                    answers.append(response.json() | {"key": key})
                else:
                    failures.append(f"{key}: {response.status_code} {response.text[:300]}")

    threads = [threading.Thread(target=client, args=(http,)) for http in clients]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(docs)} POSTs failed, e.g. {failures[0]}")
    return Sent(elapsed_s=elapsed, latencies_ms=latencies, answers=answers)


def held(url: str) -> tuple[dict[tuple[str, str], str], set[str], int]:
    """What the database holds: each receipt's run id by (source, key), the ids of the queued
    (ENQUEUED) run workflows, and how many run workflows there are in all."""
    from sqlalchemy import select, text

    from handrail.durable import SqlStore, schema

    receipts = schema.receipts
    with SqlStore(url, read_only=True) as store, store.reading() as conn:
        flows = "dbos.workflow_status" if store.dialect == "postgresql" else "workflow_status"
        rows = conn.execute(select(receipts.c.source, receipts.c.key, receipts.c.run_id)).all()
        queued = conn.execute(
            text(
                f"SELECT workflow_uuid FROM {flows} "
                "WHERE name LIKE 'handrail.run:%' AND status = 'ENQUEUED'"
            )
        ).all()
        n_flows = conn.execute(
            text(f"SELECT count(*) FROM {flows} WHERE name LIKE 'handrail.run:%'")
        ).scalar_one()
    return {(r.source, r.key): r.run_id for r in rows}, {w for (w,) in queued}, int(n_flows)


def check_handrail(url: str, answers: list[dict[str, Any]]) -> None:
    """Exactly one receipt and one queued run workflow per document sent; else RuntimeError."""
    sent = len(answers)
    not_new = [a for a in answers if a.get("new") is not True or a.get("status") != "queued"]
    if not_new:
        raise RuntimeError(f"{len(not_new)} documents were not queued as new runs: {not_new[0]}")
    run_ids = {a["run_id"] for a in answers}
    if len(run_ids) != sent:
        raise RuntimeError(f"{sent} documents answered with {len(run_ids)} distinct run ids")
    receipts, queued, n_flows = held(url)
    mine = {r for (source, _), r in receipts.items() if source == f"http:{SOURCE}"}
    n_receipts = sum(1 for source, _ in receipts if source == f"http:{SOURCE}")
    problems = []
    if n_receipts != sent or mine != run_ids:
        problems.append(f"{n_receipts} receipts, for {len(mine & run_ids)} of the answered runs")
    if n_flows != sent or queued != run_ids:
        problems.append(f"{n_flows} run workflows, {len(queued & run_ids)} of them queued")
    if problems:
        raise RuntimeError(
            f"documents lost or doubled: {sent} accepted, but the database holds "
            + ", ".join(problems)
        )


def check_anchor(url: str, sent: int) -> None:
    from sqlalchemy import text

    engine = anchor_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT count(*) FROM {ANCHOR_TABLE}")).scalar_one()
    engine.dispose()
    if rows != sent:
        raise RuntimeError(f"the anchor was sent {sent} documents and holds {rows} rows")


def measure_http(backend: str, url: str, cfg: Config) -> dict[str, Any]:
    """handrail serve and the anchor side by side on `url`, timed in alternating blocks."""
    import httpx
    from tests.browser.live import clean_env, free_port

    secret = secrets.token_hex(32)
    run = secrets.token_hex(3)
    per_side = cfg.warmup + cfg.documents
    docs = [document(run, i) for i in range(2 * per_side)]
    mine_docs, anchor_docs = docs[:per_side], docs[per_side:]
    env = clean_env(url, **{SECRET_VARIABLE: secret})
    serve = [sys.executable, "-m", "handrail.cli", "serve", "--db", url, "--target", TARGET]
    serve += ["--port", str(free_port()), "--no-worker", "--source", SOURCE]
    create_anchor_table(url)
    anchor_cmd = [sys.executable, __file__, "--serve-anchor", url, str(free_port())]
    got: dict[str, list[Sent]] = {"handrail": [], "anchor": []}
    warm: dict[str, list[Sent]] = {"handrail": [], "anchor": []}
    with ExitStack() as stack:
        served = {
            "handrail": stack.enter_context(server(serve, "handrail serve:", env)),
            "anchor": stack.enter_context(server(anchor_cmd, "anchor ready:", env)),
        }
        bases = {who: up.url for who, up in served.items()}
        paths = {"handrail": HANDRAIL_PATH, "anchor": ANCHOR_PATH}
        todo = {"handrail": mine_docs, "anchor": anchor_docs}

        # one connection per client, opened before the clock starts and kept for every block
        pools = {
            who: [
                stack.enter_context(httpx.Client(base_url=base, timeout=60))
                for _ in range(cfg.clients)
            ]
            for who, base in bases.items()
        }

        def send(who: str, part: list[tuple[str, bytes]], clients: int) -> Sent:
            before = cpu_seconds(served[who].pid)
            sent = post_many(pools[who][:clients], paths[who], secret, part)
            after = cpu_seconds(served[who].pid)
            if before is not None and after is not None:
                sent.cpu_s = after - before
            return sent

        for who in ("handrail", "anchor"):  # one client first (code loads), then all of them
            warm[who].append(send(who, todo[who][:2], 1))
            warm[who].append(send(who, todo[who][2 : cfg.warmup], cfg.clients))
        step = cfg.documents // cfg.blocks
        for b in range(cfg.blocks):
            lo = cfg.warmup + b * step
            hi = cfg.warmup + cfg.documents if b == cfg.blocks - 1 else lo + step
            order = ("handrail", "anchor") if b % 2 == 0 else ("anchor", "handrail")
            for who in order:
                got[who].append(send(who, todo[who][lo:hi], cfg.clients))
    check_handrail(url, [a for s in warm["handrail"] + got["handrail"] for a in s.answers])
    check_anchor(url, sum(len(s.answers) for s in warm["anchor"] + got["anchor"]))
    _note(f"[intake] {backend}: HTTP intake measured, every document accounted for")
    out: dict[str, Any] = {}
    for who, batches in got.items():
        latencies = [x for s in batches for x in s.latencies_ms]
        elapsed = sum(s.elapsed_s for s in batches)
        cpu = [s.cpu_s for s in batches]
        out[who] = {
            "docs_per_s": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 0.5),
            "p95_ms": percentile(latencies, 0.95),
            "cpu_ms_per_doc": None
            if None in cpu
            else 1000 * sum(c or 0.0 for c in cpu) / len(latencies),
            "blocks_docs_per_s": [len(s.latencies_ms) / s.elapsed_s for s in batches],
        }
    return out


def folder_trigger() -> str | None:
    """Why the folder pick-up cannot be measured in this version (None when it can)."""
    import inspect

    if importlib.util.find_spec("handrail.triggers.folder") is None:
        return NO_FOLDER
    from handrail.cli.serve_cmd import serve

    if "watch" not in inspect.signature(serve).parameters:
        return f"{NO_FOLDER} (`handrail serve` has no --watch)"
    return None


def measure_folder(root: Path, cfg: Config) -> dict[str, Any]:
    """`handrail serve --no-worker --watch DIR` on a fresh SQLite file; files dropped one at a
    time (each written as `.part`, then renamed: whole, and stable from the rename) at random
    moments of the poll's cycle; each one's time from the rename to its receipt being seen in
    the database (polled every 10 ms)."""
    from sqlalchemy import select
    from tests.browser.live import clean_env, free_port

    from handrail.durable import SqlStore, schema

    keys = schema.receipts.c.key
    rng = random.Random(15)
    url = f"sqlite:///{root / 'folder.db'}"
    inbox = root / "inbox"
    inbox.mkdir()
    run = secrets.token_hex(3)
    serve = [sys.executable, "-m", "handrail.cli", "serve", "--db", url, "--target", TARGET]
    serve += ["--port", str(free_port()), "--no-worker", "--watch", str(inbox)]
    pickups: list[float] = []
    names = [f"ticket-{run}-{i:03d}.txt" for i in range(cfg.folder_files)]
    with process(serve, "handrail serve:", clean_env(url)), SqlStore(url, read_only=True) as store:
        for i, name in enumerate(names):
            time.sleep(rng.uniform(0.0, 2.0))  # the poll's interval: a random phase of it
            _, body = document(run, 10_000 + i)
            taken = select(keys).where(keys.startswith(f"{name}#", autoescape=True)).limit(1)
            part = inbox / f"{name}.part"
            part.write_bytes(body)
            part.rename(inbox / name)
            stable = time.perf_counter()
            while True:
                with store.reading() as conn:
                    if conn.execute(taken).first() is not None:
                        break
                if time.perf_counter() > stable + 30:
                    raise RuntimeError(f"`{name}` was not taken within 30 s of being stable")
                time.sleep(0.01)
            pickups.append(time.perf_counter() - stable)
        deadline = time.perf_counter() + 30
        while any((inbox / n).exists() for n in names) and time.perf_counter() < deadline:
            time.sleep(0.05)
    receipts, queued, n_flows = held(url)
    runs = [r for (source, _), r in receipts.items() if source.startswith("folder:")]
    moved = sorted(p.name for p in (inbox / "processed").glob("*"))
    if len(runs) != len(names) or set(runs) != queued or n_flows != len(names):
        raise RuntimeError(
            f"documents lost or doubled: {len(names)} files dropped, {len(runs)} receipts, "
            f"{len(queued)} queued run workflows, {n_flows} in all"
        )
    if moved != sorted(names):
        raise RuntimeError(f"{len(names)} files dropped, {len(moved)} moved to processed/")
    return {
        "median_s": statistics.median(pickups),
        "max_s": max(pickups),
        "min_s": min(pickups),
        "files": len(pickups),
        "each_s": [round(x, 3) for x in pickups],
    }


# --- output -------------------------------------------------------------------------------------


def _r(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def figures(results: dict[str, dict[str, Any]], who: str) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for backend in ("sqlite", "postgres"):
        http = results.get(backend, {}).get(who) or {}
        out[f"http_docs_per_s_{backend}"] = _r(http.get("docs_per_s"))
        out[f"http_p50_ms_{backend}"] = _r(http.get("p50_ms"), 2)
        out[f"http_p95_ms_{backend}"] = _r(http.get("p95_ms"), 2)
        out[f"http_server_cpu_ms_per_doc_{backend}"] = _r(http.get("cpu_ms_per_doc"), 3)
    return out


def folder_figures(folder: dict[str, Any] | None) -> dict[str, float | None]:
    found = folder or {}
    return {
        "folder_pickup_s": _r(found.get("median_s"), 3),
        "folder_pickup_max_s": _r(found.get("max_s"), 3),
    }


@dataclass
class Measured:
    """What a run of this script found."""

    http: dict[str, dict[str, Any]]
    """By backend (`sqlite`, `postgres`): `handrail` and `anchor`, each docs/s and latencies."""
    folder: dict[str, Any] | None
    """The folder pick-up times, None when not measured."""
    skipped: dict[str, str]
    """Why a figure was not measured, by figure."""


def to_json(measured: Measured, cfg: Config, meta: dict[str, Any]) -> Any:
    results, folder, skipped = measured.http, measured.folder, measured.skipped
    mine = figures(results, "handrail") | folder_figures(folder)
    bare = figures(results, "anchor")
    return {
        "bench": "intake",
        "figures": mine,
        "anchors": {"bare_fastapi_sqlalchemy": bare},
        "ratios_to_anchor": ratios({k: v for k, v in mine.items() if k in bare}, bare),
        "targets": {
            "http_docs_per_s_sqlite": f">= {TARGET_DOCS_PER_S:g}",
            "folder_pickup_s": f"<= {TARGET_PICKUP_S:g}",
        },
        "skipped": skipped,
        "method": {
            "http": f"live `handrail serve --no-worker --source {SOURCE}`, {cfg.clients} HTTP "
            f"clients, {cfg.documents} signed distinct text documents per server after "
            f"{cfg.warmup} untimed, {cfg.blocks} blocks alternating with the anchor; docs/s "
            "(higher is better), client-side latency p50/p95 in ms",
            "anchor": "bare FastAPI + SQLAlchemy under uvicorn on the same database: the same "
            "HMAC check, one INSERT per document in one transaction",
            "folder": "live `handrail serve --no-worker --watch DIR` on SQLite, "
            f"{cfg.folder_files} files dropped one at a time (`.part` then renamed) at random "
            "phases of the poll; "
            "seconds from the rename to the receipt seen in the database: median "
            "(folder_pickup_s) and max",
            "checked": "one receipt and one ENQUEUED run workflow per document sent (and per "
            "file dropped, each moved to processed/)",
        },
        "by_backend": results,
        "folder": folder,
        "machine": meta,
    }


def print_table(measured: Measured, cfg: Config, meta: dict[str, Any]) -> None:
    results, folder, skipped = measured.http, measured.folder, measured.skipped
    print(
        f"handrail intake benchmark, {cfg.mode} run: {cfg.documents:,} signed text documents per "
        f"server by {cfg.clients} clients, after {cfg.warmup} untimed, in {cfg.blocks} "
        "alternating blocks"
    )
    print(
        "  handrail: a live `handrail serve --no-worker` (receipt + queued DBOS run, 202); "
        "anchor: bare FastAPI + SQLAlchemy, HMAC + one INSERT"
    )
    load = meta.get("load_average")
    print(f"  Python {meta['python']}, {meta['cpus_usable']} usable CPUs, load average {load}")
    for backend, described in meta["databases"].items():
        print(f"  {backend}: {described}")
    header = ["figure", "handrail", "anchor", "ratio", "target"]
    mine, bare = figures(results, "handrail"), figures(results, "anchor")
    rows = []
    for key, value in mine.items():
        if value is None:
            continue
        ratio = ratios(mine, bare)[key]
        target = f"≥ {TARGET_DOCS_PER_S:g}" if key == "http_docs_per_s_sqlite" else ""
        if target:
            target += " (meets)" if value >= TARGET_DOCS_PER_S else " (MISSES)"
        rows.append([key, f"{value}", f"{bare[key]}", f"{ratio}x" if ratio else "—", target])
    for key, value in folder_figures(folder).items():
        if value is not None:
            target = f"≤ {TARGET_PICKUP_S:g}"
            target += " (meets)" if value <= TARGET_PICKUP_S else " (MISSES)"
            rows.append([key, f"{value}", "—", "—", target])
    print_rows(header, rows, left=(0, 4))
    print()
    for backend, result in results.items():
        blocks = ", ".join(f"{x:.0f}" for x in result["handrail"]["blocks_docs_per_s"])
        anchor = ", ".join(f"{x:.0f}" for x in result["anchor"]["blocks_docs_per_s"])
        print(f"  {backend} docs/s per block: handrail {blocks}; anchor {anchor}")
    if folder is not None:
        each = ", ".join(f"{x:.2f}" for x in folder["each_s"])
        print(f"  folder pick-up of each file, s: {each}")
    for key, why in skipped.items():
        print(f"  {key}: skipped: {why}")
    print(
        "  docs/s: higher is better; latencies and server CPU per document: lower is better "
        "(ratio = handrail/anchor)"
    )
    print(f"  finished in {meta['elapsed_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = live_parser(__doc__, quick="200 documents per server, 3 files (CI)")
    parser.add_argument("--documents", type=int, help="documents timed per server (overrides)")
    args = parser.parse_args(argv)
    if args.serve_anchor:
        serve_anchor(args.serve_anchor[0], int(args.serve_anchor[1]))
        return 0
    cfg = QUICK if args.quick else FULL
    if args.documents:
        cfg = replace(cfg, documents=args.documents)
    if cfg.documents < cfg.blocks:
        parser.error(f"--documents must be at least {cfg.blocks}")
    source = handrail_source()
    load_before = os.getloadavg()
    started = time.perf_counter()
    dbs = Databases("intake", sqlite_file="handrail.db")
    skipped: dict[str, str] = {}
    if not args.postgres:
        skipped["http_docs_per_s_postgres"] = "not asked for (--postgres)"
    try:
        results, failed = measure_backends(
            dbs, args.postgres, lambda backend, url: measure_http(backend, url, cfg), "intake"
        )
        folder: dict[str, Any] | None = None
        why = folder_trigger()
        if why is not None:
            skipped["folder_pickup_s"] = why
            _note(f"[intake] folder_pickup_s: skipped: {why}")
        else:
            try:
                folder = measure_folder(dbs.root, cfg)
                _note("[intake] folder pick-up measured, every file accounted for")
            except Exception as e:
                traceback.print_exc()
                failed["folder"] = f"{type(e).__name__}: {str(e).strip()[:500]}"
                _note(f"[intake] folder FAILED: {failed['folder']}")
    finally:
        dbs.close()
    if not results and folder is None:
        return 1
    meta = run_facts(
        source=source,
        packages=PACKAGES,
        databases=dbs.described,
        config=cfg,
        started=started,
        failed=failed,
        load_average={"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)},
    )
    if args.json:
        print(json.dumps(to_json(Measured(results, folder, skipped), cfg, meta), default=str))
    else:
        print_table(Measured(results, folder, skipped), cfg, meta)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.pop("HANDRAIL_DATABASE_URL", None)
    sys.exit(main())
