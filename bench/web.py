#!/usr/bin/env python
"""The review inbox under load: server time of its pages at 10,000 pending reviews, and decisions
per second with 8 concurrent clients, against a bare FastAPI + SQLAlchemy anchor in the same run.

    python bench/web.py                # full run: 10,000 pending reviews on SQLite
    python bench/web.py --postgres     # the same on SQLite and on a throwaway Postgres cluster
    python bench/web.py --quick        # CI smoke run: 1,000 pending, fewer requests
    python bench/web.py --json         # exactly one JSON object on stdout (progress on stderr)

The data: one real run of tests/pipelines/inbox_invoice.py (an invoice whose total the model
misread, waiting for review), cloned into N runs each with one pending review (distinct ids,
created a second apart, two queues), saved through `SqlStore.save_run` as any run is.

Page server time (figures `inbox_p95_ms`, `review_p95_ms`): requests through FastAPI's
TestClient, in this process, to `handrail.web.create_app` on a `ReviewService` over the database,
signed in as a reviewer who may see both queues; the time is the wall time of `client.get` (the
ASGI app, the database, the template; no network, no browser). The inbox requests cycle through
four views (page 1 by age; by deadline; one queue; page 20); the review requests open random
reviews. The anchor: a bare FastAPI app, through the same TestClient, reading the same page of
rows (or the same review and its run) with plain SQLAlchemy and rendering them with Jinja2.

Decisions per second (figure `decisions_per_s`): a live `handrail serve --no-worker` on a free
loopback port, 8 client threads each POSTing `/api/v1/reviews/{id}/decision {"action":
"approve"}` with a reviewer's bearer token, each on distinct reviews, until M are decided; the
wall time from the first request to the last answer. Every answer must be 200. No worker runs, so
this is the decision itself (the conditional write, the audit row, the checks before them), not
the run's continuation. The anchor: a bare FastAPI app under uvicorn in a process of its own
doing a conditional UPDATE of the review row plus an INSERT of a log row in one transaction.

Targets (the issue): inbox and review page p95 <= 50 ms at 10,000 pending. A benchmark, not a
test: it exits 0 whether or not they are met.
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from _live import (  # bench/_live.py, beside this script; puts the repository root on sys.path
    ROOT,
    Databases,
    handrail_source,
    measure_backends,
    percentile,
    print_rows,
    process,
    ratios,
    run_facts,
)
from _live import parser as live_parser

TARGET_P95_MS = 50.0
CLIENTS = 8
QUEUES = ("payables", "claims")
INBOX_VIEWS = ("/", "/?sort=deadline", "/?queue=payables", "/?page=20")
PACKAGES = ("handrail", "fastapi", "starlette", "uvicorn", "sqlalchemy", "jinja2", "httpx")
TARGET = str(ROOT / "tests" / "pipelines" / "inbox_invoice.py") + ":pipeline"


@dataclass(frozen=True)
class Config:
    mode: str
    reviews: int
    """Pending reviews seeded."""
    page_requests: int
    """Timed requests per page kind (inbox, review), for handrail and for the anchor each."""
    decisions: int
    """Decisions timed, for handrail and for the anchor each."""
    clients: int = CLIENTS
    warmup: int = 20


FULL = Config(mode="full", reviews=10_000, page_requests=400, decisions=800)
QUICK = Config(mode="quick", reviews=1_000, page_requests=60, decisions=160, warmup=10)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- data --------------------------------------------------------------------------------------


def template_run() -> Any:
    """One real run of the fixture pipeline, waiting for review."""
    from tests.pipelines.inbox_invoice import SOURCES, pipeline

    from handrail import Runner

    record = Runner(pipeline).run_sync(SOURCES[0].text)
    assert record.status.value == "needs_review" and len(record.reviews) == 1, record.status
    return record


def seed(url: str, n: int, threads: int = 1) -> list[str]:
    """`n` runs, each with one pending review, saved through the store; their review ids."""
    from handrail.durable import SqlStore

    base = template_run()
    review = base.reviews[0]
    start = datetime.now(UTC) - timedelta(seconds=n + 60)
    ids = [f"rv-bench{i:06d}" for i in range(n)]

    def clone(i: int) -> Any:
        run_id = f"run-bench{i:06d}"
        created = start + timedelta(seconds=i)
        request = replace(
            review,
            review_id=ids[i],
            run_id=run_id,
            document_id=f"invoice-{i:06d}.txt",
            created_at=created,
            deadline=created + timedelta(hours=4),
            queue=QUEUES[1] if i % 3 == 2 else QUEUES[0],
        )
        steps = tuple(replace(s, run_id=run_id, review_id=ids[i]) for s in base.steps)
        return replace(
            base, run_id=run_id, document_id=request.document_id, reviews=(request,), steps=steps
        )

    store = SqlStore(url)
    try:
        store.save_run(clone(0))  # creates the tables before the threads race to
        chunks = [range(k, n, threads) for k in range(threads)]

        def save(chunk: range) -> None:
            for i in chunk:
                if i:
                    store.save_run(clone(i))

        workers = [threading.Thread(target=save, args=(c,)) for c in chunks]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    finally:
        store.close()
    return ids


# --- the anchor: bare FastAPI + SQLAlchemy + Jinja2 ---------------------------------------------

ANCHOR_INBOX = """<!doctype html><title>inbox</title><p>{{ total }} pending</p><table>
{% for r in rows %}<tr data-review-id="{{ r.review_id }}"><td><a href="/reviews/{{ r.review_id }}">
{{ r.review_id }}</a></td><td>{{ r.queue }}</td><td>{{ r.reasons }}</td><td>{{ r.lowest }}</td>
<td>{{ r.created_at }}</td><td>{{ r.deadline }}</td></tr>{% endfor %}</table>"""

ANCHOR_REVIEW = """<!doctype html><title>{{ review_id }}</title><pre id="document">{{ text }}</pre>
<form method="post">{% for path, value, conf in fields %}<label>{{ path }}
<input name="out.{{ path }}" value="{{ value }}"> {{ conf }}</label>{% endfor %}</form>
<ol>{% for s in steps %}<li>{{ s.node }} {{ s.status }}</li>{% endfor %}</ol>"""


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}{key}.")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{prefix}{i}.")
    else:
        yield prefix.rstrip("."), value


def anchor_app(url: str) -> Any:
    """The anchor: what the inbox's pages and decisions need, with nothing of handrail."""
    from fastapi import FastAPI, HTTPException
    from fastapi.responses import HTMLResponse
    from jinja2 import Environment
    from sqlalchemy import bindparam, create_engine, text

    from handrail.durable.engine import parse

    parsed, _ = parse(url)
    engine = create_engine(parsed, pool_size=10)
    env = Environment(autoescape=True)
    inbox_t, review_t = env.from_string(ANCHOR_INBOX), env.from_string(ANCHOR_REVIEW)
    app = FastAPI()
    page_sql = {
        order: text(
            "SELECT review_id, queue, created_at, deadline, request FROM handrail_reviews "
            f"WHERE status = 'pending' AND queue IN :queues ORDER BY {order} "
            "LIMIT 50 OFFSET :skip"
        ).bindparams(bindparam("queues", expanding=True))
        for order in ("created_at", "deadline, created_at")
    }
    count_sql = text(
        "SELECT count(*) FROM handrail_reviews WHERE status = 'pending' AND queue IN :queues"
    ).bindparams(bindparam("queues", expanding=True))

    def _json(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    @app.get("/", response_class=HTMLResponse)
    def inbox(page: int = 1, queue: str | None = None, sort: str = "age") -> str:
        queues = [queue] if queue else list(QUEUES)
        with engine.connect() as conn:
            query = page_sql["deadline, created_at" if sort == "deadline" else "created_at"]
            found = conn.execute(query, {"queues": queues, "skip": (page - 1) * 50}).all()
            total = conn.execute(count_sql, {"queues": queues}).scalar()
        rows = []
        for r in found:
            request = _json(r.request)
            confidences = [c["value"] for c in request["field_confidence"].values()]
            rows.append(
                {
                    "review_id": r.review_id,
                    "queue": r.queue,
                    "reasons": "; ".join(x["message"] for x in request["reasons"])[:120],
                    "lowest": min(confidences) if confidences else None,
                    "created_at": r.created_at,
                    "deadline": r.deadline,
                }
            )
        return inbox_t.render(rows=rows, total=total)

    @app.get("/reviews/{review_id}", response_class=HTMLResponse)
    def review(review_id: str) -> str:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT r.request, u.record FROM handrail_reviews r JOIN handrail_runs u "
                    "ON u.run_id = r.run_id WHERE r.review_id = :id"
                ),
                {"id": review_id},
            ).first()
        if row is None:
            raise HTTPException(404)
        request, record = _json(row.request), _json(row.record)
        confidence = request["field_confidence"]
        fields = [
            (path, value, (confidence.get(path.split(".")[0]) or {}).get("value"))
            for path, value in _leaves(request["output"])
        ]
        text_ = (record.get("document") or {}).get("text", "")
        return review_t.render(
            review_id=review_id, text=text_, fields=fields, steps=record["steps"]
        )

    decide_sql = text(
        "UPDATE handrail_reviews SET status = 'decided', decision = :decision, "
        "decided_at = :at, reviewer = :who WHERE review_id = :id AND status = 'pending'"
    )

    @app.post("/decide/{review_id}")
    def decide(review_id: str) -> dict[str, str]:
        at = datetime.now(UTC)
        decision = json.dumps({"action": "approve", "reviewer": "bench"})
        with engine.begin() as conn:
            done = conn.execute(
                decide_sql, {"decision": decision, "at": at, "who": "bench", "id": review_id}
            )
            if done.rowcount != 1:
                raise HTTPException(409, "already decided")
            conn.execute(
                text("INSERT INTO bench_anchor_log (at, review_id) VALUES (:at, :id)"),
                {"at": at, "id": review_id},
            )
        return {"review_id": review_id, "action": "approve"}

    return app


