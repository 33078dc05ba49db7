"""The audit trail: an append-only table (`handrail_audit`) whose rows are chained by hashes.

Each row's `hash` is the sha256 of the canonical JSON (sorted keys, no spaces, UTF-8) of
`[seq, at, actor, action, review_id, run_id, queue, detail, prev_hash]`, where `at` is the ISO
time in UTC with microseconds and `prev_hash` is the previous row's hash (64 zeros for the
first). Editing a row changes its hash, and deleting one leaves a gap in `seq` or a `prev_hash`
that names nothing: `verify` finds both. Triggers refuse UPDATE and DELETE in the database; the
chain catches whoever drops them.

Appends are serialised, so `seq` has no gaps and each row names the last one before it: on
Postgres by a transaction-scoped advisory lock taken last in the writer's transaction (nobody
waits on a row while holding it), on SQLite by the write transaction itself.

`AuditTrail` holds the store's methods (`append_audit`, `audit_entries`, `verify_audit`); the
functions below write and check rows inside a caller's transaction.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, Row, func, insert, select

from handrail._utils import now
from handrail.durable import schema

GENESIS = "0" * 64
"""The `prev_hash` of the first row."""

T = TypeVar("T")

_APPEND_LOCK = 0x61756474  # "audt": serialises audit appends between Postgres sessions
_BATCH = 1000  # rows verify reads at a time


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEntry:
    """One row of the audit trail."""

    seq: int
    """Its position, from 1, without gaps."""
    at: datetime
    """When it happened (UTC)."""
    actor: str
    """Who did it: a reviewer's name, `cli`, `handrail (deadline)`, or `unknown`."""
    action: str
    """`decide`, `escalate`, `claim`, `release`, `sign_in`, `sign_out`, `reviewer_added`,
    `reviewer_removed`, `schema_migrated`, or what `append_audit` was given."""
    review_id: str | None
    run_id: str | None
    queue: str | None
    """The review's queue when it happened."""
    detail: Mapping[str, Any]
    """What was done, e.g. for a decision its action, reason and changed fields."""
    prev_hash: str
    """The previous row's `hash` (64 zeros for the first row)."""
    hash: str
    """sha256 over this row's fields and `prev_hash` (see the module's docstring)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditCheck:
    """What `verify_audit` found."""

    ok: bool
    """True when every row's hash and link is intact."""
    rows: int
    """How many rows were checked (up to the first bad one)."""
    first_bad: int | None
    """The seq of the first row that does not check out."""
    problem: str | None
    """What is wrong with it, naming the seq and what differs."""


class AuditTrail:
    """The store's audit methods (mixed into `SqlStore`)."""

    dialect: str
    _writer: Engine

    if TYPE_CHECKING:

        def _call(self, work: Callable[[], T]) -> T: ...

        def _read(self, query: Callable[[Connection], T]) -> T: ...

    def append_audit(
        self,
        *,
        actor: str,
        action: str,
        review_id: str | None = None,
        run_id: str | None = None,
        queue: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append a row to the audit trail (its own transaction)."""
        stamp = now()

        def work() -> AuditEntry:
            with self._writer.begin() as conn:
                return append(
                    conn,
                    at=stamp,
                    actor=actor,
                    action=action,
                    review_id=review_id,
                    run_id=run_id,
                    queue=queue,
                    detail=detail,
                )

        return self._call(work)

    def audit_entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        review_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Audit rows in seq order: by `actor`, of `action`, on `review_id`, at or after
        `since` and before `until`, after `after_seq` (to page), at most `limit`."""
        table = schema.audit
        query = select(table).where(table.c.seq > after_seq).order_by(table.c.seq)
        if actor is not None:
            query = query.where(table.c.actor == actor)
        if action is not None:
            query = query.where(table.c.action == action)
        if review_id is not None:
            query = query.where(table.c.review_id == review_id)
        if since is not None:
            query = query.where(table.c.at >= since)
        if until is not None:
            query = query.where(table.c.at < until)
        if limit is not None:
            query = query.limit(limit)
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).all()))
        return [entry(row) for row in rows]

    def verify_audit(self) -> AuditCheck:
        """Re-check every row's hash and its link to the row before."""
        table = schema.audit

        def read(after: int) -> list[Any]:
            query = select(table).where(table.c.seq > after).order_by(table.c.seq).limit(_BATCH)
            return self._call(lambda: self._read(lambda conn: list(conn.execute(query).all())))

        return verify(batches(read))


