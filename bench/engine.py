#!/usr/bin/env python
"""Engine overhead of handrail's in-memory runner, side by side with LangGraph and Apache Burr.

    python bench/engine.py            # full run (a few minutes at most), readable table
    python bench/engine.py --quick    # CI smoke run (well under a minute)
    python bench/engine.py --json     # exactly one JSON object on stdout
    python bench/engine.py --profile w1   # cProfile of handrail on a workload, then exit

Workloads (see bench/README.md for the details and what each anchor had to adapt):

- W1  CPU µs per node, 10-node linear pipeline of trivial nodes, sync and async node functions;
- W2  CPU µs per run, a router choosing one of three branches (cycling), then a join;
- W3  1000 documents, rule -> LLM -> LLM -> rule, each LLM call 50 ms, concurrency 100:
      wall time / ideal (1.0 s);
- peak RSS (MB) of a fresh interpreter after importing the framework.

Every workload is run for each framework in the same process, alternating between frameworks
(the order rotates each round) for several rounds; the figure is the median over rounds.
Progress goes to stderr, results to stdout. This is a benchmark, not a test: it exits 0 whether
or not the targets are met.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypedDict

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"

# Run from a checkout even when handrail is not installed (`python bench/engine.py`).
try:
    import handrail  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(SRC))

from _host import handrail_source, machine_facts, package_versions  # noqa: E402 - bench/_host.py, beside this script

# Tracing would measure LangSmith, not LangGraph: make sure it is off in this process.
for _var in (
    "LANGCHAIN_TRACING_V2",
    "LANGCHAIN_TRACING",
    "LANGSMITH_TRACING",
    "LANGSMITH_TRACING_V2",
):
    os.environ.pop(_var, None)

FRAMEWORKS = ("handrail", "burr", "langgraph")
ANCHORS = ("burr", "langgraph")
METRICS = (
    "w1_cpu_us_per_node",
    "w1_async_cpu_us_per_node",
    "w2_us_per_run",
    "w3_wall_over_ideal",
    "import_rss_mb",
    "tracing_added_us_per_step",
)
TARGETS: dict[str, float] = {
    "w1_cpu_us_per_node": 10.0,
    "w1_async_cpu_us_per_node": 10.0,
    "w3_wall_over_ideal": 1.05,
    "import_rss_mb": 50.0,
    "tracing_added_us_per_step": 30.0,
}
LABELS = {
    "w1_cpu_us_per_node": ("W1 CPU per node, sync nodes", "µs"),
    "w1_async_cpu_us_per_node": ("W1 CPU per node, async nodes", "µs"),
    "w2_us_per_run": ("W2 CPU per run, route + join", "µs"),
    "w3_wall_over_ideal": ("W3 wall / ideal, 1000 docs @100", "×"),
    "import_rss_mb": ("peak RSS after import", "MB"),
    "tracing_added_us_per_step": ("W1 CPU added per node by tracing", "µs"),
}
IMPORTS = {
    "handrail": "import handrail",
    "burr": "import burr.core",
    "langgraph": "import langgraph.graph",
}
PACKAGES = (
    "handrail",
    "langgraph",
    "langgraph-checkpoint",
    "langchain-core",
    "apache-burr",
    "pydantic",
    "networkx",
    "tenacity",
    "psutil",
    "rich",
)

N_LINEAR = 10
NAMES = tuple(f"n{i}" for i in range(N_LINEAR))
BRANCHES = ("a", "b", "c")
_seq = itertools.count()


@dataclass(frozen=True)
class Config:
    mode: str
    rounds: int
    w1_runs: int
    w2_runs: int
    w3_docs: int = 1000
    w3_concurrency: int = 100
    w3_latency: float = 0.05
    import_reps: int = 5
    gc_freeze: bool = True

    @property
    def w3_ideal_s(self) -> float:
        """Each slot handles docs/concurrency documents, each 2 sequential LLM calls."""
        return math.ceil(self.w3_docs / self.w3_concurrency) * 2 * self.w3_latency


FULL = Config(mode="full", rounds=5, w1_runs=2000, w2_runs=2000, import_reps=5)
QUICK = Config(mode="quick", rounds=3, w1_runs=300, w2_runs=300, import_reps=3)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _doc_texts(prefix: str, n: int) -> list[str]:
    """Distinct document texts (handrail dedupes runs by content hash)."""
    batch = next(_seq)
    return [f"{prefix} batch {batch} document {i} {i % 3}" for i in range(n)]


def _w3_texts(n: int) -> list[str]:
    """The same short support tickets for every framework (distinct, for handrail's dedupe)."""
    return [f"Customer writes: my order is late, please help. ({t})" for t in _doc_texts("w3", n)]


# --- handrail -----------------------------------------------------------------------------------


class HandrailEngine:
    name = "handrail"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from handrail import Draft, PipelineBuilder, Route, Rule, Summarize

        self.loop = loop

        def linear(make: Callable[[str | None], Any]) -> Any:
            b = PipelineBuilder("bench_w1")
            b.add(Rule(NAMES[0], make(None)))
            for prev, name in itertools.pairwise(NAMES):
                b.add(Rule(name, make(prev)), after=prev)
            return b.build()

        def sync_node(prev: str | None) -> Callable[[Any], int]:
            if prev is None:
                return lambda s: 1
            return lambda s: s[prev] + 1

        def async_node(prev: str | None) -> Callable[[Any], Any]:
            if prev is None:

                async def first(s: Any) -> int:
                    return 1

                return first

            async def step(s: Any) -> int:
                return s[prev] + 1

            return step

        self.w1_sync = linear(sync_node)
        self.w1_async = linear(async_node)

        digit_to_branch = {str(i): b for i, b in enumerate(BRANCHES)}

        def route(s: Any) -> Any:
            return Route(digit_to_branch[s.text[-1]])

        b = PipelineBuilder("bench_w2").add(Rule("route", route, routes=list(BRANCHES)))
        for branch in BRANCHES:
            b.add(Rule(branch, lambda s, v=branch.upper(): v), after="route", route=branch)
        b.add(Rule("join", lambda s: next(s[k] for k in BRANCHES if k in s)), after=list(BRANCHES))
        self.w2_pipeline = b.build()

        self.w3_pipeline = (
            PipelineBuilder("bench_w3")
            .add(Rule("prep", lambda s: len(s.text)))
            .add(Summarize("summary", gate=None), after="prep")
            .add(Draft("reply", gate=None), after="summary")
            .add(Rule("finish", lambda s: (s["prep"], s["summary"], s["reply"])), after="reply")
            .build()
        )

    def _runner(self, pipeline: Any, model: Any = None, hooks: Any = ()) -> Any:
        from handrail import Runner

        return Runner(pipeline, model=model, hooks=hooks)

    def tracing_added(self, runs: int, *, metrics: bool = False) -> float:
        """CPU µs per node that tracing adds to W1 (sync nodes): the run, step and evaluation
        spans through the SDK's BatchSpanProcessor (its export thread included: process time
        counts every thread) to an exporter that drops them; with `metrics`, the
        MetricsHooks' instruments too. Measured against W1 with no hooks, back to back."""
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        from handrail.observability import configure

        class Discard(SpanExporter):
            def export(self, spans: Any) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        telemetry = configure(
            span_exporters=[Discard()], metric_readers=[InMemoryMetricReader()] if metrics else []
        )
        try:
            traced = self.w1(runs, use_async=False, hooks=telemetry.hooks)
            plain = self.w1(runs, use_async=False)
        finally:
            telemetry.shutdown()
        return traced - plain

    def w1(self, runs: int, *, use_async: bool, hooks: Any = ()) -> float:
        runner = self._runner(self.w1_async if use_async else self.w1_sync, hooks=hooks)
        docs = _doc_texts("w1", runs)

        async def go() -> tuple[float, Any]:
            record = None
            t0 = time.process_time()
            for doc in docs:
                record = await runner.run(doc)
            return time.process_time() - t0, record

        cpu, last = self.loop.run_until_complete(go())
        assert last.status.value == "completed" and last.outputs[NAMES[-1]] == N_LINEAR, last
        assert len(last.steps) == N_LINEAR
        return cpu / (runs * N_LINEAR) * 1e6

    def w2(self, runs: int) -> float:
        runner = self._runner(self.w2_pipeline)
        docs = _doc_texts("w2", runs)

        async def go() -> tuple[float, list[Any]]:
            records = []
            t0 = time.process_time()
            for doc in docs:
                records.append(await runner.run(doc))
            return time.process_time() - t0, records

        cpu, records = self.loop.run_until_complete(go())
        for i, record in enumerate(records[:3]):
            assert record.status.value == "completed", record
            assert record.outputs["join"] == BRANCHES[i].upper(), record.outputs
        return cpu / runs * 1e6

    def w3(self, cfg: Config) -> tuple[float, float]:
        from handrail import FakeModel, Reply

        model = FakeModel(
            {"summary": Reply("short"), "reply": Reply("hello")}, latency=cfg.w3_latency
        )
        runner = self._runner(self.w3_pipeline, model)
        docs = _w3_texts(cfg.w3_docs)

        async def go() -> tuple[float, float, list[Any]]:
            c0, t0 = time.process_time(), time.perf_counter()
            records = await runner.run_many(docs, concurrency=cfg.w3_concurrency)
            return time.perf_counter() - t0, time.process_time() - c0, records

        wall, cpu, records = self.loop.run_until_complete(go())
        assert len(records) == cfg.w3_docs
        assert all(r.status.value == "completed" for r in records), records[0]
        assert records[0].outputs["finish"][1:] == ("short", "hello"), records[0].outputs
        assert len(model.calls) == 2 * cfg.w3_docs
        return wall, cpu


# --- LangGraph ----------------------------------------------------------------------------------


class _Count(TypedDict):
    count: int


class _Branch(TypedDict, total=False):
    i: int
    branch: str
    value: str
    joined: str


class _Intake(TypedDict, total=False):
    text: str
    n: int
    summary: str
    reply: str
    out: tuple[int, str, str]


class LangGraphEngine:
    name = "langgraph"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from langgraph.graph import END, START, StateGraph

        self.loop = loop

        def inc(state: _Count) -> dict[str, int]:
            return {"count": state["count"] + 1}

        async def ainc(state: _Count) -> dict[str, int]:
            return {"count": state["count"] + 1}

        def linear(fn: Any) -> Any:
            g = StateGraph(_Count)
            for name in NAMES:
                g.add_node(name, fn)
            g.add_edge(START, NAMES[0])
            for prev, name in itertools.pairwise(NAMES):
                g.add_edge(prev, name)
            g.add_edge(NAMES[-1], END)
            return g.compile()

        self.w1_sync = linear(inc)
        self.w1_async = linear(ainc)

        def route(state: _Branch) -> dict[str, str]:
            return {"branch": BRANCHES[state["i"] % 3]}

        def pick(state: _Branch) -> str:
            return state["branch"]

        def join(state: _Branch) -> dict[str, str]:
            return {"joined": state["value"]}

        g = StateGraph(_Branch)
        g.add_node("route", route)
        for branch in BRANCHES:
            g.add_node(branch, lambda s, v=branch.upper(): {"value": v})
        g.add_node("join", join)
        g.add_edge(START, "route")
        g.add_conditional_edges("route", pick, {b: b for b in BRANCHES})
        for branch in BRANCHES:
            g.add_edge(branch, "join")
        g.add_edge("join", END)
        self.w2_graph = g.compile()
        self.w3_graph: Any = None
        self.w3_latency: float | None = None

    def _w3_graph(self, latency: float) -> Any:
        if self.w3_graph is not None and self.w3_latency == latency:
            return self.w3_graph
        from langgraph.graph import END, START, StateGraph

        def prep(state: _Intake) -> dict[str, Any]:
            return {"n": len(state["text"])}

        async def summary(state: _Intake) -> dict[str, Any]:
            await asyncio.sleep(latency)
            return {"summary": "short"}

        async def reply(state: _Intake) -> dict[str, Any]:
            await asyncio.sleep(latency)
            return {"reply": "hello"}

        def finish(state: _Intake) -> dict[str, Any]:
            return {"out": (state["n"], state["summary"], state["reply"])}

        g = StateGraph(_Intake)
        for name, fn in (
            ("prep", prep),
            ("summary", summary),
            ("reply", reply),
            ("finish", finish),
        ):
            g.add_node(name, fn)
        g.add_edge(START, "prep")
        g.add_edge("prep", "summary")
        g.add_edge("summary", "reply")
        g.add_edge("reply", "finish")
        g.add_edge("finish", END)
        self.w3_graph, self.w3_latency = g.compile(), latency
        return self.w3_graph

    def w1(self, runs: int, *, use_async: bool) -> float:
        inputs = [{"count": 0} for _ in range(runs)]
        if use_async:
            graph = self.w1_async

            async def go() -> tuple[float, Any]:
                out = None
                t0 = time.process_time()
                for value in inputs:
                    out = await graph.ainvoke(value)
                return time.process_time() - t0, out

            cpu, last = self.loop.run_until_complete(go())
        else:
            graph = self.w1_sync
            last = None
            t0 = time.process_time()
            for value in inputs:
                last = graph.invoke(value)
            cpu = time.process_time() - t0
        assert last == {"count": N_LINEAR}, last
        return cpu / (runs * N_LINEAR) * 1e6

    def w2(self, runs: int) -> float:
        graph = self.w2_graph
        inputs = [{"i": i} for i in range(runs)]
        outs = []
        t0 = time.process_time()
        for value in inputs:
            outs.append(graph.invoke(value))
        cpu = time.process_time() - t0
        for i, out in enumerate(outs[:3]):
            assert out["joined"] == BRANCHES[i].upper(), out
        return cpu / runs * 1e6

    def w3(self, cfg: Config) -> tuple[float, float]:
        graph = self._w3_graph(cfg.w3_latency)
        inputs = [{"text": t} for t in _w3_texts(cfg.w3_docs)]

        async def go() -> tuple[float, float, list[Any]]:
            c0, t0 = time.process_time(), time.perf_counter()
            outs = await graph.abatch(inputs, config={"max_concurrency": cfg.w3_concurrency})
            return time.perf_counter() - t0, time.process_time() - c0, outs

        wall, cpu, outs = self.loop.run_until_complete(go())
        assert len(outs) == cfg.w3_docs and outs[0]["out"][1:] == ("short", "hello"), outs[0]
        return wall, cpu


# --- Apache Burr --------------------------------------------------------------------------------


class BurrEngine:
    name = "burr"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        from burr.core import ApplicationBuilder, GraphBuilder, State, action, when

        self.loop = loop
        self._ApplicationBuilder = ApplicationBuilder

        @action(reads=["count"], writes=["count"])
        def inc(state: State) -> State:
            return state.update(count=state["count"] + 1)

        @action(reads=["count"], writes=["count"])
        async def ainc(state: State) -> State:
            return state.update(count=state["count"] + 1)

        def linear_graph(fn: Any) -> Any:
            return (
                GraphBuilder()
                .with_actions(**{name: fn for name in NAMES})
                .with_transitions(*itertools.pairwise(NAMES))
                .build()
            )

        self.w1_sync_graph = linear_graph(inc)
        self.w1_async_graph = linear_graph(ainc)
        # One application per variant, built once and reset before each run (see README).
        self.w1_sync_app = self._app(self.w1_sync_graph, NAMES[0], count=0)
        self.w1_async_app = self._app(self.w1_async_graph, NAMES[0], count=0)
        self.w1_sync_init = self.w1_sync_app.state
        self.w1_async_init = self.w1_async_app.state

        @action(reads=["i"], writes=["branch"])
        def route(state: State) -> State:
            return state.update(branch=BRANCHES[state["i"] % 3])

        def branch_action(value: str) -> Any:
            @action(reads=[], writes=["value"])
            def set_value(state: State) -> State:
                return state.update(value=value)

            return set_value

        @action(reads=["value"], writes=["joined"])
        def join(state: State) -> State:
            return state.update(joined=state["value"])

        w2_graph = (
            GraphBuilder()
            .with_actions(route=route, join=join, **{b: branch_action(b.upper()) for b in BRANCHES})
            .with_transitions(
                *[("route", b, when(branch=b)) for b in BRANCHES],
                (list(BRANCHES), "join"),
            )
            .build()
        )
        self.w2_app = self._app(w2_graph, "route", i=0)
        self.w2_init = self.w2_app.state
        self.w3_graph: Any = None
        self.w3_latency: float | None = None

    def _app(self, graph: Any, entrypoint: str, **state: Any) -> Any:
        return (
            self._ApplicationBuilder()
            .with_graph(graph)
            .with_entrypoint(entrypoint)
            .with_state(**state)
            .build()
        )

    def _w3(self, latency: float) -> Any:
        if self.w3_graph is not None and self.w3_latency == latency:
            return self.w3_graph
        from burr.core import GraphBuilder, State, action

        @action(reads=["text"], writes=["n"])
        def prep(state: State) -> State:
            return state.update(n=len(state["text"]))

        @action(reads=[], writes=["summary"])
        async def summary(state: State) -> State:
            await asyncio.sleep(latency)
            return state.update(summary="short")

        @action(reads=[], writes=["reply"])
        async def reply(state: State) -> State:
            await asyncio.sleep(latency)
            return state.update(reply="hello")

        @action(reads=["n", "summary", "reply"], writes=["out"])
        def finish(state: State) -> State:
            return state.update(out=(state["n"], state["summary"], state["reply"]))

        self.w3_graph = (
            GraphBuilder()
            .with_actions(prep=prep, summary=summary, reply=reply, finish=finish)
            .with_transitions(("prep", "summary"), ("summary", "reply"), ("reply", "finish"))
            .build()
        )
        self.w3_latency = latency
        return self.w3_graph

    def w1(self, runs: int, *, use_async: bool) -> float:
        last = NAMES[-1]
        if use_async:
            app, init = self.w1_async_app, self.w1_async_init

            async def go() -> tuple[float, Any]:
                state = None
                t0 = time.process_time()
                for _ in range(runs):
                    app.update_state(init)
                    _, _, state = await app.arun(halt_after=[last])
                return time.process_time() - t0, state

            cpu, state = self.loop.run_until_complete(go())
        else:
            app, init = self.w1_sync_app, self.w1_sync_init
            state = None
            t0 = time.process_time()
            for _ in range(runs):
                app.update_state(init)
                _, _, state = app.run(halt_after=[last])
            cpu = time.process_time() - t0
        assert state["count"] == N_LINEAR, state
        return cpu / (runs * N_LINEAR) * 1e6

    def w2(self, runs: int) -> float:
        app, init = self.w2_app, self.w2_init
        starts = [init.update(i=i) for i in range(runs)]
        outs = []
        t0 = time.process_time()
        for start in starts:
            app.update_state(start)
            outs.append(app.run(halt_after=["join"])[2])
        cpu = time.process_time() - t0
        for i, state in enumerate(outs[:3]):
            assert state["joined"] == BRANCHES[i].upper(), state
        return cpu / runs * 1e6

    def w3(self, cfg: Config) -> tuple[float, float]:
        graph = self._w3(cfg.w3_latency)
        texts = _w3_texts(cfg.w3_docs)

        async def go() -> tuple[float, float, list[Any]]:
            sem = asyncio.Semaphore(cfg.w3_concurrency)

            async def one(text: str) -> Any:
                async with sem:
                    app = self._app(graph, "prep", text=text)  # one application per document
                    _, _, state = await app.arun(halt_after=["finish"])
                    return state["out"]

            c0, t0 = time.process_time(), time.perf_counter()
            outs = await asyncio.gather(*(one(t) for t in texts))
            return time.perf_counter() - t0, time.process_time() - c0, outs

        wall, cpu, outs = self.loop.run_until_complete(go())
        assert len(outs) == cfg.w3_docs and outs[0][1:] == ("short", "hello"), outs[0]
        return wall, cpu

    def build_us(self, n: int) -> float:
        """CPU µs to build one W1 application from the prebuilt graph (excluded from W1/W2)."""
        t0 = time.process_time()
        for _ in range(n):
            self._app(self.w1_sync_graph, NAMES[0], count=0)
        return (time.process_time() - t0) / n * 1e6


ENGINES: dict[str, type] = {
    "handrail": HandrailEngine,
    "burr": BurrEngine,
    "langgraph": LangGraphEngine,
}


# --- import footprint ---------------------------------------------------------------------------

_RSS_PROBE = """
import sys
{stmt}
def peak_mib():
    # Linux: the high-water mark of this process's own address space. (ru_maxrss is no good
    # here: Linux carries the parent's peak over fork+exec, so a child of this big benchmark
    # process would report the benchmark's size.)
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / (1024 * 1024 if sys.platform == "darwin" else 1024)
    except ImportError:
        import psutil
        info = psutil.Process().memory_info()
        return getattr(info, "peak_wset", info.rss) / (1024 * 1024)
print(peak_mib())
"""


def _probe_env() -> dict[str, str]:
    env = dict(os.environ)
    if str(SRC) in sys.path:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


def import_rss_mb(stmt: str) -> float:
    """Peak RSS (MiB) of a fresh interpreter after running `stmt`."""
    out = subprocess.run(
        [sys.executable, "-c", _RSS_PROBE.format(stmt=stmt)],
        capture_output=True,
        text=True,
        check=True,
        env=_probe_env(),
    )
    return float(out.stdout.strip().splitlines()[-1])


# --- the protocol -------------------------------------------------------------------------------


@dataclass
class Results:
    samples: dict[str, dict[str, list[float]]]
    info: dict[str, dict[str, float]]

    def median(self, fw: str, metric: str) -> float | None:
        values = self.samples.get(fw, {}).get(metric)
        return statistics.median(values) if values else None


class GcMeter:
    """Counts garbage collections and the time spent in them (via `gc.callbacks`)."""

    def __init__(self) -> None:
        self.counts = [0, 0, 0]
        self.paused = 0.0
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.paused += time.perf_counter() - self._t0
            self.counts[info["generation"]] += 1

    def snapshot(self) -> tuple[int, float]:
        return self.counts[2], self.paused


async def asyncio_floor(cfg: Config) -> float:
    """W3's shape with no framework at all: `concurrency` workers, two sleeps per document."""
    items = iter(range(cfg.w3_docs))

    async def worker() -> None:
        for _ in items:
            await asyncio.sleep(cfg.w3_latency)
            await asyncio.sleep(cfg.w3_latency)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(cfg.w3_concurrency)))
    return time.perf_counter() - t0


