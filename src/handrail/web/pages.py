"""The reviewer's pages: sign in and out, the inbox, a review (document beside the form built
from the node's schema), and the decision, claim and release forms.

Pages only read; every change is a POST carrying the session's CSRF token (checked in
`checked`) from this site's own pages (the Origin check in `security.guard`). Who decides is
the signed-in reviewer, never a form value.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from handrail._utils import now
from handrail.core.records import ReviewDecision
from handrail.exceptions import (
    InputError,
    InvalidDecision,
    ReviewAlreadyDecided,
    ReviewClaimed,
    SignInFailed,
)
from handrail.review import DocumentView, PageView, ReviewDetail, ReviewService
from handrail.review.fields import label as path_label
from handrail.web import forms
from handrail.web.render import page, when
from handrail.web.security import (
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Visitor,
    new_token,
    same_token,
    visitor,
)

Form = dict[str, str]
MAX_PAGE = 100_000
"""The highest page number an address may ask for (a document has at most `max_pages`)."""


class CsrfRefused(Exception):
    """A form posted without this session's CSRF token: refused with 403, nothing changed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Posted:
    """A submitted form: the last value of each field, and the list items ticked for removal."""

    values: Form
    drops: tuple[str, ...]


async def posted(request: Request) -> Posted:
    data = await request.form()
    values: Form = {}
    drops: list[str] = []
    for key, value in data.multi_items():
        if not isinstance(value, str):
            continue  # no uploads here
        value = value.replace("\r\n", "\n")  # browsers send a textarea's lines with CRLF
        if key.startswith(forms.DROP):
            drops.append(key[len(forms.DROP) :])
        else:
            values[key] = value
    return Posted(values=values, drops=tuple(drops))


def service_of(request: Request) -> ReviewService:
    service: ReviewService = request.app.state.service
    return service


def signed_in(request: Request) -> Visitor:
    """The signed-in reviewer of a page (a redirect to /signin otherwise)."""
    return visitor(request, service_of(request))


def checked(
    request: Request,
    me: Annotated[Visitor, Depends(signed_in)],
    form: Annotated[Posted, Depends(posted)],
) -> Visitor:
    """The signed-in reviewer of a form post whose CSRF token is the session's."""
    if not same_token(form.values.get("csrf"), me.csrf):
        raise CsrfRefused
    return me


Me = Annotated[Visitor, Depends(signed_in)]
Checked = Annotated[Visitor, Depends(checked)]
PostedForm = Annotated[Posted, Depends(posted)]


