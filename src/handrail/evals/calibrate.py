"""Thresholds from data: the calibration file from an eval's cases or from decided reviews.

`handrail eval SUITE --calibrate` (`answers_from_eval`) and `handrail calibrate`
(`answers_from_reviews`) gather, per gated node, one (confidence, right) per answer, and per
field of an `Extract`; `calibrate` finds for each the lowest threshold whose accepted answers
reach the target accuracy (`handrail.evals.calibration.lowest_threshold`, the eval report's own
rule), and what it does to the straight-through rate; `save_calibration` writes it into the file
a pipeline gated with `Gate.calibrated(...)` reads when it is built (`handrail.core.calibration`).

From reviews, an approval is "the model was right", an edit or a reject "wrong" (for an
`Extract`, per field: an edit that keeps a field's value leaves that field right). Reviews see
only what the gate sent to a person (and the audited share of what it accepted): thresholds from
them rest on the uncertain answers, which is why an eval suite is the better source when there
is one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from handrail.core.calibration import (
    CalibrationFile,
    NodeThresholds,
    Operating,
    PipelineCalibration,
    Threshold,
    read_calibration,
)
from handrail.core.nodes import CalibratedGate, Classify, Extract, Gate, LLMNode
from handrail.core.pipeline import Pipeline
from handrail.core.store import RunStore
from handrail.evals.calibration import lowest_threshold
from handrail.evals.report import model_step
from handrail.evals.run import EvalRun
from handrail.evals.scorers import MatchMode, field_outcomes
from handrail.evals.suite import Suite

MIN_CASES = 30
"""The fewest answers with a confidence a threshold may rest on (below it: no threshold)."""
DEFAULT_TARGET = 0.95
"""The target accuracy of `handrail calibrate` when none is given."""
_RIGHT = frozenset({"tp", "tn"})


@dataclass(kw_only=True, slots=True)
class Answers:
    """One gated node's answers: (confidence, right) each, and per field of an `Extract`."""

    node: str
    kind: str
    pairs: list[tuple[float, bool]] = field(default_factory=list)
    """The node's answers (an `Extract`: every field of every answer, pooled)."""
    fields: dict[str, list[tuple[float, bool]]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Row:
    """One line of the calibration table: a node (field None) or one of its fields."""

    node: str
    field: str | None
    cases: int
    old: float | None
    """The threshold the pipeline uses now."""
    new: float | None
    """The threshold the pipeline will use: the data's, never below the gate's floor; None when
    the data gives none."""
    floor: float | None
    """The gate's floor (`Gate.calibrated`); None for a plain `Gate`."""
    straight_before: float | None
    straight_after: float | None
    accuracy_before: float | None
    accuracy_after: float | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class Calibration:
    """What `calibrate` found: the file's entry for the pipeline, and the table's rows."""

    entry: PipelineCalibration
    rows: tuple[Row, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "calibration": self.entry.model_dump(mode="json"),
            "rows": [r.to_dict() for r in self.rows],
        }


# --- the answers -------------------------------------------------------------------------------


def gated_nodes(pipeline: Pipeline) -> dict[str, LLMNode]:
    """The pipeline's `Classify` and `Extract` nodes with a gate: the ones calibrated."""
    return {
        n.name: n
        for n in pipeline.llm_nodes
        if isinstance(n, Classify | Extract) and n.gate is not None
    }


def answers_from_eval(pipeline: Pipeline, suite: Suite, run: EvalRun) -> dict[str, Answers]:
    """Per gated node the suite scores, its answers on the suite's cases: a label right when it
    is the expected one; a field right when it matches as the suite's scoring says (the
    report's rule); a field without a confidence of its own takes the node's."""
    found: dict[str, Answers] = {}
    for name, node in gated_nodes(pipeline).items():
        scoring = suite.scoring.get(name)
        if scoring is None:
            continue
        answers = found[name] = Answers(node=name, kind=node.kind)
        match: MatchMode = getattr(scoring, "match", "normalised")
        fuzzy = getattr(scoring, "fuzzy_threshold", 0.9)
        names = list(getattr(scoring, "fields", None) or ())
        for result in run.results:
            if name not in result.case.expected:
                continue
            step = model_step(result.record, name)
            overall = step.confidence.value if step and step.confidence else None
            want = result.case.expected[name]
            if isinstance(node, Classify):
                if overall is not None:
                    got = step.output if step is not None else None
                    answers.pairs.append((overall, got is not None and str(got) == str(want)))
                continue
            expected = dict(want) if isinstance(want, Mapping) else {}
            wanted = names or list(expected)
            got_fields = _plain(step.output) if step is not None else None
            outcomes = field_outcomes(expected, got_fields, wanted, threshold=fuzzy)
            by_field = step.field_confidence if step is not None else {}
            for field_name, modes in outcomes.items():
                score = by_field.get(field_name)
                confidence = score.value if score is not None else overall
                if confidence is not None:
                    pair = (confidence, modes[match] in _RIGHT)
                    answers.pairs.append(pair)
                    answers.fields.setdefault(field_name, []).append(pair)
    return found


def answers_from_reviews(pipeline: Pipeline, store: RunStore) -> tuple[dict[str, Answers], int]:
    """Per gated node, its decided reviews as answers (see the module), and how many decided
    reviews of the pipeline's gated nodes there were."""
    nodes = gated_nodes(pipeline)
    found: dict[str, Answers] = {}
    decided = 0
    for request in store.list_reviews(pending_only=False):
        node = nodes.get(request.node)
        if (
            node is None
            or request.pipeline != pipeline.name
            or request.status != "decided"
            or request.target != request.node
        ):
            continue
        decision = store.get_decision(request.review_id)
        if decision is None:
            continue
        decided += 1
        answers = found.setdefault(node.name, Answers(node=node.name, kind=node.kind))
        overall = request.confidence.value if request.confidence is not None else None
        if isinstance(node, Classify):
            if overall is not None:
                answers.pairs.append((overall, decision.action == "approve"))
            continue
        assert isinstance(node, Extract)
        before = _plain(request.output) or {}
        after = _plain(decision.output) or {}
        for field_name in node.schema.model_fields:
            score = request.field_confidence.get(field_name)
            confidence = score.value if score is not None else overall
            if confidence is None:
                continue
            right = decision.action == "approve" or (
                decision.action == "edit" and before.get(field_name) == after.get(field_name)
            )
            answers.pairs.append((confidence, right))
            answers.fields.setdefault(field_name, []).append((confidence, right))
    return found, decided


# --- the thresholds ----------------------------------------------------------------------------


def calibrate(
    pipeline: Pipeline,
    answers: Mapping[str, Answers],
    *,
    target_accuracy: float,
    source: Literal["eval", "reviews"],
    suite: str | None = None,
    min_cases: int = MIN_CASES,
    now: datetime | None = None,
) -> Calibration:
    """The thresholds `answers` give for the target accuracy, and what each does to the
    straight-through rate against the pipeline's current threshold (see the module)."""
    nodes = gated_nodes(pipeline)
    entries: dict[str, NodeThresholds] = {}
    rows: list[Row] = []
    for name, found in answers.items():
        node = nodes[name]
        gate = node.gate
        assert gate is not None
        threshold, row = _one(
            name, None, found.pairs, gate.accept, gate, target_accuracy, min_cases
        )
        per_field: dict[str, Threshold] = {}
        field_rows = []
        for field_name, pairs in found.fields.items():
            old = gate.fields.get(field_name, gate.accept)
            per_field[field_name], field_row = _one(
                name, field_name, pairs, old, gate, target_accuracy, min_cases
            )
            field_rows.append(field_row)
        entries[name] = NodeThresholds(kind=found.kind, node=threshold, fields=per_field)
        rows.extend([row, *field_rows])
    entry = PipelineCalibration(
        pipeline=pipeline.name,
        fingerprint=pipeline.fingerprint,
        source=source,
        suite=suite,
        target_accuracy=target_accuracy,
        min_cases=min_cases,
        generated_at=(now or datetime.now(UTC)).isoformat(timespec="seconds"),
        nodes=entries,
    )
    return Calibration(entry=entry, rows=tuple(rows))


def _one(
    node: str,
    field_name: str | None,
    pairs: Sequence[tuple[float, bool]],
    old: float,
    gate: Gate,
    target: float,
    min_cases: int,
) -> tuple[Threshold, Row]:
    floor = gate.floor if isinstance(gate, CalibratedGate) else None
    before = _operating(pairs, old)
    what = f"`{node}`" + (f" field `{field_name}`" if field_name else "")
    reason = None
    point = None
    if len(pairs) < min_cases:
        reason = (
            f"{what} has {len(pairs)} answers with a confidence; a threshold needs at least "
            f"{min_cases} ({min_cases - len(pairs)} more)"
        )
    else:
        point = lowest_threshold([c for c, _ in pairs], [r for _, r in pairs], target)
        if point is None:
            best = max((sum(r for _, r in pairs) / len(pairs)) if pairs else 0.0, 0.0)
            reason = (
                f"no threshold reaches {target:.1%} accuracy on {what}'s {len(pairs)} answers "
                f"(all accepted: {best:.1%}); everything would go to review"
            )
    if point is not None and _same_answers(pairs, old, point.threshold):
        point = replace(point, threshold=old)  # the current threshold accepts the same answers
    threshold = Threshold(
        threshold=point.threshold if point else None,
        cases=len(pairs),
        straight_through=1 - point.review_rate if point else None,
        accepted_accuracy=point.accepted_accuracy if point else None,
        before=before,
        reason=reason,
    )
    new = None if point is None else max(point.threshold, floor or 0.0)
    after = _operating(pairs, new) if new is not None else None
    row = Row(
        node=node,
        field=field_name,
        cases=len(pairs),
        old=old,
        new=new,
        floor=floor,
        straight_before=before.straight_through,
        straight_after=after.straight_through if after else None,
        accuracy_before=before.accepted_accuracy,
        accuracy_after=after.accepted_accuracy if after else None,
        reason=reason,
    )
    return threshold, row


def _same_answers(pairs: Sequence[tuple[float, bool]], old: float, new: float) -> bool:
    """Whether thresholds `old` and `new` accept the same answers (none lies between them)."""
    low, high = min(old, new), max(old, new)
    return not any(low <= c < high for c, _ in pairs)


def _operating(pairs: Sequence[tuple[float, bool]], threshold: float) -> Operating:
    accepted = [right for confidence, right in pairs if confidence >= threshold]
    return Operating(
        threshold=threshold,
        straight_through=len(accepted) / len(pairs) if pairs else None,
        accepted_accuracy=sum(accepted) / len(accepted) if accepted else None,
    )


# --- the file ----------------------------------------------------------------------------------


def save_calibration(path: str | Path, entry: PipelineCalibration) -> Path:
    """Write `entry` into the calibration file at `path` (its other pipelines kept)."""
    file = Path(path)
    existing = read_calibration(file) or CalibrationFile()
    pipelines = {**existing.pipelines, entry.pipeline: entry}
    updated = CalibrationFile(pipelines=dict(sorted(pipelines.items())))
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(updated.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return file


def _plain(output: Any) -> dict[str, Any] | None:
    if output is None:
        return None
    if isinstance(output, BaseModel):
        return output.model_dump(mode="json")
    if is_dataclass(output) and not isinstance(output, type):
        return asdict(output)
    if isinstance(output, Mapping):
        return dict(output)
    return {"value": output}


def short_of(rows: Iterable[Row]) -> list[str]:
    """The reasons rows give no threshold, one line each."""
    return [r.reason for r in rows if r.reason]


__all__ = [
    "DEFAULT_TARGET",
    "MIN_CASES",
    "Answers",
    "Calibration",
    "Row",
    "answers_from_eval",
    "answers_from_reviews",
    "calibrate",
    "gated_nodes",
    "save_calibration",
    "short_of",
]