def run_bench(cfg: Config, names: list[str]) -> Results:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    samples: dict[str, dict[str, list[float]]] = {n: {m: [] for m in METRICS} for n in names}
    info: dict[str, dict[str, float]] = {n: {} for n in names}
    w3_extra: dict[str, list[tuple[float, int, float]]] = {n: [] for n in names}
    floor: list[float] = []
    tracing_and_metrics: list[float] = []
    meter = GcMeter()
    try:
        _note(f"[engine] import footprint: {cfg.import_reps} fresh interpreters per framework")
        import_rss_mb("pass")  # warm the page cache and .pyc files before measuring
        for n in names:
            import_rss_mb(IMPORTS[n])
        baseline = []
        for rep in range(cfg.import_reps):
            baseline.append(import_rss_mb("pass"))
            for n in _rotated(names, rep):
                samples[n]["import_rss_mb"].append(import_rss_mb(IMPORTS[n]))
        info["handrail"]["python_baseline_rss_mb"] = statistics.median(baseline)

        engines = {n: ENGINES[n](loop) for n in names}
        workloads: list[tuple[str, Callable[[Any], float]]] = [
            ("w1_cpu_us_per_node", lambda e: e.w1(cfg.w1_runs, use_async=False)),
            ("w1_async_cpu_us_per_node", lambda e: e.w1(cfg.w1_runs, use_async=True)),
            ("w2_us_per_run", lambda e: e.w2(cfg.w2_runs)),
        ]

        _note("[engine] warming up")
        warm = Config(
            mode="warmup",
            rounds=1,
            w1_runs=max(50, cfg.w1_runs // 10),
            w2_runs=max(50, cfg.w2_runs // 10),
            w3_docs=cfg.w3_concurrency,
            w3_concurrency=cfg.w3_concurrency,
            w3_latency=cfg.w3_latency,
        )
        for e in engines.values():
            e.w1(warm.w1_runs, use_async=False)
            e.w1(warm.w1_runs, use_async=True)
            e.w2(warm.w2_runs)
            e.w3(warm)
        loop.run_until_complete(asyncio_floor(warm))

        # Everything alive now (the three frameworks' modules, the built graphs, warm caches) is
        # moved out of the collector's reach, so a full collection during a measurement costs
        # the same whichever anchors are loaded in this process: each framework pays only for
        # the objects its own runs allocate and keep. The collector itself stays enabled.
        gc.collect()
        if cfg.gc_freeze:
            gc.freeze()
        gc.callbacks.append(meter)

        for r in range(cfg.rounds):
            started = time.perf_counter()
            for metric, fn in workloads:
                for n in _rotated(names, r):
                    gc.collect()
                    samples[n][metric].append(fn(engines[n]))
            for n in _rotated(names, r):
                gc.collect()
                full0, paused0 = meter.snapshot()
                wall, cpu = engines[n].w3(cfg)
                full1, paused1 = meter.snapshot()
                samples[n]["w3_wall_over_ideal"].append(wall / cfg.w3_ideal_s)
                w3_extra[n].append((cpu, full1 - full0, paused1 - paused0))
            gc.collect()
            floor.append(loop.run_until_complete(asyncio_floor(cfg)) / cfg.w3_ideal_s)
            gc.collect()
            samples["handrail"]["tracing_added_us_per_step"].append(
                engines["handrail"].tracing_added(cfg.w1_runs)
            )
            tracing_and_metrics.append(engines["handrail"].tracing_added(cfg.w1_runs, metrics=True))
            _note(
                f"[engine] round {r + 1}/{cfg.rounds} done in {time.perf_counter() - started:.1f}s"
            )

        for n in names:
            info[n]["w3_cpu_s"] = statistics.median(x[0] for x in w3_extra[n])
            info[n]["w3_gc_full_collections"] = statistics.median(x[1] for x in w3_extra[n])
            info[n]["w3_gc_pause_ms"] = statistics.median(x[2] * 1000 for x in w3_extra[n])
        info["handrail"]["w3_asyncio_floor"] = statistics.median(floor)
        info["handrail"]["tracing_and_metrics_added_us_per_step"] = statistics.median(
            tracing_and_metrics
        )
        if "burr" in engines:
            gc.collect()
            info["burr"]["app_build_us"] = statistics.median(
                engines["burr"].build_us(max(100, cfg.w1_runs // 4)) for _ in range(3)
            )
    finally:
        if meter in gc.callbacks:
            gc.callbacks.remove(meter)
        gc.unfreeze()
        loop.close()
        asyncio.set_event_loop(None)
    return Results(samples=samples, info=info)


def _rotated(names: list[str], k: int) -> list[str]:
    k %= len(names)
    return names[k:] + names[:k]


def available_frameworks(wanted: list[str]) -> list[str]:
    names = ["handrail"]
    for anchor in ANCHORS:
        if anchor not in wanted:
            _note(f"[engine] note: anchor `{anchor}` not requested (--anchors); skipped")
            continue
        module = IMPORTS[anchor].removeprefix("import ")
        try:
            __import__(module)
        except ImportError as e:
            _note(
                f"[engine] note: anchor `{anchor}` is not installed ({e}); skipped. "
                "Install the anchors with `pip install -e '.[bench]'`."
            )
            continue
        names.append(anchor)
    return names


_SOURCE: dict[str, Any] = {}


def machine(cfg: Config, names: list[str]) -> dict[str, Any]:
    return {
        **machine_facts(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "packages": package_versions(PACKAGES),
        "handrail_source": _SOURCE or handrail_source(),
        "frameworks_measured": names,
        "config": {**asdict(cfg), "w3_ideal_s": cfg.w3_ideal_s},
    }


def _describe_source(src: dict[str, Any]) -> str:
    if src.get("git_commit"):
        state = "with uncommitted changes in src" if src.get("src_modified") else "clean"
        return f"commit {src['git_commit']}, {state}"
    return src.get("path", "?")


# --- output -------------------------------------------------------------------------------------


def to_json(results: Results, cfg: Config, names: list[str]) -> dict[str, Any]:
    def figures(fw: str) -> dict[str, float | None]:
        return {m: _round(results.median(fw, m)) for m in METRICS}

    return {
        "bench": "engine",
        "figures": figures("handrail"),
        "anchors": {a: (figures(a) if a in names else None) for a in ANCHORS},
        "informational": {
            "tracing_and_metrics_added_us_per_step": _round(
                results.info.get("handrail", {}).get("tracing_and_metrics_added_us_per_step")
            )
        },
        "machine": machine(cfg, names),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "—"
    if metric == "w3_wall_over_ideal":
        return f"{value:.3f}"
    return f"{value:.1f}" if value < 1000 else f"{value:,.0f}"


def table_rows(results: Results, names: list[str]) -> list[list[str]]:
    rows = []
    for metric in METRICS:
        label, unit = LABELS[metric]
        target = TARGETS.get(metric)
        mine = results.median("handrail", metric)
        row = [label, unit, f"≤ {target:g}" if target is not None else "—"]
        row += [_fmt(metric, results.median(fw, metric)) for fw in FRAMEWORKS]
        for anchor in ANCHORS:
            theirs = results.median(anchor, metric)
            row.append(f"{mine / theirs:.2f}" if mine is not None and theirs else "—")
        if target is None or mine is None:
            row.append("—")
        else:
            row.append("yes" if mine <= target else "NO")
        rows.append(row)
    return rows


HEADERS = [
    "metric",
    "unit",
    "target",
    "handrail",
    "burr",
    "langgraph",
    "handrail÷burr",
    "handrail÷langgraph",
    "meets target",
]


def print_table(results: Results, cfg: Config, names: list[str], verbose: bool) -> None:
    m = machine(cfg, names)
    pk = m["packages"]
    lines = [
        f"handrail engine benchmark, {cfg.mode} run: median of {cfg.rounds} rounds, frameworks "
        "alternating",
        f"  W1: {cfg.w1_runs} runs x {N_LINEAR} trivial nodes, CPU (process_time) per node; "
        f"W2: {cfg.w2_runs} runs, CPU per run;",
        f"  W3: {cfg.w3_docs} docs, concurrency {cfg.w3_concurrency}, 2 LLM calls of "
        f"{cfg.w3_latency * 1000:g} ms each, wall / ideal {cfg.w3_ideal_s:g} s; "
        "import: peak RSS of a fresh interpreter",
        f"  Python {m['python']} on {m['platform']}, {m['cpus_usable']} usable CPUs; "
        f"handrail {pk['handrail']} ({_describe_source(m['handrail_source'])}), "
        f"apache-burr {pk['apache-burr'] or '—'}, "
        f"langgraph {pk['langgraph'] or '—'}",
        "  lower is better everywhere; a ratio below 1 means handrail is cheaper",
    ]
    print("\n".join(lines))
    rows = table_rows(results, names)
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        Console = None  # type: ignore[assignment,misc]
    if Console is not None:
        table = Table()
        for i, h in enumerate(HEADERS):
            table.add_column(h, justify="left" if i == 0 else "right", no_wrap=True)
        for row in rows:
            table.add_row(*row, style="red" if row[-1] == "NO" else None)
        Console(width=max(140, Console().width)).print(table)
    else:
        widths = [max(len(r[i]) for r in [HEADERS, *rows]) for i in range(len(HEADERS))]
        for r in [HEADERS, ["-" * w for w in widths], *rows]:
            cells = zip(r, widths, strict=True)
            print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells)))

    print()
    print("informational (not targets; medians over rounds):")
    for fw in names:
        i = results.info.get(fw, {})
        line = (
            f"W3: {i['w3_cpu_s']:.3f} s CPU for {cfg.w3_docs} docs, "
            f"{i['w3_gc_pause_ms']:.0f} ms in GC pauses "
            f"({i['w3_gc_full_collections']:g} full "
            f"collection{'' if i['w3_gc_full_collections'] == 1 else 's'})"
        )
        if "app_build_us" in i:
            line += (
                f"; building one Application: {i['app_build_us']:.1f} µs CPU (not in W1/W2, "
                f"+{i['app_build_us'] / N_LINEAR:.1f} µs/node if built per run; in W3)"
            )
        print(f"  {fw:<10} {line}")
    hr = results.info.get("handrail", {})
    if "w3_asyncio_floor" in hr:
        print(
            f"  {'asyncio':<10} W3 with no framework (bare workers + sleeps): "
            f"{hr['w3_asyncio_floor']:.3f} x ideal: the floor on this machine"
        )
    if "tracing_and_metrics_added_us_per_step" in hr:
        print(
            f"  {'telemetry':<10} tracing and metrics (MetricsHooks) together add "
            f"{hr['tracing_and_metrics_added_us_per_step']:.1f} µs CPU per W1 node"
        )
    if "python_baseline_rss_mb" in hr:
        print(
            f"  {'python':<10} bare interpreter peak RSS {hr['python_baseline_rss_mb']:.1f} MB "
            "(included in every import figure)"
        )
    if verbose:
        print()
        print("all rounds (in run order):")
        for fw in names:
            for metric in METRICS:
                values = ", ".join(_fmt(metric, v) for v in results.samples[fw][metric])
                print(f"  {fw:<10} {metric:<26} {values}")


# --- profiling ----------------------------------------------------------------------------------


def _generated_inits() -> dict[Any, str]:
    """Dataclass `__init__`s all live at `<string>:2`; pstats would merge (overwrite) them into
    one row. Map each handrail class's generated `__init__` code to a readable name."""
    names: dict[Any, str] = {}
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("handrail") or module is None:
            continue
        for obj in vars(module).values():
            code = getattr(getattr(obj, "__init__", None), "__code__", None)
            if isinstance(obj, type) and code is not None and code.co_filename == "<string>":
                names[code] = f"{obj.__name__}.__init__ (dataclass)"
    return names


def profile(cfg: Config, workload: str, top: int) -> None:
    """cProfile handrail on one workload; print the top functions by own time (tottime).

    W1/W2 use cProfile's default (wall) timer, which is cheap: the code is CPU-bound and never
    sleeps. W3 uses process_time so the event loop's idle waits do not count."""
    import cProfile

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    engine = HandrailEngine(loop)
    run = {
        "w1": lambda: engine.w1(cfg.w1_runs, use_async=False),
        "w1_async": lambda: engine.w1(cfg.w1_runs, use_async=True),
        "w2": lambda: engine.w2(cfg.w2_runs),
        "w3": lambda: engine.w3(cfg)[1],
    }[workload]
    run()  # warm up
    plain_runs = []
    for _ in range(1 if workload == "w3" else 3):  # the figure without the profiler
        gc.collect()
        plain_runs.append(run())
    plain = statistics.median(plain_runs)
    gc.collect()
    profiler = cProfile.Profile(time.process_time) if workload == "w3" else cProfile.Profile()
    profiler.enable()
    value = run()
    profiler.disable()
    loop.close()

    inits = _generated_inits()
    rows: dict[str, list[float]] = {}
    packages: dict[str, float] = {}
    for entry in profiler.getstats():
        code = entry.code
        if isinstance(code, str):
            label, package = code, "builtins"
        else:
            path = Path(code.co_filename)
            package = "handrail" if code in inits else _package_of(path)
            label = inits.get(code) or (
                f"{_short_path(path)}:{code.co_firstlineno}({code.co_name})"
            )
        row = rows.setdefault(label, [0, 0.0, 0.0])
        row[0] += entry.callcount
        row[1] += entry.inlinetime
        row[2] += entry.totaltime
        packages[package] = packages.get(package, 0.0) + entry.inlinetime
    total = sum(r[1] for r in rows.values())
    unit = "s CPU" if workload == "w3" else "µs CPU per node" if "w1" in workload else "µs CPU/run"
    print(
        f"handrail {workload}: {plain:.3f} {unit} without the profiler, {value:.3f} with it; "
        f"top {top} of {len(rows)} functions by own time (tottime), {total:.3f} s profiled"
    )
    print(f"{'ncalls':>9} {'tottime s':>10} {'share':>6} {'cumtime s':>10}  function")
    for label, (calls, own, cum) in sorted(rows.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"{calls:>9} {own:>10.3f} {own / total:>6.1%} {cum:>10.3f}  {label}")
    shares = sorted(packages.items(), key=lambda kv: -kv[1])
    print("own time by package: " + ", ".join(f"{k} {v / total:.0%}" for k, v in shares[:8]))


def _short_path(path: Path) -> str:
    parts = path.parts
    for anchor in ("site-packages", "src"):
        if anchor in parts:
            return "/".join(parts[len(parts) - parts[::-1].index(anchor) :])
    if path.parent.name.startswith("python3"):
        return path.name
    return f"{path.parent.name}/{path.name}" if path.parent.name else path.name


def _package_of(path: Path) -> str:
    parts = path.parts
    if "handrail" in parts:
        return "handrail"
    if path.name == Path(__file__).name:
        return "bench node functions"
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    if path.parent.name.startswith("python3") or path.name.startswith("<frozen"):
        return path.stem.removeprefix("<frozen ").removesuffix(">")
    return path.parent.name or path.name


# --- main ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer runs and rounds (CI smoke run)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument(
        "--json-out", metavar="PATH", help="also write the JSON object to PATH (with the table)"
    )
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument("--runs", type=int, help="override W1/W2 runs per measurement")
    parser.add_argument(
        "--anchors",
        default=",".join(ANCHORS),
        help="comma-separated anchors to compare with (default: burr,langgraph; '' for none)",
    )
    parser.add_argument("--verbose", action="store_true", help="also print every round's value")
    parser.add_argument(
        "--no-gc-freeze",
        action="store_true",
        help="do not gc.freeze() the setup's objects before measuring (see README)",
    )
    parser.add_argument(
        "--profile",
        choices=["w1", "w1_async", "w2", "w3"],
        help="cProfile handrail on one workload, print the top functions by tottime, and exit",
    )
    parser.add_argument("--top", type=int, default=15, help="rows of the --profile listing")
    args = parser.parse_args(argv)

    cfg = QUICK if args.quick else FULL
    if args.rounds is not None or args.runs is not None or args.no_gc_freeze:
        cfg = replace(
            cfg,
            mode=cfg.mode if args.rounds is None and args.runs is None else f"{cfg.mode} (custom)",
            rounds=args.rounds or cfg.rounds,
            w1_runs=args.runs or cfg.w1_runs,
            w2_runs=args.runs or cfg.w2_runs,
            gc_freeze=not args.no_gc_freeze,
        )
    if args.profile:
        profile(cfg, args.profile, args.top)
        return 0

    wanted = [a.strip() for a in args.anchors.split(",") if a.strip()]
    unknown = set(wanted) - set(ANCHORS)
    if unknown:
        parser.error(f"unknown anchors {sorted(unknown)}; choose from {', '.join(ANCHORS)}")
    _SOURCE.update(handrail_source())
    names = available_frameworks(wanted)
    started = time.perf_counter()
    results = run_bench(cfg, names)
    _note(f"[engine] finished in {time.perf_counter() - started:.0f}s")
    payload = to_json(results, cfg, names)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n")
    if args.json:
        print(json.dumps(payload))
    else:
        print_table(results, cfg, names, args.verbose)
    return 0


if __name__ == "__main__":
    sys.exit(main())
