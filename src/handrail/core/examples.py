"""Labelled examples for `Classify` and `Extract`: shown in the prompt, chosen per document, and
for `Classify` a vote of their own (docs/learning.md).

    Classify("intent", labels=[...], examples=Examples("intents.jsonl", k=10, agree=True))

A pool is read once: a list or a JSONL file when `Examples` is made; an eval suite or an
`ExampleSource` (a function of the node's name) when the pipeline is built. Its hash is part of
the pipeline's fingerprint, so a run with other examples is another run.

Choosing is lexical, deterministic and pure Python (the core carries no numpy): texts are read
as lower-cased word tokens; BM25 (Okapi, k1=1.2, b=0.75) ranks the pool, a tie going to the
earlier example. The *similarity* the vote weighs and `unlike_below` compares is the cosine of
TF-IDF vectors (sublinear term frequency, smoothed idf) over the same tokens: a number in
0..1 that means the same for a short and a long document, which a BM25 score does not.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from handrail.core.records import Confidence, ExampleSignals
from handrail.exceptions import HandrailError, InputError

Retrieval = Literal["bm25", "tfidf"]
RETRIEVERS: tuple[str, ...] = ("bm25", "tfidf")
K1 = 1.2
"""BM25's term-frequency saturation."""
B = 0.75
"""BM25's length normalisation."""
MAX_SHOWN = 5
"""Problems with a pool a setup error lists (it says how many more there are)."""


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled example: a document's text and the output the node should give for it."""

    text: str
    output: Any
    """The label (`Classify`), or an object of fields (`Extract`)."""
    _: KW_ONLY
    id: str = ""
    """Its id in run records (`ExampleSignals.shown`); default: a hash of its text and output."""
    source: str = ""
    """Where it came from (`intents.jsonl, line 3`, a suite's case), for messages."""


class ExampleSource(Protocol):
    """Gives a node's examples when the pipeline is built: `source(node)` returns `Example`s or
    mappings as a JSONL line holds them. Called once per built pipeline and node."""

    def __call__(self, node: str) -> Iterable[Example | Mapping[str, Any]]: ...


Verdict = Literal["approved", "edited", "rejected"]
VERDICTS: dict[str, Verdict] = {"approve": "approved", "edit": "edited", "reject": "rejected"}


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewedExample:
    """A decided review of a node with `learn_from_reviews=True`, as the example it becomes. The
    runner makes it when the decision is accepted; the store writes it with the decision."""

    example_id: str
    """The review's id: one example per review."""
    review_id: str
    run_id: str
    pipeline: str
    pipeline_version: str
    """The fingerprint of the pipeline the run ran."""
    node: str
    """The node whose output was reviewed (a `Review` gate's target)."""
    document_hash: str
    text: str
    """The document's text (a copy: the example outlives its run)."""
    output: Any
    """The label or the fields (plain JSON) as approved or edited; for a reject, the output
    the reviewer rejected."""
    verdict: Verdict
    """`approved` and `edited` are examples a node is shown; `rejected` is kept as a known
    wrong answer, never shown (a reject does not say what the right one was)."""
    reviewer: str | None = None
    decided_at: datetime
    removed_at: datetime | None = None
    removed_reason: str | None = None

    def example(self) -> Example:
        """As an `Example` for a pool (its id the review's)."""
        return Example(
            self.text, self.output, id=self.example_id, source=f"review `{self.review_id}`"
        )


class Similarity(Protocol):
    """A retriever of your own (an embedding model's, say): the similarity, 0..1, of `document`
    to each of `texts` (the pool, in order). It ranks the pool, and it is the number the vote
    weighs and `unlike_below` compares. Cache what you compute of the pool yourself."""

    def __call__(self, document: str, texts: Sequence[str]) -> Sequence[float]: ...


