"""The web app's guards: the Host allow-list (DNS rebinding), the Origin check on every unsafe
request (CSRF, with the per-session token the forms carry), the security headers, and who is
signed in (a session cookie for the pages, a bearer token for the API, never both).

Everything here runs before a route does: a refused request changes nothing.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from handrail.exceptions import SignInFailed

if TYPE_CHECKING:
    from handrail.durable import Reviewer
    from handrail.review import ReviewService

SESSION_COOKIE = "handrail_session"
"""The session's cookie: HttpOnly, SameSite=Strict, Path=/ (Secure with --secure-cookies)."""
SIGNIN_COOKIE = "handrail_signin"
"""The sign-in form's own CSRF token (double submit): there is no session yet to hold one."""
API_PREFIX = "/api/v1"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # not no-referrer: with it a browser sends `Origin: null` on same-origin form posts
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Visitor:
    """Who is signed in on a page request."""

    reviewer: Reviewer
    session_id: str
    """The cookie's value (the store keeps its hash)."""
    csrf: str
    """The token every form of this session posts back."""


class SignInNeeded(Exception):
    """A page asked for without a live session: answered with a redirect to /signin."""


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether a Host header names this server: an entry `name` allows any port of `name`,
    `name:port` that port only (compared without case)."""
    host = host.strip().lower()
    if not host:
        return False
    name = _host_name(host)
    for entry in allowed:
        entry = entry.strip().lower()
        if entry == "*" or entry == host or (":" not in _strip_brackets(entry) and entry == name):
            return True
    return False


def _strip_brackets(host: str) -> str:
    return host[1 : host.index("]")] if host.startswith("[") and "]" in host else host


def _host_name(host: str) -> str:
    """`example.com:8765` -> `example.com`; `[::1]:8765` -> `[::1]`."""
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def origin_matches(request: Request) -> bool:
    """Whether an unsafe request comes from this site's own pages: its Origin (else its
    Referer) names the host the request was sent to. Browsers send Origin on every form post;
    a post with neither (or `Origin: null`, a sandboxed or privacy-stripped one) is refused."""
    host = request.headers.get("host", "").lower()
    origin = request.headers.get("origin")
    source = origin if origin is not None else request.headers.get("referer")
    if not source or source == "null":
        return False
    scheme, sep, rest = source.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        return False
    netloc = rest.split("/", 1)[0].lower()
    return hmac.compare_digest(netloc.encode(), host.encode())


def same_token(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the session's."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def new_token() -> str:
    return secrets.token_urlsafe(32)


class Guard:
    """The ASGI middleware every request passes: Host allow-list (400), Origin check on unsafe
    requests (403), and the security headers on every answer (`no-store` too, except for the
    static files). A plain ASGI middleware: it never buffers a body, and costs a few
    microseconds (Starlette's `BaseHTTPMiddleware` cost 0.3 ms a request)."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: Sequence[str]) -> None:
        self.app = app
        self.hosts = tuple(allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        path: str = scope["path"]
        static = path.startswith("/static/")

        async def send_guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if not static:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        refused = self.refusal(request, api=path.startswith(API_PREFIX))
        if refused is not None:
            await refused(scope, receive, send_guarded)
            return
        await self.app(scope, receive, send_guarded)

    def refusal(self, request: Request, *, api: bool) -> Response | None:
        """The answer refusing `request`, or None when it may go on."""
        if not host_allowed(request.headers.get("host", ""), self.hosts):
            text = (
                "this server does not answer to that host name (Host header not allowed); "
                "open it with the address `handrail serve` printed, or start it with "
                "--allowed-host NAME"
            )
            return _refusal(400, text, api)
        if (
            request.method in UNSAFE
            and not origin_matches(request)
            # The API takes no cookies, so a cross-site page cannot use a signed-in browser's
            # credentials there; a client without Origin (a helpdesk server) is fine.
            and (not api or request.headers.get("origin") is not None)
        ):
            text = (
                "refused: this request did not come from this site's own pages (Origin "
                "check); open the page from the server's address and submit it again"
            )
            return _refusal(403, text, api)
        return None


def _refusal(status: int, text: str, api: bool) -> Response:
    if api:
        return JSONResponse({"error": text}, status_code=status)
    return PlainTextResponse(text, status_code=status)


def visitor(request: Request, service: ReviewService) -> Visitor:
    """The signed-in reviewer of a page request; `SignInNeeded` when there is no live session."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id:
        raise SignInNeeded
    try:
        reviewer, csrf = service.session(session_id)
    except SignInFailed as e:
        raise SignInNeeded from e
    return Visitor(reviewer=reviewer, session_id=session_id, csrf=csrf)


def bearer(request: Request, service: ReviewService) -> Reviewer:
    """The reviewer whose token an API request carries (`Authorization: Bearer ...`); cookies
    are never looked at. `SignInFailed` when it is missing or unknown."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise SignInFailed(
            "the API needs `Authorization: Bearer <reviewer token>` (cookies are not accepted "
            "here); get a token with `handrail reviewers add NAME --queues ...`"
        )
    return service.authenticate(token.strip())


__all__ = [
    "API_PREFIX",
    "CSP",
    "HEADERS",
    "SESSION_COOKIE",
    "SIGNIN_COOKIE",
    "SignInNeeded",
    "Visitor",
    "bearer",
    "Guard",
    "host_allowed",
    "new_token",
    "origin_matches",
    "same_token",
    "visitor",
]
