"""What executing a node produces, and the small helpers every part of execution shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from handrail.core.model import Model
from handrail.core.records import (
    NO_USAGE,
    Attempt,
    CheckResult,
    Confidence,
    ExampleSignals,
    ReviewReason,
    StepStatus,
    Usage,
)

if TYPE_CHECKING:
    from handrail.core.hooks import HookSet
    from handrail.core.pipeline import Pipeline
    from handrail.core.state import State


@dataclass(kw_only=True, slots=True)
class Outcome:
    """What executing a node produced, before the runner applies it to the run."""

    status: StepStatus
    output: Any = None
    route: str | None = None
    confidence: Confidence | None = None
    field_confidence: Mapping[str, Confidence] = field(default_factory=dict)
    checks: tuple[CheckResult, ...] = ()
    attempts: list[Attempt] = field(default_factory=list)
    usage: Usage = NO_USAGE
    model: str | None = None
    error: BaseException | None = None
    reasons: tuple[ReviewReason, ...] = ()
    review_target: str | None = None
    """For a `Review` gate: the node whose output the reviewer sees and may edit."""
    started_at: datetime | None = None
    duration_s: float | None = None
    """Set by a runner that replays a checkpointed step: when the step first ran, and how long."""
    examples: ExampleSignals | None = None
    """What the node's labelled examples said, for a node that has some."""


class RecordedError(Exception):
    """An error as a checkpoint keeps it: the original's type name and message. A replayed step
    gives back this, so its record reads the same whatever the original class was."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(message)
        self.type_name = type_name

    @classmethod
    def of(cls, error: BaseException) -> RecordedError:
        if isinstance(error, RecordedError):
            return error
        return cls(type(error).__name__, str(error))

    def __reduce__(self) -> tuple[Any, ...]:
        return (RecordedError, (self.type_name, str(self)))


@dataclass(kw_only=True, slots=True)
class StepContext:
    """What a node execution needs from its run."""

    run_id: str
    pipeline: Pipeline
    state: State
    visit: int
    hooks: HookSet
    models: Mapping[str, Model]
    default_model: Model | None
    call_ids: list[int]


class Exhausted(Exception):
    """Internal: the node ran out of tries; carries the error and the last output seen."""

    def __init__(
        self,
        error: BaseException,
        attempts: list[Attempt],
        usage: Usage,
        checks: tuple[CheckResult, ...] = (),
        output: Any = None,
        confidence: Confidence | None = None,
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.attempts = attempts
        self.usage = usage
        self.checks = checks
        self.output = output
        self.confidence = confidence
        self.examples: ExampleSignals | None = None
        """Set on the way out of an LLM node with examples, so a failed step records them."""

    def as_outcome(self) -> Outcome:
        """The failed step this exhaustion amounts to, with everything seen on the way."""
        return Outcome(
            status=StepStatus.FAILED,
            error=self.error,
            attempts=self.attempts,
            usage=self.usage,
            checks=self.checks,
            output=self.output,
            confidence=self.confidence,
            examples=self.examples,
        )


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def total_usage(attempts: Sequence[Attempt]) -> Usage:
    total = NO_USAGE
    for attempt in attempts:
        total = total + attempt.usage
    return total


def replace_outcome(attempt: Attempt, outcome: Any, error: str) -> Attempt:
    return replace(attempt, outcome=outcome, error=error)


RULE_CONFIDENCE = Confidence(value=1.0, source="rule")
"""A rule is deterministic: its output is what it is."""
