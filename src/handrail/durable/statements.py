"""The store's SQL, built once per dialect: a statement built per call costs more than the round
trip on the hot path (`save_step` runs after every node)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Executable

from handrail.durable.schema import claims, pipelines, reviews, runs, steps


@dataclass(frozen=True, slots=True)
class Statements:
    save_run: Executable
    """Upsert a run row; parameters: every column of `handrail_runs`."""
    step_keys: Executable
    """(node, visit, status) of a run's saved steps in order; `:run_id`."""
    delete_steps: Executable
    """`:run_id`."""
    insert_steps: Executable
    """Plain insert of step rows (with their `seq`)."""
    save_step: Executable
    """Upsert a step on its identity; `seq` (next free position) given on first save only;
    parameters: the step row and `:seq_run_id` (the same run id, for the subquery)."""
    drop_stale_reviews: Executable
    """Delete a run's pending reviews not in `:keep` (expanding)."""
    save_reviews: Executable
    """Upsert review rows, leaving decided ones untouched."""
    decide: Executable
    """Mark `:target` decided if pending, returning its request, run and queue; SET
    parameters: decision, decided_at, reviewer."""
    drop_claim: Executable
    """Delete the claim on `:review_id`."""
    save_pipeline: Executable
    """Upsert a pipeline's target; `:name`, `:target`, `:updated_at`."""


@cache
def statements(dialect: str) -> Statements:
    upsert = _postgres_upsert if dialect == "postgresql" else _sqlite_upsert
    next_seq = (
        select(func.coalesce(func.max(steps.c.seq) + 1, 0))
        .where(steps.c.run_id == bindparam("seq_run_id"))
        .scalar_subquery()
    )
    run_columns = [c.name for c in runs.columns if c.name != "run_id"]
    return Statements(
        save_run=upsert(runs, ["run_id"], run_columns),
        step_keys=select(steps.c.node, steps.c.visit, steps.c.status)
        .where(steps.c.run_id == bindparam("run_id"))
        .order_by(steps.c.seq),
        delete_steps=delete(steps).where(steps.c.run_id == bindparam("run_id")),
        insert_steps=insert(steps),
        save_step=upsert(
            steps, ["run_id", "node", "visit", "status"], ["started_at", "duration_s", "record"]
        ).values(seq=next_seq),
        drop_stale_reviews=delete(reviews).where(
            reviews.c.run_id == bindparam("run_id"),
            reviews.c.status == "pending",
            reviews.c.review_id.not_in(bindparam("keep", expanding=True)),
        ),
        save_reviews=upsert(
            reviews,
            ["review_id"],
            [
                "run_id",
                "pipeline",
                "node",
                "created_at",
                "request",
                "deadline",
                "queue",
                "escalated",
            ],
            where=reviews.c.status == "pending",  # a decision is never undone
        ),
        decide=update(reviews)
        .where(reviews.c.review_id == bindparam("target"), reviews.c.status == "pending")
        .values(status="decided")
        .returning(reviews.c.request, reviews.c.run_id, reviews.c.queue),
        drop_claim=delete(claims).where(claims.c.review_id == bindparam("review_id")),
        save_pipeline=upsert(pipelines, ["name"], ["target", "updated_at"]),
    )


def _postgres_upsert(
    table: Table, key: list[str], columns: list[str], *, where: ColumnElement[bool] | None = None
) -> Any:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET columns = the new values [WHERE ...]."""
    stmt = postgresql.insert(table)
    set_ = {c: stmt.excluded[c] for c in columns}
    return stmt.on_conflict_do_update(index_elements=key, set_=set_, where=where)


def _sqlite_upsert(
    table: Table, key: list[str], columns: list[str], *, where: ColumnElement[bool] | None = None
) -> Any:
    stmt = sqlite.insert(table)
    set_ = {c: stmt.excluded[c] for c in columns}
    return stmt.on_conflict_do_update(index_elements=key, set_=set_, where=where)
