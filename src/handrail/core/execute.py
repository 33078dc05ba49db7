"""Executing one node once: the failure classes of DESIGN §3, each with one owner.

- transport errors (`TransientError`, a node timeout): retried by the node's `RetryPolicy`;
- schema errors: re-asked with the validation errors, at most `max_reasks` times;
- check failures: the check's `on_fail`;
- low confidence: the node's `Gate`;
- exhausted: the node's `Fallback`, else review or failure as `on_exhausted` declares.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from handrail.core.examples import Picked
from handrail.core.gate import run_checks, screen, settle
from handrail.core.model import Message, Model, ModelRequest, ModelResponse
from handrail.core.nodes import (
    MISSING,
    Action,
    Classify,
    Extract,
    LLMNode,
    Node,
    Review,
    Route,
    Rule,
)
from handrail.core.outcome import (
    RULE_CONFIDENCE,
    Exhausted,
    Outcome,
    StepContext,
    replace_outcome,
    total_usage,
)
from handrail.core.prompts import EXAMPLES
from handrail.core.records import (
    NO_USAGE,
    Attempt,
    AttemptKind,
    Confidence,
    ReviewReason,
    StepStatus,
)
from handrail.core.retries import with_retries
from handrail.exceptions import (
    HandrailError,
    LowConfidence,
    OutputInvalid,
    StepFailed,
)

if TYPE_CHECKING:
    from handrail.core.state import Document, State


async def execute(node: Node, ctx: StepContext) -> Outcome:
    """Run `node` once against `ctx.state`; never raises for a node's own failure."""
    try:
        try:
            if isinstance(node, Rule):
                return await _execute_rule(node, ctx)
            if isinstance(node, LLMNode):
                return await _execute_llm(node, ctx, model=None)
            if isinstance(node, Action):
                return await _execute_action(node, ctx)
            if isinstance(node, Review):
                return _execute_review(node, ctx)
            raise StepFailed(f"node `{node.name}` has unknown kind {node.kind!r}", node=node.name)
        except Exhausted as ex:
            return await _exhausted(node, ctx, ex)
    # Failures outside the retry loop (no model, an unknown model name, a prompt that cannot
    # render, a review's `when` raising) still end as this node's failed step, never as a run
    # error without a step record.
    except HandrailError as e:
        return Outcome(status=StepStatus.FAILED, error=e)
    except Exception as e:
        error = StepFailed(f"`{node.name}` raised {type(e).__name__}: {e}", node=node.name)
        error.__cause__ = e
        return Outcome(status=StepStatus.FAILED, error=error)


# --- rules and actions -------------------------------------------------------------------------


def _rule_output(node: Rule, result: Any) -> tuple[Any, str | None]:
    """Split a rule's return value into (output, route), checking the route is declared."""
    if not isinstance(result, Route):
        return result, None
    if result.name not in node.routes():
        declared = ", ".join(f"`{r}`" for r in node.routes()) or "none"
        raise StepFailed(
            f"rule `{node.name}` returned route `{result.name}`, which it does not declare "
            f"(declared: {declared}); add it to routes=[...] and give it an edge",
            node=node.name,
        )
    return result.output, result.name


async def _call_rule(node: Rule, state: State, attempts: list[Attempt]) -> tuple[Any, str | None]:
    try:
        result = node.fn(state)
        if hasattr(result, "__await__"):
            result = await result
        return _rule_output(node, result)
    except HandrailError as e:
        raise Exhausted(e, attempts, NO_USAGE) from e
    except Exception as e:
        error = StepFailed(f"rule `{node.name}` raised {type(e).__name__}: {e}", node=node.name)
        error.__cause__ = e
        raise Exhausted(error, attempts, NO_USAGE) from e


async def execute_simple_rule(node: Rule, state: State) -> Outcome:
    """The hot path for a rule without checks: no step context, one coroutine."""
    try:
        result = node.fn(state)
        if hasattr(result, "__await__"):
            result = await result
        output, route = _rule_output(node, result)
    except Exception as e:
        if not isinstance(e, HandrailError):
            error: BaseException = StepFailed(
                f"rule `{node.name}` raised {type(e).__name__}: {e}", node=node.name
            )
            error.__cause__ = e
        else:
            error = e
        return await _exhausted(node, None, Exhausted(error, [], NO_USAGE))
    return Outcome(
        status=StepStatus.COMPLETED, output=output, route=route, confidence=RULE_CONFIDENCE
    )


