"""A PDF's review page in a real browser (Chromium with JavaScript off) against a live `handrail
serve`: the PDF read by `handrail run` (its text layer, its words' boxes, its sha256), the page
image loaded from the server, and each value's box drawn over the image where the word is."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser.live import Project, Server
from tests.review import paged

from .test_inbox import TIMEOUT_MS, _expect

TARGET = str(Path(paged.__file__)) + ":pipeline"


@pytest.fixture(scope="module")
def pdf_inbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Project, Server]]:
    """invoice.pdf (two pages: vendor and number on page 1, the total on page 2) run by
    `handrail run` into a SQLite file, reviewer alice, and `handrail serve` on it."""
    project = Project(folder=Path(tmp_path_factory.mktemp("pdf-inbox")), target=TARGET)
    (project.folder / "documents").mkdir()
    paged.draw_pdf(project.folder / "documents" / "invoice.pdf")
    done = project.handrail("run", TARGET, "documents")
    assert done.code == 0, f"handrail run failed:\n{done.stdout}\n{done.stderr}"
    project.add_reviewer("alice", ["default"])
    server = Server(project)
    try:
        yield project, server
    finally:
        server.stop()


def test_a_pdf_page_with_the_values_boxes_over_it_without_javascript(
    browser: Any, pdf_inbox: tuple[Project, Server]
) -> None:
    project, server = pdf_inbox
    expect = _expect()
    review_id = project.review_id("invoice.pdf")
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1360, "height": 1000}
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(server.url + "/signin")
    page.locator("form#signin input[name=token]").fill(project.tokens["alice"])
    page.locator("form#signin button[type=submit]").click()
    expect(page.locator("table#inbox")).to_be_visible()
    with page.expect_response(re.compile(r"/pages/2\.png$")) as image_answer:
        page.goto(f"{server.url}/reviews/{review_id}")
    assert image_answer.value.status == 200
    assert image_answer.value.header_value("content-type") == "image/png"
    expect(page.locator("#value-pages")).to_contain_text("Total: page 2")
    image = page.locator("#page-view img")
    expect(image).to_be_visible()
    frame = image.bounding_box()
    assert frame is not None and frame["width"] > 200
    # drawn where the word is: the box's place on the image is the word's place on the page
    # (the PDF loader's boxes, from the text layer; within 2 pt of reportlab's own metrics)
    total = page.locator('#page-view rect[data-path="total"]')
    expect(total).to_have_count(1)
    drawn = total.bounding_box()
    assert drawn is not None
    left, top, right, bottom = paged.page_content(paged.PAGES[1]).words[-1].box
    scale = frame["width"] / paged.WIDTH
    assert abs(drawn["x"] - frame["x"] - left * scale) < 2 * scale + 1
    assert abs(drawn["x"] + drawn["width"] - frame["x"] - right * scale) < 2 * scale + 1
    assert frame["y"] + (top - 4) * scale < drawn["y"] + drawn["height"] / 2
    assert drawn["y"] + drawn["height"] / 2 < frame["y"] + (bottom + 4) * scale

    # page 1 through its link, still without JavaScript: the vendor's four words
    page.locator('nav.page-links a[href$="?page=1#page-view"]').click()
    expect(page.locator("#page-view")).to_have_attribute("data-page", "1")
    expect(page.locator('#page-view rect[data-path="vendor"]')).to_have_count(4)
    expect(page.locator('#page-view rect[data-path="number"]')).to_have_count(1)
    context.close()
