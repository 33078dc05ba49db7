"""`handrail runs list|show`: the history of durable runs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from handrail.cli import records, show
from handrail.cli.options import Db, Json, errors
from handrail.core.records import RunStatus

DEFAULT_LIMIT = 50

app = typer.Typer(
    name="runs",
    help="The history of durable runs: list them, show one with its steps.",
    no_args_is_help=True,
)


@app.command("list")
def list_(
    status: Annotated[
        RunStatus | None,
        typer.Option("--status", "-s", help="Only runs with this status.", show_default=False),
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option("--pipeline", "-p", help="Only runs of this pipeline.", show_default=False),
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="At most this many, newest first.")
    ] = DEFAULT_LIMIT,
    db: Db = None,
    json_output: Json = False,
) -> None:
    """List runs, newest first: status, timing, steps and tokens.

    With --json: JSON Lines, one object per run.
    """
    with errors():
        runs = records.list_runs(db, status=status, pipeline=pipeline, limit=limit)
        where = records.shown_url(db)
    if json_output:
        for record in runs:
            show.print_json(show.run_summary_json(record))
        return
    console = show.console()
    if not runs:
        console.print(Text(f"no {'matching ' if status or pipeline else ''}runs in {where}"))
        return
    show.print_table(console, show.runs_table(runs))
    more = f"; --limit shows more than {limit}" if len(runs) == limit else ""
    console.print(Text(f"{len(runs)} run{'s' if len(runs) != 1 else ''} in {where}{more}"))


@app.command("show")
def show_(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", show_default=False)],
    db: Db = None,
    json_output: Json = False,
) -> None:
    """Show one run: its steps (attempts, confidence, routes, timings, tokens, cost, errors),
    pending reviews and the decisions applied to it.

    Exit code 1 when there is no such run.
    """
    with errors():
        record = records.get_run(db, run_id)
    if json_output:
        show.print_json(show.run_detail_json(record))
    else:
        show.print_table(show.console(), show.run_detail(record))


__all__ = ["app"]
