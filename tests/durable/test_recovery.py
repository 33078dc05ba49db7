"""Recovery across real processes, where a process dies while others live (issue 12, B6-B8):

- a review decision killed at several points never has its continuation adopted and abandoned
  by the next decision command, and is finished later (`DurableRunner.finish`);
- a `handrail run` waiting on runs another process started goes on when that process dies;
- runs another handrail version left pending are named at start, never waited for, and can be
  abandoned (`handrail runs abandon --version V`).

The processes run `procs/app.py` (see `test_processes.py` for the pipeline and its side files).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.durable.procs import app
from tests.durable.test_processes import (
    Proc,
    Procs,
    assert_all_completed_once,
    checkpoints,
    dbos_table,
    in_flight,
    sql,
    starts,
)

from handrail import RunStatus
from handrail.durable import SqlStore
from handrail.durable.runner import continuation_id


@pytest.fixture
def procs_for(tmp_path: Path) -> Iterator[Callable[[str], Procs]]:
    """As in test_processes: `Procs` on a database, killed at the end of the test."""
    made: list[Procs] = []

    def make(db: str) -> Procs:
        side = tmp_path / f"side{len(made)}"
        side.mkdir()
        made.append(Procs(tmp_path, db, side))
        return made[-1]

    try:
        yield make
    finally:
        for procs in made:
            procs.kill_all()


def wait_until(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    procs: Procs,
    poll: float = 0.02,
    *,
    watch: Proc | None = None,
) -> Any:
    """`condition()` once it is true; fails when `watch` (default: the last process started)
    exits first, or after `timeout` seconds (processes killed earlier are not watched)."""
    watched = watch or procs.started[-1]
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if watched.popen.poll() is not None or time.monotonic() > deadline:
            reason = "it exited" if watched.popen.poll() is not None else f"{timeout}s passed"
            raise AssertionError(f"waiting for {what}: {reason}\n{procs.tails()}")
        time.sleep(poll)


def workflow_rows(url: str) -> dict[str, tuple[str, str, str]]:
    """workflow id -> (status, executor id, application version), every workflow."""
    rows = sql(
        url,
        "SELECT workflow_uuid, status, executor_id, application_version FROM "
        + dbos_table(url, "workflow_status"),
    )
    return {w: (s, e, v) for w, s, e, v in rows}


def start_with(procs: Procs, label: str, mode: str, env: dict[str, str], *args: str) -> Proc:
    """`procs.start` with extra environment variables."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return procs.start(label, mode, *args)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- B6: a decision cut off is neither adopted nor abandoned by the next one ------------------

KILL_POINTS = ("recorded", "details", "act", "effect", "ended")
"""Where the deciding process is killed: once its decision is recorded; with the LLM step after
the review in flight; with the action started (before its side effect); right after the side
effect; right after the action ENDed (its checkpoint and the run's record may or may not be
saved)."""


def test_a_decision_killed_at_any_point_is_finished_later_and_never_adopted_by_another(
    sqlite_url: str, procs_for: Callable[[str], Procs]
) -> None:
    decisions_killed_then_finished(sqlite_url, procs_for(sqlite_url), KILL_POINTS)


def test_on_postgres_a_decision_killed_mid_way_is_taken_over_later(
    durable_postgres_url: str, procs_for: Callable[[str], Procs]
) -> None:
    url = durable_postgres_url
    decisions_killed_then_finished(url, procs_for(url), ("details", "act"))


