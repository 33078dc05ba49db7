"""litellm's exceptions translated into handrail's, at this one boundary (STYLE §11).

| litellm (and the openai classes it subclasses)          | handrail                     |
|----------------------------------------------------------|------------------------------|
| `Timeout`, `APITimeoutError`                             | `ProviderTimeout` (retried)  |
| `RateLimitError`                                         | `RateLimited` (retried)      |
| `APIConnectionError`, `InternalServerError`,             | `ProviderUnavailable`        |
| `ServiceUnavailableError`, `BadGatewayError`, other 5xx  | (retried)                    |
| `AuthenticationError`, `PermissionDeniedError`           | `AuthenticationError`        |
| `ContextWindowExceededError`                             | `ContextWindowExceeded`      |
| `NotFoundError`                                          | `ModelNotFound`              |
| `BadRequestError`, `UnprocessableEntityError`, content   | `PermanentProviderError`     |
| policy, other 4xx                                        |                              |
"""

from __future__ import annotations

import re
from typing import Any

from handrail.exceptions import (
    AuthenticationError,
    ContextWindowExceeded,
    HandrailError,
    ModelNotFound,
    PermanentProviderError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from handrail.providers._litellm import litellm

_MAX_MESSAGE = 400
_CONTEXT_WORDS = re.compile(
    r"context (length|window)|too many tokens|prompt is too long|exceeds? the context", re.I
)


def translate(error: BaseException, model: str, node: str) -> ProviderError | None:
    """handrail's error for a litellm (or openai) exception; None for anything else."""
    if isinstance(error, HandrailError):
        return error if isinstance(error, ProviderError) else None
    exc = litellm.exceptions
    detail = _detail(error)
    where = f"`{node}`: {model}"
    if isinstance(error, exc.Timeout) or type(error).__name__ == "APITimeoutError":
        return ProviderTimeout(f"{where} timed out ({detail}); the node's RetryPolicy retries it")
    if isinstance(error, exc.RateLimitError):
        return RateLimited(
            f"{where} is rate limited ({detail}); the node's RetryPolicy waits and retries",
            retry_after=_retry_after(error),
        )
    if isinstance(error, exc.ContextWindowExceededError) or (
        isinstance(error, exc.BadRequestError) and _CONTEXT_WORDS.search(detail)
    ):
        return ContextWindowExceeded(
            f"{where}: the prompt does not fit the model's context window ({detail}); shorten "
            "the document, split it, use a model with a longer context, or declare "
            "LiteLLMModel(..., on_overflow='truncate') to cut it (recorded on the step)"
        )
    if isinstance(error, exc.AuthenticationError | exc.PermissionDeniedError):
        return AuthenticationError(
            f"{where} refused the credentials ({detail}); check the API key for this provider"
        )
    if isinstance(error, exc.NotFoundError):
        return ModelNotFound(
            f"{where} was not found by the provider ({detail}); check the model name "
            "(provider/model) and api_base"
        )
    if isinstance(
        error,
        exc.APIConnectionError
        | exc.InternalServerError
        | exc.ServiceUnavailableError
        | exc.BadGatewayError,
    ):
        return ProviderUnavailable(f"{where} is unavailable ({detail}); retried")
    status = getattr(error, "status_code", None)
    if isinstance(error, exc.APIError | exc.BadRequestError) or status is not None:
        if isinstance(status, int) and status >= 500:
            return ProviderUnavailable(f"{where} answered {status} ({detail}); retried")
        return PermanentProviderError(f"{where} refused the request ({detail})")
    module = type(error).__module__
    if module.startswith(("litellm", "openai", "httpx")):
        return ProviderUnavailable(f"{where} failed: {type(error).__name__}: {detail}")
    return None


def _detail(error: BaseException) -> str:
    text = " ".join(str(getattr(error, "message", None) or error).split())
    for prefix in ("litellm.", "litellm "):
        text = text.removeprefix(prefix)
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _retry_after(error: Any) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
