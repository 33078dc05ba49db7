"""Every error handrail raises, under one root.

```
HandrailError
├── GraphSetupError            the pipeline definition is wrong (raised when it is built)
├── PromptError                a prompt template is missing or malformed (also a setup error)
├── InputError                 a document or target cannot be used (empty, binary, too big, ...)
├── RunError                   a step or run failed while executing
│   ├── StepFailed             a node raised, or its failure was declared fatal
│   ├── RetriesExhausted       transient errors kept coming after every attempt
│   ├── OutputInvalid          the output still failed its schema after every re-ask
│   ├── CheckFailed            a check with on_fail="fail" (or an exhausted "retry") failed
│   ├── LowConfidence          confidence fell below the node's reject band
│   ├── LoopLimitReached       a loop edge was taken more often than its limit allows
│   ├── BudgetExceeded         the run used more tokens or cost than its budget
│   └── RunTimeout             the run or a node ran past its timeout
├── ProviderError              a model or external system failed (raised by adapters)
│   ├── TransientError         worth retrying: the node's RetryPolicy retries these
│   │   ├── ProviderTimeout
│   │   ├── RateLimited
│   │   └── ProviderUnavailable  5xx, connection refused or reset
│   └── PermanentProviderError not worth retrying (bad request, unknown model)
│       ├── AuthenticationError    credentials missing or refused
│       ├── ModelNotFound          the provider does not know the model
│       ├── ContextWindowExceeded  the prompt does not fit the model's context window
│       └── ReplayMiss             a `ReplayModel` has no recording of the request
├── StoreError                 the run store cannot be used (bad URL, output with no JSON form)
│   ├── StoreUnavailable       the database cannot be reached or opened
│   ├── StoreVersionError      the database was written by a newer handrail
│   └── CheckpointRefused      a checkpoint handrail did not write (a pickle): never loaded
└── ReviewError
    ├── ReviewNotFound
    ├── ReviewAlreadyDecided   (`by`, `at`, `action`: the decision that was recorded first)
    ├── InvalidDecision        an edit that fails the schema, a decision on a run not waiting
    │                          (`errors`: (field path, message) pairs, for a form)
    ├── ReviewClaimed          another reviewer holds a live claim on the review
    ├── NotAllowed             the reviewer may not see or decide that review's queue
    └── SignInFailed           an unknown, disabled or expired reviewer token or session
```

Messages name the node in backticks and say how to fix the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any


class HandrailError(Exception):
    """Root of every handrail error."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors travel inside checkpointed step results (pickled), and several take
        # keyword-only arguments that the default pickling of exceptions cannot pass back.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[HandrailError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class GraphSetupError(HandrailError):
    """The pipeline definition is invalid; raised by `PipelineBuilder.build()`."""


class PromptError(GraphSetupError):
    """A prompt template file is missing or cannot be parsed."""


class InputError(HandrailError):
    """A document or a command-line target cannot be used."""

    def __init__(self, message: str, *, document_id: str | None = None) -> None:
        super().__init__(message)
        self.document_id = document_id


class RunError(HandrailError):
    """A step or a run failed while executing."""

    def __init__(self, message: str, *, node: str | None = None) -> None:
        super().__init__(message)
        self.node = node


class StepFailed(RunError):
    """A node raised an exception that is not retried."""


class RetriesExhausted(RunError):
    """Transient errors continued through every attempt of the node's RetryPolicy."""

    def __init__(
        self,
        message: str,
        *,
        node: str | None = None,
        attempts: int = 0,
        last_error: BaseException | None = None,
    ) -> None:
        super().__init__(message, node=node)
        self.attempts = attempts
        self.last_error = last_error


class OutputInvalid(RunError):
    """The model's output failed the node's schema after every re-ask."""

    def __init__(
        self, message: str, *, node: str | None = None, attempts: int = 0, errors: Any = None
    ) -> None:
        super().__init__(message, node=node)
        self.attempts = attempts
        self.errors = errors


class CheckFailed(RunError):
    """A check failed and its `on_fail` said the step cannot go on."""


class LowConfidence(RunError):
    """The output's confidence is below the node's `Gate(reject=...)` band."""

    def __init__(
        self, message: str, *, node: str | None = None, value: float, threshold: float
    ) -> None:
        super().__init__(message, node=node)
        self.value = value
        self.threshold = threshold


