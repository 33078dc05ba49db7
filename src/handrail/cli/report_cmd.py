"""`handrail report`: the workflow's health, computed from the runs in the store that
`handrail runs` and `handrail review` read (what each figure means: docs/report.md)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.cells import cell_len
from rich.console import Group
from rich.table import Table
from rich.text import Text

from handrail._utils import now
from handrail.cli import show
from handrail.cli.options import Db, Json, errors
from handrail.review import ReviewService

if TYPE_CHECKING:
    from handrail.observability.report import Durations, NodeFigures, WorkflowReport

# `handrail.observability` loads OpenTelemetry: imported by the functions that use it, so the
# other commands start without it.


def report(
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only runs started at or after WHEN: an ISO date or date and time (UTC unless "
            "it says otherwise), or a time back from now: 30m, 24h, 7d.",
            show_default=False,
        ),
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option("--pipeline", "-p", help="Only runs of this pipeline.", show_default=False),
    ] = None,
    db: Db = None,
    json_output: Json = False,
) -> None:
    """The workflow's health from the stored runs.

    Documents by status, cycle and processing time, straight-through and review rates, review
    waits, exceptions, retries, the bottleneck node, tokens and cost per document.

    With --json: one object (keys in docs/report.md). Exit code 2 for a malformed --since.
    """
    from handrail.observability.report import parse_since

    with errors():
        moment = now()
        start = parse_since(since, now=moment) if since is not None else None
        result = load_report(db, since=start, pipeline=pipeline, now=moment)
        where = ReviewService(db, read_only=True).url
    if json_output:
        show.print_json(result.to_dict())
        return
    console = show.console()
    if not result.runs:
        matching = "matching " if since is not None or pipeline is not None else ""
        console.print(Text(f"no {matching}runs in {where}"))
        return
    console.print(Text(heading(result, where)), soft_wrap=True)
    parts = [summary_table(result), nodes_table(result)]
    if result.queues:
        parts.append(queues_table(result))
    if result.errors:
        parts.append(errors_table(result))
    show.print_table(console, Group(*parts))


def load_report(
    db: str | None, *, since: datetime | None, pipeline: str | None, now: datetime
) -> WorkflowReport:
    """The report on the runs kept in `db` (none when its SQLite file does not exist yet)."""
    with ReviewService(db, read_only=True) as service:
        return service.report(since=since, pipeline=pipeline, at=now)


# --- tables -------------------------------------------------------------------------------------


def heading(result: WorkflowReport, where: str) -> str:
    """What the report covers: `workflow report: pipeline P, runs started since T UTC, DB`."""
    scope = [
        f"pipeline {result.pipeline}" if result.pipeline else "",
        f"runs started since {show.when(result.since)} UTC" if result.since else "",
        where,
    ]
    return f"workflow report: {', '.join(part for part in scope if part)}"


def summary_table(result: WorkflowReport) -> Table:
    table = Table()
    _columns(table, "figure")
    _columns(table, "value", wrap=True)
    reviews, usage = result.reviews, result.usage
    by_status = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in result.by_status.items())
    retries = ", ".join(f"{kind} {n}" for kind, n in result.retries.by_kind.items() if n)
    decided = ", ".join(f"{action} {n}" for action, n in reviews.decisions.items() if n)
    unknown_cost = usage.cost_unknown
    rows = [
        ("documents", f"{result.runs}: {by_status}"),
        (
            "straight-through",
            share(result.straight_through, result.finished, "finished runs with no review"),
        ),
        ("cycle time (wall)", spread(result.cycle, "finished runs, review waits included")),
        ("processing time", spread(result.processing, "finished runs")),
        ("review rate", share(reviews.runs, result.runs, "runs needed a review")),
        (
            "review wait",
            spread(reviews.wait, "decisions" + (f": {decided}" if decided else ""))
            + (f"; {reviews.wait_unknown} without a time" if reviews.wait_unknown else ""),
        ),
        ("pending reviews", _pending(result)),
        ("exceptions", share(result.exceptions, result.steps, "steps")),
        ("retries", f"{result.retries.total}" + (f" ({retries})" if retries else "")),
        ("bottleneck", _bottleneck(result)),
        ("tokens per document", _mean(usage.tokens_mean, f"{usage.tokens_mean or 0:.0f}")),
        (
            "cost per document",
            _mean(usage.cost_mean, show.cost(usage.cost_mean))
            + (f"; {unknown_cost} runs of unknown cost left out" if unknown_cost else ""),
        ),
    ]
    for figure, value in rows:
        table.add_row(figure, Text(value))
    return _fit(table)


def nodes_table(result: WorkflowReport) -> Table:
    several = len(result.pipelines) > 1
    table = Table(title="nodes", title_justify="left")
    _columns(table, *(["pipeline"] if several else []), "node", "kind")
    _columns(table, "steps", "median", "p90", "total", right=True)
    _columns(table, "exceptions", "reviews", "retries", right=True)
    bottleneck = result.bottleneck
    for node in result.nodes:
        table.add_row(
            *([node.pipeline] if several else []),
            Text(node.node, style="bold" if node is bottleneck else ""),
            node.kind,
            str(node.steps),
            _duration(node.duration.median_s),
            _duration(node.duration.p90_s),
            show.duration(node.duration.total_s),
            _count(node.exceptions, node.exception_rate),
            _count(node.reviews, node.review_rate),
            str(node.retries.total),
        )
    return _fit(table)


def queues_table(result: WorkflowReport) -> Table:
    """Human wait per review queue: what node durations leave out."""
    table = Table(title="review queues (human wait)", title_justify="left")
    _columns(table, "queue")
    _columns(table, "decided", "median wait", "p90 wait", "pending", "overdue", right=True)
    _columns(table, "waited in all", right=True)
    waiting = result.waiting if result.human_bound else None
    for queue in result.queues:
        table.add_row(
            Text(queue.queue, style="bold" if queue is waiting else ""),
            str(queue.decided),
            _duration(queue.wait.median_s),
            _duration(queue.wait.p90_s),
            str(queue.pending),
            Text(str(queue.overdue), style="red" if queue.overdue else ""),
            show.duration(queue.human_wait_s),
        )
    return _fit(table)


def errors_table(result: WorkflowReport) -> Table:
    table = Table(title="errors", title_justify="left")
    _columns(table, "error type")
    _columns(table, "steps", "runs failed", right=True)
    _columns(table, "nodes", wrap=True)
    for error in result.errors:
        table.add_row(
            error.type,
            _count(error.steps, error.step_rate),
            str(error.runs_failed),
            ", ".join(error.nodes),
        )
    return _fit(table)


def _columns(table: Table, *names: str, right: bool = False, wrap: bool = False) -> None:
    """Columns that never break their values unless `wrap` (then long values fold)."""
    for name in names:
        table.add_column(
            name, justify="right" if right else "left", overflow="fold", no_wrap=not wrap
        )


def _fit(table: Table) -> Table:
    """Make each column that does not wrap at least as wide as its widest value: rich measures
    a table's narrowest width by words, and would cut `2 (22.2%)` to fit it."""
    for column in table.columns:
        if column.no_wrap:
            texts = [column.header, *column.cells]
            column.min_width = max(
                cell_len(t.plain if isinstance(t, Text) else str(t)) for t in texts
            )
    return table


