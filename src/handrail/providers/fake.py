"""`FakeModel`: a scripted, offline `Model` for tests (yours and ours) and demos.

Script what each node answers, how sure it is, how it fails and how long it takes:

    model = FakeModel({
        "category": Reply("refund", confidence=0.95),
        "details": [Fail("rate_limit"), Reply({"order_id": "A-17", "amount": 120.0})],
        "reply": lambda request: Reply("Dear customer, ..."),
    })

A list is consumed one call at a time (the last entry repeats); a callable gets the
`ModelRequest` and returns a `Reply` or `Fail`. `calls` keeps every request: the page images a
node asked for are `request.images` (`Extract(..., images=2)`), which the fake takes as seen
without rendering anything (it reads the text only). Nodes without a script get a deterministic
heuristic answer (`heuristic=True`, the default): labels by their whole names in the prompt's
text (not by their parts, and not where the prompt lists the labels), fields from `Key: value`
lines, the first sentences as a summary, a polite template as a draft. The heuristic is a
stand-in for demos, not a model: its confidence says how much evidence it found. docs/testing.md
shows how to test your own pipeline with `FakeModel` under pytest.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from handrail.core.model import ModelRequest, ModelResponse
from handrail.core.records import Confidence, ConfidenceSource, Usage
from handrail.core.values import read_number
from handrail.exceptions import (
    AuthenticationError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)

FailKind = Literal["timeout", "rate_limit", "unavailable", "invalid_json", "exception", "auth"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Reply:
    """A scripted answer."""

    output: Any
    confidence: float | None = None
    """Scripted confidence (source `scripted`); None gives no confidence signal. Passed on as a
    model would send it: a value that is not a finite number in [0, 1] (NaN, inf, 1.5) is what
    a broken model sends, and the runner treats it as no confidence (a gated node goes to
    review), so tests can check a pipeline stays safe when a model misbehaves."""
    field_confidence: Mapping[str, float] = field(default_factory=dict)
    label_scores: Mapping[str, float] = field(default_factory=dict)
    latency: float | None = None
    """Seconds to wait before answering (overrides the model's `latency`)."""
    usage: Usage | None = None
    source: ConfidenceSource = "scripted"
    """The confidence source recorded for this reply's numbers."""

    def __init__(
        self,
        output: Any,
        *,
        confidence: float | None = None,
        field_confidence: Mapping[str, float] | None = None,
        label_scores: Mapping[str, float] | None = None,
        latency: float | None = None,
        usage: Usage | None = None,
        source: ConfidenceSource = "scripted",
    ) -> None:
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "output", output)
        object.__setattr__(self, "confidence", confidence)
        object.__setattr__(self, "field_confidence", dict(field_confidence or {}))
        object.__setattr__(self, "label_scores", dict(label_scores or {}))
        object.__setattr__(self, "latency", latency)
        object.__setattr__(self, "usage", usage)


@dataclass(frozen=True, kw_only=True, slots=True)
class Fail:
    """A scripted failure: `timeout`, `rate_limit`, `unavailable` (transient, retried),
    `invalid_json` (output that fails the schema: re-asked), `exception` and `auth` (not
    retried)."""

    kind: FailKind
    message: str = ""
    latency: float | None = None

    def __init__(self, kind: FailKind, message: str = "", *, latency: float | None = None) -> None:
        if kind not in (
            "timeout",
            "rate_limit",
            "unavailable",
            "invalid_json",
            "exception",
            "auth",
        ):
            raise ValueError(
                f"Fail({kind!r}): use timeout, rate_limit, unavailable, "
                "invalid_json, exception or auth"
            )
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "latency", latency)


Scripted = Reply | Fail
Script = Scripted | Sequence[Scripted] | Callable[[ModelRequest], Scripted]


