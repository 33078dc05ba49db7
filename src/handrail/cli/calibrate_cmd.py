"""`handrail calibrate TARGET`: gate thresholds from decided reviews, into the calibration file.

The same file `handrail eval SUITE --calibrate` writes, read by `Gate.calibrated(...)` when the
pipeline is built (docs/learning.md, "Thresholds from data"). Also the table both print.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from handrail.cli.options import Db, Json, Target, errors
from handrail.targets import load_pipeline

if TYPE_CHECKING:
    from handrail.durable import SqlStore
    from handrail.evals.calibrate import Calibration

TargetAccuracy = Annotated[
    float | None,
    typer.Option(
        "--target-accuracy",
        min=0.0,
        max=1.0,
        help="The accuracy the accepted answers must reach (default 0.95).",
        show_default=False,
    ),
]
MinCases = Annotated[
    int | None,
    typer.Option(
        "--min-cases",
        min=1,
        help="The fewest answers a threshold may rest on (default 30).",
        show_default=False,
    ),
]
Out = Annotated[
    str | None,
    typer.Option(
        "--out",
        metavar="FILE",
        help="The calibration file (default: $HANDRAIL_CALIBRATION, else "
        "handrail.calibration.json in the current folder).",
        show_default=False,
    ),
]


def calibrate(
    target: Target,
    db: Db = None,
    target_accuracy: TargetAccuracy = None,
    min_cases: MinCases = None,
    out: Out = None,
    json_output: Json = False,
) -> None:
    """Set gate thresholds from decided reviews: an approval counts as the model right, an edit
    or a reject as wrong. Writes, per gated node and field, the lowest threshold whose accepted
    answers reach the target accuracy into the calibration file (nodes gated with
    Gate.calibrated(...) read it when the pipeline is built). Reviews only see what the gate
    sent to a person: an eval suite (handrail eval SUITE --calibrate) is the better source."""
    from handrail.core.calibration import calibration_path
    from handrail.evals.calibrate import (
        DEFAULT_TARGET,
        MIN_CASES,
        answers_from_reviews,
        calibrate,
        save_calibration,
    )

    needed = min_cases or MIN_CASES
    with errors(), _store(db) as store:
        pipeline = load_pipeline(target)
        answers, decided = answers_from_reviews(pipeline, store) if store else ({}, 0)
        if not any(a.pairs for a in answers.values()):
            raise typer.BadParameter(
                f"no decided reviews of pipeline `{pipeline.name}`'s gated nodes "
                f"({decided} found); a threshold needs at least {needed} per node: decide "
                "reviews (handrail review), or calibrate from an eval suite "
                "(handrail eval SUITE --calibrate)",
                param_hint="TARGET",
            )
        found = calibrate(
            pipeline,
            answers,
            target_accuracy=target_accuracy or DEFAULT_TARGET,
            source="reviews",
            min_cases=needed,
        )
        path = save_calibration(calibration_path(out), found.entry)
    if json_output:
        typer.echo(json.dumps({**found.to_dict(), "path": str(path), "decided": decided}))
        return
    console = Console(width=max(100, Console().width))
    console.print(f"{decided} decided reviews of pipeline `{pipeline.name}`", highlight=False)
    print_calibration(found, path, console)


@contextmanager
def _store(db: str | None) -> Iterator[SqlStore | None]:
    """The store, read only; None when its SQLite file does not exist (reading creates
    nothing)."""
    from handrail.durable import SqlStore, database_url
    from handrail.durable.engine import parse

    url = database_url(db)
    parsed, _ = parse(url)
    if parsed.get_backend_name() == "sqlite" and not (
        parsed.database and Path(parsed.database).expanduser().is_file()
    ):
        yield None
        return
    store = SqlStore(url, read_only=True)
    try:
        yield None if store.empty else store
    finally:
        store.close()


def print_calibration(found: Calibration, path: Path, console: Console) -> None:
    """The table: node, field, old and new threshold, straight-through and accepted accuracy
    before and after; then why a row has no threshold, and where the file is."""
    entry = found.entry
    table = Table(
        title=f"thresholds for {entry.target_accuracy:.1%} accuracy ({entry.source})",
        title_justify="left",
    )
    for column in ("node", "field", "cases", "threshold", "straight-through", "accuracy"):
        table.add_column(column)
    for row in found.rows:
        new = "—" if row.new is None else f"{row.new:.2f}"
        if row.new is not None and row.floor is not None and row.new == row.floor:
            new += " (floor)"
        table.add_row(
            row.node,
            row.field or "—",
            str(row.cases),
            f"{_num(row.old)} → {new}",
            f"{_pct(row.straight_before)} → {_pct(row.straight_after)}",
            f"{_pct(row.accuracy_before)} → {_pct(row.accuracy_after)}",
        )
    console.print(table)
    for row in found.rows:
        if row.reason:
            console.print(f"  no threshold: {row.reason}", markup=False, highlight=False)
    console.print(
        f"calibration written to {path}; nodes gated with Gate.calibrated(...) use it when "
        "the pipeline is built",
        markup=False,
        highlight=False,
    )


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


__all__ = ["calibrate", "print_calibration"]
