"""What `handrail runs` and `handrail review` do, as library calls: read runs and reviews from
the store, decide reviews and apply due escalations with a `DurableRunner`.

Reading never creates a database: a SQLite file that does not exist yet simply holds no runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handrail._utils import now
from handrail.cli.commands import DEFAULT_MODEL
from handrail.cli.output import jsonable
from handrail.cli.targets import load_pipeline
from handrail.core.hooks import Hooks
from handrail.core.pipeline import Pipeline
from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, RunStatus
from handrail.exceptions import InputError, ReviewAlreadyDecided, ReviewNotFound
from handrail.providers import get_model

if TYPE_CHECKING:
    from handrail.durable import Escalated, SqlStore

# `handrail.durable` is imported by the functions that use it (see `commands.py`).


@contextmanager
def open_store(db: str | None) -> Iterator[SqlStore | None]:
    """The store at `db` (see `database_url`), or None when it is a SQLite file that does not
    exist yet (nothing was ever kept there, and reading should not create it)."""
    from handrail.durable import SqlStore, database_url
    from handrail.durable.engine import parse

    url = database_url(db)
    parsed, _ = parse(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        if not Path(parsed.database).expanduser().is_file():
            yield None
            return
    store = SqlStore(url)
    try:
        yield store
    finally:
        store.close()


def shown_url(db: str | None) -> str:
    """The database `db` names, as people see it (password masked)."""
    from handrail.durable import database_url
    from handrail.durable.engine import parse

    return parse(database_url(db))[1]


# --- runs -------------------------------------------------------------------------------------


def list_runs(
    db: str | None,
    *,
    status: RunStatus | None = None,
    pipeline: str | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Runs, newest first."""
    with open_store(db) as store:
        if store is None:
            return []
        return store.list_runs(status=status, pipeline=pipeline, limit=limit)


def get_run(db: str | None, run_id: str) -> RunRecord:
    """One run; `ReviewNotFound` (the error for an unknown run or review id) if there is none."""
    with open_store(db) as store:
        record = store.get_run(run_id) if store is not None else None
    if record is None:
        raise ReviewNotFound(
            f"no run `{run_id}` in {shown_url(db)}; list runs with `handrail runs list` "
            "(and check --db or HANDRAIL_DATABASE_URL)"
        )
    return record


# --- reviews ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewView:
    """A review with its decision, if it has one."""

    request: ReviewRequest
    decision: ReviewDecision | None = None


def list_reviews(
    db: str | None, *, queue: str | None = None, pending_only: bool = True
) -> list[ReviewView]:
    """Reviews, oldest first (the queue's order), with their decisions."""
    with open_store(db) as store:
        if store is None:
            return []
        requests = store.list_reviews(pending_only=pending_only)
        return [
            ReviewView(
                request=r,
                decision=store.get_decision(r.review_id) if r.status == "decided" else None,
            )
            for r in requests
            if queue is None or r.queue == queue
        ]


def get_review(db: str | None, review_id: str) -> ReviewView:
    """One review and its decision; `ReviewNotFound` if there is none."""
    with open_store(db) as store:
        request = store.get_review(review_id) if store is not None else None
        decision = (
            store.get_decision(review_id)
            if store is not None and request is not None and request.status == "decided"
            else None
        )
    if request is None:
        raise ReviewNotFound(
            f"no review `{review_id}` in {shown_url(db)}; list pending reviews with "
            "`handrail review list` (and check --db or HANDRAIL_DATABASE_URL)"
        )
    return ReviewView(request=request, decision=decision)


def require_pending(view: ReviewView) -> None:
    """`ReviewAlreadyDecided` for a review that has its decision (said before the pipeline is
    loaded, as the runner would say it)."""
    decision = view.decision
    if view.request.status == "decided" and decision is not None:
        by = f" by {decision.reviewer}" if decision.reviewer else ""
        raise ReviewAlreadyDecided(
            f"review `{view.request.review_id}` of run `{view.request.run_id}` was already "
            f"decided ({decision.action}{by}); a decision is applied exactly once"
        )


