"""Horizontal bar charts for the report page, drawn as inline SVG by the template (no script,
no style attribute: colours come from style.css by class). Pure layout arithmetic here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from handrail.observability.report import WorkflowReport

ROW = 22
"""Height of one bar's row, in SVG units."""
LABEL_WIDTH = 170
BAR_WIDTH = 320
WIDTH = LABEL_WIDTH + BAR_WIDTH + 260


@dataclass(frozen=True, kw_only=True, slots=True)
class Bar:
    label: str
    value: float
    shown: str
    """The value as text, beside the bar."""
    css: str = ""
    """An extra class (a status, `flagged`...)."""
    y: float = 0.0
    width: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class Chart:
    title: str
    bars: tuple[Bar, ...]
    height: int
    label_width: int = LABEL_WIDTH
    width: int = WIDTH
    empty: str = "nothing to show yet"


def chart(title: str, bars: Sequence[Bar], *, empty: str = "nothing to show yet") -> Chart:
    """Bars scaled to the largest value, one row each."""
    top = max((bar.value for bar in bars), default=0.0)
    laid = tuple(
        Bar(
            label=bar.label,
            value=bar.value,
            shown=bar.shown,
            css=bar.css,
            y=index * ROW,
            width=(bar.value / top * BAR_WIDTH) if top > 0 else 0.0,
        )
        for index, bar in enumerate(bars)
    )
    return Chart(title=title, bars=laid, height=max(ROW, len(laid) * ROW), empty=empty)


def report_charts(report: WorkflowReport, duration: object) -> list[Chart]:
    """Runs by status, review wait per queue, and node time: where people look first."""
    shown = duration if callable(duration) else str
    statuses = chart(
        "Runs by status",
        [
            Bar(label=status, value=count, shown=str(count), css=f"status-{status}")
            for status, count in report.by_status.items()
        ],
        empty="no runs in this window",
    )
    waits = chart(
        "Time documents waited for a person, per queue",
        [
            Bar(
                label=queue.queue,
                value=queue.human_wait_s,
                shown=(
                    f"{shown(queue.human_wait_s)} "
                    f"({queue.pending} pending, {queue.overdue} overdue)"
                ),
                css="flagged" if queue.overdue else "",
            )
            for queue in report.queues
        ],
        empty="no reviews in this window",
    )
    nodes = chart(
        "Processing time per node (all steps)",
        [
            Bar(
                label=node.node,
                value=node.duration.total_s,
                shown=f"{shown(node.duration.total_s)} over {node.steps} steps",
            )
            for node in report.nodes
        ],
        empty="no steps in this window",
    )
    return [statuses, waits, nodes]


__all__ = ["Bar", "Chart", "chart", "report_charts"]
