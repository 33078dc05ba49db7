"""A review's fields as the gate sees them: each field's value and confidence against its
threshold, the schema of the node under review, and why its last answer did not fit it."""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import ValidationError

from handrail.core.records import Confidence, ReviewRequest, RunRecord, StepRecord
from handrail.review.views import FieldView

if TYPE_CHECKING:
    from handrail.core.pipeline import Pipeline


def gate_thresholds(pipeline: Pipeline, review: ReviewRequest) -> dict[str, float | None]:
    """The thresholds the gate of the node under review (`review.target`) holds its output to:
    per field of an `Extract` (None: a field the gate does not hold to any, an optional one
    it does not name), or the output's under the node's name. Empty for a node without a
    gate."""
    from handrail.core.nodes import Extract, LLMNode

    node = pipeline.nodes.get(review.target)
    gate = node.gate if isinstance(node, LLMNode) else None
    if gate is None:
        return {}
    if isinstance(node, Extract):
        fields = node.schema.model_fields
        return {
            name: gate.fields.get(name, gate.accept)
            if info.is_required() or name in gate.fields
            else None
            for name, info in fields.items()
        }
    return {review.target: gate.accept}


def schema_fields(pipeline: Pipeline, review: ReviewRequest) -> list[str]:
    """The fields of the schema of the node under review (none for a node whose output is one
    value)."""
    schema = getattr(pipeline.nodes.get(review.target), "schema", None)
    fields = getattr(schema, "model_fields", None)
    return list(fields) if isinstance(fields, Mapping) else []


@dataclass(frozen=True, kw_only=True, slots=True)
class FieldRow:
    """One field of the output under review (or the whole output, for a label)."""

    field: str
    value: Any
    confidence: Confidence | None
    threshold: float | None
    """What the gate holds it to; None when it holds it to none, or it is not known."""
    status: str
    """`ok`, `below`, `no confidence`, `not gated`, or `` when the threshold is not known."""


def field_rows(
    review: ReviewRequest,
    thresholds: Mapping[str, float | None] | None = None,
    run: RunRecord | None = None,
) -> list[FieldRow]:
    """Each field's value and confidence against its threshold: `thresholds` from the node's
    gate (`gate_thresholds`), else the ones the review's reasons name (the fields below). The
    confidences are the review's, else (a `Review` gate's review has none of its own) those of
    the reviewed node's last step in `run`."""
    step = _last_step(run, review.target) if run is not None else None
    field_confidence = review.field_confidence or (step.field_confidence if step else {})
    node_confidence = review.confidence or (step.confidence if step else None)
    named = {
        r.field or review.target: r.threshold for r in review.reasons if r.threshold is not None
    }
    known: dict[str, float | None] = {**named, **(thresholds or {})}
    output = review.output
    fields = [n for n in known if n != review.target] + list(field_confidence)
    if isinstance(output, Mapping) or (output is None and fields):
        # An object, or nothing (a schema failure): the fields the gate or the model name.
        values: Mapping[str, Any] = output if isinstance(output, Mapping) else {}
        names = [*(thresholds or {}), *values, *fields]
        names = [n for n in dict.fromkeys(names) if n != review.target or n in values]
        scores = field_confidence
    else:  # one value, such as a label
        names = [review.target]
        values = {review.target: output}
        scores = {review.target: node_confidence} if node_confidence is not None else {}
    rows = []
    for name in names:
        score = scores.get(name)
        threshold = known.get(name)
        if name not in known:
            status = ""
        elif threshold is None:
            status = "not gated"
        elif score is None:
            status = "no confidence"
        else:
            status = "ok" if score.value >= threshold else "below"
        rows.append(
            FieldRow(
                field=name,
                value=values.get(name),
                confidence=score,
                threshold=threshold,
                status=status,
            )
        )
    return rows


_LOCATION = re.compile(r"^\S")
_DETAIL = re.compile(
    r"\s*\[type=[^,\]]*(?:, input_value=(?P<value>.*?))?(?:, input_type=[^\]]*)?\]$"
)


def schema_errors(run: RunRecord, review: ReviewRequest) -> list[tuple[str, str]]:
    """(field, why) for each schema error of the last try of the node under review, when its
    output did not fit its schema (pydantic's message, with the value it got)."""
    step = _last_step(run, review.target)
    attempts = step.attempts if step is not None else ()
    if not attempts or attempts[-1].outcome != "invalid_output" or not attempts[-1].error:
        return []
    return parse_validation_error(attempts[-1].error)


def _last_step(run: RunRecord, node: str) -> StepRecord | None:
    return next((step for step in reversed(run.steps) if step.node == node), None)


def parse_validation_error(text: str) -> list[tuple[str, str]]:
    """(location, message) pairs from the text of a pydantic `ValidationError`; the whole text
    as one message when it is not one."""
    lines = text.splitlines()
    found: list[tuple[str, str]] = []
    location: str | None = None
    for line in lines[1:]:
        if _LOCATION.match(line):
            location = line.strip()
        elif location is not None and line.startswith("  ") and not line.startswith("    "):
            message = line.strip()
            detail = _DETAIL.search(message)
            if detail is not None:
                message = message[: detail.start()]
                if detail.group("value") is not None:
                    message += f" (got {detail.group('value')})"
            found.append((location, message))
            location = None
    return found or [("", " ".join(text.split()))]


