"""The in-memory runner: schedules a pipeline's nodes over one document or many (asyncio).

`Runner(pipeline, model=..., hooks=[...], store=...)`: the model, the observers and the store are
injected; the durable runner (DBOS) reuses the same step execution and replay.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextvars import Token
from dataclasses import replace
from datetime import timedelta
from typing import Any, cast

from handrail._utils import derived_id, new_id, now
from handrail.core.decisions import decided_output, pending_review, reviewed_example
from handrail.core.execute import execute, execute_simple_rule
from handrail.core.fingerprint import describe_model, digest, model_identity, spec_json
from handrail.core.hooks import Hooks, HookScope, HookSet
from handrail.core.model import Model
from handrail.core.nodes import REJECTED_ROUTE, Classify, Node, Rule
from handrail.core.outcome import Outcome, RecordedError, StepContext
from handrail.core.pipeline import Budget, Pipeline
from handrail.core.records import (
    NO_USAGE,
    ErrorInfo,
    ModelSpec,
    ReviewDecision,
    ReviewRequest,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    Usage,
)
from handrail.core.scheduler import PAUSED, Scheduler
from handrail.core.state import Document, State
from handrail.core.store import InMemoryStore, RunStore
from handrail.exceptions import (
    BudgetExceeded,
    HandrailError,
    InputError,
    InvalidDecision,
    LoopLimitReached,
    ReviewNotFound,
    RunTimeout,
    StepFailed,
)

DocumentLike = Document | str | Mapping[str, Any]


class _Run:
    """Mutable bookkeeping of one run while it executes (never leaves this module)."""

    __slots__ = (
        "call_ids",
        "decisions",
        "document",
        "elapsed",
        "error",
        "model",
        "reviews",
        "run_id",
        "sched",
        "spec",
        "started_at",
        "state",
        "status",
        "steps",
        "t0",
        "trace_context",
        "usage",
        "version",
        "warnings",
    )

    def __init__(self, run_id: str, document: Document, sched: Scheduler) -> None:
        self.run_id = run_id
        self.document = document
        self.state = State(document)
        self.sched = sched
        self.steps: list[StepRecord] = []
        self.usage: Usage = NO_USAGE
        self.reviews: dict[str, ReviewRequest] = {}
        self.decisions: list[tuple[str, ReviewDecision]] = []
        self.started_at = now()
        self.t0 = time.perf_counter()
        self.elapsed = 0.0
        self.error: BaseException | ErrorInfo | None = None
        self.status = RunStatus.RUNNING
        self.call_ids = [0]
        self.trace_context: dict[str, str] = {}
        self.model: Model | None = None
        """The default model this run is answered by (see `Runner._model_for`)."""
        self.spec: ModelSpec | None = None
        """What that model is, as the run's record keeps it."""
        self.version = ""
        """The pipeline version a continued run started with ("" for a new run)."""
        self.warnings: list[str] = []
        """Hook errors and other problems that did not stop the run (`RunRecord.warnings`)."""


