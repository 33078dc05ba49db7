"""`handrail ...`: argument parsing and printing only; each command is one library call.

The model comes from `--model`, else the `HANDRAIL_MODEL` environment variable, else `fake`
(the offline heuristic `FakeModel`). Exit codes: 0 when the command ran (a batch whose documents
failed or wait for review still ran: see its summary), 2 for a mistake in the command.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated

import typer

from handrail._version import __version__
from handrail.cli import commands, output
from handrail.cli.progress import progress_bar, wants_progress
from handrail.exceptions import InputError
from handrail.inputs import DEFAULT_MAX_BYTES

USAGE_ERROR = 2

app = typer.Typer(
    name="handrail",
    help="AI-assisted intake pipelines: run them on documents, draw them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


class GraphFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"


@contextmanager
def _usage_errors() -> Iterator[None]:
    """A mistake in the command: one line on stderr and exit code 2, no traceback."""
    try:
        yield
    except InputError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(USAGE_ERROR) from None


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"handrail {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """AI-assisted intake pipelines: run them on documents, draw them."""


Target = Annotated[
    str,
    typer.Argument(
        metavar="TARGET",
        help="The pipeline: path/to/file.py:attr or package.module:attr (attr: `pipeline`).",
        show_default=False,
    ),
]


@app.command()
def run(
    target: Target,
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT",
            help="Files (.txt .md .eml .json), folders (read recursively) or - for stdin.",
            show_default=False,
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model", "-m", envvar="HANDRAIL_MODEL", help="The model LLM nodes use: fake."
        ),
    ] = commands.DEFAULT_MODEL,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Documents run at the same time.")
    ] = 8,
    json_output: Annotated[
        bool, typer.Option("--json", help="JSON Lines on stdout, one object per document.")
    ] = False,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", min=1, help="Documents larger than this fail.")
    ] = DEFAULT_MAX_BYTES,
) -> None:
    """Run a pipeline on documents and show what happened to each.

    The model is --model, else $HANDRAIL_MODEL, else `fake`.

    Exit code 0 when the batch ran, even if documents failed or wait for review (see the summary).

    Exit code 2 for a mistake in the command.
    """
    with _usage_errors():
        batch = commands.prepare_run(target, inputs, model=model, max_bytes=max_bytes)
    show = wants_progress(sys.stderr, json_output=json_output)
    with progress_bar(len(batch.items), enabled=show) as on_result:
        records = batch.run(concurrency=concurrency, on_result=on_result)
    if json_output:
        output.print_json_lines(batch.document_ids, records)
    else:
        output.print_summary(batch.document_ids, records)


@app.command()
def graph(
    target: Target,
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="Mermaid or Graphviz DOT.")
    ] = GraphFormat.MERMAID,
) -> None:
    """Print the pipeline's graph."""
    with _usage_errors():
        text = commands.draw(target, format.value)
    typer.echo(text, nl=False)


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` (default: `sys.argv[1:]`); returns the exit code."""
    try:
        app(args=argv, prog_name="handrail")
    except SystemExit as e:
        code = e.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    return 0


__all__ = ["app", "main"]
