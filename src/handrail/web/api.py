"""The JSON API under `/api/v1`, for a helpdesk or a script: the inbox, a review, decisions and
claims, runs and the audit trail. Every request carries `Authorization: Bearer <reviewer
token>` (the token `handrail reviewers add` printed); cookies are never accepted here, so a
page in a browser cannot act through it. Errors are JSON: `{"error": ...}` (401, 403, 404),
409 with who decided and when, 422 with the fields' errors. OpenAPI: `/api/v1/openapi.json`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from handrail.core.records import ReviewDecision, RunStatus
from handrail.durable import Reviewer
from handrail.exceptions import (
    InputError,
    InvalidDecision,
    NotAllowed,
    ReviewAlreadyDecided,
    ReviewClaimed,
    ReviewNotFound,
    SignInFailed,
    StoreError,
)
from handrail.review import DocumentView, InboxItem, ReviewService
from handrail.review.audit import audit_json
from handrail.review.shapes import (
    decision_json,
    jsonable,
    reason_json,
    run_detail_json,
    run_summary_json,
)
from handrail.web.history import AuditFilters, require_overseer
from handrail.web.security import bearer

_scheme = HTTPBearer(auto_error=False, description="A reviewer token (`handrail reviewers add`)")


def _service(request: Request) -> ReviewService:
    service: ReviewService = request.app.state.service
    return service


def caller(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_scheme)],
) -> Reviewer:
    """The reviewer whose bearer token the request carries."""
    return bearer(request, _service(request))


Caller = Annotated[Reviewer, Depends(caller)]


# --- shapes -------------------------------------------------------------------------------------


class Problem(BaseModel):
    error: str


class FieldError(BaseModel):
    field: str
    """Dotted path: `lines.0.amount`."""
    message: str


class Invalid(BaseModel):
    error: str
    errors: list[FieldError]


class Conflict(BaseModel):
    error: str
    by: str | None = None
    at: datetime | None = None
    action: str | None = None


class ClaimOut(BaseModel):
    review_id: str
    reviewer: str
    claimed_at: datetime
    until: datetime


class ItemOut(BaseModel):
    review_id: str
    run_id: str
    pipeline: str
    node: str
    queue: str
    reasons: str
    lowest_confidence: float | None
    lowest_field: str | None
    created_at: datetime
    age_s: float
    deadline: datetime | None
    overdue: bool
    escalation: str | None
    claim: ClaimOut | None


class InboxOut(BaseModel):
    items: list[ItemOut]
    total: int
    page: int
    per_page: int
    pages: int
    queues: dict[str, int]


class FieldOut(BaseModel):
    path: str
    label: str
    value: Any
    confidence: float | None
    threshold: float | None
    flagged: bool
    reasons: list[str]


class PlaceOut(BaseModel):
    path: str
    page: int
    boxes: list[tuple[float, float, float, float]] = Field(
        description="The words' boxes: (left, top, right, bottom) from the page's top-left "
        "corner, in the page's unit (`pt` for a PDF, `px` for an image)."
    )


class PartOut(BaseModel):
    name: str
    media_type: str
    pages: list[int]
    error: str | None


class DocumentOut(BaseModel):
    kind: str
    text: str
    headers: dict[str, str]
    media_type: str = "text/plain"
    pages: int = Field(default=0, description="How many pages (0: the document has none).")
    places: list[PlaceOut] = Field(
        default_factory=list, description="Each value found on a page: where, with its boxes."
    )
    parts: list[PartOut] = Field(
        default_factory=list, description="An e-mail's body and attachments."
    )
    images: str | None = Field(
        default=None,
        description="Why the page images cannot be shown (the file is gone or changed); "
        "None when they can: GET /reviews/{id}/pages/{n}.png on the pages' site.",
    )


class ReviewOut(BaseModel):
    review_id: str
    status: str
    run_id: str
    run_status: str | None
    pipeline: str
    node: str
    target: str
    queue: str
    created_at: datetime
    deadline: datetime | None
    escalation: str | None
    output: Any
    reasons: list[dict[str, Any]]
    fields: list[FieldOut]
    document: DocumentOut | None
    claim: ClaimOut | None
    decision: dict[str, Any] | None
    schema_errors: list[FieldError]


class DecisionIn(BaseModel):
    action: Literal["approve", "edit", "reject"]
    output: Any = Field(default=None, description="For `edit`: the corrected output, as JSON.")
    reason: str | None = Field(default=None, description="Required for `reject`.", max_length=4000)


class DecisionOut(BaseModel):
    review_id: str
    run_id: str
    status: str
    decision: dict[str, Any]


def _document(view: DocumentView) -> DocumentOut:
    return DocumentOut(
        kind=view.kind,
        text=view.text,
        headers=view.headers,
        media_type=view.media_type,
        pages=len(view.pages),
        places=[
            PlaceOut(path=place.path, page=place.page, boxes=list(place.boxes))
            for page in view.pages
            for place in page.places
        ],
        parts=[
            PartOut(name=p.name, media_type=p.media_type, pages=list(p.pages), error=p.error)
            for p in view.parts
        ],
        images=view.images,
    )


# --- the app -------------------------------------------------------------------------------------


def api_app(service: ReviewService, *, on_decided: Callable[[str], None] | None = None) -> FastAPI:
    """The API as an app of its own, mounted at `/api/v1` (its OpenAPI document with it)."""
    api = FastAPI(
        title="handrail review inbox API",
        version="1",
        openapi_url="/openapi.json",
        docs_url=None,  # Swagger UI and ReDoc load scripts from a CDN: not here
        redoc_url=None,
        responses={401: {"model": Problem}, 403: {"model": Problem}, 404: {"model": Problem}},
    )
    api.state.service = service
    _errors(api)

    @api.get("/reviews", response_model=InboxOut)
    def reviews(
        request: Request,
        me: Caller,
        queue: Annotated[str | None, Query(max_length=200)] = None,
        mine: bool = False,
        overdue: bool = False,
        sort: Literal["age", "deadline"] = "age",
        page: Annotated[int, Query(ge=1)] = 1,
        per_page: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> InboxOut:
        """The pending reviews this reviewer may decide (their queues; a lead's escalated ones)."""
        shown = _service(request).inbox(
            me, queue=queue, mine=mine, overdue=overdue, sort=sort, page=page, per_page=per_page
        )
        return InboxOut(
            items=[_item(item) for item in shown.items],
            total=shown.total,
            page=shown.page,
            per_page=shown.per_page,
            pages=shown.pages,
            queues=shown.queues,
        )

    @api.get("/reviews/{review_id}", response_model=ReviewOut)
    def review(request: Request, review_id: str, me: Caller) -> ReviewOut:
        """One review: the output, each field against its threshold, the document, the claim."""
        d = _service(request).review(review_id, me)
        r = d.request
        return ReviewOut(
            review_id=r.review_id,
            status=r.status,
            run_id=r.run_id,
            run_status=d.run_status,
            pipeline=r.pipeline,
            node=r.node,
            target=r.target,
            queue=r.queue,
            created_at=r.created_at,
            deadline=r.deadline,
            escalation=r.escalation,
            output=jsonable(r.output),
            reasons=[reason_json(x) for x in r.reasons],
            fields=[
                FieldOut(
                    path=f.path,
                    label=f.label,
                    value=jsonable(f.value),
                    confidence=f.confidence,
                    threshold=f.threshold,
                    flagged=f.flagged,
                    reasons=list(f.reasons),
                )
                for f in d.fields
            ],
            document=_document(d.document) if d.document is not None else None,
            claim=_claim(d.claim),
            decision=decision_json(r.review_id, d.decision) if d.decision is not None else None,
            schema_errors=[FieldError(field=p, message=m) for p, m in d.schema_errors],
        )

    @api.post(
        "/reviews/{review_id}/decision",
        response_model=DecisionOut,
        responses={409: {"model": Conflict}, 422: {"model": Invalid}},
    )
    def decide(request: Request, review_id: str, body: DecisionIn, me: Caller) -> DecisionOut:
        """Decide the review, exactly once; the run continues in `handrail serve`'s worker (or
        a `handrail worker`). 409 when it was already decided, 422 for an edit failing the
        schema or a rejection without a reason (nothing recorded)."""
        decision = ReviewDecision(action=body.action, output=body.output, reason=body.reason)
        if body.action != "edit":
            decision = ReviewDecision(action=body.action, reason=body.reason)
        recorded = _service(request).decide(review_id, decision, viewer=me)
        if on_decided is not None:
            on_decided(recorded.run_id)
        stored = _service(request).review(review_id, me)
        assert stored.decision is not None
        return DecisionOut(
            review_id=review_id,
            run_id=recorded.run_id,
            status=recorded.status,
            decision=decision_json(review_id, stored.decision),
        )

    @api.post(
        "/reviews/{review_id}/claim", response_model=ClaimOut, responses={409: {"model": Conflict}}
    )
    def claim(request: Request, review_id: str, me: Caller) -> ClaimOut:
        """Work on the review for 15 minutes (renewing one's own claim extends it)."""
        made = _service(request).claim(review_id, me)
        shown = _claim(made)
        assert shown is not None
        return shown

    @api.post("/reviews/{review_id}/release")
    def release(request: Request, review_id: str, me: Caller) -> dict[str, bool]:
        """Drop one's claim (a lead may drop anyone's)."""
        return {"released": _service(request).release(review_id, me)}

    @api.get("/runs")
    def runs(
        request: Request,
        me: Caller,
        status: RunStatus | None = None,
        pipeline: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[dict[str, Any]]:
        """Runs, newest first (leads and reviewers of every queue)."""
        require_overseer(me)
        found = _service(request).runs(status=status, pipeline=pipeline, limit=limit, offset=offset)
        return [run_summary_json(r) for r in found]

    @api.get("/runs/{run_id}")
    def run(request: Request, run_id: str, me: Caller) -> dict[str, Any]:
        """A run with its steps, reviews and decisions (leads and reviewers of every queue)."""
        require_overseer(me)
        return run_detail_json(_service(request).run(run_id))

    @api.get("/audit")
    def audit(
        request: Request,
        me: Caller,
        filters: Annotated[AuditFilters, Depends()],
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    ) -> list[dict[str, Any]]:
        """The audit trail, oldest first (page with `after` = the last seq seen)."""
        require_overseer(me)
        entries = _service(request).audit_entries(**filters.query(), limit=limit)
        return [audit_json(e) for e in entries]

    return api


def _item(item: InboxItem) -> ItemOut:
    return ItemOut(
        review_id=item.review_id,
        run_id=item.run_id,
        pipeline=item.pipeline,
        node=item.node,
        queue=item.queue,
        reasons=item.reasons,
        lowest_confidence=item.lowest_confidence,
        lowest_field=item.lowest_field,
        created_at=item.created_at,
        age_s=item.age_s,
        deadline=item.deadline,
        overdue=item.overdue,
        escalation=item.escalation,
        claim=_claim(item.claim),
    )


def _claim(claim: Any) -> ClaimOut | None:
    if claim is None:
        return None
    return ClaimOut(
        review_id=claim.review_id,
        reviewer=claim.reviewer,
        claimed_at=claim.claimed_at,
        until=claim.until,
    )


def _errors(api: FastAPI) -> None:
    def problem(status: int) -> Callable[[Request, Exception], JSONResponse]:
        def handle(_: Request, error: Exception) -> JSONResponse:
            headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            return JSONResponse({"error": str(error)}, status_code=status, headers=headers)

        return handle

    api.add_exception_handler(SignInFailed, problem(401))
    api.add_exception_handler(NotAllowed, problem(403))
    api.add_exception_handler(ReviewNotFound, problem(404))
    api.add_exception_handler(InputError, problem(400))
    api.add_exception_handler(StoreError, problem(503))

    def already(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ReviewAlreadyDecided)
        body = Conflict(error=str(error), by=error.by, at=error.at, action=error.action)
        return JSONResponse(body.model_dump(mode="json"), status_code=409)

    def claimed(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ReviewClaimed)
        body = Conflict(error=str(error), by=error.by, at=error.until, action="claim")
        return JSONResponse(body.model_dump(mode="json"), status_code=409)

    def invalid(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, InvalidDecision)
        errors = [FieldError(field=p, message=m) for p, m in error.errors]
        if not errors and "reason" in str(error):
            errors = [FieldError(field="reason", message=str(error))]
        body = Invalid(error=str(error), errors=errors)
        return JSONResponse(body.model_dump(mode="json"), status_code=422)

    def unreadable(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        errors = [
            FieldError(field=".".join(str(p) for p in e["loc"]), message=e["msg"])
            for e in error.errors()
        ]
        body = Invalid(error="the request does not fit the API (see errors)", errors=errors)
        return JSONResponse(body.model_dump(mode="json"), status_code=422)

    def http(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    api.add_exception_handler(ReviewAlreadyDecided, already)
    api.add_exception_handler(ReviewClaimed, claimed)
    api.add_exception_handler(InvalidDecision, invalid)
    api.add_exception_handler(RequestValidationError, unreadable)
    api.add_exception_handler(HTTPException, http)


__all__ = ["DecisionIn", "api_app", "caller"]
