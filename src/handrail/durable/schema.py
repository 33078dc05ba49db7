"""The run-record tables, in the same database as DBOS's own (hence the `handrail_` prefix).

```
handrail_meta     one row: schema version, the handrail version that created or last migrated it
handrail_runs     one row per run: the columns people filter on, plus the whole `RunRecord`
handrail_steps    the step checkpoints: (run_id, seq) in the order they were first saved
handrail_reviews  the review queue: the request, and the decision once there is one
handrail_pipelines where each pipeline's code lives (its CLI target), so `handrail review` can
                  validate an edit and continue a run without being told the target again
handrail_reviewers the people who decide: their queues, whether they lead, their token's hash
handrail_sessions  signed-in browser sessions (the cookie's hash, never the cookie)
handrail_claims    who is working on a pending review, until when (a lease)
handrail_audit     append-only, hash-chained: every decision, escalation, claim, sign-in
handrail_receipts  what each trigger took in, keyed at its source (a file's path and hash, a
                   message's UIDVALIDITY/UID/Message-ID, a request's Idempotency-Key), and the
                   run it queued: written in the transaction that queues the run, so a repeat
                   of the key is answered with that run and never queued twice
handrail_triggers  each trigger's state: its cursor (e.g. a mailbox's UIDVALIDITY and last
                   UID), its last pick-up and its last error
handrail_outbox    notifications to send: one row per (event, channel), written in the
                   transaction of the event it announces, marked delivered once sent
handrail_examples  reviews that became labelled examples (`learn_from_reviews=True`): the
                   document's text and the output as decided, written in the decision's
                   transaction; removed ones keep their row, with when and why
```

Version 2 added the reviewer, session, claim and audit tables and the review's `queue` and
`escalated` columns; version 3 the receipts, triggers and outbox tables; version 4 the examples
table (`migrate` upgrades an older database in place).

Every `record`/`request`/`decision` column holds the full record as JSON (pydantic's JSON mode);
the other columns are copies for filtering and sorting. JSON, not JSONB: Postgres keeps the text
as written, so an output's keys come back in their order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    false,
    text,
)
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 4
"""Bump when the tables change, and add the step that upgrades the previous version."""


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (UTC).

    Postgres keeps `timestamptz`; SQLite has no time zones, so the UTC wall time is stored (a
    naive value given to the store is taken to be UTC already).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _json() -> JSON:
    return JSON(none_as_null=True)


metadata = MetaData()

meta = Table(
    "handrail_meta",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("schema_version", Integer, nullable=False),
    Column("handrail_version", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    CheckConstraint("id = 1", name="handrail_meta_one_row"),
)

runs = Table(
    "handrail_runs",
    metadata,
    Column("run_id", String(200), primary_key=True),
    Column("pipeline", String(200), nullable=False),
    Column("document_id", Text, nullable=False),
    Column("document_hash", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", UtcDateTime),
    Column("ended_at", UtcDateTime),
    Column("duration_s", Float, nullable=False),
    Column("tokens", Integer, nullable=False),
    Column("cost", Float),
    Column("error_type", String(200)),
    Column("record", _json(), nullable=False),
    Index("handrail_runs_started_at", "started_at"),
    Index("handrail_runs_status", "status"),
    Index("handrail_runs_document_hash", "document_hash"),
)

steps = Table(
    "handrail_steps",
    metadata,
    Column("run_id", String(200), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("node", String(200), nullable=False),
    Column("visit", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("started_at", UtcDateTime),
    Column("duration_s", Float, nullable=False),
    Column("record", _json(), nullable=False),
    PrimaryKeyConstraint("run_id", "seq", name="handrail_steps_pk"),
    # What makes a step record the same one again when a recovered workflow replays it.
    UniqueConstraint("run_id", "node", "visit", "status", name="handrail_steps_identity"),
)

reviews = Table(
    "handrail_reviews",
    metadata,
    Column("review_id", String(200), primary_key=True),
    Column(
        "run_id",
        String(200),
        ForeignKey("handrail_runs.run_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("pipeline", String(200), nullable=False),
    Column("node", String(200), nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("request", _json(), nullable=False),
    Column("decision", _json()),
    Column("decided_at", UtcDateTime),
    Column("reviewer", String(200)),
    # when a pending review escalates (a copy of the request's, cleared once escalated)
    Column("deadline", UtcDateTime),
    # copies of the request's queue and whether it escalated, for the inbox (version 2)
    Column("queue", String(200), nullable=False, server_default="default"),
    Column("escalated", Boolean, nullable=False, server_default=false()),
    CheckConstraint("status IN ('pending', 'decided')", name="handrail_reviews_status"),
    Index("handrail_reviews_queue", "status", "created_at"),
    Index("handrail_reviews_inbox", "status", "queue", "created_at"),
    Index("handrail_reviews_deadline", "status", "deadline"),
    Index("handrail_reviews_run", "run_id"),
)

pipelines = Table(
    "handrail_pipelines",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("target", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

reviewers = Table(
    "handrail_reviewers",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("queues", _json(), nullable=False),  # a list of queue names; ["*"]: every queue
    Column("lead", Boolean, nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex of the token
    Column("created_at", UtcDateTime, nullable=False),
    Column("disabled_at", UtcDateTime),
)

sessions = Table(
    "handrail_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),  # sha256 hex of the cookie's value
    Column(
        "reviewer",
        String(100),
        ForeignKey("handrail_reviewers.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("csrf", String(200), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("handrail_sessions_reviewer", "reviewer"),
)

claims = Table(
    "handrail_claims",
    metadata,
    Column(
        "review_id",
        String(200),
        ForeignKey("handrail_reviews.review_id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("reviewer", String(100), nullable=False),
    Column("claimed_at", UtcDateTime, nullable=False),
    Column("until", UtcDateTime, nullable=False),
    Index("handrail_claims_reviewer", "reviewer", "until"),
)

audit = Table(
    "handrail_audit",
    metadata,
    # given by the writer (the last seq + 1, under the append lock), so the chain has no gaps
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(50), nullable=False),
    Column("review_id", String(200)),  # no foreign key: the audit outlives what it names
    Column("run_id", String(200)),
    Column("queue", String(200)),
    Column("detail", Text, nullable=False),  # canonical JSON (sorted keys), as hashed
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("handrail_audit_review", "review_id"),
    Index("handrail_audit_at", "at"),
)

receipts = Table(
    "handrail_receipts",
    metadata,
    Column("source", String(200), nullable=False),  # the trigger's name, e.g. "http:crm"
    Column("key", String(500), nullable=False),  # the source's own key for what it delivered
    Column("pipeline", String(200), nullable=False),
    Column("run_id", String(200), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("detail", _json(), nullable=False),  # what the source said about it (name, size...)
    PrimaryKeyConstraint("source", "key", name="handrail_receipts_pk"),
    Index("handrail_receipts_run", "run_id"),
    Index("handrail_receipts_received", "source", "received_at"),
)

triggers = Table(
    "handrail_triggers",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(50), nullable=False),  # http, folder, mailbox, schedule
    Column("pipeline", String(200), nullable=False),
    Column("cursor", _json()),  # the source's position (a mailbox's UIDVALIDITY and UID)
    Column("last_pickup_at", UtcDateTime),
    Column("last_error", Text),
    Column("last_error_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
)

outbox = Table(
    "handrail_outbox",
    metadata,
    Column("event_id", String(200), nullable=False),  # the same for every channel it goes to
    Column("channel", String(200), nullable=False),
    Column("event", String(50), nullable=False),  # review.waiting, run.failed, ...
    Column("created_at", UtcDateTime, nullable=False),
    Column("payload", _json(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("delivered_at", UtcDateTime),
    Column("last_error", Text),
    PrimaryKeyConstraint("event_id", "channel", name="handrail_outbox_pk"),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="handrail_outbox_status"),
    Index("handrail_outbox_due", "status", "next_attempt_at"),
)

examples = Table(
    "handrail_examples",
    metadata,
    Column("example_id", String(200), primary_key=True),  # the review's id
    Column("review_id", String(200), nullable=False),  # no foreign key: an example outlives it
    Column("run_id", String(200), nullable=False),
    Column("pipeline", String(200), nullable=False),
    Column("pipeline_version", String(200), nullable=False),  # the run's fingerprint
    Column("node", String(200), nullable=False),
    Column("document_hash", String(64), nullable=False),
    Column("text", Text, nullable=False),  # a copy: the example survives its run
    Column("output", _json()),  # the label or the fields, as approved or edited (or rejected)
    Column("verdict", String(20), nullable=False),
    Column("reviewer", String(200)),
    Column("decided_at", UtcDateTime, nullable=False),
    Column("removed_at", UtcDateTime),
    Column("removed_reason", Text),
    CheckConstraint(
        "verdict IN ('approved', 'edited', 'rejected')", name="handrail_examples_verdict"
    ),
    Index("handrail_examples_node", "pipeline", "node", "removed_at", "decided_at"),
    Index("handrail_examples_document", "pipeline", "node", "document_hash"),
    Index("handrail_examples_review", "review_id"),
)

# The audit table refuses UPDATE and DELETE (and, on Postgres, TRUNCATE) whoever asks.
_SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER IF NOT EXISTS handrail_audit_no_{verb.lower()}
BEFORE {verb} ON handrail_audit
BEGIN
    SELECT RAISE(ABORT, 'handrail_audit is append-only: rows cannot be changed or deleted');
END"""
    for verb in ("UPDATE", "DELETE")
]
_POSTGRES_APPEND_ONLY = [
    """CREATE OR REPLACE FUNCTION handrail_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'handrail_audit is append-only: rows cannot be changed or deleted';
END $$""",
    """CREATE TRIGGER handrail_audit_no_change BEFORE UPDATE OR DELETE ON handrail_audit
FOR EACH ROW EXECUTE FUNCTION handrail_audit_append_only()""",
    """CREATE TRIGGER handrail_audit_no_truncate BEFORE TRUNCATE ON handrail_audit
FOR EACH STATEMENT EXECUTE FUNCTION handrail_audit_append_only()""",
]


