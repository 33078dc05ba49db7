"""Fixtures for the trigger tests: the intake path on a SQLite file and on a throwaway Postgres
database (the durable tests' server: skipped without the PostgreSQL binaries, except in CI,
where it must run), and helpers that count what the database holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from tests.durable.conftest import (  # noqa: F401 - the durable tests' throwaway server
    durable_postgres_url,
    postgres_server,
)
from tests.pipelines import happy

from handrail.core.records import ModelSpec
from handrail.durable import schema
from handrail.triggers.intake import Intake

SPEC = ModelSpec(name="fake")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of its own for one test (DBOS's tables are per database, so workflow ids of
    different tests never meet)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'handrail.db'}"
    url: str = request.getfixturevalue("durable_postgres_url")
    return url


@pytest.fixture
def intake(db: str) -> Iterator[Intake]:
    with Intake(happy.pipeline, db=db, model_spec=SPEC) as it:
        yield it


def receipts(intake: Intake) -> list[Any]:
    table = schema.receipts
    with intake.store.reading() as conn:
        return list(conn.execute(select(table).order_by(table.c.received_at)).all())


def workflows(intake: Intake, workflow_id: str | None = None) -> int:
    """How many run workflows DBOS holds (of `workflow_id`, if given)."""
    where = "name LIKE 'handrail.run:%'"
    params: dict[str, str] = {}
    if workflow_id is not None:
        where += " AND workflow_uuid = :id"
        params["id"] = workflow_id
    table = "dbos.workflow_status" if intake.store.dialect == "postgresql" else "workflow_status"
    with intake.store.reading() as conn:
        return int(
            conn.execute(text(f"SELECT count(*) FROM {table} WHERE {where}"), params).scalar_one()
        )


def runs(intake: Intake) -> int:
    with intake.store.reading() as conn:
        return int(conn.execute(select(func.count()).select_from(schema.runs)).scalar_one())