async def _execute_rule(node: Rule, ctx: StepContext) -> Outcome:
    retries: dict[str, int] = {}
    attempts: list[Attempt] = []
    while True:
        output, route = await _call_rule(node, ctx.state, attempts)
        verdict = run_checks(node, output, ctx.state, retries, attempts, NO_USAGE)
        if verdict.retry is not None:
            continue
        return settle(
            node, ctx, verdict, output, route, RULE_CONFIDENCE, {}, attempts, NO_USAGE, None
        )


def idempotency_key(run_id: str, node: str, visit: int) -> str:
    """The key an `Action` passes to the system it calls (run id + node, + visit in loops)."""
    return f"{run_id}:{node}" if visit == 1 else f"{run_id}:{node}:{visit}"


async def _execute_action(node: Action, ctx: StepContext) -> Outcome:
    key = idempotency_key(ctx.run_id, node.name, ctx.visit)
    attempts: list[Attempt] = []

    async def call() -> Any:
        if inspect.iscoroutinefunction(node.fn):
            return await node.fn(ctx.state, key)
        result = await asyncio.to_thread(node.fn, ctx.state, key)
        return await result if inspect.isawaitable(result) else result

    retries: dict[str, int] = {}
    while True:
        output = await with_retries(node, node.retry, call, attempts, kind="call")
        verdict = run_checks(node, output, ctx.state, retries, attempts, NO_USAGE)
        if verdict.retry is None:
            return settle(node, ctx, verdict, output, None, None, {}, attempts, NO_USAGE, None)


def _execute_review(node: Review, ctx: StepContext) -> Outcome:
    if node.when is not None and not node.when(ctx.state):
        return Outcome(status=StepStatus.COMPLETED, output="not_required")
    message = node.message(ctx.state) if callable(node.message) else node.message
    reason = ReviewReason(
        kind="review_node", message=message or f"`{node.of}` needs a person's approval"
    )
    return Outcome(
        status=StepStatus.NEEDS_REVIEW,
        output=ctx.state[node.of],
        reasons=(reason,),
        review_target=node.of,
    )


# --- LLM nodes ---------------------------------------------------------------------------------


def _context(node: LLMNode, ctx: StepContext, picked: Picked | None) -> dict[str, Any]:
    state = ctx.state
    context: dict[str, Any] = dict(state.outputs())
    schema = node.output_schema()
    context.update(
        document=state.document,
        text=state.document.text,
        labels=node.labels(),
        schema=json.dumps(schema, indent=2) if schema is not None else "",
        node=node.name,
    )
    if picked is not None:
        context[EXAMPLES] = picked.shown
    else:  # a node named `examples` keeps its output under its name
        context.setdefault(EXAMPLES, ())
    return context


def resolve_model(spec: str | Model | None, ctx: StepContext, node: Node) -> Model:
    if spec is None:
        if ctx.default_model is None:
            raise StepFailed(
                f"`{node.name}` needs a model but the runner has none; pass "
                "Runner(pipeline, model=...) or --model",
                node=node.name,
            )
        return ctx.default_model
    if isinstance(spec, str):
        model = ctx.models.get(spec)
        if model is None:
            raise StepFailed(
                f"`{node.name}` asks for model {spec!r}, which the runner does not "
                f"know; pass Runner(..., models={{{spec!r}: ...}})",
                node=node.name,
            )
        return model
    return spec


def _validate(node: LLMNode, raw: Any) -> Any:
    adapter = node.output_adapter()
    if adapter is None:
        return raw
    if isinstance(node, Classify) and isinstance(raw, str):
        wanted = raw.strip().strip('"').strip()
        for label in node.labels():
            if label.lower() == wanted.lower():
                return label
        return adapter.validate_python(wanted)
    if isinstance(raw, str | bytes) and node.output_schema() is not None:
        return adapter.validate_json(raw)
    return adapter.validate_python(raw)