def decisions_killed_then_finished(url: str, procs: Procs, points: tuple[str, ...]) -> None:
    """Decide a review in a process killed at each of `points`, then another review in a new
    process (which must touch nothing else), then finish the cut-off runs."""
    name, count = "cut_off", 2 * len(points)
    docs = app.documents(count, "co", review=range(count))
    common = ["--name", name, "--prefix", "co", "--latency", "0.3"]
    raised = procs.start(
        "raise",
        "batch",
        *common,
        "--count",
        str(count),
        "--review",
        ",".join(str(i) for i in range(count)),
    )
    runs = raised.result(timeout=90)["runs"]
    assert [r["status"] for r in runs] == ["needs_review"] * count, runs
    review = {r["doc"]: r["review_id"] for r in runs}
    run_id = {r["doc"]: r["run_id"] for r in runs}
    victims = [d.id for d in docs[: len(points)]]
    bystanders = [d.id for d in docs[len(points) :]]
    slow = {app.ACT_DELAY: "0.8"}

    def decided(doc: str) -> bool:
        with SqlStore(url) as store:
            stored = store.get_review(review[doc])
        return stored is not None and stored.status == "decided"

    for point, victim, bystander in zip(points, victims, bystanders, strict=True):
        approve = json.dumps([{"review_id": review[victim], "action": "approve"}])
        decider = start_with(
            procs, f"decide-{point}", "decide", slow, *common, "--decisions", approve
        )

        def reached(point: str = point, decider: Proc = decider, victim: str = victim) -> bool:
            if point == "recorded":
                return decided(victim)
            events = procs.events()
            mine = [e for e in events if e["pid"] == decider.pid and e["doc"] == victim]
            if point == "details":
                return any(e["node"] == "details" and e["event"] == "START" for e in mine)
            if point == "act":
                return any(e["node"] == "act" and e["event"] == "START" for e in mine)
            if point == "effect":
                return any(e["pid"] == decider.pid for e in procs.effects())
            return any(e["node"] == "act" and e["event"] == "END" for e in mine)

        wait_until(reached, 60, f"the decider of {victim} to reach `{point}`", procs, poll=0.005)
        decider.kill()
        assert decided(victim), f"{point}: the killed decision was not recorded"
        with SqlStore(url) as store:
            victim_then = store.get_run(run_id[victim])
        assert victim_then is not None
        events_then, effects_then = procs.events(), procs.effects()

        # The next decision, in a new process: it decides its own review and nothing else.
        other = json.dumps([{"review_id": review[bystander], "action": "approve"}])
        next_one = start_with(procs, f"next-{point}", "decide", slow, *common, "--decisions", other)
        output = next_one.result(timeout=90)
        [result] = output["results"]
        assert result.get("run", {}).get("status") == "completed", result
        touched = {e["doc"] for e in procs.events() if e["pid"] == next_one.pid}
        assert touched == {bystander}, (
            f"{point}: the next decision command ran steps of other runs: {sorted(touched)}"
        )
        assert [e for e in procs.effects() if e["pid"] == next_one.pid] == [
            e for e in procs.effects() if e["doc"] == bystander
        ]
        with SqlStore(url) as store:
            victim_now = store.get_run(run_id[victim])
        assert victim_now == victim_then, f"{point}: the next command changed the cut-off run"
        assert [e for e in procs.events() if e["doc"] == victim] == [
            e for e in events_then if e["doc"] == victim
        ]
        assert [e for e in procs.effects() if e["doc"] == victim] == [
            e for e in effects_then if e["doc"] == victim
        ]
        flows = workflow_rows(url)
        state = flows.get(continuation_id(review[victim]))
        assert state is None or state[1] != output["executor_id"], (
            f"{point}: the cut-off continuation moved to the next command's executor: {state}"
        )

    # Each cut-off run is finished later, once, by a process that touches it.
    # (the steps after a review are checkpointed under the continuation's workflow id)
    checkpointed = checkpoints(url, {continuation_id(review[d]): d for d in victims})
    finisher = procs.start(
        "finish", "finish", *common, "--run-ids", json.dumps([run_id[v] for v in victims])
    )
    results = finisher.result(timeout=120)["results"]
    assert [r["run"]["status"] for r in results] == ["completed"] * len(victims), results
    hows = {v: r["how"] for v, r in zip(victims, results, strict=True)}
    assert set(hows.values()) <= {"took over", "started", "nothing"}, hows
    if "details" in points:
        mid_way = victims[points.index("details")]
        assert hows[mid_way] == "took over", "a continuation killed mid-way is taken over"

    events = procs.events()
    ids = {run_id[d.id]: d.id for d in docs}
    with SqlStore(url) as store:
        for doc, run in run_id.items():
            record = store.get_run(run)
            assert record is not None and record.status is RunStatus.COMPLETED, (doc, record)
            assert record.outputs["act"].startswith(f"filed {doc.upper()} as "), record.outputs
            assert [(s.node, s.status.value) for s in store.steps(run)] == [
                ("intake", "completed"),
                ("category", "needs_review"),
                ("category", "completed"),
                ("details", "completed"),
                ("act", "completed"),
            ], doc
            assert len(record.decisions) == 1 and not record.reviews, doc
    started = starts(events)
    again = sorted(step for step in checkpointed if started[step] != 1)
    assert not again, f"steps checkpointed before a kill started again: {again}"
    effects = Counter(e["key"] for e in procs.effects())
    expected = {f"{r}:act": d for r, d in ids.items()}
    assert set(effects) == set(expected)
    # the action ran once per key, except where the kill came after its side effect and
    # before its checkpoint (at least once: twice at most)
    may_repeat = {v for v, p in zip(victims, points, strict=True) if p in ("effect", "ended")}
    repeated = {expected[k]: n for k, n in effects.items() if n > 1}
    assert all(d in may_repeat and n == 2 for d, n in repeated.items()), repeated
    assert all(started[(d, "act")] <= 2 for d in victims)
    assert all(started[(d, n)] == 1 for d in bystanders for n in ("details", "act")), (
        "the bystanders' steps ran once each"
    )
    pending = {w: s for w, s in workflow_rows(url).items() if s[0] not in ("SUCCESS",)}
    assert not pending, f"workflows that did not succeed: {pending}"