def edited_output(
    review: ReviewRequest, *, assignments: Sequence[str] = (), output_file: str | None = None
) -> Any:
    """The output an `edit` proposes: the whole of `output_file` (JSON; `-` reads stdin), or the
    output under review with `field=value` assignments merged in (a value is read as JSON when
    it parses as JSON, else as a string); an output that is a single value (a label) is replaced
    with `node=value`. The runner validates it against the node's schema."""
    if bool(assignments) == (output_file is not None):
        raise InputError(
            "say what the corrected output is: --set field=value (repeatable) or "
            "--output FILE.json, not both"
        )
    if output_file is not None:
        return _read_json(output_file)
    pairs = [_assignment(text) for text in assignments]
    current = review.output
    if not isinstance(current, Mapping):
        if [field for field, _ in pairs] != [review.target]:
            shown = json.dumps(jsonable(current), ensure_ascii=False)
            raise InputError(
                f"the output under review (`{review.target}`) is {shown}, not an object with "
                f"fields; replace it with --set {review.target}=VALUE or --output FILE.json"
            )
        return pairs[0][1]
    edited = dict(current)
    for field, value in pairs:
        if field not in edited:
            raise InputError(
                f"`{field}` is not a field of the output under review (`{review.target}`); its "
                "fields: " + ", ".join(f"`{name}`" for name in edited)
            )
        edited[field] = value
    return edited


def _assignment(text: str) -> tuple[str, Any]:
    field, sep, value = text.partition("=")
    if not sep or not field.strip():
        raise InputError(f"--set takes field=value, got `{text}`")
    return field.strip(), _value(value)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _read_json(name: str) -> Any:
    import sys

    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot read `{name}` ({e.strerror or e}); check the path") from e
    try:
        return json.loads(text)
    except ValueError as e:
        raise InputError(f"`{name}` is not JSON ({e}); write the corrected output as JSON") from e


def decide(
    review: ReviewRequest,
    decision: ReviewDecision,
    *,
    db: str | None = None,
    target: str | None = None,
    model: str = DEFAULT_MODEL,
    hooks: Sequence[Hooks] = (),
) -> RunRecord:
    """Record `decision` on `review` (exactly once) and continue its run here, durably; returns
    the run's record afterwards. `hooks` observe the continuation (tracing)."""
    pipeline = _pipeline_for(review.pipeline, db, target)
    return asyncio.run(_decide(pipeline, review.review_id, decision, db, get_model(model), hooks))


async def _decide(
    pipeline: Pipeline,
    review_id: str,
    decision: ReviewDecision,
    db: str | None,
    model: Any,
    hooks: Sequence[Hooks],
) -> RunRecord:
    from handrail.durable import DurableRunner

    async with DurableRunner(pipeline, db=db, kind="cli", model=model, hooks=hooks) as runner:
        return await runner.decide(review_id, decision)


def escalate(
    db: str | None = None, *, model: str = DEFAULT_MODEL, hooks: Sequence[Hooks] = ()
) -> tuple[list[Escalated], list[str]]:
    """Apply the escalation of every pending review past its deadline, pipeline by pipeline:
    (what was done, one problem per pipeline whose code cannot be found); `hooks` observe the
    runs that continue (tracing)."""
    with open_store(db) as store:
        due = store.due_reviews(now()) if store is not None else []
    chosen = get_model(model)
    done: list[Escalated] = []
    problems: list[str] = []
    for name in dict.fromkeys(r.pipeline for r in due):
        try:
            pipeline = _pipeline_for(name, db, None)
        except InputError as e:
            problems.append(str(e))
            continue
        done += asyncio.run(_escalate(pipeline, db, chosen, hooks))
    return done, problems


async def _escalate(
    pipeline: Pipeline, db: str | None, model: Any, hooks: Sequence[Hooks]
) -> list[Escalated]:
    from handrail.durable import DurableRunner

    async with DurableRunner(pipeline, db=db, kind="cli", model=model, hooks=hooks) as runner:
        return await runner.escalate_due()


def _pipeline_for(name: str, db: str | None, target: str | None) -> Pipeline:
    """The code of pipeline `name`: `target`, else where `handrail run` or a worker recorded it."""
    if target is None:
        with open_store(db) as store:
            target = store.pipeline_target(name) if store is not None else None
        if target is None:
            raise InputError(
                f"where pipeline `{name}`'s code is was never recorded in {shown_url(db)}; "
                "name it with --target path/to/file.py:pipeline"
            )
    pipeline = load_pipeline(target)
    if pipeline.name != name:
        raise InputError(
            f"`{target}` is pipeline `{pipeline.name}`, not `{name}`; name pipeline `{name}`'s "
            "code with --target"
        )
    return pipeline


__all__ = [
    "ReviewView",
    "decide",
    "edited_output",
    "escalate",
    "get_review",
    "get_run",
    "list_reviews",
    "list_runs",
    "open_store",
    "require_pending",
    "shown_url",
]
