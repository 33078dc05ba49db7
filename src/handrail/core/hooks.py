"""Observers of runs and steps. Tracing (issue: observability) is one implementation.

Every method is keyword-only and takes `**_`, so a field added later never breaks a user's hooks.
Subclass `Hooks` and override what you need; the runner calls only the methods you override.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from handrail.core.model import ModelRequest, ModelResponse
from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, StepRecord
from handrail.core.state import Document


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


_EVENTS = (
    "run_started",
    "run_finished",
    "step_started",
    "step_finished",
    "model_call_started",
    "model_call_finished",
    "review_requested",
    "review_decided",
)


class HookSet:
    """Dispatches each event to the hooks that override it (no cost for the rest)."""

    __slots__ = _EVENTS
    run_started: tuple[Callable[..., Any], ...]
    run_finished: tuple[Callable[..., Any], ...]
    step_started: tuple[Callable[..., Any], ...]
    step_finished: tuple[Callable[..., Any], ...]
    model_call_started: tuple[Callable[..., Any], ...]
    model_call_finished: tuple[Callable[..., Any], ...]
    review_requested: tuple[Callable[..., Any], ...]
    review_decided: tuple[Callable[..., Any], ...]

    def __init__(self, hooks: Sequence[Hooks]) -> None:
        for event in _EVENTS:
            base = getattr(Hooks, event)
            callbacks = tuple(
                getattr(h, event) for h in hooks if getattr(type(h), event, base) is not base
            )
            setattr(self, event, callbacks)

    def emit(self, callbacks: tuple[Callable[..., Any], ...], **kwargs: Any) -> None:
        for callback in callbacks:
            callback(**kwargs)