# --- B7: a batch waiting on runs of a process that dies takes them over -----------------------


def test_a_batch_waiting_on_runs_of_a_process_that_dies_takes_them_over(
    sqlite_url: str, procs_for: Callable[[str], Procs]
) -> None:
    procs = procs_for(sqlite_url)
    name, count = "two_batches", 16
    docs = app.documents(count, "tb")
    common = ["--name", name, "--prefix", "tb", "--latency", "0.2", "--concurrency", "16"]
    # The first process runs the first half; the second all of it: it runs the second half
    # itself and waits for the runs the first one has in flight.
    # (its actions take 10 s: its runs are in flight when the second one waits for them)
    first = start_with(
        procs, "first", "batch", {app.ACT_DELAY: "10"}, *common, "--count", str(count // 2)
    )
    wait_until(
        lambda: len({d for d, _ in starts(procs.events(), pid=first.pid)}) == count // 2,
        60,
        "the first batch to start its runs",
        procs,
    )
    second = procs.start("second", "batch", *common, "--count", str(count))
    wait_until(
        lambda: any(e["pid"] == second.pid for e in procs.events()),
        60,
        "the second batch to start runs of its own",
        procs,
    )
    orphaned = {doc for doc, _ in in_flight(procs.events(), first.pid)}
    first.kill()
    killed_at = time.time()
    assert orphaned, "the first process had no run in flight when it was killed"

    result = second.result(timeout=60)
    assert [r["status"] for r in result["runs"]] == ["completed"] * count, result["runs"]
    events = procs.events()
    ids = assert_all_completed_once(sqlite_url, name, docs, events)
    # a run with a step in flight at the kill was unfinished: the second process finished it
    taken = {e["doc"] for e in events if e["pid"] == second.pid and e["t"] > killed_at}
    assert orphaned <= taken, f"runs of the dead process nobody took over: {orphaned - taken}"
    first_taken = min(e["t"] for e in events if e["doc"] in orphaned and e["t"] > killed_at)
    assert first_taken - killed_at < 15, (
        f"the second process took {first_taken - killed_at:.1f}s to take over"
    )
    assert all(n <= 2 for n in starts(events).values()), "a step started more than twice"
    effects = Counter(e["key"] for e in procs.effects())
    assert set(effects) == {f"{r}:act" for r in ids}
    assert all(n <= 2 for n in effects.values())


def test_a_batch_that_takes_over_runs_finishes_them_before_it_exits(
    sqlite_url: str, procs_for: Callable[[str], Procs]
) -> None:
    """The second batch has documents of its own only; it takes over the dead first one's runs
    (its reaper) and, its own done, waits for them rather than cut them off again at exit."""
    procs = procs_for(sqlite_url)
    name, half = "adopted", 6
    common = ["--name", name, "--prefix", "ad", "--latency", "0.2", "--concurrency", "8"]
    first = start_with(
        procs, "first", "batch", {app.ACT_DELAY: "20"}, *common, "--count", str(half)
    )
    wait_until(
        lambda: len(starts(procs.events(), pid=first.pid, node="act")) == half,
        60,
        "the first batch to have every action in flight",
        procs,
    )
    # the second one's actions take 2 s: its own runs end before those it takes over
    second = start_with(
        procs,
        "second",
        "batch",
        {app.ACT_DELAY: "2"},
        *common,
        "--count",
        str(half),
        "--start",
        str(half),
    )
    wait_until(
        lambda: any(e["pid"] == second.pid for e in procs.events()),
        60,
        "the second batch to start its own runs",
        procs,
    )
    first.kill()
    result = second.result(timeout=60)
    assert [r["status"] for r in result["runs"]] == ["completed"] * half, result["runs"]
    # nothing left pending or cut off: the first one's runs were finished by the second
    rows = workflow_rows(sqlite_url)
    pending = {w: r for w, r in rows.items() if r[0] != "SUCCESS"}
    assert not pending, f"workflows the second batch left unfinished: {pending}"
    with SqlStore(sqlite_url) as store:
        records = store.list_runs(pipeline=name)
    assert sorted(r.document_id for r in records) == [f"ad-{i:03d}" for i in range(2 * half)]
    assert {r.status for r in records} == {RunStatus.COMPLETED}
    taken = {e["doc"] for e in procs.events() if e["pid"] == second.pid}
    assert {f"ad-{i:03d}" for i in range(half)} <= taken


# --- B8: runs another handrail version left pending -------------------------------------------

OLD = "0.0.1-old"


def handrail_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-m", "handrail.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runs_pending_from_another_version_are_named_never_awaited_and_can_be_abandoned(
    sqlite_url: str, procs_for: Callable[[str], Procs], tmp_path: Path
) -> None:
    procs = procs_for(sqlite_url)
    name, count = "upgrade", 8
    args = [
        "--name",
        name,
        "--prefix",
        "up",
        "--count",
        str(count),
        "--latency",
        "0.3",
        "--concurrency",
        "4",
    ]
    old = start_with(procs, "old", "batch", {app.APP_VERSION: OLD}, *args)

    def killable() -> bool:
        events = procs.events()
        done = sum(1 for e in events if e["event"] == "END" and e["node"] == "act")
        return done >= 2 and bool(in_flight(events, old.pid))

    wait_until(killable, 60, "the old version to finish 2 runs with others in flight", procs)
    old.kill()
    flows = workflow_rows(sqlite_url)
    left = {w for w, (s, _, v) in flows.items() if v == OLD and s == "PENDING"}
    assert left, "the old version left nothing pending"
    with SqlStore(sqlite_url) as store:
        done_before = {r.run_id for r in store.list_runs(pipeline=name)}
    # killed between saving its run's record and ending its workflow, a run has ended all
    # the same: its record stands
    cut, ended = left - done_before, left & done_before
    assert cut, "no run of the old version was cut off mid-way"

    # The new version says so at start and does not wait for them.
    new = procs.start("new", "batch", *args)
    result = new.result(timeout=60)
    stderr = new.err.read_text()
    assert f"{len(left)} run" in stderr and f"from handrail {OLD}" in stderr, stderr
    assert f"handrail runs abandon --version {OLD}" in stderr, stderr
    statuses = {r["run_id"]: r for r in result["runs"]}
    for workflow in cut:
        run = statuses[workflow]
        assert run["status"] == "failed", run
        assert f"handrail {OLD}" in run["error"] and "runs abandon" in run["error"], run
    others = [r for r in result["runs"] if r["run_id"] not in cut]
    assert all(r["status"] == "completed" for r in others), others
    assert workflow_rows(sqlite_url)[next(iter(left))][0] == "PENDING", "left as it was"

    # Abandoned: cancelled in DBOS, failed in handrail's records, reported.
    abandoned = handrail_cli(
        "runs", "abandon", "--version", OLD, "--db", sqlite_url, "--json", cwd=tmp_path
    )
    assert abandoned.returncode == 0, abandoned.stderr
    lines = [json.loads(line) for line in abandoned.stdout.splitlines()]
    assert {item["workflow_id"] for item in lines} == left
    assert {i["run_id"] for i in lines if i["status"] == "abandoned"} == cut, lines
    assert {i["run_id"] for i in lines if i["status"] == "finished"} == ended, lines
    flows = workflow_rows(sqlite_url)
    assert {flows[w][0] for w in left} == {"CANCELLED"}
    with SqlStore(sqlite_url) as store:
        for workflow in cut:
            record = store.get_run(workflow)
            assert record is not None and record.status is RunStatus.FAILED
            assert record.error is not None and record.error.type == "Abandoned"
            assert f"--version {OLD}" in record.error.message
        for workflow in ended:
            record = store.get_run(workflow)
            assert record is not None and record.status is RunStatus.COMPLETED
    again = handrail_cli("runs", "abandon", "--version", OLD, "--db", sqlite_url, cwd=tmp_path)
    assert again.returncode == 0 and "0 runs of handrail" in again.stdout, again

    # Running the documents again starts the abandoned ones afresh; nothing is pending.
    rerun = procs.start("rerun", "batch", *args)
    result = rerun.result(timeout=60)
    assert [r["status"] for r in result["runs"]] == ["completed"] * count, result["runs"]
    assert "pending from another handrail version" not in rerun.err.read_text()
    assert done_before <= {r["run_id"] for r in result["runs"]}
    pending = [w for w, (s, _, _) in workflow_rows(sqlite_url).items() if s == "PENDING"]
    assert not pending
