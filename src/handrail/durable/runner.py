"""`DurableRunner`: the core runner, with each run a DBOS workflow and each node execution a step.

The core decides everything (scheduling, routing, retries, gates, hooks); this module only says
where each piece of work is checkpointed:

- a run is the workflow `handrail.run:<pipeline>` with id = run id (so a document is never run
  twice, by any process);
- a node execution is a step named `<kind> <node>`, its slot reserved as the scheduler starts the
  node and its `Outcome` checkpointed (outputs as JSON, errors as type and message), so a recovered
  run replays it instead of calling the model again;
- waiting for the first of several running branches is `DBOS.asyncio_wait`, which checkpoints
  which ones had finished;
- a review ends the workflow (the run is stored `needs_review`); a decision is recorded once by the
  store and continued by the workflow `handrail.continue:<pipeline>` with id `<review id>:decision`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from os import PathLike
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSClient, EnqueueOptions, SetWorkflowID
from pydantic import TypeAdapter
from pydantic_core import to_jsonable_python
from sqlalchemy import Connection

from handrail._utils import derived_id, new_id, now
from handrail.core.fingerprint import spec_json
from handrail.core.hooks import Hooks
from handrail.core.model import Model
from handrail.core.nodes import Node
from handrail.core.outcome import Outcome, RecordedError
from handrail.core.pipeline import Budget, Pipeline
from handrail.core.records import (
    ErrorInfo,
    ModelSpec,
    ReviewDecision,
    ReviewRequest,
    RunRecord,
    RunStatus,
)
from handrail.core.runner import DocumentLike, Runner, _Run
from handrail.core.state import Document
from handrail.durable.engine import parse, password, reason
from handrail.durable.errors import StoreError, StoreUnavailable
from handrail.durable.outbox import Routing
from handrail.durable.runtime import (
    QUEUE,
    Runtime,
    app_version,
    dbos_url,
    default_executor_family,
)
from handrail.durable.schedules import Scheduled, schedule_workflow, stored_name
from handrail.durable.serialize import (
    CHECKPOINTS,
    dump_decision,
    dump_review,
    dump_run,
    load_decision,
    load_review,
    load_run,
    refuse_pickles,
)
from handrail.durable.store import SqlStore
from handrail.durable.versions import how_to_finish, pending_elsewhere
from handrail.exceptions import (
    CheckpointRefused,
    InvalidDecision,
    ReviewAlreadyDecided,
    ReviewNotFound,
)

log = logging.getLogger("handrail.durable")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")
"""The start of a URL (`postgresql:`); a one-letter drive (`C:`) is a path."""
DEFAULT_DATABASE = "sqlite:///.handrail/handrail.db"
"""Where durable runs are kept unless `--db` or `HANDRAIL_DATABASE_URL` says otherwise."""
DEADLINE_REVIEWER = "handrail (deadline)"
"""The reviewer named on a decision an escalation made."""
REAP_EVERY = 2.0
"""Seconds between two looks, in a long-lived runner, for runs of processes that died."""

_DOCUMENT = TypeAdapter(Document)
"""Documents in workflow inputs: text, source, metadata and, for paged files, pages and parts."""


def database_url(db: str | PathLike[str] | None = None) -> str | PathLike[str]:
    """`db` if given, else `HANDRAIL_DATABASE_URL`, else the SQLite file `.handrail/handrail.db`.

    `db` may be a URL or a plain SQLite path (`"/tmp/x.db"`, `Path(...)`); a text with a scheme
    but no `://` (`"postgresql:/x"`) stays a URL, so a misspelt one is refused, not made a file.
    """
    if db is not None and str(db).strip():
        if isinstance(db, str) and "://" not in db and not _SCHEME.match(db.strip()):
            return Path(db.strip())
        return db
    return os.environ.get("HANDRAIL_DATABASE_URL", "").strip() or DEFAULT_DATABASE


def run_workflow(pipeline: str) -> str:
    """The DBOS workflow name of a run of `pipeline`."""
    return f"handrail.run:{pipeline}"


def continue_workflow(pipeline: str) -> str:
    """The DBOS workflow name of a run's continuation after a decision."""
    return f"handrail.continue:{pipeline}"


def queue_name(pipeline: str) -> str:
    """The DBOS queue submitted runs of `pipeline` wait in (one per pipeline, so a worker only
    takes runs it has the code for)."""
    return f"{QUEUE}.{pipeline}"


