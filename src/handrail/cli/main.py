"""`handrail ...`: argument parsing and printing only; each command is one library call.

The model comes from `--model`, else the `HANDRAIL_MODEL` environment variable, else `fake` (the
offline heuristic `FakeModel`); `--record DIR` writes its answers to DIR and `--replay DIR` answers
from them instead (`HANDRAIL_RECORD_DIR`, `HANDRAIL_REPLAY_DIR`; both: a cache). Runs are durable
unless `--in-memory`: kept in `--db`, else `HANDRAIL_DATABASE_URL`, else the SQLite file
`.handrail/handrail.db`. Exit codes: 0 when the command ran (a batch whose documents failed or wait
for review still ran: see its summary), 1 when it could not (the database unusable, a review
unknown or already decided, an edit that does not fit), 2 for a mistake in the command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from handrail._version import __version__
from handrail.cli import (
    audit_cmd,
    calibrate_cmd,
    commands,
    eval_cmd,
    examples_cmd,
    output,
    report_cmd,
    review_cmd,
    reviewers_cmd,
    runs_cmd,
    serve_cmd,
    show,
    triggers_cmd,
)
from handrail.cli.help import HelpGroup
from handrail.cli.logs import report_held_logs, route_library_logs
from handrail.cli.options import (
    Db,
    ExecutorId,
    ModelChoice,
    Progress,
    Record,
    Replay,
    Target,
    Watch,
    errors,
)
from handrail.cli.progress import OnResult, progress_bar, wants_progress
from handrail.cli.tracing import Trace, traced
from handrail.core.records import RunRecord
from handrail.documents import LoadOptions
from handrail.exceptions import InputError
from handrail.inputs import Skipped

if TYPE_CHECKING:
    from handrail.durable import Escalated

app = typer.Typer(
    name="handrail",
    help="AI-assisted intake pipelines: run them on documents, review what they are unsure of.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    cls=HelpGroup,  # --help without `<bool>`/`<str>` beside every option
)
app.add_typer(runs_cmd.app)
app.add_typer(review_cmd.app)
app.add_typer(reviewers_cmd.app)
app.add_typer(audit_cmd.app)
app.add_typer(triggers_cmd.app)
app.add_typer(examples_cmd.app)


class GraphFormat(StrEnum):
    MERMAID = "mermaid"
    DOT = "dot"


class OcrMode(StrEnum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


PDF_PASSWORD = "HANDRAIL_PDF_PASSWORD"
"""The environment variable that holds the password of encrypted PDFs (never an option: a
command line is visible to every user of the machine)."""


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
    """AI-assisted intake pipelines: run them on documents, review what they are unsure of."""
    route_library_logs()


@app.command()
def run(
    target: Target,
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT",
            help="Files (text, Markdown, JSON, CSV, e-mail, HTML, PDF, PNG, JPEG, TIFF, Word "
            ".docx, Excel .xlsx), folders (read recursively) or - for stdin.",
            show_default=False,
        ),
    ],
    model: ModelChoice = None,
    record: Record = None,
    replay: Replay = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Documents run at the same time.")
    ] = 8,
    json_output: Annotated[
        bool, typer.Option("--json", help="JSON Lines on stdout, one object per document.")
    ] = False,
    max_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-bytes",
            min=1,
            help="Files larger than this fail (default: 5 MB for text, 50 MB for PDFs, images, "
            "Office files and e-mails).",
            show_default=False,
        ),
    ] = None,
    ocr: Annotated[
        OcrMode,
        typer.Option(
            "--ocr",
            help="Read scans (images, PDF pages without text) with OCR: auto (only where there "
            "is no text layer), always, or never (the page stays empty, with a warning).",
        ),
    ] = OcrMode.AUTO,
    split_attachments: Annotated[
        bool,
        typer.Option(
            "--split-attachments",
            help="Run an e-mail's body and each attachment as documents of their own "
            "(mail.eml, mail.eml#invoice.pdf) instead of one document with parts.",
        ),
    ] = False,
    follow_symlinks: Annotated[
        bool,
        typer.Option(
            "--follow-symlinks",
            help="Read symlinks that point outside their folder (skipped by default).",
        ),
    ] = False,
    db: Db = None,
    in_memory: Annotated[
        bool,
        typer.Option("--in-memory", help="Run without a database: nothing is kept, no reviews."),
    ] = False,
    executor_id: ExecutorId = None,
    submit: Annotated[
        bool,
        typer.Option("--submit", help="Queue the documents for `handrail worker`s instead."),
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait/--no-wait", help="With --submit: wait for the results, or print the run ids."
        ),
    ] = True,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="SECONDS",
            min=0,
            help="With --submit: give up waiting after this long (exit code 1).",
            show_default=False,
        ),
    ] = None,
    rerun: Annotated[
        bool,
        typer.Option(
            "--rerun",
            help="Run every document again, even those run before by the same pipeline "
            "version and model (whose results are otherwise reused).",
        ),
    ] = False,
    trace: Trace = None,
) -> None:
    """Run a pipeline on documents and show what happened to each.

    PDFs, scans, Word and Excel files and e-mails with attachments are read as documents with
    their text (and pages); encrypted PDFs open with the password in $HANDRAIL_PDF_PASSWORD.

    Runs are durable: kept in --db (else $HANDRAIL_DATABASE_URL, else .handrail/handrail.db), so
    `handrail runs` and `handrail review` find them. A document already run by the same
    pipeline version (its prompts, gates, checks, schemas...) and model is not run twice: its
    result is reused, and the summary counts it (--rerun runs it again).

    Exit code 0 when the batch ran, even if documents failed or wait for review (see the summary).

    Exit code 1 when the database cannot be used, 2 for a mistake in the command, 130 when
    stopped by Ctrl-C (run the same command again to finish).
    """
    with errors() as progress:
        _check_run_options(
            db=db,
            in_memory=in_memory,
            executor_id=executor_id,
            submit=submit,
            wait=wait,
            timeout=timeout,
            recordings=record is not None or replay is not None,
        )
        batch = commands.prepare_run(
            target,
            inputs,
            model=model,
            record=record,
            replay=replay,
            max_bytes=max_bytes,
            follow_symlinks=follow_symlinks,
            options=LoadOptions(
                ocr=ocr.value,
                split_attachments=split_attachments,
                password=os.environ.get(PDF_PASSWORD) or None,
            ),
        )
        if submit and not wait:
            _print_queued(batch.submit(db=db, rerun=rerun), json_output, batch.skipped)
            return
        if submit:
            records = batch.submit_and_wait(db=db, timeout=timeout, rerun=rerun)
        else:
            progress.total = len(batch.items)  # what Ctrl-C reports (workers run submitted ones)
            show_bar = wants_progress(sys.stderr, json_output=json_output)
            with (
                traced(trace) as hooks,
                progress_bar(len(batch.items), enabled=show_bar) as on_result,
            ):
                records = batch.run(
                    concurrency=concurrency,
                    on_result=_counting(progress, on_result),
                    in_memory=in_memory,
                    db=db,
                    executor_id=executor_id,
                    hooks=hooks,
                    rerun=rerun,
                )
    if json_output:
        output.print_json_lines(batch.document_ids, records, batch.skipped, reused=batch.reused)
    else:
        output.print_summary(batch.document_ids, records, batch.skipped, reused=batch.reused)


def _counting(progress: Progress, on_result: OnResult) -> OnResult:
    """`on_result`, also counting the documents finished (for the line Ctrl-C prints)."""

    def counted(record: RunRecord) -> None:
        progress.count()
        on_result(record)

    return counted


def _check_run_options(
    *,
    db: str | None,
    in_memory: bool,
    executor_id: str | None,
    submit: bool,
    wait: bool,
    timeout: float | None,
    recordings: bool = False,
) -> None:
    if submit and recordings:
        raise InputError(
            "--submit runs nothing here, so nothing to record or replay; give --record and "
            "--replay to `handrail worker`"
        )
    if in_memory and (db is not None or submit or executor_id is not None):
        raise InputError(
            "--in-memory runs without a database; leave out --db, --submit and --executor-id"
        )
    if submit and executor_id is not None:
        raise InputError(
            "--submit runs nothing here, so it has no executor id; give --executor-id to "
            "`handrail worker`"
        )
    if not submit and (not wait or timeout is not None):
        raise InputError("--no-wait and --timeout go with --submit")


def _print_queued(
    queued: list[commands.Queued], json_output: bool, skipped: Sequence[Skipped] = ()
) -> None:
    if json_output:
        for item in queued:
            show.print_json(
                {"run_id": item.run_id, "document": item.document, "status": item.status}
            )
        for entry in skipped:
            show.print_json(output.skipped_json(entry))
        return
    console = show.console()
    for item in queued:
        console.print(Text(f"{item.run_id}  {item.status:<12}  {item.document}"))
    for line in output.skipped_lines(skipped):
        console.print(Text(line))
    waiting = sum(item.status == "queued" for item in queued)
    console.print(
        Text(f"{waiting} queued for `handrail worker`; follow them with `handrail runs list`")
    )


@app.command()
def graph(
    target: Target,
    format: Annotated[
        GraphFormat, typer.Option("--format", "-f", help="Mermaid or Graphviz DOT.")
    ] = GraphFormat.MERMAID,
) -> None:
    """Print the pipeline's graph."""
    with errors():
        text = commands.draw(target, format.value)
    typer.echo(text, nl=False)


