"""The overseer's pages: runs, a run's steps, the workflow report (with charts) and the audit
trail (filtered; exported as CSV or JSON Lines). They show every queue's documents, so they
are for leads and for reviewers of every queue (`*`)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, TextIO, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.templating import Jinja2Templates

from handrail._utils import now
from handrail.core.records import RunStatus
from handrail.exceptions import InputError, NotAllowed
from handrail.observability.report import parse_since
from handrail.review import EVERY_QUEUE
from handrail.review.audit import AuditFormat, all_entries, write_audit
from handrail.web.charts import report_charts
from handrail.web.pages import service_of, signed_in
from handrail.web.render import duration, page
from handrail.web.security import Visitor

if TYPE_CHECKING:
    from handrail.durable import Reviewer
    from handrail.review import ReviewService

AUDIT_PAGE = 200


def oversees(reviewer: Reviewer) -> bool:
    """Leads and reviewers of every queue see runs, the report and the audit trail."""
    return reviewer.lead or EVERY_QUEUE in reviewer.queues


def require_overseer(reviewer: Reviewer) -> None:
    if not oversees(reviewer):
        raise NotAllowed(
            f"{reviewer.name} reviews queues {', '.join(reviewer.queues)} only; runs, the "
            "report and the audit trail show every queue's documents and are for leads "
            "(`handrail reviewers add NAME --queues ... --lead`)"
        )


def overseer(me: Annotated[Visitor, Depends(signed_in)]) -> Visitor:
    require_overseer(me.reviewer)
    return me


Overseer = Annotated[Visitor, Depends(overseer)]


def parse_moment(text: str | None, *, name: str) -> datetime | None:
    """`24h`, `7d` (ago) or an ISO date or time (UTC unless it says), or None when empty."""
    if not text or not text.strip():
        return None
    try:
        return parse_since(text.strip(), now=now())
    except InputError as e:
        raise InputError(f"{name}: {e}") from e


def router(templates: Jinja2Templates) -> APIRouter:
    history = APIRouter()

    def render(request: Request, name: str, me: Visitor, **context: Any) -> Response:
        full = {"me": me.reviewer, "csrf": me.csrf, **context}
        return page(templates, request, name, full)

    @history.get("/runs")
    def runs(
        request: Request,
        me: Overseer,
        status: RunStatus | None = None,
        pipeline: Annotated[str | None, Query(max_length=200)] = None,
        page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    ) -> Response:
        per_page = 50
        found = service_of(request).runs(
            status=status,
            pipeline=pipeline or None,
            limit=per_page + 1,
            offset=(page_no - 1) * per_page,
        )
        return render(
            request,
            "runs.html",
            me,
            title="Runs",
            runs=found[:per_page],
            more=len(found) > per_page,
            page_no=page_no,
            status=status.value if status else "",
            pipeline=pipeline or "",
            statuses=[s.value for s in RunStatus],
        )

    @history.get("/runs/{run_id}")
    def run(request: Request, run_id: str, me: Overseer) -> Response:
        record = service_of(request).run(run_id)
        return render(request, "run.html", me, title=f"Run {run_id}", run=record)

    @history.get("/report")
    def report(
        request: Request,
        me: Overseer,
        since: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        moment = parse_moment(since, name="since")
        figures = service_of(request).report(since=moment)
        return render(
            request,
            "report.html",
            me,
            title="Report",
            report=figures,
            since=since or "",
            charts=report_charts(figures, duration),
            data=figures.to_dict(),
        )

    @history.get("/audit")
    def audit(
        request: Request, me: Overseer, filters: Annotated[AuditFilters, Depends()]
    ) -> Response:
        entries = service_of(request).audit_entries(**filters.query(), limit=AUDIT_PAGE + 1)
        check = service_of(request).verify_audit() if filters.verify else None
        return render(
            request,
            "audit.html",
            me,
            title="Audit trail",
            entries=entries[:AUDIT_PAGE],
            more=entries[AUDIT_PAGE - 1].seq if len(entries) > AUDIT_PAGE else None,
            filters=filters,
            check=check,
            exports=filters.export_query(),
        )

    @history.get("/audit.csv")
    def audit_csv(
        request: Request, me: Overseer, filters: Annotated[AuditFilters, Depends()]
    ) -> Response:
        return _export(service_of(request), filters, "csv")

    @history.get("/audit.jsonl")
    def audit_jsonl(
        request: Request, me: Overseer, filters: Annotated[AuditFilters, Depends()]
    ) -> Response:
        return _export(service_of(request), filters, "jsonl")

    return history


class AuditFilters:
    """The audit page's filters (query parameters)."""

    def __init__(
        self,
        actor: Annotated[str | None, Query(max_length=200)] = None,
        action: Annotated[str | None, Query(max_length=64)] = None,
        review_id: Annotated[str | None, Query(max_length=200)] = None,
        since: Annotated[str | None, Query(max_length=64)] = None,
        until: Annotated[str | None, Query(max_length=64)] = None,
        after: Annotated[int, Query(ge=0)] = 0,
        verify: bool = False,
    ) -> None:
        self.actor = actor or ""
        self.action = action or ""
        self.review_id = review_id or ""
        self.since = since or ""
        self.until = until or ""
        self.after = after
        self.verify = verify

    def query(self) -> dict[str, Any]:
        return {
            "actor": self.actor or None,
            "action": self.action or None,
            "review_id": self.review_id or None,
            "since": parse_moment(self.since, name="since"),
            "until": parse_moment(self.until, name="until"),
            "after_seq": self.after,
        }

    def export_query(self) -> str:
        from urllib.parse import urlencode

        given = {
            k: v
            for k, v in (
                ("actor", self.actor),
                ("action", self.action),
                ("review_id", self.review_id),
                ("since", self.since),
                ("until", self.until),
            )
            if v
        }
        return urlencode(given)


def _export(service: ReviewService, filters: AuditFilters, format: AuditFormat) -> Response:
    """The audit rows the filters select, as `handrail audit export` writes them (spooled to
    disk past a few megabytes, streamed from there)."""
    query = {k: v for k, v in filters.query().items() if k != "after_seq"}
    # closed by the stream once sent (or here, if writing fails)
    spool = tempfile.SpooledTemporaryFile(max_size=8 << 20, mode="w+", encoding="utf-8")  # noqa: SIM115
    try:
        write_audit(all_entries(service.audit_entries, **query), cast(TextIO, spool), format)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)

    def chunks() -> Iterator[str]:
        with spool:
            yield from iter(lambda: spool.read(1 << 16), "")

    media = "text/csv" if format == "csv" else "application/x-ndjson"
    name = f"handrail-audit.{format}"
    return StreamingResponse(
        chunks(),
        media_type=f"{media}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


__all__ = ["AuditFilters", "oversees", "require_overseer", "router"]
