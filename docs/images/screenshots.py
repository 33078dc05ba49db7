#!/usr/bin/env python
"""Take the review inbox's screenshots for the README and docs/review-inbox.md.

    python docs/images/screenshots.py        # writes docs/images/inbox.png, review.png and
                                             # review-pdf.png

What it shows is real: the `inbox_invoice` fixture's invoices and credit note (tests/pipelines)
run into a SQLite file in a temporary folder, two reviewers added with `handrail reviewers add`,
`handrail serve` started on a free loopback port, and Debian's Chromium (or $HANDRAIL_CHROMIUM)
driven by Playwright: bob claims one invoice, alice looks at the inbox and opens another.
review-pdf.png: the invoice example's two-page PDF (14_brightwire_meeting_room_rewire.pdf, over
the approval limit) run by `handrail run` with the fake model, its review page with page 1 and
the values boxed on it.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.browser.live import Project, Server, chromium, missing_browser  # noqa: E402

VIEWPORT = {"width": 1360, "height": 760}
REVIEW_VIEWPORT = {"width": 1360, "height": 1040}
EXAMPLE = ROOT / "examples" / "invoice_intake"
PDF = "14_brightwire_meeting_room_rewire.pdf"


def sign_in(browser: Any, server: Server, token: str) -> Any:
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    page = context.new_page()
    page.goto(server.url + "/signin")
    page.locator("form#signin input[name=token]").fill(token)
    page.locator("form#signin button[type=submit], form#signin input[type=submit]").click()
    page.locator("table#inbox").wait_for()
    return page


def main() -> int:
    why = missing_browser()
    if why is not None:
        print(f"screenshots: {why}", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="handrail-screenshots-") as folder:
        project = Project(folder=Path(folder))
        project.run_documents()
        project.add_reviewer("alice", ["payables"], lead=True)
        project.add_reviewer("bob", ["payables"])
        server = Server(project)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium(), headless=True)
                bob = sign_in(browser, server, project.tokens["bob"])
                claimed = project.review_id("invoice-KL-55012.txt")
                bob.goto(f"{server.url}/reviews/{claimed}")
                bob.locator("form#claim button").click()
                bob.locator("form#release").wait_for()

                alice = sign_in(browser, server, project.tokens["alice"])
                alice.screenshot(path=str(HERE / "inbox.png"))
                review = project.review_id("invoice-HF-2291.txt")
                alice.goto(f"{server.url}/reviews/{review}")
                alice.locator("form#decision").wait_for()
                alice.set_viewport_size(REVIEW_VIEWPORT)  # the document beside the form's top
                alice.screenshot(path=str(HERE / "review.png"))
                browser.close()
        finally:
            server.stop()
    pdf_review(sync_playwright)
    print(f"wrote {HERE / 'inbox.png'}, {HERE / 'review.png'} and {HERE / 'review-pdf.png'}")
    return 0


def pdf_review(sync_playwright: Any) -> None:
    with tempfile.TemporaryDirectory(prefix="handrail-screenshots-") as folder:
        project = Project(folder=Path(folder), target=f"{EXAMPLE / 'pipeline.py'}:pipeline")
        (project.folder / "documents").mkdir()
        shutil.copy(EXAMPLE / "documents" / PDF, project.folder / "documents" / PDF)
        done = project.handrail("run", project.target, "documents", "--model", "fake")
        assert done.code == 0, f"handrail run failed:\n{done.stdout}\n{done.stderr}"
        project.add_reviewer("alice", ["default"])
        server = Server(project)
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium(), headless=True)
                alice = sign_in(browser, server, project.tokens["alice"])
                alice.goto(f"{server.url}/reviews/{project.review_id(PDF)}?page=1#page-view")
                alice.locator("#page-view img").wait_for()
                alice.set_viewport_size(REVIEW_VIEWPORT)
                alice.screenshot(path=str(HERE / "review-pdf.png"))
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
