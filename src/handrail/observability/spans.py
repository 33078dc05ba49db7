"""Spans per run, step and model call, following the OpenTelemetry GenAI conventions.

Span tree (names and attributes exactly as DESIGN §6):

- `invoke_workflow {pipeline}` (INTERNAL), a root span: `gen_ai.operation.name`,
  `gen_ai.workflow.name`, `handrail.run.id`, `handrail.document.id`, `handrail.run.status`.
- `{kind} {node}` (INTERNAL), child of the run span: `handrail.node.*`, `handrail.confidence*`,
  `handrail.route`, `handrail.attempts`, `handrail.check.*` and `openinference.span.kind`:
  `GUARDRAIL` for `review` gates (they only judge another node's output), `CHAIN` for LLM nodes,
  rules and actions (they produce an output).
- `chat {model}` (CLIENT), child of its step span, one per model call: every transport retry and
  every re-ask is its own span.

Check results and the confidence gate's decision are `gen_ai.evaluation.result` events on the
step span.

Not done yet (later parts of issue 5): prompts and completions are never recorded (content
capture behind `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`); a run resumed after a
review starts a new trace that is not yet linked to the first one, and the review decision has
no span of its own; no metrics.

Steps of one run execute concurrently in asyncio tasks, so every span is started with an explicit
parent context kept here (by run id, by (run id, node), by (run id, call id)); the ambient
context is never read or changed.
"""

from __future__ import annotations

import threading
import time
from typing import Any, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider

from handrail._version import __version__
from handrail.core.hooks import Hooks
from handrail.core.model import ModelRequest, ModelResponse
from handrail.core.records import (
    CheckResult,
    ReviewReason,
    ReviewRequest,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from handrail.core.state import Document

GUARDRAIL_KINDS = frozenset({"review"})
"""Node kinds whose spans are `openinference.span.kind=GUARDRAIL`; the rest are `CHAIN`."""
UNGATED_KINDS = frozenset({"rule", "action"})
"""Node kinds without a confidence gate: no gate evaluation event."""
EVALUATION_EVENT = "gen_ai.evaluation.result"
GATE_EVALUATION = "handrail.gate"
"""`gen_ai.evaluation.name` of the gate decision event."""

_K = TypeVar("_K")
_V = TypeVar("_V")


def provider_name(model: str) -> str:
    """`openai/gpt-4o-mini` -> `openai`; a name without `/` (`fake`, `local`) is its own."""
    return model.split("/", 1)[0] if model else "unknown"


class TracingHooks(Hooks):
    """Writes each run as a trace: a run span, a span per step, a span per model call.

    `tracer_provider` defaults to the global one (`opentelemetry.trace.get_tracer_provider()`),
    which is a no-op until an SDK is configured.
    """

    def __init__(self, *, tracer_provider: TracerProvider | None = None) -> None:
        self._tracer: Tracer = trace.get_tracer(
            "handrail", __version__, tracer_provider=tracer_provider
        )
        self._lock = threading.Lock()
        self._runs: dict[str, Span] = {}
        self._steps: dict[tuple[str, str], Span] = {}
        self._calls: dict[tuple[str, int], tuple[Span, int]] = {}
        self._awaiting: dict[tuple[str, str], tuple[Span, StepRecord, int]] = {}
        """Steps that paused for review, ended once `review_requested` gives the reasons."""

    # --- runs ----------------------------------------------------------------------------------

    def run_started(
        self, *, run_id: str, pipeline: str, document: Document, resumed: bool, **_: Any
    ) -> None:
        span = self._start_run(run_id, pipeline, document.id)
        if resumed:
            span.set_attribute("handrail.run.resumed", True)

    def _start_run(
        self, run_id: str, pipeline: str, document_id: str, start_time: int | None = None
    ) -> Span:
        span = self._tracer.start_span(
            f"invoke_workflow {pipeline}",
            context=Context(),  # a root: never the ambient context
            kind=SpanKind.INTERNAL,
            start_time=start_time,
            attributes={
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.workflow.name": pipeline,
                "handrail.run.id": run_id,
                "handrail.document.id": document_id,
                "openinference.span.kind": "CHAIN",
            },
        )
        with self._lock:
            self._runs[run_id] = span
        return span

    def run_finished(self, *, run: RunRecord, **_: Any) -> None:
        run_id = run.run_id
        with self._lock:
            span = self._runs.pop(run_id, None)
            open_steps = _pop_run(self._steps, run_id)
            open_calls = _pop_run(self._calls, run_id)
            awaiting = _pop_run(self._awaiting, run_id)
        for paused, step_record, end_time in awaiting:
            _gate_event(paused, step_record, ())
            paused.end(end_time=end_time)
        for call, _start in open_calls:  # innermost first
            call.end()
        for step in open_steps:
            step.end()
        if span is None:  # the run ended before it started (an empty document)
            span = self._start_run(run_id, run.pipeline, run.document_id)
            with self._lock:
                self._runs.pop(run_id, None)
        span.set_attribute("handrail.run.status", str(run.status))
        usage = run.usage
        if usage.total_tokens:
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        if run.status is RunStatus.FAILED:
            error = run.error
            span.set_attribute("error.type", error.type if error is not None else "Failed")
            span.set_status(Status(StatusCode.ERROR, error.message if error is not None else None))
        span.end()

    # --- steps ---------------------------------------------------------------------------------

    def step_started(self, *, run_id: str, node: str, kind: str, visit: int, **_: Any) -> None:
        self._start_step(run_id, node, kind, visit)

    def _start_step(
        self, run_id: str, node: str, kind: str, visit: int, start_time: int | None = None
    ) -> Span:
        with self._lock:
            parent = self._runs.get(run_id)
        context = trace.set_span_in_context(parent, Context()) if parent else Context()
        span = self._tracer.start_span(
            f"{kind} {node}",
            context=context,
            kind=SpanKind.INTERNAL,
            start_time=start_time,
            attributes={
                "handrail.run.id": run_id,
                "handrail.node.name": node,
                "handrail.node.kind": kind,
                "handrail.node.visit": visit,
                "openinference.span.kind": "GUARDRAIL" if kind in GUARDRAIL_KINDS else "CHAIN",
            },
        )
        with self._lock:
            self._steps[(run_id, node)] = span
        return span

    def review_requested(self, *, request: ReviewRequest, **_: Any) -> None:
        # The runner reports the paused step first, then the review with its reasons.
        with self._lock:
            entry = self._awaiting.pop((request.run_id, request.node), None)
        if entry is not None:
            span, step, end_time = entry
            _gate_event(span, step, request.reasons)
            span.end(end_time=end_time)

    def step_finished(self, *, step: StepRecord, **_: Any) -> None:
        key = (step.run_id, step.node)
        with self._lock:
            span = self._steps.pop(key, None)
        end_time: int | None = None
        if span is None:  # settled without a step_started (e.g. a review decision on resume)
            start = _ns(step.started_at.timestamp()) if step.started_at else time.time_ns()
            span = self._start_step(step.run_id, step.node, step.kind, step.visit, start)
            with self._lock:
                self._steps.pop(key, None)
            end_time = start + _ns(step.duration_s)
        span.set_attribute("handrail.step.status", str(step.status))
        span.set_attribute("handrail.attempts", len(step.attempts))
        if step.confidence is not None:
            span.set_attribute("handrail.confidence", step.confidence.value)
            span.set_attribute("handrail.confidence.source", step.confidence.source)
        if step.route is not None:
            span.set_attribute("handrail.route", step.route)
        if step.model is not None:
            span.set_attribute("gen_ai.request.model", step.model)
        if step.review_id is not None:
            span.set_attribute("handrail.review.id", step.review_id)
        if step.checks:
            failed = [c.name for c in step.checks if not c.passed]
            span.set_attribute("handrail.check.count", len(step.checks))
            span.set_attribute("handrail.check.failed", failed)
            for check in step.checks:
                _check_event(span, check)
        if step.error is not None:
            span.set_attribute("error.type", step.error.type)
            if step.status is StepStatus.FAILED:
                span.set_status(Status(StatusCode.ERROR, step.error.message))
        if step.status is StepStatus.NEEDS_REVIEW:
            with self._lock:
                self._awaiting[key] = (span, step, end_time or time.time_ns())
            return
        if step.kind not in UNGATED_KINDS:
            _gate_event(span, step, ())
        span.end(end_time=end_time)

    # --- model calls ---------------------------------------------------------------------------

    def model_call_started(
        self, *, run_id: str, node: str, call_id: int, model: str, request: ModelRequest, **_: Any
    ) -> None:
        with self._lock:
            parent = self._steps.get((run_id, node)) or self._runs.get(run_id)
        context = trace.set_span_in_context(parent, Context()) if parent else Context()
        start = time.time_ns()
        span = self._tracer.start_span(
            f"chat {model}",
            context=context,
            kind=SpanKind.CLIENT,
            start_time=start,
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider_name(model),
                "gen_ai.request.model": model,
                "gen_ai.output.type": "json" if request.output_schema is not None else "text",
                "handrail.node.name": node,
                "handrail.attempt": request.attempt,
                "openinference.span.kind": "LLM",
            },
        )
        with self._lock:
            self._calls[(run_id, call_id)] = (span, start)

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
        with self._lock:
            entry = self._calls.pop((run_id, call_id), None)
        if entry is None:
            return
        span, start = entry
        if response is not None:
            span.set_attribute("gen_ai.response.model", response.model or model)
            span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
            if response.finish_reason is not None:
                span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, str(error)))
        span.end(end_time=start + _ns(duration_s))


