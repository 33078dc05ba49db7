"""Thresholds from data: the calibration file, read when a pipeline is built (docs/learning.md).

`handrail eval SUITE --calibrate` and `handrail calibrate` write it (`handrail.evals.calibrate`):
per pipeline, per node (and per field of an `Extract`) the lowest confidence threshold whose
accepted answers reached the target accuracy, with the cases it rests on. A node gated with
`Gate.calibrated(floor=..., fallback=...)` takes its thresholds from it when the pipeline is
built, as prompt files are read then:

- a threshold from the file is used, but never below the gate's `floor`;
- a node (or field) the file does not hold, or holds without a threshold (too few cases, target
  not reachable), gets the gate's `fallback`, with a `CalibrationWarning` saying why;
- the thresholds used are the gate's `accept` and `fields`, so they are part of the pipeline's
  fingerprint: a pipeline built with other thresholds is another version.

Where the file is: the gate's `calibration=` path, else `$HANDRAIL_CALIBRATION`, else
`handrail.calibration.json` in the current folder (as `.handrail/handrail.db` is). A relative
path is taken from the current folder; keep it relative so that a cloned project keeps its
pipeline versions.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from handrail.core.nodes import CalibratedGate, Extract, LLMNode, Node

ENV = "HANDRAIL_CALIBRATION"
"""The environment variable naming the calibration file."""
DEFAULT_FILE = "handrail.calibration.json"
"""The calibration file's name when neither the gate nor `$HANDRAIL_CALIBRATION` gives one."""


class CalibrationWarning(UserWarning):
    """A calibrated gate fell back to its `fallback` threshold (no file, node or field)."""


class Operating(BaseModel):
    """What a threshold did on the data: how much went straight through and how right it was."""

    threshold: float | None
    """The threshold (None: no gate)."""
    straight_through: float | None
    """The share of answers accepted (confidence >= threshold), without a person."""
    accepted_accuracy: float | None
    """The share of the accepted answers that were right; None when none were accepted."""


class Threshold(BaseModel):
    """The threshold the data gives one node or field."""

    threshold: float | None
    """The lowest threshold whose accepted answers reach the target accuracy; None when the
    data gives none (`reason` says why)."""
    cases: int
    """The answers with a confidence it rests on."""
    straight_through: float | None = None
    """At `threshold`: the share of answers accepted."""
    accepted_accuracy: float | None = None
    """At `threshold`: the share of the accepted answers that were right."""
    before: Operating | None = None
    """The threshold the pipeline used when calibrated, on the same answers."""
    reason: str | None = None
    """Why there is no threshold (too few cases, target not reachable)."""


class NodeThresholds(BaseModel):
    """One node's thresholds: its own (for an `Extract`, all fields pooled) and per field."""

    kind: str
    node: Threshold
    fields: dict[str, Threshold] = Field(default_factory=dict)


class PipelineCalibration(BaseModel):
    """One pipeline's thresholds and what they were computed from."""

    pipeline: str
    fingerprint: str
    """The version of the pipeline calibrated (building it with these thresholds makes
    another)."""
    source: Literal["eval", "reviews"]
    """An eval suite's cases (`handrail eval --calibrate`) or decided reviews
    (`handrail calibrate`)."""
    suite: str | None = None
    target_accuracy: float
    min_cases: int
    generated_at: str
    nodes: dict[str, NodeThresholds] = Field(default_factory=dict)


class CalibrationFile(BaseModel):
    """The calibration file: one entry per pipeline (a project's pipelines share one file)."""

    version: Literal[1] = 1
    pipelines: dict[str, PipelineCalibration] = Field(default_factory=dict)


def calibration_path(path: str | Path | None = None) -> Path:
    """The calibration file: `path`, else `$HANDRAIL_CALIBRATION`, else `DEFAULT_FILE`."""
    return Path(path or os.environ.get(ENV) or DEFAULT_FILE)


def read_calibration(path: str | Path) -> CalibrationFile | None:
    """The file at `path`; None when there is none. Raises `ValueError` naming the fix when it
    is not a calibration file."""
    file = Path(path)
    if not file.is_file():
        return None
    try:
        return CalibrationFile.model_validate_json(file.read_bytes())
    except ValidationError as e:
        raise ValueError(
            f"calibration file {file} is not one handrail wrote ({e.error_count()} problems, "
            f"first: {e.errors()[0]['msg']}); write it again with `handrail eval SUITE "
            "--calibrate` or `handrail calibrate`"
        ) from e


def apply_calibration(
    pipeline: str, nodes: Mapping[str, Node], errors: list[str]
) -> dict[str, Node]:
    """`nodes` with every calibrated gate's thresholds read from its calibration file (see the
    module); problems with a file are added to `errors`, fallbacks warned of."""
    out = dict(nodes)
    files: dict[Path, CalibrationFile | None] = {}
    for name, node in nodes.items():
        gate = node.gate if isinstance(node, LLMNode) else None
        if not isinstance(gate, CalibratedGate):
            continue
        assert isinstance(node, LLMNode)
        path = calibration_path(gate.calibration)
        if path not in files:
            try:
                files[path] = read_calibration(path)
            except ValueError as e:
                errors.append(str(e))
                files[path] = None
                continue
        found = files[path]
        entry = found.pipelines.get(pipeline) if found is not None else None
        thresholds = entry.nodes.get(name) if entry is not None else None
        where = (
            f"no calibration file {path}"
            if found is None
            else f"{path} holds no thresholds for pipeline `{pipeline}`"
            if entry is None
            else f"{path} holds no thresholds for it"
        )
        resolved = _resolve(node, gate, thresholds, where)
        if resolved is not gate:
            copy = _copy(node)
            object.__setattr__(copy, "gate", resolved)
            out[name] = copy
    return out


def _resolve(
    node: LLMNode, gate: CalibratedGate, found: NodeThresholds | None, where: str
) -> CalibratedGate:
    if found is None:
        _warn(f"`{node.name}`: {where}; its gate uses the fallback {gate.fallback:g}")
        return gate
    accept = _at_least(gate, found.node, f"`{node.name}`")
    fields = dict(gate.fields)
    if isinstance(node, Extract):
        for field in node.schema.model_fields:
            threshold = found.fields.get(field)
            if threshold is None or field in gate.fields:
                continue  # a field not calibrated, or one the pipeline sets itself
            fields[field] = _at_least(gate, threshold, f"field `{field}` of `{node.name}`")
    return replace(gate, accept=accept, fields=fields)


def _at_least(gate: CalibratedGate, found: Threshold, what: str) -> float:
    """The file's threshold, never below the floor; the fallback when it has none."""
    if found.threshold is None:
        _warn(f"{what}: no threshold from data ({found.reason}); uses the fallback")
        return gate.fallback
    return max(gate.floor, found.threshold)


def _warn(message: str) -> None:
    warnings.warn(message, CalibrationWarning, stacklevel=4)


def _copy(node: Node) -> Node:
    """A copy of a (frozen, slotted) node: its gate is then set on the copy alone."""
    copy = object.__new__(type(node))
    for cls in type(node).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if hasattr(node, slot):
                object.__setattr__(copy, slot, getattr(node, slot))
    return copy


__all__ = [
    "DEFAULT_FILE",
    "ENV",
    "CalibrationFile",
    "CalibrationWarning",
    "NodeThresholds",
    "Operating",
    "PipelineCalibration",
    "Threshold",
    "apply_calibration",
    "calibration_path",
    "read_calibration",
]
