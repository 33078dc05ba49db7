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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from handrail._utils import unit_hash
from handrail.core.model import Message, Model, ModelRequest, ModelResponse
from handrail.core.nodes import (
    MISSING,
    Action,
    Check,
    Classify,
    Extract,
    LLMNode,
    Node,
    RetryPolicy,
    Review,
    Route,
    Rule,
)
from handrail.core.records import (
    NO_USAGE,
    Attempt,
    AttemptKind,
    CheckResult,
    Confidence,
    ReviewReason,
    StepStatus,
    Usage,
)
from handrail.exceptions import (
    CheckFailed,
    HandrailError,
    LowConfidence,
    OutputInvalid,
    ProviderTimeout,
    RateLimited,
    RetriesExhausted,
    StepFailed,
    TransientError,
)

if TYPE_CHECKING:
    from handrail.core.hooks import HookSet
    from handrail.core.pipeline import Pipeline
    from handrail.core.state import State


@dataclass(kw_only=True, slots=True)
class Outcome:
    """What executing a node produced, before the runner applies it to the run."""

    status: StepStatus
    output: Any = None
    route: str | None = None
    confidence: Confidence | None = None
    field_confidence: Mapping[str, Confidence] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    attempts: list[Attempt] = field(default_factory=list)
    usage: Usage = NO_USAGE
    model: str | None = None
    error: BaseException | None = None
    reasons: tuple[ReviewReason, ...] = ()
    review_target: str | None = None
    """For a `Review` gate: the node whose output the reviewer sees and may edit."""


@dataclass(kw_only=True, slots=True)
class StepContext:
    """What a node execution needs from its run."""

    run_id: str
    pipeline: Pipeline
    state: State
    visit: int
    hooks: HookSet
    models: Mapping[str, Model]
    default_model: Model | None
    call_ids: list[int]


