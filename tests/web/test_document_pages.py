"""The review page of a paged document (a real PDF drawn with reportlab, and an e-mail carrying
it): on which page each value is, the page's image with the values' word boxes drawn over it
(an SVG in the page's units: no script, no inline style), the e-mail's parts, the file gone or
changed; and the page image's route: signed in, the reviewer's queue only, the run's own file
only, page numbers checked."""

from __future__ import annotations

import html
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.review import paged
from tests.review.paged import draw_pdf, email_document, pdf_document, write_email

from handrail.review import ReviewService

from .conftest import client_for, element_text, run_documents, sign_in

PAGED = str(Path(paged.__file__))
PNG = b"\x89PNG\r\n\x1a\n"


@dataclass
class Paged:
    """A folder with invoice.pdf and mail.eml, their runs waiting for review, and clients."""

    folder: Path
    service: ReviewService
    pdf: str
    """The review of invoice.pdf."""
    email: str
    """The review of mail.eml."""
    ana: TestClient
    """Signed in, reviews their queue."""
    bob: TestClient
    """Signed in, reviews another queue."""


@pytest.fixture
def docs(tmp_path: Path) -> Iterator[Paged]:
    write_email(tmp_path / "mail.eml", draw_pdf(tmp_path / "invoice.pdf"))
    documents = [pdf_document(tmp_path / "invoice.pdf"), email_document(tmp_path / "mail.eml")]
    db = f"sqlite:///{tmp_path / 'paged.db'}"
    run_documents(db, paged.pipeline, documents)
    service = ReviewService(db, target=PAGED, folder=tmp_path)
    reviews = {view.request.document_id: view.request for view in service.reviews()}
    queue = reviews["invoice.pdf"].queue
    clients = []
    for name, queues in (("ana", [queue]), ("bob", ["elsewhere"])):
        _, token = service.add_reviewer(name, queues=queues)
        client = client_for(service)
        assert sign_in(client, token).status_code == 303
        clients.append(client)
    yield Paged(
        folder=tmp_path,
        service=service,
        pdf=reviews["invoice.pdf"].review_id,
        email=reviews["mail.eml"].review_id,
        ana=clients[0],
        bob=clients[1],
    )
    service.close()


def rects(page: str) -> list[dict[str, str]]:
    """The value boxes drawn over the page image: each <rect>'s attributes."""
    found = re.findall(r'<rect class="box[^"]*"([^>]*)>', page)
    return [dict(re.findall(r'([\w-]+)="([^"]*)"', attrs)) for attrs in found]


def test_the_review_page_says_on_which_page_each_value_is_and_shows_that_page(
    docs: Paged,
) -> None:
    page = docs.ana.get(f"/reviews/{docs.pdf}").text
    assert element_text(page, "value-pages") == "Vendor: page 1 Number: page 1 Total: page 2"
    assert f'Total:</span> page <a href="/reviews/{docs.pdf}?page=2#page-view">2</a>' in page
    # the flagged total (confidence 0.4 < 0.8) decides which page is shown first
    shown = re.search(r'<figure id="page-view" class="page-view" data-page="(\d+)"', page)
    assert shown is not None and shown.group(1) == "2"
    assert f'<img src="/reviews/{docs.pdf}/pages/2.png" alt="page 2 of the document"' in page
    assert 'viewBox="0 0 612.0 792.0" preserveAspectRatio="none"' in page
    (total,) = rects(page)
    left, top, right, bottom = paged.page_content(paged.PAGES[1]).words[-1].box  # "402.00"
    assert total["data-path"] == "total"
    assert (float(total["x"]), float(total["y"])) == (left, top)
    assert float(total["width"]) == pytest.approx(right - left, abs=0.05)
    assert float(total["height"]) == pytest.approx(bottom - top, abs=0.05)
    assert "flagged" in re.search(r'<rect class="([^"]*)" data-path="total"', page).group(1)
    # each field of the form links to its page
    assert f'class="where-page" href="/reviews/{docs.pdf}?page=2#page-view">page 2<' in page
    assert 'aria-current="page"' in page and " style=" not in page and "<style" not in page


def test_another_page_is_one_link_away_without_javascript(docs: Paged) -> None:
    page = docs.ana.get(f"/reviews/{docs.pdf}?page=1").text
    assert f'src="/reviews/{docs.pdf}/pages/1.png"' in page
    words = paged.page_content(paged.PAGES[0]).words
    drawn = [(r["data-path"], float(r["x"]), float(r["y"])) for r in rects(page)]
    # "HARBOUR & FINCH LTD." is four words: four boxes; the number one
    assert drawn == [("vendor", w.box[0], w.box[1]) for w in words[:4]] + [
        ("number", words[-1].box[0], words[-1].box[1])
    ]
    start = page.index('<nav class="page-links"')
    nav = page[start : page.index("</nav>", start)]
    assert re.findall(r'\?page=(\d)#page-view"( aria-current="page")?', nav) == [
        ("1", ' aria-current="page"'),
        ("2", ""),
    ]
    # a page the document does not have shows the default one; not a number is refused
    assert 'data-page="2"' in docs.ana.get(f"/reviews/{docs.pdf}?page=9").text
    assert docs.ana.get(f"/reviews/{docs.pdf}?page=0").status_code == 400
    assert docs.ana.get(f"/reviews/{docs.pdf}?page=x").status_code == 400


