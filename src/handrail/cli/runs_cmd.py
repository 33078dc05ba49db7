"""`handrail runs list|show|resume|abandon`: the history of durable runs, finishing a run
that was cut off, giving up runs another handrail version left pending."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from handrail.cli import show
from handrail.cli.options import Db, Json, errors
from handrail.core.records import RunStatus
from handrail.review import ReviewService, shapes

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
    with errors(), ReviewService(db, read_only=True) as service:
        runs = service.runs(status=status, pipeline=pipeline, limit=limit)
        where = service.url
    if json_output:
        for record in runs:
            show.print_json(shapes.run_summary_json(record))
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
    with errors(), ReviewService(db, read_only=True) as service:
        record = service.run(run_id)
    if json_output:
        show.print_json(shapes.run_detail_json(record))
    else:
        show.print_table(show.console(), show.run_detail(record))


_HOW = {
    "started": "its decision's continuation had never started: ran it here",
    "took over": "the process running it had stopped: finished it here",
    "waited": "another process was finishing it: waited for it",
    "ended": "it had just ended",
}


@app.command("resume")
def resume(
    run_id: Annotated[str, typer.Argument(metavar="RUN_ID", show_default=False)],
    db: Db = None,
    target: Annotated[
        str | None,
        typer.Option(
            "--target",
            metavar="TARGET",
            help="The pipeline's code (default: where `handrail run` or a worker recorded it, "
            "if that is inside the current folder).",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The model that finishes the run (default: the one it started with).",
            show_default=False,
        ),
    ] = None,
    json_output: Json = False,
) -> None:
    """Finish a run whose review was decided but whose continuation was cut off (the command
    that decided it was killed): takes it over from the stopped process, or starts it if it
    never started, and waits for it; with the model the run started with.

    A run that is not unfinished is shown as it is. Exit code 1 when there is no such run.
    """
    from handrail.cli import output
    from handrail.cli.review_cmd import finish_here

    done = finish_here(run_id, db=db, target=target, model=model)
    if json_output:
        show.print_json(shapes.record_json(done.record))
        return
    if done.how == "nothing":
        typer.echo(f"run {run_id} has nothing left to do: it {output.run_now(done.record)}")
        return
    typer.echo(f"run {run_id} {output.run_now(done.record)} ({_HOW[done.how]})")


@app.command("abandon")
def abandon(
    version: Annotated[
        str,
        typer.Option(
            "--version",
            metavar="VERSION",
            help="The handrail version whose pending runs to give up (`handrail run` names it "
            "when it finds some).",
            show_default=False,
        ),
    ],
    db: Db = None,
    json_output: Json = False,
) -> None:
    """Give up the runs another handrail VERSION left pending (a crash, then an upgrade): their
    DBOS workflows are cancelled and each run is recorded as failed (`Abandoned`), so running
    its document again starts it afresh. A run a live process of that version is running is
    left alone (and listed).

    With --json: JSON Lines, one object per run.
    """
    from dataclasses import asdict

    from handrail.durable import abandon as give_up

    with errors():
        done = give_up(db, version)
    if json_output:
        for item in done:
            show.print_json(asdict(item))
        return
    for item in done:
        what = f"run {item.run_id}" if item.run_id else f"workflow {item.workflow_id}"
        typer.echo(f"{what}: {item.status}" + (f" ({item.detail})" if item.detail else ""))
    abandoned = sum(1 for item in done if item.status == "abandoned")
    typer.echo(f"{abandoned} run{'s' if abandoned != 1 else ''} of handrail {version} abandoned")


__all__ = ["app"]
