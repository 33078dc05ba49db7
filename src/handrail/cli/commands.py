"""What the commands do, as library calls; `main.py` only parses arguments and prints."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Literal

from handrail.cli.targets import absolute_target, load_pipeline
from handrail.core.hooks import Hooks
from handrail.core.model import Model
from handrail.core.pipeline import Pipeline
from handrail.core.records import RunRecord
from handrail.core.runner import Runner
from handrail.core.state import Document
from handrail.exceptions import InputError
from handrail.inputs import DEFAULT_MAX_BYTES, SUPPORTED_SUFFIXES, load_documents
from handrail.providers import get_model, model_name
from handrail.providers.replay import RecordingModel, ReplayModel

if TYPE_CHECKING:
    pass

# `handrail.durable` (DBOS, SQLAlchemy: 0.4 s to import) is imported by the functions that use
# it, so that `handrail graph`, `run --in-memory` and `--help` start quickly.

DEFAULT_MODEL = "fake"
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
    `InputError`s (each becomes a failed run of its own)."""

    target: str
    pipeline: Pipeline
    model: Model
    items: tuple[Document | InputError, ...]

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
    ) -> list[RunRecord]:
        """Run every item here; records in input order. A broken document fails only its own
        run. Durable (kept in `db`, see `database_url`) unless `in_memory`. `hooks` observe the
        runs (tracing)."""
        if in_memory:
            runner = Runner(self.pipeline, model=self.model, hooks=hooks)
            return asyncio.run(
                runner.run_many(self.items, concurrency=concurrency, on_result=on_result)
            )
        return asyncio.run(
            self._run_durably(
                concurrency=concurrency,
                on_result=on_result,
                db=db,
                executor_id=executor_id,
                hooks=hooks,
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
    ) -> list[RunRecord]:
        from handrail.durable import DurableRunner

        async with DurableRunner(
            self.pipeline, model=self.model, db=db, executor_id=executor_id, hooks=hooks
        ) as runner:
            runner.sql.save_pipeline(self.pipeline.name, absolute_target(self.target))
            return await runner.run_many(self.items, concurrency=concurrency, on_result=on_result)

    def submit(self, *, db: str | None = None) -> list[Queued]:
        """Queue every item for `handrail worker`s and return at once."""
        return asyncio.run(self._submit(db=db, wait=False))[0]

    def submit_and_wait(
        self, *, db: str | None = None, timeout: float | None = None
    ) -> list[RunRecord]:
        """Queue every item for `handrail worker`s and wait for their records (`TimeoutError`
        after `timeout` seconds)."""
        return asyncio.run(self._submit(db=db, wait=True, timeout=timeout))[1]

    async def _submit(
        self, *, db: str | None, wait: bool, timeout: float | None = None
    ) -> tuple[list[Queued], list[RunRecord]]:
        from handrail.durable import Submitter

        submitter = Submitter(self.pipeline, db=db)
        try:
            store = submitter.store
            store.save_pipeline(self.pipeline.name, absolute_target(self.target))
            local = Runner(self.pipeline, store=store)  # records unreadable documents' failures
            run_ids: list[str] = []
            for item in self.items:
                if isinstance(item, InputError):
                    run_ids.append(local.failed_input(item).run_id)
                    continue
                run_ids.append(await submitter.submit(item))
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


def choose_model(
    model: str | None = None,
    *,
    record: str | os.PathLike[str] | None = None,
    replay: str | os.PathLike[str] | None = None,
) -> Model:
    """The model `--model`, `--record` and `--replay` describe: `model` (default `fake`); with
    `record`, writing its answers there; with `replay`, the recordings there instead (of
    `model`, else of the one model recorded); with both, a cache: recordings where there are
    some, `model` recorded where not. `InputError` for an unusable directory."""
    if replay is None:
        chosen = get_model(model or DEFAULT_MODEL)
        return chosen if record is None else RecordingModel(chosen, record)
    if record is None:
        return ReplayModel(replay, model=model_name(model) if model else None)
    answering = RecordingModel(get_model(model or DEFAULT_MODEL), record)
    return ReplayModel(replay, model=answering.name, fallback=answering)


def prepare_run(
    target: str,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    model: str | None = None,
    record: str | os.PathLike[str] | None = None,
    replay: str | os.PathLike[str] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stdin: BinaryIO | None = None,
) -> Batch:
    """Load the pipeline, the model (see `choose_model`) and the documents; `InputError` for a
    mistake in the command (bad target, unknown model, missing path, nothing to run)."""
    pipeline = load_pipeline(target)
    chosen = choose_model(model, record=record, replay=replay)
    items = load_documents(inputs, max_bytes=max_bytes, stdin=stdin)
    if not items:
        named = ", ".join(f"`{os.fspath(p)}`" for p in inputs) or "the command"
        raise InputError(
            f"no documents to run: nothing in {named} is a {', '.join(SUPPORTED_SUFFIXES)} "
            "file (hidden files are skipped); name files or folders that hold some"
        )
    return Batch(target=target, pipeline=pipeline, model=chosen, items=tuple(items))


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
) -> None:
    """Work as a queue worker for the pipeline TARGET names until SIGTERM or SIGINT; `on_ready`
    gets this worker's executor id, the pipeline's name and the database once it serves; the
    model as `choose_model` makes it; `hooks` observe the runs (tracing)."""
    pipeline = load_pipeline(target)
    chosen = choose_model(model, record=record, replay=replay)
    asyncio.run(
        _serve(target, pipeline, chosen, db, concurrency, executor_id, on_ready or _nothing, hooks)
    )


async def _serve(
    target: str,
    pipeline: Pipeline,
    model: Model,
    db: str | None,
    concurrency: int,
    executor_id: str | None,
    on_ready: Callable[[str, str, str], None],
    hooks: Sequence[Hooks],
) -> None:
    from handrail.durable import DurableRunner

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)
    for number in signals:
        loop.add_signal_handler(number, stop.set)
    try:
        async with DurableRunner(
            pipeline, model=model, db=db, kind="worker", executor_id=executor_id, hooks=hooks
        ) as runner:
            runner.sql.save_pipeline(pipeline.name, absolute_target(target))
            on_ready(runner.executor_id, pipeline.name, runner.sql.url)
            await runner.serve(concurrency=concurrency, stop=stop)
    finally:
        for number in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(number)


def _nothing(*_: object) -> None:
    pass


def draw(target: str, format: GraphFormat = "mermaid") -> str:
    """The pipeline a TARGET names, drawn as Mermaid or Graphviz DOT text."""
    pipeline = load_pipeline(target)
    return pipeline.to_dot() if format == "dot" else pipeline.to_mermaid()


__all__ = [
    "DEFAULT_MODEL",
    "Batch",
    "GraphFormat",
    "Queued",
    "choose_model",
    "draw",
    "prepare_run",
    "serve",
]