class _Exhausted(Exception):
    """Internal: the node ran out of tries; carries the error and the last output seen."""

    def __init__(
        self,
        error: BaseException,
        attempts: list[Attempt],
        usage: Usage,
        checks: tuple[CheckResult, ...] = (),
        output: Any = None,
        confidence: Confidence | None = None,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts
        self.usage = usage
        self.checks = checks
        self.output = output
        self.confidence = confidence


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
        except _Exhausted as ex:
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
        raise _Exhausted(e, attempts, NO_USAGE) from e
    except Exception as e:
        error = StepFailed(f"rule `{node.name}` raised {type(e).__name__}: {e}", node=node.name)
        error.__cause__ = e
        raise _Exhausted(error, attempts, NO_USAGE) from e


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
        return await _exhausted(node, None, _Exhausted(error, [], NO_USAGE))
    return Outcome(
        status=StepStatus.COMPLETED, output=output, route=route, confidence=_RULE_CONFIDENCE
    )


async def _execute_rule(node: Rule, ctx: StepContext) -> Outcome:
    retries: dict[str, int] = {}
    attempts: list[Attempt] = []
    while True:
        output, route = await _call_rule(node, ctx.state, attempts)
        verdict = _run_checks(node, output, ctx.state, retries, attempts, NO_USAGE)
        if verdict.retry is not None:
            continue
        return _settle(
            node, ctx, verdict, output, route, _RULE_CONFIDENCE, {}, attempts, NO_USAGE, None
        )


_RULE_CONFIDENCE = Confidence(value=1.0, source="rule")


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
        output = await _with_retries(node, node.retry, call, attempts, kind="call")
        verdict = _run_checks(node, output, ctx.state, retries, attempts, NO_USAGE)
        if verdict.retry is None:
            return _settle(node, ctx, verdict, output, None, None, {}, attempts, NO_USAGE, None)


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


# --- retries -----------------------------------------------------------------------------------


def _wait(policy: RetryPolicy) -> Any:
    base = wait_exponential(multiplier=policy.initial, max=policy.maximum) + wait_random(
        0, policy.jitter
    )

    def wait(retry_state: Any) -> float:
        delay = float(base(retry_state))
        error = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(error, RateLimited) and error.retry_after:
            delay = max(delay, min(error.retry_after, policy.maximum))
        return delay

    return wait


async def _attempt(
    node: Node,
    call: Any,
    attempts: list[Attempt],
    kind: AttemptKind,
    model: str | None,
) -> Any:
    """One call, with the node's timeout, recorded as an `Attempt` whatever happens."""
    started = time.perf_counter()
    number = len(attempts) + 1
    try:
        if node.timeout is not None:
            try:
                async with asyncio.timeout(node.timeout):
                    result = await call()
            except TimeoutError:
                raise ProviderTimeout(
                    f"`{node.name}` took longer than its timeout of {node.timeout:g}s"
                ) from None
        else:
            result = await call()
    except Exception as e:
        outcome: Any = "transient_error" if isinstance(e, TransientError) else "error"
        attempts.append(
            Attempt(
                number=number,
                kind=kind,
                outcome=outcome,
                error=_describe(e),
                duration_s=time.perf_counter() - started,
                model=model,
            )
        )
        raise
    if isinstance(result, ModelResponse):
        attempts.append(
            Attempt(
                number=number,
                kind=kind,
                outcome="ok",
                duration_s=time.perf_counter() - started,
                usage=result.usage,
                model=result.model or model,
            )
        )
    else:
        attempts.append(
            Attempt(
                number=number, kind=kind, outcome="ok", duration_s=time.perf_counter() - started
            )
        )
    return result


async def _with_retries(
    node: Node,
    policy: RetryPolicy,
    call: Any,
    attempts: list[Attempt],
    *,
    kind: AttemptKind,
    model: str | None = None,
) -> Any:
    """Call `call()` under the node's RetryPolicy; transient errors are retried with backoff.

    The first attempt is a plain call: tenacity's machinery costs more than a fast model call,
    and most first attempts succeed. After a transient failure, tenacity takes over, with the
    failure replayed as its first attempt, so it owns every backoff and stop decision.
    """
    try:
        try:
            return await _attempt(node, call, attempts, kind, model)
        except TransientError as first_failure:
            replay: list[TransientError] = [first_failure]

        async def again() -> Any:
            if replay:
                raise replay.pop()
            return await _attempt(node, call, attempts, "transport_retry", model)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(policy.attempts),
            wait=_wait(policy),
            retry=retry_if_exception_type(TransientError),
            reraise=True,
        )
        return await retrying(again)
    except TransientError as e:
        n = sum(1 for a in attempts if a.outcome == "transient_error")
        error = RetriesExhausted(
            f"`{node.name}` failed {n} times with transient errors (last: {_describe(e)}); "
            f"retry later, or raise RetryPolicy(attempts=...) on the node",
            node=node.name,
            attempts=n,
            last_error=e,
        )
        raise _Exhausted(error, attempts, _usage(attempts)) from e
    except HandrailError as e:
        raise _Exhausted(e, attempts, _usage(attempts)) from e
    except Exception as e:
        failure = StepFailed(f"`{node.name}` raised {type(e).__name__}: {e}", node=node.name)
        failure.__cause__ = e
        raise _Exhausted(failure, attempts, _usage(attempts)) from e


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _usage(attempts: Sequence[Attempt]) -> Usage:
    total = NO_USAGE
    for attempt in attempts:
        total = total + attempt.usage
    return total


# --- LLM nodes ---------------------------------------------------------------------------------


def _context(node: LLMNode, ctx: StepContext) -> dict[str, Any]:
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
    model = model or resolve_model(node.model, ctx, node)
    prompt = ctx.pipeline.prompts[node.name]
    messages: list[Message] = prompt.render(_context(node, ctx))
    schema = node.output_schema()
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
        try:
            response = await model.generate(request)
        except BaseException as e:
            if hooks.model_call_finished:
                hooks.emit(
                    hooks.model_call_finished,
                    run_id=ctx.run_id,
                    node=node.name,
                    call_id=call_id,
                    model=model.name,
                    response=None,
                    error=e,
                    duration_s=time.perf_counter() - started,
                )
            raise
        if hooks.model_call_finished:
            hooks.emit(
                hooks.model_call_finished,
                run_id=ctx.run_id,
                node=node.name,
                call_id=call_id,
                model=model.name,
                response=response,
                error=None,
                duration_s=time.perf_counter() - started,
            )
        return response

    kind: AttemptKind = "call"
    while True:
        request = ModelRequest(
            node=node.name,
            kind=node.kind,
            messages=tuple(messages),
            output_schema=schema,
            labels=node.labels(),
            attempt=len(attempts) + 1,
            document_id=ctx.state.document.id,
            run_id=ctx.run_id,
            params=node.params,
        )
        response: ModelResponse = await _with_retries(
            node,
            node.retry,
            lambda request=request: call_once(request),
            attempts,
            kind=kind,
            model=model.name,
        )
        usage = _usage(attempts)
        try:
            output = _validate(node, response.output)
        except ValidationError as e:
            attempts[-1] = _replace_outcome(attempts[-1], "invalid_output", str(e))
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
                raise _Exhausted(error, attempts, usage) from e
            reasks += 1
            kind = "reask"
            messages = [
                *messages,
                Message(role="assistant", content=_raw_text(response.output)),
                Message(role="user", content=_reask_message(node, e)),
            ]
            continue
        confidence, field_confidence = _confidence(node, response, output)
        verdict = _run_checks(node, output, ctx.state, retries, attempts, usage)
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
        return _settle(
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
        )


