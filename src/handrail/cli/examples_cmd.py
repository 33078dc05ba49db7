"""`handrail examples list|export|remove`: the examples reviews made (nodes with
`learn_from_reviews=True`, docs/learning.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from handrail.cli import show
from handrail.cli.options import Db, Json, errors
from handrail.exceptions import ReviewNotFound
from handrail.review.shapes import jsonable

if TYPE_CHECKING:
    from handrail.core.examples import ReviewedExample
    from handrail.durable import SqlStore

app = typer.Typer(
    name="examples",
    help="The examples reviews made (learn_from_reviews=True): list, export, remove.",
    no_args_is_help=True,
)

NodeOption = Annotated[
    str | None,
    typer.Option("--node", "-n", metavar="NODE", help="Only this node's.", show_default=False),
]
PipelineOption = Annotated[
    str | None,
    typer.Option(
        "--pipeline", "-p", metavar="NAME", help="Only this pipeline's.", show_default=False
    ),
]


@app.command("list")
def list_(
    node: NodeOption = None,
    pipeline: PipelineOption = None,
    removed: Annotated[
        bool, typer.Option("--removed", help="Also the removed and replaced ones.")
    ] = False,
    db: Db = None,
    json_output: Json = False,
) -> None:
    """List the examples reviews made, oldest first: approved and edited ones are shown to
    their node; rejected ones are kept as known wrong answers and never shown.

    With --json: JSON Lines, one object per example.
    """
    with errors(), _store(db, read_only=True) as store:
        found = (
            []
            if store is None
            else store.list_examples(pipeline=pipeline, node=node, removed=removed)
        )
    if json_output:
        for example in found:
            show.print_json(_json(example))
        return
    console = show.console()
    if not found:
        console.print(
            Text(
                "no examples: a node makes them with learn_from_reviews=True, one per decided "
                "review (docs/learning.md)"
            )
        )
        return
    table = Table()
    for column in ("id", "pipeline", "node", "verdict", "output", "reviewer", "decided (UTC)"):
        table.add_column(column, overflow="fold")
    for example in found:
        verdict: str = example.verdict
        if example.removed_at is not None:
            verdict += f" (removed: {example.removed_reason})"
        table.add_row(
            Text(example.example_id),
            Text(example.pipeline),
            Text(example.node),
            Text(verdict, style="dim" if example.removed_at or verdict == "rejected" else ""),
            Text(_output(example.output)),
            Text(example.reviewer or ""),
            Text(show.when(example.decided_at)),
        )
    show.print_table(console, table)


@app.command("export")
def export(
    node: Annotated[
        str,
        typer.Option(
            "--node", "-n", metavar="NODE", help="The node whose examples.", show_default=False
        ),
    ],
    pipeline: PipelineOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            help="Write here (default: standard output).",
            show_default=False,
        ),
    ] = None,
    db: Db = None,
) -> None:
    """Export a node's live approved and edited examples as JSONL, the format `Examples(path)`
    reads: `{"text", "label", "id"}` (Classify) or `{"text", "output", "id"}` (Extract).
    """
    with errors(), _store(db, read_only=True) as store:
        found = (
            []
            if store is None
            else store.list_examples(pipeline=pipeline, node=node, shown_only=True)
        )
    lines = [json.dumps(_line(e), ensure_ascii=False) for e in found]
    text = "".join(line + "\n" for line in lines)
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {len(lines)} example(s) of node {node} to {out}", err=True)


@app.command("remove")
def remove(
    example_id: Annotated[str, typer.Argument(metavar="ID", show_default=False)],
    db: Db = None,
    json_output: Json = False,
) -> None:
    """Remove a wrong example: its node is no longer shown it (from the next build of the
    pipeline); its row stays, marked removed.

    Exit code 1 when there is no live example of that id.
    """
    with errors(), _store(db, read_only=False) as store:
        assert store is not None
        if not store.remove_example(example_id):
            earlier = store.get_example(example_id)
            why = (
                f"it was removed at {show.when(earlier.removed_at)} ({earlier.removed_reason})"
                if earlier is not None and earlier.removed_at is not None
                else "list them with `handrail examples list`"
            )
            raise ReviewNotFound(f"no live example `{example_id}` in {store.url}; {why}")
    if json_output:
        show.print_json({"id": example_id, "removed": True})
        return
    typer.echo(f"removed example {example_id}: its node no longer shows it once rebuilt")


@contextmanager
def _store(db: str | None, *, read_only: bool) -> Iterator[SqlStore | None]:
    """The store; None to read when its SQLite file does not exist yet (reading creates
    nothing) or it holds no run records."""
    from handrail.durable import SqlStore, database_url
    from handrail.durable.engine import parse

    url = database_url(db)
    if read_only:
        parsed, _ = parse(url)
        if parsed.get_backend_name() == "sqlite" and not (
            parsed.database and Path(parsed.database).expanduser().is_file()
        ):
            yield None
            return
    store = SqlStore(url, read_only=read_only)
    try:
        yield None if store.empty else store
    finally:
        store.close()


def _line(example: ReviewedExample) -> dict[str, Any]:
    key = "label" if isinstance(example.output, str) else "output"
    return {"text": example.text, key: example.output, "id": example.example_id}


def _output(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)


def _json(example: ReviewedExample) -> dict[str, Any]:
    return {
        "id": example.example_id,
        "review_id": example.review_id,
        "run_id": example.run_id,
        "pipeline": example.pipeline,
        "pipeline_version": example.pipeline_version,
        "node": example.node,
        "verdict": example.verdict,
        "output": example.output,
        "text": example.text,
        "reviewer": example.reviewer,
        "decided_at": jsonable(example.decided_at),
        "removed_at": jsonable(example.removed_at),
        "removed_reason": example.removed_reason,
    }


__all__ = ["app"]