def router(
    templates: Jinja2Templates, *, secure_cookies: bool, on_decided: Callable[[str], None] | None
) -> APIRouter:
    pages = APIRouter()

    def render(
        request: Request, name: str, me: Visitor | None, status_code: int = 200, **context: Any
    ) -> Response:
        extra = {"me": me.reviewer, "csrf": me.csrf} if me is not None else {}
        return page(templates, request, name, {**extra, **context}, status_code=status_code)

    # --- signing in ------------------------------------------------------------------------------

    @pages.get("/signin")
    def signin_form(request: Request) -> Response:
        token = new_token()
        response = render(request, "signin.html", None, signin_csrf=token, error=None)
        _cookie(response, SIGNIN_COOKIE, token, secure_cookies, max_age=3600)
        return response

    @pages.post("/signin")
    def signin(request: Request, form: PostedForm) -> Response:
        expected = request.cookies.get(SIGNIN_COOKIE)
        if not same_token(form.values.get("csrf"), expected):
            raise CsrfRefused
        try:
            _, session = service_of(request).sign_in(form.values.get("token", "").strip())
        except SignInFailed as e:
            token = new_token()
            response = render(
                request, "signin.html", None, status_code=401, signin_csrf=token, error=str(e)
            )
            _cookie(response, SIGNIN_COOKIE, token, secure_cookies, max_age=3600)
            return response
        response = RedirectResponse("/", status_code=303)
        seconds = max(60, int((session.expires_at - now()).total_seconds()))
        _cookie(response, SESSION_COOKIE, session.session_id, secure_cookies, max_age=seconds)
        response.delete_cookie(SIGNIN_COOKIE, path="/")
        return response

    @pages.post("/signout")
    def signout(request: Request, me: Checked) -> Response:
        service_of(request).sign_out(me.session_id)
        response = RedirectResponse("/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- the inbox -------------------------------------------------------------------------------

    @pages.get("/")
    def inbox(
        request: Request,
        me: Me,
        queue: Annotated[str | None, Query(max_length=200)] = None,
        mine: bool = False,
        overdue: bool = False,
        sort: Literal["age", "deadline"] = "age",
        page_no: Annotated[int, Query(alias="page", ge=1, le=100_000)] = 1,
    ) -> Response:
        chosen = queue or None
        shown = service_of(request).inbox(
            me.reviewer, queue=chosen, mine=mine, overdue=overdue, sort=sort, page=page_no
        )
        filters = {"queue": chosen or "", "mine": mine, "overdue": overdue, "sort": sort}
        return render(
            request,
            "inbox.html",
            me,
            title="Inbox",
            inbox=shown,
            filters=filters,
            link=lambda **changes: _link(filters, page_no, changes),
        )

    # --- a review --------------------------------------------------------------------------------

    @pages.get("/reviews/{review_id}")
    def review(
        request: Request,
        review_id: str,
        me: Me,
        page_no: Annotated[int | None, Query(alias="page", ge=1, le=MAX_PAGE)] = None,
    ) -> Response:
        detail = service_of(request).review(review_id, me.reviewer)
        return _review_page(request, me, detail, page_no=page_no)

    @pages.get("/reviews/{review_id}/pages/{number}.png")
    def page_image(
        request: Request,
        review_id: str,
        number: Annotated[int, Path(ge=1, le=MAX_PAGE)],
        me: Me,
    ) -> Response:
        """A page of the review's document as a PNG, for the signed-in reviewers of its queue;
        404 with the reason as text when the page cannot be shown (no such page, the file is
        gone or changed since the run read it)."""
        try:
            image = service_of(request).page_image(review_id, number, me.reviewer)
        except InputError as e:
            return PlainTextResponse(str(e), status_code=404)
        # `no-store` (set for every answer by `security.guard`): a page is a document, kept in
        # no cache, the browser's included; the service keeps the last few it rendered instead.
        return Response(image.data, media_type="image/png")

    def _review_page(
        request: Request,
        me: Visitor,
        detail: ReviewDetail,
        *,
        status_code: int = 200,
        submitted: Posted | None = None,
        errors: Mapping[str, str] | None = None,
        problem: str | None = None,
        conflict: ReviewAlreadyDecided | None = None,
        claim_problem: str | None = None,
        page_no: int | None = None,
    ) -> Response:
        request_ = detail.request
        shape = _shape(detail)
        shown = forms.widgets(
            shape,
            request_.output,
            target=request_.target,
            fields=detail.fields,
            submitted=submitted.values if submitted is not None else None,
            dropped=submitted.drops if submitted is not None else (),
            errors=errors,
        )
        known = _paths(shown)
        flagged = {f.path for f in detail.fields if f.flagged}
        loose = [(path, message) for path, message in (errors or {}).items() if path not in known]
        return render(
            request,
            "review.html",
            me,
            status_code=status_code,
            title=f"Review {request_.review_id}",
            d=detail,
            r=request_,
            widgets=shown,
            loose_errors=loose,
            problem=problem,
            conflict=conflict,
            reason=submitted.values.get("reason", "") if submitted is not None else "",
            claim_problem=claim_problem,
            errors_reason=(errors or {}).get("reason"),
            error_list=[
                (forms.dom_id(path or "output"), path_label(path) if path else "", message)
                for path, message in (errors or {}).items()
            ],
            highlighted={h.path for h in detail.document.highlights} if detail.document else set(),
            flagged=flagged,
            shown_page=_shown_page(detail.document, flagged, page_no),
            mine=detail.claim is not None and detail.claim.reviewer == me.reviewer.name,
        )

    @pages.post("/reviews/{review_id}/decide")
    def decide(request: Request, review_id: str, me: Checked, form: PostedForm) -> Response:
        service = service_of(request)
        detail = service.review(review_id, me.reviewer)
        action = form.values.get("action", "")
        reason = form.values.get("reason", "").strip() or None
        if action not in ("approve", "edit", "reject"):
            return _review_page(
                request,
                me,
                detail,
                status_code=422,
                submitted=form,
                problem="choose Approve, Save edit or Reject",
            )
        shape = _shape(detail)
        errors: dict[str, str] = {}
        paths: dict[str, str] = {}
        if action == "edit":
            reading = forms.read_form(
                shape, form.values, target=detail.request.target, dropped=form.drops
            )
            errors = dict(reading.errors or [])
            paths = reading.paths or {}
            decision = ReviewDecision.edit(reading.output, reason=reason)
        elif action == "approve":
            shown = forms.widgets(
                shape, detail.request.output, target=detail.request.target, fields=detail.fields
            )
            changed = forms.changed_inputs(shown, form.values) + list(form.drops)
            errors = {
                path: "changed: press Save edit to record the correction (Approve keeps the "
                "model's output)"
                for path in changed
            }
            decision = ReviewDecision.approve(reason=reason)
        else:
            decision = ReviewDecision.reject(reason)
            if reason is None:
                errors = {"reason": "say why you reject it (recorded with the decision)"}
        if errors and detail.request.status == "pending":  # a decided one: 409 below
            return _review_page(
                request,
                me,
                detail,
                status_code=422,
                submitted=form,
                errors=errors,
                problem="nothing was recorded: correct the fields marked below",
            )
        try:
            service.decide(review_id, decision, viewer=me.reviewer)
        except ReviewAlreadyDecided as e:
            fresh = service.review(review_id, me.reviewer)
            return _review_page(request, me, fresh, status_code=409, conflict=e)
        except InvalidDecision as e:
            found = {forms.form_path(p, paths): m for p, m in e.errors}
            if not e.errors:
                found = {"reason" if action == "reject" else "": str(e)}
            return _review_page(
                request,
                me,
                detail,
                status_code=422,
                submitted=form,
                errors=found,
                problem="nothing was recorded: correct the fields marked below",
            )
        if on_decided is not None:
            on_decided(detail.request.run_id)
        return RedirectResponse(f"/reviews/{review_id}", status_code=303)

    @pages.post("/reviews/{review_id}/claim")
    def claim(request: Request, review_id: str, me: Checked) -> Response:
        service = service_of(request)
        try:
            service.claim(review_id, me.reviewer)
        except ReviewClaimed as e:
            detail = service.review(review_id, me.reviewer)
            text = f"{e.by} is working on it until {when(e.until)} UTC"
            return _review_page(request, me, detail, status_code=409, claim_problem=text)
        except ReviewAlreadyDecided as e:
            detail = service.review(review_id, me.reviewer)
            return _review_page(request, me, detail, status_code=409, conflict=e)
        return RedirectResponse(f"/reviews/{review_id}", status_code=303)

    @pages.post("/reviews/{review_id}/release")
    def release(request: Request, review_id: str, me: Checked) -> Response:
        service_of(request).release(review_id, me.reviewer)
        return RedirectResponse(f"/reviews/{review_id}", status_code=303)

    return pages


def _shown_page(
    document: DocumentView | None, flagged: set[str], wanted: int | None
) -> PageView | None:
    """The page a review page shows: the one asked for (`?page=N`), else the first page holding
    a flagged field's value, else the first holding any value, else the first page."""
    if document is None or not document.pages:
        return None
    asked = document.page(wanted) if wanted is not None else None
    if asked is not None:
        return asked
    with_values = [shown for shown in document.pages if shown.places]
    for shown in with_values:
        if any(place.path in flagged for place in shown.places):
            return shown
    return with_values[0] if with_values else document.pages[0]


def _shape(detail: ReviewDetail) -> forms.Shape:
    if detail.output_type is not None:
        return forms.shape_of(detail.output_type)
    return forms.shape_of_value(detail.request.output)


def _paths(widgets: tuple[forms.Widget, ...]) -> set[str]:
    found: set[str] = {"reason"}
    stack = list(widgets)
    while stack:
        widget = stack.pop()
        found.add(widget.path)
        stack.extend(widget.children)
    return found


def _link(filters: Mapping[str, Any], page_no: int, changes: Mapping[str, Any]) -> str:
    """The inbox URL with its filters and page (`changes` to them); defaults left out."""
    from urllib.parse import urlencode

    merged = {**filters, "page": page_no, **changes}
    query = {
        key: "1" if value is True else value
        for key, value in merged.items()
        if value not in (None, "", False)
        and not (key == "page" and value == 1)
        and not (key == "sort" and value == "age")
    }
    return "/?" + urlencode(query) if query else "/"


def _cookie(response: Response, name: str, value: str, secure: bool, *, max_age: int) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path="/", httponly=True, samesite="strict", secure=secure
    )


__all__ = ["CsrfRefused", "Posted", "checked", "posted", "router", "service_of", "signed_in"]
