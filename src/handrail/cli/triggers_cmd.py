"""`handrail triggers list`: each trigger, configured or recorded, with its last pick-up and its
last error (docs/triggers.md#configuration)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from handrail.cli import show
from handrail.cli.options import Db, Json, errors
from handrail.review.shapes import jsonable

app = typer.Typer(
    name="triggers",
    help="What starts runs: HTTP sources, folders, mailboxes and schedules.",
    no_args_is_help=True,
)


@dataclass(frozen=True, slots=True)
class _Row:
    name: str
    kind: str
    pipeline: str
    configured: bool
    last_pickup_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


@app.command("list")
def list_(
    target: Annotated[
        str | None,
        typer.Argument(
            metavar="[TARGET]",
            help="The pipeline (path/to/file.py:attr), to include the `triggers` declared "
            "beside it.",
            show_default=False,
        ),
    ] = None,
    db: Db = None,
    json_output: Json = False,
) -> None:
    """List the triggers: those configured (./pyproject.toml's [tool.handrail.triggers], and
    `triggers` beside TARGET) and those the database has seen, each with its last pick-up and
    last error.

    With --json: JSON Lines, one object per trigger.
    """
    with errors():
        configured = _configured(target)
        rows = _rows(db, configured)
    if json_output:
        for row in rows:
            show.print_json(
                {
                    "name": row.name,
                    "kind": row.kind,
                    "pipeline": row.pipeline or None,
                    "configured": row.configured,
                    "last_pickup_at": jsonable(row.last_pickup_at),
                    "last_error": row.last_error,
                    "last_error_at": jsonable(row.last_error_at),
                }
            )
        return
    console = show.console()
    if not rows:
        console.print(
            Text(
                "no triggers: none configured in ./pyproject.toml [tool.handrail.triggers] and "
                "none recorded in the database; see docs/triggers.md"
            )
        )
        return
    table = Table()
    for column in ("trigger", "kind", "pipeline", "last pick-up (UTC)", "last error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        error = ""
        if row.last_error is not None:
            error = f"{show.when(row.last_error_at)}: {row.last_error}"
        name = row.name if row.configured else f"{row.name} (not configured here)"
        table.add_row(
            Text(name),
            Text(row.kind),
            Text(row.pipeline),
            Text(show.when(row.last_pickup_at) if row.last_pickup_at else "never"),
            Text(error, style="red" if error else ""),
        )
    show.print_table(console, table)


def _configured(target: str | None) -> list[tuple[str, str]]:
    from handrail.cli.commands import configured_triggers

    return configured_triggers(target).named()


def _rows(db: str | None, configured: list[tuple[str, str]]) -> list[_Row]:
    from handrail.durable import SqlStore, database_url
    from handrail.durable.engine import parse
    from handrail.triggers.state import trigger_states

    url = database_url(db)
    parsed, _ = parse(url)
    states = []
    exists = parsed.get_backend_name() != "sqlite" or (
        parsed.database is not None and Path(parsed.database).expanduser().is_file()
    )
    if exists:
        store = SqlStore(url, read_only=True)
        try:
            states = [] if store.empty else trigger_states(store)
        finally:
            store.close()
    seen = {s.name: s for s in states}
    rows = [
        _Row(
            name=name,
            kind=kind,
            pipeline=seen[name].pipeline if name in seen else "",
            configured=True,
            last_pickup_at=seen[name].last_pickup_at if name in seen else None,
            last_error=seen[name].last_error if name in seen else None,
            last_error_at=seen[name].last_error_at if name in seen else None,
        )
        for name, kind in configured
    ]
    names = {name for name, _ in configured}
    rows += [
        _Row(
            name=s.name,
            kind=s.kind,
            pipeline=s.pipeline,
            configured=False,
            last_pickup_at=s.last_pickup_at,
            last_error=s.last_error,
            last_error_at=s.last_error_at,
        )
        for s in states
        if s.name not in names
    ]
    return rows


__all__ = ["app"]
