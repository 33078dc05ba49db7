"""Implementations of the `Model` protocol, and `get_model` to build one from its name."""

from __future__ import annotations

from handrail.core.model import Model
from handrail.exceptions import InputError
from handrail.providers.fake import Fail, FakeModel, Reply
from handrail.providers.replay import RecordingModel, ReplayModel

KNOWN = ("fake",)


def get_model(spec: str) -> Model:
    """A model from its name: `fake` (the offline heuristic `FakeModel`)."""
    name = spec.strip()
    if name == "fake" or name.startswith("fake/"):
        return FakeModel(name=name)
    raise InputError(
        f"unknown model {spec!r}; use one of: {', '.join(KNOWN)} "
        "(hosted and local models arrive with the litellm provider)"
    )


__all__ = ["Fail", "FakeModel", "RecordingModel", "ReplayModel", "Reply", "get_model"]
