"""How `handrail runs` and `handrail review` show stored runs and reviews: rich tables and
key-value headers for people, JSON for machines. Times are UTC."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from handrail.cli.output import display_names, jsonable, notes, record_json, result_brief
from handrail.cli.records import ReviewView
from handrail.core.records import (
    Attempt,
    Confidence,
    ReviewDecision,
    ReviewReason,
    ReviewRequest,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)

if TYPE_CHECKING:
    from handrail.core.pipeline import Pipeline

_RUN_STYLES = {
    RunStatus.COMPLETED: "green",
    RunStatus.NEEDS_REVIEW: "yellow",
    RunStatus.FAILED: "red",
    RunStatus.REJECTED: "magenta",
    RunStatus.RUNNING: "blue",
}
_STEP_STYLES = {
    StepStatus.COMPLETED: "green",
    StepStatus.NEEDS_REVIEW: "yellow",
    StepStatus.FAILED: "red",
    StepStatus.REJECTED: "magenta",
    StepStatus.FALLBACK: "cyan",
    StepStatus.SUPERSEDED: "dim",
}


def console() -> Console:
    return Console(highlight=False)


def print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False))


# --- formats ----------------------------------------------------------------------------------


def when(moment: datetime | None) -> str:
    """`2025-03-05 18:42:07` (UTC), or empty."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.0005 else "0 ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


def cost(value: float | None) -> str:
    """Unknown cost is `?`, never free."""
    if value is None:
        return "?"
    return "0" if value == 0 else f"{value:.4f}"


def confidence(value: Confidence | None) -> str:
    return "" if value is None else f"{value.value:.2f} ({value.source})"


def _compact(value: Any, limit: int | None = 80) -> str:
    text = value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False)
    text = " ".join(text.split())
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def _status(value: RunStatus) -> Text:
    return Text(value.value, style=_RUN_STYLES[value])


# --- runs -------------------------------------------------------------------------------------


def run_summary_json(record: RunRecord) -> dict[str, Any]:
    """One line of `handrail runs list --json`."""
    return {
        "run_id": record.run_id,
        "document": record.document_id,
        "pipeline": record.pipeline,
        "status": record.status.value,
        "started_at": jsonable(record.started_at),
        "ended_at": jsonable(record.ended_at),
        "duration_s": record.duration_s,
        "steps": len(record.steps),
        "tokens": record.usage.total_tokens,
        "cost": record.usage.cost,
        "reviews": [review.review_id for review in record.reviews],
        "error": _error_json(record),
        "model": record.model.name if record.model is not None else None,
        "pipeline_version": record.pipeline_version or None,
    }


def runs_table(records: Sequence[RunRecord]) -> Table:
    common, names = display_names([record.document_id for record in records])
    several = len({record.pipeline for record in records}) > 1
    table = Table(title=f"documents in {common}" if common else None, title_justify="left")
    _columns(table, "run id", wrap=False)
    _columns(table, "document")
    _columns(table, *(["pipeline"] if several else []))
    _columns(table, "status", "started (UTC)", wrap=False)
    _columns(table, "duration", "steps", "tokens", right=True, wrap=False)
    _columns(table, "model", "version", wrap=False)
    for record, name in zip(records, names, strict=True):
        table.add_row(
            Text(record.run_id),
            Text(name),
            *([Text(record.pipeline)] if several else []),
            _status(record.status),
            Text(when(record.started_at)),
            Text(duration(record.duration_s)),
            Text(str(len(record.steps))),
            Text(str(record.usage.total_tokens)),
            Text(record.model.name if record.model is not None else ""),
            Text(record.pipeline_version),
        )
    return table


def run_detail_json(record: RunRecord) -> dict[str, Any]:
    """`handrail runs show --json`: the `handrail run --json` object with the whole story."""
    return record_json(record) | {
        "pipeline": record.pipeline,
        "started_at": jsonable(record.started_at),
        "ended_at": jsonable(record.ended_at),
        "duration_s": record.duration_s,
        "tokens": record.usage.total_tokens,
        "cost": record.usage.cost,
        "steps": [step_json(step) for step in record.steps],
        "reviews": [review_json(ReviewView(request=r)) for r in record.reviews],
        "decisions": [decision_json(rid, decision) for rid, decision in record.decisions],
        "model": jsonable(record.model),
        "pipeline_version": record.pipeline_version or None,
        "warnings": list(record.warnings),
    }