def create_anchor_log(url: str) -> None:
    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, create_engine

    from handrail.durable.engine import parse

    parsed, _ = parse(url)
    engine = create_engine(parsed)
    meta = MetaData()
    Table(
        "bench_anchor_log",
        meta,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("review_id", String(200), nullable=False),
    )
    meta.create_all(engine)
    engine.dispose()


def serve_anchor(url: str, port: int) -> None:
    """`bench/web.py --serve-anchor URL PORT`: the anchor app under uvicorn (a process of its own,
    as `handrail serve` is)."""
    import uvicorn

    config = uvicorn.Config(anchor_app(url), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    print(f"anchor ready: http://127.0.0.1:{port}", flush=True)
    server.run()


# --- measuring ---------------------------------------------------------------------------------


def timed_gets(client: Any, paths: list[str], warmup: int) -> list[float]:
    for path in paths[:warmup]:
        client.get(path)
    times = []
    for path in paths:
        t0 = time.perf_counter()
        response = client.get(path)
        times.append((time.perf_counter() - t0) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
    return times


def page_times(url: str, ids: list[str], cfg: Config, rng: random.Random) -> dict[str, Any]:
    """Server time of the inbox and review pages, handrail's and the anchor's, interleaved in
    blocks so that both see the same machine."""
    from fastapi.testclient import TestClient

    from handrail.review import ReviewService
    from handrail.web import create_app

    service = ReviewService(url, target=TARGET)
    _, token = service.add_reviewer("bench-pages", queues=list(QUEUES), actor="bench")
    _, session = service.sign_in(token)
    mine = TestClient(create_app(service, allowed_hosts=["testserver"]))
    mine.cookies.set("handrail_session", session.session_id)
    bare = TestClient(anchor_app(url))
    inbox_paths = [INBOX_VIEWS[i % len(INBOX_VIEWS)] for i in range(cfg.page_requests)]
    review_paths = [f"/reviews/{rng.choice(ids)}" for _ in range(cfg.page_requests)]
    got: dict[str, list[float]] = {k: [] for k in ("inbox", "review", "a_inbox", "a_review")}
    blocks = 4
    step = cfg.page_requests // blocks
    with mine, bare:
        for b in range(blocks):
            part = slice(b * step, (b + 1) * step)
            warm = cfg.warmup if b == 0 else 0
            got["inbox"] += timed_gets(mine, inbox_paths[part], warm)
            got["a_inbox"] += timed_gets(bare, inbox_paths[part], warm)
            got["review"] += timed_gets(mine, review_paths[part], warm)
            got["a_review"] += timed_gets(bare, review_paths[part], warm)
    service.close()
    return {k: {"p50": percentile(v, 0.5), "p95": percentile(v, 0.95)} for k, v in got.items()}


def decide_many(
    base: str,
    path: Callable[[str], str],
    ids: list[str],
    headers: dict[str, str],
    body: dict[str, Any] | None,
    clients: int,
) -> float:
    """`clients` threads POSTing decisions on `ids` (each once); decisions per second."""
    import httpx

    lock = threading.Lock()
    todo = iter(ids)
    failures: list[str] = []

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            while True:
                with lock:
                    review_id = next(todo, None)
                if review_id is None:
                    return
                response = http.post(path(review_id), json=body)
                if response.status_code != 200:
                    failures.append(f"{review_id}: {response.status_code} {response.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if failures:
        raise RuntimeError(f"{len(failures)} decisions failed, e.g. {failures[0]}")
    return len(ids) / elapsed


def decisions_per_s(url: str, ids: list[str], cfg: Config) -> dict[str, float]:
    from tests.browser.live import clean_env, free_port

    from handrail.review import ReviewService

    mine_ids, anchor_ids = ids[: cfg.decisions], ids[cfg.decisions : 2 * cfg.decisions]
    warm = cfg.warmup
    with ReviewService(url, target=TARGET) as service:
        _, token = service.add_reviewer("bench-api", queues=list(QUEUES), actor="bench")
    env = clean_env(url)
    serve = [sys.executable, "-m", "handrail.cli", "serve", "--db", url, "--target", TARGET]
    serve += ["--port", str(free_port()), "--no-worker"]
    headers = {"Authorization": f"Bearer {token}"}
    api = "/api/v1/reviews/{}/decision".format
    approve = {"action": "approve"}
    with process(serve, "handrail serve:", env) as base:
        # Warm-up: one client first (the first decision loads the pipeline's code), then all.
        decide_many(base, api, mine_ids[:2], headers, approve, 1)
        decide_many(base, api, mine_ids[2:warm], headers, approve, cfg.clients)
        mine = decide_many(base, api, mine_ids[warm:], headers, approve, cfg.clients)
    create_anchor_log(url)
    anchor_cmd = [sys.executable, __file__, "--serve-anchor", url, str(free_port())]
    with process(anchor_cmd, "anchor ready:", env) as base:
        bare_api = "/decide/{}".format
        decide_many(base, bare_api, anchor_ids[:2], {}, None, 1)
        decide_many(base, bare_api, anchor_ids[2:warm], {}, None, cfg.clients)
        bare = decide_many(base, bare_api, anchor_ids[warm:], {}, None, cfg.clients)
    return {"handrail": mine, "anchor": bare}


def measure(backend: str, url: str, cfg: Config) -> dict[str, Any]:
    rng = random.Random(13)
    t0 = time.perf_counter()
    ids = seed(url, cfg.reviews, threads=1 if backend == "sqlite" else 4)
    seeded = time.perf_counter() - t0
    _note(f"[web] {backend}: {len(ids):,} pending reviews seeded in {seeded:.1f} s")
    pages = page_times(url, ids[2 * cfg.decisions :], cfg, rng)
    _note(f"[web] {backend}: page times measured")
    decided = decisions_per_s(url, ids, cfg)
    _note(f"[web] {backend}: decisions measured")
    return {"pages": pages, "decisions": decided, "seed_s": seeded}


# --- output ------------------------------------------------------------------------------------


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def figures(result: dict[str, Any], who: str) -> dict[str, float | None]:
    pages, prefix = result["pages"], "" if who == "handrail" else "a_"
    return {
        "inbox_p50_ms": _r(pages[prefix + "inbox"]["p50"]),
        "inbox_p95_ms": _r(pages[prefix + "inbox"]["p95"]),
        "review_p50_ms": _r(pages[prefix + "review"]["p50"]),
        "review_p95_ms": _r(pages[prefix + "review"]["p95"]),
        "decisions_per_s": _r(result["decisions"][who], 1),
    }


def to_json(results: dict[str, dict[str, Any]], cfg: Config, meta: dict[str, Any]) -> Any:
    first_backend = "sqlite" if "sqlite" in results else next(iter(results))
    first = results[first_backend]
    payload: dict[str, Any] = {
        "bench": "web",
        "figures": figures(first, "handrail"),
        "anchors": {"bare_fastapi_sqlalchemy": figures(first, "anchor")},
        "ratios_to_anchor": ratios(figures(first, "handrail"), figures(first, "anchor")),
        "target_p95_ms": TARGET_P95_MS,
        "method": {
            "figures_from": first_backend,
            "pages": "server time: FastAPI TestClient in this process (no network), "
            f"{cfg.page_requests} requests per page kind, p50/p95 in ms",
            "decisions": f"live `handrail serve --no-worker`, {cfg.clients} HTTP clients, "
            "API bearer token, distinct reviews, decisions per second (higher is better)",
            "anchor": "bare FastAPI + SQLAlchemy + Jinja2 on the same database",
        },
        "by_backend": {
            b: {
                "handrail": figures(r, "handrail"),
                "anchor": figures(r, "anchor"),
                "ratios_to_anchor": ratios(figures(r, "handrail"), figures(r, "anchor")),
                "seed_s": _r(r["seed_s"], 1),
            }
            for b, r in results.items()
        },
        "machine": meta,
    }
    return payload


def print_table(results: dict[str, dict[str, Any]], cfg: Config, meta: dict[str, Any]) -> None:
    print(
        f"handrail review inbox benchmark, {cfg.mode} run: {cfg.reviews:,} pending reviews, "
        f"{cfg.page_requests} requests per page kind, {cfg.decisions - cfg.warmup} decisions by "
        f"{cfg.clients} clients"
    )
    print(
        "  pages: server time through FastAPI's TestClient in this process; decisions: a live "
        "`handrail serve --no-worker` over HTTP; anchor: bare FastAPI + SQLAlchemy + Jinja2"
    )
    print(f"  Python {meta['python']}, {meta['cpus_usable']} usable CPUs")
    for backend, described in meta["databases"].items():
        print(f"  {backend}: {described}")
    header = ["database", "figure", "handrail", "anchor", "ratio", "target"]
    rows = []
    for backend, result in results.items():
        mine, bare = figures(result, "handrail"), figures(result, "anchor")
        for key in mine:
            target = f"≤ {TARGET_P95_MS:g}" if key.endswith("p95_ms") else ""
            ratio = ratios(mine, bare)[key]
            rows.append(
                [
                    backend,
                    key,
                    f"{mine[key]}",
                    f"{bare[key]}",
                    f"{ratio}x" if ratio else "—",
                    target,
                ]
            )
    print_rows(header, rows, left=(0, 1))
    print("\n  pages: lower is better; decisions_per_s: higher is better (ratio = handrail/anchor)")
    print(f"  finished in {meta['elapsed_s']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    parser = live_parser(__doc__, quick="1,000 pending, fewer requests (CI)")
    parser.add_argument("--reviews", type=int, help="pending reviews to seed (overrides the mode)")
    args = parser.parse_args(argv)
    if args.serve_anchor:
        serve_anchor(args.serve_anchor[0], int(args.serve_anchor[1]))
        return 0
    cfg = QUICK if args.quick else FULL
    if args.reviews:
        cfg = replace(cfg, reviews=args.reviews)
    if cfg.reviews < 2 * cfg.decisions + 100:
        parser.error(f"--reviews must be at least {2 * cfg.decisions + 100} in this mode")
    source = handrail_source()
    started = time.perf_counter()
    dbs = Databases("web", sqlite_file="inbox.db")
    try:
        results, failed = measure_backends(
            dbs, args.postgres, lambda backend, url: measure(backend, url, cfg), "web"
        )
    finally:
        dbs.close()
    if not results:
        return 1
    meta = run_facts(
        source=source,
        packages=PACKAGES,
        databases=dbs.described,
        config=cfg,
        started=started,
        failed=failed,
    )
    if args.json:
        print(json.dumps(to_json(results, cfg, meta), default=str))
    else:
        print_table(results, cfg, meta)
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.pop("HANDRAIL_DATABASE_URL", None)
    sys.exit(main())