def _replace_outcome(attempt: Attempt, outcome: Any, error: str) -> Attempt:
    return Attempt(
        number=attempt.number,
        kind=attempt.kind,
        outcome=outcome,
        error=error,
        duration_s=attempt.duration_s,
        usage=attempt.usage,
        model=attempt.model,
    )


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


# --- checks, gate and settling -----------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class _Verdict:
    results: tuple[CheckResult, ...] = ()
    retry: CheckResult | None = None
    action: str | None = None
    """The strongest failed on_fail: fail > fallback > retry (exhausted) > review > warn."""
    failed: tuple[CheckResult, ...] = ()


_ORDER = {"fail": 0, "fallback": 1, "retry": 2, "review": 3, "warn": 4}


def _run_checks(
    node: Node,
    output: Any,
    state: State,
    retries: dict[str, int],
    attempts: list[Attempt],
    usage: Usage,
) -> _Verdict:
    if not node.checks:
        return _Verdict()
    results = []
    for check in node.checks:
        try:
            results.append(check.evaluate(output, state))
        except Exception as e:
            results.append(
                CheckResult(
                    passed=False,
                    name=check.name,
                    on_fail=check.on_fail,
                    message=f"check raised {type(e).__name__}: {e}",
                )
            )
    failed = tuple(r for r in results if not r.passed)
    verdict = _Verdict(results=tuple(results), failed=failed)
    if not failed:
        return verdict
    by_name = {c.name: c for c in node.checks}
    for result in failed:
        declared: Check = by_name[result.name]
        if declared.on_fail == "retry" and retries.get(declared.name, 0) < declared.max_retries:
            retries[declared.name] = retries.get(declared.name, 0) + 1
            if attempts:
                attempts[-1] = _replace_outcome(
                    attempts[-1], "check_failed", result.message or result.name
                )
            verdict.retry = result
            return verdict
    verdict.action = min((r.on_fail for r in failed), key=_ORDER.__getitem__)
    return verdict


