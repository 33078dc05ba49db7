"""The data a run carries: the input `Document` and an immutable `State` of node outputs."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from handrail._utils import content_hash
from handrail.core.pages import Page, Part, Place, find_places, page_at


@dataclass(frozen=True, kw_only=True, slots=True)
class Document:
    """One input to a run."""

    text: str
    """The document's text, as the prompts see it."""
    id: str = ""
    """A name for people (the file path, an email's message id...); defaults to the content hash."""
    source: str | None = None
    """Where it came from (a path, `-` for stdin), if anywhere."""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    """Anything else the caller wants to carry (sender, received time...)."""
    hash: str = ""
    """SHA-256 of `text`; filled in when empty."""
    media_type: str = "text/plain"
    """What the file was: `text/plain`, `message/rfc822`, `application/pdf`, `image/png`..."""
    pages: tuple[Page, ...] = ()
    """For paged formats (PDF, scans, images, and an e-mail's such attachments): each page's
    size, its span of `text` and its words with their boxes. Empty for plain text."""
    parts: tuple[Part, ...] = ()
    """For a document made of several files (an e-mail with attachments): each one's span of
    `text`, its pages, and why it could not be read if so. Empty for a single file."""
    warnings: tuple[str, ...] = ()
    """What the loader could not do and says instead of hiding ("page 3 has no text layer and
    OCR is off"); a run copies them into its own warnings."""

    def __post_init__(self) -> None:
        if not self.hash:
            object.__setattr__(self, "hash", content_hash(self.text))
        if not self.id:
            object.__setattr__(self, "id", self.hash[:16])

    def page_at(self, offset: int) -> Page | None:
        """The page whose text holds character `offset` of `text`, if any."""
        return page_at(self.pages, offset)

    def find(self, value: str, *, limit: int = 20) -> tuple[Place, ...]:
        """Where `value` occurs in `text` (case-insensitive; any white space matches any other),
        each place with its page and word boxes when the document has pages."""
        return find_places(self.text, self.pages, value, limit=limit)

    @property
    def data(self) -> Any:
        """The text parsed as JSON (for `.json` documents); raises ValueError otherwise."""
        return json.loads(self.text)

    @classmethod
    def of(cls, value: Document | str | Mapping[str, Any]) -> Document:
        """A `Document` from a document, a string, or a JSON-able mapping."""
        if isinstance(value, Document):
            return value
        if isinstance(value, str):
            return cls(text=value)
        return cls(text=json.dumps(value, sort_keys=True, ensure_ascii=False))


class NoOutput(KeyError):
    """`state[name]` for a node that has not produced an output in this run."""

    def __str__(self) -> str:
        return str(self.args[0])


class State(Mapping[str, Any]):
    """The document plus every completed node's validated output, keyed by node name.

    Immutable: `with_output` returns a new State. Reading a node that did not run (a branch not
    taken) raises `NoOutput` naming the node.
    """

    __slots__ = ("_document", "_outputs")

    def __init__(self, document: Document, outputs: Mapping[str, Any] | None = None) -> None:
        self._document = document
        self._outputs: dict[str, Any] = dict(outputs) if outputs else {}

    @property
    def document(self) -> Document:
        """The run's input document."""
        return self._document

    @property
    def text(self) -> str:
        """Shortcut for `state.document.text`."""
        return self._document.text

    def with_output(self, name: str, value: Any) -> State:
        """A new State with `name` set to `value`."""
        new = State.__new__(State)
        new._document = self._document
        outputs = self._outputs.copy()
        outputs[name] = value
        new._outputs = outputs
        return new

    def __getitem__(self, name: str) -> Any:
        try:
            return self._outputs[name]
        except KeyError:
            raise NoOutput(
                f"`{name}` has no output in this run: it did not run (a branch not taken?) or "
                "is not a node of this pipeline; read it only from nodes that come after it"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)

    def __repr__(self) -> str:
        return f"State(document={self._document.id!r}, outputs={self._outputs!r})"

    def outputs(self) -> dict[str, Any]:
        """A copy of the outputs as a plain dict."""
        return self._outputs.copy()
