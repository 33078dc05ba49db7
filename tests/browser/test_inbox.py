"""The review inbox in a real browser (Chromium driven by Playwright) against a live `handrail
serve` on 127.0.0.1, a SQLite file and the `inbox_invoice` pipeline, whose runs all wait for
review. What was recorded is read from the database itself, never taken from the page.

Every wait is on a condition (an element, a response, a status in the database), never a fixed
sleep: the tests must hold on a loaded 2-core machine.
"""

from __future__ import annotations

import html
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.browser.live import Project, Server, wait_until

Inbox = tuple[Project, Server]
TIMEOUT_MS = 30_000
"""Playwright's wait for an element or a response (a loaded machine can be slow, never stuck)."""


def _expect() -> Any:
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)
    return expect


def signed_in(browser: Any, inbox: Inbox, reviewer: str) -> Any:
    """A new browser context signed in as `reviewer` with the token `reviewers add` printed."""
    project, server = inbox
    expect = _expect()
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/signin"))  # no session: sent to sign in
    page.locator("form#signin input[name=token]").fill(project.tokens[reviewer])
    page.locator("form#signin button[type=submit], form#signin input[type=submit]").click()
    expect(page.locator("table#inbox")).to_be_visible()
    return page


def _decide_response(response: Any) -> bool:
    return bool(response.request.method == "POST" and response.url.endswith("/decide"))


def run_status_shown(page: Any, want: str, *, timeout: float = 60) -> None:
    """Reload the review page until `#run-status` says `want` (the worker continues the run)."""

    def shown() -> bool:
        page.reload()
        return bool(page.locator("#run-status").inner_text().strip() == want)

    wait_until(shown, timeout=timeout, what=f"#run-status to say {want!r}")


def decisions(project: Project, review_id: str) -> tuple[Any, list[Any], Any]:
    """(the stored decision or None, the review's `decide` audit rows, the review)."""
    store = project.store()
    try:
        decided = store.get_decision(review_id)
        audit = store.audit_entries(review_id=review_id, action="decide")
        return decided, audit, store.get_review(review_id)
    finally:
        store.close()


def finished_run(project: Project, run_id: str, *, timeout: float = 60) -> Any:
    def done() -> Any:
        store = project.store()
        try:
            run = store.get_run(run_id)
        finally:
            store.close()
        return run if run is not None and run.status.value == "completed" else None

    return wait_until(done, timeout=timeout, what=f"run {run_id} to complete")


def _field(output: Any, name: str) -> Any:
    return output[name] if isinstance(output, dict) else getattr(output, name)


def test_sign_in_correct_an_invoice_and_see_the_run_complete(browser: Any, inbox: Inbox) -> None:
    project, server = inbox
    expect = _expect()
    review_id = project.review_id("invoice-HF-2291.txt")
    page = signed_in(browser, inbox, "alice")

    row = page.locator(f'table#inbox tr[data-review-id="{review_id}"]')
    expect(row).to_be_visible()
    row.locator("a.open-review").click()
    expect(page).to_have_url(f"{server.url}/reviews/{review_id}")
    expect(page.locator("#document")).to_contain_text("Harbour & Finch Ltd.")
    form = page.locator("form#decision")
    expect(form.locator('[name="out.total"]')).to_have_value(re.compile(r"^1240(\.0+)?$"))
    expect(form.locator('[name="out.address.city"]')).to_have_value("Bristol")

    # An edit the schema refuses (a PO number without its PO- prefix): 422, the error at the
    # field, the values as typed, and nothing recorded.
    form.locator('[name="out.total"]').fill("1420")
    form.locator('[name="out.po_number"]').fill("7781")
    with page.expect_response(_decide_response) as refused:
        form.locator('button[name=action][value="edit"]').click()
    assert refused.value.status == 422
    error = page.locator("#error-po_number")
    expect(error).to_be_visible()
    expect(error).to_have_class(re.compile(r"\bfield-error\b"))
    expect(error).to_contain_text("PO-")
    expect(page.locator('form#decision [name="out.po_number"]')).to_have_value("7781")
    expect(page.locator('form#decision [name="out.total"]')).to_have_value(re.compile(r"^1420"))
    decided, audit, review = decisions(project, review_id)
    assert decided is None and audit == [] and review.status == "pending"

    # Fixed: recorded as alice's edit (the session says who, not the form), and the run goes on.
    page.locator('form#decision [name="out.po_number"]').fill("PO-7781")
    with page.expect_response(_decide_response) as accepted:
        page.locator('form#decision button[name=action][value="edit"]').click()
    assert accepted.value.status in (200, 303), accepted.value.status
    expect(page).to_have_url(f"{server.url}/reviews/{review_id}")
    expect(page.locator("#decision")).to_contain_text("alice")
    expect(page.locator("#decision")).to_contain_text("edit")
    # No reload: the page follows the run (htmx refreshes its status while it goes on).
    expect(page.locator("#run-status")).to_have_text("completed", timeout=60_000)
    expect(page.locator("#run-now")).to_contain_text("completed")

    decided, audit, review = decisions(project, review_id)
    assert decided.action == "edit" and decided.reviewer == "alice"
    assert _field(decided.output, "total") == 1420
    assert _field(decided.output, "po_number") == "PO-7781"
    assert [(a.actor, a.detail["changed"]) for a in audit] == [("alice", {"total": [1240, 1420]})]
    run = finished_run(project, review.run_id)
    assert run.outputs["book"] == "booked invoice HF-2291: 1420.00 GBP"
    assert [s.node for s in run.steps].count("book") == 1  # continued once
    page.context.close()


