"""What the commands do, as library calls; `main.py` only parses arguments and prints."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Literal

from handrail.core.hooks import Hooks
from handrail.core.model import Model
from handrail.core.pipeline import Pipeline
from handrail.core.records import ModelSpec, RunRecord
from handrail.core.runner import Runner
from handrail.core.state import Document
from handrail.documents import DEFAULT_OPTIONS, LoadOptions
from handrail.exceptions import InputError
from handrail.inputs import Skipped, read_inputs
from handrail.providers.specs import build_model, choose_model, model_spec
from handrail.targets import absolute_target, load_pipeline

if TYPE_CHECKING:
    from handrail.durable import Escalated
    from handrail.notify import Notifications
    from handrail.triggers.config import Triggers
    from handrail.triggers.running import Running

# `handrail.durable` (DBOS, SQLAlchemy: 0.4 s to import) is imported by the functions that use
# it, so that `handrail graph`, `run --in-memory` and `--help` start quickly.

GraphFormat = Literal["mermaid", "dot"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Queued:
    """A document handed to the workers: its run id and where that run stands (`queued` until a
    worker records it; a document run before keeps its run and status)."""

    run_id: str
    document: str
    status: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Batch:
    """Documents loaded and the pipeline and model to run them; unusable documents are
    `InputError`s (each becomes a failed run of its own); `skipped` lists what the folders hold
    that is not a document, and why."""

    target: str
    pipeline: Pipeline
    model: Model
    items: tuple[Document | InputError, ...]
    skipped: tuple[Skipped, ...] = ()
    spec: ModelSpec | None = None
    """What `model` is, as each run's record keeps it (see `model_spec`)."""
    reused: set[str] = field(default_factory=set)
    """Run ids whose result an earlier run made (same document, pipeline version and model),
    filled in as the batch runs."""

    @property
    def document_ids(self) -> list[str]:
        """The id of each item, in order (a failed run reports the id of the file it names)."""
        return [
            item.id if isinstance(item, Document) else str(getattr(item, "document_id", "?"))
            for item in self.items
        ]

    def run(
        self,
        *,
        concurrency: int = 8,
        on_result: Callable[[RunRecord], None] | None = None,
        in_memory: bool = False,
        db: str | None = None,
        executor_id: str | None = None,
        hooks: Sequence[Hooks] = (),
        rerun: bool = False,
    ) -> list[RunRecord]:
        """Run every item here; records in input order. A broken document fails only its own
        run. Durable (kept in `db`, see `database_url`) unless `in_memory`. `hooks` observe the
        runs (tracing). A document run before by the same pipeline version and model keeps its
        result (noted in `reused`) unless `rerun`."""
        if in_memory:
            runner = Runner(self.pipeline, model=self.model, model_spec=self.spec, hooks=hooks)
            try:
                return asyncio.run(
                    runner.run_many(
                        self.items, concurrency=concurrency, on_result=on_result, rerun=rerun
                    )
                )
            finally:
                self.reused.update(runner.reused)
        return asyncio.run(
            self._run_durably(
                concurrency=concurrency,
                on_result=on_result,
                db=db,
                executor_id=executor_id,
                hooks=hooks,
                rerun=rerun,
            )
        )

    async def _run_durably(
        self,
        *,
        concurrency: int,
        on_result: Callable[[RunRecord], None] | None,
        db: str | None,
        executor_id: str | None,
        hooks: Sequence[Hooks],
        rerun: bool,
    ) -> list[RunRecord]:
        from handrail.durable import DurableRunner
        from handrail.notify import load_notifications

        async with DurableRunner(
            self.pipeline,
            model=self.model,
            model_spec=self.spec,
            model_for=build_model,  # runs of other models this process recovers keep theirs
            db=db,
            executor_id=executor_id,
            hooks=hooks,
            notify=load_notifications(),  # the reviews and failures it raises are announced
        ) as runner:
            runner.sql.save_pipeline(self.pipeline.name, absolute_target(self.target))
            try:
                return await runner.run_many(
                    self.items, concurrency=concurrency, on_result=on_result, rerun=rerun
                )
            finally:
                self.reused.update(runner.reused)

    def submit(self, *, db: str | None = None, rerun: bool = False) -> list[Queued]:
        """Queue every item for `handrail worker`s and return at once."""
        return asyncio.run(self._submit(db=db, wait=False, rerun=rerun))[0]

    def submit_and_wait(
        self, *, db: str | None = None, timeout: float | None = None, rerun: bool = False
    ) -> list[RunRecord]:
        """Queue every item for `handrail worker`s and wait for their records (`TimeoutError`
        after `timeout` seconds)."""
        return asyncio.run(self._submit(db=db, wait=True, timeout=timeout, rerun=rerun))[1]

    async def _submit(
        self, *, db: str | None, wait: bool, timeout: float | None = None, rerun: bool = False
    ) -> tuple[list[Queued], list[RunRecord]]:
        from handrail.durable import Submitter
        from handrail.notify import load_notifications

        submitter = Submitter(self.pipeline, db=db, model_spec=self.spec)
        try:
            store = submitter.store
            notify = load_notifications()
            if notify is not None:  # unreadable documents' failures are announced too
                store.notify_to(notify.routes)
            store.save_pipeline(self.pipeline.name, absolute_target(self.target))
            # records unreadable documents' failures
            local = Runner(self.pipeline, store=store, model_spec=self.spec)
            run_ids: list[str] = []
            for item in self.items:
                if isinstance(item, InputError):
                    run_ids.append(local.failed_input(item).run_id)
                    continue
                run_ids.append(await submitter.submit(item, rerun=rerun))
            self.reused.update(submitter.reused)
            if wait:
                return [], await submitter.wait(run_ids, timeout=timeout)
            queued = []
            for run_id, document in zip(run_ids, self.document_ids, strict=True):
                record = store.get_run(run_id)
                status = "queued" if record is None else record.status.value
                queued.append(Queued(run_id=run_id, document=document, status=status))
            return queued, []
        finally:
            submitter.close()