# --- formats ------------------------------------------------------------------------------------


def share(part: int, whole: int, what: str) -> str:
    """`30.0% (3 of 10 runs ...)`; without a percentage when there is nothing to divide."""
    counted = f"{part} of {whole} {what}"
    return f"{part / whole:.1%} ({counted})" if whole else counted


def spread(durations: Durations, what: str) -> str:
    if not durations.count:
        return f"none (0 {what})"
    return (
        f"median {_duration(durations.median_s)}, p90 {_duration(durations.p90_s)} "
        f"({durations.count} {what})"
    )


def _count(count: int, rate: float | None) -> str:
    return f"{count} ({rate:.1%})" if rate is not None and count else str(count)


def _duration(seconds: float | None) -> str:
    return "" if seconds is None else show.duration(seconds)


def _mean(value: float | None, shown: str) -> str:
    return "unknown" if value is None else f"mean {shown}"


def _pending(result: WorkflowReport) -> str:
    reviews = result.reviews
    if reviews.oldest_pending_s is None:
        return str(reviews.pending)
    return (
        f"{reviews.pending}; the oldest ({reviews.oldest_pending_id}) has waited "
        f"{show.duration(reviews.oldest_pending_s)}"
    )


def _bottleneck(result: WorkflowReport) -> str:
    """The node that took the most time, or the review queue when documents waited longer for
    people than for it; the other beside it."""
    top, typical, waiting = result.bottleneck, result.slowest_median, result.waiting
    nodes = ""
    if top is not None and typical is not None:
        nodes = f"{_name(result, top)}: {show.duration(top.duration.total_s)} in all"
        if typical is not top:
            nodes += f"; slowest median step: {_name(result, typical)}"
    human = ""
    if waiting is not None and waiting.human_wait_s > 0:
        overdue = f", {waiting.overdue} overdue" if waiting.overdue else ""
        human = (
            f"review queue `{waiting.queue}`: {show.duration(waiting.human_wait_s)} waiting for "
            f"people in all ({waiting.pending} pending{overdue})"
        )
    if result.human_bound:
        return human + (f"; slowest node: {nodes}" if nodes else "")
    if not nodes:
        return "no steps"
    return nodes + (f"; human wait: {human}" if human else "")


def _name(result: WorkflowReport, node: NodeFigures) -> str:
    return f"{node.pipeline}.{node.node}" if len(result.pipelines) > 1 else node.node


__all__ = [
    "errors_table",
    "heading",
    "load_report",
    "nodes_table",
    "queues_table",
    "report",
    "summary_table",
]
