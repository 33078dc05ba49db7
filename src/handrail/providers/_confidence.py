"""Where `LiteLLMModel`'s confidence comes from (DESIGN §4): token logprobs, or agreement
between samples."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from handrail.core.model import ModelRequest
from handrail.core.records import Confidence


def reported_number(value: Any) -> float:
    """A number a model wrote about itself, as a float; NaN when it is not one (`"high"`, null,
    a list), so the runner names it as a confidence it cannot read instead of losing it.

    `json.loads` accepts `NaN` and `Infinity`: those stay as they are, and the runner treats
    every value that is not a finite number in [0, 1] as no confidence (`core.gate.screen`).
    """
    if isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def token_logprobs(response: Any) -> list[tuple[str, float]]:
    logprobs = getattr(response.choices[0], "logprobs", None)
    content = getattr(logprobs, "content", None)
    if content is None and isinstance(logprobs, Mapping):
        content = logprobs.get("content")
    tokens: list[tuple[str, float]] = []
    for item in content or ():
        token = item.get("token") if isinstance(item, Mapping) else getattr(item, "token", None)
        value = item.get("logprob") if isinstance(item, Mapping) else getattr(item, "logprob", None)
        if token is not None and value is not None:
            tokens.append((str(token), float(value)))
    return tokens


def logprob_confidence(
    response: Any, request: ModelRequest, output: Any, source: str
) -> tuple[Confidence | None, dict[str, Confidence]]:
    tokens = token_logprobs(response)
    if not tokens:
        return None, {}
    if request.output_type is not None and source == "content" and isinstance(output, str):
        from handrail.providers.tokens import field_confidence_from_tokens

        try:
            fields = field_confidence_from_tokens(tokens, output)
        except ValueError:  # not a JSON object, or tokens that do not spell it: no number
            return None, {}
        return None, {k: Confidence(value=v, source="logprobs") for k, v in fields.items()}
    # A label or a short answer: the probability the model gave the whole answer it wrote.
    meaningful = [lp for token, lp in tokens if token.strip(" \n\t\"'.")]
    total = sum(meaningful or [lp for _, lp in tokens])
    return Confidence(value=math.exp(total), source="logprobs"), {}


def _normal(value: Any) -> str:
    if isinstance(value, str):
        return " ".join(value.strip().strip("\"'").lower().split())
    return json.dumps(value, sort_keys=True, default=str)


def agree(
    request: ModelRequest, answers: Sequence[Any]
) -> tuple[Any, Confidence | None, dict[str, Confidence]]:
    """The answer most samples agree on, and the share agreeing (per field for extraction)."""
    n = len(answers)
    if request.output_type is None:
        counts = Counter(_normal(a) for a in answers)
        best, votes = counts.most_common(1)[0]
        output = next(a for a in answers if _normal(a) == best)
        return output, Confidence(value=votes / n, source="agreement"), {}
    parsed: list[dict[str, Any] | None] = []
    for answer in answers:
        try:
            data = json.loads(answer) if isinstance(answer, str | bytes) else answer
        except ValueError:
            data = None
        parsed.append(data if isinstance(data, dict) else None)
    valid = [p for p in parsed if p is not None]
    if not valid:
        return answers[0], None, {}
    names = list(dict.fromkeys(k for p in valid for k in p))
    majority = {
        name: Counter(_normal(p.get(name)) for p in valid).most_common(1)[0][0] for name in names
    }

    def agreement(candidate: dict[str, Any]) -> int:
        return sum(_normal(candidate.get(name)) == majority[name] for name in names)

    chosen = max(valid, key=agreement)  # first of the best: deterministic
    fields = {
        name: Confidence(
            value=sum(
                1
                for p in parsed
                if p is not None and _normal(p.get(name)) == _normal(chosen.get(name))
            )
            / n,
            source="agreement",
        )
        for name in names
    }
    return json.dumps(chosen), None, fields