def prepare_run(
    target: str,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    model: str | None = None,
    record: str | os.PathLike[str] | None = None,
    replay: str | os.PathLike[str] | None = None,
    max_bytes: int | None = None,
    stdin: BinaryIO | None = None,
    follow_symlinks: bool = False,
    options: LoadOptions = DEFAULT_OPTIONS,
) -> Batch:
    """Load the pipeline, the model (see `choose_model`) and the documents (see `read_inputs`:
    `max_bytes` None is each format's default; `options` say how documents are read: OCR, the
    PDF password, split attachments); `InputError` for a mistake in the command (bad target,
    unknown model, missing path, nothing to run)."""
    pipeline = load_pipeline(target)
    chosen = choose_model(model, record=record, replay=replay)
    spec = model_spec(chosen, record=record, replay=replay)
    loaded = read_inputs(
        inputs, max_bytes=max_bytes, stdin=stdin, follow_symlinks=follow_symlinks, options=options
    )
    if not loaded.items:
        named = ", ".join(f"`{os.fspath(p)}`" for p in inputs) or "the command"
        shown = "; ".join(f"`{s.path}`: {s.reason}" for s in loaded.skipped[:3])
        more = f" and {len(loaded.skipped) - 3} more" if len(loaded.skipped) > 3 else ""
        raise InputError(
            f"no documents to run: nothing in {named} is a file handrail reads (hidden files "
            "are skipped); name files or folders that hold some"
            + (f" (skipped {shown}{more})" if shown else "")
        )
    return Batch(
        target=target,
        pipeline=pipeline,
        model=chosen,
        items=loaded.items,
        skipped=loaded.skipped,
        spec=spec,
    )


def serve(
    target: str,
    *,
    model: str | None = None,
    record: str | os.PathLike[str] | None = None,
    replay: str | os.PathLike[str] | None = None,
    db: str | None = None,
    concurrency: int = 8,
    executor_id: str | None = None,
    on_ready: Callable[[str, str, str], None] | None = None,
    hooks: Sequence[Hooks] = (),
    on_escalated: Callable[[Escalated], object] | None = None,
    notify: Notifications | None = None,
    triggers: Triggers | None = None,
    on_triggers: Callable[[list[str]], None] | None = None,
) -> None:
    """Work as a queue worker for the pipeline TARGET names until SIGTERM or SIGINT; `on_ready`
    gets this worker's executor id, the pipeline's name and the database once it serves,
    `on_escalated` each deadline escalation it applies; `hooks` observe the runs (tracing).
    Given `notify`, it writes the outbox rows of what it raises and sends the outbox. Given
    `triggers`, it polls their folders and mailboxes and fires their schedules (HTTP sources
    are `handrail serve`'s); `on_triggers` gets a line per trigger started.

    Each run is answered by the model it was started (or submitted) with, as its record says,
    built once per model. Given `model`, `record` or `replay`, the model `choose_model` makes
    answers every run instead (an override)."""
    pipeline = load_pipeline(target)
    override = model is not None or record is not None or replay is not None
    chosen = choose_model(model, record=record, replay=replay)
    spec = model_spec(chosen, record=record, replay=replay)
    asyncio.run(
        _serve(
            target,
            pipeline,
            (chosen, spec, None if override else build_model),
            db,
            concurrency,
            executor_id,
            on_ready or _nothing,
            hooks,
            on_escalated,
            notify,
            triggers,
            on_triggers,
        )
    )


