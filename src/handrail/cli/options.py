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
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import click
import typer

from handrail._utils import mask_secrets
from handrail.cli.logs import report_held_logs
from handrail.exceptions import InputError, ReviewError, StoreError

FAILED = 1
USAGE_ERROR = 2
INTERRUPTED = 130
"""Stopped by Ctrl-C (128 + SIGINT, what shells report)."""


@dataclass(kw_only=True, slots=True)
class Progress:
    """What a command got done, for the one line Ctrl-C prints: a command that runs
    documents sets `total` and calls `count` for each one finished."""

    total: int | None = None
    done: int = 0

    def count(self, *_: object) -> None:
        self.done += 1

    def interrupted(self) -> str:
        if self.total is None:
            return "handrail: stopped by Ctrl-C; run the same command again to finish"
        left = self.total - self.done
        return (
            f"handrail: stopped by Ctrl-C after {self.done} of {self.total} documents; run the "
            f"same command again to finish the other {left} (finished ones are not run again)"
        )


@contextmanager
def errors() -> Iterator[Progress]:
    """Errors the user can act on: `error: ...` on stderr, no traceback, passwords masked. A
    mistake in the command exits 2; a database, review or timeout problem exits 1; Ctrl-C
    prints one line (what finished, how to go on: see `Progress`) and exits 130."""
    progress = Progress()
    try:
        yield progress
    except InputError as e:
        typer.echo(f"error: {_masked(e)}", err=True)
        raise typer.Exit(USAGE_ERROR) from None
    except (StoreError, ReviewError, TimeoutError) as e:
        report_held_logs()  # the error line comes last
        typer.echo(f"error: {_masked(e)}", err=True)
        raise typer.Exit(FAILED) from None
    except KeyboardInterrupt:
        report_held_logs()
        typer.echo(progress.interrupted(), err=True)
        raise typer.Exit(INTERRUPTED) from None


def _masked(error: BaseException) -> str:
    """The error's message with the password of the database this command was given (`--db`,
    else `HANDRAIL_DATABASE_URL`) and the PDF password (`HANDRAIL_PDF_PASSWORD`) masked
    wherever they appear (the URLs in handrail's messages
    are masked where they are written)."""
    pdf_password = os.environ.get("HANDRAIL_PDF_PASSWORD")
    return mask_secrets(str(error), *database_passwords(), pdf_password, urls=False)


def database_passwords() -> list[str]:
    """The passwords of the databases this command may use, to mask wherever they appear."""
    from sqlalchemy.engine import make_url  # only on the way out with an error

    given: list[str] = [os.environ.get("HANDRAIL_DATABASE_URL", "")]
    context = click.get_current_context(silent=True)
    if context is not None and isinstance(context.params.get("db"), str):
        given.append(context.params["db"])
    found = []
    for url in given:
        try:
            parsed = make_url(url.strip())
        except Exception:  # not a URL: no password to find
            continue
        secret = parsed.password or parsed.query.get("password")
        if isinstance(secret, str) and secret:
            found.append(secret)
    return found


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


Watch = Annotated[
    list[str] | None,
    typer.Option(
        "--watch",
        metavar="DIR",
        help="Take the files dropped in this folder (moved to DIR/processed/ or "
        "DIR/failed/ once taken; docs/triggers.md); repeatable.",
        show_default=False,
    ),
]
"""`handrail worker` and `handrail serve`: a folder trigger (`handrail.triggers.folder`)."""


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
    "INTERRUPTED",
    "USAGE_ERROR",
    "Progress",
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
