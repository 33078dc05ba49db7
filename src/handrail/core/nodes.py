"""Node kinds and the small policy records nodes carry (gate, retry, fallback, checks).

Nodes are declarations: they hold no run state. The runner executes them; rule and action
functions stay plain Python, trivial to unit-test.
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, TypeAdapter

from handrail.core.examples import Examples
from handrail.core.records import CheckResult, ReviewPolicy
from handrail.exceptions import GraphSetupError

if TYPE_CHECKING:
    from handrail.core.model import Model
    from handrail.core.state import State

OnFail = Literal["retry", "review", "fallback", "fail", "warn"]
ON_FAIL_VALUES: tuple[str, ...] = ("retry", "review", "fallback", "fail", "warn")
REJECTED_ROUTE = "rejected"
"""The route a node takes when a reviewer rejects it, if the pipeline wires one."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True, kw_only=True, slots=True)
class Gate:
    """Confidence bands for an LLM node.

    `confidence >= accept`: accepted. Between `reject` and `accept`: the run goes to review.
    Below `reject` (if set): rejected, which is handled like an exhausted node (its fallback,
    or review, or failure, as the node declares).
    """

    accept: float = 0.8
    reject: float | None = None
    fields: Mapping[str, float] = field(default_factory=dict)
    """`Extract` only: a threshold per field (required fields default to `accept`)."""
    audit: float = 0.0
    """Share (0..1) of accepted outputs sent to review anyway, chosen per document, repeatably."""

    def __post_init__(self) -> None:
        for label, value in [
            ("accept", self.accept),
            ("audit", self.audit),
            *(("reject", v) for v in [self.reject] if v is not None),
            *((f"fields[{k!r}]", v) for k, v in self.fields.items()),
        ]:
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Gate {label}={value} is outside 0..1; use a share such as 0.8")
        if self.reject is not None and self.reject > self.accept:
            raise ValueError(
                f"Gate reject={self.reject} is above accept={self.accept}; "
                "reject must be the lower band"
            )

    @classmethod
    def calibrated(
        cls,
        *,
        floor: float,
        fallback: float = 0.8,
        calibration: str | None = None,
        reject: float | None = None,
        audit: float = 0.0,
    ) -> CalibratedGate:
        """A gate whose thresholds come from data (`handrail eval SUITE --calibrate`,
        `handrail calibrate`), read from the calibration file when the pipeline is built: never
        below `floor`; `fallback` for a node or field the file does not hold (with a warning).
        `calibration`: the file (default `$HANDRAIL_CALIBRATION`, else
        `handrail.calibration.json`; docs/learning.md, "Thresholds from data")."""
        return CalibratedGate(
            accept=fallback,
            reject=reject,
            audit=audit,
            floor=floor,
            fallback=fallback,
            calibration=calibration,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class CalibratedGate(Gate):
    """A `Gate` whose `accept` and `fields` are set from the calibration file when the pipeline
    is built (`Gate.calibrated`); until then `accept` is the fallback. A kind of its own, so a
    plain `Gate`'s fields, and the fingerprints of pipelines using one, stay as they were."""

    floor: float
    """The lowest threshold the data may set: calibration never loosens a gate below it."""
    fallback: float = 0.8
    """The threshold of a node or field the calibration file does not hold."""
    calibration: str | None = None
    """The calibration file; None: `$HANDRAIL_CALIBRATION`, else `handrail.calibration.json`."""

    def __post_init__(self) -> None:
        Gate.__post_init__(self)
        for label, value in (("floor", self.floor), ("fallback", self.fallback)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Gate {label}={value} is outside 0..1; use a share such as 0.8")
        if self.fallback < self.floor:
            raise ValueError(
                f"Gate fallback={self.fallback} is below floor={self.floor}; the floor is the "
                "lowest threshold the gate may use"
            )
        if self.reject is not None and self.reject > self.floor:
            raise ValueError(
                f"Gate reject={self.reject} is above floor={self.floor}; reject must be the "
                "lower band"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Retries with exponential backoff and jitter for transient errors (tenacity)."""

    attempts: int = 3
    """Total calls, including the first."""
    initial: float = 0.5
    """Seconds before the first retry."""
    maximum: float = 8.0
    """Longest wait between two attempts."""
    jitter: float = 0.5
    """Up to this many random seconds added to each wait."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy attempts={self.attempts}: use 1 or more (1 = no retry)")


@dataclass(frozen=True, kw_only=True, slots=True)
class Fallback:
    """What a node does when it is exhausted: exactly one of `node`, `model` or `default`."""

    node: str | None = None
    """Hand over to this node (declared in the pipeline); the node's normal edges are not taken."""
    model: str | Model | None = None
    """Run the node once more with this model (a `Model`, or a name given to `Runner(models=)`)."""
    default: Any = MISSING
    """Use this output, recorded with confidence source `fallback`."""

    def __post_init__(self) -> None:
        chosen = [self.node is not None, self.model is not None, self.default is not MISSING]
        if sum(chosen) != 1:
            raise ValueError("Fallback takes exactly one of node=, model= or default=")


@dataclass(frozen=True, slots=True)
class Route:
    """Returned by a `Rule` to choose which edges to follow (and optionally an output)."""

    name: str
    output: Any = None


CheckFn = Callable[[Any, "State"], "CheckResult | bool"]


@dataclass(frozen=True, slots=True)
class Check:
    """A business rule on a node's output: `fn(output, state) -> CheckResult | bool`."""

    fn: CheckFn
    _: KW_ONLY
    on_fail: OnFail = "review"
    name: str = ""
    max_retries: int = 1
    """For `on_fail="retry"`: how many times to retry (re-ask the model with the message)."""
    cap: float | None = None
    """When the check fails: the most confidence the node's output (and, for `Extract`, the
    fields the result names) may keep, recorded with source `checks`. A passing check never
    raises confidence."""

    def __post_init__(self) -> None:
        if self.on_fail not in ON_FAIL_VALUES:
            raise ValueError(
                f"Check on_fail={self.on_fail!r}: use one of {', '.join(ON_FAIL_VALUES)}"
            )
        if self.cap is not None and not 0.0 <= self.cap <= 1.0:
            raise ValueError(f"Check cap={self.cap} is outside 0..1; use a share such as 0.5")
        if not self.name:
            object.__setattr__(self, "name", getattr(self.fn, "__name__", "check"))

    def evaluate(self, output: Any, state: State) -> CheckResult:
        result = self.fn(output, state)
        if isinstance(result, CheckResult):
            return CheckResult(
                passed=result.passed,
                message=result.message,
                details=result.details,
                name=self.name,
                on_fail=self.on_fail,
                fields=tuple(result.fields),
            )
        return CheckResult(
            passed=bool(result),
            message="" if result else f"{self.name} failed",
            name=self.name,
            on_fail=self.on_fail,
        )


@dataclass(frozen=True, eq=False, slots=True)
class Node:
    """Base of every node kind."""

    name: str
    _: KW_ONLY
    checks: Sequence[Check] = ()
    fallback: Fallback | None = None
    on_exhausted: Literal["fail", "review"] = "fail"
    """When retries, re-asks, check retries or the reject band are exhausted and no fallback
    is declared: fail the run, or send it to review."""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float | None = None
    """Seconds per attempt; a timeout counts as a transient error and is retried."""
    reads: Sequence[str] = ()
    """Nodes whose outputs this node reads (LLM nodes also get them from their prompt)."""
    description: str = ""

    kind: ClassVar[str] = "node"

    def routes(self) -> tuple[str, ...]:
        """Route names this node can choose."""
        return ()

    def output_adapter(self) -> TypeAdapter[Any] | None:
        """Validates this node's output (and reviewers' edits); None if anything goes."""
        return None

    def can_pause(self) -> bool:
        return self.on_exhausted == "review" or any(c.on_fail == "review" for c in self.checks)


RuleFn = Callable[["State"], Any]


@dataclass(frozen=True, eq=False, slots=True)
class Rule(Node):
    """A deterministic Python function over the state. Return an output, or `Route(...)`."""

    fn: RuleFn = field(default=None)  # type: ignore[assignment]
    _: KW_ONLY
    routes_: Sequence[str] = field(default=(), metadata={"alias": "routes"})

    kind: ClassVar[str] = "rule"

    def __init__(
        self,
        name: str,
        fn: RuleFn,
        *,
        routes: Sequence[str] = (),
        checks: Sequence[Check] = (),
        fallback: Fallback | None = None,
        on_exhausted: Literal["fail", "review"] = "fail",
        reads: Sequence[str] = (),
        description: str = "",
    ) -> None:
        _init(
            self,
            name=name,
            checks=tuple(checks),
            fallback=fallback,
            on_exhausted=on_exhausted,
            retry=RetryPolicy(attempts=1),
            timeout=None,
            reads=tuple(reads),
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
        )
        object.__setattr__(self, "fn", fn)
        object.__setattr__(self, "routes_", tuple(routes))

    def routes(self) -> tuple[str, ...]:
        return tuple(self.routes_)

    def output_adapter(self) -> TypeAdapter[Any] | None:
        """From `fn`'s return annotation, when it has one: a stored output (JSON) comes back as
        that type when a run is rebuilt or a checkpoint replayed."""
        return _return_adapter(self.fn)


ActionFn = Callable[["State", str], Any]


@dataclass(frozen=True, eq=False, slots=True)
class Action(Node):
    """Calls another system: `fn(state, idempotency_key)`, sync or async.

    The key is `{run_id}:{node}` (plus `:{visit}` in loops): pass it to the system you call so a
    retried or recovered step never acts twice. Raise `TransientError` to have it retried.
    """

    fn: ActionFn = field(default=None)  # type: ignore[assignment]

    kind: ClassVar[str] = "action"

    def __init__(
        self,
        name: str,
        fn: ActionFn,
        *,
        checks: Sequence[Check] = (),
        fallback: Fallback | None = None,
        on_exhausted: Literal["fail", "review"] = "fail",
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        reads: Sequence[str] = (),
        description: str = "",
    ) -> None:
        _init(
            self,
            name=name,
            checks=tuple(checks),
            fallback=fallback,
            on_exhausted=on_exhausted,
            retry=retry or RetryPolicy(),
            timeout=timeout,
            reads=tuple(reads),
            description=description or (fn.__doc__ or "").strip().split("\n")[0],
        )
        object.__setattr__(self, "fn", fn)

    def output_adapter(self) -> TypeAdapter[Any] | None:
        """From `fn`'s return annotation, as for `Rule`."""
        return _return_adapter(self.fn)


ReviewWhen = Callable[["State"], bool]


@dataclass(frozen=True, eq=False, slots=True)
class Review(Node):
    """An explicit approval gate: a person approves, edits or rejects `of`'s output.

    With `when`, the gate only stops runs where `when(state)` is true; others pass through.
    `message` is the reason the reviewer sees: a string, or a function of the state (to show the
    numbers, e.g. `lambda s: f"refund of {s['details'].amount} is over 500"`).
    An `edit` replaces `of`'s output in the state (validated against `of`'s schema).
    """

    of: str = ""
    when: ReviewWhen | None = None
    message: str | Callable[[State], str] = ""
    policy: ReviewPolicy | None = None

    kind: ClassVar[str] = "review"

    def __init__(
        self,
        name: str,
        *,
        of: str,
        when: ReviewWhen | None = None,
        message: str | Callable[[State], str] = "",
        policy: ReviewPolicy | None = None,
        description: str = "",
    ) -> None:
        _init(
            self,
            name=name,
            checks=(),
            fallback=None,
            on_exhausted="fail",
            retry=RetryPolicy(attempts=1),
            timeout=None,
            reads=(of,),
            description=description or (message if isinstance(message, str) else ""),
        )
        object.__setattr__(self, "of", of)
        object.__setattr__(self, "when", when)
        object.__setattr__(self, "message", message)
        if policy is not None and not isinstance(policy, ReviewPolicy):
            raise TypeError(
                f"Review `{name}`: policy must be a ReviewPolicy, got {type(policy).__name__}"
            )
        object.__setattr__(self, "policy", policy)

    def can_pause(self) -> bool:
        return True


def _init(node: Node, **values: Any) -> None:
    for key, value in values.items():
        object.__setattr__(node, key, value)


def _init_llm(node: Node, args: Mapping[str, Any]) -> None:
    """Set the fields every LLM node shares from its constructor's arguments."""
    _init(
        node,
        name=args["name"],
        checks=tuple(args["checks"]),
        fallback=args["fallback"],
        on_exhausted=args["on_exhausted"],
        retry=args["retry"] or RetryPolicy(),
        timeout=args["timeout"],
        reads=(),
        description=args["description"],
        prompt=args["prompt"],
        model=args["model"],
        gate=args["gate"],
        max_reasks=args["max_reasks"],
        params=args["params"] or {},
        examples=Examples.of(args.get("examples")),
        learn_from_reviews=bool(args.get("learn_from_reviews", False)),
    )


@dataclass(frozen=True, eq=False, slots=True)
class LLMNode(Node):
    """A node answered by a model: prompt in, validated output plus confidence out."""

    _: KW_ONLY
    prompt: str | None = None
    """A template file under the pipeline's `prompts` folder, or None for the kind's default."""
    model: str | Model | None = None
    """This node's model; None uses the runner's."""
    gate: Gate | None = None
    max_reasks: int = 2
    """Re-asks with the validation errors when the output does not fit the schema."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Provider parameters (temperature, max_tokens...)."""
    examples: Examples | None = None
    """`Classify` and `Extract`: labelled examples, shown in the prompt and (`Classify`) a vote
    of their own (docs/learning.md)."""
    learn_from_reviews: bool = False
    """`Classify` and `Extract`: each decided review of this node is kept as an example in the
    durable store (docs/learning.md, "Reviews become examples")."""

    def output_schema(self) -> Mapping[str, Any] | None:
        return None

    def can_pause(self) -> bool:
        return (
            self.gate is not None
            or Node.can_pause(self)
            or (self.examples is not None and self.examples.can_review)
        )

    def labels(self) -> tuple[str, ...]:
        return ()


_DEFAULT_GATE = Gate()


@dataclass(frozen=True, eq=False, slots=True)
class Classify(LLMNode):
    """Picks one of `labels`. The label is also the node's route.

    `examples`: labelled examples (`Examples`, or a list, a JSONL file's path, a loaded eval
    suite): the most similar to each document are shown in the prompt, and with
    `Examples(vote=True)` or `agree=True` they vote too (docs/learning.md).

    `learn_from_reviews=True`: each decided review of this node becomes an example in the
    durable store, read back with `Examples(review_examples(db))` (docs/learning.md).
    """

    _: KW_ONLY
    labels_: Sequence[str] = ()

    kind: ClassVar[str] = "classify"

    def __init__(
        self,
        name: str,
        *,
        labels: Sequence[str],
        prompt: str | None = None,
        model: str | Model | None = None,
        gate: Gate | None = _DEFAULT_GATE,
        checks: Sequence[Check] = (),
        fallback: Fallback | None = None,
        on_exhausted: Literal["fail", "review"] = "fail",
        max_reasks: int = 2,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        params: Mapping[str, Any] | None = None,
        description: str = "",
        examples: Examples | Any = None,
        learn_from_reviews: bool = False,
    ) -> None:
        _init_llm(self, locals())
        object.__setattr__(self, "labels_", tuple(labels))

    def labels(self) -> tuple[str, ...]:
        return tuple(self.labels_)

    def routes(self) -> tuple[str, ...]:
        return self.labels()

    def output_adapter(self) -> TypeAdapter[Any]:
        return _adapter_for(Literal[self.labels()])

    def output_schema(self) -> Mapping[str, Any]:
        return {"type": "string", "enum": list(self.labels())}


IMAGE_PAGES = 4
"""The pages `Extract(..., images=True)` shows a model that can see."""


@dataclass(frozen=True, eq=False, slots=True)
class Extract(LLMNode):
    """Fills a pydantic `schema` from the document, with a confidence per field.

    `images=True` (up to 4 pages) or `images=N` also shows the model the document's first N
    pages as images beside the text, for models that can see; a document without pages (plain
    text) sends none. The pages sent are recorded on the step's attempts (`Attempt.images`).

    `examples`: documents with the fields they should give, the most similar to each document
    shown in the prompt (no vote: that is `Classify`'s; docs/learning.md).

    `learn_from_reviews=True`: each decided review of this node becomes an example in the
    durable store, read back with `Examples(review_examples(db))` (docs/learning.md).
    """

    schema: type[BaseModel] = field(default=None)  # type: ignore[assignment]
    images: int = 0
    """How many pages, at most, to show the model as images (0: text only)."""

    kind: ClassVar[str] = "extract"

    def __init__(
        self,
        name: str,
        schema: type[BaseModel],
        *,
        prompt: str | None = None,
        model: str | Model | None = None,
        gate: Gate | None = _DEFAULT_GATE,
        checks: Sequence[Check] = (),
        fallback: Fallback | None = None,
        on_exhausted: Literal["fail", "review"] = "fail",
        max_reasks: int = 2,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        params: Mapping[str, Any] | None = None,
        description: str = "",
        images: bool | int = False,
        examples: Examples | Any = None,
        learn_from_reviews: bool = False,
    ) -> None:
        _init_llm(self, locals())
        object.__setattr__(self, "schema", schema)
        object.__setattr__(self, "images", _image_pages(name, images))
        chosen = self.examples
        if chosen is not None and (chosen.vote or chosen.per_label is not None):
            raise GraphSetupError(
                f"Extract `{name}`: the examples' vote (vote=, agree=) and per_label= are for "
                "Classify's labels; an Extract shows its examples only (unlike_below works)"
            )

    def output_adapter(self) -> TypeAdapter[Any]:
        return _adapter_for(self.schema)

    def output_schema(self) -> Mapping[str, Any]:
        return _schema_for(self.schema)


def _image_pages(name: str, images: Any) -> int:
    """The page limit `images=` declares: True is `IMAGE_PAGES`, False 0, an int itself."""
    if isinstance(images, bool):
        return IMAGE_PAGES if images else 0
    if not isinstance(images, int) or images < 0:
        raise GraphSetupError(
            f"Extract `{name}`: images={images!r} is not a page count; use images=True "
            f"(up to {IMAGE_PAGES} pages), a number of pages such as images=2, or False"
        )
    return images


@dataclass(frozen=True, eq=False, slots=True)
class _TextNode(LLMNode):
    schema: type[BaseModel] | None = None

    def __init__(
        self,
        name: str,
        *,
        prompt: str | None = None,
        schema: type[BaseModel] | None = None,
        model: str | Model | None = None,
        gate: Gate | None = None,
        checks: Sequence[Check] = (),
        fallback: Fallback | None = None,
        on_exhausted: Literal["fail", "review"] = "fail",
        max_reasks: int = 2,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        params: Mapping[str, Any] | None = None,
        description: str = "",
    ) -> None:
        _init_llm(self, locals())
        object.__setattr__(self, "schema", schema)

    def output_adapter(self) -> TypeAdapter[Any]:
        return _adapter_for(self.schema if self.schema is not None else str)

    def output_schema(self) -> Mapping[str, Any] | None:
        return _schema_for(self.schema) if self.schema is not None else None


@dataclass(frozen=True, eq=False, slots=True)
class Summarize(_TextNode):
    """Writes a summary (text, or a `schema`). Confidence comes from its checks."""

    kind: ClassVar[str] = "summarize"


@dataclass(frozen=True, eq=False, slots=True)
class Draft(_TextNode):
    """Writes a draft (a reply, a note). Confidence comes from its checks."""

    kind: ClassVar[str] = "draft"


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}
_SCHEMAS: dict[type[BaseModel], Mapping[str, Any]] = {}


def _return_adapter(fn: Callable[..., Any]) -> TypeAdapter[Any] | None:
    """A TypeAdapter for a function's return annotation; None without a usable one (no
    annotation, `Any`, `None`, or one that mentions `Route`)."""
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that does not resolve: treat the output as untyped
        return None
    tp = hints.get("return")
    if tp is None or tp is Any or tp is type(None):
        return None
    if tp is Route or Route in typing.get_args(tp):
        return None
    try:
        return _adapter_for(tp)
    except Exception:  # not a type pydantic can validate
        return None


def _adapter_for(tp: Any) -> TypeAdapter[Any]:
    """One TypeAdapter per type, built once (building one costs far more than using it)."""
    adapter = _ADAPTERS.get(tp)
    if adapter is None:
        adapter = _ADAPTERS[tp] = TypeAdapter(tp)
    return adapter


def _schema_for(model: type[BaseModel]) -> Mapping[str, Any]:
    schema = _SCHEMAS.get(model)
    if schema is None:
        schema = _SCHEMAS[model] = model.model_json_schema()
    return schema
