"""A small durable pipeline that `tests/durable/test_processes.py` runs in real processes.

    intake (Rule) -> category (Classify) -> details (Extract) -> act (Action)

Every node execution appends a `START` and an `END` line to `<side>/events.jsonl` (the rule and
the action in their functions, the LLM nodes in the model's `generate`), and the action appends
its idempotency key to `<side>/effects.jsonl` before its `END`: a step executed again, or a side
effect done twice, shows up in those files. Each line is one unbuffered `O_APPEND` write, so a
`kill -9` never loses a line already written and lines of several processes never interleave.

Modes (`python app.py MODE --db URL --side DIR --name PIPELINE ...`); each prints one JSON line
on stdout (a worker: a `ready` line once it serves):

- `batch`: run documents with `DurableRunner.run_many` (kind `local`);
- `serve`: a queue worker (`kind="worker"`) until SIGTERM or SIGINT;
- `submit`: queue documents with `Submitter` and wait for their outcomes;
- `decide`: the decisions of `--decisions` (a JSON list), in turn (`DurableRunner.decide`, kind
  `cli`); a refused one (`ReviewAlreadyDecided`) is reported in the output;
- `escalate`: `DurableRunner.escalate_due()`, twice (the second must find nothing; kind `cli`);
- `finish`: `DurableRunner.finish` for each of `--run-ids` (a JSON list; kind `cli`).

`HANDRAIL_TEST_ACT_DELAY` makes the action slower; `HANDRAIL_TEST_APP_VERSION` makes the process
another handrail version (DBOS's application version).

Documents are numbered; `documents()` gives the same ones to the tests that check the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import to_jsonable_python

from handrail import (
    Action,
    Classify,
    Document,
    Escalation,
    Extract,
    FakeModel,
    Gate,
    Pipeline,
    PipelineBuilder,
    Reply,
    ReviewAlreadyDecided,
    ReviewDecision,
    ReviewPolicy,
    Rule,
    Runner,
    State,
)
from handrail.core.model import ModelRequest, ModelResponse
from handrail.core.records import ModelSpec
from handrail.durable import DurableRunner, Submitter

LABELS = ("refund", "bug", "question")
NODES = ("intake", "category", "details", "act")
KINDS = {"intake": "rule", "category": "classify", "details": "extract", "act": "action"}
REVIEW_MARK = "needs-a-person"
"""In a document's text: the classifier answers with low confidence, so the run waits."""
LOW_CONFIDENCE = 0.5
ESCALATIONS = ("reject", "queue", "default")
DEFAULT_LABEL = "question"
"""The declared safe default of `--escalation default`."""
SUPERVISORS = "supervisors"
"""The queue `--escalation queue` moves a review to."""
ACT_DELAY = "HANDRAIL_TEST_ACT_DELAY"
"""Environment: seconds the action waits between its START and its side effect (0.01)."""
APP_VERSION = "HANDRAIL_TEST_APP_VERSION"
"""Environment: the handrail version (DBOS application version) this process claims to be, to
plant runs of another version."""


class Details(BaseModel):
    order_id: str
    amount: float


# --- side files ------------------------------------------------------------------------------


