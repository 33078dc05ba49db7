"""How `handrail runs` and `handrail review` show stored runs and reviews to people: rich
tables and key-value headers (the JSON shapes are `handrail.review.shapes`). Times are UTC."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from handrail.cli.output import display_names, notes, result_brief
from handrail.core.records import (
    Attempt,
    Confidence,
    ReviewDecision,
    ReviewRequest,
    RunRecord,
    RunStatus,
    StepRecord,
    StepStatus,
)
from handrail.review.fields import FieldRow, field_rows, parse_validation_error, schema_errors
from handrail.review.shapes import jsonable, retried
from handrail.review.views import ReviewView

if TYPE_CHECKING:
    pass

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
    seen = any(attempt.images for step in steps for attempt in step.attempts)
    _columns(table, *(["pages shown"] if seen else []), wrap=False)
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
            *([Text(_pages_shown(step))] if seen else []),
        )
    return table


def _pages_shown(step: StepRecord) -> str:
    """The pages the step's model was shown as images (`Extract(images=...)`), over its
    attempts: `1, 2`."""
    pages = sorted({page for attempt in step.attempts for page in attempt.images})
    return ", ".join(str(page) for page in pages)


def _why(attempt: Attempt) -> str:
    """An attempt's error in brief: a schema failure as `field: why` pairs."""
    error = attempt.error or ""
    if attempt.outcome != "invalid_output":
        return error
    pairs = parse_validation_error(error)
    return "; ".join(f"{where}: {why}" if where else why for where, why in pairs)


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


__all__ = [
    "confidence",
    "console",
    "cost",
    "decisions_table",
    "duration",
    "print_json",
    "print_table",
    "review_detail",
    "reviews_table",
    "run_detail",
    "runs_table",
    "when",
]