# --- leaf fields, the schema's type, an edit's errors -----------------------------------------


def field_views(
    review: ReviewRequest,
    thresholds: Mapping[str, float | None] | None = None,
    run: RunRecord | None = None,
) -> list[FieldView]:
    """One view per leaf field of the output under review (dotted paths: `lines.0.amount`),
    each with its confidence and threshold (a nested field takes those of the nearest enclosing
    field that has one, as the gate holds the top-level field) and the reasons naming it. An
    output that is one value (a label) is one view under the node's name; no output (a schema
    failure) gives one view per field the gate or the model names, without values."""
    rows = {row.field: row for row in field_rows(review, thresholds, run)}
    output = review.output
    if isinstance(output, Mapping):
        leaves = list(_leaves(output))
        for name in rows:  # fields the gate holds that the output leaves out
            if name not in output and name != review.target:
                leaves.append((name, None))
    elif output is None and rows:
        leaves = [(name, None) for name in rows]
    else:
        leaves = [(review.target, output)]
    by_field: dict[str, list[str]] = {}
    for reason in review.reasons:
        if reason.field is not None:
            by_field.setdefault(reason.field, []).append(reason.message)
    if not isinstance(output, Mapping):  # a label: the node's reasons are the field's
        by_field.setdefault(review.target, []).extend(
            r.message for r in review.reasons if r.field is None and r.kind != "check"
        )
    views = []
    for path, value in leaves:
        row = _nearest(rows, path)
        reasons = tuple(m for prefix in _prefixes(path) for m in by_field.get(prefix, ()))
        status = row.status if row is not None else ""
        views.append(
            FieldView(
                path=path,
                label=label(path),
                value=value,
                confidence=row.confidence.value if row and row.confidence else None,
                threshold=row.threshold if row is not None else None,
                flagged=status in ("below", "no confidence") or bool(reasons),
                reasons=reasons,
            )
        )
    return views


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) for each leaf of a JSON-like value; an empty object or list is a
    leaf of its own."""
    if isinstance(value, Mapping) and value:
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}.{index}" if path else str(index))
    else:
        yield path, value


def _prefixes(path: str) -> list[str]:
    """`a.0.b` -> [`a.0.b`, `a.0`, `a`]."""
    parts = path.split(".")
    return [".".join(parts[:n]) for n in range(len(parts), 0, -1)]


def _nearest(rows: Mapping[str, FieldRow], path: str) -> FieldRow | None:
    return next((rows[p] for p in _prefixes(path) if p in rows), None)


def label(path: str) -> str:
    """A dotted path for people: `lines.0.unit_price` -> `Lines #1 unit price`."""
    words = [
        f"#{int(part) + 1}" if part.isdigit() else part.replace("_", " ")
        for part in path.split(".")
    ]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def dotted(location: Sequence[int | str]) -> str:
    """A pydantic error location as a dotted path: ("lines", 0, "amount") -> `lines.0.amount`."""
    return ".".join(str(part) for part in location)


def output_type(pipeline: Pipeline, review: ReviewRequest) -> Any:
    """The type the node under review answers with: an `Extract`'s pydantic model, a
    `Classify`'s Literal of labels, `str` for text, a rule's return annotation; None when it
    says none."""
    from handrail.core.nodes import Classify

    node = pipeline.nodes.get(review.target)
    if node is None:
        return None
    if isinstance(node, Classify):
        return Literal[tuple(node.labels())]
    schema = getattr(node, "schema", None)
    if schema is not None:
        return schema
    fn = getattr(node, "fn", None)
    if fn is not None:
        try:
            return typing.get_type_hints(fn).get("return")
        except Exception:  # an annotation that does not resolve: say nothing
            annotation = inspect.signature(fn).return_annotation
            return None if annotation is inspect.Signature.empty else annotation
    return str if node.output_adapter() is not None else None


def edit_errors(pipeline: Pipeline, review: ReviewRequest, output: Any) -> list[tuple[str, str]]:
    """(dotted path, message) for each way `output` fails the schema of the node under review
    (the node's name for an output that is one value); empty when it fits. Writes nothing."""
    node = pipeline.nodes.get(review.target)
    adapter = node.output_adapter() if node is not None else None
    if adapter is None:
        return []
    try:
        adapter.validate_python(output)
    except ValidationError as e:
        return [(dotted(error["loc"]) or review.target, error["msg"]) for error in e.errors()]
    return []


__all__ = [
    "FieldRow",
    "dotted",
    "edit_errors",
    "field_rows",
    "field_views",
    "label",
    "output_type",
    "gate_thresholds",
    "parse_validation_error",
    "schema_errors",
    "schema_fields",
]
