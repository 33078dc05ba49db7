"""Per-field confidence of a generated JSON object, from the log-probabilities of its tokens.

Shared by the embedded model and by hosted models that return token log-probabilities: give it
the generated tokens (text, log-probability) and the JSON text they spell, and it says, for each
top-level field, how likely the model found the value it wrote.

A field's value is its whole JSON literal: the quotes of a string count, because the closing
quote is where the model decided the value ends (`"ACME"` versus `"ACME SDN BHD"`). Every token
that overlaps the literal contributes, including a token that straddles the boundary (`"1` or
`",`): its probability covers a choice about the value.

The confidence is the product of those tokens' probabilities: the probability the model gave
to the exact value, given what came before it. The alternative, the least likely token, is
kinder to long values (an address of forty tokens multiplies forty numbers below one), but on
SROIE it calibrated worse; docs/models.md gives the figures.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Literal

Reduce = Literal["product", "min"]

_WHITESPACE = " \t\n\r"


def field_confidence_from_tokens(
    tokens: Sequence[tuple[str, float]], text: str, *, reduce: Reduce = "product"
) -> dict[str, float]:
    """Confidence (0..1) of each top-level field of the JSON object `text`.

    `tokens` are the generated tokens in order, each `(text, logprob)` with a natural-log
    probability; joined, their texts must contain `text` (leading or trailing text around it,
    such as a Markdown fence, is allowed). `reduce` is `product` (the probability of the whole
    value, the default) or `min` (the least likely token of the value).

    Raises `ValueError` if `text` is not a JSON object or the tokens do not spell it.
    """
    spans = top_level_value_spans(text)
    joined = "".join(piece for piece, _ in tokens)
    offset = joined.find(text)
    if offset < 0:
        raise ValueError("the tokens do not spell out the JSON text; pass the generated tokens")
    bounds: list[tuple[int, int, float]] = []
    position = -offset
    for piece, logprob in tokens:
        if logprob > 0 or math.isnan(logprob):
            raise ValueError(f"token {piece!r} has log-probability {logprob}; expected <= 0")
        bounds.append((position, position + len(piece), logprob))
        position += len(piece)
    result: dict[str, float] = {}
    for name, (start, end) in spans.items():
        inside = [lp for lo, hi, lp in bounds if lo < end and hi > start and hi > lo]
        if not inside:  # cannot happen when the tokens spell the text; keep it honest anyway
            raise ValueError(f"no token covers the value of field {name!r}")
        if reduce == "product":
            result[name] = math.exp(sum(inside))
        else:
            result[name] = math.exp(min(inside))
    return result


def top_level_value_spans(text: str) -> dict[str, tuple[int, int]]:
    """For each key of the JSON object `text`, the `[start, end)` offsets of its value's
    literal (a repeated key keeps its last value, as `json.loads` does)."""
    decoder = json.JSONDecoder()
    i = _skip(text, 0)
    if i >= len(text) or text[i] != "{":
        raise ValueError("expected a JSON object")
    spans: dict[str, tuple[int, int]] = {}
    i = _skip(text, i + 1)
    if i < len(text) and text[i] == "}":
        _expect_end(text, i + 1)
        return spans
    while True:
        try:
            key, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON object: {e}") from None
        if not isinstance(key, str):
            raise ValueError("invalid JSON object: a key is not a string")
        i = _skip(text, i)
        if i >= len(text) or text[i] != ":":
            raise ValueError("invalid JSON object: expected ':' after a key")
        start = _skip(text, i + 1)
        try:
            _, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError as e:
            raise ValueError(f"invalid JSON object: {e}") from None
        spans.pop(key, None)
        spans[key] = (start, end)
        i = _skip(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip(text, i + 1)
            continue
        if i < len(text) and text[i] == "}":
            _expect_end(text, i + 1)
            return spans
        raise ValueError("invalid JSON object: expected ',' or '}' after a value")


def _skip(text: str, i: int) -> int:
    while i < len(text) and text[i] in _WHITESPACE:
        i += 1
    return i


def _expect_end(text: str, i: int) -> None:
    if _skip(text, i) != len(text):
        raise ValueError("invalid JSON object: text after the closing '}'")