def canonical(value: Any) -> str:
    """The JSON text that is hashed and stored: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def iso(at: datetime) -> str:
    """The time as hashed: ISO 8601 in UTC with microseconds."""
    moment = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    return moment.isoformat(timespec="microseconds")


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    review_id: str | None,
    run_id: str | None,
    queue: str | None,
    detail: Mapping[str, Any],
    prev_hash: str,
) -> str:
    fields = [seq, iso(at), actor, action, review_id, run_id, queue, dict(detail), prev_hash]
    return hashlib.sha256(canonical(fields).encode("utf-8")).hexdigest()


def append(
    conn: Connection,
    *,
    at: datetime,
    actor: str,
    action: str,
    review_id: str | None = None,
    run_id: str | None = None,
    queue: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append a row in the caller's write transaction (take no row lock after calling this)."""
    table = schema.audit
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_APPEND_LOCK)))
    last = conn.execute(
        select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)
    ).first()
    seq, prev_hash = (1, GENESIS) if last is None else (last.seq + 1, last.hash)
    # Through JSON and back, so the hash covers what a reader will load (tuples become lists).
    shown: dict[str, Any] = json.loads(canonical(dict(detail or {})))
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    values: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "actor": actor,
        "action": action,
        "review_id": review_id,
        "run_id": run_id,
        "queue": queue,
    }
    digest = entry_hash(**values, detail=shown, prev_hash=prev_hash)
    conn.execute(
        insert(table).values(**values, detail=canonical(shown), prev_hash=prev_hash, hash=digest)
    )
    return AuditEntry(**values, detail=shown, prev_hash=prev_hash, hash=digest)


def entry(row: Row[Any]) -> AuditEntry:
    return AuditEntry(
        seq=row.seq,
        at=row.at,
        actor=row.actor,
        action=row.action,
        review_id=row.review_id,
        run_id=row.run_id,
        queue=row.queue,
        detail=json.loads(row.detail),
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def verify(batches: Iterator[list[Row[Any]]]) -> AuditCheck:
    """Check the chain over the rows in seq order (given in batches)."""
    checked, expected_seq, prev = 0, 1, GENESIS

    def bad(seq: int, problem: str) -> AuditCheck:
        return AuditCheck(ok=False, rows=checked, first_bad=seq, problem=problem)

    for batch in batches:
        for row in batch:
            seq = row.seq
            if seq != expected_seq:
                missing = (
                    f"row {expected_seq}"
                    if seq == expected_seq + 1
                    else f"rows {expected_seq} to {seq - 1}"
                )
                return bad(
                    seq, f"audit row {seq} follows row {expected_seq - 1}: {missing} missing"
                )
            try:
                detail = json.loads(row.detail)
            except ValueError:
                return bad(seq, f"audit row {seq}: its detail is not JSON (changed by hand)")
            if row.prev_hash != prev:
                return bad(
                    seq,
                    f"audit row {seq}: prev_hash {row.prev_hash[:12]}... does not match the hash "
                    f"of row {seq - 1} ({prev[:12]}...): a row was replaced or removed",
                )
            digest = entry_hash(
                seq=seq,
                at=row.at,
                actor=row.actor,
                action=row.action,
                review_id=row.review_id,
                run_id=row.run_id,
                queue=row.queue,
                detail=detail,
                prev_hash=row.prev_hash,
            )
            if digest != row.hash:
                return bad(
                    seq,
                    f"audit row {seq}: its contents do not match its hash (stored "
                    f"{row.hash[:12]}..., computed {digest[:12]}...): it was changed after it "
                    "was written",
                )
            checked, expected_seq, prev = checked + 1, seq + 1, row.hash
    return AuditCheck(ok=True, rows=checked, first_bad=None, problem=None)


def batches(read: Callable[[int], list[Row[Any]]]) -> Iterator[list[Row[Any]]]:
    """Rows in seq order, `read(after_seq)` at a time, until it returns none."""
    after = 0
    while True:
        rows = read(after)
        if not rows:
            return
        yield rows
        after = rows[-1].seq


def changed_fields(before: Any, after: Any, path: str = "") -> dict[str, list[Any]]:
    """The leaf fields that differ between two JSON values: {`a.b.0.c`: [before, after]}.
    A field present on one side only has None on the other."""
    if isinstance(before, dict) and isinstance(after, dict):
        found: dict[str, list[Any]] = {}
        for key in [*before, *(k for k in after if k not in before)]:
            found |= changed_fields(before.get(key), after.get(key), _join(path, str(key)))
        return found
    if isinstance(before, list) and isinstance(after, list):
        found = {}
        for i in range(max(len(before), len(after))):
            found |= changed_fields(
                before[i] if i < len(before) else None,
                after[i] if i < len(after) else None,
                _join(path, str(i)),
            )
        return found
    if before == after and isinstance(before, bool) == isinstance(after, bool):  # 1 == 1.0
        return {}
    if before is None and isinstance(after, dict | list):
        return changed_fields(_empty(after), after, path) or {path or "$": [before, after]}
    if after is None and isinstance(before, dict | list):
        return changed_fields(before, _empty(before), path) or {path or "$": [before, after]}
    return {path or "$": [before, after]}


def _empty(like: dict[str, Any] | list[Any]) -> dict[str, Any] | list[Any]:
    return {} if isinstance(like, dict) else []


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
