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
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from os import PathLike
from pathlib import PurePath
from typing import Any

from sqlalchemy import and_, insert, not_, select
from sqlalchemy.exc import IntegrityError

from handrail._utils import now
from handrail.core.pipeline import Pipeline
from handrail.core.records import ModelSpec
from handrail.core.state import Document
from handrail.documents import DEFAULT_OPTIONS, LoadOptions, format_for
from handrail.durable import SqlStore, Submitter, schema
from handrail.durable.outbox import Route
from handrail.durable.runner import Enqueue
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


class Intake:
    """Takes documents in for `pipeline`'s queue, each exactly once per source key.

    - `db`: the database URL or SQLite path (default `HANDRAIL_DATABASE_URL`, else
      `.handrail/handrail.db`): the run records', DBOS's, the receipts';
    - `model_spec`: the model the runs are answered by (a worker builds it from this), and part
      of their run ids, as for `handrail run --model`;
    - `options`: how documents are read (OCR, PDF password...);
    - `routes`: the notification channels (`Notifications.routes`): a document that fails is
      announced as `run.failed`, a trigger that fails as `trigger.failed` (docs/notifications.md).

    Synchronous: it talks to the database; call it from a thread in async code.
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

    def close(self) -> None:
        self._submitter.close()

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def receipt(self, source: str, key: str) -> Receipt | None:
        """The receipt of `key` from `source`, if it was taken in."""
        table = schema.receipts
        query = select(table).where(table.c.source == source, table.c.key == key)
        with self.store.reading() as conn:
            row = conn.execute(query).first()
        return None if row is None else Receipt(**row._asdict())

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
        found = self.receipt(source, key)
        if found is not None:  # before reading it again: a repeat costs one query
            return _repeat(found)
        document = read_document(
            data,
            name=name,
            media_type=media_type,
            document_id=document_id or name,
            source=source,
            options=self.options,
        )
        sha256 = hashlib.sha256(data).hexdigest()
        told = {"name": name, "size": len(data), "media_type": media_type, "sha256": sha256}
        return self._take(source, key, document, detail=told | (detail or {}))

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
    ) -> Accepted:
        """`accept` once the key was looked up and not found (the primary key still decides a
        race: the loser answers with the winner's run)."""
        error = str(document) if isinstance(document, InputError) else None
        if isinstance(document, InputError):
            # saved before the receipt, with an id derived from the document's name and the
            # problem: a crash in between leaves a failed run the retry saves again, not two
            failed = self._submitter.runner.failed_input(document)
            job = Enqueue(run_id=failed.run_id, options=None, args=())
        else:
            job = self._submitter.prepare(document, run_id=run_id)
        kind = source.partition(":")[0]
        at = now()
        table = schema.receipts
        row = {
            "source": source,
            "key": key,
            "pipeline": self.pipeline.name,
            "run_id": job.run_id,
            "received_at": at,
            "detail": detail or {},
        }
        try:
            with self.store.transaction() as conn:
                conn.execute(insert(table).values(**row))
                shared = conn.execute(
                    select(table.c.key)
                    .where(
                        table.c.run_id == job.run_id,
                        not_(and_(table.c.source == source, table.c.key == key)),
                    )
                    .limit(1)
                ).first()
                first_workflow = (
                    job.options is not None and job.options["workflow_id"] == job.run_id
                )
                new = job.options is not None and not (first_workflow and shared is not None)
                self._submitter.enqueue_in(conn, job)
                record_pickup(conn, name=source, kind=kind, pipeline=self.pipeline.name)
        except IntegrityError:  # another process took this key first: its run is the answer
            winner = self.receipt(source, key)
            if winner is None:  # not a receipt's key after all
                raise
            return _repeat(winner)
        except Exception as e:
            first = str(e).splitlines()[0] if str(e) else ""  # not the SQL and its parameters
            _note(self.store, source, key, kind, self.pipeline.name, f"{type(e).__name__}: {first}")
            raise
        if error is not None:
            _note(self.store, source, key, kind, self.pipeline.name, error, announce=False)
        return Accepted(run_id=job.run_id, new=new, repeat=False, error=error, received_at=at)


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


def _repeat(receipt: Receipt) -> Accepted:
    return Accepted(run_id=receipt.run_id, new=False, repeat=True, received_at=receipt.received_at)


def _note(
    store: SqlStore, source: str, key: str, kind: str, pipeline: str, error: str, **how: bool
) -> None:
    try:
        record_error(
            store, name=source, kind=kind, pipeline=pipeline, error=error[:1000], key=key, **how
        )
    except Exception:  # the error that brought us here is the one to report
        return


__all__ = [
    "FILE_LIMIT",
    "TEXT_LIMIT",
    "Accepted",
    "Intake",
    "Receipt",
    "read_document",
    "size_limit",
    "supported",
]