class Examples:
    """A pool of labelled examples and how a node uses it.

    `source`: a list of `Example`s or mappings (`{"text": ..., "label": ...}` for `Classify`,
    `{"text": ..., "output": {...}}` for `Extract`, each with an optional `id`); the path of a
    JSONL file of such lines; a loaded eval suite (`handrail.evals.suite.load_suite(...)`: the
    cases with an expected output for the node); or an `ExampleSource`.

    - `k`: examples shown per document, the most similar to it (0: none, for a vote alone).
    - `per_label`: `Classify`: show at least this many of each label when the pool has them
      (the most similar of each), even if that makes more than `k`.
    - `retriever`: `"bm25"` (default) or `"tfidf"` ranks the pool; or a `Similarity`.
    - `vote`: `Classify`: the `k_vote` (default `k`) nearest examples vote for their labels,
      weighted by similarity; the node's confidence becomes the mean of the model's and the
      vote's share for the model's label (source `combined`).
    - `agree`: `Classify`: accept only when the vote's label is the model's and the model's own
      confidence is at least `model_floor` (and the combined confidence clears the gate); else
      review. Turns the vote on.
    - `unlike_below`: a document whose best similarity to the pool is below this goes to review
      ("unlike anything seen").
    - `node`: for a suite or a source: whose outputs to read (default: the node given them).
    """

    def __init__(
        self,
        source: Iterable[Example | Mapping[str, Any]] | str | os.PathLike[str] | Any,
        *,
        k: int = 10,
        per_label: int | None = None,
        retriever: Retrieval | Similarity = "bm25",
        vote: bool = False,
        k_vote: int | None = None,
        agree: bool = False,
        model_floor: float = 0.5,
        unlike_below: float | None = None,
        node: str | None = None,
    ) -> None:
        if not isinstance(k, int) or k < 0:
            raise ValueError(f"Examples k={k!r}: use the number of examples to show, e.g. 10")
        if per_label is not None and (not isinstance(per_label, int) or per_label < 1):
            raise ValueError(f"Examples per_label={per_label!r}: use 1 or more, or None")
        if isinstance(retriever, str) and retriever not in RETRIEVERS:
            raise ValueError(
                f"Examples retriever={retriever!r}: use one of {', '.join(RETRIEVERS)}, or a "
                "function (document, texts) -> similarities"
            )
        if not isinstance(retriever, str) and not callable(retriever):
            raise ValueError("Examples retriever must be 'bm25', 'tfidf' or a function")
        vote = vote or agree
        if k_vote is not None and (not isinstance(k_vote, int) or k_vote < 1):
            raise ValueError(f"Examples k_vote={k_vote!r}: use 1 or more")
        if vote and (k_vote or k) < 1:
            raise ValueError("Examples with k=0 and a vote: give k_vote, the neighbours that vote")
        for name, value in [("model_floor", model_floor), ("unlike_below", unlike_below)]:
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"Examples {name}={value} is outside 0..1; use e.g. 0.5")
        self.k = k
        self.per_label = per_label
        self.retriever = retriever
        self.vote = vote
        self.k_vote = k_vote or k
        self.agree = agree
        self.model_floor = model_floor
        self.unlike_below = unlike_below
        self.node = node
        self._items: tuple[Example, ...] | None = None
        self._read: Callable[[str], Iterable[Example | Mapping[str, Any]]] | None = None
        self._what = "the examples"
        self._pools: dict[str, _Pool] = {}
        if isinstance(source, str | os.PathLike):
            self._items = tuple(read_jsonl(Path(source)))
        elif hasattr(source, "cases"):
            self._read = lambda name: _from_suite(source, name)
            self._what = f"suite `{getattr(source, 'name', '?')}`"
        elif callable(source):
            self._read = source
            self._what = f"example source {getattr(source, '__qualname__', type(source).__name__)}"
        elif isinstance(source, Iterable) and not isinstance(source, Mapping | bytes):
            self._items = tuple(
                _coerce(item, f"example {i}", ValueError) for i, item in enumerate(source, 1)
            )
        else:
            raise TypeError(
                f"Examples takes a list of examples, a JSONL file's path, a loaded eval suite "
                f"or a function of the node's name, not {type(source).__name__}"
            )

    @classmethod
    def of(cls, value: Any) -> Examples | None:
        """`value` as `Examples` (default settings for a bare list, path, suite or source)."""
        if value is None or isinstance(value, Examples):
            return value
        return cls(value)

    @property
    def can_review(self) -> bool:
        """Whether these examples can send a run to review (`agree`, `unlike_below`)."""
        return self.agree or self.unlike_below is not None

    def pool(self, node: str) -> tuple[Example, ...]:
        """The examples `node` uses, ids filled in (read on first use, then kept)."""
        return self._pool(node).items

    def settings(self) -> dict[str, Any]:
        """What, besides the pool, decides what the examples do (for the fingerprint)."""
        return {
            "k": self.k,
            "per_label": self.per_label,
            "retriever": self.retriever,
            "vote": self.vote,
            "k_vote": self.k_vote,
            "agree": self.agree,
            "model_floor": self.model_floor,
            "unlike_below": self.unlike_below,
        }

    def digest(self, node: str) -> str:
        """A hash of `node`'s pool: its ids, texts and outputs, in order."""
        return self._pool(node).digest

    def check(
        self,
        node: str,
        *,
        labels: Sequence[str] = (),
        fields: Collection[str] | None = None,
    ) -> list[str]:
        """What is wrong with `node`'s pool: unreadable, a label the node does not have
        (`labels`), a field its schema does not have (`fields`, for `Extract`)."""
        try:
            items = self.pool(node)
        except HandrailError as e:
            return [str(e)]
        except Exception as e:  # a source of the user's own that raised
            return [f"reading {self._what} raised {type(e).__name__}: {e}"]
        problems = []
        for example in items:
            where = example.source or f"example `{example.id}`"
            output = example.output
            if labels:
                if output not in labels:
                    problems.append(
                        f"{where}: label {output!r} is not one of the node's labels "
                        f"({', '.join(labels)}); fix the example or the labels"
                    )
            elif fields is not None:
                if not isinstance(output, Mapping):
                    problems.append(
                        f"{where}: the output is {type(output).__name__}, not an object of "
                        f'fields; write it as {{"{next(iter(fields), "field")}": ...}}'
                    )
                elif unknown := sorted(set(output) - set(fields)):
                    problems.append(
                        f"{where}: {', '.join(f'`{f}`' for f in unknown)} is not a field of "
                        f"the schema ({', '.join(fields)}); fix the example"
                    )
        if len(problems) > MAX_SHOWN:
            problems = [*problems[:MAX_SHOWN], f"... and {len(problems) - MAX_SHOWN} more"]
        return problems

    def pick(self, document: str, *, node: str, labels: Sequence[str] = ()) -> Picked:
        """The examples `node` shows for `document` and, with a vote, how they vote."""
        pool = self._pool(node)
        items = pool.items
        if not items:
            return Picked(shown=(), signals=ExampleSignals(), examples=self)
        rank, similarity = pool.scores(document, self.retriever)
        order = sorted(range(len(items)), key=lambda i: (-rank[i], i))
        chosen: dict[int, None] = {}
        if self.per_label and labels:
            wanted = dict.fromkeys(labels, self.per_label)
            for i in order:
                label = items[i].output
                if isinstance(label, str) and wanted.get(label):
                    wanted[label] -= 1
                    chosen[i] = None
        for i in order:
            if len(chosen) >= self.k:
                break
            chosen.setdefault(i)
        place = {i: p for p, i in enumerate(order)}
        shown = tuple(items[i] for i in sorted(chosen, key=place.__getitem__, reverse=True))
        vote: dict[str, float] = {}
        if self.vote:
            weights: dict[str, float] = {}
            for i in order[: self.k_vote]:
                if similarity[i] > 0:
                    label = str(items[i].output)
                    weights[label] = weights.get(label, 0.0) + similarity[i]
            total = sum(weights.values())
            # sorted() is stable: a tie goes to the label whose nearest example ranks first
            for label, weight in sorted(weights.items(), key=lambda kv: -kv[1]):
                vote[label] = weight / total
        signals = ExampleSignals(
            shown=tuple(e.id for e in shown),
            similarity=max(similarity),
            vote=vote,
            label=next(iter(vote), None),
        )
        return Picked(shown=shown, signals=signals, examples=self)

    def _pool(self, node: str) -> _Pool:
        name = self.node or node
        pool = self._pools.get(name)
        if pool is None:
            if self._items is not None:
                items = self._items
            else:
                assert self._read is not None
                items = tuple(
                    _coerce(item, f"example {i} from {self._what}", InputError)
                    for i, item in enumerate(self._read(name), 1)
                )
            pool = self._pools[name] = _Pool.of(items)
        return pool

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"Examples({self._what}, {shown})"


