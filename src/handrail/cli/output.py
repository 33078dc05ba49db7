"""How `handrail run` shows its results: JSON Lines for machines, a rich table for people."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from handrail.core.records import RunRecord, RunStatus, StepStatus
from handrail.inputs import Skipped
from handrail.review.shapes import jsonable, record_json

_STYLES = {
    RunStatus.COMPLETED: "green",
    RunStatus.NEEDS_REVIEW: "yellow",
    RunStatus.FAILED: "red",
    RunStatus.REJECTED: "magenta",
    RunStatus.RUNNING: "blue",
}
_TOTALS = (
    (RunStatus.COMPLETED, "completed"),
    (RunStatus.NEEDS_REVIEW, "needs review"),
    (RunStatus.FAILED, "failed"),
    (RunStatus.REJECTED, "rejected"),
)


def skipped_json(skipped: Skipped) -> dict[str, Any]:
    """The JSON Lines object for a file a folder holds that was not read: no run, the reason."""
    return {"run_id": None, "document": skipped.path, "status": "skipped", "reason": skipped.reason}


def print_json_lines(
    document_ids: Sequence[str],
    records: Sequence[RunRecord],
    skipped: Sequence[Skipped] = (),
    *,
    reused: Collection[str] = (),
) -> None:
    """One JSON object per document on stdout, in input order (`reused`: true for a result an
    earlier run made), then one per skipped file."""
    for document_id, record in zip(document_ids, records, strict=True):
        line = record_json(record, document_id) | {"reused": record.run_id in reused}
        print(json.dumps(line, ensure_ascii=False))
    for item in skipped:
        print(json.dumps(skipped_json(item), ensure_ascii=False))


def print_summary(
    document_ids: Sequence[str],
    records: Sequence[RunRecord],
    skipped: Sequence[Skipped] = (),
    *,
    reused: Collection[str] = (),
) -> None:
    """A table with a row per document, the files skipped and why, then the totals, and how
    many results earlier runs made (`reused`: their run ids)."""
    console = Console(highlight=False)
    console.print(summary_table(document_ids, records))
    for line in skipped_lines(skipped):
        console.print(Text(line))
    console.print(Text(totals_line(records, skipped)))
    count = len({record.run_id for record in records} & set(reused))
    if count:
        console.print(
            Text(
                f"{count} reused from earlier runs (same document, pipeline version and model); "
                "--rerun runs them again"
            )
        )


def skipped_lines(skipped: Sequence[Skipped]) -> list[str]:
    """`skipped (not documents):` and a line per skipped file with the reason."""
    if not skipped:
        return []
    return ["skipped (not documents):", *(f"  {s.path}: {s.reason}" for s in skipped)]


def display_names(document_ids: Sequence[str]) -> tuple[str, list[str]]:
    """(common folder, names relative to it): the table shows short names under a title."""
    folders = [i.rsplit("/", 1)[0] + "/" if "/" in i else "" for i in document_ids]
    same = len(folders) > 1 and all(f == folders[0] for f in folders)
    common = folders[0] if same else ""
    return common, [i[len(common) :] for i in document_ids]


def summary_table(document_ids: Sequence[str], records: Sequence[RunRecord]) -> Table:
    common, names = display_names(document_ids)
    table = Table(title=f"documents in {common}" if common else None, title_justify="left")
    table.add_column("document", overflow="fold", ratio=2)
    table.add_column("status", no_wrap=True)
    table.add_column("result", ratio=3)
    table.add_column("review reasons / error", ratio=4)
    for name, record in zip(names, records, strict=True):
        table.add_row(
            Text(name),
            Text(record.status.value, style=_STYLES[record.status]),
            Text(result_brief(record)),
            Text(notes(record)),
        )
    return table


def totals_line(records: Sequence[RunRecord], skipped: Sequence[Skipped] = ()) -> str:
    counts = Counter(record.status for record in records)
    n = len(records)
    parts = [f"{counts[status]} {label}" for status, label in _TOTALS]
    line = f"{n} document{'s' if n != 1 else ''}: " + ", ".join(parts)
    return line + (f"; {len(skipped)} skipped (listed above)" if skipped else "")


def run_now(record: RunRecord) -> str:
    """Where a run stands after a decision, in a phrase."""
    if record.status is RunStatus.NEEDS_REVIEW:
        return f"needs review again: {notes(record)}"
    if record.status is RunStatus.FAILED:
        return f"failed: {notes(record)}"
    if record.status is RunStatus.REJECTED:
        return "is rejected"
    brief = result_brief(record)
    return f"is {record.status.value}" + (f": {brief}" if brief else "")


def result_brief(record: RunRecord) -> str:
    """Routes taken and the last completed output, shortened: `category=refund, reply: ...`."""
    done = [s for s in record.steps if s.status is StepStatus.COMPLETED]
    parts = [f"{s.node}={s.route}" for s in done if s.route is not None]
    if done and done[-1].route is None:
        parts.append(f"{done[-1].node}: {_short(done[-1].output)}")
    return ", ".join(parts)


def notes(record: RunRecord) -> str:
    """Why a run waits for review, or why it failed."""
    if record.reviews:
        return "; ".join(
            f"{review.node}: {reason.message}"
            for review in record.reviews
            for reason in review.reasons
        )
    if record.error is not None:
        return f"{record.error.type}: {record.error.message}"
    return ""


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


__all__ = [
    "notes",
    "print_json_lines",
    "print_summary",
    "result_brief",
    "skipped_json",
    "skipped_lines",
    "summary_table",
    "totals_line",
]