class SideLog:
    """Appends JSON lines to `events.jsonl` and `effects.jsonl` in `folder`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.pid = os.getpid()

    def _append(self, name: str, data: dict[str, Any]) -> None:
        line = (json.dumps(data, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.folder / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def event(self, event: str, doc: str, node: str) -> None:
        self._append(
            "events.jsonl",
            {"event": event, "doc": doc, "node": node, "pid": self.pid, "t": time.time()},
        )

    def effect(self, key: str, doc: str) -> None:
        self._append("effects.jsonl", {"key": key, "doc": doc, "pid": self.pid, "t": time.time()})


def read_lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of a side file (none if it does not exist yet); a line cut short by a
    kill is left out."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


# --- documents -------------------------------------------------------------------------------


def document(i: int, prefix: str = "doc", *, review: bool = False) -> Document:
    label = LABELS[i % len(LABELS)]
    text = f"{prefix} {i:03d}: label={label} order={prefix.upper()}-{i:03d} amount={i + 1}.50" + (
        f" {REVIEW_MARK}" if review else ""
    )
    return Document(text=text, id=f"{prefix}-{i:03d}")


def documents(
    count: int, prefix: str = "doc", *, review: Iterable[int] = (), start: int = 0
) -> list[Document]:
    wanted = set(review)
    return [document(i, prefix, review=i in wanted) for i in range(start, start + count)]


def expected_label(doc: Document) -> str:
    found = re.search(r"label=(\w+)", doc.text)
    assert found is not None
    return found.group(1)


# --- the pipeline ----------------------------------------------------------------------------


def _user_text(request: ModelRequest) -> str:
    return "\n".join(m.content for m in request.messages if m.role == "user")


def _number(text: str) -> int:
    found = re.search(r"order=[A-Z]+-(\d+)", text)
    return int(found.group(1)) if found else 0


def _script(latency: float) -> dict[str, Any]:
    """Replies read from the document's text; their latency varies with the document's number
    (0.5x to 2x `latency`), so concurrent runs do not move in lock step."""

    def delay(text: str) -> float:
        return latency * (0.5 + (_number(text) % 4) * 0.5)

    def classify(request: ModelRequest) -> Reply:
        text = _user_text(request)
        found = re.search(r"label=(\w+)", text)
        label = found.group(1) if found else "question"
        confidence = LOW_CONFIDENCE if REVIEW_MARK in text else 0.97
        return Reply(label, confidence=confidence, latency=delay(text))

    def extract(request: ModelRequest) -> Reply:
        text = _user_text(request)
        order = re.search(r"order=([\w-]+)", text)
        amount = re.search(r"amount=([\d.]+)", text)
        return Reply(
            {
                "order_id": order.group(1) if order else "?",
                "amount": float(amount.group(1)) if amount else 0.0,
            },
            field_confidence={"order_id": 0.99, "amount": 0.99},
            latency=delay(text),
        )

    return {"category": classify, "details": extract}


class TracedModel:
    """A `FakeModel` (with a `latency` per reply) whose every call is logged as START/END."""

    def __init__(self, log: SideLog, latency: float) -> None:
        self.log = log
        self.fake = FakeModel(_script(latency), latency=latency)

    @property
    def name(self) -> str:
        return "traced-fake"

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.log.event("START", request.document_id, request.node)
        response = await self.fake.generate(request)
        self.log.event("END", request.document_id, request.node)
        return response


def build(name: str, log: SideLog, *, escalation: str = "", deadline: float = 1.0) -> Pipeline:
    async def intake(state: State) -> int:
        log.event("START", state.document.id, "intake")
        await asyncio.sleep(0.01)
        log.event("END", state.document.id, "intake")
        return len(state.text)

    async def act(state: State, key: str) -> str:
        doc = state.document.id
        log.event("START", doc, "act")
        # read when called (not held by the function): the pipeline's version stays the same
        await asyncio.sleep(float(os.environ.get(ACT_DELAY, "0.01")))
        log.effect(key, doc)
        log.event("END", doc, "act")
        return f"filed {state['details'].order_id} as {state['category']}"

    policy = None
    if escalation:
        on_deadline = {
            "reject": Escalation.reject("nobody looked in time"),
            "queue": Escalation.to_queue(SUPERVISORS),
            "default": Escalation.default(DEFAULT_LABEL, reason="safe default applied"),
        }[escalation]
        policy = ReviewPolicy(deadline=timedelta(seconds=deadline), on_deadline=on_deadline)
    return (
        PipelineBuilder(name, review=policy)
        .add(Rule("intake", intake))
        .add(Classify("category", labels=LABELS, gate=Gate(accept=0.8)), after="intake")
        .add(Extract("details", Details), after="category")
        .add(Action("act", act), after="details")
        .build()
    )


def run_id(name: str, doc: Document) -> str:
    """The run id `DurableRunner` gives `doc` in pipeline `name`."""
    spec = ModelSpec(name="traced-fake")  # the model every mode here runs with
    return Runner(build(name, SideLog("unused")), model_spec=spec).run_id_for(doc)


# --- modes -----------------------------------------------------------------------------------


def _emit(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(to_jsonable_python(data, fallback=str)) + "\n")
    sys.stdout.flush()


def _summary(record: Any) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "doc": record.document_id,
        "status": record.status.value,
        "review_id": record.review.review_id if record.review else None,
        "outputs": record.outputs,
        "error": record.error.message if record.error else None,
    }


def _docs(args: argparse.Namespace) -> list[Document]:
    review = [int(i) for i in args.review.split(",") if i] if args.review else []
    return documents(args.count, args.prefix, review=review, start=args.start)


async def batch(args: argparse.Namespace, pipeline: Pipeline, model: TracedModel) -> None:
    async with DurableRunner(pipeline, model=model, db=args.db, kind="local") as runner:
        records = await runner.run_many(_docs(args), concurrency=args.concurrency)
        escalated = await runner.escalate_due() if args.escalate_after else []
        _emit(
            {
                "pid": os.getpid(),
                "executor_id": runner.executor_id,
                "runs": [_summary(r) for r in records],
                "escalated": [asdict(e) for e in escalated],
            }
        )


async def serve(args: argparse.Namespace, pipeline: Pipeline, model: TracedModel) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with DurableRunner(
        pipeline, model=model, db=args.db, kind="worker", executor_id=args.executor_id
    ) as runner:
        task = asyncio.ensure_future(
            runner.serve(concurrency=args.concurrency, maintenance_every=1.0, stop=stop)
        )
        await asyncio.sleep(0.3)  # serve() registers the queue, then does its first maintenance
        _emit({"ready": True, "pid": os.getpid(), "executor_id": runner.executor_id})
        await task
    _emit({"stopped": True, "pid": os.getpid()})


async def submit(args: argparse.Namespace, pipeline: Pipeline) -> None:
    submitter = Submitter(pipeline, db=args.db, model_spec=ModelSpec(name="traced-fake"))
    try:
        run_ids = [await submitter.submit(doc) for doc in _docs(args)]
        _emit({"submitted": len(run_ids), "pid": os.getpid()})
        records = await submitter.wait(run_ids, poll=0.2, timeout=args.timeout)
    finally:
        submitter.close()
    _emit({"pid": os.getpid(), "runs": [_summary(r) for r in records]})


async def decide(args: argparse.Namespace, pipeline: Pipeline, model: TracedModel) -> None:
    """Apply each of `--decisions` (a JSON list of `{review_id, action, output?, reason?}`) in
    turn, in this one process; a decision refused is reported, not raised."""
    results: list[dict[str, Any]] = []
    async with DurableRunner(pipeline, model=model, db=args.db, kind="cli") as runner:
        for item in json.loads(args.decisions):
            action, reason = item["action"], item.get("reason")
            if action == "approve":
                decision = ReviewDecision.approve(reviewer=args.reviewer, reason=reason)
            elif action == "edit":
                decision = ReviewDecision.edit(
                    item["output"], reviewer=args.reviewer, reason=reason
                )
            else:
                decision = ReviewDecision.reject(reason, reviewer=args.reviewer)
            try:
                record = await runner.decide(item["review_id"], decision)
            except ReviewAlreadyDecided as e:
                results.append({"error": type(e).__name__, "message": str(e)})
            else:
                results.append({"run": _summary(record)})
        executor = runner.executor_id
    _emit({"pid": os.getpid(), "executor_id": executor, "results": results})


async def finish(args: argparse.Namespace, pipeline: Pipeline, model: TracedModel) -> None:
    results: list[dict[str, Any]] = []
    async with DurableRunner(pipeline, model=model, db=args.db, kind="cli") as runner:
        for run in json.loads(args.run_ids):
            done = await runner.finish(run)
            results.append({"how": done.how, "run": _summary(done.record)})
        executor = runner.executor_id
    _emit({"pid": os.getpid(), "executor_id": executor, "results": results})


async def escalate(args: argparse.Namespace, pipeline: Pipeline, model: TracedModel) -> None:
    async with DurableRunner(pipeline, model=model, db=args.db, kind="cli") as runner:
        escalated = await runner.escalate_due()
        again = await runner.escalate_due()  # each escalation applies once
        _emit(
            {
                "pid": os.getpid(),
                "escalated": [asdict(e) for e in escalated],
                "again": [asdict(e) for e in again],
            }
        )


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "mode", choices=["batch", "serve", "submit", "decide", "escalate", "finish"]
    )
    parser.add_argument("--db", required=True)
    parser.add_argument("--side", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--count", type=int, default=0)
    parser.add_argument("--start", type=int, default=0)
    parser.add_argument("--prefix", default="doc")
    parser.add_argument("--review", default="", help="comma-separated indexes needing review")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--executor-id", default=None)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--escalation", choices=ESCALATIONS, default="")
    parser.add_argument("--deadline", type=float, default=1.0)
    parser.add_argument("--escalate-after", action="store_true")
    parser.add_argument("--decisions", default="[]", help="for decide: a JSON list")
    parser.add_argument("--reviewer", default="ana")
    parser.add_argument("--run-ids", default="[]", help="for finish: a JSON list")
    return parser.parse_args(argv)


def _claim_version(version: str) -> None:
    """Make this process handrail `version` (DBOS's application version)."""
    import handrail.durable.runner
    import handrail.durable.runtime

    handrail.durable.runtime.app_version = lambda: version
    handrail.durable.runner.app_version = lambda: version  # type: ignore[attr-defined]


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    if os.environ.get(APP_VERSION):
        _claim_version(os.environ[APP_VERSION])
    log = SideLog(args.side)
    log.folder.mkdir(parents=True, exist_ok=True)
    pipeline = build(args.name, log, escalation=args.escalation, deadline=args.deadline)
    model = TracedModel(log, args.latency)
    if args.mode == "batch":
        asyncio.run(batch(args, pipeline, model))
    elif args.mode == "serve":
        asyncio.run(serve(args, pipeline, model))
    elif args.mode == "submit":
        asyncio.run(submit(args, pipeline))
    elif args.mode == "decide":
        asyncio.run(decide(args, pipeline, model))
    elif args.mode == "finish":
        asyncio.run(finish(args, pipeline, model))
    else:
        asyncio.run(escalate(args, pipeline, model))
    return 0


if __name__ == "__main__":
    # Run as `tests.durable.procs.app`, not `__main__`: the pipeline's version (part of each run
    # id) names its functions' module, and the tests compute run ids with this module imported.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests.durable.procs import app as _imported

    sys.exit(_imported.main(sys.argv[1:]))