@dataclass(frozen=True, slots=True)
class Picked:
    """The examples chosen for one document, before the model answers."""

    shown: tuple[Example, ...]
    """In the order the prompt shows them: the most similar last, nearest the document."""
    signals: ExampleSignals
    examples: Examples

    def judge(
        self, label: str | None, confidence: Confidence | None
    ) -> tuple[Confidence | None, ExampleSignals]:
        """The node's confidence once the model chose `label` with `confidence`, and the
        signals to record. With a vote: the mean of the model's number and the vote's share for
        `label` (source `combined`); the vote's share alone (source `examples`) when the model
        gave none; the model's number when no neighbour shares a word with the document."""
        signals = replace(self.signals, model_confidence=confidence)
        if not self.examples.vote or not signals.vote:
            return confidence, signals
        share = signals.vote.get(label, 0.0) if label is not None else 0.0
        vote = Confidence(value=share, source="examples")
        signals = replace(signals, confidence=vote)
        if confidence is None:
            return vote, signals
        return Confidence(value=(confidence.value + share) / 2, source="combined"), signals


# --- the pool and its index ---------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def tokens(text: str) -> list[str]:
    """The lower-cased word tokens selection reads (letters, digits and `_`, in any script)."""
    return _WORD.findall(text.lower())


@dataclass(frozen=True, slots=True)
class _Pool:
    items: tuple[Example, ...]
    digest: str
    index: _Index

    @classmethod
    def of(cls, items: tuple[Example, ...]) -> _Pool:
        named = tuple(e if e.id else replace(e, id=_default_id(e)) for e in items)
        seen: dict[str, Example] = {}
        for example in named:
            first = seen.setdefault(example.id, example)
            if first is not example:
                where = " and ".join(e.source or "a list" for e in (first, example))
                raise InputError(
                    f"two examples have the id `{example.id}` ({where}); give each its own id "
                    "(an example without one gets a hash of its text and output, so these two "
                    "may be the same example twice: remove one)"
                )
        data = [[e.id, e.text, e.output] for e in named]
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
        digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        return cls(named, digest, _Index([e.text for e in named]))

    def scores(
        self, document: str, retriever: Retrieval | Similarity
    ) -> tuple[Sequence[float], Sequence[float]]:
        """(what ranks the pool, the similarity) per example, for `document`."""
        if isinstance(retriever, str):
            bm25, cosine = self.index.score(document)
            return (bm25 if retriever == "bm25" else cosine), cosine
        values = list(retriever(document, [e.text for e in self.items]))
        if len(values) != len(self.items) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0
            for v in values
        ):
            raise ValueError(
                f"the examples' retriever {getattr(retriever, '__qualname__', retriever)!r} "
                f"must return one similarity in 0..1 per example ({len(self.items)}), got "
                f"{values[:5]!r}{'...' if len(values) > 5 else ''}"
            )
        similarity = [float(v) for v in values]
        return similarity, similarity


