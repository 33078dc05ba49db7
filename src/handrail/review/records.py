"""The review use-cases below the CLI and the web app: read runs and reviews from the store,
decide reviews and continue their runs, apply due escalations, finish cut-off runs (with a
`DurableRunner`). `ReviewService` (service.py) holds them together for a database.

Reading never creates a database: a SQLite file that does not exist yet simply holds no runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from handrail._utils import now
from handrail.core.hooks import Hooks
from handrail.core.model import Model
from handrail.core.pipeline import Pipeline
from handrail.core.records import ModelSpec, ReviewDecision, ReviewRequest, RunRecord, RunStatus
from handrail.exceptions import InputError, ReviewAlreadyDecided, ReviewNotFound
from handrail.providers.specs import build_model, choose_model, model_spec
from handrail.review.shapes import jsonable
from handrail.review.views import ReviewView
from handrail.targets import load_pipeline, project_target

if TYPE_CHECKING:
    from handrail.durable import DurableRunner, Escalated, Finished, SqlStore
    from handrail.durable.outbox import Routing

# `handrail.durable` (DBOS, SQLAlchemy: 0.4 s to import) is imported by the functions that use
# it, so that commands that never touch a database start quickly.

_T = TypeVar("_T")


@contextmanager
def open_store(db: str | None) -> Iterator[SqlStore | None]:
    """The store at `db` (see `database_url`), read-only, or None when nothing was ever kept
    there (a SQLite file that does not exist yet, a database without handrail's tables):
    reading never creates nor changes anything."""
    from handrail.durable import SqlStore, database_url
    from handrail.durable.engine import parse

    url = database_url(db)
    parsed, _ = parse(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        if not Path(parsed.database).expanduser().is_file():
            yield None
            return
    store = SqlStore(url, read_only=True)  # works on a read-only file system too
    try:
        yield None if store.empty else store
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
    review: ReviewRequest,
    *,
    assignments: Sequence[str] = (),
    output_file: str | None = None,
    fields: Sequence[str] = (),
) -> Any:
    """The output an `edit` proposes: the whole of `output_file` (JSON; `-` reads stdin), or the
    output under review with `field=value` assignments merged in (a value is read as JSON when
    it parses as JSON, else as a string); an output that is a single value (a label) is replaced
    with `node=value`. When nothing is under review (null: the node's answers never fit its
    schema), the assignments build the output from the schema's `fields`. The runner validates
    it against the node's schema."""
    if bool(assignments) == (output_file is not None):
        raise InputError(
            "say what the corrected output is: --set field=value (repeatable) or "
            "--output FILE.json, not both"
        )
    if output_file is not None:
        return _read_json(output_file)
    pairs = [_assignment(text) for text in assignments]
    current = review.output
    if current is None and [field for field, _ in pairs] != [review.target]:
        return _from_fields(review, pairs, fields)
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


def _from_fields(
    review: ReviewRequest, pairs: Sequence[tuple[str, Any]], fields: Sequence[str]
) -> dict[str, Any]:
    """An output built from assignments alone, each checked against the schema's `fields`
    (when known); the fields not set are left for the schema's defaults."""
    for field, _ in pairs:
        if fields and field not in fields:
            raise InputError(
                f"`{field}` is not a field of `{review.target}`'s schema; its fields: "
                + ", ".join(f"`{name}`" for name in fields)
            )
    return dict(pairs)


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


@dataclass(frozen=True, kw_only=True, slots=True)
class Continuing:
    """The model a decision's continuation runs with: the run's own (built from its record),
    or the one `--model` names (`overrides` says what it replaces, when it differs)."""

    model: Model
    spec: ModelSpec
    model_for: Callable[[ModelSpec], Model] | None
    """Builds other runs' models from their records (None when `--model` overrides)."""
    overrides: ModelSpec | None = None


def continuing_model(
    run: RunRecord | None,
    model: str | None = None,
    *,
    record: str | None = None,
    replay: str | None = None,
) -> Continuing:
    """The model that continues `run`: the one it started with, exactly (name, parameters,
    record and replay folders), unless `model`/`record`/`replay` are given. `InputError` when
    the run's record names no model (kept by an earlier handrail) and none is given."""
    recorded = run.model if run is not None else None
    if model is None and record is None and replay is None:
        if recorded is None:
            shown = f"run `{run.run_id}`" if run is not None else "the run"
            raise InputError(
                f"{shown} does not say which model it started with (an earlier handrail kept "
                "none); name it with --model, e.g. --model local"
            )
        try:
            built = build_model(recorded)
        except InputError as e:
            shown = f"run `{run.run_id}`" if run is not None else "the run"
            raise InputError(
                f"{shown} started with model {recorded.describe()}, which cannot be built here "
                f"({e}); continue it with another model with --model"
            ) from e
        return Continuing(model=built, spec=recorded, model_for=build_model)
    chosen = choose_model(model, record=record, replay=replay)
    spec = model_spec(chosen, record=record, replay=replay)
    differs = recorded if recorded is not None and recorded != spec else None
    return Continuing(model=chosen, spec=spec, model_for=None, overrides=differs)


def decide(
    review: ReviewRequest,
    decision: ReviewDecision,
    *,
    db: str | None = None,
    target: str | None = None,
    model: str | None = None,
    hooks: Sequence[Hooks] = (),
    on_override: Callable[[str], None] | None = None,
    pipelines: Callable[[str], Pipeline] | None = None,
    notify: Routing | None = None,
) -> RunRecord:
    """Record `decision` on `review` (exactly once) and continue its run here, durably, with
    the model the run started with (or `model`, which overrides: `on_override` gets one line
    saying so when it differs); returns the run's record afterwards. `hooks` observe the
    continuation (tracing); `pipelines` finds a pipeline's code by name (default:
    `pipeline_for`); given `notify`, what the run raises next (another review, a failure)
    writes its outbox rows."""
    pipeline = (pipelines or _finder(db, target))(review.pipeline)
    with open_store(db) as store:
        run = store.get_run(review.run_id) if store is not None else None
    continuing = continuing_model(run, model)
    if continuing.overrides is not None and on_override is not None:
        on_override(
            f"note: run {review.run_id} continues with --model {continuing.spec.describe()}, "
            f"not {continuing.overrides.describe()}, the model it started with"
        )
    return asyncio.run(_decide(pipeline, review.review_id, decision, db, continuing, hooks, notify))


async def _decide(
    pipeline: Pipeline,
    review_id: str,
    decision: ReviewDecision,
    db: str | None,
    continuing: Continuing,
    hooks: Sequence[Hooks],
    notify: Routing | None,
) -> RunRecord:
    return await _in_runner(
        pipeline, db, continuing, hooks, lambda runner: runner.decide(review_id, decision), notify
    )


def escalate(
    db: str | None = None,
    *,
    model: str | None = None,
    target: str | None = None,
    hooks: Sequence[Hooks] = (),
    pipelines: Callable[[str], Pipeline] | None = None,
    notify: Routing | None = None,
) -> tuple[list[Escalated], list[str]]:
    """Apply the escalation of every pending review past its deadline, pipeline by pipeline:
    (what was done, one problem per pipeline whose code cannot be found). Each run continues
    with the model it started with, or `model` for all when given. `target` names the code of
    the pipeline it is; `hooks` observe the runs that continue (tracing). Given `notify`, this
    is one tick of the worker's clock: the `review.due_soon` reminders of every pipeline, then
    each escalation with its outbox rows (`review.escalated`, or what a continued run raises)."""
    at = now()
    with open_store(db) as store:
        due = store.due_reviews(at) if store is not None else []
        kept = store is not None
    if notify is not None and kept and any("review.due_soon" in r.events for r in notify.routes):
        _remind(db, notify, at)
    if model is not None:
        continuing = continuing_model(None, model)
    else:  # each run's own; a run whose record names none (an earlier handrail's): fake
        default = choose_model(None)
        continuing = Continuing(model=default, spec=model_spec(default), model_for=build_model)
    given = load_pipeline(target) if target is not None and due and pipelines is None else None
    done: list[Escalated] = []
    problems: list[str] = []
    for name in dict.fromkeys(r.pipeline for r in due):
        try:
            pipeline = given if given is not None and given.name == name else None
            pipeline = pipeline or (pipelines or _finder(db, None))(name)
        except InputError as e:
            problems.append(str(e))
            continue
        done += asyncio.run(_escalate(pipeline, db, continuing, hooks, notify))
    return done, problems


async def _escalate(
    pipeline: Pipeline,
    db: str | None,
    continuing: Continuing,
    hooks: Sequence[Hooks],
    notify: Routing | None,
) -> list[Escalated]:
    return await _in_runner(
        pipeline, db, continuing, hooks, lambda runner: runner.escalate_due(), notify
    )


def _remind(db: str | None, notify: Routing, at: datetime) -> None:
    """The reminders due by `at` of every pipeline, also of those with nothing to escalate
    (a durable runner writes only its own pipeline's)."""
    from handrail.durable import SqlStore, database_url

    with SqlStore(database_url(db), routes=notify.routes) as store:
        store.remind_due(at)


def unfinished_decision(db: str | None, view: ReviewView) -> bool:
    """Whether `view` has its decision but its run still waits on it: the command that decided
    it was cut off (or is still continuing the run)."""
    if view.request.status != "decided":
        return False
    with open_store(db) as store:
        run = store.get_run(view.request.run_id) if store is not None else None
    return (
        run is not None
        and run.status is RunStatus.NEEDS_REVIEW
        and any(r.review_id == view.request.review_id for r in run.reviews)
    )


def finish(
    run_id: str,
    *,
    db: str | None = None,
    target: str | None = None,
    model: str | None = None,
    hooks: Sequence[Hooks] = (),
    on_override: Callable[[str], None] | None = None,
    pipelines: Callable[[str], Pipeline] | None = None,
    notify: Routing | None = None,
) -> Finished:
    """Finish a run a process left unfinished (see `DurableRunner.finish`), here, with the
    model it started with (or `model`); returns what was done and the run's record. Given
    `notify`, what the run raises writes its outbox rows."""
    try:
        run = get_run(db, run_id)
    except ReviewNotFound as e:
        raise ReviewNotFound(
            f"{e}; a run cut off before its first result has no record yet: run its document "
            "again with `handrail run` (it resumes where it stopped)"
        ) from e
    pipeline = (pipelines or _finder(db, target))(run.pipeline)
    continuing = continuing_model(run, model)
    if continuing.overrides is not None and on_override is not None:
        on_override(
            f"note: run {run_id} continues with --model {continuing.spec.describe()}, "
            f"not {continuing.overrides.describe()}, the model it started with"
        )
    return asyncio.run(_finish(pipeline, run_id, db, continuing, hooks, notify))


async def _finish(
    pipeline: Pipeline,
    run_id: str,
    db: str | None,
    continuing: Continuing,
    hooks: Sequence[Hooks],
    notify: Routing | None,
) -> Finished:
    return await _in_runner(
        pipeline, db, continuing, hooks, lambda runner: runner.finish(run_id), notify
    )


async def _in_runner(
    pipeline: Pipeline,
    db: str | None,
    continuing: Continuing,
    hooks: Sequence[Hooks],
    act: Callable[[DurableRunner], Awaitable[_T]],
    notify: Routing | None = None,
) -> _T:
    """`act` on a durable runner of this short command (its own executor id: it takes over no
    other process's runs), answering runs with `continuing`'s models; given `notify`, each
    event it saves writes its outbox rows in the same transaction (a worker or `handrail serve`
    sends them)."""
    from handrail.durable import DurableRunner

    async with DurableRunner(
        pipeline,
        db=db,
        kind="cli",
        model=continuing.model,
        model_spec=continuing.spec,
        model_for=continuing.model_for,
        hooks=hooks,
        notify=notify,
    ) as runner:
        return await act(runner)


def _finder(db: str | None, target: str | None) -> Callable[[str], Pipeline]:
    return lambda name: pipeline_for(name, db, target)


def pipeline_for(
    name: str, db: str | None, target: str | None, *, folder: str | None = None
) -> Pipeline:
    """The code of pipeline `name`: `target`, else where `handrail run` or a worker recorded
    it, if that is a file (or a module) inside `folder` (default: the folder this command runs
    in; see `project_target`): the database never decides on its own which code is imported."""
    if target is None:
        with open_store(db) as store:
            recorded = store.pipeline_target(name) if store is not None else None
        if recorded is None:
            raise InputError(
                f"where pipeline `{name}`'s code is was never recorded in {shown_url(db)}; "
                "name it with --target path/to/file.py:pipeline"
            )
        target = project_target(recorded, pipeline=name, folder=folder)
    pipeline = load_pipeline(target)
    if pipeline.name != name:
        raise InputError(
            f"`{target}` is pipeline `{pipeline.name}`, not `{name}`; name pipeline `{name}`'s "
            "code with --target"
        )
    return pipeline


__all__ = [
    "Continuing",
    "ReviewView",
    "continuing_model",
    "decide",
    "edited_output",
    "escalate",
    "finish",
    "get_review",
    "get_run",
    "list_reviews",
    "list_runs",
    "open_store",
    "pipeline_for",
    "require_pending",
    "shown_url",
    "unfinished_decision",
]
