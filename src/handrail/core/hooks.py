"""Observers of runs and steps. Tracing (issue: observability) is one implementation.

Every method is keyword-only and takes `**_`, so a field added later never breaks a user's hooks.
Subclass `Hooks` and override what you need; the runner calls only the methods you override.
A method may be `async def`: the runner awaits it inside the run that caused it, so a slow hook
delays its own run, never the others. A hook never breaks a run: an error it raises is logged
once per hook method and error type (logger `handrail.hooks`), kept on the run's record
(`RunRecord.warnings`), given to the `hook_failed` method of the other hooks (tracing writes a
span event), and the run goes on. docs/hooks.md lists every method and its arguments.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar, Token
from typing import Any

from handrail.core.model import ModelRequest, ModelResponse
from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, StepRecord
from handrail.core.state import Document

log = logging.getLogger("handrail.hooks")


class Hooks:
    """Base class with no-op callbacks."""

    def run_started(
        self,
        *,
        run_id: str,
        pipeline: str,
        document: Document,
        resumed: bool,
        trace_context: dict[str, str],
        **_: Any,
    ) -> None:
        """A run began (or resumed after a review decision).

        `trace_context` is kept with the run: a tracing hook may write headers into it when a run
        starts (e.g. W3C `traceparent`) and gets them back when it resumes, in any process."""

    def run_finished(self, *, run: RunRecord, **_: Any) -> None:
        """A run stopped: completed, failed, rejected, or paused for review."""

    def step_started(self, *, run_id: str, node: str, kind: str, visit: int, **_: Any) -> None:
        """A node started executing."""

    def step_finished(self, *, step: StepRecord, **_: Any) -> None:
        """A node finished executing (any status)."""

    def model_call_started(
        self, *, run_id: str, node: str, call_id: int, model: str, request: ModelRequest, **_: Any
    ) -> None:
        """A call to a model is about to be made (one per attempt, retry or re-ask)."""

    def model_call_finished(
        self,
        *,
        run_id: str,
        node: str,
        call_id: int,
        model: str,
        response: ModelResponse | None,
        error: BaseException | None,
        duration_s: float,
        **_: Any,
    ) -> None:
        """A model call returned (`response`) or raised (`error`)."""

    def review_requested(self, *, request: ReviewRequest, **_: Any) -> None:
        """A run paused for a person."""

    def review_decided(
        self,
        *,
        request: ReviewRequest,
        decision: ReviewDecision,
        trace_context: dict[str, str],
        **_: Any,
    ) -> None:
        """A decision was applied to a review (before the run resumes; `trace_context` as for
        `run_started`)."""

    def hook_failed(
        self, *, run_id: str | None, hook: str, method: str, error: Exception, **_: Any
    ) -> None:
        """Another hook raised `error` in `method` (`hook` is its class name) during run
        `run_id` (None outside a run); the run went on. Tracing records it as a span event.
        An error raised here is only logged."""


_EVENTS = (
    "run_started",
    "run_finished",
    "step_started",
    "step_finished",
    "model_call_started",
    "model_call_finished",
    "review_requested",
    "review_decided",
    "hook_failed",
)


class HookScope:
    """One run's share of the hooks' work: `async` callbacks still to await, in the order they
    were called, and the warnings for hook errors (the run's `warnings`, kept on its record)."""

    __slots__ = ("pending", "run_id", "warnings")

    def __init__(self, run_id: str | None, warnings: list[str]) -> None:
        self.run_id = run_id
        self.pending: deque[tuple[Callable[..., Any], Awaitable[Any]]] = deque()
        self.warnings = warnings


_SCOPE: ContextVar[HookScope | None] = ContextVar("handrail_hook_scope", default=None)
"""The run whose code is executing (asyncio tasks a run starts inherit it)."""


class HookSet:
    """Dispatches each event to the hooks that override it (no cost for the rest), and keeps
    one policy for their errors: logged, kept on the run, never raised (see the module docs)."""

    __slots__ = (*_EVENTS, "_background", "_logged")
    run_started: tuple[Callable[..., Any], ...]
    run_finished: tuple[Callable[..., Any], ...]
    step_started: tuple[Callable[..., Any], ...]
    step_finished: tuple[Callable[..., Any], ...]
    model_call_started: tuple[Callable[..., Any], ...]
    model_call_finished: tuple[Callable[..., Any], ...]
    review_requested: tuple[Callable[..., Any], ...]
    review_decided: tuple[Callable[..., Any], ...]
    hook_failed: tuple[Callable[..., Any], ...]

    def __init__(self, hooks: Sequence[Hooks]) -> None:
        for event in _EVENTS:
            base = getattr(Hooks, event)
            callbacks = tuple(
                getattr(h, event) for h in hooks if getattr(type(h), event, base) is not base
            )
            setattr(self, event, callbacks)
        self._logged: set[tuple[str, str, str]] = set()
        self._background: set[asyncio.Task[Any]] = set()

    def emit(self, callbacks: tuple[Callable[..., Any], ...], **kwargs: Any) -> None:
        """Call each callback; an `async` one is awaited later by `settle` (or, outside a run,
        in a task of its own). Errors are handled by `failed`, never raised."""
        for callback in callbacks:
            try:
                result = callback(**kwargs)
            except Exception as e:
                self.failed(callback, e)
                continue
            if inspect.isawaitable(result):
                self.later(callback, result)

    def later(
        self,
        callback: Callable[..., Any],
        awaitable: Awaitable[Any],
        scope: HookScope | None = None,
    ) -> None:
        """Await an `async` callback's result later: with its run (`settle`), or outside any
        run in a task of its own (`drain` waits for those)."""
        scope = scope if scope is not None else _SCOPE.get()
        if scope is not None:
            scope.pending.append((callback, awaitable))
        else:
            self._detach(callback, awaitable)

    @staticmethod
    def scope() -> HookScope | None:
        """The run the running code belongs to, if any (see `enter`)."""
        return _SCOPE.get()

    def enter(self, run_id: str, warnings: list[str]) -> tuple[HookScope, Token[HookScope | None]]:
        """Make `run_id` the run hook errors and `async` callbacks belong to, in this task and
        the tasks it starts; undo with `leave`."""
        scope = HookScope(run_id, warnings)
        return scope, _SCOPE.set(scope)

    def leave(self, token: Token[HookScope | None]) -> None:
        _SCOPE.reset(token)

    async def settle(self, scope: HookScope) -> None:
        """Await the run's pending `async` callbacks, oldest first."""
        while scope.pending:
            callback, awaitable = scope.pending.popleft()
            try:
                await awaitable
            except Exception as e:
                self.failed(callback, e, scope)

    async def drain(self) -> None:
        """Await the `async` callbacks started outside any run (e.g. by `Runner.failed_input`)."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    def failed(
        self, callback: Callable[..., Any], error: Exception, scope: HookScope | None = None
    ) -> None:
        """A hook raised: log it (once per hook method and error type), keep it on the run,
        tell the `hook_failed` hooks. The run goes on."""
        owner = getattr(callback, "__self__", None)
        hook = type(owner if owner is not None else callback).__name__
        method = next(
            (event for event in _EVENTS if callback in getattr(self, event)),
            getattr(callback, "__name__", "?"),
        )
        scope = scope if scope is not None else _SCOPE.get()
        message = f"hook {hook}.{method} raised {type(error).__name__}: {error}; the run went on"
        key = (hook, method, type(error).__name__)
        if key not in self._logged:
            self._logged.add(key)
            log.warning(
                "%s (later %s errors of this hook method are kept on their runs only)",
                message,
                type(error).__name__,
            )
        if scope is not None:
            scope.warnings.append(message)
        if method == "hook_failed":
            return  # a report that failed is not reported again
        run_id = scope.run_id if scope is not None else None
        for report in self.hook_failed:
            try:
                result = report(run_id=run_id, hook=hook, method=method, error=error)
            except Exception as e:
                self.failed(report, e, scope)
                continue
            if inspect.isawaitable(result):
                self.later(report, result, scope)

    def _detach(self, callback: Callable[..., Any], awaitable: Awaitable[Any]) -> None:
        async def guarded() -> None:
            try:
                await awaitable
            except Exception as e:
                self.failed(callback, e)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop here: run it to the end now
            asyncio.run(guarded())
            return
        task = loop.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
