"""handrail: AI-assisted intake pipelines with validated outputs, honest confidence, human
review, durable runs and tracing.

    from handrail import PipelineBuilder, Classify, Extract, Rule, Runner, FakeModel
"""

from typing import TYPE_CHECKING, Any

from handrail._version import __version__
from handrail.checks import (
    appears_in_document,
    date_parses,
    in_range,
    line_amounts,
    not_before,
    sums_to,
)
from handrail.core.examples import Example, Examples
from handrail.core.hooks import Hooks
from handrail.core.model import Message, Model, ModelRequest, ModelResponse
from handrail.core.nodes import (
    Action,
    Check,
    Classify,
    Draft,
    Extract,
    Fallback,
    Gate,
    LLMNode,
    Node,
    RetryPolicy,
    Review,
    Route,
    Rule,
    Summarize,
)
from handrail.core.pages import Page, Part, Place, Word
from handrail.core.pipeline import Budget, Edge, Pipeline, PipelineBuilder
from handrail.core.records import (
    Attempt,
    CheckResult,
    Confidence,
    ErrorInfo,
    Escalation,
    ExampleSignals,
    ModelSpec,
    ReviewDecision,
    ReviewPolicy,
    ReviewReason,
    ReviewRequest,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
    Usage,
)
from handrail.core.runner import Runner
from handrail.core.state import Document, State
from handrail.core.store import InMemoryStore, RunStore
from handrail.exceptions import (
    AuthenticationError,
    BudgetExceeded,
    CheckFailed,
    CheckpointRefused,
    ContextWindowExceeded,
    GraphSetupError,
    HandrailError,
    InputError,
    InvalidDecision,
    LoopLimitReached,
    LowConfidence,
    ModelNotFound,
    NotAllowed,
    OutputInvalid,
    PermanentProviderError,
    PromptError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    ReplayMiss,
    RetriesExhausted,
    ReviewAlreadyDecided,
    ReviewClaimed,
    ReviewError,
    ReviewNotFound,
    RunError,
    RunTimeout,
    SignInFailed,
    StepFailed,
    StoreError,
    StoreUnavailable,
    StoreVersionError,
    TransientError,
)
from handrail.providers.fake import Fail, FakeModel, Reply
from handrail.providers.replay import RecordingModel, ReplayModel

if TYPE_CHECKING:
    from handrail.providers.litellm import LiteLLMModel


def __getattr__(name: str) -> Any:
    # litellm takes about a second to import: only a program that uses it pays for it.
    if name == "LiteLLMModel":
        from handrail.providers.litellm import LiteLLMModel

        return LiteLLMModel
    raise AttributeError(f"module 'handrail' has no attribute {name!r}")


__all__ = [
    "Action",
    "Attempt",
    "AuthenticationError",
    "Budget",
    "BudgetExceeded",
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckpointRefused",
    "Classify",
    "Confidence",
    "ContextWindowExceeded",
    "Document",
    "Draft",
    "Edge",
    "ErrorInfo",
    "Escalation",
    "Example",
    "ExampleSignals",
    "Examples",
    "Extract",
    "Fail",
    "FakeModel",
    "Fallback",
    "Gate",
    "GraphSetupError",
    "HandrailError",
    "Hooks",
    "InMemoryStore",
    "InputError",
    "InvalidDecision",
    "LLMNode",
    "LiteLLMModel",
    "LoopLimitReached",
    "LowConfidence",
    "Message",
    "Model",
    "ModelNotFound",
    "ModelRequest",
    "ModelResponse",
    "ModelSpec",
    "Node",
    "NotAllowed",
    "OutputInvalid",
    "Page",
    "Part",
    "PermanentProviderError",
    "Pipeline",
    "PipelineBuilder",
    "Place",
    "PromptError",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "RateLimited",
    "RecordingModel",
    "ReplayMiss",
    "ReplayModel",
    "Reply",
    "RetriesExhausted",
    "RetryPolicy",
    "Review",
    "ReviewAlreadyDecided",
    "ReviewClaimed",
    "ReviewDecision",
    "ReviewError",
    "ReviewNotFound",
    "ReviewPolicy",
    "ReviewReason",
    "ReviewRequest",
    "Route",
    "Rule",
    "RunError",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "RunTimeout",
    "Runner",
    "SignInFailed",
    "State",
    "StepFailed",
    "StepRecord",
    "StepStatus",
    "StoreError",
    "StoreUnavailable",
    "StoreVersionError",
    "Summarize",
    "TransientError",
    "Usage",
    "Word",
    "__version__",
    "appears_in_document",
    "date_parses",
    "in_range",
    "line_amounts",
    "not_before",
    "sums_to",
]
