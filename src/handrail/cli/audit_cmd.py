"""`handrail audit verify|export`: the append-only, hash-chained audit trail of decisions,
claims, escalations, sign-ins and reviewer changes."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from handrail.cli import show
from handrail.cli.options import Db, Json, errors
from handrail.exceptions import InputError
from handrail.review import ReviewService
from handrail.review.audit import all_entries, write_audit

app = typer.Typer(
    name="audit",
    help="The audit trail: check its hash chain, export it (CSV, JSON Lines).",
    no_args_is_help=True,
)


class Format(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"


@app.command("verify")
def verify(db: Db = None, json_output: Json = False) -> None:
    """Re-check the audit trail's hash chain: every row's hash, and each row's link to the one
    before it.

    With --json: one object (`ok`, `rows`, `first_bad`, `problem`).
    Exit code 1 when the chain is broken (the first bad row and what differs are named).
    """
    with errors(), ReviewService(db, read_only=True) as service:
        check = service.verify_audit()
        where = service.url
    if json_output:
        show.print_json(
            {
                "ok": check.ok,
                "rows": check.rows,
                "first_bad": check.first_bad,
                "problem": check.problem,
            }
        )
    elif check.ok:
        typer.echo(f"audit trail intact: {check.rows} rows in {where}, each chained to the last")
    else:
        typer.echo(
            f"error: the audit trail in {where} is broken: {check.problem} (rows before seq "
            f"{check.first_bad} check out); restore the database from a backup and find out "
            "who could write to it",
            err=True,
        )
    if not check.ok:
        raise typer.Exit(1)


@app.command("export")
def export(
    format: Annotated[
        Format, typer.Option("--format", "-f", help="CSV for a spreadsheet, or JSON Lines.")
    ] = Format.CSV,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to FILE (default: stdout).",
            show_default=False,
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only rows at or after WHEN: an ISO date or date and time (UTC unless it says "
            "otherwise), or a time back from now: 30m, 24h, 7d.",
            show_default=False,
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option("--actor", metavar="NAME", help="Only rows by NAME.", show_default=False),
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(
            "--action",
            metavar="ACTION",
            help="Only rows of ACTION (decide, escalate, claim, release, sign_in, ...).",
            show_default=False,
        ),
    ] = None,
    db: Db = None,
) -> None:
    """Export the audit trail, oldest first: CSV (a header row; `detail` as JSON; a cell a
    spreadsheet would take for a formula starts with ') or JSON Lines (every field as stored).

    Exit code 2 for a malformed --since or an unwritable --output.
    """
    from handrail._utils import now
    from handrail.observability.report import parse_since

    with errors(), ReviewService(db, read_only=True) as service:
        start = parse_since(since, now=now()) if since is not None else None
        entries = all_entries(service.audit_entries, actor=actor, action=action, since=start)
        if output is None:
            count = write_audit(entries, sys.stdout, format.value)
            return
        try:
            with Path(output).open("w", encoding="utf-8", newline="") as out:
                count = write_audit(entries, out, format.value)
        except OSError as e:
            raise InputError(f"cannot write `{output}` ({e.strerror or e}); check the path") from e
    typer.echo(f"wrote {count} audit rows to {output}", err=True)


__all__ = ["app"]