def _pop_run(spans: dict[tuple[str, _K], _V], run_id: str) -> list[_V]:
    """Removes and returns the entries of `run_id` (keys are (run id, ...))."""
    return [spans.pop(key) for key in [key for key in spans if key[0] == run_id]]


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _check_event(span: Span, check: CheckResult) -> None:
    span.add_event(
        EVALUATION_EVENT,
        {
            "gen_ai.evaluation.name": check.name,
            "gen_ai.evaluation.score.value": 1.0 if check.passed else 0.0,
            "gen_ai.evaluation.score.label": "pass" if check.passed else "fail",
            "gen_ai.evaluation.explanation": check.message,
        },
    )


def _gate_event(span: Span, step: StepRecord, reasons: tuple[ReviewReason, ...]) -> None:
    """The gate's decision: `accepted`, `review` or `rejected`, scored by the confidence."""
    if step.status is StepStatus.NEEDS_REVIEW:
        label = "review"
    elif step.status is StepStatus.REJECTED or step.route == "rejected":
        label = "rejected"
    elif step.status is StepStatus.COMPLETED and step.confidence is not None:
        label = "accepted"
    else:  # failed, fell back or superseded, or no gate: nothing was decided
        return
    attributes: dict[str, Any] = {
        "gen_ai.evaluation.name": GATE_EVALUATION,
        "gen_ai.evaluation.score.label": label,
    }
    if step.confidence is not None:
        attributes["gen_ai.evaluation.score.value"] = step.confidence.value
    explanation = "; ".join(r.message for r in reasons)
    if not explanation and step.error is not None:
        explanation = step.error.message
    if explanation:
        attributes["gen_ai.evaluation.explanation"] = explanation
    span.add_event(EVALUATION_EVENT, attributes)
