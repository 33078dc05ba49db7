"""`ReviewService`: the review use-cases for one database, called by the CLI and the web app.

Reads (the inbox, a review with its fields and document, runs, the report, the audit trail),
people (reviewers, sign-in, sessions, who may see what), and writes: a decision is recorded
through the core runner's `accept_decision` on the store (the conditional write the CLI uses,
with its audit row) after the edit is checked against the node's schema; continuing the run is
left to a worker (`decide`) or done here (`decide_and_continue`, the CLI's way).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from handrail._utils import now
from handrail.core.hooks import Hooks
from handrail.core.pipeline import Pipeline
from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, RunStatus
from handrail.exceptions import (
    InputError,
    InvalidDecision,
    NotAllowed,
    ReviewAlreadyDecided,
    ReviewNotFound,
)
from handrail.review import records
from handrail.review.documents import review_document
from handrail.review.fields import edit_errors, field_views, gate_thresholds, output_type
from handrail.review.fields import schema_errors as failed_fields
from handrail.review.inbox import inbox_item
from handrail.review.people import EVERY_QUEUE, People, sees_queue
from handrail.review.sources import PageImages, images_problem
from handrail.review.views import (
    InboxPage,
    ReviewDetail,
    ReviewView,
)
from handrail.targets import load_pipeline

if TYPE_CHECKING:
    from handrail.documents.render import PageImage
    from handrail.durable import (
        AuditCheck,
        AuditEntry,
        Escalated,
        Finished,
        InboxRow,
        Reviewer,
        SqlStore,
    )
    from handrail.durable.outbox import Routing
    from handrail.evals.export import ExportResult
    from handrail.observability.report import WorkflowReport


class ReviewService(People):
    """The review use-cases on the database `db` (see `handrail.durable.database_url`).

    `read_only`: reads only, and reading never creates nor changes the database (a SQLite file
    that does not exist yet holds no reviews). `target`: the pipeline's code (else each
    pipeline's code where `handrail run` or a worker recorded it, which must be inside `folder`,
    default the current folder: the database never chooses on its own which code is imported).
    `notify`: the notification channels (`handrail.notify.Notifications`): a run this service
    continues (`decide_and_continue`, `escalate_due`, `finish`) writes the outbox rows of what
    it raises, as a worker would. The store opens on first use and is shared (thread-safe: one
    service serves the web app)."""

    def __init__(
        self,
        db: str | None = None,
        *,
        read_only: bool = False,
        target: str | None = None,
        folder: str | os.PathLike[str] | None = None,
        notify: Routing | None = None,
    ) -> None:
        self.db = db
        self.notify = notify
        self.read_only = read_only
        self.target = target
        self.folder = str(Path(folder).resolve()) if folder is not None else None
        self._sql: SqlStore | None = None
        self._lock = threading.Lock()
        self._pipelines: dict[str, Pipeline] = {}
        self._page_images = PageImages()

    def __enter__(self) -> ReviewService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store (the service opens it again if used after)."""
        with self._lock:
            if self._sql is not None:
                self._sql.close()
                self._sql = None

    @property
    def url(self) -> str:
        """The database, as people see it (password masked)."""
        return records.shown_url(self.db)

    # --- the store ------------------------------------------------------------------------------

    def _store(self) -> SqlStore | None:
        """The store; None when reading a database that holds nothing yet (read-only)."""
        with self._lock:
            if self._sql is not None:
                return self._sql
            from handrail.durable import SqlStore, database_url
            from handrail.durable.engine import parse

            url = database_url(self.db)
            if self.read_only:
                parsed, _ = parse(url)
                if parsed.get_backend_name() == "sqlite":
                    assert parsed.database is not None
                    if not Path(parsed.database).expanduser().is_file():
                        return None
                store = SqlStore(url, read_only=True)
                if store.empty:
                    store.close()
                    return None
            else:
                store = SqlStore(url)
            self._sql = store
            return store

    def _writer(self) -> SqlStore:
        if self.read_only:
            raise InputError(
                f"this review service reads {self.url} only; open it with read_only=False to "
                "change anything"
            )
        store = self._store()
        assert store is not None  # a writing store always opens (it creates the tables)
        return store

    def pipeline(self, name: str) -> Pipeline:
        """Pipeline `name`'s code: `target`, else where it was recorded (inside `folder`);
        loaded once. `InputError` when it cannot be found or `target` is another pipeline."""
        with self._lock:
            found = self._pipelines.get(name)
        if found is not None:
            return found
        if self.target is not None:
            loaded = load_pipeline(self.target)
            if loaded.name != name:
                raise InputError(
                    f"`{self.target}` is pipeline `{loaded.name}`, not `{name}`; name pipeline "
                    f"`{name}`'s code with --target"
                )
        else:
            store = self._store()
            recorded = store.pipeline_target(name) if store is not None else None
            if recorded is None:
                raise InputError(
                    f"where pipeline `{name}`'s code is was never recorded in {self.url}; "
                    "name it with --target path/to/file.py:pipeline"
                )
            loaded = records.pipeline_for(name, self.db, None, folder=self.folder)
        with self._lock:
            return self._pipelines.setdefault(name, loaded)

    def _pipeline_or_none(self, name: str) -> Pipeline | None:
        """The pipeline's code, or None when it cannot be found without `target` (an error
        when `target` names the wrong code)."""
        try:
            return self.pipeline(name)
        except InputError:
            if self.target is not None:
                raise
            return None

    # --- reads ----------------------------------------------------------------------------------

    def inbox(
        self,
        viewer: Reviewer | None,
        *,
        queue: str | None = None,
        mine: bool = False,
        overdue: bool = False,
        sort: Literal["age", "deadline"] = "age",
        page: int = 1,
        per_page: int = 50,
    ) -> InboxPage:
        """A page of the pending reviews `viewer` may see (None: all of them), oldest first or
        soonest deadline first; `queue`: only that queue's; `mine`: only those the viewer has
        claimed; `overdue`: only those past their deadline. `NotAllowed` for a queue the
        viewer does not review."""
        if sort not in ("age", "deadline"):
            raise InputError(f"sort by age or deadline, not {sort!r}")
        if mine and viewer is None:
            raise InputError("`mine` needs a reviewer: whose claims?")
        page, per_page = max(page, 1), min(max(per_page, 1), 500)
        moment = now()
        store = self._store()
        if store is None:
            return InboxPage(items=[], total=0, page=page, per_page=per_page, pages=1, queues={})
        queues, escalated = self._visible(viewer)
        filters: dict[str, Any] = {
            "claimed_by": viewer.name if mine and viewer is not None else None,
            "overdue_at": moment if overdue else None,
            "sort": sort,
            "at": moment,
        }
        rows: list[InboxRow]
        if queue is not None and viewer is not None and not sees_queue(viewer, queue):
            if not viewer.lead:
                raise NotAllowed(f"{viewer.name} does not review queue `{queue}`")
            # a lead's view of another queue: its escalated reviews (few), paged here
            every, _ = store.inbox(queues=(), escalated_too=True, limit=10_000, **filters)
            matching = [row for row in every if row.request.queue == queue]
            total = len(matching)
            rows = matching[(page - 1) * per_page : page * per_page]
        else:
            chosen = [queue] if queue is not None else queues
            # Without the claim and deadline filters, the total is what the per-queue counts
            # (shown anyway) say: one count of the pending reviews fewer per page.
            counted = not mine and not overdue
            rows, total = store.inbox(
                queues=chosen,
                escalated_too=escalated and queue is None,
                offset=(page - 1) * per_page,
                limit=per_page,
                count=not counted,
                **filters,
            )
        counts = store.queue_counts(queues=queues, escalated_too=escalated)
        if total < 0:
            total = counts.get(queue, 0) if queue is not None else sum(counts.values())
        return InboxPage(
            items=[inbox_item(row, moment) for row in rows],
            total=total,
            page=page,
            per_page=per_page,
            pages=max(1, math.ceil(total / per_page)),
            queues=counts,
        )

    @staticmethod
    def _visible(viewer: Reviewer | None) -> tuple[list[str] | None, bool]:
        if viewer is None or EVERY_QUEUE in viewer.queues:
            return None, False
        return list(viewer.queues), viewer.lead

    def reviews(self, *, queue: str | None = None, pending_only: bool = True) -> list[ReviewView]:
        """Reviews (pending only, else all) with their decisions, oldest first (`review list`)."""
        return records.list_reviews(self.db, queue=queue, pending_only=pending_only)

    def review_view(self, review_id: str) -> ReviewView:
        """One review and its decision; `ReviewNotFound` if there is none."""
        return records.get_review(self.db, review_id)

    def review(self, review_id: str, viewer: Reviewer | None = None) -> ReviewDetail:
        """What a reviewer needs to decide `review_id`: the review, its decision, its run, the
        node's output type, each leaf field against its threshold with the reasons naming it,
        the document with the values highlighted, the claim, the run's steps and decisions.
        `ReviewNotFound`; `NotAllowed` when `viewer` does not review its queue."""
        store = self._store()
        request = store.get_review(review_id) if store is not None else None
        if store is None or request is None:
            raise ReviewNotFound(
                f"no review `{review_id}` in {self.url}; list pending reviews with "
                "`handrail review list` (and check --db or HANDRAIL_DATABASE_URL)"
            )
        self._check(viewer, request)
        decision = store.get_decision(review_id) if request.status == "decided" else None
        run = store.get_run(request.run_id)
        pipeline = self._pipeline_or_none(request.pipeline)
        thresholds = gate_thresholds(pipeline, request) if pipeline is not None else None
        fields = tuple(field_views(request, thresholds, run))
        document = None
        if run is not None and run.document is not None:
            images = images_problem(run.document, self.folder)
            document = review_document(run.document, fields, images=images)
        return ReviewDetail(
            request=request,
            decision=decision,
            run=run,
            output_type=output_type(pipeline, request) if pipeline is not None else None,
            fields=fields,
            document=document,
            claim=store.get_claim(review_id, at=now()) if request.status == "pending" else None,
            history=tuple(run.steps) if run is not None else (),
            decisions=tuple(run.decisions) if run is not None else (),
            schema_errors=tuple(failed_fields(run, request)) if run is not None else (),
            run_status=run.status.value if run is not None else None,
        )

    def page_image(self, review_id: str, number: int, viewer: Reviewer | None = None) -> PageImage:
        """Page `number` of the document of `review_id`'s run as a PNG (`PageImage`), rendered
        from the file the run read, while it is unchanged (`review.sources`). `ReviewNotFound`
        for an unknown review or a page the document does not have; `NotAllowed` when `viewer`
        does not review its queue; `InputError` saying why the page cannot be shown (the file
        is gone or changed, or cannot be rendered)."""
        store = self._store()
        request = store.get_review(review_id) if store is not None else None
        if store is None or request is None:
            raise ReviewNotFound(f"no review `{review_id}` in {self.url}")
        self._check(viewer, request)
        run = store.get_run(request.run_id)
        document = run.document if run is not None else None
        if document is None or not any(page.number == number for page in document.pages):
            count = len(document.pages) if document is not None else 0
            raise ReviewNotFound(
                f"the document of review `{review_id}` has no page {number} (it has {count})"
            )
        return self._page_images.image(request.run_id, document, number, self.folder)

    def thresholds(self, request: ReviewRequest) -> dict[str, float | None] | None:
        """The thresholds of the gate of the node under review, from the pipeline's code; None
        when that cannot be found without `target`."""
        pipeline = self._pipeline_or_none(request.pipeline)
        return gate_thresholds(pipeline, request) if pipeline is not None else None

    def runs(
        self,
        *,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        limit: int | None = 50,
        offset: int = 0,
    ) -> list[RunRecord]:
        """Runs, newest first."""
        store = self._store()
        if store is None:
            return []
        wanted = None if limit is None else limit + max(offset, 0)
        return store.list_runs(status=status, pipeline=pipeline, limit=wanted)[max(offset, 0) :]

    def run(self, run_id: str) -> RunRecord:
        """One run; `ReviewNotFound` (the error for an unknown run or review id) if none."""
        store = self._store()
        record = store.get_run(run_id) if store is not None else None
        if record is None:
            raise ReviewNotFound(
                f"no run `{run_id}` in {self.url}; list runs with `handrail runs list` "
                "(and check --db or HANDRAIL_DATABASE_URL)"
            )
        return record

    def report(
        self,
        *,
        since: datetime | None = None,
        pipeline: str | None = None,
        at: datetime | None = None,
    ) -> WorkflowReport:
        """The workflow report on the runs started since `since` (see docs/report.md)."""
        from handrail.observability.report import build_report

        moment = at or now()
        store = self._store()
        if store is None:
            return build_report([], lambda _: None, now=moment, since=since, pipeline=pipeline)
        # One lookup per review of the runs reported on: the work grows with the window asked
        # for, not with every review ever kept.
        runs = store.list_runs(pipeline=pipeline, since=since)
        return build_report(runs, store.get_review, now=moment, since=since, pipeline=pipeline)

    def audit_entries(self, **filters: Any) -> list[AuditEntry]:
        """The audit trail, oldest first (filters: actor, action, review_id, since, until,
        after_seq, limit; see `SqlStore.audit_entries`)."""
        store = self._store()
        return store.audit_entries(**filters) if store is not None else []

    def verify_audit(self) -> AuditCheck:
        """Re-check the audit trail's hash chain (see `SqlStore.verify_audit`)."""
        store = self._store()
        if store is None:
            from handrail.durable import AuditCheck

            return AuditCheck(ok=True, rows=0, first_bad=None, problem=None)
        return store.verify_audit()

    # --- decisions ------------------------------------------------------------------------------

    def validate_edit(self, review_id: str, output: Any) -> list[tuple[str, str]]:
        """(dotted field path, message) for each way `output` fails the schema of the node
        under review; empty when it fits. Writes nothing."""
        request = self._request(review_id)
        return edit_errors(self.pipeline(request.pipeline), request, output)

    def decide(
        self, review_id: str, decision: ReviewDecision, *, viewer: Reviewer | None = None
    ) -> ReviewRequest:
        """Record `decision` on `review_id`, exactly once; the run is continued by a worker
        (`DurableRunner.resume_decided`: `handrail serve` and `handrail worker` do it).

        With `viewer`: `NotAllowed` unless they review its queue, and the reviewer recorded is
        `viewer.name`. A rejection needs a reason and an edit must fit the node's schema, else
        `InvalidDecision` (`errors`: (path, message) per field) with nothing recorded. A second
        decision: `ReviewAlreadyDecided` naming who decided and when."""
        from handrail.core.runner import Runner

        request = self._request(review_id)
        self._check(viewer, request)
        if viewer is not None:
            decision = replace(decision, reviewer=viewer.name)
        store = self._writer()
        if request.status == "decided":
            raise self._already(store, request)
        if decision.action == "reject" and not (decision.reason or "").strip():
            raise InvalidDecision(
                f"rejecting review `{review_id}` needs a reason (recorded with the decision); "
                "say why"
            )
        pipeline = self.pipeline(request.pipeline)
        if decision.action == "edit":
            errors = edit_errors(pipeline, request, decision.output)
            if errors:
                shown = "; ".join(f"{path}: {message}" for path, message in errors)
                raise InvalidDecision(
                    f"the edited output for `{request.target}` does not fit its schema "
                    f"({shown}); correct it and decide again",
                    errors=errors,
                )
        runner = Runner(pipeline, store=store)
        try:
            _, recorded, _ = runner.accept_decision(
                request.run_id, replace(decision, review_id=review_id)
            )
        except ReviewAlreadyDecided as e:
            if e.by is not None or e.at is not None:
                raise
            raise self._already(store, request) from e
        return recorded

    def _already(self, store: SqlStore, request: ReviewRequest) -> ReviewAlreadyDecided:
        earlier = store.get_decision(request.review_id)
        by = earlier.reviewer if earlier is not None else None
        at = earlier.decided_at if earlier is not None else None
        action = earlier.action if earlier is not None else None
        when = f" at {at:%Y-%m-%d %H:%M:%S} UTC" if at is not None else ""
        said = f" ({action}{' by ' + by if by else ''}{when})"
        return ReviewAlreadyDecided(
            f"review `{request.review_id}` of run `{request.run_id}` was already decided"
            f"{said if action else ''}; a decision is applied exactly once",
            by=by,
            at=at,
            action=action,
        )

    def _request(self, review_id: str) -> ReviewRequest:
        store = self._store()
        request = store.get_review(review_id) if store is not None else None
        if request is None:
            raise ReviewNotFound(
                f"no review `{review_id}` in {self.url}; list pending reviews with "
                "`handrail review list` (and check --db or HANDRAIL_DATABASE_URL)"
            )
        return request

    def decide_and_continue(
        self,
        review_id: str,
        decision: ReviewDecision,
        *,
        model: str | None = None,
        hooks: Sequence[Hooks] = (),
        on_override: Callable[[str], None] | None = None,
    ) -> RunRecord:
        """Record `decision` (exactly once) and continue the run here, durably, with the model
        it started with (or `model`); returns the run's record (the CLI's way)."""
        request = self._request(review_id)
        return records.decide(
            request,
            decision,
            db=self.db,
            model=model,
            hooks=hooks,
            on_override=on_override,
            pipelines=self.pipeline,
            notify=self.notify,
        )

    # --- what the CLI does ----------------------------------------------------------------------

    def escalate_due(
        self, *, model: str | None = None, hooks: Sequence[Hooks] = ()
    ) -> tuple[list[Escalated], list[str]]:
        """Apply every due escalation, pipeline by pipeline: (what was done, one problem per
        pipeline whose code cannot be found). See `records.escalate`."""
        given = load_pipeline(self.target) if self.target is not None else None

        def find(name: str) -> Pipeline:
            if given is not None and given.name == name:
                return given
            return records.pipeline_for(name, self.db, None, folder=self.folder)

        return records.escalate(
            self.db, model=model, hooks=hooks, pipelines=find, notify=self.notify
        )

    def finish(
        self,
        run_id: str,
        *,
        model: str | None = None,
        hooks: Sequence[Hooks] = (),
        on_override: Callable[[str], None] | None = None,
    ) -> Finished:
        """Finish a run a process left unfinished, here (see `DurableRunner.finish`)."""
        return records.finish(
            run_id,
            db=self.db,
            model=model,
            hooks=hooks,
            on_override=on_override,
            pipelines=self.pipeline,
            notify=self.notify,
        )

    def unfinished_decision(self, view: ReviewView) -> bool:
        """Whether `view` has its decision but its run still waits on it."""
        return records.unfinished_decision(self.db, view)

    def export_cases(
        self,
        suite: str | os.PathLike[str],
        *,
        since: datetime | None = None,
        pipeline: str | None = None,
    ) -> ExportResult:
        """Decided reviews as eval cases in the suite folder `suite` (see
        `handrail.evals.export.export_cases`)."""
        from handrail.evals.export import decided_reviews, export_cases

        store = self._store()
        decided = decided_reviews(store, since=since) if store is not None else []
        names = {d.request.pipeline for d in decided}
        targets = {
            n: self.target or (store.pipeline_target(n) if store is not None else None)
            for n in names
        }
        return export_cases(suite, decided, pipeline=pipeline, targets=targets)


__all__ = ["ReviewService"]