def step_json(step: StepRecord) -> dict[str, Any]:
    return {
        "node": step.node,
        "kind": step.kind,
        "visit": step.visit,
        "status": step.status.value,
        "attempts": len(step.attempts),
        "confidence": step.confidence.value if step.confidence is not None else None,
        "confidence_source": step.confidence.source if step.confidence is not None else None,
        "route": step.route,
        "started_at": jsonable(step.started_at),
        "duration_s": step.duration_s,
        "tokens": step.usage.total_tokens,
        "cost": step.usage.cost,
        "model": step.model,
        "warnings": [w for attempt in step.attempts for w in attempt.warnings],
        "retries": [
            {
                "attempt": attempt.number,
                "outcome": attempt.outcome,
                "error": attempt.error,
                "then": then,
            }
            for attempt, then in retried(step)
        ],
        "error": (
            {"type": step.error.type, "message": step.error.message}
            if step.error is not None
            else None
        ),
        "review_id": step.review_id,
        "output": jsonable(step.output),
    }


def run_detail(record: RunRecord) -> RenderableType:
    """A run's header, its steps, its pending reviews and the decisions applied to it."""
    header = _pairs(
        ("run", Text(record.run_id)),
        ("status", _status(record.status)),
        ("pipeline", Text(record.pipeline)),
        ("version", Text(record.pipeline_version)),
        ("model", Text(record.model.describe() if record.model is not None else "")),
        ("document", Text(record.document_id)),
        ("started", Text(f"{when(record.started_at)} UTC" if record.started_at else "")),
        ("duration", Text(duration(record.duration_s))),
        ("tokens", Text(f"{record.usage.total_tokens} (cost {cost(record.usage.cost)})")),
        ("result", Text(result_brief(record))),
        ("error", Text(notes(record) if record.error is not None else "")),
        ("warnings", Text("\n".join(record.warnings))),
    )
    parts: list[RenderableType] = [header, steps_table(record.steps)]
    if record.reviews:
        parts.append(reviews_table([ReviewView(request=r) for r in record.reviews], "pending"))
    if record.decisions:
        parts.append(decisions_table(record.decisions))
    return Group(*parts)


def steps_table(steps: Sequence[StepRecord]) -> Table:
    table = Table(title="steps", title_justify="left")
    _columns(table, "node", "kind", wrap=False)
    _columns(table, "visit", right=True, wrap=False)
    _columns(table, "status", wrap=False)
    _columns(table, "attempts", right=True, wrap=False)
    _columns(table, "confidence", wrap=False)
    _columns(table, "route")
    _columns(table, "duration", "tokens", "cost", right=True, wrap=False)
    _columns(table, "error")
    why = any(retried(step) for step in steps)
    _columns(table, *(["retried because"] if why else []))
    for step in steps:
        error = f"{step.error.type}: {step.error.message}" if step.error is not None else ""
        because = "; ".join(
            f"{attempt.number}: {attempt.outcome.replace('_', ' ')}"
            + (f" ({_why(attempt)})" if attempt.error else "")
            for attempt, _ in retried(step)
        )
        table.add_row(
            Text(step.node),
            Text(step.kind),
            Text(str(step.visit)),
            Text(step.status.value, style=_STEP_STYLES[step.status]),
            Text(str(len(step.attempts))),
            Text(confidence(step.confidence)),
            Text(step.route or ""),
            Text(duration(step.duration_s)),
            Text(str(step.usage.total_tokens)),
            Text(cost(step.usage.cost)),
            Text(_compact(error, 160)),
            *([Text(_compact(because, 200))] if why else []),
        )
    return table


def _why(attempt: Attempt) -> str:
    """An attempt's error in brief: a schema failure as `field: why` pairs."""
    error = attempt.error or ""
    if attempt.outcome != "invalid_output":
        return error
    pairs = parse_validation_error(error)
    return "; ".join(f"{where}: {why}" if where else why for where, why in pairs)


def retried(step: StepRecord) -> list[tuple[Attempt, str]]:
    """The attempts of `step` that were followed by another, with what came next (`reask`,
    `transport_retry`...): why each retry happened is the attempt's outcome and error."""
    attempts = step.attempts
    return [(attempt, following.kind) for attempt, following in pairwise(attempts)]


def decisions_table(decisions: Sequence[tuple[str, ReviewDecision]]) -> Table:
    table = Table(title="decisions", title_justify="left")
    _columns(table, "review id", "decision", wrap=False)
    _columns(table, "by")
    _columns(table, "at (UTC)", wrap=False)
    _columns(table, "reason / edited output")
    for review_id, decision in decisions:
        table.add_row(
            Text(review_id),
            Text(decision.action),
            Text(decision.reviewer or ""),
            Text(when(decision.decided_at)),
            Text(_decision_note(decision)),
        )
    return table


def _decision_note(decision: ReviewDecision) -> str:
    parts = []
    if decision.reason:
        parts.append(decision.reason)
    if decision.action == "edit":
        parts.append(_compact(decision.output))
    return "; ".join(parts)


# --- reviews ----------------------------------------------------------------------------------