def _settle(
    node: Node,
    ctx: StepContext,
    verdict: _Verdict,
    output: Any,
    route: str | None,
    confidence: Confidence | None,
    field_confidence: Mapping[str, Confidence],
    attempts: list[Attempt],
    usage: Usage,
    model: str | None,
) -> Outcome:
    """Turn a valid output plus its check verdict and gate into the step's outcome."""
    checks = verdict.results
    action = verdict.action
    failed = [r for r in verdict.failed if r.on_fail == action]
    first = failed[0] if failed else None
    if action == "fail" and first is not None:
        # Returned, not raised, so the step keeps its attempts, usage and check results.
        return Outcome(
            status=StepStatus.FAILED,
            output=output,
            route=route,
            confidence=confidence,
            field_confidence=field_confidence,
            checks=checks,
            attempts=attempts,
            usage=usage,
            model=model,
            error=CheckFailed(
                f"check `{first.name}` on `{node.name}` failed: {first.message or 'no message'}",
                node=node.name,
            ),
        )
    if action in ("fallback", "retry") and first is not None:
        what = "after its retries" if action == "retry" else "and asks for the fallback"
        if attempts:  # the last answer failed the check too
            attempts[-1] = _replace_outcome(
                attempts[-1], "check_failed", first.message or first.name
            )
        raise _Exhausted(
            CheckFailed(
                f"check `{first.name}` on `{node.name}` failed {what}: "
                f"{first.message or 'no message'}",
                node=node.name,
            ),
            attempts,
            usage,
            checks,
            output,
            confidence,
        )
    reasons: list[ReviewReason] = [
        ReviewReason(kind="check", check=r.name, message=r.message or f"check {r.name} failed")
        for r in verdict.failed
        if r.on_fail == "review"
    ]
    gate = node.gate if isinstance(node, LLMNode) else None
    if gate is not None:
        if confidence is not None and gate.reject is not None and confidence.value < gate.reject:
            raise _Exhausted(
                LowConfidence(
                    f"`{node.name}` confidence {confidence.value:.2f} is below its reject band "
                    f"({gate.reject:g}, {confidence.source})",
                    node=node.name,
                    value=confidence.value,
                    threshold=gate.reject,
                ),
                attempts,
                usage,
                checks,
                output,
                confidence,
            )
        assert isinstance(node, LLMNode)
        reasons.extend(_gate_reasons(node, gate, confidence, field_confidence))
        if (
            not reasons
            and gate.audit
            and unit_hash(ctx.state.document.hash, node.name) < gate.audit
        ):
            reasons.append(
                ReviewReason(
                    kind="audit",
                    value=gate.audit,
                    message=(f"picked for a quality audit ({gate.audit:.0%} of accepted outputs)"),
                )
            )
    status = StepStatus.NEEDS_REVIEW if reasons else StepStatus.COMPLETED
    return Outcome(
        status=status,
        output=output,
        route=route,
        confidence=confidence,
        field_confidence=field_confidence,
        checks=checks,
        attempts=attempts,
        usage=usage,
        model=model,
        reasons=tuple(reasons),
    )


def _gate_reasons(
    node: LLMNode,
    gate: Any,
    confidence: Confidence | None,
    field_confidence: Mapping[str, Confidence],
) -> list[ReviewReason]:
    reasons = []
    if isinstance(node, Extract) and field_confidence:
        required = {f for f, info in node.schema.model_fields.items() if info.is_required()}
        for name in [*node.schema.model_fields]:
            if name not in required and name not in gate.fields:
                continue
            threshold = gate.fields.get(name, gate.accept)
            score = field_confidence.get(name)
            if score is None:  # never a silent accept: a gated field needs a number
                reasons.append(
                    ReviewReason(
                        kind="field_low_confidence",
                        field=name,
                        threshold=threshold,
                        message=f"the model gave no confidence for field `{name}`; a gated "
                        "field needs one",
                    )
                )
            elif score.value < threshold:
                reasons.append(
                    ReviewReason(
                        kind="field_low_confidence",
                        field=name,
                        value=score.value,
                        threshold=threshold,
                        message=(
                            f"field `{name}` confidence {score.value:.2f} < {threshold:g} "
                            f"({score.source})"
                        ),
                    )
                )
        return reasons
    if confidence is None:
        return [
            ReviewReason(
                kind="low_confidence",
                threshold=gate.accept,
                message=("the model gave no confidence for this output; a gated node needs one"),
            )
        ]
    if confidence.value < gate.accept:
        return [
            ReviewReason(
                kind="low_confidence",
                value=confidence.value,
                threshold=gate.accept,
                message=(
                    f"confidence {confidence.value:.2f} < {gate.accept:g} ({confidence.source})"
                ),
            )
        ]
    return []


async def _exhausted(node: Node, ctx: StepContext | None, ex: _Exhausted) -> Outcome:
    fallback = node.fallback
    base = Outcome(
        status=StepStatus.FAILED,
        error=ex.error,
        attempts=ex.attempts,
        usage=ex.usage,
        checks=ex.checks,
        output=ex.output,
        confidence=ex.confidence,
    )
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
            except _Exhausted as again:
                ex = _Exhausted(
                    again.error,
                    [*ex.attempts, *again.attempts],
                    ex.usage + again.usage,
                    again.checks,
                    again.output,
                    again.confidence,
                )
                base = Outcome(
                    status=StepStatus.FAILED,
                    error=ex.error,
                    attempts=ex.attempts,
                    usage=ex.usage,
                    checks=ex.checks,
                    output=ex.output,
                )
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
    if attempt.kind != "call":
        return attempt
    return Attempt(
        number=attempt.number,
        kind="fallback_model",
        outcome=attempt.outcome,
        error=attempt.error,
        duration_s=attempt.duration_s,
        usage=attempt.usage,
        model=attempt.model,
    )