class FakeModel:
    """A `Model` that answers from a script (see module docs). `calls` records every request
    (with the page images it asked for: `[c.images for c in model.calls_for("fields")]`)."""

    def __init__(
        self,
        script: Mapping[str, Script] | None = None,
        *,
        name: str = "fake",
        latency: float = 0.0,
        heuristic: bool = True,
    ) -> None:
        self._name = name
        self.script = dict(script or {})
        self.latency = latency
        self.heuristic = heuristic
        self.calls: list[ModelRequest] = []
        self._positions: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self._name

    def calls_for(self, node: str) -> list[ModelRequest]:
        return [c for c in self.calls if c.node == node]

    def _next(self, request: ModelRequest) -> Scripted | None:
        entry = self.script.get(request.node)
        if entry is None:
            return None
        if isinstance(entry, Reply | Fail):
            return entry
        if callable(entry):
            return entry(request)
        position = self._positions.get(request.node, 0)
        self._positions[request.node] = position + 1
        return entry[min(position, len(entry) - 1)]

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.calls.append(request)
        scripted = self._next(request)
        if scripted is None:
            if not self.heuristic:
                raise KeyError(
                    f"FakeModel has no script for node `{request.node}`; add "
                    f"FakeModel({{{request.node!r}: Reply(...)}})"
                )
            scripted = heuristic_reply(request)
        delay = scripted.latency if scripted.latency is not None else self.latency
        if delay:
            await asyncio.sleep(delay)
        if isinstance(scripted, Fail):
            return _fail(scripted, request)
        usage = scripted.usage or _usage(request, scripted.output)
        source = scripted.source
        value = scripted.confidence
        if value is None and scripted.label_scores and scripted.output in scripted.label_scores:
            value = scripted.label_scores[scripted.output]
        confidence = Confidence(value=value, source=source) if value is not None else None
        return ModelResponse(
            output=scripted.output,
            usage=usage,
            model=self._name,
            confidence=confidence,
            field_confidence={
                k: Confidence(value=v, source=source) for k, v in scripted.field_confidence.items()
            },
            label_scores=scripted.label_scores,
            finish_reason="stop",
            images_sent=tuple(request.images),
        )


def _fail(scripted: Fail, request: ModelRequest) -> ModelResponse:
    message = scripted.message or f"scripted {scripted.kind} for `{request.node}`"
    if scripted.kind == "timeout":
        raise ProviderTimeout(message)
    if scripted.kind == "rate_limit":
        raise RateLimited(message, retry_after=0.0)
    if scripted.kind == "unavailable":
        raise ProviderUnavailable(message)
    if scripted.kind == "auth":
        raise AuthenticationError(message)
    if scripted.kind == "invalid_json":
        return ModelResponse(
            output='{"this is": not json',
            model="fake",
            usage=_usage(request, "x"),
            finish_reason="stop",
        )
    raise RuntimeError(message)


def _tokens(text: str) -> int:
    return max(1, round(len(text.split()) * 1.3))


def _usage(request: ModelRequest, output: Any) -> Usage:
    prompt = sum(_tokens(m.content) for m in request.messages)
    text = output if isinstance(output, str) else json.dumps(output, default=str)
    return Usage(input_tokens=prompt, output_tokens=_tokens(text), cost=0.0)


# --- the heuristic stand-in ---------------------------------------------------------------------


def _document(request: ModelRequest) -> str:
    return "\n".join(m.content for m in request.messages if m.role == "user")


def heuristic_reply(request: ModelRequest) -> Reply:
    """A deterministic answer from the prompt text alone (see module docs)."""
    text = _document(request)
    if request.kind == "classify":
        return _classify(text, request.labels)
    if request.kind == "extract" or (
        request.output_schema and request.output_schema.get("type") == "object"
    ):
        return _extract(text, request.output_schema or {})
    if request.kind == "summarize":
        sentences = re.split(r"(?<=[.!?])\s+", _body(text).strip())
        return Reply(" ".join(sentences[:2])[:400])
    return Reply(
        "Hello,\n\nThank you for your message. We have received it and a member of "
        "our team will follow up shortly.\n\nKind regards,\nSupport"
    )


def _body(text: str) -> str:
    lines = [ln for ln in text.splitlines() if not re.match(r"^\s*[\w ]{1,40}:\s", ln)]
    return "\n".join(lines) or text


