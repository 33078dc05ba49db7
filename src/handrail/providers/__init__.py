"""Implementations of the `Model` protocol, and `get_model` to build one from its name.

`LiteLLMModel` is imported lazily (litellm takes about a second to import), so `--model fake`
and the in-memory tests never pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from handrail.core.model import Model
from handrail.exceptions import InputError
from handrail.providers.fake import Fail, FakeModel, Reply
from handrail.providers.replay import RecordingModel, ReplayModel

if TYPE_CHECKING:
    from handrail.providers.litellm import LiteLLMModel

DEFAULT_LOCAL_MODEL = "local/gemma3-270m"
"""The embedded model `handrail[local]` installs (see docs/models.md for why this one)."""


def get_model(spec: str, **options: Any) -> Model:
    """A model from its name: `fake` (the offline heuristic `FakeModel`), `local` or
    `local/NAME` (the embedded model), or any litellm model string (`openai/gpt-4o-mini`,
    `ollama/llama3.2`, ...); `options` go to `LiteLLMModel`."""
    name = spec.strip()
    if not name:
        raise InputError("empty model name; use fake, local/gemma3-270m or provider/model")
    if name == "fake" or name.startswith("fake/"):
        return FakeModel(name=name)
    from handrail.providers.litellm import LiteLLMModel

    return LiteLLMModel(model_name(name), **options)


def model_name(spec: str) -> str:
    """The name a model is recorded under: `local` means the default embedded model."""
    name = spec.strip()
    return DEFAULT_LOCAL_MODEL if name == "local" else name


def __getattr__(name: str) -> Any:
    if name == "LiteLLMModel":
        from handrail.providers.litellm import LiteLLMModel

        return LiteLLMModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "Fail",
    "FakeModel",
    "LiteLLMModel",
    "RecordingModel",
    "ReplayModel",
    "Reply",
    "get_model",
    "model_name",
]