def configured_triggers(target: str | None, *, extra: Triggers | None = None) -> Triggers:
    """The triggers of ./pyproject.toml's `[tool.handrail.triggers]`, those declared as
    `triggers` beside TARGET's pipeline, and `extra` (command-line options), merged."""
    from handrail.targets import beside
    from handrail.triggers.config import Triggers, load_triggers

    found = load_triggers()
    if target is not None:
        declared = beside(target, "triggers")
        if declared is not None:
            if not isinstance(declared, Triggers):
                raise InputError(
                    f"`triggers` beside `{target}` is a {type(declared).__name__}; make it a "
                    "handrail.triggers.config.Triggers (or rename it)"
                )
            found = found.merged(declared)
    return found.merged(extra) if extra is not None else found


async def _serve(
    target: str,
    pipeline: Pipeline,
    models: tuple[Model, ModelSpec, Callable[[ModelSpec], Model] | None],
    db: str | None,
    concurrency: int,
    executor_id: str | None,
    on_ready: Callable[[str, str, str], None],
    hooks: Sequence[Hooks],
    on_escalated: Callable[[Escalated], object] | None = None,
    notify: Notifications | None = None,
    triggers: Triggers | None = None,
    on_triggers: Callable[[list[str]], None] | None = None,
) -> None:
    from handrail.durable import DurableRunner
    from handrail.notify import Dispatcher

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    running: Running | None = None
    try:
        model, spec, model_for = models
        if triggers is not None and (triggers.folders or triggers.mailboxes or triggers.schedules):
            running = _start_triggers(pipeline, spec, db, notify, triggers)
        async with DurableRunner(
            pipeline,
            model=model,
            model_spec=spec,
            model_for=model_for,
            db=db,
            kind="worker",
            executor_id=executor_id,
            hooks=hooks,
            notify=notify,
            schedules=running.schedules if running is not None else (),
        ) as runner:
            runner.sql.save_pipeline(pipeline.name, absolute_target(target))
            bell = Dispatcher(notify, db=db).start() if notify is not None else None
            try:
                on_ready(runner.executor_id, pipeline.name, runner.sql.url)
                if running is not None and on_triggers is not None:
                    on_triggers(running.lines())
                await runner.serve(concurrency=concurrency, stop=stop, on_escalated=on_escalated)
            finally:
                if bell is not None:
                    await asyncio.to_thread(bell.stop)
    finally:
        if running is not None:
            await asyncio.to_thread(running.stop)
            running.intake.close()
        for number in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(number)


def _start_triggers(
    pipeline: Pipeline,
    spec: ModelSpec,
    db: str | None,
    notify: Notifications | None,
    triggers: Triggers,
) -> Running:
    """`triggers`' folder and mailbox pollers started, and its schedules made, through one
    intake path whose runs are answered by `spec`."""
    from handrail.triggers.intake import Intake
    from handrail.triggers.running import start_triggers

    routes = notify.routes if notify is not None else ()
    intake = Intake(pipeline, db=db, model_spec=spec, routes=routes)
    try:
        return start_triggers(intake, triggers)
    except BaseException:
        intake.close()
        raise


def _nothing(*_: object) -> None:
    pass


def draw(target: str, format: GraphFormat = "mermaid") -> str:
    """The pipeline a TARGET names, drawn as Mermaid or Graphviz DOT text."""
    pipeline = load_pipeline(target)
    return pipeline.to_dot() if format == "dot" else pipeline.to_mermaid()


__all__ = [
    "Batch",
    "GraphFormat",
    "Queued",
    "draw",
    "prepare_run",
    "serve",
]