def _append_only(target: Table, conn: Connection, **_: Any) -> None:
    ddl = _POSTGRES_APPEND_ONLY if conn.dialect.name == "postgresql" else _SQLITE_APPEND_ONLY
    for statement in ddl:
        conn.exec_driver_sql(statement)


event.listen(audit, "after_create", _append_only)


# --- migrations ----------------------------------------------------------------------------------


def _to_v2(conn: Connection) -> None:
    """Version 1 -> 2: the review's queue and escalation as columns (backfilled from the
    request JSON), the inbox index, and the reviewer, session, claim and audit tables."""
    postgres = conn.dialect.name == "postgresql"
    conn.execute(
        text(
            "ALTER TABLE handrail_reviews ADD COLUMN queue VARCHAR(200) NOT NULL DEFAULT 'default'"
        )
    )
    conn.execute(
        text(
            "ALTER TABLE handrail_reviews ADD COLUMN escalated BOOLEAN NOT NULL DEFAULT "
            + ("false" if postgres else "0")
        )
    )
    if postgres:
        backfill = (
            "UPDATE handrail_reviews SET queue = COALESCE(request->>'queue', 'default'), "
            "escalated = (request->>'escalated_at') IS NOT NULL"
        )
    else:
        backfill = (
            "UPDATE handrail_reviews SET "
            "queue = COALESCE(json_extract(request, '$.queue'), 'default'), "
            "escalated = json_extract(request, '$.escalated_at') IS NOT NULL"
        )
    conn.execute(text(backfill))
    for index in reviews.indexes:
        if index.name == "handrail_reviews_inbox":
            index.create(conn)
    for table in (reviewers, sessions, claims, audit):
        table.create(conn)


def _to_v3(conn: Connection) -> None:
    """Version 2 -> 3: the receipts, triggers and outbox tables (nothing else changes)."""
    for table in (receipts, triggers, outbox):
        table.create(conn)


def _to_v4(conn: Connection) -> None:
    """Version 3 -> 4: the examples table (nothing else changes)."""
    examples.create(conn)


MIGRATIONS: dict[int, Callable[[Connection], None]] = {2: _to_v2, 3: _to_v3, 4: _to_v4}
"""Upgrades from an older schema version: {version it produces: step}."""


def migrate(conn: Connection, found: int) -> None:
    """Upgrade the tables from version `found` to `SCHEMA_VERSION`, in the caller's
    transaction (a failed step leaves version `found` as it was, on Postgres and SQLite)."""
    for version in range(found + 1, SCHEMA_VERSION + 1):
        MIGRATIONS[version](conn)
