"""A real Chromium (Debian's, driven by Playwright's Python package) and a live `handrail serve`.

Without a browser the tests are skipped on a workstation and FAIL in CI (`CI` set): the inbox's
browser tests are part of what CI checks, never silently left out.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.live import Project, Server, chromium, missing_browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope, not session: Playwright's sync API keeps an event loop running in this
    # thread while it is started, and every later test calling asyncio.run() would fail.
    why = missing_browser()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests cannot run in CI: {why}", pytrace=False)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Server]]:
    """The fixture's documents run into a SQLite file (every one waits for review), reviewers
    alice and bob on queue `payables`, carol on another queue, and `handrail serve` on them."""
    project = Project(folder=Path(tmp_path_factory.mktemp("inbox")))
    project.run_documents()
    project.add_reviewer("alice", ["payables"])
    project.add_reviewer("bob", ["payables"])
    project.add_reviewer("carol", ["claims"])
    server = Server(project)
    try:
        yield project, server
    finally:
        server.stop()
