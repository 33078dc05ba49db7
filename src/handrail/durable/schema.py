"""The run-record tables, in the same database as DBOS's own (hence the `handrail_` prefix).

```
handrail_meta     one row: schema version, the handrail version that created or last migrated it
handrail_runs     one row per run: the columns people filter on, plus the whole `RunRecord`
handrail_steps    the step checkpoints: (run_id, seq) in the order they were first saved
handrail_reviews  the review queue: the request, and the decision once there is one
handrail_pipelines where each pipeline's code lives (its CLI target), so `handrail review` can
                  validate an edit and continue a run without being told the target again
```

Every `record`/`request`/`decision` column holds the full record as JSON (pydantic's JSON mode);
the other columns are copies for filtering and sorting. JSON, not JSONB: Postgres keeps the text
as written, so an output's keys come back in their order.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
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
)
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 1
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
    CheckConstraint("status IN ('pending', 'decided')", name="handrail_reviews_status"),
    Index("handrail_reviews_queue", "status", "created_at"),
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
