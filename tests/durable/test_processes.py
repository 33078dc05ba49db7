"""Durable runs across real processes: `kill -9` mid-batch and a rerun, a review decided by a
process that did not raise it, two queue workers on Postgres, a worker killed while another
lives, and deadline escalations.

The processes run `procs/app.py`, a pipeline `intake (Rule) -> category (Classify) -> details
(Extract) -> act (Action)` whose every node execution appends START and END lines to a side file
and whose action appends its idempotency key to another; what the processes did is read back from
those files, from the run records (`SqlStore`) and from DBOS's own tables.

What "no completed step runs again" can honestly mean: DBOS steps run at least once. A step
killed after its START (even after its END) but before its checkpoint committed runs again, and
that is allowed. A step whose checkpoint (a row in DBOS's `operation_outputs`) was committed
before the kill must never START again; those rows are read right after the kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests.durable.procs import app

from handrail import RunStatus, StepStatus
from handrail.durable import SqlStore
from handrail.durable.runner import DEADLINE_REVIEWER, run_workflow

APP = Path(__file__).parent / "procs" / "app.py"
STEP_NAMES = {f"{kind} {node}": node for node, kind in app.KINDS.items()}
"""DBOS step name -> node."""


# --- processes -------------------------------------------------------------------------------


@dataclass
class Proc:
    """A child process running `procs/app.py`, its stdout and stderr in files."""

    label: str
    popen: subprocess.Popen[bytes]
    out: Path
    err: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def lines(self) -> list[dict[str, Any]]:
        return app.read_lines(self.out)

    def tail(self) -> str:
        err = self.err.read_text(errors="replace")[-3000:] if self.err.exists() else ""
        out = self.out.read_text(errors="replace")[-1000:] if self.out.exists() else ""
        return f"--- {self.label} (pid {self.pid}) stdout ---\n{out}\n--- stderr ---\n{err}"

    def result(self, timeout: float) -> dict[str, Any]:
        """Wait for a clean exit and return the last JSON line it printed."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            message = f"{self.label} still running after {timeout}s\n{self.tail()}"
            raise AssertionError(message) from None
        assert code == 0, f"{self.label} exited {code}\n{self.tail()}"
        lines = self.lines()
        assert lines, f"{self.label} printed nothing\n{self.tail()}"
        return lines[-1]

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        self.popen.wait(30)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM (a worker stops serving and closes), then wait."""
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            message = f"{self.label} ignored SIGTERM for {timeout}s\n{self.tail()}"
            raise AssertionError(message) from None


@dataclass
class Procs:
    """Starts `procs/app.py` processes on one database with one side folder; kills leftovers."""

    tmp: Path
    db: str
    side: Path
    started: list[Proc] = field(default_factory=list)

    def start(self, label: str, mode: str, *args: str) -> Proc:
        out, err = self.tmp / f"{label}.out", self.tmp / f"{label}.err"
        command = [sys.executable, str(APP), mode, "--db", self.db, "--side", str(self.side)]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            popen = subprocess.Popen(
                [*command, *args],
                stdout=stdout,
                stderr=stderr,
                stdin=subprocess.DEVNULL,
                cwd=self.tmp,
            )
        proc = Proc(label, popen, out, err)
        self.started.append(proc)
        return proc

    def events(self) -> list[dict[str, Any]]:
        return app.read_lines(self.side / "events.jsonl")

    def effects(self) -> list[dict[str, Any]]:
        return app.read_lines(self.side / "effects.jsonl")

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.started)

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.popen.poll() is None:
                proc.popen.kill()  # only processes this test started, by their own handle
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(30)


@pytest.fixture
def procs_for(tmp_path: Path) -> Iterator[Callable[[str], Procs]]:
    made: list[Procs] = []

    def make(db: str) -> Procs:
        side = tmp_path / f"side{len(made)}"
        side.mkdir()
        procs = Procs(tmp_path, db, side)
        made.append(procs)
        return procs

    try:
        yield make
    finally:
        for procs in made:
            procs.kill_all()


def wait_until(
    condition: Callable[[], Any], timeout: float, what: str, procs: Procs, poll: float = 0.02
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        dead = [p for p in procs.started if p.popen.poll() not in (None, 0)]
        if dead or time.monotonic() > deadline:
            reason = "a process died" if dead else f"timed out after {timeout}s"
            raise AssertionError(f"waiting for {what}: {reason}\n{procs.tails()}")
        time.sleep(poll)


def ready(proc: Proc, procs: Procs, timeout: float = 60) -> dict[str, Any]:
    return wait_until(
        lambda: next((line for line in proc.lines() if line.get("ready")), None),
        timeout,
        f"{proc.label} to serve",
        procs,
    )


# --- reading what happened -------------------------------------------------------------------


def sql(url: str, query: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.text(query), params)]
    finally:
        engine.dispose()


def dbos_table(url: str, table: str) -> str:
    return table if url.startswith("sqlite") else f"dbos.{table}"


def checkpoints(url: str, run_ids: dict[str, str]) -> set[tuple[str, str]]:
    """(document, node) of every step whose checkpoint DBOS has committed, for these runs
    (`run_ids`: run id -> document id)."""
    rows = sql(
        url, f"SELECT workflow_uuid, function_name FROM {dbos_table(url, 'operation_outputs')}"
    )
    return {
        (run_ids[workflow], STEP_NAMES[name])
        for workflow, name in rows
        if workflow in run_ids and name in STEP_NAMES
    }


def workflows(url: str, pipeline: str) -> list[tuple[str, str, str]]:
    """(workflow id, status, executor id) of every run workflow of `pipeline`."""
    return sql(
        url,
        "SELECT workflow_uuid, status, executor_id FROM "
        f"{dbos_table(url, 'workflow_status')} WHERE name = :name",
        name=run_workflow(pipeline),
    )


def starts(events: list[dict[str, Any]], **match: Any) -> Counter[tuple[str, str]]:
    """START lines per (document, node), optionally only those matching `match` (e.g. pid)."""
    return Counter(
        (e["doc"], e["node"])
        for e in events
        if e["event"] == "START" and all(e[k] == v for k, v in match.items())
    )


def ends(events: list[dict[str, Any]], **match: Any) -> Counter[tuple[str, str]]:
    return Counter(
        (e["doc"], e["node"])
        for e in events
        if e["event"] == "END" and all(e[k] == v for k, v in match.items())
    )


def in_flight(events: list[dict[str, Any]], pid: int) -> set[tuple[str, str]]:
    """Steps `pid` STARTed and has not ENDed."""
    return set(starts(events, pid=pid) - ends(events, pid=pid))


def history(
    docs: list[str],
    events: list[dict[str, Any]],
    checkpointed: set[tuple[str, str]],
    killed_at: float,
    statuses: dict[str, str],
) -> str:
    """What happened to some documents, for a failure message."""
    lines = []
    for doc in docs:
        saved = sorted(n for d, n in checkpointed if d == doc)
        lines.append(
            f"{doc}: run {statuses.get(doc, 'not saved')} at the kill, checkpoints {saved}"
        )
        lines += [
            f"  {e['t'] - killed_at:+.3f}s pid {e['pid']} {e['event']} {e['node']}"
            for e in events
            if e["doc"] == doc
        ]
    return "\n".join(lines)


def run_ids_of(name: str, docs: list[Any]) -> dict[str, str]:
    return {app.run_id(name, doc): doc.id for doc in docs}


def assert_all_completed_once(
    url: str, name: str, docs: list[Any], events: list[dict[str, Any]]
) -> dict[str, str]:
    """Every document has exactly one run, completed, with one completed step record per node,
    one DBOS workflow that succeeded, and every node ENDed for it. Returns run id -> doc id."""
    run_ids = run_ids_of(name, docs)
    with SqlStore(url) as store:
        records = store.list_runs(pipeline=name)
        by_doc = Counter(r.document_id for r in records)
        assert sorted(by_doc) == sorted(d.id for d in docs), (
            f"documents without a run record: {sorted({d.id for d in docs} - set(by_doc))}; "
            f"runs of unknown documents: {sorted(set(by_doc) - {d.id for d in docs})}"
        )
        assert all(n == 1 for n in by_doc.values()), (
            f"documents with more than one run record: {[d for d, n in by_doc.items() if n > 1]}"
        )
        not_completed = {r.document_id: (r.status.value, r.error) for r in records}
        not_completed = {
            d: s for d, s in not_completed.items() if s[0] != RunStatus.COMPLETED.value
        }
        assert not not_completed, f"runs that did not complete: {not_completed}"
        assert {r.run_id for r in records} == set(run_ids)
        for record in records:
            steps = store.steps(record.run_id)
            assert [(s.node, s.visit, s.status) for s in steps] == [
                (node, 1, StepStatus.COMPLETED) for node in app.NODES
            ], f"{record.document_id}: step records {[(s.node, s.status) for s in steps]}"
            assert record.outputs["category"] == app.expected_label(_doc(docs, record))
    flows = workflows(url, name)
    assert sorted(w for w, _, _ in flows) == sorted(run_ids), "one DBOS workflow per document"
    failed = [(w, s) for w, s, _ in flows if s != "SUCCESS"]
    assert not failed, f"DBOS workflows that did not succeed: {failed}"
    ended = ends(events)
    missing = [(d.id, n) for d in docs for n in app.NODES if ended[(d.id, n)] == 0]
    assert not missing, f"steps that never ENDed: {missing}"
    return run_ids


def _doc(docs: list[Any], record: Any) -> Any:
    return next(d for d in docs if d.id == record.document_id)


def assert_effects(
    effects: list[dict[str, Any]], run_ids: dict[str, str], retried: set[str]
) -> None:
    """Exactly one side effect per idempotency key, except for the documents in `retried`, whose
    action was started by a killed process and not checkpointed (at least once: one or two)."""
    keys = Counter(e["key"] for e in effects)
    expected = {f"{run_id}:act": doc for run_id, doc in run_ids.items()}
    assert set(keys) == set(expected), (
        f"missing effects: {sorted(expected[k] for k in set(expected) - set(keys))}; "
        f"unexpected keys: {sorted(set(keys) - set(expected))}"
    )
    twice = {expected[k]: n for k, n in keys.items() if n > 1}
    not_allowed = {d: n for d, n in twice.items() if d not in retried or n > 2}
    assert not not_allowed, (
        f"side effects repeated for documents whose action had been checkpointed, or more than "
        f"twice: {not_allowed}"
    )


# --- 1. SQLite: kill -9 mid-batch, then the same command again --------------------------------


def test_sqlite_batch_killed_mid_way_and_rerun_finishes_every_document_once(
    sqlite_url: str, procs_for: Callable[[str], Procs]
) -> None:
    procs = procs_for(sqlite_url)
    name, count = "crash_batch", 20
    docs = app.documents(count)
    args = ["--name", name, "--count", str(count), "--latency", "0.25", "--concurrency", "4"]
    first = procs.start("first", "batch", *args)

    def killable() -> bool:
        # A step after `intake` in flight: that run has a checkpoint already (the chain starts a
        # node once its predecessor's checkpoint is committed).
        events = procs.events()
        done = sum(1 for e in events if e["event"] == "END" and e["node"] == "act")
        return done >= 4 and any(n != "intake" for _, n in in_flight(events, first.pid))

    wait_until(killable, 60, "4 documents done and a later step in flight", procs)
    first.kill()

    events_before = procs.events()
    run_ids = run_ids_of(name, docs)
    checkpointed = checkpoints(sqlite_url, run_ids)
    with SqlStore(sqlite_url) as store:
        finished = {r.document_id for r in store.list_runs(pipeline=name)}
    started = {doc for doc, _ in starts(events_before)}
    interrupted = started - finished
    assert finished, "no run had finished when the first process was killed"
    assert interrupted, "no run was mid-way when the first process was killed"
    assert len(finished) < count, "the first process finished the whole batch before its kill"
    # A run stored as finished has all its steps checkpointed.
    unfinished_checkpoints = [
        (d, n) for d in finished for n in app.NODES if (d, n) not in checkpointed
    ]
    assert not unfinished_checkpoints, (
        f"finished runs missing checkpoints: {unfinished_checkpoints}"
    )

    second = procs.start("second", "batch", *args)
    result = second.result(timeout=90)
    assert [r["status"] for r in result["runs"]] == ["completed"] * count, result["runs"]
    assert result["executor_id"] == "local", "the rerun takes the dead process's executor id back"

    events = procs.events()
    run_ids = assert_all_completed_once(sqlite_url, name, docs, events)

    rerun = starts(events, pid=second.pid)
    again = sorted(step for step in rerun if step in checkpointed)
    assert not again, f"steps checkpointed before the kill started again after it: {again}"
    rerun_finished = sorted({doc for doc, _ in rerun} & finished)
    assert not rerun_finished, (
        f"documents finished before the kill were run again: {rerun_finished}"
    )
    over = {step: n for step, n in rerun.items() if n > 1}
    assert not over, f"the rerun started steps more than once (recovery and rerun both?): {over}"
    twice = {step: n for step, n in starts(events).items() if n > 2}
    assert not twice, f"steps started more than twice: {twice}"
    # Some interrupted run was resumed rather than started over: its checkpointed steps were
    # replayed, the rest executed by the second process.
    resumed = {doc for doc in interrupted if any((doc, n) in checkpointed for n in app.NODES)}
    assert resumed, "no interrupted run had a checkpointed step: the kill tested no recovery"

    killed_actions = {doc for doc, node in starts(events_before) if node == "act"}
    retried = {doc for doc in killed_actions if (doc, "act") not in checkpointed}
    assert_effects(procs.effects(), run_ids, retried)


# --- 2. a review raised by one process, decided by another ------------------------------------


def test_reviews_raised_by_one_process_are_decided_by_another_exactly_once(
    sqlite_url: str, procs_for: Callable[[str], Procs]
) -> None:
    procs = procs_for(sqlite_url)
    name = "review_restart"
    docs = app.documents(3, "rv", review=[0, 1, 2])
    common = ["--name", name]
    raised = procs.start(
        "raise", "batch", *common, "--count", "3", "--prefix", "rv", "--review", "0,1,2"
    )
    runs = raised.result(timeout=60)["runs"]
    assert [r["status"] for r in runs] == ["needs_review"] * 3, runs
    review = {r["doc"]: r["review_id"] for r in runs}
    run_id = {r["doc"]: r["run_id"] for r in runs}
    labels = {d.id: app.expected_label(d) for d in docs}
    assert labels == {"rv-000": "refund", "rv-001": "bug", "rv-002": "question"}
    before_decisions = starts(procs.events())
    assert before_decisions == Counter({(d.id, n): 1 for d in docs for n in ("intake", "category")})

    decisions = [
        {"review_id": review["rv-000"], "action": "approve"},
        {"review_id": review["rv-001"], "action": "edit", "output": "refund", "reason": "typo"},
        {"review_id": review["rv-002"], "action": "reject", "reason": "spam"},
    ]
    decider = procs.start("decide", "decide", *common, "--decisions", json.dumps(decisions))
    results = decider.result(timeout=60)["results"]
    assert all("run" in r for r in results), f"a decision was refused: {results}"
    approved, edited, rejected = (r["run"] for r in results)
    assert approved["status"] == "completed", approved
    assert approved["outputs"]["category"] == "refund"
    assert approved["outputs"]["act"] == "filed RV-000 as refund"
    assert edited["status"] == "completed", edited
    assert edited["outputs"]["category"] == "refund", "the edit replaces the classifier's label"
    assert edited["outputs"]["act"] == "filed RV-001 as refund"
    assert rejected["status"] == "rejected", rejected
    assert set(rejected["outputs"]) == {"intake"}, "nothing runs after a rejection"

    events = procs.events()
    assert starts(events, pid=decider.pid) == Counter(
        {(d, n): 1 for d in ("rv-000", "rv-001") for n in ("details", "act")}
    ), "the decisions ran exactly the steps after the review, once each, in the deciding process"
    assert starts(events, pid=raised.pid) == before_decisions, (
        "steps done before the review were executed again after the decision"
    )
    assert sorted(e["key"] for e in procs.effects()) == sorted(
        [f"{run_id['rv-000']}:act", f"{run_id['rv-001']}:act"]
    )
    with SqlStore(sqlite_url) as store:
        records = {d.id: store.get_run(run_id[d.id]) for d in docs}
        for doc, action in [("rv-000", "approve"), ("rv-001", "edit"), ("rv-002", "reject")]:
            record = records[doc]
            assert record is not None
            assert not record.reviews, f"{doc}: a decided review is still pending"
            [(review_id, decision)] = record.decisions
            assert (review_id, decision.action, decision.reviewer) == (review[doc], action, "ana")
            stored = store.get_review(review[doc])
            assert stored is not None and stored.status == "decided"
        assert records["rv-002"].error is not None and records["rv-002"].error.type == "Rejected"
        assert [(s.node, s.status) for s in records["rv-001"].steps] == [
            ("intake", StepStatus.COMPLETED),
            ("category", StepStatus.NEEDS_REVIEW),
            ("category", StepStatus.COMPLETED),
            ("details", StepStatus.COMPLETED),
            ("act", StepStatus.COMPLETED),
        ]
        snapshot = {d: store.get_run(r) for d, r in run_id.items()}
    effects_before = procs.effects()
    flows_before = sorted(sql(sqlite_url, "SELECT workflow_uuid, status FROM workflow_status"))

    again = [
        {"review_id": review["rv-000"], "action": "reject", "reason": "changed my mind"},
        {"review_id": review["rv-002"], "action": "approve"},
    ]
    third = procs.start("decide-again", "decide", *common, "--decisions", json.dumps(again))
    results = third.result(timeout=60)["results"]
    assert [r.get("error") for r in results] == ["ReviewAlreadyDecided"] * 2, results
    assert "already decided (approve by ana)" in results[0]["message"]
    assert "already decided (reject by ana)" in results[1]["message"]
    with SqlStore(sqlite_url) as store:
        assert {d: store.get_run(r) for d, r in run_id.items()} == snapshot, (
            "a refused duplicate decision changed a run record"
        )
    assert procs.events() == events, "a refused duplicate decision executed steps"
    assert procs.effects() == effects_before
    flows_after = sorted(sql(sqlite_url, "SELECT workflow_uuid, status FROM workflow_status"))
    assert flows_after == flows_before, "a refused duplicate decision started a workflow"


# --- 3. Postgres: two workers, one submitter, 200 documents -----------------------------------


def test_two_postgres_workers_run_200_submitted_documents_exactly_once(
    durable_postgres_url: str, procs_for: Callable[[str], Procs]
) -> None:
    url = durable_postgres_url
    procs = procs_for(url)
    name, count = "scale_out", 200
    docs = app.documents(count, "sub")
    common = ["--name", name, "--prefix", "sub", "--count", str(count)]
    workers = [
        procs.start(f"worker{i}", "serve", *common, "--latency", "0.01", "--concurrency", "8")
        for i in (1, 2)
    ]
    executors = {w.pid: ready(w, procs)["executor_id"] for w in workers}
    assert len(set(executors.values())) == 2, f"two workers share an executor id: {executors}"
    assert all(e.startswith("worker-") for e in executors.values()), executors

    submitter = procs.start("submit", "submit", *common, "--timeout", "90")
    runs = submitter.result(timeout=100)["runs"]
    assert [r["status"] for r in runs] == ["completed"] * count, Counter(r["status"] for r in runs)

    events = procs.events()
    run_ids = assert_all_completed_once(url, name, docs, events)
    started = starts(events)
    assert started == Counter({(d.id, n): 1 for d in docs for n in app.NODES}), (
        f"steps not started exactly once: { {k: v for k, v in started.items() if v != 1} }"
    )
    assert_effects(procs.effects(), run_ids, retried=set())

    by_executor = Counter(e for _, _, e in workflows(url, name))
    assert set(by_executor) == set(executors.values()), (
        f"runs per executor: {dict(by_executor)}; both workers must take some"
    )
    by_pid = Counter(e["pid"] for e in procs.effects())
    assert set(by_pid) == {w.pid for w in workers}, f"side effects per worker pid: {by_pid}"
    for worker in workers:
        assert worker.stop() == 0, f"{worker.label} did not stop cleanly\n{worker.tail()}"


# --- 4. Postgres: a worker killed mid-run while another lives ---------------------------------


def test_a_killed_workers_runs_are_finished_by_the_surviving_worker(
    durable_postgres_url: str, procs_for: Callable[[str], Procs]
) -> None:
    url = durable_postgres_url
    procs = procs_for(url)
    name, count = "survivor", 30
    docs = app.documents(count, "sv")
    common = ["--name", name, "--prefix", "sv", "--count", str(count)]
    victim, survivor = (
        procs.start(label, "serve", *common, "--latency", "0.2", "--concurrency", "4")
        for label in ("victim", "survivor")
    )
    victim_executor = ready(victim, procs)["executor_id"]
    ready(survivor, procs)
    submitter = procs.start("submit", "submit", *common, "--timeout", "90")

    def killable() -> bool:
        events = procs.events()
        done = ends(events, pid=victim.pid, node="act")
        return sum(done.values()) >= 1 and bool(in_flight(events, victim.pid))

    wait_until(killable, 60, "the victim to finish a run and have a step in flight", procs)
    # The survivor is frozen (SIGSTOP) while the victim is killed and the state at the kill is
    # read, so what it does afterwards cannot leak into that picture; then it goes on.
    run_ids = run_ids_of(name, docs)
    os.kill(survivor.pid, signal.SIGSTOP)
    try:
        victim.kill()
        killed_at = time.time()
        events_before = procs.events()
        checkpointed = checkpoints(url, run_ids)
        with SqlStore(url) as store:
            runs_then = store.list_runs(pipeline=name)
    finally:
        os.kill(survivor.pid, signal.SIGCONT)
    finished_status = {r.document_id: r.status.value for r in runs_then}
    finished = set(finished_status)
    victim_docs = {doc for doc, _ in starts(events_before, pid=victim.pid)}
    orphaned = victim_docs - finished
    assert orphaned, "the victim had no unfinished run when it was killed"

    runs = submitter.result(timeout=100)["runs"]
    assert [r["status"] for r in runs] == ["completed"] * count, Counter(r["status"] for r in runs)
    events = procs.events()
    run_ids = assert_all_completed_once(url, name, docs, events)

    started = starts(events)
    again = sorted(step for step in checkpointed if started[step] != 1)
    assert not again, f"steps checkpointed before the kill started again: {again}"
    by_survivor = starts(events, pid=survivor.pid)
    over = {step: n for step, n in by_survivor.items() if n > 1}
    assert not over, f"the survivor started steps more than once: {over}"
    assert all(n <= 2 for n in started.values()), "a step started more than twice"
    # Every step of the victim's unfinished runs that had no checkpoint at the kill (in flight,
    # or not reached yet) was executed by the survivor after the kill, exactly once; runs
    # finished before the kill saw nothing of the survivor.
    left = sorted((d, n) for d in orphaned for n in app.NODES if (d, n) not in checkpointed)
    assert left, "the victim's unfinished runs had every step checkpointed: nothing to take over"
    taken_over = starts([e for e in events if e["t"] > killed_at], pid=survivor.pid)
    not_taken_over = [step for step in left if taken_over[step] != 1]
    assert not not_taken_over, (
        f"steps of the victim's runs not executed exactly once by the survivor: {not_taken_over}"
    )
    first_taken = min(e["t"] for e in events if e["doc"] in orphaned and e["t"] > killed_at)
    assert first_taken - killed_at < 10, (
        f"the survivor took {first_taken - killed_at:.1f}s to take over (it reaps every second)"
    )
    rerun_done = sorted({d for d, _ in taken_over} & finished)
    assert not rerun_done, (
        f"runs finished before the kill were run again: {rerun_done}\n"
        + history(rerun_done, events, checkpointed, killed_at, finished_status)
    )

    retried = {d for d, n in starts(events_before, pid=victim.pid) if n == "act"}
    retried = {d for d in retried if (d, "act") not in checkpointed}
    assert_effects(procs.effects(), run_ids, retried)
    pending = [w for w in workflows(url, name) if w[2] == victim_executor and w[1] != "SUCCESS"]
    assert not pending, f"workflows left on the dead executor: {pending}"
    assert survivor.stop() == 0, f"the survivor did not stop cleanly\n{survivor.tail()}"


# --- 5. deadlines: reject, queue move, safe default -------------------------------------------


def test_review_deadlines_escalate_in_a_later_process(
    tmp_path: Path, procs_for: Callable[[str], Procs]
) -> None:
    deadline = 2.0
    setups: dict[str, tuple[Procs, str, Proc]] = {}
    for escalation in app.ESCALATIONS:
        url = f"sqlite:///{tmp_path / escalation / 'handrail.db'}"
        procs = procs_for(url)
        name = f"deadline_{escalation}"
        args = ["--name", name, "--escalation", escalation, "--deadline", str(deadline)]
        raised = procs.start(
            f"raise-{escalation}",
            "batch",
            *args,
            "--count",
            "1",
            "--prefix",
            escalation[:3],
            "--review",
            "0",
            "--escalate-after",
        )
        setups[escalation] = (procs, url, raised)

    reviews: dict[str, tuple[str, str]] = {}
    for escalation, (_, url, raised) in setups.items():
        result = raised.result(timeout=60)
        [run] = result["runs"]
        assert run["status"] == "needs_review", run
        assert result["escalated"] == [], f"{escalation}: escalated before its deadline"
        reviews[escalation] = (run["run_id"], run["review_id"])
        with SqlStore(url) as store:
            review = store.get_review(run["review_id"])
        assert review is not None and review.deadline is not None
        assert (review.deadline - review.created_at).total_seconds() == deadline
        wait_seconds = review.deadline.timestamp() - time.time()
        if wait_seconds > 0:
            time.sleep(wait_seconds + 0.05)

    # reject and queue: `escalate_due()` in a new process; default: a worker's housekeeping
    rejecter = setups["reject"][0].start(
        "escalate-reject", "escalate", "--name", "deadline_reject", "--escalation", "reject"
    )
    mover = setups["queue"][0].start(
        "escalate-queue", "escalate", "--name", "deadline_queue", "--escalation", "queue"
    )
    procs, url, raised = setups["default"]
    worker = procs.start(
        "worker-default", "serve", "--name", "deadline_default", "--escalation", "default"
    )

    # reject
    procs, url, raised = setups["reject"]
    run_id, review_id = reviews["reject"]
    result = rejecter.result(timeout=60)
    [done] = result["escalated"]
    assert (done["review_id"], done["action"], done["run_status"]) == (
        review_id,
        "reject",
        "rejected",
    )
    assert result["again"] == [], "an escalation was applied twice"
    with SqlStore(url) as store:
        record = store.get_run(run_id)
        assert record is not None and record.status is RunStatus.REJECTED
        [(decided, decision)] = record.decisions
        assert decided == review_id
        assert (decision.action, decision.reviewer) == ("reject", DEADLINE_REVIEWER)
        assert decision.reason is not None
        assert decision.reason.startswith("deadline ")
        assert decision.reason.endswith("passed: nobody looked in time")
        assert store.get_decision(review_id) == decision
        stored = store.get_review(review_id)
        assert stored is not None and stored.status == "decided"
    assert starts(procs.events(), pid=rejecter.pid) == Counter(), "a rejection executed steps"
    assert procs.effects() == []

    # queue move
    procs, url, raised = setups["queue"]
    run_id, review_id = reviews["queue"]
    result = mover.result(timeout=60)
    [done] = result["escalated"]
    assert (done["review_id"], done["action"]) == (review_id, "queue")
    assert "moved from queue `default` to `supervisors`" in done["detail"]
    assert result["again"] == [], "a queue move was applied twice"
    with SqlStore(url) as store:
        record = store.get_run(run_id)
        assert record is not None and record.status is RunStatus.NEEDS_REVIEW
        assert record.decisions == ()
        stored = store.get_review(review_id)
        assert stored is not None
        assert (stored.status, stored.queue, stored.deadline) == ("pending", app.SUPERVISORS, None)
        assert stored.escalated_at is not None
        assert stored.escalation is not None and "to `supervisors`" in stored.escalation
        assert store.get_decision(review_id) is None
        assert [r.review_id for r in store.list_reviews()] == [review_id]
    assert starts(procs.events(), pid=mover.pid) == Counter()

    # safe default, applied by a worker's maintenance loop
    procs, url, raised = setups["default"]
    run_id, review_id = reviews["default"]

    def completed() -> Any:
        with SqlStore(url) as store:
            record = store.get_run(run_id)
        return (
            record if record is not None and record.status is not RunStatus.NEEDS_REVIEW else None
        )

    record = wait_until(completed, 30, "the worker to apply the safe default", procs, poll=0.2)
    assert record.status is RunStatus.COMPLETED, (record.status, record.error)
    assert record.outputs["category"] == app.DEFAULT_LABEL
    [(decided, decision)] = record.decisions
    assert decided == review_id
    assert (decision.action, decision.output, decision.reviewer) == (
        "edit",
        app.DEFAULT_LABEL,
        DEADLINE_REVIEWER,
    )
    assert decision.reason is not None and decision.reason.endswith("passed: safe default applied")
    events = procs.events()
    assert starts(events, pid=worker.pid) == Counter(
        {("def-000", "details"): 1, ("def-000", "act"): 1}
    ), "the worker ran exactly the steps after the review"
    assert starts(events, pid=raised.pid) == Counter(
        {("def-000", "intake"): 1, ("def-000", "category"): 1}
    )
    assert [e["key"] for e in procs.effects()] == [f"{run_id}:act"]
    assert worker.stop() == 0, f"the worker did not stop cleanly\n{worker.tail()}"
