"""The progress bar `handrail run` shows on stderr while a batch runs (only on a terminal)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from handrail.core.records import RunRecord, RunStatus

OnResult = Callable[[RunRecord], None]


def wants_progress(stream: TextIO, *, json_output: bool) -> bool:
    """A bar only for people: never with --json, never when stderr is a file or a pipe."""
    return not json_output and stream.isatty()


@contextmanager
def progress_bar(
    total: int, *, enabled: bool, console: Console | None = None
) -> Iterator[OnResult]:
    """Yields the `on_result` callback that advances the bar (a no-op when not enabled)."""
    if not enabled:
        yield _ignore
        return
    failed = 0
    with Progress(
        TextColumn("[bold]running"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task("run", total=total, failed="")

        def advance(record: RunRecord) -> None:
            nonlocal failed
            failed += record.status is RunStatus.FAILED
            progress.update(task, advance=1, failed=f"{failed} failed" if failed else "")

        yield advance


def _ignore(record: RunRecord) -> None:
    pass


__all__ = ["OnResult", "progress_bar", "wants_progress"]
