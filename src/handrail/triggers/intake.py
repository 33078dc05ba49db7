"""The one intake path every trigger calls: a document in, its receipt and its queued run out,
committed together (docs/triggers.md).

```python
intake = Intake(pipeline, db="sqlite:///.handrail/handrail.db", model_spec=ModelSpec(name="fake"))
accepted = intake.accept_bytes("http:crm", "order-17", data, name="order.txt", detail={...})
accepted.run_id, accepted.new, accepted.repeat
```

What is committed in one transaction, on the database DBOS shares with the run records: the
receipt (`handrail_receipts`, primary key (source, key)), the queued durable run (DBOS's
`enqueue_in_transaction`, on the pipeline's queue, as `handrail run --submit` queues it) and the
trigger's last pick-up. A trigger acknowledges its source only after `accept` returns, so:

- a crash before the commit leaves nothing: the source still holds the document and delivers it
  again, and it is taken then;
- a crash after the commit, before the source heard of it: the source delivers it again, the
  receipt's key is found, and the answer is the run already queued (`repeat=True`); never a
  second run.

The primary key decides between two processes taking the same key at once: the loser's insert
fails, its transaction (and its queued run) is rolled back, and it answers with the winner's run.

Run ids are `Runner.run_id_for` (pipeline, its version, the model, the content hash), so a
document already run by `handrail run` or another trigger, under any key, is not run again: its
new receipt points at that run (`new=False`). A document whose run failed is retried (a new
workflow for the same run id), as `handrail run` retries it.

A document that cannot be read is not lost either: it gets a failed run (the one `handrail run`
records for a broken file: the same delivery keeps one failed run across retries) and a receipt
pointing at it, and the trigger's last error says why.

Documents taken in at the same moment (the HTTP trigger's concurrent requests) are committed
together: one writer thread per `Intake` puts whatever is waiting into one transaction (a group
commit), and each caller is answered once that transaction committed. A group that fails is
rolled back whole and each of its documents is committed again alone, so one document's
failure (its key taken meanwhile, say) is its own. On SQLite this also keeps the process's
writers from queueing on the database's write lock, whose busy wait sleeps.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from os import PathLike
from pathlib import PurePath
from queue import Empty, SimpleQueue
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from handrail._utils import now
from handrail.core.pipeline import Pipeline
from handrail.core.records import ModelSpec, RunStatus
from handrail.core.state import Document
from handrail.documents import DEFAULT_OPTIONS, LoadOptions, format_for
from handrail.durable import SqlStore, Submitter, schema
from handrail.durable.outbox import Route
from handrail.durable.runner import Enqueue, run_workflow_id
from handrail.durable.serialize import load_run
from handrail.exceptions import InputError
from handrail.inputs import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_FILE_BYTES,
    document_from_bytes,
    max_bytes_for,
)
from handrail.triggers.state import record_error, record_pickup

TEXT_LIMIT = DEFAULT_MAX_BYTES
"""The size limit of a text document (`.txt`, `.md`, `.json`, `.csv`, `.html`), as for files."""
FILE_LIMIT = DEFAULT_MAX_FILE_BYTES
"""The size limit of the other formats (PDFs, images, Office files, e-mails), as for files."""
GROUP = 32
"""The most documents one transaction commits together."""
CHEAP_BYTES = 64 * 1024
"""A plain document (text, Markdown, JSON) this small is read before its key is looked up:
reading it costs less than the query, which the writer then makes for several at once."""
_PLAIN = frozenset({"text/plain", "text/markdown", "application/json"})

# Built once: SQLAlchemy rebuilds (and re-keys) a statement written inline on every call.
_receipts = schema.receipts
_RECEIPT = select(_receipts).where(
    _receipts.c.source == bindparam("source"), _receipts.c.key == bindparam("key")
)
_INSERT_RECEIPT = insert(_receipts)
_RECEIVED = select(_receipts).where(
    _receipts.c.source.in_(bindparam("sources", expanding=True)),
    _receipts.c.key.in_(bindparam("keys", expanding=True)),
)
_POINTED = select(_receipts.c.run_id).where(
    _receipts.c.run_id.in_(bindparam("run_ids", expanding=True))
)
_RUNS = select(schema.runs.c.run_id, schema.runs.c.record).where(
    schema.runs.c.run_id.in_(bindparam("run_ids", expanding=True))
)
_DELIVERED = (
    select(func.min(_receipts.c.received_at).label("received_at"))
    .where(
        _receipts.c.source == bindparam("source"),
        _receipts.c.run_id == bindparam("run_id"),
        _receipts.c.pipeline == bindparam("pipeline"),
    )
    .group_by(_receipts.c.pipeline)
)
_RUN_STATUS = select(schema.runs.c.status).where(schema.runs.c.run_id == bindparam("run_id"))
_REVIEW = (
    select(schema.reviews.c.status)
    .where(schema.reviews.c.run_id == bindparam("run_id"))
    .order_by(schema.reviews.c.created_at.desc())
    .limit(1)
)
# DBOS's table of workflows (its documented system table), in the same database: `dbos` is
# its schema on Postgres; SQLite has none.
_WORKFLOW = {
    name: text(f"SELECT status FROM {table} WHERE workflow_uuid = :workflow_id")
    for name, table in (("sqlite", "workflow_status"), ("postgresql", "dbos.workflow_status"))
}
_STARTED = {"ENQUEUED": "queued", "DELAYED": "queued", "PENDING": "running"}
"""DBOS's workflow states of a run not ended yet, as a run's status."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Receipt:
    """What a trigger took in, keyed at its source."""

    source: str
    """The trigger's name: `http:<source>`, later `folder:...`, `mailbox:...`."""
    key: str
    """The source's own key for what it delivered (an Idempotency-Key, a path and hash...)."""
    pipeline: str
    run_id: str
    received_at: datetime
    detail: dict[str, Any]
    """What the source said about it: name, size, media type, SHA-256; never its text."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Accepted:
    """What `Intake.accept` did with one document."""

    run_id: str
    new: bool
    """True when this delivery queued a run; False for a repeat of its key, a document already
    run (or queued) under another key, and a document that could not be read."""
    repeat: bool
    """True when the source key had been received before: nothing was written."""
    error: str | None = None
    """Why the document could not be read (its run is a failed one), else None."""
    received_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Delivered:
    """Where a run a source delivered stands (`Intake.delivered`): never its document nor its
    outputs."""

    run_id: str
    pipeline: str
    received_at: datetime
    """When the source's first document pointing at this run was taken in."""
    status: str
    """`queued` (not started), `running`, or the run's end or pause: `needs_review`,
    `completed`, `failed`, `rejected`."""
    review: str | None
    """The run's latest review: `pending` (waiting for a person) or `decided`; None when the
    run has had none."""


