"""The LLM port: what the runner asks of any model, and what it gets back.

Adapters (`providers/`) implement `Model`. The runner owns validation, re-asks, retries and the
confidence gate; a model only makes one call and reports what it saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from handrail.core.records import NO_USAGE, Confidence, Usage
from handrail.core.state import Document

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelRequest:
    """One call to a model."""

    node: str
    """The node making the call (scripted fakes key on it)."""
    kind: str
    """`classify`, `extract`, `summarize` or `draft`."""
    messages: Sequence[Message]
    output_schema: Mapping[str, Any] | None = None
    """JSON schema of the expected output; None for free text."""
    output_type: type[Any] | None = None
    """The pydantic model behind `output_schema` (Extract, or a schema'd Summarize/Draft), for
    adapters that build provider requests from the class (instructor)."""
    labels: Sequence[str] = ()
    """For `classify`: the allowed labels; the output is one of them."""
    attempt: int = 1
    """1 for the first call of the step; grows with retries and re-asks."""
    document_id: str = ""
    run_id: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Provider parameters declared on the node (temperature, max_tokens...)."""
    images: tuple[int, ...] = ()
    """Page numbers (`Document.pages` numbering) to show the model as images beside the text
    (`Extract(..., images=2)`); empty for a text-only call. A model that can see renders them
    from `document`; one that cannot refuses the call, saying so."""
    document: Document | None = None
    """The run's input document, for a model that renders `images` from its source file."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelResponse:
    """What a model returned, before handrail validates it."""

    output: Any
    """A JSON string, a parsed object, a label, or text. The runner validates it."""
    usage: Usage = NO_USAGE
    model: str = ""
    """The model that answered (may differ from the one asked)."""
    confidence: Confidence | None = None
    """The model's own measure, if it has one (logprobs, agreement...)."""
    field_confidence: Mapping[str, Confidence] = field(default_factory=dict)
    """Per field, for extraction."""
    label_scores: Mapping[str, float] = field(default_factory=dict)
    """For classification: each label's normalised probability."""
    finish_reason: str | None = None
    warnings: Sequence[str] = ()
    """Declared degradations the step should record (e.g. the document was truncated to fit
    the context window because the node asked for `on_overflow="truncate"`)."""
    images_sent: tuple[int, ...] = ()
    """The pages of `ModelRequest.images` the model was shown: fewer than asked when some could
    not be rendered (the source file gone or changed), which `warnings` then says."""


@runtime_checkable
class Model(Protocol):
    """Anything that can answer a `ModelRequest`."""

    @property
    def name(self) -> str:
        """The model's identifier, as written in spans and records."""
        ...

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Make one call. Raise `TransientError` subclasses for retryable failures."""
        ...
