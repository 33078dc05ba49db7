"""Each trigger's row in `handrail_triggers`: its kind, pipeline, last pick-up and last error.

A pick-up is written in the transaction that records the receipt and queues the run, so the row
never claims a document the database does not hold; an error is written on its own (the
transaction that failed is gone).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from handrail._utils import now, one_line
from handrail.durable import SqlStore, schema


@dataclass(frozen=True, kw_only=True, slots=True)
class TriggerState:
    """What `handrail_triggers` says of one trigger."""

    name: str
    """`http:<source>`, later `folder:<path>`, `mailbox:<account>`..."""
    kind: str
    """`http`, `folder`, `mailbox`, `schedule`."""
    pipeline: str
    last_pickup_at: datetime | None
    last_error: str | None
    """The last problem, one line (never a secret, never a document's text)."""
    last_error_at: datetime | None
    updated_at: datetime


def record_pickup(conn: Connection, *, name: str, kind: str, pipeline: str) -> None:
    """Note, in the caller's transaction, that trigger `name` took something in now."""
    at = now()
    _upsert(conn, name=name, kind=kind, pipeline=pipeline, values={"last_pickup_at": at}, at=at)


def record_error(
    store: SqlStore,
    *,
    name: str,
    kind: str,
    pipeline: str,
    error: str,
    key: str,
    announce: bool = True,
) -> None:
    """Note that trigger `name` failed to take in what its source calls `key`, and (with
    `announce`) announce it as `trigger.failed` to the channels that want it, in one
    transaction of its own. A document that was taken in but cannot be read is not announced
    here: its failed run is (`run.failed`)."""
    at = now()
    with store.transaction() as conn:
        values = {"last_error": error, "last_error_at": at}
        _upsert(conn, name=name, kind=kind, pipeline=pipeline, values=values, at=at)
        if not announce:
            return
        store.record_event(
            "trigger.failed",
            event_id=f"trigger.failed:{name}:{key}",
            payload={"trigger": name, "pipeline": pipeline, "key": key, "error": error},
            at=at,
            conn=conn,
        )


def report_error(
    store: SqlStore,
    *,
    name: str,
    kind: str,
    pipeline: str,
    error: str,
    key: str,
    log: logging.Logger,
) -> None:
    """Log `error` and record it as trigger `name`'s last error, announced as
    `trigger.failed` (`record_error`); a database that cannot be written is logged, never
    raised: what failed stays at its source, to be taken again."""
    log.warning("%s: %s", name, error)
    try:
        record_error(store, name=name, kind=kind, pipeline=pipeline, error=error[:1000], key=key)
    except Exception as e:
        log.warning("%s: could not record an error: %s", name, one_line(e))


def trigger_states(store: SqlStore) -> list[TriggerState]:
    """Every trigger's row, by name."""
    table = schema.triggers
    query = select(
        table.c.name,
        table.c.kind,
        table.c.pipeline,
        table.c.last_pickup_at,
        table.c.last_error,
        table.c.last_error_at,
        table.c.updated_at,
    ).order_by(table.c.name)
    with store.reading() as conn:
        rows = conn.execute(query).all()
    return [TriggerState(**row._asdict()) for row in rows]


def _upsert(
    conn: Connection, *, name: str, kind: str, pipeline: str, values: dict[str, Any], at: datetime
) -> None:
    table = schema.triggers
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    changes = {"kind": kind, "pipeline": pipeline, "updated_at": at, **values}
    stmt = (
        dialect.insert(table)
        .values(name=name, **changes)
        .on_conflict_do_update(index_elements=[table.c.name], set_=changes)
    )
    conn.execute(stmt)


__all__ = ["TriggerState", "record_error", "record_pickup", "report_error", "trigger_states"]