class Intake:
    """Takes documents in for `pipeline`'s queue, each exactly once per source key.

    - `db`: the database URL or SQLite path (default `HANDRAIL_DATABASE_URL`, else
      `.handrail/handrail.db`): the run records', DBOS's, the receipts';
    - `model_spec`: the model the runs are answered by (a worker builds it from this), and part
      of their run ids, as for `handrail run --model`;
    - `options`: how documents are read (OCR, PDF password...);
    - `routes`: the notification channels (`Notifications.routes`): a document that fails is
      announced as `run.failed`, a trigger that fails as `trigger.failed` (docs/notifications.md).

    Synchronous and thread-safe: it talks to the database; call it from threads in async code.
    Concurrent calls are committed together (module docstring); `close` ends its writer thread.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        db: str | PathLike[str] | None = None,
        model_spec: ModelSpec | None = None,
        options: LoadOptions = DEFAULT_OPTIONS,
        routes: Sequence[Route] = (),
    ) -> None:
        self.pipeline = pipeline
        self.options = options
        self._submitter = Submitter(pipeline, db=db, model_spec=model_spec)
        self.store: SqlStore = self._submitter.store
        self.store.notify_to(routes)
        self._writer = _Writer(self)

    def close(self) -> None:
        self._writer.stop()
        self._submitter.close()

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def receipt(self, source: str, key: str) -> Receipt | None:
        """The receipt of `key` from `source`, if it was taken in."""
        with self.store.reading() as conn:
            row = conn.execute(_RECEIPT, {"source": source, "key": key}).first()
        return None if row is None else Receipt(**row._asdict())

    def delivered(self, source: str, run_id: str) -> Delivered | None:
        """Where run `run_id` stands, if a receipt of `source` for this pipeline points at it
        (None for another source's run and for a run that does not exist alike)."""
        pipeline = self.pipeline.name
        with self.store.reading() as conn:
            taken = conn.execute(
                _DELIVERED, {"source": source, "run_id": run_id, "pipeline": pipeline}
            ).first()
            if taken is None:
                return None
            recorded = conn.execute(_RUN_STATUS, {"run_id": run_id}).scalar()
            review = None
            if recorded is not None:
                review = conn.execute(_REVIEW, {"run_id": run_id}).scalar()
            status = None if recorded is None else str(recorded)
            workflow = run_id
            if recorded == RunStatus.FAILED.value:  # a failed run may be queued again
                workflow = run_workflow_id(run_id, self.store.get_run(run_id))
            if recorded is None or workflow != run_id:
                state = _workflow_state(conn, self.store.dialect, workflow)
                if state in _STARTED:
                    status = _STARTED[state]
                elif recorded is None:  # not started, or ended without a record (it failed)
                    status = "queued" if state is None else RunStatus.FAILED.value
        return Delivered(
            run_id=run_id,
            pipeline=pipeline,
            received_at=taken.received_at,
            status=status or "queued",
            review=review,
        )

    def accept_bytes(
        self,
        source: str,
        key: str,
        data: bytes,
        *,
        name: str,
        media_type: str | None = None,
        document_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> Accepted:
        """`accept` for the bytes of a file called `name` (its suffix, else `media_type`, says
        how it is read): a document that cannot be read gets a failed run, never dropped."""
        # A repeat is found before the document is read again, except for a small plain one
        # (reading it costs less than a query): its key is looked up in the writer's
        # transaction, with the others that came in together.
        cheap = len(data) <= CHEAP_BYTES and _plain(name, media_type)
        if not cheap:
            found = self.receipt(source, key)
            if found is not None:  # a repeat costs one query
                return _repeat(found)
        document = read_document(
            data,
            name=name,
            media_type=media_type,
            document_id=document_id or name,
            source=source,
            options=self.options,
        )
        looked = not cheap
        if not looked and isinstance(document, InputError):  # its failed run is saved first
            found = self.receipt(source, key)
            if found is not None:
                return _repeat(found)
            looked = True
        sha256 = hashlib.sha256(data).hexdigest()
        told = {"name": name, "size": len(data), "media_type": media_type, "sha256": sha256}
        return self._take(source, key, document, detail=told | (detail or {}), looked=looked)

    def accept(
        self,
        source: str,
        key: str,
        document: Document | InputError,
        *,
        detail: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> Accepted:
        """Record the receipt of `key` from `source` and queue `document`'s run, in one
        transaction; a repeat of the key answers with the run it queued. An `InputError` in the
        document's place (it could not be read) gets a failed run and a receipt. `run_id`
        replaces the one derived from the content (a schedule's tick has a run of its own)."""
        found = self.receipt(source, key)
        if found is not None:
            return _repeat(found)
        return self._take(source, key, document, detail=detail, run_id=run_id)

    def _take(
        self,
        source: str,
        key: str,
        document: Document | InputError,
        *,
        detail: dict[str, Any] | None,
        run_id: str | None = None,
        looked: bool = True,
    ) -> Accepted:
        """`accept` once the key was looked up and not found (`looked`; else the writer looks
        it up): hands the document to the writer and returns once its transaction committed
        (the primary key still decides a race: the loser answers with the winner's run)."""
        if isinstance(document, InputError):
            # saved before the receipt, with an id derived from the document's name and the
            # problem: a crash in between leaves a failed run the retry saves again, not two
            failed = self._submitter.runner.failed_input(document)
            taking = _Taking(
                source=source,
                key=key,
                run_id=failed.run_id,
                document=None,
                error=str(document),
                received_at=now(),
                detail=detail or {},
                looked=True,
            )
        else:
            taking = _Taking(
                source=source,
                key=key,
                run_id=run_id or self._submitter.runner.run_id_for(document),
                document=document,
                error=None,
                received_at=now(),
                detail=detail or {},
                looked=looked,
            )
        return self._writer.commit(taking)

    # --- what the writer thread runs ------------------------------------------------------------

    def _write(self, conn: Connection, group: Sequence[_Taking]) -> list[Accepted]:
        """The group's receipts, queued runs and pick-ups, in the caller's transaction (any
        error is raised: the caller rolls it back); a key received before answers with its
        run, and nothing is written for it."""
        pipeline = self.pipeline.name
        before = self._received(conn, [t for t in group if not t.looked])
        taken = [t for t in group if (t.source, t.key) not in before]
        answers = {pair: _repeat(receipt) for pair, receipt in before.items()}
        jobs = self._jobs(conn, taken)
        # a run some receipt points at already (or an earlier one of the group) was queued by
        # that delivery: this one is not new
        firsts = [job.run_id for job in jobs if _first_workflow(job)]
        pointed = set(conn.execute(_POINTED, {"run_ids": firsts}).scalars()) if firsts else set()
        if taken:
            conn.execute(
                _INSERT_RECEIPT,
                [
                    {
                        "source": t.source,
                        "key": t.key,
                        "pipeline": pipeline,
                        "run_id": t.run_id,
                        "received_at": t.received_at,
                        "detail": t.detail,
                    }
                    for t in taken
                ],
            )
        for taking, job in zip(taken, jobs, strict=True):
            new = job.options is not None and not (_first_workflow(job) and job.run_id in pointed)
            pointed.add(job.run_id)
            self._submitter.enqueue_in(conn, job)
            answers[taking.source, taking.key] = Accepted(
                run_id=job.run_id,
                new=new,
                repeat=False,
                error=taking.error,
                received_at=taking.received_at,
            )
        for source in dict.fromkeys(t.source for t in taken):
            record_pickup(conn, name=source, kind=source.partition(":")[0], pipeline=pipeline)
        return [answers[t.source, t.key] for t in group]

    def _received(
        self, conn: Connection, group: Sequence[_Taking]
    ) -> dict[tuple[str, str], Receipt]:
        """The receipts of the group's keys already in the database, by (source, key)."""
        if not group:
            return {}
        wanted = {(t.source, t.key) for t in group}
        rows = conn.execute(
            _RECEIVED,
            {"sources": sorted({s for s, _ in wanted}), "keys": sorted({k for _, k in wanted})},
        )
        found = (Receipt(**row._asdict()) for row in rows)
        return {(r.source, r.key): r for r in found if (r.source, r.key) in wanted}

    def _jobs(self, conn: Connection, group: Sequence[_Taking]) -> list[Enqueue]:
        """What to queue for each of the group, as `Submitter.prepare` decides it (a run that
        stands is not queued again, a failed one is retried), its runs looked up in one query."""
        wanted = [t.run_id for t in group if t.document is not None]
        stored = {}
        if wanted:
            found = conn.execute(_RUNS, {"run_ids": wanted})
            stored = {run_id: load_run(record) for run_id, record in found}
        return [
            Enqueue(run_id=t.run_id, options=None, args=())  # a failed run, saved already
            if t.document is None
            else self._submitter.job(t.document, t.run_id, stored.get(t.run_id))
            for t in group
        ]

    def _commit_group(self, group: Sequence[_Taking]) -> list[Accepted]:
        """Several documents in one transaction; any error rolls back all (and is raised)."""
        with self.store.transaction() as conn:
            answers = self._write(conn, group)
        for taking, answer in zip(group, answers, strict=True):
            if taking.error is not None and not answer.repeat:
                self._note(taking, taking.error, announce=False)
        return answers

    def _commit_one(self, taking: _Taking) -> Accepted:
        """One document in a transaction of its own: a key taken meanwhile answers with the
        winner's run; another error is noted on the trigger and raised."""
        try:
            with self.store.transaction() as conn:
                [answer] = self._write(conn, [taking])
        except IntegrityError:  # another process took this key first: its run is the answer
            winner = self.receipt(taking.source, taking.key)
            if winner is None:  # not a receipt's key after all
                raise
            return _repeat(winner)
        except Exception as e:
            first = str(e).splitlines()[0] if str(e) else ""  # not the SQL and its parameters
            self._note(taking, f"{type(e).__name__}: {first}")
            raise
        if taking.error is not None and not answer.repeat:
            self._note(taking, taking.error, announce=False)
        return answer

    def _note(self, taking: _Taking, error: str, *, announce: bool = True) -> None:
        kind = taking.source.partition(":")[0]
        try:
            record_error(
                self.store,
                name=taking.source,
                kind=kind,
                pipeline=self.pipeline.name,
                error=error[:1000],
                key=taking.key,
                announce=announce,
            )
        except Exception:  # the error that brought us here is the one to report
            return


@dataclass(kw_only=True, slots=True)
class _Taking:
    """One document on its way in: what its transaction writes, and its caller's answer."""

    source: str
    key: str
    run_id: str
    document: Document | None
    """The document whose run is to be queued; None for one that could not be read."""
    error: str | None
    received_at: datetime
    detail: dict[str, Any]
    looked: bool
    """Whether the key was looked up, and not found, before (else the writer looks)."""
    answer: Future[Accepted] = field(default_factory=Future)


class _Writer:
    """An `Intake`'s one writer thread: commits the documents handed to it, as many as are
    waiting (up to `GROUP`) in one transaction. Nothing waits for company: a document that comes
    alone is committed alone at once; those that arrive while a commit is under way go together
    in the next one."""

    def __init__(self, intake: Intake) -> None:
        self._intake = intake
        self._queue: SimpleQueue[_Taking | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def commit(self, taking: _Taking) -> Accepted:
        """Commit `taking`; returns (or raises) once its transaction has ended."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="handrail-intake-writer", daemon=True
                )
                self._thread.start()
            self._queue.put(taking)
        return taking.answer.result()

    def stop(self) -> None:
        """End the thread once what was handed to it is committed."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            stopping = False
            while len(group) < GROUP:
                try:
                    taking = self._queue.get_nowait()
                except Empty:
                    break
                if taking is None:
                    stopping = True
                    break
                group.append(taking)
            self._commit(group)
            if stopping:
                return

    def _commit(self, group: list[_Taking]) -> None:
        intake = self._intake
        try:
            if len(group) > 1:
                try:
                    answers = intake._commit_group(group)
                except Exception:  # rolled back whole: each again alone, with its own answer
                    pass
                else:
                    for taking, answer in zip(group, answers, strict=True):
                        taking.answer.set_result(answer)
                    return
            for taking in group:
                try:
                    taking.answer.set_result(intake._commit_one(taking))
                except Exception as e:  # the caller's to raise, in its own thread
                    taking.answer.set_exception(e)
        except BaseException as e:  # never leave a caller waiting for an answer
            for taking in group:
                if not taking.answer.done():
                    taking.answer.set_exception(e)


def read_document(
    data: bytes,
    *,
    name: str,
    media_type: str | None,
    document_id: str,
    source: str,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> Document | InputError:
    """The document in `data` (read by the loader `name`'s suffix, else `media_type`, calls
    for), named `document_id`; or the `InputError` saying why it cannot be used (the message
    names the problem, never the text). The size limit and the reader are `handrail run`'s."""
    limit = size_limit(name, media_type)
    if len(data) > limit:
        return InputError(
            f"`{name}` is over the {limit // (1024 * 1024)} MB limit; trim or split it",
            document_id=document_id,
        )
    return document_from_bytes(data, document_id, source, options, media_type=media_type, name=name)


def size_limit(name: str, media_type: str | None) -> int:
    """The size limit of a document called `name`: 5 MB for text formats, 50 MB for others."""
    return max_bytes_for(format_for(name, media_type))


def supported(name: str, media_type: str | None) -> bool:
    """Whether a file called `name` (or of `media_type`) is of a format handrail reads."""
    return format_for(PurePath(name).name, media_type) is not None


def _plain(name: str, media_type: str | None) -> bool:
    """Whether a file called `name` (or of `media_type`) is read by decoding it (text, JSON)."""
    found = format_for(name, media_type)
    return found is not None and found.media_type in _PLAIN


def _first_workflow(job: Enqueue) -> bool:
    """Whether `job` queues its run's first workflow (not a retry of a failed one)."""
    return job.options is not None and job.options["workflow_id"] == job.run_id


def _workflow_state(conn: Connection, dialect: str, workflow_id: str) -> str | None:
    """DBOS's status of workflow `workflow_id` (`ENQUEUED`, `PENDING`, `SUCCESS`...), if any."""
    query = _WORKFLOW.get(dialect)
    found = None if query is None else conn.execute(query, {"workflow_id": workflow_id}).scalar()
    return None if found is None else str(found)


def _repeat(receipt: Receipt) -> Accepted:
    return Accepted(run_id=receipt.run_id, new=False, repeat=True, received_at=receipt.received_at)


__all__ = [
    "FILE_LIMIT",
    "TEXT_LIMIT",
    "Accepted",
    "Delivered",
    "Intake",
    "Receipt",
    "read_document",
    "size_limit",
    "supported",
]