def run_workflow_id(run_id: str, earlier: RunRecord | None) -> str:
    """The workflow id of a run: the run id, or for a retry of a failed run an id derived from
    the failed attempt (its workflow stays as history; two retries of one failure are one)."""
    if earlier is None or earlier.status is not RunStatus.FAILED:
        return run_id
    stamp = earlier.started_at.isoformat() if earlier.started_at else ""
    return derived_id("retry", run_id, stamp)


def continuation_id(review_id: str) -> str:
    """The workflow id of the continuation a decision on `review_id` starts (one per review)."""
    return f"{review_id}:decision"


@dataclass(frozen=True, kw_only=True, slots=True)
class Finished:
    """What `DurableRunner.finish` did: the run's record afterwards, and `how`: `started` (its
    decision's continuation had never started), `took over` (from a process that died),
    `waited` (for the live process running it), `ended` (it had just ended) or `nothing` (it
    was not unfinished)."""

    record: RunRecord
    how: str


@dataclass(frozen=True, slots=True)
class Escalated:
    """What an escalation did to one review."""

    review_id: str
    run_id: str
    action: str
    detail: str
    run_status: RunStatus | None = None


class DurableRunner(Runner):
    """Runs a pipeline durably on DBOS, keeping run records in SQLite or Postgres.

    ```python
    async with DurableRunner(pipeline, model=model) as runner:   # .handrail/handrail.db
        records = await runner.run_many(documents)
        await runner.decide(review_id, ReviewDecision.approve(reviewer="ana"))
    ```

    - `db`: a database URL or SQLite path (default: `HANDRAIL_DATABASE_URL`, else
      `.handrail/handrail.db`); the run records and DBOS's tables share it;
    - `executor_id`: this process's DBOS executor id; by default the first free one of `local`,
      `local-2`, ... (`kind="worker"`: `worker-<host>`, ...; `kind="cli"`: `cli`, ...);
    - `notify`: the notification channels (`handrail.notify.Notifications`): reviews raised,
      escalations, failed runs and reminders write their outbox rows (docs/notifications.md);
    - `schedules`: cron schedules a worker (`serve`) stores in DBOS and fires, each tick once
      across workers (`handrail.durable.schedules`);
    - everything else as `Runner`.

    A process may have one open durable runner at a time (DBOS runs once per process).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        db: str | PathLike[str] | None = None,
        executor_id: str | None = None,
        kind: str = "local",
        model: Model | None = None,
        models: Mapping[str, Model] | None = None,
        hooks: Sequence[Hooks] = (),
        budget: Budget | None = None,
        timeout: float | None = None,
        model_spec: ModelSpec | None = None,
        model_for: Callable[[ModelSpec], Model] | None = None,
        reap_every: float | None = REAP_EVERY,
        notify: Routing | None = None,
        schedules: Sequence[Scheduled] = (),
    ) -> None:
        url = database_url(db)
        parsed, _shown = parse(url)
        store = SqlStore(url, routes=notify.routes if notify is not None else ())
        super().__init__(
            pipeline,
            model=model,
            models=models,
            hooks=hooks,
            store=store,
            budget=budget,
            timeout=timeout,
            model_spec=model_spec,
            model_for=model_for,
        )
        self.sql: SqlStore = store
        self.runtime = Runtime(
            parsed,
            store.url,
            executor_id=executor_id,
            family=default_executor_family(kind),
            recover_others=kind != "cli",
        )
        self._kind = kind
        names = [s.name for s in schedules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"schedule names must be unique; given twice: {', '.join(twice)}")
        self.schedules: dict[str, Scheduled] = {s.name: s for s in schedules}
        """The schedules this worker applies and fires, by name."""
        if reap_every is not None and reap_every <= 0:
            raise ValueError(f"reap_every={reap_every}: use a number of seconds above 0, or None")
        self.reap_every = reap_every if kind != "cli" else None
        """How often this runner recovers the runs of dead processes while it is open (not for
        `kind="cli"`: a short command takes over nothing)."""
        self._reaper: asyncio.Task[None] | None = None
        self.other_versions: dict[str, str] = {}
        """Workflows left pending by another handrail version at open: id -> version."""
        self._awaited: dict[str, int] = {}
        """Run ids a `_result` in this process waits for (how many waiters)."""
        self._finished: dict[str, RunRecord] = {}
        self._run_wf: Any = None
        self._continue_wf: Any = None
        self._tick_wf: Any = None

    def __repr__(self) -> str:
        return f"DurableRunner({self.pipeline.name!r}, db={self.sql.url!r})"

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def executor_id(self) -> str:
        """This process's DBOS executor id (set once opened)."""
        return self.runtime.executor_id

    async def open(self) -> DurableRunner:
        """Launch DBOS in this process: pending runs of this executor id are recovered, and
        (unless `kind="cli"`) those of stopped processes too."""
        if self.runtime.launched:
            return self
        before = _ACTIVE.get(self.pipeline.name)
        _ACTIVE[self.pipeline.name] = self
        try:
            self._register()
            listen = [queue_name(self.pipeline.name)] if self._kind == "worker" else []
            await asyncio.to_thread(self.runtime.launch, listen)
        except BaseException:
            _ACTIVE.pop(self.pipeline.name, None)
            if before is not None:  # another runner is open: its workflows still need it
                _ACTIVE[self.pipeline.name] = before
            if Runtime.current is None:  # never another open runner's DBOS
                _destroy_quietly()
            raise
        await self.reap()
        self.other_versions = await asyncio.to_thread(self.runtime.other_versions)
        if self.other_versions:
            log.warning(pending_elsewhere(self.other_versions))
        if self.reap_every is not None:
            self._reaper = asyncio.ensure_future(self._reap_often(self.reap_every))
        return self

    async def _reap_often(self, every: float) -> None:
        """Recover dead processes' runs every `every` seconds while open: a batch waiting for a
        run another process started goes on once that process dies (its run is taken over)."""
        while True:
            await asyncio.sleep(every)
            try:
                await self.reap()
            except Exception as e:  # a database hiccup: the next round tries again
                log.warning("could not look for runs of stopped processes (%s); retrying", e)

    async def close(self) -> None:
        """Stop DBOS (runs still in flight stay pending and are recovered by the next process)
        and close the store."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        try:
            if self.runtime.launched:
                self.runtime.destroy()
                # DBOS made its thread pool this loop's default executor and has just shut it
                # down: give the loop a working one back (asyncio.to_thread would fail).
                asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor())
        finally:
            if _ACTIVE.get(self.pipeline.name) is self:
                del _ACTIVE[self.pipeline.name]
            self.sql.close()

    async def __aenter__(self) -> DurableRunner:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        try:
            if exc[0] is None and self._kind == "local":
                await self.finish_taken()
        finally:
            await self.close()

    async def finish_taken(self, poll: float = 0.2) -> int:
        """Wait for the runs this process took over from dead ones and is still running, and
        for those its recoveries handed back to DBOS's internal queue (a batch that adopted them
        finishes them, rather than leave them cut off again when it exits); it reaps no more
        meanwhile. Returns how many it waited for. Called on a clean exit of `async with` for
        `kind="local"` (`handrail run`); a worker leaves its runs to others."""
        if not self.runtime.launched:
            return 0
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        waited: set[str] = set()
        while True:
            try:
                running = await asyncio.to_thread(self.runtime.running_here)
            except Exception as e:  # never fail a finished batch on its way out
                log.warning("could not check for runs taken over from stopped processes (%s)", e)
                return len(waited)
            if not running:
                return len(waited)
            waited |= running
            await asyncio.sleep(poll)

    def _register(self) -> None:
        name = self.pipeline.name

        async def run_body(run_id: str, document: dict[str, Any], model: Any = None) -> str:
            return await _runner_for(name)._workflow_run(run_id, document, model)

        async def continue_body(record: Any, request: Any, decision: Any) -> str:
            return await _runner_for(name)._workflow_continue(record, request, decision)

        async def tick_body(scheduled_at: datetime, context: Any) -> None:
            await _runner_for(name)._workflow_tick(scheduled_at, context)

        self._run_wf = DBOS.workflow(name=run_workflow(name))(run_body)
        self._continue_wf = DBOS.workflow(name=continue_workflow(name))(continue_body)
        self._tick_wf = DBOS.workflow(name=schedule_workflow(name))(tick_body)
        self.runtime.register(
            {run_workflow(name), continue_workflow(name), schedule_workflow(name)}
        )

    async def _workflow_tick(self, scheduled_at: datetime, context: Any) -> None:
        """One tick of a schedule (a DBOS workflow): its `fire`, on a thread. A tick of a
        schedule this worker does not know (another worker's configuration) is logged."""
        wanted = context.get("schedule") if isinstance(context, dict) else None
        scheduled = self.schedules.get(str(wanted))
        if scheduled is None:
            log.warning(
                "schedule `%s` of %s fired for %s, but this worker does not have it in its "
                "configuration: give every worker of a pipeline the same schedules",
                wanted,
                self.pipeline.name,
                scheduled_at.isoformat(),
            )
            return
        await asyncio.to_thread(scheduled.fire, scheduled_at)

    def _apply_schedules(self) -> None:
        """Store this worker's schedules in DBOS (on the pipeline's queue), replacing the
        pipeline's others: DBOS's scheduler then enqueues each tick once."""
        mine = stored_name(self.pipeline.name, "")
        wanted = {stored_name(self.pipeline.name, s.name) for s in self.schedules.values()}
        for old in DBOS.list_schedules(schedule_name_prefix=mine):
            if old["schedule_name"] not in wanted:
                DBOS.delete_schedule(old["schedule_name"])
        if not self.schedules:
            return
        DBOS.apply_schedules(
            [
                {
                    "schedule_name": stored_name(self.pipeline.name, s.name),
                    "workflow_fn": self._tick_wf,
                    "schedule": s.cron,
                    "context": {"schedule": s.name},
                    "cron_timezone": s.timezone,
                    "automatic_backfill": s.catch_up,
                    "queue_name": queue_name(self.pipeline.name),
                }
                for s in self.schedules.values()
            ]
        )

    def _require_open(self) -> None:
        if not self.runtime.launched:
            raise StoreError(
                "this DurableRunner is not open; use `async with DurableRunner(...) as runner:` "
                "or `await runner.open()` first"
            )

    # --- runs -----------------------------------------------------------------------------------

    async def _run_new(
        self,
        run_id: str,
        doc: Document,
        earlier: RunRecord | None = None,
        *,
        spec: ModelSpec | None = None,
    ) -> RunRecord:
        if not doc.text.strip():  # nothing to checkpoint: the core fails it at once
            return await super()._run_new(run_id, doc, spec=spec)
        self._require_open()
        workflow_id = run_workflow_id(run_id, earlier)
        version = self.other_versions.get(workflow_id)
        if version is not None:  # waiting would be forever: no process of this version runs it
            return self._left_by(version, run_id, doc, earlier)
        with SetWorkflowID(workflow_id):
            handle = await DBOS.start_workflow_async(
                self._run_wf, run_id, _dump_document(doc), _dump_spec(spec or self.model_spec)
            )
        return await self._result(handle, run_id, doc)

    async def _result(self, handle: Any, run_id: str, doc: Document | None) -> RunRecord:
        """Wait for a workflow and return its run's record; a workflow that itself failed (not
        the run: a bug, or a replay the pipeline no longer matches) becomes a failed run."""
        self._awaited[run_id] = self._awaited.get(run_id, 0) + 1
        try:
            await handle.get_result()
        except Exception as e:
            self._finished.pop(run_id, None)
            record = self.store.get_run(run_id)
            if record is not None and record.status in (RunStatus.COMPLETED, RunStatus.REJECTED):
                return self.revived(record)
            return self._workflow_failed(run_id, doc, record, e)
        finally:
            left = self._awaited.pop(run_id) - 1
            if left:
                self._awaited[run_id] = left
        finished = self._finished.pop(run_id, None)  # ran here: the record it just saved
        if finished is not None:
            return finished
        record = self.store.get_run(run_id)
        if record is None:  # pragma: no cover - the workflow saves its run before returning
            raise StoreError(f"run `{run_id}` finished but its record is missing")
        return self.revived(record)

    def _left_by(
        self, version: str, run_id: str, doc: Document, earlier: RunRecord | None
    ) -> RunRecord:
        """The record (not stored) of a run another handrail version left pending: failed here,
        with what to do about it; the pending run itself is left as it is."""
        return RunRecord(
            run_id=run_id,
            pipeline=self.pipeline.name,
            document_id=doc.id,
            document_hash=doc.hash,
            status=RunStatus.FAILED,
            document=doc,
            error=ErrorInfo(
                type="PendingInAnotherVersion",
                message=(
                    f"run `{run_id}` was started by handrail {version} and is still pending "
                    f"there; this handrail ({app_version()}) does not run it. "
                    + how_to_finish(version)
                ),
            ),
            started_at=now(),
            ended_at=now(),
            model=self.model_spec,
            pipeline_version=self.pipeline.fingerprint,
        )

    def revived(self, record: RunRecord) -> RunRecord:
        """A stored record with its outputs as their nodes' types again (the store gives JSON)."""
        outputs = {name: self._revive(name, value) for name, value in record.outputs.items()}
        return replace(record, outputs=outputs)

    def _workflow_failed(
        self, run_id: str, doc: Document | None, record: RunRecord | None, error: Exception
    ) -> RunRecord:
        kind = getattr(error, "type_name", type(error).__name__)  # a RecordedError's original
        message = (
            f"the durable run `{run_id}` stopped: {kind}: {error}; if the "
            "pipeline changed since the run started, run the document again (it starts over)"
        )
        if kind == CheckpointRefused.__name__:  # the message says what happened and what to do
            message = f"the durable run `{run_id}` stopped: {error}"
        if record is None:
            document = doc or Document.of("")
            record = RunRecord(
                run_id=run_id,
                pipeline=self.pipeline.name,
                document_id=document.id,
                document_hash=document.hash,
                status=RunStatus.FAILED,
                document=document,
                started_at=now(),
                model=self.model_spec,
                pipeline_version=self.pipeline.fingerprint,
            )
        failed = replace(
            record,
            status=RunStatus.FAILED,
            error=ErrorInfo(type=kind, message=message),
            ended_at=now(),
            reviews=(),
        )
        self.store.save_run(failed)
        return failed

    async def _workflow_run(self, run_id: str, document: dict[str, Any], model: Any = None) -> str:
        spec = _load_spec(model)
        record = await Runner._run_new(self, run_id, _load_document(document), spec=spec)
        self._keep(record)
        return record.status.value

    def _keep(self, record: RunRecord) -> None:
        """Hand a record this process just saved to the `_result` waiting for it (saves reading
        it back); records of runs nobody here waits for (a worker's) are not kept."""
        if record.run_id in self._awaited:
            self._finished[record.run_id] = record

    # --- steps ----------------------------------------------------------------------------------

    def _reserve(self, run: _Run, name: str) -> Any:
        return DBOS.reserve_step() if DBOS.workflow_id is not None else None

    async def _execute_step(
        self, run: _Run, name: str, node: Node, visit: int, slot: Any = None
    ) -> Outcome:
        if slot is None:
            return await Runner._execute_step(self, run, name, node, visit)

        async def step() -> Outcome:
            started_at = now()
            t0 = time.perf_counter()
            outcome = await Runner._execute_step(self, run, name, node, visit)
            return _pack(outcome, started_at, time.perf_counter() - t0)

        packed: Outcome = await slot.run_async({"name": f"{node.kind} {name}"}, step)
        return replace(packed, output=self._revive(packed.review_target or name, packed.output))

    async def _wait(
        self, tasks: Iterable[asyncio.Future[Any]]
    ) -> tuple[set[asyncio.Future[Any]], set[asyncio.Future[Any]]]:
        if DBOS.workflow_id is None:
            return await super()._wait(tasks)
        done, pending = await DBOS.asyncio_wait(list(tasks), return_when=asyncio.FIRST_COMPLETED)
        return set(done), set(pending)

    # --- decisions ------------------------------------------------------------------------------

    async def resume(self, run_id: str, decision: ReviewDecision) -> RunRecord:
        """Record a decision (exactly once) and continue the run durably; see `Runner.resume`."""
        self._require_open()
        record, request, stamped = self.accept_decision(run_id, decision)
        return await self._continue(record, request, stamped)

    async def _continue(
        self,
        record: RunRecord,
        request: ReviewRequest,
        decision: ReviewDecision,
        *,
        wait: bool = True,
    ) -> RunRecord:
        with SetWorkflowID(continuation_id(request.review_id)):
            handle = await DBOS.start_workflow_async(
                self._continue_wf,
                dump_run(record),
                dump_review(request),
                dump_decision(decision),
            )
        if not wait:
            return record
        return await self._result(handle, record.run_id, None)

    async def _workflow_continue(self, record: Any, request: Any, decision: Any) -> str:
        result = await Runner.continue_run(
            self, load_run(record), load_review(request), load_decision(decision)
        )
        self._keep(result)
        return result.status.value

    async def resume_decided(self) -> int:
        """Start the continuation of every decided review whose run still waits (a process that
        died between recording a decision and continuing); returns how many were started. A
        continuation already started is not started again."""
        started = 0
        for review in self.sql.decided_waiting():
            if review.pipeline != self.pipeline.name:
                continue
            record = self.store.get_run(review.run_id)
            decision = self.sql.get_decision(review.review_id)
            if record is None or decision is None:
                continue
            await self._continue(record, review, decision, wait=False)
            started += 1
        return started

    async def finish(self, run_id: str) -> Finished:
        """Finish a run that a process left unfinished, and wait for it: the continuation of
        its decided review (started here if it never started, taken over if the process running
        it died, waited for if that process lives), or a run cut off mid-way (taken over, or
        waited for). A run with nothing left to do is returned as it is (`how="nothing"`)."""
        self._require_open()
        record = self.store.get_run(run_id)
        workflow_id = run_id
        if record is not None and record.status is RunStatus.NEEDS_REVIEW:
            decided = self._decided_review(record)
            if decided is None:
                return Finished(record=self.revived(record), how="nothing")
            review, decision = decided
            workflow_id = continuation_id(review.review_id)
            if await DBOS.get_workflow_status_async(workflow_id) is None:  # died before it
                started = await self._continue(record, review, decision)
                return Finished(record=started, how="started")
        elif record is not None and record.status is not RunStatus.RUNNING:
            return Finished(record=self.revived(record), how="nothing")
        status = await DBOS.get_workflow_status_async(workflow_id)
        if status is None:
            raise ReviewNotFound(
                f"no run `{run_id}` in {self.sql.url}; list runs with `handrail runs list`"
            )
        if status.app_version != app_version() and status.status in ("PENDING", "ENQUEUED"):
            version = status.app_version or "?"
            raise StoreError(
                f"run `{run_id}` was left pending by handrail {version}; this handrail "
                f"({app_version()}) cannot finish it. {how_to_finish(version)}"
            )
        how = "ended"
        if status.status in ("PENDING", "ENQUEUED"):
            took = await asyncio.to_thread(self.runtime.adopt, workflow_id)
            how = "took over" if took else "waited"
        handle: Any = await DBOS.retrieve_workflow_async(workflow_id)
        return Finished(record=await self._result(handle, run_id, None), how=how)

    def _decided_review(self, record: RunRecord) -> tuple[ReviewRequest, ReviewDecision] | None:
        """The review `record` waits on that already has its decision, if any."""
        for pending in record.reviews:
            review = self.sql.get_review(pending.review_id)
            if review is not None and review.status == "decided":
                decision = self.sql.get_decision(review.review_id)
                if decision is not None:
                    return review, decision
        return None

    # --- deadlines ------------------------------------------------------------------------------

    async def escalate_due(self, at: datetime | None = None) -> list[Escalated]:
        """Apply the escalation of every pending review of this pipeline whose deadline has
        passed (by `at`, default now): move it to another queue, or decide it (reject, or the
        declared safe default) and continue its run. Each escalation is recorded on the review
        (queue moves) or as its decision, by reviewer `handrail (deadline)`. The same clock
        writes the `review.due_soon` reminders of deadlines coming up (`SqlStore.remind_due`)."""
        self._require_open()
        at = at or now()
        done: list[Escalated] = []
        self.sql.remind_due(at, pipeline=self.pipeline.name)
        for review in self.sql.due_reviews(at, pipeline=self.pipeline.name):
            escalation = review.on_deadline
            if escalation is None or review.deadline is None:  # pragma: no cover - not stored
                continue
            passed = f"deadline {review.deadline:%Y-%m-%d %H:%M:%S} UTC passed"
            if escalation.action == "queue":
                detail = f"{passed}: moved from queue `{review.queue}` to `{escalation.queue}`"
                moved = replace(
                    review,
                    queue=escalation.queue or review.queue,
                    deadline=None,
                    escalated_at=at,
                    escalation=detail,
                )
                if self.sql.escalate_review(moved):
                    done.append(Escalated(review.review_id, review.run_id, "queue", detail))
                continue
            reason = f"{passed}: {escalation.reason or escalation.describe()}"
            if escalation.action == "reject":
                decision = ReviewDecision.reject(reason, reviewer=DEADLINE_REVIEWER)
            else:
                decision = ReviewDecision.edit(
                    escalation.output, reason=reason, reviewer=DEADLINE_REVIEWER
                )
            try:
                record, request, stamped = self.accept_decision(review.run_id, decision)
            except (ReviewAlreadyDecided, ReviewNotFound):
                continue  # someone decided it meanwhile
            except InvalidDecision as e:
                raise InvalidDecision(
                    f"review `{review.review_id}`: its deadline escalation cannot be applied "
                    f"({e}); fix on_deadline in the pipeline's ReviewPolicy"
                ) from e
            result = await self._continue(record, request, stamped)
            done.append(
                Escalated(review.review_id, review.run_id, escalation.action, reason, result.status)
            )
        return done

    # --- workers --------------------------------------------------------------------------------

    async def reap(self) -> int:
        """Recover runs left pending by stopped processes (see `Runtime.reap`)."""
        return await asyncio.to_thread(self.runtime.reap)

    async def serve(
        self,
        *,
        concurrency: int = 8,
        poll: float = 0.2,
        maintenance_every: float = 1.0,
        stop: asyncio.Event | None = None,
        on_escalated: Callable[[Escalated], object] | None = None,
    ) -> None:
        """Work as a queue worker until `stop` is set: take submitted runs of this pipeline (at
        most `concurrency` at a time), and every `maintenance_every` seconds recover stopped
        workers' runs, continue decided reviews and apply due escalations (`on_escalated`
        gets each one applied)."""
        self._require_open()
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency}: use 1 or more")
        stop = stop or asyncio.Event()
        registered = False
        outage = _Outage()
        while not stop.is_set():
            try:  # a database outage is waited out, not fatal: logged, then tried again
                if not registered:
                    await DBOS.register_queue_async(
                        queue_name(self.pipeline.name),
                        worker_concurrency=concurrency,
                        polling_interval_sec=poll,
                        on_conflict="always_update",
                    )
                    await asyncio.to_thread(self._apply_schedules)
                    registered = True
                escalations = await self.maintain()
            except Exception as e:
                if not _is_outage(e):
                    raise
                outage.failed(e, self.sql.url, self.sql._secret)
                escalations = []
            else:
                outage.over(self.sql.url)
            for escalated in escalations:
                if on_escalated is not None:
                    on_escalated(escalated)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), maintenance_every)

    async def maintain(self) -> list[Escalated]:
        """One round of a worker's housekeeping; returns the escalations it applied."""
        await self.reap()
        await self.resume_decided()
        return await self.escalate_due()


