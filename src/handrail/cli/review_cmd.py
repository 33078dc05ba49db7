"""`handrail review ...`: the review queue, and the decisions that continue runs."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from handrail.cli import commands, output, records, show
from handrail.cli.options import Db, Json, Model, default_reviewer, errors
from handrail.cli.tracing import traced
from handrail.core.records import ReviewDecision, RunRecord, RunStatus

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
        help="The pipeline's code (default: where `handrail run` or a worker recorded it).",
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
        views = records.list_reviews(db, queue=queue, pending_only=not all_)
        where = records.shown_url(db)
    if json_output:
        for view in views:
            show.print_json(show.review_json(view))
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
def show_(review_id: ReviewId, db: Db = None, json_output: Json = False) -> None:
    """Show one review: the output under review, its confidence, the reasons, the document,
    queue, deadline and escalation (and the decision, once made)."""
    with errors():
        view = records.get_review(db, review_id)
    if json_output:
        show.print_json(show.review_json(view))
    else:
        show.print_table(show.console(), show.review_detail(view))


@app.command()
def approve(
    review_id: ReviewId,
    reviewer: Reviewer = None,
    reason: Reason = None,
    db: Db = None,
    target: TargetOption = None,
    model: Model = commands.DEFAULT_MODEL,
    json_output: Json = False,
) -> None:
    """Approve the output under review; the run continues.

    Exit code 1 when the review does not exist or was already decided.
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
    model: Model = commands.DEFAULT_MODEL,
    json_output: Json = False,
) -> None:
    """Correct the output under review; the run continues with it.

    The edit is checked against the node's schema first: one that does not fit is refused,
    nothing is recorded, and the exit code is 1.
    """
    with errors():
        view = records.get_review(db, review_id)
        records.require_pending(view)
        edited = records.edited_output(
            view.request, assignments=assignments or (), output_file=output_file
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
    model: Model = commands.DEFAULT_MODEL,
    json_output: Json = False,
) -> None:
    """Reject the output under review; the run ends `rejected` (unless the pipeline routes
    rejections elsewhere).

    Exit code 1 when the review does not exist or was already decided.
    """
    decision = ReviewDecision.reject(reason, reviewer=reviewer or default_reviewer())
    _decide(review_id, decision, db=db, target=target, model=model, json_output=json_output)


@app.command()
def escalate(
    db: Db = None,
    model: Model = commands.DEFAULT_MODEL,
    json_output: Json = False,
) -> None:
    """Apply the escalation of every review past its deadline (move it to another queue,
    reject it, or apply its declared safe default), for every pipeline. Workers do this on
    their own; this is for databases no worker serves.

    With --json: JSON Lines, one object per escalated review.
    Exit code 1 when a pipeline's code cannot be found (the others are still escalated).
    """
    with errors(), traced(None) as hooks:
        done, problems = records.escalate(db, model=model, hooks=hooks)
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
    model: str,
    json_output: bool,
) -> None:
    with errors():
        view = records.get_review(db, review_id)
        records.require_pending(view)
        with traced(None) as hooks:
            record = records.decide(
                view.request, decision, db=db, target=target, model=model, hooks=hooks
            )
    if json_output:
        show.print_json(output.record_json(record))
        return
    by = f" by {decision.reviewer}" if decision.reviewer else ""
    typer.echo(f"{_DONE[decision.action]} {review_id}{by}; run {record.run_id} {_now(record)}")


def _now(record: RunRecord) -> str:
    """Where the run stands after the decision, in a phrase."""
    if record.status is RunStatus.NEEDS_REVIEW:
        return f"needs review again: {output.notes(record)}"
    if record.status is RunStatus.FAILED:
        return f"failed: {output.notes(record)}"
    if record.status is RunStatus.REJECTED:
        return "is rejected"
    brief = output.result_brief(record)
    return f"is {record.status.value}" + (f": {brief}" if brief else "")


__all__ = ["app"]