def _classify(text: str, labels: Sequence[str]) -> Reply:
    """Count each label where its whole name appears in the prompt's user text, outside any list
    of the labels themselves (`Labels: a, b`, `Choose one of: a, b`, `- a: ...` lines).

    A name matches as written, with `_` and `-` read as spaces and a word ending allowed
    (`not_a_claim` matches "not a claim"; `refund` matches "refunds"), never by its parts: "claim"
    is no evidence for `not_a_claim`. Longer names are counted first and their matches taken out,
    so "not a claim" is not also counted for `claim`.
    """
    patterns = {label: _label_pattern(label) for label in labels}
    lowered = _without_label_lists(text.lower(), patterns)
    counts = dict.fromkeys(labels, 0)
    for label in sorted(labels, key=lambda lb: -len(_label_words(lb))):
        lowered, counts[label] = patterns[label].subn(" ", lowered)
    weights = {label: count + 0.25 for label, count in counts.items()}
    total = sum(weights.values()) or 1.0
    scores = {label: w / total for label, w in weights.items()}
    best = max(labels, key=lambda label: (scores[label], -labels.index(label)))
    return Reply(best, label_scores=scores, source="heuristic")


def _label_words(label: str) -> list[str]:
    return [w for w in re.split(r"[\s_\-]+", label.lower()) if w]


def _label_pattern(label: str) -> re.Pattern[str]:
    words = _label_words(label) or [label.lower()]
    return re.compile(r"(?<!\w)" + r"[\s_\-]+".join(map(re.escape, words)) + r"\w*")


_LIST_PREFIX = re.compile(r"^\s*(?:[\w ]{1,40}:)?")
"""`Labels:`, `Choose one of:`... before a list of labels on one line."""
_SEPARATORS = re.compile(r"[\s,;:|/.?!()\[\]\"'`*>•·\-–—]|\bor\b|\band\b|\b\d+\b")
_DEFINITION = r"^[\s>*•·\-–—\d.)]*(?:{name})\s*(?::|-|–|—|=|$)"


def _without_label_lists(text: str, patterns: Mapping[str, re.Pattern[str]]) -> str:
    """The text without the lines that only list the labels or define them one per line."""
    lines = text.splitlines()
    names = "|".join(p.pattern for p in patterns.values())
    definition = re.compile(_DEFINITION.format(name=names)) if names else None
    definitions = [i for i, ln in enumerate(lines) if definition and definition.match(ln)]
    drop = set(definitions) if len(definitions) >= 2 else set()
    for i, line in enumerate(lines):
        rest = _LIST_PREFIX.sub("", line, count=1)
        found = 0
        for pattern in sorted(patterns.values(), key=lambda p: -len(p.pattern)):
            rest, n = pattern.subn(" ", rest)
            found += n > 0
        if found >= 2 and not _SEPARATORS.sub("", rest).strip():
            drop.add(i)
    return "\n".join(ln for i, ln in enumerate(lines) if i not in drop)


def _extract(text: str, schema: Mapping[str, Any]) -> Reply:
    pairs: dict[str, str] = {}
    for match in re.finditer(r"^\s*([A-Za-z][\w #/-]{0,40}?)\s*:\s*(.+?)\s*$", text, re.M):
        pairs.setdefault(_key(match.group(1)), match.group(2))
    output: dict[str, Any] = {}
    field_confidence: dict[str, float] = {}
    for name, spec in (schema.get("properties") or {}).items():
        keys = {_key(name), _key(spec.get("title", "")), *(_key(a) for a in _aliases(spec))}
        value = next((pairs[k] for k in keys if k in pairs), None)
        if value is not None:
            output[name] = _coerce(value, spec)
            field_confidence[name] = 0.95
        else:
            field_confidence[name] = 0.5
            if name not in schema.get("required", []):
                output[name] = None
    return Reply(output, field_confidence=field_confidence, source="heuristic")


def _aliases(spec: Mapping[str, Any]) -> list[str]:
    description = spec.get("description") or ""
    match = re.search(r"\(also: ([^)]*)\)", description)
    return [a.strip() for a in match.group(1).split(",")] if match else []


def _key(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


_LEADING_NUMBER = re.compile(r"-?\d[\d.,' ]*\d|-?\d")


def _coerce(value: str, spec: Mapping[str, Any]) -> Any:
    kinds = {spec.get("type")} | {s.get("type") for s in spec.get("anyOf", [])}
    if kinds & {"number", "integer"}:
        # handrail's one reader of numbers: "1.234,50" is 1234.5; an ambiguous or unreadable
        # text stays text, for the schema to refuse
        number = read_number(value)
        if not isinstance(number, Decimal) and (lead := _LEADING_NUMBER.search(value)):
            number = read_number(lead.group())  # "3 items", "total: 12.50 EUR"
        if isinstance(number, Decimal):
            return float(number) if "number" in kinds else int(number)
        return value
    return value