def _reask_message(node: LLMNode, error: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'output'}: {e['msg']}" for e in error.errors()
    )
    if isinstance(node, Classify):
        return (
            f"That answer is not valid ({problems}). Answer with exactly one of: "
            f"{', '.join(node.labels())}."
        )
    return (
        f"That output does not match the schema ({problems}). Reply again with the "
        "corrected output only."
    )


def _raw_text(raw: Any) -> str:
    if isinstance(raw, str):
        return raw
    if isinstance(raw, BaseModel):
        return raw.model_dump_json()
    try:
        return json.dumps(raw, ensure_ascii=False)
    except TypeError:
        return repr(raw)


async def _execute_llm(node: LLMNode, ctx: StepContext, *, model: Model | None) -> Outcome:
    picked = None
    if node.examples is not None:
        picked = node.examples.pick(ctx.state.document.text, node=node.name, labels=node.labels())
    try:
        return await _ask(node, ctx, model, picked)
    except Exhausted as ex:  # a failed step still says which examples it showed
        if picked is not None and ex.examples is None:
            ex.examples = picked.signals
        raise


async def _ask(
    node: LLMNode, ctx: StepContext, model: Model | None, picked: Picked | None
) -> Outcome:
    model = model or resolve_model(node.model, ctx, node)
    prompt = ctx.pipeline.prompts[node.name]
    messages: list[Message] = prompt.render(_context(node, ctx, picked))
    schema = node.output_schema()
    document = ctx.state.document
    images = image_pages(node, document)
    attempts: list[Attempt] = []
    retries: dict[str, int] = {}
    reasks = 0

    async def call_once(request: ModelRequest) -> ModelResponse:
        ctx.call_ids[0] += 1
        call_id = ctx.call_ids[0]
        hooks = ctx.hooks
        if hooks.model_call_started:
            hooks.emit(
                hooks.model_call_started,
                run_id=ctx.run_id,
                node=node.name,
                call_id=call_id,
                model=model.name,
                request=request,
            )
        started = time.perf_counter()
        response: ModelResponse | None = None
        error: BaseException | None = None
        try:
            response = await model.generate(request)
            return response
        except BaseException as e:
            error = e
            raise
        finally:
            if hooks.model_call_finished:
                hooks.emit(
                    hooks.model_call_finished,
                    run_id=ctx.run_id,
                    node=node.name,
                    call_id=call_id,
                    model=model.name,
                    response=response,
                    error=error,
                    duration_s=time.perf_counter() - started,
                )

    kind: AttemptKind = "call"
    while True:
        request = ModelRequest(
            node=node.name,
            kind=node.kind,
            messages=tuple(messages),
            output_schema=schema,
            output_type=getattr(node, "schema", None),
            labels=node.labels(),
            attempt=len(attempts) + 1,
            document_id=document.id,
            run_id=ctx.run_id,
            params=node.params,
            images=images,
            document=document,
        )
        response: ModelResponse = await with_retries(
            node,
            node.retry,
            lambda request=request: call_once(request),
            attempts,
            kind=kind,
            model=model.name,
        )
        response, unreadable = screen(node, response)  # NaN and friends never reach the gate
        if response.warnings or response.images_sent:
            attempts[-1] = replace(
                attempts[-1],
                warnings=tuple(response.warnings),
                images=tuple(response.images_sent),
            )
        usage = total_usage(attempts)
        try:
            output = _validate(node, response.output)
        except ValidationError as e:
            attempts[-1] = replace_outcome(attempts[-1], "invalid_output", str(e))
            if reasks >= node.max_reasks:
                count = e.error_count()
                error = OutputInvalid(
                    f"`{node.name}` returned output that does not fit its schema after "
                    f"{reasks + 1} tries ({count} error{'s' * (count != 1)}, first: "
                    f"{e.errors()[0]['msg']}); raise max_reasks, simplify the schema or use a "
                    "stronger model",
                    node=node.name,
                    attempts=reasks + 1,
                    errors=e.errors(),
                )
                raise Exhausted(error, attempts, usage) from e
            reasks += 1
            kind = "reask"
            messages = [
                *messages,
                Message(role="assistant", content=_raw_text(response.output)),
                Message(role="user", content=_reask_message(node, e)),
            ]
            continue
        confidence, field_confidence = _confidence(node, response, output)
        signals = None
        if picked is not None:
            label = output if isinstance(node, Classify) else None
            confidence, signals = picked.judge(label, confidence)
        verdict = run_checks(node, output, ctx.state, retries, attempts, usage)
        if verdict.retry is not None:
            kind = "check_retry"
            messages = [
                *messages,
                Message(role="assistant", content=_raw_text(response.output)),
                Message(
                    role="user",
                    content=(
                        f"The output failed a check: {verdict.retry.message or verdict.retry.name}."
                        " Correct it and reply again."
                    ),
                ),
            ]
            continue
        if confidence is None and verdict.results and not isinstance(node, Classify | Extract):
            passed = sum(r.passed for r in verdict.results)
            confidence = Confidence(value=passed / len(verdict.results), source="checks")
        return settle(
            node,
            ctx,
            verdict,
            output,
            output if isinstance(node, Classify) else None,
            confidence,
            field_confidence,
            attempts,
            usage,
            response.model or model.name,
            unreadable,
            examples=signals,
        )