def test_the_page_image_is_the_runs_own_file_rendered(docs: Paged) -> None:
    from PIL import Image

    response = docs.ana.get(f"/reviews/{docs.pdf}/pages/2.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "no-store"  # a document: in no cache
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content.startswith(PNG)
    image = Image.open(io.BytesIO(response.content))
    assert image.size == (1237, 1600)  # US Letter, longest side 1600 px
    # the total's box, scaled to the image, holds ink (the drawn text) and its margin none
    left, top, right, bottom = paged.page_content(paged.PAGES[1]).words[-1].box
    scale = 1600 / 792
    inside = image.convert("L").crop(
        (int(left * scale), int(top * scale), int(right * scale), int(bottom * scale))
    )
    assert inside.getextrema()[0] < 100
    margin = image.convert("L").crop((0, 0, int(60 * scale), int(60 * scale)))
    assert margin.getextrema()[0] > 250


def test_the_page_image_needs_a_session_the_queue_and_a_page_the_document_has(
    docs: Paged,
) -> None:
    anonymous = client_for(docs.service)
    response = anonymous.get(f"/reviews/{docs.pdf}/pages/1.png")
    assert (response.status_code, response.headers["location"]) == (303, "/signin")
    refused = docs.bob.get(f"/reviews/{docs.pdf}/pages/1.png")
    assert refused.status_code == 403 and not refused.content.startswith(PNG)
    assert "bob does not review queue" in html.unescape(refused.text)
    for number, status in (("3", 404), ("0", 400), ("-1", 400), ("x", 400), ("1.5", 400)):
        answer = docs.ana.get(f"/reviews/{docs.pdf}/pages/{number}.png")
        assert answer.status_code == status, number
        assert not answer.content.startswith(PNG)
    assert "has no page 3 (it has 2)" in docs.ana.get(f"/reviews/{docs.pdf}/pages/3.png").text
    assert docs.ana.get("/reviews/rv-nope/pages/1.png").status_code == 404
    # the address names a review, never a file: no path reaches the route
    assert docs.ana.get(f"/reviews/{docs.pdf}/pages/..%2f..%2fetc%2fpasswd.png").status_code in (
        400,
        404,
    )
    assert docs.ana.get(f"/reviews/{docs.pdf}/pages/1.png?source=/etc/passwd").content.startswith(
        PNG
    )  # a query is ignored: the file is the run's


def test_a_file_gone_or_changed_is_said_and_the_text_still_shown(docs: Paged) -> None:
    pdf = docs.folder / "invoice.pdf"
    original = pdf.read_bytes()
    pdf.write_bytes(original + b"% edited after the run\n")
    page = docs.ana.get(f"/reviews/{docs.pdf}").text
    assert element_text(page, "page-images-problem").startswith(
        "`invoice.pdf` changed since the run read it (its sha256 differs)"
    )
    assert "/pages/2.png" not in page and "Total due GBP <mark" in page  # the text it read
    assert element_text(page, "value-pages") == "Vendor: page 1 Number: page 1 Total: page 2"
    answer = docs.ana.get(f"/reviews/{docs.pdf}/pages/2.png")
    assert answer.status_code == 404 and "changed since the run read it" in answer.text
    pdf.unlink()
    page = docs.ana.get(f"/reviews/{docs.pdf}").text
    assert element_text(page, "page-images-problem").startswith("`invoice.pdf` is gone")
    assert docs.ana.get(f"/reviews/{docs.pdf}/pages/1.png").status_code == 404
    pdf.write_bytes(original)  # put back: shown again
    assert docs.ana.get(f"/reviews/{docs.pdf}/pages/1.png").content.startswith(PNG)


def test_an_email_lists_its_parts_and_shows_its_attachments_pages(docs: Paged) -> None:
    page = docs.ana.get(f"/reviews/{docs.email}").text
    parts = element_text(page, "parts")
    assert parts == (
        "Parts body text/plain invoice.pdf application/pdf · pages 1 , 2 "
        "photo.heic image/heic not read: unsupported file type `.heic`"
    )
    assert "· pages <a" in page and "1</a>, <a" in page  # as it reads: "pages 1, 2"
    assert element_text(page, "document-warnings") == (
        "photo.heic: could not be read: unsupported file type `.heic`"
    )
    assert "<th>Subject</th><td>Invoice HF-2291</td>" in page
    assert 'alt="invoice.pdf, page 2 of the document"' in page
    image = docs.ana.get(f"/reviews/{docs.email}/pages/2.png")  # from the .eml's attachment
    assert image.status_code == 200 and image.content.startswith(PNG)
    assert image.content == docs.ana.get(f"/reviews/{docs.pdf}/pages/2.png").content


def test_the_api_says_where_the_values_are(docs: Paged) -> None:
    token = docs.service.add_reviewer("api", queues=["*"])[1]
    api = client_for(docs.service)
    found = api.get(f"/api/v1/reviews/{docs.pdf}", headers={"Authorization": f"Bearer {token}"})
    document = found.json()["document"]
    assert (document["media_type"], document["pages"]) == ("application/pdf", 2)
    assert document["images"] is None
    places = {p["path"]: p for p in document["places"]}
    assert places["total"]["page"] == 2
    assert places["total"]["boxes"] == [list(paged.page_content(paged.PAGES[1]).words[-1].box)]
    email = api.get(f"/api/v1/reviews/{docs.email}", headers={"Authorization": f"Bearer {token}"})
    assert [p["name"] for p in email.json()["document"]["parts"]] == [
        "body",
        "invoice.pdf",
        "photo.heic",
    ]
