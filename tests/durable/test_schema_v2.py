"""Schema upgrades: a database written by a version 1 handrail (the tables as version 1 made
them, on a real SQLite file and on PostgreSQL) is upgraded in place by the first store that
writes, in one transaction; a read-only store says to run a writing command first; a version 2
database gains the version 3 tables (receipts, triggers, outbox)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import JSON, CheckConstraint, Column, ForeignKey, Index, String, Table
from tests.durable.test_people import T0, paused_record, sql

from handrail import ReviewDecision
from handrail._version import __version__
from handrail.durable import SCHEMA_VERSION, AuditCheck, SqlStore, StoreError, StoreVersionError
from handrail.durable import schema as current
from handrail.durable.schema import UtcDateTime
from handrail.durable.serialize import dump_decision, dump_review, dump_run


def v1_metadata() -> sa.MetaData:
    """The tables exactly as schema version 1 defined them."""
    v1 = sa.MetaData()
    for table in (current.meta, current.runs, current.steps, current.pipelines):
        table.to_metadata(v1)
    Table(
        "handrail_reviews",
        v1,
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
        Column("request", JSON(none_as_null=True), nullable=False),
        Column("decision", JSON(none_as_null=True)),
        Column("decided_at", UtcDateTime),
        Column("reviewer", String(200)),
        Column("deadline", UtcDateTime),
        CheckConstraint("status IN ('pending', 'decided')", name="handrail_reviews_status"),
        Index("handrail_reviews_queue", "status", "created_at"),
        Index("handrail_reviews_deadline", "status", "deadline"),
        Index("handrail_reviews_run", "run_id"),
    )
    return v1


DECIDED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_v1_database(url: str) -> None:
    """A version 1 database holding one paused run with three reviews: one pending in the
    default queue, one escalated into `leads`, one decided."""
    v1 = v1_metadata()
    base = paused_record()
    assert base.review is not None
    plain = replace(base.review, review_id="rv-plain", run_id="run-1")
    moved = replace(
        base.review,
        review_id="rv-moved",
        run_id="run-1",
        queue="leads",
        escalated_at=T0,
        escalation="moved from queue `default` to `leads`",
    )
    decided = replace(base.review, review_id="rv-decided", run_id="run-1", status="decided")
    run = replace(base, run_id="run-1", steps=(), reviews=(plain, moved))
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            v1.create_all(conn)
            conn.execute(
                v1.tables["handrail_meta"]
                .insert()
                .values(
                    id=1, schema_version=1, handrail_version="0.9.0", created_at=T0, updated_at=T0
                )
            )
            conn.execute(
                v1.tables["handrail_runs"]
                .insert()
                .values(
                    run_id="run-1",
                    pipeline=run.pipeline,
                    document_id=run.document_id,
                    document_hash=run.document_hash,
                    status=run.status.value,
                    duration_s=0.0,
                    tokens=0,
                    record=dump_run(run),
                )
            )
            rows = [
                {
                    "review_id": review.review_id,
                    "run_id": "run-1",
                    "pipeline": review.pipeline,
                    "node": review.node,
                    "status": review.status,
                    "created_at": review.created_at,
                    "request": dump_review(review),
                    "decision": None,
                    "decided_at": None,
                    "reviewer": None,
                }
                for review in (plain, moved, decided)
            ]
            rows[2] |= {
                "decision": dump_decision(
                    ReviewDecision.approve(reviewer="ann", decided_at=DECIDED_AT)
                ),
                "decided_at": DECIDED_AT,
                "reviewer": "ann",
            }
            conn.execute(v1.tables["handrail_reviews"].insert(), rows)
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    found = str(request.getfixturevalue(name))
    if found.startswith("sqlite:///"):  # the store creates the folder; here we write first
        Path(found.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return found


def tables(url: str) -> list[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return sorted(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_version_1_database_is_upgraded_in_place(url: str) -> None:
    make_v1_database(url)
    with SqlStore(url) as store:
        assert sql(url, "SELECT schema_version FROM handrail_meta") == [(SCHEMA_VERSION,)]
        assert SCHEMA_VERSION == 4
        assert tables(url) == [
            "handrail_audit",
            "handrail_claims",
            "handrail_examples",
            "handrail_meta",
            "handrail_outbox",
            "handrail_pipelines",
            "handrail_receipts",
            "handrail_reviewers",
            "handrail_reviews",
            "handrail_runs",
            "handrail_sessions",
            "handrail_steps",
            "handrail_triggers",
        ]
        # the new columns, backfilled from each request
        assert sorted(sql(url, "SELECT review_id, queue, escalated FROM handrail_reviews")) == [
            ("rv-decided", "default", False),
            ("rv-moved", "leads", True),
            ("rv-plain", "default", False),
        ]
        rows, total = store.inbox(queues=[], escalated_too=True)
        assert total == 1 and rows[0].request.review_id == "rv-moved"
        assert store.queue_counts() == {"default": 1, "leads": 1}
        # what version 1 held reads as before
        assert store.get_run("run-1") is not None
        assert store.get_decision("rv-decided") == ReviewDecision.approve(
            reviewer="ann", decided_at=DECIDED_AT
        )
        # the upgrade is the trail's first row
        [migrated] = store.audit_entries()
        assert (migrated.actor, migrated.action) == ("handrail", "schema_migrated")
        assert migrated.detail == {"from": 1, "to": 4, "handrail": __version__}
        # and the new tables work, the append-only triggers included
        store.claim("rv-plain", "bob", lease=timedelta(minutes=15))
        store.record_decision("rv-plain", ReviewDecision.approve(reviewer="bob"))
        assert store.get_claim("rv-plain") is None
        assert [e.action for e in store.audit_entries()] == ["schema_migrated", "claim", "decide"]
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            sql(url, "DELETE FROM handrail_audit")
        assert store.verify_audit() == AuditCheck(ok=True, rows=3, first_bad=None, problem=None)

    with SqlStore(url) as again:  # opening again upgrades nothing
        assert len(again.audit_entries(action="schema_migrated")) == 1


def test_a_failed_upgrade_changes_nothing(url: str) -> None:
    make_v1_database(url)
    sql(url, "CREATE TABLE handrail_claims (note TEXT)")  # someone made a table of that name
    with pytest.raises(StoreError) as info:
        SqlStore(url)
    message = str(info.value)
    assert message.startswith(
        f"cannot upgrade the run records at {url} from schema version 1 to 4: "
    )
    assert "already exists" in message
    assert message.endswith(
        "nothing was changed (the upgrade is one transaction): fix what the database names (a "
        "table or column made by hand?) and run the command again"
    )
    assert sql(url, "SELECT schema_version FROM handrail_meta") == [(1,)]
    assert "handrail_audit" not in tables(url)
    with pytest.raises(sa.exc.DBAPIError):
        sql(url, "SELECT queue FROM handrail_reviews")

    sql(url, "DROP TABLE handrail_claims")
    with SqlStore(url) as store:
        assert store.queue_counts() == {"default": 1, "leads": 1}


def test_a_read_only_store_on_a_version_1_database_says_to_write_once(url: str) -> None:
    make_v1_database(url)
    with pytest.raises(StoreVersionError) as info:
        SqlStore(url, read_only=True)
    assert str(info.value) == (
        f"the database at {url} holds run records in schema version 1; this handrail "
        f"({__version__}) reads version 4: run a command that writes (`handrail run`) once to "
        "upgrade it"
    )
    assert sql(url, "SELECT schema_version FROM handrail_meta") == [(1,)]  # untouched


def test_a_version_2_database_gains_the_receipts_triggers_and_outbox(url: str) -> None:
    make_v1_database(url)
    with SqlStore(url):
        pass
    for table in ("handrail_receipts", "handrail_triggers", "handrail_outbox"):
        sql(url, f"DROP TABLE {table}")
    sql(url, "DROP TABLE handrail_examples")
    sql(url, "UPDATE handrail_meta SET schema_version = 2")
    with SqlStore(url) as store:
        assert sql(url, "SELECT schema_version FROM handrail_meta") == [(4,)]
        assert {"handrail_receipts", "handrail_triggers", "handrail_outbox"} <= set(tables(url))
        assert [e.detail for e in store.audit_entries(action="schema_migrated")][-1] == {
            "from": 2,
            "to": 4,
            "handrail": __version__,
        }
        assert store.get_run("run-1") is not None  # what version 2 held reads as before


def test_a_version_3_database_gains_the_examples_table(url: str) -> None:
    make_v1_database(url)
    with SqlStore(url):
        pass
    sql(url, "DROP TABLE handrail_examples")
    sql(url, "UPDATE handrail_meta SET schema_version = 3")
    with SqlStore(url) as store:
        assert sql(url, "SELECT schema_version FROM handrail_meta") == [(4,)]
        assert "handrail_examples" in tables(url)
        assert [e.detail for e in store.audit_entries(action="schema_migrated")][-1] == {
            "from": 3,
            "to": 4,
            "handrail": __version__,
        }
        assert store.list_examples() == []
        assert store.get_run("run-1") is not None  # what version 3 held reads as before