@app.command()
def worker(
    target: Target,
    db: Db = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Runs this worker runs at a time.")
    ] = 8,
    executor_id: ExecutorId = None,
    model: ModelChoice = None,
    record: Record = None,
    replay: Replay = None,
    trace: Trace = None,
    watch: Watch = None,
) -> None:
    """Serve a pipeline's queue until SIGTERM or Ctrl-C.

    Runs the documents `handrail run --submit` queues, continues decided reviews, applies due
    escalations and recovers the runs of stopped workers. Runs the triggers configured in
    ./pyproject.toml [tool.handrail.triggers] or beside the pipeline (folders, mailboxes,
    schedules; docs/triggers.md) and each --watch folder. Each run is answered by the model it
    was started or submitted with (as its record says); --model, --record or --replay make
    this worker answer every run with that model instead, and it says so. Prints one line once
    it serves, one per deadline escalation it applies, and one when it stops; exit code 0
    when stopped by a signal, 1 when the database cannot be used.
    """
    served: list[str] = []
    escalations: list[Escalated] = []

    given = " ".join(
        f"{flag} {value}"
        for flag, value in (("--model", model), ("--record", record), ("--replay", replay))
        if value is not None
    )

    def ready(executor: str, pipeline: str, url: str) -> None:
        served.append(executor)
        typer.echo(f"worker {executor} serving {pipeline} on {url} (concurrency {concurrency})")
        sys.stdout.flush()
        if given:  # an override of each run's own model: said once, when serving
            typer.echo(
                f"note: this worker answers every run with {given}, whatever model the run "
                "was started with",
                err=True,
            )

    def escalated(done: Escalated) -> None:
        escalations.append(done)
        then = f"; run {done.run_id} is now {done.run_status.value}" if done.run_status else ""
        typer.echo(f"escalated review {done.review_id}: {done.action}: {done.detail}{then}")
        sys.stdout.flush()

    def started(lines: list[str]) -> None:
        for line in lines:
            typer.echo(line)
        sys.stdout.flush()

    with errors(), traced(trace) as hooks:
        from handrail.notify import load_notifications
        from handrail.triggers.config import Folder, Triggers

        extra = Triggers(folders=[Folder(path=d) for d in watch or []], where="--watch")
        triggers = commands.configured_triggers(target, extra=extra)
        if triggers.http:
            typer.echo(
                f"note: HTTP sources ({', '.join(triggers.http)}) are taken by `handrail serve`, "
                "not by a worker",
                err=True,
            )
        notify = load_notifications()  # [tool.handrail.notify] of ./pyproject.toml, if any
        if notify is not None:
            names = ", ".join(c.name for c in notify.channels)
            typer.echo(f"notifications: channels {names} (sent by this worker)", err=True)
        commands.serve(
            target,
            model=model,
            record=record,
            replay=replay,
            db=db,
            concurrency=concurrency,
            executor_id=executor_id,
            on_ready=ready,
            hooks=hooks,
            on_escalated=escalated,
            notify=notify,
            triggers=triggers,
            on_triggers=started,
        )
        if served:
            typer.echo(
                f"worker {served[0]} stopped (a signal asked it to); it applied "
                f"{len(escalations)} escalation{'s' * (len(escalations) != 1)}"
            )


app.command("eval")(eval_cmd.eval_)
app.command("calibrate")(calibrate_cmd.calibrate)
app.command("report")(report_cmd.report)
app.command("serve")(serve_cmd.serve)


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
    finally:
        report_held_logs()  # the log lines held back as repeats, counted
    return 0


__all__ = ["app", "main"]
