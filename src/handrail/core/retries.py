"""Transport retries: the node's `RetryPolicy`, carried out by tenacity."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from handrail.core.model import ModelResponse
from handrail.core.nodes import Node, RetryPolicy
from handrail.core.outcome import Exhausted, describe, total_usage
from handrail.core.records import Attempt, AttemptKind
from handrail.exceptions import (
    HandrailError,
    ProviderTimeout,
    RateLimited,
    RetriesExhausted,
    StepFailed,
    TransientError,
)


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
                error=describe(e),
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


async def with_retries(
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
            f"`{node.name}` failed {n} times with transient errors (last: {describe(e)}); "
            f"retry later, or raise RetryPolicy(attempts=...) on the node",
            node=node.name,
            attempts=n,
            last_error=e,
        )
        raise Exhausted(error, attempts, total_usage(attempts)) from e
    except HandrailError as e:
        raise Exhausted(e, attempts, total_usage(attempts)) from e
    except Exception as e:
        failure = StepFailed(f"`{node.name}` raised {type(e).__name__}: {e}", node=node.name)
        failure.__cause__ = e
        raise Exhausted(failure, attempts, total_usage(attempts)) from e
