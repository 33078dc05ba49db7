"""The pieces `handrail run` prints with: progress on terminals only, briefs, totals, JSON."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pydantic import BaseModel
from rich.console import Console

from handrail import RunRecord, RunStatus, StepRecord, StepStatus
from handrail.cli.output import display_names, record_json, result_brief, totals_line
from handrail.cli.progress import progress_bar, wants_progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Order(BaseModel):
    order_id: str
    placed: datetime


def record(status: RunStatus, **kwargs: object) -> RunRecord:
    return RunRecord(
        run_id="run-1", pipeline="p", document_id="d", document_hash="", status=status, **kwargs
    )


def test_progress_only_for_a_terminal_and_never_with_json() -> None:
    assert wants_progress(Tty(), json_output=False)
    assert not wants_progress(Tty(), json_output=True)
    assert not wants_progress(io.StringIO(), json_output=False)


def test_the_bar_counts_documents_and_failures() -> None:
    stream = io.StringIO()
    console = Console(file=stream, force_terminal=True, width=100)
    with progress_bar(2, enabled=True, console=console) as on_result:
        on_result(record(RunStatus.COMPLETED))
        on_result(record(RunStatus.FAILED))
    assert "2/2" in stream.getvalue()
    assert "1 failed" in stream.getvalue()


def test_a_disabled_bar_prints_nothing() -> None:
    stream = io.StringIO()
    with progress_bar(1, enabled=False, console=Console(file=stream)) as on_result:
        on_result(record(RunStatus.COMPLETED))
    assert stream.getvalue() == ""


def test_totals_count_every_status() -> None:
    statuses = [RunStatus.COMPLETED, RunStatus.REJECTED, RunStatus.FAILED, RunStatus.COMPLETED]
    assert totals_line([record(s) for s in statuses]) == (
        "4 documents: 2 completed, 0 needs review, 1 failed, 1 rejected"
    )
    assert totals_line([record(RunStatus.NEEDS_REVIEW)]) == (
        "1 document: 0 completed, 1 needs review, 0 failed, 0 rejected"
    )


def test_the_brief_shows_routes_and_the_last_output_shortened() -> None:
    steps = (
        StepRecord(run_id="run-1", node="kind", kind="classify", route="refund"),
        StepRecord(run_id="run-1", node="skipped", kind="rule", status=StepStatus.FAILED),
        StepRecord(run_id="run-1", node="note", kind="draft", output="word " * 20),
    )
    assert result_brief(record(RunStatus.COMPLETED, steps=steps)) == (
        "kind=refund, note: word word word word word word word word…"
    )


def test_outputs_become_json_data() -> None:
    placed = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    line = record_json(
        record(RunStatus.COMPLETED, outputs={"order": Order(order_id="A-1", placed=placed)}),
        "doc.txt",
    )
    assert line["document"] == "doc.txt"
    assert line["outputs"] == {"order": {"order_id": "A-1", "placed": "2024-01-02T03:04:05Z"}}


def test_a_batch_from_one_folder_is_shown_by_short_names() -> None:
    assert display_names(["in/a.txt", "in/b.md"]) == ("in/", ["a.txt", "b.md"])
    assert display_names(["in/a.txt", "in/sub/b.md"]) == ("", ["in/a.txt", "in/sub/b.md"])
    assert display_names(["in/a.txt"]) == ("", ["in/a.txt"])
    assert display_names(["-", "a.txt"]) == ("", ["-", "a.txt"])