def test_two_reviewers_approving_at_once_give_one_decision(browser: Any, inbox: Inbox) -> None:
    project, server = inbox
    expect = _expect()
    review_id = project.review_id("credit-CN-0412.eml")
    pages = {name: signed_in(browser, inbox, name) for name in ("alice", "bob")}
    for page in pages.values():
        page.goto(f"{server.url}/reviews/{review_id}")
        expect(page.locator('form#decision button[name=action][value="approve"]')).to_be_enabled()
    expect(pages["bob"].locator("#document")).to_contain_text("CN-0412")

    # Both buttons pressed before either answer comes back (a click dispatched in the page does
    # not wait for the navigation it starts).
    alice, bob = pages["alice"], pages["bob"]
    approve = 'form#decision button[name=action][value="approve"]'
    with alice.expect_response(_decide_response) as a, bob.expect_response(_decide_response) as b:
        alice.locator(approve).evaluate("button => button.click()")
        bob.locator(approve).evaluate("button => button.click()")
    statuses = {"alice": a.value.status, "bob": b.value.status}
    assert sorted(statuses.values())[1] == 409, statuses
    winner = next(name for name, status in statuses.items() if status != 409)
    loser = "bob" if winner == "alice" else "alice"
    assert statuses[winner] in (200, 303), statuses
    expect(pages[loser].locator("#already-decided")).to_contain_text(winner)
    expect(pages[winner].locator("#decision")).to_contain_text(winner)

    decided, audit, review = decisions(project, review_id)
    assert decided.action == "approve" and decided.reviewer == winner
    assert [(row.actor, row.detail["action"]) for row in audit] == [(winner, "approve")]
    run = finished_run(project, review.run_id)
    assert [s.node for s in run.steps].count("book") == 1  # one continuation
    assert [rid for rid, _ in run.decisions] == [review_id]
    assert run.outputs["book"] == "booked credit_note CN-0412: 318.50 EUR"
    run_status_shown(pages[loser], "completed")
    for page in pages.values():
        page.context.close()


@contextmanager
def other_origin(page_html: str) -> Iterator[str]:
    """A page served from another loopback origin (its own port), e.g. a malicious local app."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = page_html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_form_posted_from_another_origin_is_refused(browser: Any, inbox: Inbox) -> None:
    project, server = inbox
    expect = _expect()
    review_id = project.review_id("invoice-AP-10734.txt")
    page = signed_in(browser, inbox, "alice")
    page.goto(f"{server.url}/reviews/{review_id}")
    # The worst case: the other page even has the session's CSRF token (and the browser sends
    # the cookie, since another port of 127.0.0.1 is the same site): the Origin check refuses.
    csrf = page.locator('form#decision input[name="csrf"]').input_value()
    assert csrf
    action = html.escape(f"{server.url}/reviews/{review_id}/decide")
    attack = (
        "<!doctype html><title>prize</title>"
        f'<form id="f" method="post" action="{action}">'
        f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">'
        '<input type="hidden" name="action" value="approve"></form>'
        '<script>document.getElementById("f").submit()</script>'
    )
    with other_origin(attack) as evil, page.expect_response(_decide_response) as posted:
        page.goto(evil)
    assert posted.value.status == 403
    assert posted.value.request.headers.get("origin") == evil.rstrip("/")
    decided, audit, review = decisions(project, review_id)
    assert decided is None and audit == [] and review.status == "pending"

    # The same reviewer, on the inbox's own page, still can.
    page.goto(f"{server.url}/reviews/{review_id}")
    expect(page.locator("form#decision")).to_be_visible()
    page.locator('form#decision textarea[name="reason"]').fill("duplicate of AP-10733")
    with page.expect_response(_decide_response) as rejected:
        page.locator('form#decision button[name=action][value="reject"]').click()
    assert rejected.value.status in (200, 303)
    decided, audit, _ = decisions(project, review_id)
    assert (decided.action, decided.reviewer, decided.reason) == (
        "reject",
        "alice",
        "duplicate of AP-10733",
    )
    assert len(audit) == 1
    page.context.close()


def test_a_reviewer_sees_only_their_queues(browser: Any, inbox: Inbox) -> None:
    project, server = inbox
    expect = _expect()
    review_id = project.review_id("invoice-KL-55012.txt")
    page = signed_in(browser, inbox, "carol")  # queue `claims`; the invoices wait in `payables`
    expect(page.locator("table#inbox tr[data-review-id]")).to_have_count(0)
    response = page.goto(f"{server.url}/reviews/{review_id}")
    assert response is not None and response.status in (403, 404)
    expect(page.locator("form#decision")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text("Kestrel")
    page.context.close()


def test_the_inbox_works_without_javascript(browser: Any, inbox: Inbox) -> None:
    """Every page works without JavaScript (htmx only enhances): sign in, open, approve."""
    project, server = inbox
    expect = _expect()
    review_id = project.review_id("invoice-BF-90211.txt")
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url + "/signin")
    page.locator("form#signin input[name=token]").fill(project.tokens["bob"])
    page.locator("form#signin button[type=submit], form#signin input[type=submit]").click()
    page.locator(f'table#inbox tr[data-review-id="{review_id}"] a.open-review').click()
    expect(page.locator("#document")).to_contain_text("Bluefin IT Services")
    with page.expect_response(_decide_response) as answered:
        page.locator('form#decision button[name=action][value="approve"]').click()
    assert answered.value.status in (200, 303)
    expect(page.locator("#decision")).to_contain_text("bob")
    decided, audit, _ = decisions(project, review_id)
    assert (decided.action, decided.reviewer, len(audit)) == ("approve", "bob", 1)
    context.close()
