"""`handrail reviewers add|list|remove`: the people who may sign in to `handrail serve` and
decide reviews, and the queues each one sees."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from handrail.cli import show
from handrail.cli.options import Db, Json, errors
from handrail.exceptions import ReviewNotFound
from handrail.review import ReviewService
from handrail.review.shapes import jsonable

app = typer.Typer(
    name="reviewers",
    help="The people who decide reviews in `handrail serve`: add, list, remove.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(metavar="NAME", show_default=False)]


@app.command("add")
def add(
    name: Name,
    queues: Annotated[
        str,
        typer.Option(
            "--queues",
            "-q",
            metavar="QUEUE,...",
            help="The queues they see and decide, comma-separated ('*': every queue).",
            show_default=False,
        ),
    ],
    lead: Annotated[
        bool, typer.Option("--lead", help="Also sees and decides escalated reviews.")
    ] = False,
    db: Db = None,
    json_output: Json = False,
) -> None:
    """Add a reviewer and print their sign-in token, shown this once (only its hash is kept).

    With --json: one object (`name`, `queues`, `lead`, `created_at`, `token`).
    Exit code 2 for a bad name or queue, or a name already taken.
    """
    with errors(), ReviewService(db) as service:
        reviewer, token = service.add_reviewer(name, queues=queues.split(","), lead=lead)
        where = service.url
    if json_output:
        show.print_json(
            {
                "name": reviewer.name,
                "queues": list(reviewer.queues),
                "lead": reviewer.lead,
                "created_at": jsonable(reviewer.created_at),
                "token": token,
            }
        )
        return
    role = "; lead" if reviewer.lead else ""
    typer.echo(
        f"added reviewer {reviewer.name} (queues: {', '.join(reviewer.queues)}{role}) to {where}"
    )
    typer.echo(f"token: {token}")
    typer.echo(
        f"this token is shown only once: give it to {reviewer.name}, who signs in with it; "
        "for a new one, remove the reviewer and add them again"
    )


@app.command("list")
def list_(db: Db = None, json_output: Json = False) -> None:
    """List reviewers: their queues, whether they lead, when they were added.

    With --json: JSON Lines, one object per reviewer.
    """
    with errors(), ReviewService(db, read_only=True) as service:
        reviewers = service.list_reviewers()
        where = service.url
    if json_output:
        for reviewer in reviewers:
            show.print_json(
                {
                    "name": reviewer.name,
                    "queues": list(reviewer.queues),
                    "lead": reviewer.lead,
                    "created_at": jsonable(reviewer.created_at),
                    "disabled": reviewer.disabled,
                }
            )
        return
    console = show.console()
    if not reviewers:
        console.print(
            Text(f"no reviewers in {where}; add one with `handrail reviewers add NAME --queues Q`")
        )
        return
    table = Table()
    for column in ("name", "queues", "lead", "added (UTC)"):
        table.add_column(column, overflow="fold")
    for reviewer in reviewers:
        table.add_row(
            Text(reviewer.name + (" (disabled)" if reviewer.disabled else "")),
            Text(", ".join(reviewer.queues)),
            Text("yes" if reviewer.lead else ""),
            Text(show.when(reviewer.created_at)),
        )
    show.print_table(console, table)


@app.command("remove")
def remove(name: Name, db: Db = None, json_output: Json = False) -> None:
    """Remove a reviewer: their token stops working and their sessions end.

    Exit code 1 when there is no reviewer of that name.
    """
    with errors(), ReviewService(db) as service:
        removed = service.remove_reviewer(name)
        if not removed:
            raise ReviewNotFound(
                f"no reviewer `{name}` in {service.url}; list them with `handrail reviewers list`"
            )
    if json_output:
        show.print_json({"name": name, "removed": True})
        return
    typer.echo(f"removed reviewer {name}: their token no longer signs in, their sessions ended")


__all__ = ["app"]
