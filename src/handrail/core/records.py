"""Public records of what happened: confidence, checks, steps, runs and reviews.

Frozen dataclasses (cheap to build on the hot path); stores serialise them with pydantic's
`TypeAdapter`, which understands dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal, NewType

from handrail.core.state import Document

RunId = NewType("RunId", str)
ReviewId = NewType("ReviewId", str)


class RunStatus(StrEnum):
    """Where a run stands."""

    RUNNING = "running"
    NEEDS_REVIEW = "needs_review"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"


class StepStatus(StrEnum):
    """How one execution of a node ended."""

    COMPLETED = "completed"
    """Output accepted (possibly after retries, re-asks or a review decision)."""
    NEEDS_REVIEW = "needs_review"
    """Waiting for a person's decision."""
    FALLBACK = "fallback"
    """The node gave up and its fallback node takes over."""
    FAILED = "failed"
    """The node failed and the run failed with it."""
    REJECTED = "rejected"
    """A reviewer rejected the output."""
    SUPERSEDED = "superseded"
    """A loop went back past this step while it ran; it runs again with the new inputs."""


ConfidenceSource = Literal[
    "logprobs",
    "agreement",
    "checks",
    "self_reported",
    "scripted",
    "heuristic",
    "rule",
    "review",
    "fallback",
    "examples",
    "combined",
    "none",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class Confidence:
    """How sure a node is of its output, and where that number comes from."""

    value: float
    """0..1."""
    source: ConfidenceSource = "none"
    """How the number was obtained (DESIGN §4): `logprobs` and `agreement` are best.
    `examples`: the nearest labelled examples' vote alone; `combined`: the model's number
    averaged with that vote (docs/learning.md)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckResult:
    """The verdict of one `Check` on a node's output (a value, never an exception)."""

    passed: bool
    message: str = ""
    """Why it failed (or a note when it passed)."""
    details: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    """The check's name; filled in by the runner."""
    on_fail: str = ""
    """What the check declared for a failure; filled in by the runner."""
    fields: tuple[str, ...] = ()
    """The output fields the check judged (on a failure: the ones it found wanting). A failed
    check with a `cap` caps these fields' confidence (`Extract`)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """Tokens and cost of model calls. `cost=None` means unknown, never free."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = 0.0

    def __add__(self, other: Usage) -> Usage:
        cost = None if self.cost is None or other.cost is None else self.cost + other.cost
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cost=cost,
        )

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


NO_USAGE = Usage()