class _Index:
    """An inverted index of the pool: BM25 weights and TF-IDF weights per (term, example)."""

    __slots__ = ("idf", "norms", "postings", "size", "unseen")

    def __init__(self, texts: Sequence[str]) -> None:
        counts = [Counter(tokens(t)) for t in texts]
        n = self.size = len(counts)
        df = Counter(term for c in counts for term in c)
        lengths = [sum(c.values()) for c in counts]
        average = (sum(lengths) / n if n else 0.0) or 1.0
        self.idf = {t: math.log((1 + n) / (1 + d)) + 1 for t, d in df.items()}
        self.unseen = math.log(1 + n) + 1
        """The idf of a word no example has: the document is the less like the pool for it."""
        okapi = {t: math.log(1 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}
        postings: dict[str, list[tuple[int, float, float]]] = {}
        squares = [0.0] * n
        for i, count in enumerate(counts):
            scale = K1 * (1 - B + B * lengths[i] / average)
            for term, tf in count.items():
                weight = (1 + math.log(tf)) * self.idf[term]
                squares[i] += weight * weight
                bm25 = okapi[term] * tf * (K1 + 1) / (tf + scale)
                postings.setdefault(term, []).append((i, bm25, weight))
        self.postings = postings
        self.norms = [math.sqrt(s) for s in squares]

    def score(self, document: str) -> tuple[list[float], list[float]]:
        """(BM25 score, TF-IDF cosine) of `document` against each example."""
        rank = [0.0] * self.size
        dot = [0.0] * self.size
        squares = 0.0
        for term, tf in Counter(tokens(document)).items():
            weight = (1 + math.log(tf)) * self.idf.get(term, self.unseen)
            squares += weight * weight
            for i, bm25, example_weight in self.postings.get(term, ()):
                rank[i] += bm25
                dot[i] += weight * example_weight
        norm = math.sqrt(squares)
        cosine = [min(1.0, d / (norm * self.norms[i])) if d > 0 else 0.0 for i, d in enumerate(dot)]
        return rank, cosine


def _default_id(example: Example) -> str:
    data = json.dumps([example.text, example.output], sort_keys=True, default=str)
    return "ex-" + hashlib.sha256(data.encode("utf-8")).hexdigest()[:10]


# --- reading examples ----------------------------------------------------------------------------

_KEYS = ("text", "label", "output", "id")


class _Bad(Exception):
    """A malformed example; the caller says where it is."""


def _coerce(item: Any, where: str, error: type[Exception]) -> Example:
    """`item` (an `Example` or a mapping) as an `Example`; `error(message)` if it is neither."""
    try:
        if isinstance(item, Example):
            if not isinstance(item.text, str) or not item.text.strip():
                raise _Bad("its text is empty; give the document's text")
            return replace(item, output=_plain(item.output))
        if isinstance(item, Mapping):
            example = _from_mapping(item)
            return replace(example, source=where) if not example.source else example
        raise _Bad(
            f"it is a {type(item).__name__}; give an Example or a mapping such as "
            '{"text": "...", "label": "..."}'
        )
    except _Bad as e:
        raise error(f"{where}: {e}") from None


def _from_mapping(data: Mapping[str, Any]) -> Example:
    unknown = [k for k in data if k not in _KEYS]
    if "expected" in data:
        raise _Bad(
            "this is an eval suite's case; pass the loaded suite instead: "
            "Examples(handrail.evals.suite.load_suite('evals/<suite>'))"
        )
    if unknown:
        raise _Bad(
            f"unknown key {', '.join(f'`{k}`' for k in unknown)}; an example holds `text`, "
            "`label` (Classify) or `output` (Extract), and optionally `id`"
        )
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise _Bad('`text` is missing or empty; add "text": "<the document\'s text>"')
    if ("label" in data) == ("output" in data):
        raise _Bad(
            'give exactly one of "label" (a label, for Classify) and "output" (an object of '
            "fields, for Extract)"
        )
    if "label" in data and not isinstance(data["label"], str):
        raise _Bad(f"`label` is {data['label']!r}; write the label as a string")
    ident = data.get("id", "")
    if not isinstance(ident, str | int) or isinstance(ident, bool):
        raise _Bad(f"`id` is {ident!r}; write it as a string")
    output = data["label"] if "label" in data else _plain(data["output"])
    return Example(text, output, id=str(ident))


def _plain(output: Any) -> Any:
    dump = getattr(output, "model_dump", None)
    return dump(mode="json") if callable(dump) else output


def read_jsonl(path: Path) -> list[Example]:
    """The examples in a JSONL file (one object per line, blank lines skipped); `InputError`
    naming the file, the line and the fix for the first malformed line."""
    if path.is_dir():
        raise InputError(
            f"examples file {path} is a folder; for an eval suite, pass the loaded suite: "
            f"Examples(handrail.evals.suite.load_suite({str(path)!r}))"
        )
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(
            f"examples file {path} not found (relative paths are read from the working "
            "folder; build it from the pipeline file's: Path(__file__).parent / ...)"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"examples file {path} cannot be read ({e}); save it as UTF-8") from e
    examples = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            data = json.loads(line)
        except ValueError as e:
            raise InputError(
                f"{where}: not JSON ({e}); write one JSON object per line, such as "
                '{"text": "...", "label": "..."}'
            ) from None
        if not isinstance(data, dict):
            raise InputError(
                f"{where}: a {type(data).__name__}, not an object; write one JSON object per "
                'line, such as {"text": "...", "label": "..."}'
            )
        try:
            example = _from_mapping(data)
        except _Bad as e:
            raise InputError(f"{where}: {e}") from None
        examples.append(replace(example, source=where))
    return examples


def _from_suite(suite: Any, node: str) -> list[Example]:
    """The cases of a loaded eval suite that expect an output of `node`, with a document."""
    name = getattr(suite, "name", "suite")
    examples = []
    for case in suite.cases:
        expected = getattr(case, "expected", None) or {}
        text = getattr(getattr(case, "document", None), "text", None)
        # A case whose document could not be read (an `InputError` in its place) has no text
        # to show; one that expects nothing of this node has no answer to show.
        if expected.get(node) is None or not isinstance(text, str) or not text.strip():
            continue
        case_id = str(getattr(case, "id", ""))
        examples.append(
            Example(
                text,
                _plain(expected[node]),
                id=case_id,
                source=f"suite `{name}`, case `{case_id}`",
            )
        )
    return examples


__all__ = [
    "Example",
    "ExampleSource",
    "Examples",
    "Picked",
    "ReviewedExample",
    "Similarity",
    "Verdict",
    "read_jsonl",
    "tokens",
]
