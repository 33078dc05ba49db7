"""The model a command names, and a run's model built again from its record.

`choose_model` turns `--model`, `--record` and `--replay` into a `Model`; `model_spec` says what
it made the way a run's record keeps it; `build_model` makes the same model again from such a
record, in any process (the one continuing a decided review, a worker recovering a run).
"""

from __future__ import annotations

import os
from pathlib import Path

from handrail.core.model import Model
from handrail.core.records import ModelSpec
from handrail.exceptions import InputError
from handrail.providers import get_model, model_name
from handrail.providers.replay import RecordingModel, ReplayModel

DEFAULT_MODEL = "fake"
"""The model a command uses when none is named (the offline heuristic `FakeModel`)."""


def choose_model(
    model: str | None = None,
    *,
    record: str | os.PathLike[str] | None = None,
    replay: str | os.PathLike[str] | None = None,
) -> Model:
    """The model `--model`, `--record` and `--replay` describe: `model` (default `fake`); with
    `record`, writing its answers there; with `replay`, the recordings there instead (of
    `model`, else of the one model recorded); with both, a cache: recordings where there are
    some, `model` recorded where not. `InputError` for an unusable directory."""
    if replay is None:
        chosen = get_model(model or DEFAULT_MODEL)
        return chosen if record is None else RecordingModel(chosen, record)
    if record is None:
        return ReplayModel(replay, model=model_name(model) if model else None)
    answering = RecordingModel(get_model(model or DEFAULT_MODEL), record)
    return ReplayModel(replay, model=answering.name, fallback=answering)


def model_spec(
    model: Model,
    *,
    record: str | os.PathLike[str] | None = None,
    replay: str | os.PathLike[str] | None = None,
) -> ModelSpec:
    """What `choose_model` made, as a run's record keeps it: the model's name and the record
    and replay folders (absolute), so `build_model` makes the same model in any process."""
    return ModelSpec(
        name=model.name,
        record=None if record is None else str(Path(record).expanduser().resolve()),
        replay=None if replay is None else str(Path(replay).expanduser().resolve()),
    )


_UNSAFE_PARAMS = frozenset({"api_base", "base_url", "api_key", "headers", "extra_headers"})
_UNSAFE_ENDINGS = ("_key", "_token", "_secret", "password")


def build_model(spec: ModelSpec) -> Model:
    """The model a run's `ModelSpec` describes, built again (see `model_spec`). A stored spec
    naming where to send requests or credentials is refused: those come from the command line
    or the environment, never from the database."""
    unsafe = sorted(
        k for k in spec.params if k.lower() in _UNSAFE_PARAMS or k.lower().endswith(_UNSAFE_ENDINGS)
    )
    if unsafe:
        raise InputError(
            f"the run's model `{spec.name}` is recorded with {', '.join(unsafe)}, which handrail "
            "never takes from the database; give the model with --model"
        )
    if spec.replay is not None and spec.record is None:
        return ReplayModel(spec.replay, model=spec.name)
    answering = get_model(spec.name, **spec.params)
    if spec.record is not None:
        answering = RecordingModel(answering, spec.record)
    if spec.replay is None:
        return answering
    return ReplayModel(spec.replay, model=spec.name, fallback=answering)


__all__ = ["DEFAULT_MODEL", "build_model", "choose_model", "model_spec"]