def review_json(
    view: ReviewView,
    *,
    run: RunRecord | None = None,
    thresholds: Mapping[str, float | None] | None = None,
) -> dict[str, Any]:
    """One review: what is under review, why, where it waits and what becomes of it; with its
    `run` (`review show`), also the document's text, the fields against their thresholds and
    the schema errors (see `review_detail`)."""
    review = view.request
    shown = _review_json(view)
    if run is not None:
        shown |= {
            "document_text": run.document.text if run.document is not None else None,
            "fields": [field_json(row) for row in field_rows(review, thresholds, run)],
            "schema_errors": [
                {"field": location, "message": message}
                for location, message in schema_errors(run, review)
            ],
        }
    return shown


def _review_json(view: ReviewView) -> dict[str, Any]:
    review = view.request
    return {
        "review_id": review.review_id,
        "status": review.status,
        "pipeline": review.pipeline,
        "node": review.node,
        "target": review.target,
        "run_id": review.run_id,
        "document": review.document_id,
        "queue": review.queue,
        "created_at": jsonable(review.created_at),
        "deadline": jsonable(review.deadline),
        "on_deadline": review.on_deadline.describe() if review.on_deadline is not None else None,
        "escalated_at": jsonable(review.escalated_at),
        "escalation": review.escalation,
        "confidence": review.confidence.value if review.confidence is not None else None,
        "confidence_source": review.confidence.source if review.confidence is not None else None,
        "field_confidence": {name: value.value for name, value in review.field_confidence.items()},
        "reasons": [reason_json(reason) for reason in review.reasons],
        "output": jsonable(review.output),
        "decision": (
            decision_json(review.review_id, view.decision) if view.decision is not None else None
        ),
    }


def reason_json(reason: ReviewReason) -> dict[str, Any]:
    return {
        "kind": reason.kind,
        "message": reason.message,
        "field": reason.field,
        "value": reason.value,
        "threshold": reason.threshold,
        "check": reason.check,
    }


def decision_json(review_id: str, decision: ReviewDecision) -> dict[str, Any]:
    return {
        "review_id": review_id,
        "action": decision.action,
        "reviewer": decision.reviewer,
        "decided_at": jsonable(decision.decided_at),
        "reason": decision.reason,
        "output": jsonable(decision.output),
    }


def reviews_table(views: Sequence[ReviewView], title: str | None = None) -> Table:
    """One row per review: what to look at and why (`review show` has the rest)."""
    common, names = display_names([view.request.document_id for view in views])
    with_status = any(view.request.status != "pending" for view in views)
    with_deadline = any(view.request.deadline is not None for view in views)
    heading = [f"{title} reviews" if title else "", f"documents in {common}" if common else ""]
    table = Table(title=", ".join(h for h in heading if h) or None, title_justify="left")
    _columns(table, "review id", wrap=False)
    _columns(table, "queue", "node", "document")
    _columns(table, *(["status"] if with_status else []), "confidence", wrap=False)
    _columns(table, "reasons")
    _columns(table, "waiting since (UTC)", wrap=False)
    _columns(table, *(["deadline (UTC)"] if with_deadline else []), wrap=False)
    for view, name in zip(views, names, strict=True):
        review = view.request
        row = [Text(review.review_id), Text(review.queue), Text(_node(review)), Text(name)]
        if with_status:
            decided = view.decision.action if view.decision is not None else review.status
            row.append(Text(decided, style="yellow" if review.status == "pending" else ""))
        row += [
            Text(f"{review.confidence.value:.2f}" if review.confidence is not None else ""),
            Text("; ".join(reason.message for reason in review.reasons)),
            Text(when(review.created_at)),
        ]
        row += [Text(when(review.deadline))] if with_deadline else []
        table.add_row(*row)
    return table