def _is_outage(error: BaseException) -> bool:
    """A database that cannot be reached or used for now (a restart, a full disk), as the store,
    SQLAlchemy, psycopg or sqlite3 report it; a worker waits those out."""
    if isinstance(error, StoreUnavailable | ConnectionError):
        return True
    if getattr(error, "connection_invalidated", False):
        return True
    return any(c.__name__ in ("OperationalError", "InterfaceError") for c in type(error).__mro__)


class _Outage:
    """A worker's database outage: one warning when it starts, one line when it is over (the
    CLI collapses the repeats of DBOS's own lines meanwhile)."""

    def __init__(self) -> None:
        self.since: float | None = None

    def failed(self, error: BaseException, where: str, secret: str | None) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "the database at %s cannot be used (%s); the worker waits and tries again",
                where,
                reason(error, secret),
            )

    def over(self, where: str) -> None:
        if self.since is not None:
            log.warning(
                "the database at %s is back after %.0f s; the worker goes on",
                where,
                time.monotonic() - self.since,
            )
            self.since = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Enqueue:
    """A run `Submitter.prepare` would put on its pipeline's queue."""

    run_id: str
    options: EnqueueOptions | None
    """DBOS's enqueue options (workflow, queue, workflow id, version); None when the document's
    run stands and nothing is to be queued."""
    args: tuple[Any, ...]
    """The run workflow's arguments: run id, document, model spec."""
    earlier: RunRecord | None = None
    """The document's run already stored: the one that stands (`options` None), or the failed
    one this run retries."""