AttemptKind = Literal["call", "transport_retry", "reask", "check_retry", "fallback_model"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Attempt:
    """One call made while executing a step (a first try, a retry, a re-ask...)."""

    number: int
    kind: AttemptKind
    outcome: Literal["ok", "transient_error", "invalid_output", "check_failed", "error"]
    error: str | None = None
    duration_s: float = 0.0
    usage: Usage = NO_USAGE
    model: str | None = None
    warnings: tuple[str, ...] = ()
    """Declared degradations of this call, e.g. a document truncated to fit the context
    window (`on_overflow="truncate"`): never silent."""
    images: tuple[int, ...] = ()
    """The pages shown to the model as images with this call (`Extract(..., images=N)`), as the
    model reported them: a page that could not be rendered is missing here and named in
    `warnings`. Empty for a text-only call, and for a call that failed before answering."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ExampleSignals:
    """What a node's labelled examples said about one document (`Classify(..., examples=...)`,
    `Extract(..., examples=...)`; docs/learning.md). The same examples are shown on every
    attempt of a step, so they are recorded once, here."""

    shown: tuple[str, ...] = ()
    """The ids of the examples the prompt showed, in the order shown (the most similar last)."""
    similarity: float | None = None
    """How like the document the closest example of the pool is, 0..1 (the built-in retrievers:
    0 is no word in common, 1 the same words in the same proportions); None for an empty pool."""
    vote: Mapping[str, float] = field(default_factory=dict)
    """`Classify` with `vote=True`: each label's share of the nearest examples' vote, weighted
    by similarity, largest first (labels nobody voted for are left out). Empty when the vote
    is off or no neighbour shares a word with the document."""
    label: str | None = None
    """The label the examples vote for (the largest share); None without a vote."""
    confidence: Confidence | None = None
    """The vote's share for the label the model chose (source `examples`)."""
    model_confidence: Confidence | None = None
    """The model's own confidence, before it was combined with the vote (None: the model gave
    none). The step's `confidence` is the combination."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ErrorInfo:
    """A failure, in a form that can be stored and shown."""

    type: str
    """The exception class name, e.g. `RetriesExhausted`."""
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StepRecord:
    """One execution of one node in one run."""

    run_id: str
    node: str
    kind: str
    visit: int = 1
    """1 for the first execution; loops make it grow."""
    status: StepStatus = StepStatus.COMPLETED
    output: Any = None
    confidence: Confidence | None = None
    field_confidence: Mapping[str, Confidence] = field(default_factory=dict)
    """Per field, for `Extract`."""
    checks: tuple[CheckResult, ...] = ()
    route: str | None = None
    """The route the node chose (a rule's route, a label), if any."""
    next: tuple[str, ...] = ()
    """The nodes this step activated (edges taken)."""
    attempts: tuple[Attempt, ...] = ()
    started_at: datetime | None = None
    duration_s: float = 0.0
    usage: Usage = NO_USAGE
    model: str | None = None
    error: ErrorInfo | None = None
    review_id: str | None = None
    """Set when the step raised (or was settled by) a review."""
    updates: Mapping[str, Any] = field(default_factory=dict)
    """Other nodes' outputs this step replaced (a `Review` gate's edit)."""
    examples: ExampleSignals | None = None
    """What the node's labelled examples said (which were shown, how similar, their vote);
    None for a node without examples."""


ReasonKind = Literal[
    "low_confidence",
    "field_low_confidence",
    "check",
    "audit",
    "review_node",
    "exhausted",
    "rejected_band",
    "examples_disagree",
    "unlike_examples",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewReason:
    """Why a review was raised: which threshold or check, with the numbers."""

    kind: ReasonKind
    message: str
    field: str | None = None
    value: float | None = None
    threshold: float | None = None
    check: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Escalation:
    """What happens to a review still undecided at its deadline (see `ReviewPolicy`).

    `Escalation.to_queue("supervisors")` moves it to another queue, `Escalation.reject(reason)`
    rejects it, `Escalation.default(output)` applies a declared safe output as an edit (validated
    against the node's schema). There is deliberately no auto-approve.
    """

    action: Literal["queue", "reject", "default"]
    queue: str | None = None
    reason: str | None = None
    output: Any = None

    @classmethod
    def to_queue(cls, queue: str) -> Escalation:
        if not queue or not isinstance(queue, str):
            raise ValueError("Escalation.to_queue needs a queue name, e.g. 'supervisors'")
        return cls(action="queue", queue=queue)

    @classmethod
    def reject(cls, reason: str = "not reviewed before its deadline") -> Escalation:
        return cls(action="reject", reason=reason)

    @classmethod
    def default(cls, output: Any, reason: str = "not reviewed before its deadline") -> Escalation:
        return cls(action="default", output=output, reason=reason)

    def describe(self) -> str:
        if self.action == "queue":
            return f"move to queue `{self.queue}`"
        if self.action == "reject":
            return "reject"
        return "apply the declared safe default"


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewPolicy:
    """Where a pipeline's reviews wait and what happens when nobody decides in time.

    `PipelineBuilder(..., review=ReviewPolicy(...))` sets it for every review of the pipeline;
    `Review(..., policy=ReviewPolicy(...))` for one gate. The default waits forever in queue
    `default`: handrail never decides for a person unless told to.
    """

    queue: str = "default"
    deadline: timedelta | None = None
    """How long after the review is raised it escalates; None waits forever."""
    on_deadline: Escalation | None = None

    def __post_init__(self) -> None:
        if (self.deadline is None) != (self.on_deadline is None):
            raise ValueError(
                "ReviewPolicy needs both a deadline and on_deadline (what to do when it passes), "
                "or neither"
            )
        if self.deadline is not None and self.deadline <= timedelta(0):
            raise ValueError(f"ReviewPolicy deadline must be positive, got {self.deadline}")


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewRequest:
    """A run waiting for a person: what to look at and why."""

    review_id: str
    run_id: str
    pipeline: str
    node: str
    visit: int
    output: Any
    """The output under review (the node's own, or the reviewed node's for a `Review` gate)."""
    target: str
    """The node whose output an `edit` replaces (the node itself unless a `Review` gate)."""
    confidence: Confidence | None
    field_confidence: Mapping[str, Confidence]
    reasons: tuple[ReviewReason, ...]
    document_id: str
    created_at: datetime
    status: Literal["pending", "decided"] = "pending"
    queue: str = "default"
    deadline: datetime | None = None
    """When the review escalates (`on_deadline`); None: it waits until someone decides."""
    on_deadline: Escalation | None = None
    escalated_at: datetime | None = None
    escalation: str | None = None
    """What the escalation did, e.g. "moved from queue `default` to `supervisors`"."""


DecisionAction = Literal["approve", "edit", "reject"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewDecision:
    """A person's decision on a `ReviewRequest`."""

    action: DecisionAction
    output: Any = None
    """For `edit`: the corrected output (validated against the node's schema)."""
    reviewer: str | None = None
    reason: str | None = None
    review_id: str | None = None
    """Which review; may be omitted when the run waits on exactly one."""
    decided_at: datetime | None = None

    @classmethod
    def approve(cls, **kwargs: Any) -> ReviewDecision:
        return cls(action="approve", **kwargs)

    @classmethod
    def edit(cls, output: Any, **kwargs: Any) -> ReviewDecision:
        return cls(action="edit", output=output, **kwargs)

    @classmethod
    def reject(cls, reason: str | None = None, **kwargs: Any) -> ReviewDecision:
        return cls(action="reject", reason=reason, **kwargs)


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSpec:
    """The model a run runs with, as its record keeps it: enough to build the same model again
    in another process (`handrail review approve`, a worker), never a secret such as an API key.
    """

    name: str
    """The model's name: `fake`, `local/gemma3-270m`, `openai/gpt-4o-mini`..."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """Parameters that shape its answers (temperature, confidence method...), JSON values."""
    record: str | None = None
    """The folder its answers are recorded to (`--record`), if any."""
    replay: str | None = None
    """The folder of recordings it answers from (`--replay`), if any."""

    def describe(self) -> str:
        """`fake/alpha (temperature=0.2; recording to DIR)`: for messages and tables."""
        notes = [", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))]
        if self.replay is not None:
            notes.append(f"replaying {self.replay}")
        if self.record is not None:
            notes.append(f"recording to {self.record}")
        shown = "; ".join(n for n in notes if n)
        return f"{self.name} ({shown})" if shown else self.name


@dataclass(frozen=True, kw_only=True, slots=True)
class RunRecord:
    """One execution of a pipeline on one document."""

    run_id: str
    pipeline: str
    document_id: str
    document_hash: str
    status: RunStatus
    outputs: Mapping[str, Any] = field(default_factory=dict)
    steps: tuple[StepRecord, ...] = ()
    reviews: tuple[ReviewRequest, ...] = ()
    """Reviews still pending (status `needs_review`)."""
    decisions: tuple[tuple[str, ReviewDecision], ...] = ()
    """(review id, decision) pairs already applied, in order."""
    error: ErrorInfo | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    duration_s: float = 0.0
    usage: Usage = NO_USAGE
    document: Document | None = None
    """The input `Document`, kept so a resumed run sees the same text."""
    trace_context: Mapping[str, str] = field(default_factory=dict)
    """Trace-context headers (W3C `traceparent`...) a tracing hook wrote when the run started,
    opaque to the core: kept so the run resumed after a review, in any process, stays in the
    same trace."""
    warnings: tuple[str, ...] = ()
    """What went wrong around the run without stopping it, e.g. a hook that raised ("hook
    Notify.review_requested raised ConnectionError: ...; the run went on"), oldest first."""
    model: ModelSpec | None = None
    """The model the run runs with (None: the runner had no default model, or an earlier
    handrail kept none). A paused run is continued with it."""
    pipeline_version: str = ""
    """The fingerprint of the pipeline definition that ran it (`Pipeline.fingerprint`)."""

    @property
    def review(self) -> ReviewRequest | None:
        """The first pending review, if any."""
        return self.reviews[0] if self.reviews else None
