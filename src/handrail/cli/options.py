"""What every command shares: the options that mean the same everywhere, and the error path.

Exit codes: 0 when the command did its work (a batch whose documents failed or wait for review
still ran), 1 when it could not (the database cannot be used, a review is not found or already
decided, an edit does not fit its schema), 2 for a mistake in the command itself.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from handrail.exceptions import InputError, ReviewError, StoreError

FAILED = 1
USAGE_ERROR = 2


@contextmanager
def errors() -> Iterator[None]:
    """Errors the user can act on: `error: ...` on stderr, no traceback. A mistake in the
    command exits 2; a database, review or timeout problem exits 1."""
    try:
        yield
    except InputError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(USAGE_ERROR) from None
    except (StoreError, ReviewError, TimeoutError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(FAILED) from None


def default_reviewer() -> str | None:
    """Who decides when `--reviewer` is not given: `$USER`, else the login name."""
    try:
        return os.environ.get("USER") or getpass.getuser()
    except Exception:  # no name in the environment nor the password database
        return None


Target = Annotated[
    str,
    typer.Argument(
        metavar="TARGET",
        help="The pipeline: path/to/file.py:attr or package.module:attr (attr: `pipeline`).",
        show_default=False,
    ),
]
Model = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        envvar="HANDRAIL_MODEL",
        help="The model LLM nodes use: fake, local, local/PATH.gguf or a litellm model string.",
    ),
]
ModelChoice = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        envvar="HANDRAIL_MODEL",
        help="The model LLM nodes use (default: fake): fake, local (the embedded model, "
        "handrail[local]), local/PATH.gguf, or a litellm model string such as "
        "openai/gpt-4o-mini. With --replay: which recorded model to play back (default: the "
        "one DIR holds).",
        show_default=False,
    ),
]
"""`--model` where leaving it out means something: with `--replay`, the model recorded."""
Record = Annotated[
    str | None,
    typer.Option(
        "--record",
        metavar="DIR",
        envvar="HANDRAIL_RECORD_DIR",
        help="Write every model answer to DIR (created if missing), to replay with --replay.",
        show_default=False,
    ),
]
Replay = Annotated[
    str | None,
    typer.Option(
        "--replay",
        metavar="DIR",
        envvar="HANDRAIL_REPLAY_DIR",
        help="Answer from the recordings in DIR, offline and free; a request not recorded fails "
        "its document. With --record: a cache, --model answers what is not recorded.",
        show_default=False,
    ),
]


def _database(value: str | None) -> str | None:
    """A URL as given; anything else is the path of a SQLite file."""
    if value is None or not value.strip() or "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        callback=_database,
        help="Where runs are kept: sqlite:///path.db (or just a file path) or "
        "postgresql://user:password@host/db "
        "(default: $HANDRAIL_DATABASE_URL, else sqlite:///.handrail/handrail.db).",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="JSON on stdout, for machines.")]
ExecutorId = Annotated[
    str | None,
    typer.Option(
        "--executor-id",
        metavar="ID",
        help="This process's durable executor id (default: the first free one).",
        show_default=False,
    ),
]


__all__ = [
    "FAILED",
    "USAGE_ERROR",
    "Db",
    "ExecutorId",
    "Json",
    "Model",
    "ModelChoice",
    "Record",
    "Replay",
    "Target",
    "default_reviewer",
    "errors",
]