def review_detail(
    view: ReviewView,
    *,
    run: RunRecord | None = None,
    thresholds: Mapping[str, float | None] | None = None,
) -> RenderableType:
    """What a reviewer needs to decide: the output under review, the confidence, the reasons,
    and where the review waits and until when; with the review's `run`, also the document's
    text, each field against its threshold (`thresholds`: see `gate_thresholds`) and, after a
    schema failure, which fields failed and why."""
    review = view.request
    escalates = ""
    if review.deadline is not None:
        plan = review.on_deadline.describe() if review.on_deadline is not None else "nothing"
        escalates = f"{when(review.deadline)} UTC, then {plan}"
    header = _pairs(
        ("review", Text(review.review_id)),
        ("status", Text(review.status, style="yellow" if review.status == "pending" else "")),
        ("pipeline", Text(review.pipeline)),
        ("node", Text(_node(review))),
        ("run", Text(review.run_id)),
        ("document", Text(review.document_id)),
        ("queue", Text(review.queue)),
        ("waiting since", Text(f"{when(review.created_at)} UTC")),
        ("deadline", Text(escalates or "none (waits until someone decides)")),
        ("escalation", Text(review.escalation or "")),
        ("confidence", Text(confidence(review.confidence))),
        (
            "field confidence",
            Text(", ".join(f"{name} {c.value:.2f}" for name, c in review.field_confidence.items())),
        ),
    )
    reasons = Table(title="why a person is needed", title_justify="left")
    _columns(reasons, "reason", wrap=False)
    _columns(reasons, "message", "field")
    _columns(reasons, "value", "threshold", right=True, wrap=False)
    _columns(reasons, "check")
    for reason in review.reasons:
        reasons.add_row(
            Text(reason.kind),
            Text(reason.message),
            Text(reason.field or ""),
            Text("" if reason.value is None else f"{reason.value:.2f}"),
            Text("" if reason.threshold is None else f"{reason.threshold:g}"),
            Text(reason.check or ""),
        )
    output = json.dumps(jsonable(review.output), indent=2, ensure_ascii=False)
    parts: list[RenderableType] = [header, reasons]
    if run is not None:
        rows = field_rows(review, thresholds, run)
        if rows:
            parts.append(_fields_table(review, rows, thresholds is not None))
        errors = schema_errors(run, review)
        if errors:
            parts.append(_schema_table(review, errors))
    parts += [Text(f"output under review (`{review.target}`):", style="bold"), Text(output)]
    if run is not None and run.document is not None:
        parts += [
            Text(f"document ({len(run.document.text)} characters):", style="bold"),
            Text(run.document.text),
        ]
    if view.decision is not None:
        parts.append(decisions_table([(review.review_id, view.decision)]))
    return Group(*parts)


# --- a review's fields, thresholds and schema errors -----------------------------------------


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


def field_json(row: FieldRow) -> dict[str, Any]:
    return {
        "field": row.field,
        "value": jsonable(row.value),
        "confidence": row.confidence.value if row.confidence is not None else None,
        "confidence_source": row.confidence.source if row.confidence is not None else None,
        "threshold": row.threshold,
        "status": row.status or None,
    }


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


def _fields_table(review: ReviewRequest, rows: Sequence[FieldRow], from_gate: bool) -> Table:
    title = f"`{review.target}` against its gate" + ("" if from_gate else " (as the reasons say)")
    table = Table(title=title, title_justify="left")
    _columns(table, "field")
    _columns(table, "value")
    _columns(table, "confidence", "threshold", wrap=False)
    _columns(table, "", wrap=False)
    styles = {"below": "yellow", "no confidence": "yellow", "ok": "green"}
    for row in rows:
        table.add_row(
            Text(row.field),
            Text(_compact(row.value, 60)),
            Text(confidence(row.confidence)),
            Text("" if row.threshold is None else f"{row.threshold:g}"),
            Text(row.status, style=styles.get(row.status, "")),
        )
    return table


def _schema_table(review: ReviewRequest, errors: Sequence[tuple[str, str]]) -> Table:
    table = Table(
        title=f"why `{review.target}`'s last answer did not fit its schema", title_justify="left"
    )
    _columns(table, "field", wrap=False)
    _columns(table, "error")
    for location, message in errors:
        table.add_row(Text(location), Text(message))
    return table


def _node(review: ReviewRequest) -> str:
    return review.node if review.target == review.node else f"{review.node} (of {review.target})"


def _columns(table: Table, *names: str, right: bool = False, wrap: bool = True) -> None:
    """Columns that fold long values, or (`wrap=False`: ids, numbers, times) never break them."""
    for name in names:
        table.add_column(
            name, justify="right" if right else "left", overflow="fold", no_wrap=not wrap
        )


def print_table(console: Console, renderable: RenderableType) -> None:
    """Print tables as wide as their longest words need, even past the terminal's edge: an id
    cut short or a column one letter wide is worse than a long line."""
    width = console.width
    unbounded = console.options.update_width(10_000)
    console.width = max(width, Measurement.get(console, unbounded, renderable).minimum)
    try:
        console.print(renderable)
    finally:
        console.width = width


def _pairs(*pairs: tuple[str, Text]) -> Table:
    """A borderless two-column table of the pairs that have a value."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs:
        if value.plain:
            table.add_row(key, value)
    return table


def _error_json(record: RunRecord) -> dict[str, str] | None:
    error = record.error
    return {"type": error.type, "message": error.message} if error is not None else None


__all__ = [
    "FieldRow",
    "confidence",
    "console",
    "cost",
    "decision_json",
    "decisions_table",
    "duration",
    "field_json",
    "field_rows",
    "gate_thresholds",
    "parse_validation_error",
    "print_json",
    "print_table",
    "reason_json",
    "review_detail",
    "review_json",
    "retried",
    "reviews_table",
    "run_detail",
    "run_detail_json",
    "run_summary_json",
    "runs_table",
    "schema_errors",
    "schema_fields",
    "step_json",
    "when",
]