def image_pages(node: LLMNode, document: Document) -> tuple[int, ...]:
    """The pages `node` shows its model as images: the document's first `images` pages (none
    for a text-only node, or a document without pages)."""
    limit = node.images if isinstance(node, Extract) else 0
    return tuple(page.number for page in document.pages[:limit])


def _confidence(
    node: LLMNode, response: ModelResponse, output: Any
) -> tuple[Confidence | None, Mapping[str, Confidence]]:
    if isinstance(node, Classify):
        if response.label_scores and output in response.label_scores:
            source = response.confidence.source if response.confidence else "logprobs"
            return Confidence(value=float(response.label_scores[output]), source=source), {}
        return response.confidence, {}
    if isinstance(node, Extract) and response.field_confidence:
        fields = response.field_confidence
        if response.confidence is not None:
            return response.confidence, fields
        required = [f for f, info in node.schema.model_fields.items() if info.is_required()]
        scored = [fields[f] for f in (required or list(fields)) if f in fields]
        if scored:
            low = min(scored, key=lambda c: c.value)
            return Confidence(value=low.value, source=low.source), fields
        return None, fields
    return response.confidence, response.field_confidence


async def _exhausted(node: Node, ctx: StepContext | None, ex: Exhausted) -> Outcome:
    fallback = node.fallback
    base = ex.as_outcome()
    if fallback is not None:
        if fallback.node is not None:
            base.status = StepStatus.FALLBACK
            return base
        if fallback.default is not MISSING:
            base.status = StepStatus.COMPLETED
            base.output = fallback.default
            base.confidence = Confidence(value=0.0, source="fallback")
            base.route = fallback.default if isinstance(node, Classify) else None
            return base
        if fallback.model is not None and isinstance(node, LLMNode):
            assert ctx is not None, "LLM nodes always execute with a step context"
            try:
                model = resolve_model(fallback.model, ctx, node)
            except StepFailed as e:  # keep the attempts made before the fallback was needed
                base.error = e
                return base
            try:
                outcome = await _execute_llm(node, ctx, model=model)
            except Exhausted as again:
                ex = Exhausted(
                    again.error,
                    [*ex.attempts, *again.attempts],
                    ex.usage + again.usage,
                    again.checks,
                    again.output,
                    again.confidence,
                )
                base = ex.as_outcome()
            else:
                outcome.attempts = [*ex.attempts, *(_as_fallback(a) for a in outcome.attempts)]
                outcome.usage = ex.usage + outcome.usage
                return outcome
    if node.on_exhausted == "review":
        base.status = StepStatus.NEEDS_REVIEW
        error = ex.error
        if isinstance(error, LowConfidence):
            reason = ReviewReason(
                kind="rejected_band",
                message=str(error),
                value=error.value,
                threshold=error.threshold,
            )
        else:
            reason = ReviewReason(kind="exhausted", message=str(error))
        base.reasons = (reason,)
    return base


def _as_fallback(attempt: Attempt) -> Attempt:
    return replace(attempt, kind="fallback_model") if attempt.kind == "call" else attempt