class Submitter:
    """Puts runs on a pipeline's queue for `handrail worker`s, without running anything here
    (a DBOS client: no executor id, nothing recovered in this process)."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        db: str | PathLike[str] | None = None,
        model_spec: ModelSpec | None = None,
    ) -> None:
        url = database_url(db)
        parsed, _shown = parse(url)
        self.pipeline = pipeline
        self.store = SqlStore(url)  # creates the tables, and checks the version, first
        try:  # DBOS's client never creates DBOS's tables; a database no worker opened has none
            DBOS.migrate(dbos_url(parsed))
        except Exception as e:
            self.store.close()
            raise StoreUnavailable(
                f"cannot prepare the run queue in {self.store.url} ({type(e).__name__}: "
                f"{reason(e, password(parsed))}); check that the database is reachable and writable"
            ) from e
        refuse_pickles()
        self._client = DBOSClient(
            system_database_url=dbos_url(parsed),
            application_name="handrail",
            serializer=CHECKPOINTS,
        )
        self.runner = Runner(pipeline, store=self.store, model_spec=model_spec)
        """Derives run ids and records the failed runs of unreadable documents (no DBOS)."""
        self.model_spec = model_spec
        """The model each run is to be answered by (a worker builds it from this)."""
        self.reused: set[str] = set()
        """Run ids `submit` did not queue: the document was run before (same pipeline version
        and model) and its result stands."""
        self._retries: dict[str, datetime | None] = {}
        """Runs queued again after a failure: run id -> the failed attempt's start."""

    def close(self) -> None:
        self._client.destroy()
        self.store.close()

    async def submit(
        self, document: DocumentLike, *, run_id: str | None = None, rerun: bool = False
    ) -> str:
        """Queue one document; returns its run id. A document already run (same pipeline
        version and model) is not queued again unless `rerun` (a new run) or its run failed
        (a retry)."""
        job = self.prepare(document, run_id=run_id, rerun=rerun)
        if job.options is None:
            self.reused.add(job.run_id)
            return job.run_id
        if job.earlier is not None:
            self._retries[job.run_id] = job.earlier.started_at
        await self._client.enqueue_async(job.options, *job.args)
        return job.run_id

    def prepare(
        self, document: DocumentLike, *, run_id: str | None = None, rerun: bool = False
    ) -> Enqueue:
        """What `submit` queues for `document`, without queueing it: its run id, and the
        options and arguments to enqueue it with (`options` None when its run stands)."""
        doc = Document.of(document)
        run_id = run_id or (new_id("run") if rerun else self.runner.run_id_for(doc))
        existing = None if rerun else self.store.get_run(run_id)
        return self.job(doc, run_id, existing)

    def job(self, document: Document, run_id: str, existing: RunRecord | None) -> Enqueue:
        """`prepare` once the run id and the run stored under it (`existing`, None when there
        is none) are known: for a caller that looks many runs up in one query."""
        if existing is not None and existing.status is not RunStatus.FAILED:
            return Enqueue(run_id=run_id, options=None, args=(), earlier=existing)
        options: EnqueueOptions = {
            "workflow_name": run_workflow(self.pipeline.name),
            "queue_name": queue_name(self.pipeline.name),
            "workflow_id": run_workflow_id(run_id, existing),
            "app_version": app_version(),
        }
        args = (run_id, _dump_document(document), _dump_spec(self.model_spec))
        return Enqueue(run_id=run_id, options=options, args=args, earlier=existing)

    def enqueue_in(self, conn: Connection, job: Enqueue) -> None:
        """Queue `job` inside the caller's transaction on the store's database (DBOS's tables
        live there too): the run is queued if and only if the transaction commits."""
        if job.options is not None:
            self._client.enqueue_in_transaction(conn, job.options, *job.args)

    async def wait(
        self, run_ids: Sequence[str], *, poll: float = 0.25, timeout: float | None = None
    ) -> list[RunRecord]:
        """Wait until every run has an outcome (completed, needs review, failed, rejected) and
        return their records, in order."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = list(dict.fromkeys(run_ids))
        records: dict[str, RunRecord] = {}
        while pending:
            still = []
            for run_id in pending:
                record = self.store.get_run(run_id)
                retried = run_id in self._retries  # the failed record stays until the retry ends
                stale = (
                    retried and record is not None and (record.started_at == self._retries[run_id])
                )
                if record is not None and record.status is not RunStatus.RUNNING and not stale:
                    records[run_id] = record
                else:
                    still.append(run_id)
            pending = still
            if pending:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(
                        f"{len(pending)} submitted runs still waiting after {timeout:g}s; is a "
                        "`handrail worker` running for this pipeline on this database?"
                    )
                await asyncio.sleep(poll)
        return [records[r] for r in run_ids]


# --- in-process registry of open runners ----------------------------------------------------

_ACTIVE: dict[str, DurableRunner] = {}


def _runner_for(pipeline: str) -> DurableRunner:
    runner = _ACTIVE.get(pipeline)
    if runner is None:  # pragma: no cover - workflows are registered only while a runner is open
        raise StoreError(f"no durable runner for pipeline `{pipeline}` is open in this process")
    return runner


def _destroy_quietly() -> None:
    with contextlib.suppress(Exception):  # nothing may have been launched
        DBOS.destroy(destroy_registry=True)


# --- checkpoint forms ------------------------------------------------------------------------


def _pack(outcome: Outcome, started_at: datetime, duration: float) -> Outcome:
    """The form of an outcome DBOS checkpoints: outputs as JSON values (node types revive them),
    errors as their type and message (any error replays, whatever its class)."""
    error = outcome.error
    return replace(
        outcome,
        output=to_jsonable_python(outcome.output, fallback=str),
        error=None if error is None else RecordedError.of(error),
        started_at=started_at,
        duration_s=duration,
    )


def _dump_document(doc: Document) -> dict[str, Any]:
    data = _DOCUMENT.dump_python(doc, mode="json", fallback=str)
    assert isinstance(data, dict)
    data.pop("hash", None)  # recomputed from the text
    return data


def _dump_spec(spec: ModelSpec | None) -> dict[str, Any] | None:
    return None if spec is None else spec_json(spec)


def _load_spec(data: Any) -> ModelSpec | None:
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        return None  # a run queued without one: the runner's own model answers it
    return ModelSpec(
        name=data["name"],
        params=dict(data.get("params") or {}),
        record=data.get("record"),
        replay=data.get("replay"),
    )


def _load_document(data: Mapping[str, Any]) -> Document:
    """A document as `_dump_document` wrote it (or as an earlier handrail did: id, text, source
    and metadata only)."""
    return _DOCUMENT.validate_python({**data, "metadata": dict(data.get("metadata") or {})})