class LoopLimitReached(RunError):
    """A loop edge was chosen again after reaching its `max_loops`."""


class BudgetExceeded(RunError):
    """The run used more tokens or cost than its `Budget` allows."""


class RunTimeout(RunError):
    """The run (or one node) ran past its timeout."""


class ProviderError(HandrailError):
    """A model provider or an external system failed."""


class TransientError(ProviderError):
    """A failure worth retrying (timeouts, rate limits, 5xx, dropped connections)."""


class ProviderTimeout(TransientError):
    """The provider did not answer in time."""


class RateLimited(TransientError):
    """The provider refused the call because of a rate limit."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailable(TransientError):
    """The provider answered 5xx or the connection failed."""


class PermanentProviderError(ProviderError):
    """A provider failure that retrying will not fix."""


class AuthenticationError(PermanentProviderError):
    """Credentials are missing or were refused."""


class ModelNotFound(PermanentProviderError):
    """The provider does not know the model (or the local model file is missing)."""


class ContextWindowExceeded(PermanentProviderError):
    """The prompt does not fit the model's context window and the node did not declare
    truncation."""


class ReplayMiss(PermanentProviderError):
    """A `ReplayModel` has no recording of the request and no fallback model to ask."""

    def __init__(
        self, message: str, *, node: str | None = None, key: str = "", directory: str = ""
    ) -> None:
        super().__init__(message)
        self.node = node
        self.key = key
        self.directory = directory


class StoreError(HandrailError):
    """The run store cannot be used."""


class StoreUnavailable(StoreError):
    """The database cannot be reached (server down, wrong host or port, unwritable file)."""


class StoreVersionError(StoreError):
    """The database's run-record schema is newer than this handrail understands."""


class CheckpointRefused(StoreError):
    """A checkpoint in the database that handrail did not write: refused, never loaded."""


class ReviewError(HandrailError):
    """A review decision cannot be applied."""


class ReviewNotFound(ReviewError):
    """No review (or run) with that id exists."""


class ReviewAlreadyDecided(ReviewError):
    """The review already has a decision; a decision is applied exactly once."""

    def __init__(
        self,
        message: str,
        *,
        by: str | None = None,
        at: datetime | None = None,
        action: str | None = None,
    ) -> None:
        super().__init__(message)
        self.by = by
        """Who made the decision that was recorded (when known)."""
        self.at = at
        """When it was recorded (when known)."""
        self.action = action
        """`approve`, `edit` or `reject` (when known)."""


class InvalidDecision(ReviewError):
    """The decision does not fit the review (an edit failing the schema, a wrong run)."""

    def __init__(self, message: str, *, errors: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.errors: tuple[tuple[str, str], ...] = tuple(errors)
        """For an edit failing the schema: (field path such as `lines.0.amount`, message)."""


class ReviewClaimed(ReviewError):
    """Another reviewer holds a live claim on the review (a claim is a lease, not a lock on
    the decision: the exactly-once guard is the conditional write)."""

    def __init__(self, message: str, *, by: str, until: datetime) -> None:
        super().__init__(message)
        self.by = by
        self.until = until


class NotAllowed(ReviewError):
    """The reviewer may not see or decide reviews in that queue."""


class SignInFailed(ReviewError):
    """An unknown, disabled or expired reviewer token or session."""


__all__ = [
    "AuthenticationError",
    "BudgetExceeded",
    "CheckFailed",
    "ContextWindowExceeded",
    "GraphSetupError",
    "HandrailError",
    "InputError",
    "InvalidDecision",
    "LoopLimitReached",
    "LowConfidence",
    "ModelNotFound",
    "NotAllowed",
    "OutputInvalid",
    "PermanentProviderError",
    "PromptError",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "ReplayMiss",
    "RetriesExhausted",
    "ReviewAlreadyDecided",
    "ReviewClaimed",
    "ReviewError",
    "ReviewNotFound",
    "RunError",
    "RunTimeout",
    "SignInFailed",
    "StepFailed",
    "StoreError",
    "StoreUnavailable",
    "StoreVersionError",
    "TransientError",
]
