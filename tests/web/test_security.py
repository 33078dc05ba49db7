"""Sign-in, CSRF, Origin, Host, queue permissions and the security headers, against real
reviews on a SQLite file: every refusal leaves the review undecided and writes no decision."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from handrail.review import ReviewService
from handrail.web import create_app
from handrail.web.security import CSP

from .conftest import ORIGIN, Inbox, client_for, csrf_of, form_values, sign_in


def decide_form(client: TestClient, review_id: str) -> dict[str, str]:
    page = client.get(f"/reviews/{review_id}")
    assert page.status_code == 200
    return form_values(page.text) | {"action": "approve"}


def assert_nothing_decided(inbox: Inbox, review_id: str) -> None:
    assert review_id in inbox.pending()
    assert inbox.actions("decide") == []


# --- signing in ------------------------------------------------------------------------------


def test_every_page_sends_a_visitor_without_session_to_sign_in(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    review_id = inbox.pending()[0]
    for path in ("/", f"/reviews/{review_id}", "/runs", "/report", "/audit", "/audit.csv"):
        response = client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/signin"), path
    refused = client.post(
        f"/reviews/{review_id}/decide", data={"action": "approve"}, headers={"Origin": ORIGIN}
    )
    assert (refused.status_code, refused.headers["location"]) == (303, "/signin")
    assert_nothing_decided(inbox, review_id)


def test_signing_in_sets_a_strict_http_only_session_cookie(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    response = sign_in(client, inbox.tokens["ana"])
    assert (response.status_code, response.headers["location"]) == (303, "/")
    cookie = next(c for c in response.headers.get_list("set-cookie") if "handrail_session=" in c)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http on loopback; --secure-cookies behind TLS
    assert inbox.tokens["ana"] not in cookie  # the session id, never the token itself
    inbox_page = client.get("/")
    assert inbox_page.status_code == 200 and "ana" in inbox_page.text
    assert [e.actor for e in inbox.actions("sign_in")] == ["ana"]


def test_secure_cookies_are_marked_secure(inbox: Inbox) -> None:
    app = create_app(inbox.service, allowed_hosts=["testserver"], secure_cookies=True)
    client = TestClient(app, base_url="https://testserver", follow_redirects=False)
    page = client.get("/signin")
    assert "Secure" in page.headers["set-cookie"]
    response = client.post(
        "/signin",
        data={"token": inbox.tokens["ana"], "csrf": csrf_of(page.text)},
        headers={"Origin": "https://testserver"},
    )
    cookie = next(c for c in response.headers.get_list("set-cookie") if "handrail_session=" in c)
    assert "Secure" in cookie


def test_a_wrong_token_signs_nobody_in(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    response = sign_in(client, "hr_not-a-token")
    assert response.status_code == 401
    assert "unknown or withdrawn reviewer token" in response.text
    assert "handrail_session" not in response.headers.get("set-cookie", "")
    assert client.get("/").status_code == 303


def test_the_sign_in_form_needs_its_own_csrf_token(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    client.get("/signin")
    response = client.post(
        "/signin", data={"token": inbox.tokens["ana"], "csrf": "forged"}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 403
    assert "handrail_session" not in response.headers.get("set-cookie", "")


def test_signing_out_ends_the_session(ana: TestClient, inbox: Inbox) -> None:
    page = ana.get("/")
    cookie = ana.cookies.get("handrail_session")
    out = ana.post("/signout", data={"csrf": csrf_of(page.text)}, headers={"Origin": ORIGIN})
    assert (out.status_code, out.headers["location"]) == (303, "/signin")
    again = client_for(inbox.service)
    again.cookies.set("handrail_session", cookie or "")
    assert again.get("/").status_code == 303  # the old cookie no longer works


# --- CSRF and Origin -------------------------------------------------------------------------


def test_a_decision_without_the_sessions_csrf_token_is_refused(
    ana: TestClient, inbox: Inbox
) -> None:
    review_id = inbox.pending()[0]
    form = decide_form(ana, review_id)
    for token in (None, "", "forged-token"):
        data = {k: v for k, v in form.items() if k != "csrf"}
        if token is not None:
            data["csrf"] = token
        response = ana.post(f"/reviews/{review_id}/decide", data=data, headers={"Origin": ORIGIN})
        assert response.status_code == 403
        assert "security token" in response.text
    assert_nothing_decided(inbox, review_id)


def test_another_sessions_csrf_token_does_not_do(ana: TestClient, inbox: Inbox) -> None:
    carol = client_for(inbox.service)
    sign_in(carol, inbox.tokens["carol"])
    carols = csrf_of(carol.get("/").text)
    review_id = inbox.pending()[0]
    form = decide_form(ana, review_id) | {"csrf": carols}
    response = ana.post(f"/reviews/{review_id}/decide", data=form, headers={"Origin": ORIGIN})
    assert response.status_code == 403
    assert_nothing_decided(inbox, review_id)


def test_a_post_from_another_origin_is_refused(ana: TestClient, inbox: Inbox) -> None:
    review_id = inbox.pending()[0]
    form = decide_form(ana, review_id)  # with the right CSRF token: the Origin alone refuses
    for origin in (
        "http://127.0.0.1:9999",
        "http://evil.example",
        "null",
        "https://testserver.evil",
    ):
        response = ana.post(f"/reviews/{review_id}/decide", data=form, headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert "Origin check" in response.text
    no_origin = ana.post(f"/reviews/{review_id}/decide", data=form)
    assert no_origin.status_code == 403
    foreign_referer = ana.post(
        f"/reviews/{review_id}/decide", data=form, headers={"Referer": "http://evil.example/page"}
    )
    assert foreign_referer.status_code == 403
    assert_nothing_decided(inbox, review_id)
    same = ana.post(f"/reviews/{review_id}/decide", data=form, headers={"Origin": ORIGIN})
    assert same.status_code == 303
    assert review_id not in inbox.pending()


def test_a_host_not_allowed_is_refused(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    for host in ("evil.example", "attacker.test:8765", ""):
        response = client.get("/signin", headers={"Host": host})
        assert response.status_code == 400, host
        assert "Host header not allowed" in response.text
    api = client.get("/api/v1/reviews", headers={"Host": "evil.example"})
    assert api.status_code == 400 and "error" in api.json()


def test_get_requests_change_nothing(ana: TestClient, inbox: Inbox) -> None:
    review_id = inbox.pending()[0]
    for path in (
        f"/reviews/{review_id}/decide?action=approve",
        f"/reviews/{review_id}/claim",
        "/signout",
    ):
        assert ana.get(path).status_code in (404, 405), path
    assert_nothing_decided(inbox, review_id)
    assert inbox.service.audit_entries(action="claim") == []
    assert ana.get("/").status_code == 200  # still signed in


# --- queues -----------------------------------------------------------------------------------


def test_a_reviewer_sees_and_decides_only_their_queues(inbox: Inbox) -> None:
    bob = client_for(inbox.service)
    sign_in(bob, inbox.tokens["bob"])
    page = bob.get("/")
    assert page.status_code == 200
    assert "data-review-id" not in page.text  # queue sales: nothing waits there
    review_id = inbox.pending()[0]
    shown = bob.get(f"/reviews/{review_id}")
    assert shown.status_code == 403
    assert "bob does not review queue `payables`" in shown.text
    assert bob.get("/?queue=payables").status_code == 403
    csrf = csrf_of(page.text)
    decided = bob.post(
        f"/reviews/{review_id}/decide",
        data={"csrf": csrf, "action": "approve"},
        headers={"Origin": ORIGIN},
    )
    assert decided.status_code == 403
    claimed = bob.post(
        f"/reviews/{review_id}/claim", data={"csrf": csrf}, headers={"Origin": ORIGIN}
    )
    assert claimed.status_code == 403
    assert_nothing_decided(inbox, review_id)
    assert inbox.service.audit_entries(action="claim") == []


def test_runs_report_and_audit_are_for_leads(inbox: Inbox, ana: TestClient) -> None:
    for path in ("/runs", "/report", "/audit", "/audit.csv", "/audit.jsonl"):
        response = ana.get(path)
        assert response.status_code == 403, path
        assert "are for leads" in response.text
    lena = client_for(inbox.service)
    sign_in(lena, inbox.tokens["lena"])
    for path in ("/runs", "/report", "/audit", "/audit.csv", "/audit.jsonl"):
        assert lena.get(path).status_code == 200, path


# --- headers -------------------------------------------------------------------------------------


def test_security_headers_on_pages_api_and_static_files(ana: TestClient, inbox: Inbox) -> None:
    review_id = inbox.pending()[0]
    for path in (
        "/",
        f"/reviews/{review_id}",
        "/signin",
        "/api/v1/openapi.json",
        "/static/htmx.min.js",
    ):
        response = ana.get(path)
        assert response.status_code == 200, path
        headers = response.headers
        assert headers["content-security-policy"] == CSP
        assert "default-src 'self'" in CSP and "frame-ancestors 'none'" in CSP
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
    assert ana.get(f"/reviews/{review_id}").headers["cache-control"] == "no-store"
    assert ana.get("/").headers["cache-control"] == "no-store"
    assert "no-store" not in ana.get("/static/style.css").headers.get("cache-control", "")


def test_pages_have_no_inline_script_or_style_and_load_nothing_from_elsewhere(
    ana: TestClient, inbox: Inbox
) -> None:
    """CSP default-src 'self' holds only if no page needs inline code or a CDN."""
    lena = client_for(inbox.service)
    sign_in(lena, inbox.tokens["lena"])
    review_id = inbox.pending()[0]
    pages = [ana.get("/").text, ana.get(f"/reviews/{review_id}").text, ana.get("/signin").text]
    pages += [lena.get(p).text for p in ("/runs", "/report", "/audit")]
    for page in pages:
        scripts = re.findall(r"<script([^>]*)>", page)
        assert scripts and all('src="/static/' in attrs for attrs in scripts)
        assert "<style" not in page and " style=" not in page
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
        assert 'name="htmx-config"' in page and '"allowEval":false' in page
    htmx = ana.get("/static/htmx.min.js").text
    assert htmx.startswith("var htmx=function()")
    assert "Zero-Clause BSD" in ana.get("/static/htmx.LICENSE").text
    assert ana.get("/docs").status_code == 404 and ana.get("/redoc").status_code == 404


def test_a_database_that_cannot_be_used_answers_503_saying_so(tmp_path) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    service = ReviewService(f"sqlite:///{broken}")
    client = client_for(service)
    page = client.get("/signin")
    response = client.post(
        "/signin", data={"token": "hr_x", "csrf": csrf_of(page.text)}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 503
    assert "corrupted" in response.text or "cannot" in response.text
    api = client.get("/api/v1/reviews", headers={"Authorization": "Bearer hr_x"})
    assert api.status_code == 503 and api.json()["error"]
    service.close()
