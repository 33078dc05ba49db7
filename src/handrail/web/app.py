"""`create_app`: the review inbox as a FastAPI app over a `ReviewService`.

Server-rendered pages (Jinja2, autoescaped) that work without JavaScript; htmx (vendored in
static/, never from a CDN) only enhances them. The security guards are in `security.py`; the
pages in `pages.py` and `history.py`; the JSON API, mounted at `/api/v1`, in `api.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from handrail.exceptions import InputError, NotAllowed, ReviewNotFound, StoreError
from handrail.web import history, pages
from handrail.web.api import api_app
from handrail.web.render import STATIC, make_templates, page
from handrail.web.security import API_PREFIX, Guard, SignInNeeded, visitor

if TYPE_CHECKING:
    from handrail.review import ReviewService


def create_app(
    service: ReviewService,
    *,
    allowed_hosts: Sequence[str],
    secure_cookies: bool = False,
    on_decided: Callable[[str], None] | None = None,
    intake: APIRouter | None = None,
) -> FastAPI:
    """The review inbox over `service`. `allowed_hosts`: the Host names it answers to (e.g.
    `127.0.0.1:8765`, `localhost`: any port); `secure_cookies`: mark cookies Secure (behind a
    TLS proxy); `on_decided(run_id)` is called after each decision (wakes the worker loop);
    `intake`: the HTTP trigger's route (`web.intake.intake_router`), if the server takes
    documents."""
    if not allowed_hosts:
        raise ValueError("create_app needs allowed_hosts, e.g. ['127.0.0.1:8765', 'localhost']")
    app = FastAPI(
        title="handrail review inbox",
        openapi_url=None,  # the pages have none; the API's is /api/v1/openapi.json
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service
    templates = make_templates()
    app.add_middleware(Guard, allowed_hosts=allowed_hosts)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if intake is not None:  # before the API's mount, which would take its path
        app.include_router(intake)
    app.mount(API_PREFIX, api_app(service, on_decided=on_decided))
    app.include_router(
        pages.router(templates, secure_cookies=secure_cookies, on_decided=on_decided)
    )
    app.include_router(history.router(templates))

    def problem(request: Request, status: int, text: str) -> Response:
        me = None
        with contextlib.suppress(SignInNeeded):
            me = visitor(request, service)
        context = {"status": status, "message": text, "title": f"{status}"}
        if me is not None:
            context |= {"me": me.reviewer, "csrf": me.csrf}
        return page(templates, request, "message.html", context, status_code=status)

    def sign_in_first(_: Request, __: Exception) -> Response:
        return RedirectResponse("/signin", status_code=303)

    def csrf(request: Request, _: Exception) -> Response:
        return problem(
            request,
            403,
            "refused: the form did not carry this session's security token (it is older than "
            "your sign-in, or came from elsewhere); reload the page and submit it again",
        )

    def not_allowed(request: Request, error: Exception) -> Response:
        return problem(request, 403, str(error))

    def not_found(request: Request, error: Exception) -> Response:
        return problem(request, 404, str(error))

    def bad_input(request: Request, error: Exception) -> Response:
        return problem(request, 400, str(error))

    def store_down(request: Request, error: Exception) -> Response:
        return problem(request, 503, f"{error}; try again in a moment")

    def unreadable(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        said = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'request'}: {e['msg']}"
            for e in error.errors()
        )
        return problem(request, 400, f"this address does not make sense here ({said})")

    def http(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        text = "no such page" if error.status_code == 404 else str(error.detail)
        return problem(request, error.status_code, text)

    app.add_exception_handler(SignInNeeded, sign_in_first)
    app.add_exception_handler(pages.CsrfRefused, csrf)
    app.add_exception_handler(NotAllowed, not_allowed)
    app.add_exception_handler(ReviewNotFound, not_found)
    app.add_exception_handler(InputError, bad_input)
    app.add_exception_handler(StoreError, store_down)
    app.add_exception_handler(RequestValidationError, unreadable)
    app.add_exception_handler(HTTPException, http)
    return app


__all__ = ["create_app"]