class Runner:
    """Runs a `Pipeline` in this process.

    - `model`: the default `Model` for LLM nodes; `models`: named models nodes or fallbacks ask for;
    - `model_spec`: what `model` is, as run records keep it and run ids count it (default: its
      `spec` attribute if it has one, else its name); give the parameters that shape its answers;
    - `model_for`: builds the model a stored `ModelSpec` describes; given, each run is answered
      (and a paused run continued) by the model it started with, built once per spec; without
      it every run uses `model`;
    - `hooks`: observers (`Hooks` subclasses); `store`: a `RunStore` (in memory by default);
    - `budget`/`timeout`: override the pipeline's per-run limits.

    A document already run by the same pipeline version (`Pipeline.fingerprint`) with the same
    model is not run again: `run` returns the earlier record (and notes its id in `reused`).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        model: Model | None = None,
        models: Mapping[str, Model] | None = None,
        hooks: Sequence[Hooks] = (),
        store: RunStore | None = None,
        budget: Budget | None = None,
        timeout: float | None = None,
        model_spec: ModelSpec | None = None,
        model_for: Callable[[ModelSpec], Model] | None = None,
    ) -> None:
        if not isinstance(pipeline, Pipeline):
            raise TypeError(
                f"Runner takes a built Pipeline, got {type(pipeline).__name__}; "
                "call PipelineBuilder(...).build() first"
            )
        self.pipeline = pipeline
        self.model = model
        self.models = dict(models or {})
        self.model_spec = model_spec if model_spec is not None else describe_model(model)
        self._build_model = model_for
        self._built: dict[str, Model] = {}
        self._identity = model_identity(self.model_spec, self.models)
        self.reused: set[str] = set()
        """Run ids `run` answered with an earlier run's record instead of running."""
        self.hooks = HookSet(hooks)
        self.store: RunStore = store if store is not None else InMemoryStore()
        self.budget = budget or pipeline.budget
        self.timeout = timeout if timeout is not None else pipeline.timeout
        self._inflight: dict[str, asyncio.Future[RunRecord]] = {}
        self._simple_rules = frozenset(
            name
            for name, plan in pipeline.plans.items()
            if isinstance(plan.node, Rule) and not plan.node.checks
        )
        self._loop_sources = frozenset(
            name for name, plan in pipeline.plans.items() if plan.loop_region
        )
        self._sources = {
            name: tuple(
                e.source
                for plan in pipeline.plans.values()
                for e in plan.out
                if e.target == name and not e.is_loop
            )
            for name in pipeline.plans
        }

    # --- public API ----------------------------------------------------------------------------

    def run_id_for(self, document: DocumentLike, *, model: ModelSpec | None = None) -> str:
        """The run id a document gets by default: from the pipeline's name and version
        (`Pipeline.fingerprint`), the model (`model`, default the runner's: its name and
        parameters) and the document's content hash. Two runs are the same only when all agree.
        """
        identity = self._identity if model is None else model_identity(model, self.models)
        return derived_id(
            "run",
            self.pipeline.name,
            self.pipeline.fingerprint,
            identity,
            Document.of(document).hash,
        )

    async def run(
        self, document: DocumentLike, *, run_id: str | None = None, rerun: bool = False
    ) -> RunRecord:
        """Run the pipeline on one document and return its record (never raises for a failure
        of the document's own run). A document already run (same id) is not run again unless
        `rerun=True` or its earlier run failed."""
        doc = Document.of(document)
        if run_id is None:
            run_id = new_id("run") if rerun else self.run_id_for(doc)
        if not rerun:
            existing = self.store.get_run(run_id)
            if existing is not None and existing.status is not RunStatus.FAILED:
                self.reused.add(run_id)
                return existing
            running = self._inflight.get(run_id)
            if running is not None:  # the same document twice in one batch: one run
                return await asyncio.shield(running)
        else:
            existing = None
        future: asyncio.Future[RunRecord] = asyncio.get_running_loop().create_future()
        self._inflight[run_id] = future
        try:
            record = await self._run_new(run_id, doc, existing)
            future.set_result(record)
            return record
        finally:
            if self._inflight.get(run_id) is future:
                del self._inflight[run_id]
            if not future.done():
                future.cancel()

    async def _run_new(
        self,
        run_id: str,
        doc: Document,
        earlier: RunRecord | None = None,
        *,
        spec: ModelSpec | None = None,
    ) -> RunRecord:
        """Run a document afresh; `earlier` is the run it replaces (a failed one), if any;
        `spec` the model it was started with (default: the runner's)."""
        run = _Run(run_id, doc, Scheduler(self.pipeline.plans, self.pipeline.start, self._sources))
        run.warnings.extend(f"document: {warning}" for warning in doc.warnings)
        self._use_model(run, spec)
        scope, token = self.hooks.enter(run_id, run.warnings)
        if not doc.text.strip():
            run.status = RunStatus.FAILED
            run.error = InputError(
                f"document `{doc.id}` is empty; there is nothing to process "
                "(check the file, or leave it out of the batch)"
            )
            return await self._end(run, scope, token)
        if run.status is RunStatus.FAILED:  # its model cannot be built here
            return await self._end(run, scope, token)
        hooks = self.hooks
        if hooks.run_started:
            hooks.emit(
                hooks.run_started,
                run_id=run_id,
                pipeline=self.pipeline.name,
                document=doc,
                resumed=False,
                trace_context=run.trace_context,
            )
        await self._drive_guarded(run)
        return await self._end(run, scope, token)

    async def run_many(
        self,
        documents: Iterable[DocumentLike | BaseException],
        *,
        concurrency: int = 8,
        on_result: Callable[[RunRecord], None] | None = None,
        rerun: bool = False,
    ) -> list[RunRecord]:
        """Run many documents, at most `concurrency` at a time; results in input order
        (`rerun`: as `run`'s).

        An item that is an exception (e.g. an `InputError` from loading a file) becomes a failed
        run of its own: one broken document never fails the batch.
        """
        if concurrency < 1:
            raise ValueError(f"concurrency={concurrency}: use 1 or more")
        items = list(documents)
        results: list[RunRecord | None] = [None] * len(items)
        queue = iter(enumerate(items))

        async def worker() -> None:
            for index, item in queue:
                if isinstance(item, BaseException):
                    record = self.failed_input(item)
                else:
                    record = await self.run(item, rerun=rerun)
                results[index] = record
                if on_result is not None:
                    on_result(record)

        workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, len(items)))]
        try:
            await asyncio.gather(*workers)
            await self.hooks.drain()  # async hooks of `failed_input` runs
        finally:
            for w in workers:
                w.cancel()
        return [r for r in results if r is not None]

    async def iter_many(
        self, documents: Iterable[DocumentLike], *, concurrency: int = 8
    ) -> AsyncIterator[RunRecord]:
        """Like `run_many`, yielding each record as soon as its run ends."""
        queue: asyncio.Queue[RunRecord] = asyncio.Queue()
        task = asyncio.ensure_future(
            self.run_many(documents, concurrency=concurrency, on_result=queue.put_nowait)
        )
        while not (task.done() and queue.empty()):
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                yield getter.result()
            else:
                getter.cancel()
        await task

    def failed_input(self, error: BaseException, *, document_id: str | None = None) -> RunRecord:
        """A failed run for a document that could not even be read. Its run id comes from the
        pipeline, the document's name and the problem, so reading the same broken file again
        replaces its failed run instead of adding one."""
        doc_id = document_id or getattr(error, "document_id", None) or "unreadable"
        problem = (type(error).__name__, str(error))
        record = RunRecord(
            run_id=derived_id("run", self.pipeline.name, "input", str(doc_id), *problem),
            pipeline=self.pipeline.name,
            document_id=str(doc_id),
            document_hash="",
            status=RunStatus.FAILED,
            error=ErrorInfo(type=type(error).__name__, message=str(error)),
            started_at=now(),
            ended_at=now(),
            model=self.model_spec,
            pipeline_version=self.pipeline.fingerprint,
        )
        self.store.save_run(record)
        if self.hooks.run_finished:
            warnings: list[str] = []
            scope, token = self.hooks.enter(record.run_id, warnings)
            try:
                self.hooks.emit(self.hooks.run_finished, run=record)
            finally:
                self.hooks.leave(token)
            for callback, awaitable in scope.pending:  # nothing to await in: a task each
                self.hooks.later(callback, awaitable, None)
            if warnings:
                record = replace(record, warnings=tuple(warnings))
                self.store.save_run(record)
        return record

    def run_sync(self, document: DocumentLike, **kwargs: Any) -> RunRecord:
        """`run` for code that is not async."""
        return asyncio.run(self.run(document, **kwargs))

    async def decide(self, review_id: str, decision: ReviewDecision) -> RunRecord:
        """Apply a decision to a review by its id and continue the run."""
        review = self.store.get_review(review_id)
        if review is None:
            raise ReviewNotFound(
                f"no review `{review_id}`; list pending reviews with `handrail review list`"
            )
        return await self.resume(review.run_id, replace(decision, review_id=review_id))

    async def resume(self, run_id: str, decision: ReviewDecision) -> RunRecord:
        """Apply a person's decision to a run waiting for review, then continue it.

        Completed steps are never re-run: the run's state and schedule are rebuilt from its step
        records. A second decision on the same review raises `ReviewAlreadyDecided`.
        """
        record, request, stamped = self.accept_decision(run_id, decision)
        return await self.continue_run(record, request, stamped)

    def accept_decision(
        self, run_id: str, decision: ReviewDecision
    ) -> tuple[RunRecord, ReviewRequest, ReviewDecision]:
        """Check a decision and record it, exactly once; nothing runs yet.

        Raises before writing anything when the decision does not fit (an edit failing the
        schema, a run not waiting); raises `ReviewAlreadyDecided` for a second decision.
        """
        record = self.store.get_run(run_id)
        if record is None:
            raise ReviewNotFound(f"no run `{run_id}`; list runs with `handrail runs list`")
        request = pending_review(record, decision)
        _, output, updates = self._decision_effects(request, decision)
        stamped = replace(
            decision, review_id=request.review_id, decided_at=decision.decided_at or now()
        )
        example = reviewed_example(self.pipeline, record, request, stamped, output, updates)
        if example is None:  # a store of the user's own need not know about examples
            return record, self.store.record_decision(request.review_id, stamped), stamped
        # written with the decision, in its transaction: exactly once, like the decision
        decided = self.store.record_decision(request.review_id, stamped, example=example)
        return record, decided, stamped

    def _decision_effects(
        self, request: ReviewRequest, decision: ReviewDecision
    ) -> tuple[Node, Any, dict[str, Any]]:
        node = self.pipeline.nodes.get(request.node)
        if node is None:
            raise InvalidDecision(
                f"review `{request.review_id}` is for node `{request.node}`, "
                f"which pipeline `{self.pipeline.name}` no longer has"
            )
        request = replace(request, output=self._revive(request.target, request.output))
        output, updates = decided_output(self.pipeline, node, request, decision)
        return node, output, updates

    async def continue_run(
        self, record: RunRecord, request: ReviewRequest, decision: ReviewDecision
    ) -> RunRecord:
        """Continue a run after `accept_decision` recorded `decision` on `request`."""
        node, output, updates = self._decision_effects(request, decision)
        run = self._rebuild(record)
        run.reviews.pop(request.review_id, None)
        run.decisions.append((request.review_id, decision))
        scope, token = self.hooks.enter(run.run_id, run.warnings)
        hooks = self.hooks
        if hooks.review_decided:
            hooks.emit(
                hooks.review_decided,
                request=request,
                decision=decision,
                trace_context=run.trace_context,
            )
        if hooks.run_started:
            hooks.emit(
                hooks.run_started,
                run_id=record.run_id,
                pipeline=self.pipeline.name,
                document=run.document,
                resumed=True,
                trace_context=run.trace_context,
            )
        self._apply_decision(run, node, request, decision, output, updates)
        if run.status is RunStatus.RUNNING:
            await self._drive_guarded(run)
        return await self._end(run, scope, token)

    def _use_model(self, run: _Run, spec: ModelSpec | None) -> None:
        """Give `run` the model it started with (see `_model_for`); one that cannot be built
        here fails the run, saying so, rather than answering it with another model."""
        try:
            run.spec, run.model = self._model_for(spec)
        except Exception as e:
            shown = spec.describe() if spec is not None else "its model"
            run.spec, run.status = spec, RunStatus.FAILED
            run.error = ErrorInfo(
                type=type(e).__name__,
                message=f"run `{run.run_id}` started with model {shown}, which cannot be built "
                f"here ({e}); give this process what that model needs, or run the document again "
                "with the model you have",
            )

    def _model_for(self, spec: ModelSpec | None) -> tuple[ModelSpec | None, Model | None]:
        """The model a run started with `spec` is answered by, and its spec as recorded: the
        runner's own unless `spec` differs and `model_for` can build it (once per spec)."""
        if spec is None or spec == self.model_spec or self._build_model is None:
            return self.model_spec, self.model
        key = digest(spec_json(spec))
        model = self._built.get(key)
        if model is None:
            model = self._built[key] = self._build_model(spec)
        return spec, model

    def _revive(self, name: str, value: Any) -> Any:
        """An output as its node's type again (a store that serialises gives back dicts)."""
        node = self.pipeline.nodes.get(name)
        adapter = node.output_adapter() if node is not None else None
        if adapter is None or value is None:
            return value
        try:
            return adapter.validate_python(value)
        except Exception:  # keep what was stored rather than lose it; the node's type changed
            return value

    # --- driving -------------------------------------------------------------------------------

    async def _drive_guarded(self, run: _Run) -> None:
        try:
            if self.timeout is not None:
                try:
                    async with asyncio.timeout(self.timeout):
                        await self._drive(run)
                except TimeoutError:
                    run.status = RunStatus.FAILED
                    run.error = RunTimeout(
                        f"run `{run.run_id}` took longer than its timeout of {self.timeout:g}s; "
                        "raise the timeout or look at the slowest step in `handrail runs show`"
                    )
            else:
                await self._drive(run)
        except Exception as e:  # a bug in user code outside a node (a hook, a condition)
            run.status = RunStatus.FAILED
            run.error = (
                e
                if isinstance(e, HandrailError)
                else StepFailed(f"run `{run.run_id}` stopped: {type(e).__name__}: {e}")
            )

    async def _drive(self, run: _Run) -> None:
        sched = run.sched
        scope = self.hooks.scope()
        tasks: dict[asyncio.Future[Any], tuple[str, int, int]] = {}
        try:
            while run.status is RunStatus.RUNNING:
                if scope is not None and scope.pending:  # async hooks of the steps so far
                    await self.hooks.settle(scope)
                name = sched.pop_ready()
                if name is not None:
                    visit, epoch = sched.start(name)
                    slot = self._reserve(run, name)
                    if not tasks and not sched.ready:
                        outcome = await self._step(run, name, visit, slot)
                        self._apply(run, name, visit, epoch, *outcome)
                    else:
                        started = asyncio.ensure_future(self._step(run, name, visit, slot))
                        tasks[started] = (name, visit, epoch)
                    continue
                if not tasks:
                    return
                done, _ = await self._wait(list(tasks))
                for task in [t for t in tasks if t in done]:  # in start order: repeatable
                    name, visit, epoch = tasks.pop(task)
                    self._apply(run, name, visit, epoch, *task.result())
                    if run.status is not RunStatus.RUNNING:
                        break
        finally:
            if tasks:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    def _reserve(self, run: _Run, name: str) -> Any:
        """Called in scheduling order, as a node is started and before its task exists: the
        durable runner reserves the node's checkpoint slot here, so a recovered run numbers its
        steps the same way whatever order the tasks first run in."""
        return None

    async def _step(
        self, run: _Run, name: str, visit: int, slot: Any = None
    ) -> tuple[Outcome, Any, float]:
        node = self.pipeline.plans[name].node
        hooks = self.hooks
        if hooks.step_started:
            hooks.emit(
                hooks.step_started, run_id=run.run_id, node=name, kind=node.kind, visit=visit
            )
        started_at = now()
        t0 = time.perf_counter()
        try:
            outcome = await self._execute_step(run, name, node, visit, slot)
        except asyncio.CancelledError:
            # The run stopped (its timeout, or another branch failed) while this step ran.
            self._record_step(
                run,
                StepRecord(
                    run_id=run.run_id,
                    node=name,
                    kind=node.kind,
                    visit=visit,
                    status=StepStatus.FAILED,
                    started_at=started_at,
                    duration_s=time.perf_counter() - t0,
                    error=ErrorInfo(
                        type="Cancelled",
                        message=f"`{name}` was stopped because the run ended while it ran",
                    ),
                ),
            )
            raise
        if outcome.started_at is not None:  # a checkpointed step keeps its first timings
            return outcome, outcome.started_at, outcome.duration_s or 0.0
        return outcome, started_at, time.perf_counter() - t0

    async def _execute_step(
        self, run: _Run, name: str, node: Node, visit: int, slot: Any = None
    ) -> Outcome:
        """Execute one node against the run's current state. The durable runner wraps this in a
        checkpointed step; nothing here may touch the run's bookkeeping."""
        if name in self._simple_rules:
            return await execute_simple_rule(cast(Rule, node), run.state)
        ctx = StepContext(
            run_id=run.run_id,
            pipeline=self.pipeline,
            state=run.state,
            visit=visit,
            hooks=self.hooks,
            models=self.models,
            default_model=run.model,
            call_ids=run.call_ids,
        )
        return await execute(node, ctx)

    async def _wait(
        self, tasks: Iterable[asyncio.Future[Any]]
    ) -> tuple[set[asyncio.Future[Any]], set[asyncio.Future[Any]]]:
        """Wait for the first of the running steps to finish. The durable runner checkpoints
        which ones had finished, so a recovered run takes the same decisions."""
        return await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)

    def _taken(self, name: str, route: str | None, state: State) -> list[str]:
        taken = []
        for edge in self.pipeline.plans[name].out:
            if edge.routes and route not in edge.routes:
                continue
            if edge.when is not None:
                try:
                    if not edge.when(state):
                        continue
                except Exception as e:
                    raise StepFailed(
                        f"the condition on edge `{edge.source}` -> `{edge.target}` raised "
                        f"{type(e).__name__}: {e}; fix the condition",
                        node=name,
                    ) from e
            taken.append(edge.target)
        return taken

    def _apply(
        self,
        run: _Run,
        name: str,
        visit: int,
        epoch: int,
        outcome: Outcome,
        started_at: Any,
        duration: float,
    ) -> None:
        node = self.pipeline.plans[name].node
        sched = run.sched
        status = outcome.status
        error = outcome.error
        taken: list[str] = []
        updates: dict[str, Any] = {}
        if not sched.is_current(name, epoch):
            status = StepStatus.SUPERSEDED
        elif status is StepStatus.COMPLETED:
            state = run.state.with_output(name, outcome.output)
            try:
                taken = self._taken(name, outcome.route, state)
            except StepFailed as e:
                status, error = StepStatus.FAILED, e
            else:
                run.state = state
                loop = sched.loop_edge(name, taken) if name in self._loop_sources else None
                if loop is not None and not sched.loop_allowed(loop):
                    error = LoopLimitReached(
                        f"`{name}` chose to go back to `{loop.target}` again, but that loop's "
                        f"limit ({loop.max_loops}) is reached; raise max_loops or give the "
                        "node a fallback",
                        node=name,
                    )
                    if node.fallback is not None and node.fallback.node is not None:
                        status, taken = StepStatus.FALLBACK, [node.fallback.node]
                    else:
                        status, taken = StepStatus.FAILED, []
        elif status is StepStatus.FALLBACK:
            assert node.fallback is not None and node.fallback.node is not None
            taken = [node.fallback.node]
        review_id = (
            derived_id("rv", run.run_id, name, str(visit))
            if status is StepStatus.NEEDS_REVIEW
            else None
        )
        step = StepRecord(
            run_id=run.run_id,
            node=name,
            kind=node.kind,
            visit=visit,
            status=status,
            output=outcome.output,
            confidence=outcome.confidence,
            field_confidence=outcome.field_confidence,
            checks=outcome.checks,
            route=outcome.route,
            next=tuple(taken),
            attempts=tuple(outcome.attempts),
            started_at=started_at,
            duration_s=duration,
            usage=outcome.usage,
            model=outcome.model,
            error=_error_info(error) if error is not None else None,
            review_id=review_id,
            updates=updates,
            examples=outcome.examples,
        )
        self._record_step(run, step)
        if status is StepStatus.SUPERSEDED:
            return
        if outcome.usage is not NO_USAGE:
            run.usage = run.usage + outcome.usage
        if status is StepStatus.COMPLETED or status is StepStatus.FALLBACK:
            sched.finish(name, taken)
        elif status is StepStatus.NEEDS_REVIEW:
            assert review_id is not None
            sched.pause(name)
            created_at = started_at + timedelta(seconds=duration)  # replays give the same time
            policy = self.pipeline.review_policy(name)
            request = ReviewRequest(
                review_id=review_id,
                run_id=run.run_id,
                pipeline=self.pipeline.name,
                node=name,
                visit=visit,
                output=outcome.output,
                target=outcome.review_target or name,
                confidence=outcome.confidence,
                field_confidence=outcome.field_confidence,
                reasons=outcome.reasons,
                document_id=run.document.id,
                created_at=created_at,
                queue=policy.queue,
                deadline=created_at + policy.deadline if policy.deadline is not None else None,
                on_deadline=policy.on_deadline,
            )
            run.reviews[review_id] = request
            if self.hooks.review_requested:
                self.hooks.emit(self.hooks.review_requested, request=request)
        else:
            run.status = RunStatus.FAILED
            run.error = error
        self._check_budget(run)

    def _record_step(self, run: _Run, step: StepRecord) -> None:
        run.steps.append(step)
        self.store.save_step(step)
        if self.hooks.step_finished:
            self.hooks.emit(self.hooks.step_finished, step=step)

    def _check_budget(self, run: _Run) -> None:
        budget = self.budget
        if run.status is not RunStatus.RUNNING and run.status is not RunStatus.NEEDS_REVIEW:
            return
        usage = run.usage
        if budget.max_tokens is not None and usage.total_tokens > budget.max_tokens:
            run.status = RunStatus.FAILED
            run.error = BudgetExceeded(
                f"run `{run.run_id}` used {usage.total_tokens} tokens, over its budget of "
                f"{budget.max_tokens}; raise Budget(max_tokens=...) or shorten the prompts"
            )
        elif (
            budget.max_cost is not None and usage.cost is not None and usage.cost > budget.max_cost
        ):
            run.status = RunStatus.FAILED
            run.error = BudgetExceeded(
                f"run `{run.run_id}` cost {usage.cost:.4f}, over its budget of "
                f"{budget.max_cost:.4f}; raise Budget(max_cost=...) or use a cheaper model"
            )

    async def _end(self, run: _Run, scope: HookScope, token: Token[HookScope | None]) -> RunRecord:
        """Finish the run once its async hooks are done; a hook error in `run_finished` is
        still kept on the stored record."""
        try:
            await self.hooks.settle(scope)
            record = self._finish(run)
            await self.hooks.settle(scope)
            if len(run.warnings) != len(record.warnings):
                record = replace(record, warnings=tuple(run.warnings))
                self.store.save_run(record)
            return record
        finally:
            self.hooks.leave(token)

    def _finish(self, run: _Run) -> RunRecord:
        if run.status is RunStatus.RUNNING:
            run.status = RunStatus.NEEDS_REVIEW if run.reviews else RunStatus.COMPLETED
        error = run.error
        record = RunRecord(
            run_id=run.run_id,
            pipeline=self.pipeline.name,
            document_id=run.document.id,
            document_hash=run.document.hash,
            status=run.status,
            outputs=run.state.outputs(),
            steps=tuple(run.steps),
            reviews=tuple(run.reviews.values()),
            decisions=tuple(run.decisions),
            error=error if isinstance(error, ErrorInfo) or error is None else _error_info(error),
            started_at=run.started_at,
            ended_at=now(),
            duration_s=run.elapsed + time.perf_counter() - run.t0,
            usage=run.usage,
            document=run.document,
            trace_context=dict(run.trace_context),
            warnings=tuple(run.warnings),
            model=run.spec,
            pipeline_version=run.version or self.pipeline.fingerprint,
        )
        self.store.save_run(record)
        if self.hooks.run_finished:
            self.hooks.emit(self.hooks.run_finished, run=record)
        return record

    # --- review decisions ----------------------------------------------------------------------

    def _apply_decision(
        self,
        run: _Run,
        node: Node,
        request: ReviewRequest,
        decision: ReviewDecision,
        output: Any,
        updates: dict[str, Any],
    ) -> None:
        paused = next(s for s in reversed(run.steps) if s.review_id == request.review_id)
        taken: list[str] = []
        if decision.action == "reject":
            rejected_edges = [
                e.target for e in self.pipeline.plans[node.name].out if REJECTED_ROUTE in e.routes
            ]
            status = StepStatus.REJECTED
            taken = rejected_edges
            route: str | None = REJECTED_ROUTE
        else:
            status = StepStatus.COMPLETED
            route = output if isinstance(node, Classify) else paused.route
            state = run.state.with_output(node.name, output)
            for key, value in updates.items():
                state = state.with_output(key, value)
            run.state = state
            taken = self._taken(node.name, route, state)
        step = StepRecord(
            run_id=run.run_id,
            node=node.name,
            kind=node.kind,
            visit=paused.visit,
            status=status,
            output=output,
            confidence=paused.confidence,
            field_confidence=paused.field_confidence,
            checks=paused.checks,
            route=route,
            next=tuple(taken),
            started_at=now(),
            usage=NO_USAGE,
            model=paused.model,
            review_id=request.review_id,
            updates=updates,
            examples=paused.examples,
        )
        self._record_step(run, step)
        if status is StepStatus.REJECTED and not taken:
            run.status = RunStatus.REJECTED
            run.error = ErrorInfo(
                type="Rejected", message=decision.reason or f"`{node.name}` rejected by a reviewer"
            )
            return
        run.sched.finish(node.name, taken)

    def _rebuild(self, record: RunRecord) -> _Run:
        """Reconstruct a paused run from its records, without executing anything."""
        document = (
            record.document
            if isinstance(record.document, Document)
            else Document.of(record.document or "")
        )
        sched = Scheduler(self.pipeline.plans, self.pipeline.start, self._sources)
        run = _Run(record.run_id, document, sched)
        run.started_at = record.started_at or run.started_at
        run.elapsed = record.duration_s
        run.steps = list(record.steps)
        run.usage = record.usage
        run.decisions = list(record.decisions)
        run.reviews = {r.review_id: r for r in record.reviews}
        run.trace_context = dict(record.trace_context)
        run.warnings = list(record.warnings)
        self._use_model(run, record.model)
        run.version = record.pipeline_version
        state = run.state
        for step in record.steps:
            if step.status is StepStatus.SUPERSEDED:
                continue
            name = step.node
            if sched.status.get(name) != PAUSED:
                sched.start(name)
            if step.status is StepStatus.NEEDS_REVIEW:
                sched.pause(name)
                continue
            if step.status is StepStatus.COMPLETED:
                state = state.with_output(name, self._revive(name, step.output))
                for key, value in step.updates.items():
                    state = state.with_output(key, self._revive(key, value))
            sched.finish(name, step.next)
        run.state = state
        return run


def _error_info(error: BaseException) -> ErrorInfo:
    name = error.type_name if isinstance(error, RecordedError) else type(error).__name__
    return ErrorInfo(type=name, message=str(error))
