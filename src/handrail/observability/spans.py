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

A run paused for review and resumed later, in any process, stays one trace: the run span's
W3C `traceparent` is written into the run's `trace_context` (kept in the store with the run), and
the continuation starts `review_decision {node}` (from the review's creation to the decision:
reviewer, decision, wait) and a new `invoke_workflow {pipeline}` segment, both children of the
first run span.

Prompts and completions are recorded only when `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`
asks for it (`SPAN_ONLY`, `EVENT_ONLY`, `SPAN_AND_EVENT`; `NO_CONTENT` is the default). Messages
that may quote the document (error messages, check messages, review reasons from checks or
exhausted nodes) are likewise replaced by `[redacted: N chars; ...]` unless content is captured;
the error type, node, check name, fields and numbers stay.

Steps of one run execute concurrently in asyncio tasks, so every span is started with an explicit
parent context kept here (by run id, by (run id, node), by (run id, call id)); the ambient
context is never read or changed.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from handrail._version import __version__
from handrail.core.hooks import Hooks
from handrail.core.model import Message, ModelRequest, ModelResponse
from handrail.core.records import (
    CheckResult,
    ReviewDecision,
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

REVIEW_EVALUATION = "handrail.review"
"""`gen_ai.evaluation.name` of a person's decision on a review."""
CAPTURE_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CaptureMode = Literal["NO_CONTENT", "SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"]
_CAPTURE_MODES: dict[str, CaptureMode] = {
    "no_content": "NO_CONTENT",
    "span_only": "SPAN_ONLY",
    "event_only": "EVENT_ONLY",
    "span_and_event": "SPAN_AND_EVENT",
    "false": "NO_CONTENT",  # the boolean form older GenAI instrumentations read
    "true": "SPAN_ONLY",
}
CONTENT_EVENT = "gen_ai.client.inference.operation.details"
HOOK_ERROR_EVENT = "handrail.hook.error"
"""On the run span: a hook raised (`Hooks.hook_failed`); the run went on."""
SAFE_REASONS = frozenset({"low_confidence", "field_low_confidence", "audit", "rejected_band"})
"""Review reasons whose messages handrail composes from numbers and field names only: kept when
content is not captured (the others quote a check's or an error's message)."""
_PROPAGATOR = TraceContextTextMapPropagator()

_K = TypeVar("_K")
_V = TypeVar("_V")


def provider_name(model: str) -> str:
    """`openai/gpt-4o-mini` -> `openai`; a name without `/` (`fake`, `local`) is its own."""
    return model.split("/", 1)[0] if model else "unknown"


def capture_mode(value: str | None) -> tuple[CaptureMode, str | None]:
    """The content-capture mode a value of `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`
    names, and a warning when it names none (then `NO_CONTENT`)."""
    raw = (value or "").strip()
    if not raw:
        return "NO_CONTENT", None
    mode = _CAPTURE_MODES.get(raw.lower())
    if mode is not None:
        return mode, None
    return "NO_CONTENT", (
        f"{CAPTURE_ENV}={raw!r} is not a capture mode; use NO_CONTENT (the default), SPAN_ONLY, "
        "EVENT_ONLY or SPAN_AND_EVENT; prompts and completions are not recorded"
    )


class TracingHooks(Hooks):
    """Writes each run as a trace: a run span, a span per step, a span per model call.

    `tracer_provider` defaults to the global one (`opentelemetry.trace.get_tracer_provider()`),
    which is a no-op until an SDK is configured. `capture_content` (default: the
    `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` variable, else `NO_CONTENT`) says
    whether prompts and completions go on the `chat` spans (`gen_ai.input.messages`,
    `gen_ai.output.messages`), in a `gen_ai.client.inference.operation.details` event, or both.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        capture_content: CaptureMode | str | None = None,
    ) -> None:
        self._tracer: Tracer = trace.get_tracer(
            "handrail", __version__, tracer_provider=tracer_provider
        )
        if capture_content is None:
            capture_content = os.environ.get(CAPTURE_ENV)
        self.capture_content: CaptureMode = capture_mode(capture_content)[0]
        self._content_on_span = self.capture_content in ("SPAN_ONLY", "SPAN_AND_EVENT")
        self._content_event = self.capture_content in ("EVENT_ONLY", "SPAN_AND_EVENT")
        self._messages = self.capture_content != "NO_CONTENT"
        """Whether messages that may quote the document (errors, checks) are recorded as is."""
        self._lock = threading.Lock()
        """Held to sweep a finished run's entries; single dict operations are atomic as is."""
        self._runs: dict[str, Span] = {}
        self._steps: dict[tuple[str, str], Span] = {}
        self._calls: dict[tuple[str, int], tuple[Span, int, str | None]] = {}
        self._awaiting: dict[tuple[str, str], tuple[Span, StepRecord, int]] = {}
        """Steps that paused for review, ended once `review_requested` gives the reasons."""

    # --- runs ----------------------------------------------------------------------------------

    def run_started(
        self,
        *,
        run_id: str,
        pipeline: str,
        document: Document,
        resumed: bool,
        trace_context: dict[str, str] | None = None,
        **_: Any,
    ) -> None:
        carrier = {} if trace_context is None else trace_context
        # A resumed run continues the trace its first span started (a child of that span).
        parent = _PROPAGATOR.extract(carrier, Context()) if resumed and carrier else Context()
        span = self._start_run(run_id, pipeline, document.id, context=parent)
        if resumed:
            span.set_attribute("handrail.run.resumed", True)
        if not carrier:
            _PROPAGATOR.inject(carrier, trace.set_span_in_context(span, Context()))

    def review_decided(
        self,
        *,
        request: ReviewRequest,
        decision: ReviewDecision,
        trace_context: dict[str, str] | None = None,
        **_: Any,
    ) -> None:
        """`review_decision {node}`: from the review's creation to the decision, a child of the
        run's first span (or the root of the run's trace when the run started untraced)."""
        carrier = {} if trace_context is None else trace_context
        parent = _PROPAGATOR.extract(carrier, Context()) if carrier else Context()
        created = request.created_at
        decided = decision.decided_at or created
        wait_s = max((decided - created).total_seconds(), 0.0)
        attributes: dict[str, Any] = {
            "handrail.run.id": request.run_id,
            "handrail.node.name": request.node,
            "handrail.review.id": request.review_id,
            "handrail.review.decision": decision.action,
            "handrail.review.wait_s": wait_s,
            "handrail.review.queue": request.queue,
            "openinference.span.kind": "GUARDRAIL",
        }
        if decision.reviewer:
            attributes["handrail.review.reviewer"] = decision.reviewer
        if decision.reason:
            attributes["handrail.review.reason"] = decision.reason
        span = self._tracer.start_span(
            f"review_decision {request.node}",
            context=parent,
            kind=SpanKind.INTERNAL,
            start_time=_ns_at(created),
            attributes=attributes,
        )
        evaluation: dict[str, Any] = {
            "gen_ai.evaluation.name": REVIEW_EVALUATION,
            "gen_ai.evaluation.score.label": decision.action,
        }
        if decision.reason:
            evaluation["gen_ai.evaluation.explanation"] = decision.reason
        span.add_event(EVALUATION_EVENT, evaluation, timestamp=_ns_at(decided))
        if not carrier:
            _PROPAGATOR.inject(carrier, trace.set_span_in_context(span, Context()))
        span.end(end_time=_ns_at(decided))

    def hook_failed(
        self, *, run_id: str | None, hook: str, method: str, error: Exception, **_: Any
    ) -> None:
        """Another hook raised and the run went on: a `handrail.hook.error` event on the run's
        span (the message only when content capture is on: it may quote the document)."""
        span = self._runs.get(run_id) if run_id is not None else None
        if span is None:
            return
        attributes = {
            "handrail.hook.name": hook,
            "handrail.hook.method": method,
            "exception.type": type(error).__name__,
        }
        if self._content_on_span or self._content_event:
            attributes["exception.message"] = str(error)
        span.add_event(HOOK_ERROR_EVENT, attributes)

    def _start_run(
        self,
        run_id: str,
        pipeline: str,
        document_id: str,
        start_time: int | None = None,
        context: Context | None = None,
    ) -> Span:
        span = self._tracer.start_span(
            f"invoke_workflow {pipeline}",
            context=context or Context(),  # a root unless resuming: never the ambient context
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
            _gate_event(paused, step_record, (), end_time, explain=self._text)
            paused.end(end_time=end_time)
        for call, _start, _prompt in open_calls:  # innermost first
            call.end()
        for step in open_steps:
            step.end()
        if span is None:  # the run ended before it started (an empty document)
            span = self._start_run(run_id, run.pipeline, run.document_id)
            self._runs.pop(run_id, None)
        span.set_attribute("handrail.run.status", str(run.status))
        usage = run.usage
        if usage.total_tokens:
            span.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
        if run.status is RunStatus.FAILED:
            error = run.error
            span.set_attribute("error.type", error.type if error is not None else "Failed")
            span.set_status(
                Status(StatusCode.ERROR, self._text(error.message) if error is not None else None)
            )
        span.end()

    # --- steps ---------------------------------------------------------------------------------

    def step_started(self, *, run_id: str, node: str, kind: str, visit: int, **_: Any) -> None:
        if kind in UNGATED_KINDS:
            # Rules and actions make no model calls, so nothing needs their span while they
            # run: it is written whole when they finish (one SDK call instead of three).
            return
        self._start_step(run_id, node, kind, visit)

    def _start_step(
        self,
        run_id: str,
        node: str,
        kind: str,
        visit: int,
        start_time: int | None = None,
        result: dict[str, Any] | None = None,
    ) -> Span:
        """Starts a step's span; with `result` (the attributes of a finished step), the span
        is the whole step, not kept for model calls."""
        parent = self._runs.get(run_id)
        context = trace.set_span_in_context(parent, Context()) if parent else Context()
        attributes: dict[str, Any] = {
            "handrail.run.id": run_id,
            "handrail.node.name": node,
            "handrail.node.kind": kind,
            "handrail.node.visit": visit,
            "openinference.span.kind": "GUARDRAIL" if kind in GUARDRAIL_KINDS else "CHAIN",
        }
        if result is not None:
            attributes.update(result)
        span = self._tracer.start_span(
            f"{kind} {node}",
            context=context,
            kind=SpanKind.INTERNAL,
            start_time=start_time,
            attributes=attributes,
        )
        if result is None:
            self._steps[(run_id, node)] = span
        return span

    def review_requested(self, *, request: ReviewRequest, **_: Any) -> None:
        # The runner reports the paused step first, then the review with its reasons.
        entry = self._awaiting.pop((request.run_id, request.node), None)
        if entry is not None:
            span, step, end_time = entry
            _gate_event(span, step, request.reasons, end_time, explain=self._text)
            span.end(end_time=end_time)

    def step_finished(self, *, step: StepRecord, **_: Any) -> None:
        key = (step.run_id, step.node)
        span = self._steps.pop(key, None)
        attributes: dict[str, Any] = {
            "handrail.step.status": step.status.value,
            "handrail.attempts": len(step.attempts),
        }
        if step.confidence is not None:
            attributes["handrail.confidence"] = step.confidence.value
            attributes["handrail.confidence.source"] = step.confidence.source
        if step.route is not None:
            attributes["handrail.route"] = step.route
        if step.model is not None:
            attributes["gen_ai.request.model"] = step.model
        if step.review_id is not None:
            attributes["handrail.review.id"] = step.review_id
        if step.checks:
            attributes["handrail.check.count"] = len(step.checks)
            attributes["handrail.check.failed"] = [c.name for c in step.checks if not c.passed]
        if step.error is not None:
            attributes["error.type"] = step.error.type
        end_time: int | None = None
        if span is None:  # a rule or action, or settled by a review decision on resume
            start = _ns(step.started_at.timestamp()) if step.started_at else time.time_ns()
            span = self._start_step(
                step.run_id, step.node, step.kind, step.visit, start, result=attributes
            )
            end_time = start + _ns(step.duration_s)
        else:
            span.set_attributes(attributes)  # one call: the SDK takes its lock once
        for check in step.checks:
            _check_event(span, check, self._text(check.message))
        if step.error is not None and step.status is StepStatus.FAILED:
            span.set_status(Status(StatusCode.ERROR, self._text(step.error.message)))
        if step.status is StepStatus.NEEDS_REVIEW:
            self._awaiting[key] = (span, step, end_time or time.time_ns())
            return
        if step.kind not in UNGATED_KINDS:
            _gate_event(span, step, (), explain=self._text)
        span.end(end_time=end_time)

    # --- model calls ---------------------------------------------------------------------------

    def model_call_started(
        self, *, run_id: str, node: str, call_id: int, model: str, request: ModelRequest, **_: Any
    ) -> None:
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
        prompt: str | None = None
        if self._content_on_span or self._content_event:
            prompt = _input_messages(request.messages)
            if self._content_on_span:
                span.set_attribute("gen_ai.input.messages", prompt)
        self._calls[(run_id, call_id)] = (span, start, prompt)

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
        entry = self._calls.pop((run_id, call_id), None)
        if entry is None:
            return
        span, start, prompt = entry
        if response is not None:
            span.set_attribute("gen_ai.response.model", response.model or model)
            span.set_attribute("gen_ai.usage.input_tokens", response.usage.input_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", response.usage.output_tokens)
            if response.finish_reason is not None:
                span.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
            if prompt is not None:
                completion = _output_messages(response)
                if self._content_on_span:
                    span.set_attribute("gen_ai.output.messages", completion)
                if self._content_event:
                    span.add_event(
                        CONTENT_EVENT,
                        {"gen_ai.input.messages": prompt, "gen_ai.output.messages": completion},
                    )
        if error is not None:
            span.set_attribute("error.type", type(error).__name__)
            span.set_status(Status(StatusCode.ERROR, self._text(str(error))))
        span.end(end_time=start + _ns(duration_s))

    def _text(self, message: str) -> str:
        """`message` as is when content is captured, else how long it was (it may quote the
        document: "cannot parse ticket: ... 4111-1111-1111-1111")."""
        return message if self._messages or not message else redacted(message)


_RAISED = re.compile(r"^([^:\n]{1,200}? raised [A-Za-z_][\w.]*): (.*)$", re.DOTALL)
"""handrail's "rule `parse` raised ValueError: ..." (node and exception class, then the
exception's own message)."""


def redacted(message: str) -> str:
    """What replaces a message that may quote the document when content is not captured: its
    length; the node and exception class of handrail's "`node` raised Type: ..." are kept."""
    raised = _RAISED.match(message)
    if raised is not None:
        return f"{raised.group(1)}: {redacted(raised.group(2))}"
    return f"[redacted: {len(message)} chars; set {CAPTURE_ENV}=SPAN_ONLY to record]"


def _pop_run(spans: dict[tuple[str, _K], _V], run_id: str) -> list[_V]:
    """Removes and returns the entries of `run_id` (keys are (run id, ...))."""
    return [spans.pop(key) for key in list(spans) if key[0] == run_id]  # list(): a snapshot


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)


def _ns_at(moment: datetime) -> int:
    return _ns(moment.timestamp())


def _input_messages(messages: Sequence[Message]) -> str:
    """The prompt as the GenAI conventions' `gen_ai.input.messages` JSON."""
    return json.dumps(
        [{"role": m.role, "parts": [{"type": "text", "content": m.content}]} for m in messages],
        ensure_ascii=False,
    )


def _output_messages(response: ModelResponse) -> str:
    output = response.output
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    message: dict[str, Any] = {
        "role": "assistant",
        "parts": [{"type": "text", "content": text}],
    }
    if response.finish_reason is not None:
        message["finish_reason"] = response.finish_reason
    return json.dumps([message], ensure_ascii=False)


def _reason(reason: ReviewReason, explain: Callable[[str], str]) -> str:
    """A reason that may quote the document: what it is (kind, check), then its message or how
    long it was."""
    said = explain(reason.message)
    if said == reason.message:
        return said
    return f"{reason.kind}{f' `{reason.check}`' if reason.check else ''} {said}"


def _check_event(span: Span, check: CheckResult, explanation: str) -> None:
    span.add_event(
        EVALUATION_EVENT,
        {
            "gen_ai.evaluation.name": check.name,
            "gen_ai.evaluation.score.value": 1.0 if check.passed else 0.0,
            "gen_ai.evaluation.score.label": "pass" if check.passed else "fail",
            "gen_ai.evaluation.explanation": explanation,
        },
    )


def _gate_event(
    span: Span,
    step: StepRecord,
    reasons: tuple[ReviewReason, ...],
    timestamp: int | None = None,
    *,
    explain: Callable[[str], str],
) -> None:
    """The gate's decision: `accepted`, `review` or `rejected`, scored by the confidence (a
    review gate that lets the run through has none: it is `accepted` without a score).
    `explain` passes or redacts messages that may quote the document."""
    if step.status is StepStatus.NEEDS_REVIEW:
        label = "review"
    elif step.status is StepStatus.REJECTED or step.route == "rejected":
        label = "rejected"
    elif step.status is StepStatus.COMPLETED and (
        step.confidence is not None or step.kind in GUARDRAIL_KINDS
    ):
        label = "accepted"
    else:  # failed, fell back or superseded, or no gate: nothing was decided
        return
    attributes: dict[str, Any] = {
        "gen_ai.evaluation.name": GATE_EVALUATION,
        "gen_ai.evaluation.score.label": label,
    }
    if step.confidence is not None:
        attributes["gen_ai.evaluation.score.value"] = step.confidence.value
    explanation = "; ".join(
        r.message if r.kind in SAFE_REASONS else _reason(r, explain) for r in reasons
    )
    if not explanation and step.error is not None:
        explanation = explain(step.error.message)
    if explanation:
        attributes["gen_ai.evaluation.explanation"] = explanation
    span.add_event(EVALUATION_EVENT, attributes, timestamp=timestamp)
