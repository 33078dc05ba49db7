"""`handrail review ...`: the review queue, and the decisions that continue runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from handrail.cli import output, show
from handrail.cli.options import Db, Json, default_reviewer, errors
from handrail.cli.tracing import traced
from handrail.core.records import ReviewDecision, RunRecord
from handrail.exceptions import InputError, ReviewNotFound
from handrail.review import ReviewService, ReviewView, shapes
from handrail.review import records as use

if TYPE_CHECKING:
    from handrail.durable import Finished
    from handrail.notify import Notifications

app = typer.Typer(
    name="review",
    help="The review queue: list and show reviews, approve, edit or reject them.",
    no_args_is_help=True,
)

ReviewId = Annotated[str, typer.Argument(metavar="REVIEW_ID", show_default=False)]
Reviewer = Annotated[
    str | None,
    typer.Option(
        "--reviewer",
        "-r",
        help="Who decides, recorded with the decision (default: $USER).",
        show_default=False,
    ),
]
Reason = Annotated[
    str | None,
    typer.Option("--reason", help="Why (recorded with the decision).", show_default=False),
]
TargetOption = Annotated[
    str | None,
    typer.Option(
        "--target",
        metavar="TARGET",
        help="The pipeline's code (default: where `handrail run` or a worker recorded it, if "
        "that is inside the current folder).",
        show_default=False,
    ),
]
ContinueModel = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="The model that continues the run (default: the one it started with, as its "
        "record says; given, it overrides that and says so).",
        show_default=False,
    ),
]


@app.command("list")
def list_(
    queue: Annotated[
        str | None,
        typer.Option(
            "--queue", "-q", help="Only reviews waiting in this queue.", show_default=False
        ),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", "-a", help="Decided reviews too, not only pending ones.")
    ] = False,
    db: Db = None,
    json_output: Json = False,
) -> None:
    """List reviews waiting for a decision, oldest first.

    With --json: JSON Lines, one object per review.
    """
    with errors():
        service = ReviewService(db, read_only=True)
        views = service.reviews(queue=queue, pending_only=not all_)
        where = service.url
    if json_output:
        for view in views:
            show.print_json(shapes.review_json(view))
        return
    console = show.console()
    if not views:
        kind = "reviews" if all_ else "pending reviews"
        console.print(Text(f"no {kind}{f' in queue `{queue}`' if queue else ''} in {where}"))
        return
    show.print_table(console, show.reviews_table(views))
    pending = sum(view.request.status == "pending" for view in views)
    console.print(
        Text(f"{pending} pending" + (f", {len(views) - pending} decided" if all_ else ""))
    )


@app.command("show")
def show_(
    review_id: ReviewId, db: Db = None, target: TargetOption = None, json_output: Json = False
) -> None:
    """Show one review: the output under review, each field's confidence against its
    threshold, the reasons (after a schema failure: which fields failed and why), the
    document's text, queue, deadline and escalation (and the decision, once made).

    The thresholds come from the pipeline's code (--target, or where `handrail run` recorded
    it); without it, only those the reasons name are shown.
    """
    with errors(), ReviewService(db, read_only=True, target=target) as service:
        view = service.review_view(review_id)
        try:
            run: RunRecord | None = service.run(view.request.run_id)
        except ReviewNotFound:  # a review kept without its run: show what the review has
            run = None
        thresholds = service.thresholds(view.request)
    if json_output:
        show.print_json(shapes.review_json(view, run=run, thresholds=thresholds))
    else:
        detail = show.review_detail(view, run=run, thresholds=thresholds)
        show.print_table(show.console(), detail)


def _schema_fields(view: ReviewView, db: str | None, target: str | None) -> list[str]:
    """The fields of the schema of the node under review (none known without its code)."""
    from handrail.review.fields import schema_fields

    with ReviewService(db, read_only=True, target=target) as service:
        try:
            pipeline = service.pipeline(view.request.pipeline)
        except InputError:
            if target is not None:
                raise
            return []
    return schema_fields(pipeline, view.request)


@app.command()
def approve(
    review_id: ReviewId,
    reviewer: Reviewer = None,
    reason: Reason = None,
    db: Db = None,
    target: TargetOption = None,
    model: ContinueModel = None,
    json_output: Json = False,
) -> None:
    """Approve the output under review; the run continues.

    Exit code 1 when the review does not exist or was already decided (if its run did not
    finish, because the command that decided it was cut off, it is finished now; the exit
    code is then 0 when the recorded decision is this one).
    """
    decision = ReviewDecision.approve(reviewer=reviewer or default_reviewer(), reason=reason)
    _decide(review_id, decision, db=db, target=target, model=model, json_output=json_output)


@app.command()
def edit(
    review_id: ReviewId,
    assignments: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="FIELD=VALUE",
            help="Change one field of the output under review (repeatable; NODE=VALUE "
            "replaces an output that is one value, such as a label); VALUE is read as JSON when "
            "it is JSON, else as text.",
            show_default=False,
        ),
    ] = None,
    output_file: Annotated[
        str | None,
        typer.Option(
            "--output",
            metavar="FILE.json",
            help="The whole corrected output, as JSON (- reads stdin).",
            show_default=False,
        ),
    ] = None,
    reviewer: Reviewer = None,
    reason: Reason = None,
    db: Db = None,
    target: TargetOption = None,
    model: ContinueModel = None,
    json_output: Json = False,
) -> None:
    """Correct the output under review; the run continues with it.

    The edit is checked against the node's schema first: one that does not fit is refused,
    nothing is recorded, and the exit code is 1.
    """
    with errors():
        view = use.get_review(db, review_id)
        unfinished = use.unfinished_decision(db, view)
    if unfinished:
        _finish_decided(view, "edit", db=db, target=target, model=model, json_output=json_output)
        return
    with errors():
        use.require_pending(view)
        fields = _schema_fields(view, db, target) if view.request.output is None else ()
        edited = use.edited_output(
            view.request, assignments=assignments or (), output_file=output_file, fields=fields
        )
    decision = ReviewDecision.edit(edited, reviewer=reviewer or default_reviewer(), reason=reason)
    _decide(review_id, decision, db=db, target=target, model=model, json_output=json_output)


@app.command()
def reject(
    review_id: ReviewId,
    reason: Reason = None,
    reviewer: Reviewer = None,
    db: Db = None,
    target: TargetOption = None,
    model: ContinueModel = None,
    json_output: Json = False,
) -> None:
    """Reject the output under review; the run ends `rejected` (unless the pipeline routes
    rejections elsewhere).

    Exit code 1 when the review does not exist or was already decided (if its run did not
    finish, because the command that decided it was cut off, it is finished now; the exit
    code is then 0 when the recorded decision is this one).
    """
    decision = ReviewDecision.reject(reason, reviewer=reviewer or default_reviewer())
    _decide(review_id, decision, db=db, target=target, model=model, json_output=json_output)


@app.command()
def escalate(
    db: Db = None,
    target: TargetOption = None,
    model: ContinueModel = None,
    json_output: Json = False,
) -> None:
    """Apply the escalation of every review past its deadline (move it to another queue,
    reject it, or apply its declared safe default), for every pipeline. Workers do this on
    their own; this is for databases no worker serves.

    With --json: JSON Lines, one object per escalated review.
    Exit code 1 when a pipeline's code cannot be found (the others are still escalated).
    """
    if model is not None:
        typer.echo(
            f"note: every escalated run continues with --model {model}, whatever model it "
            "started with",
            err=True,
        )
    with (
        errors(),
        traced(None) as hooks,
        ReviewService(db, read_only=True, target=target, notify=_notify()) as service,
    ):
        done, problems = service.escalate_due(model=model, hooks=hooks)
    for item in done:
        if json_output:
            show.print_json(
                {
                    "review_id": item.review_id,
                    "run_id": item.run_id,
                    "action": item.action,
                    "detail": item.detail,
                    "run_status": item.run_status.value if item.run_status else None,
                }
            )
        else:
            status = (
                f"; run {item.run_id} is now {item.run_status.value}" if item.run_status else ""
            )
            typer.echo(f"{item.review_id}: {item.action}: {item.detail}{status}")
    if not done and not json_output and not problems:
        typer.echo("no reviews past their deadline")
    for problem in problems:
        typer.echo(f"error: {problem}", err=True)
    if problems:
        raise typer.Exit(1)


_DONE = {"approve": "approved", "edit": "edited", "reject": "rejected"}


def _decide(
    review_id: str,
    decision: ReviewDecision,
    *,
    db: str | None,
    target: str | None,
    model: str | None,
    json_output: bool,
) -> None:
    with errors():
        view = use.get_review(db, review_id)
        unfinished = use.unfinished_decision(db, view)
    if unfinished:
        _finish_decided(
            view, decision.action, db=db, target=target, model=model, json_output=json_output
        )
        return
    with errors():
        use.require_pending(view)
        with (
            traced(None) as hooks,
            ReviewService(db, read_only=True, target=target, notify=_notify()) as service,
        ):
            record = service.decide_and_continue(
                review_id,
                decision,
                model=model,
                hooks=hooks,
                on_override=lambda line: typer.echo(line, err=True),
            )
    if json_output:
        show.print_json(shapes.record_json(record))
        return
    by = f" by {decision.reviewer}" if decision.reviewer else ""
    typer.echo(
        f"{_DONE[decision.action]} {review_id}{by}; run {record.run_id} {output.run_now(record)}"
    )


def _finish_decided(
    view: ReviewView,
    asked: str,
    *,
    db: str | None,
    target: str | None,
    model: str | None,
    json_output: bool,
) -> None:
    """A review already decided whose run has not finished (the command that decided it was cut
    off, or is still at it): say so and finish the run here. Exit code 0 when the decision
    recorded is the one asked for again (a retried command), else 1 (it was not applied)."""
    request, decision = view.request, view.decision
    recorded: str = decision.action if decision is not None else "?"
    if decision is not None and decision.reviewer:
        recorded += f" by {decision.reviewer}"
    typer.echo(
        f"review {request.review_id} was already decided ({recorded}); its run "
        f"{request.run_id} did not finish (the command that decided it was cut off, or is "
        "still at it): finishing it now",
        err=True,
    )
    done = finish_here(request.run_id, db=db, target=target, model=model)
    if json_output:
        show.print_json(shapes.record_json(done.record))
    else:
        waited = "; waited for the process continuing it" if done.how == "waited" else ""
        typer.echo(f"run {request.run_id} {output.run_now(done.record)}{waited}")
    if decision is None or decision.action != asked:
        raise typer.Exit(1)


def _notify() -> Notifications | None:
    """The channels of `[tool.handrail.notify]` in ./pyproject.toml (None without them), as
    `handrail worker` reads them: a run continued here writes the outbox rows of what it raises
    (a new review, a failure, an escalation, a reminder) in the transaction that saves it; a
    worker or `handrail serve` sends them."""
    from handrail.notify import load_notifications

    return load_notifications()


def finish_here(run_id: str, *, db: str | None, target: str | None, model: str | None) -> Finished:
    """Finish a decided run whose continuation was cut off, in this process (traced when
    tracing is on; a model override is said on stderr)."""
    with (
        errors(),
        traced(None) as hooks,
        ReviewService(db, read_only=True, target=target, notify=_notify()) as service,
    ):
        return service.finish(
            run_id,
            model=model,
            hooks=hooks,
            on_override=lambda line: typer.echo(line, err=True),
        )


@app.command("export")
def export(
    suite: Annotated[
        str,
        typer.Option(
            "--suite",
            metavar="DIR",
            help="The eval suite folder the cases go to (created with a suite.yaml if missing).",
            show_default=False,
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Only reviews decided at or after WHEN: an ISO date or date and time (UTC "
            "unless it says otherwise), or a time back from now: 30m, 24h, 7d.",
            show_default=False,
        ),
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option(
            "--pipeline",
            "-p",
            metavar="NAME",
            help="Whose reviews (default: the pipeline of earlier exports, else the only one).",
            show_default=False,
        ),
    ] = None,
    target: TargetOption = None,
    db: Db = None,
    json_output: Json = False,
) -> None:
    """Turn decided reviews into eval cases in DIR/cases.jsonl, documents in DIR/documents/:
    an edit's output and an approved output become the expected output of the reviewed node, a
    rejection becomes route "reject". Reviews exported before are skipped.

    With --json: one object (`added`, `skipped`, `created_suite`, ...).
    Exit code 2 for a malformed suite or --since.
    """
    from handrail._utils import now
    from handrail.observability.report import parse_since

    with errors():
        start = parse_since(since, now=now()) if since is not None else None
        with ReviewService(db, read_only=True, target=target) as service:
            result = service.export_cases(suite, since=start, pipeline=pipeline)
    if json_output:
        show.print_json(result.to_dict())
        return
    counts = [
        f"{sum(c.decision == action for c in result.added)} {done}"
        for action, done in _DONE.items()
        if any(c.decision == action for c in result.added)
    ]
    typer.echo(
        f"added {len(result.added)} cases to {result.cases_file.as_posix()}"
        + (f" ({', '.join(counts)})" if counts else "")
        + f"; skipped {len(result.skipped)} already exported"
    )
    if result.no_document:
        typer.echo(f"skipped {len(result.no_document)} whose run kept no document text")
    if result.created_suite:
        scored = ", ".join(f"{n} ({kind})" for n, kind in (result.scoring or {}).items())
        typer.echo(
            f"created {(result.folder / 'suite.yaml').as_posix()} for pipeline "
            f"`{result.pipeline}`" + (f"; scoring {scored}" if scored else "")
        )
    for node in result.unscored:
        typer.echo(f"note: suite.yaml does not score `{node}`; add it under `scoring:`")


__all__ = ["app"]
