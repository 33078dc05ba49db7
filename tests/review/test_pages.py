"""A review's pages: the file the run read is read again only while it is the same file (its
sha256), a regular file within the size limit, at the path the run recorded (relative to the
service's folder); pages and parts survive the store; the size of a stored paged run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path

import pytest
from tests.review import paged
from tests.review.paged import draw_pdf, email_document, pdf_document, write_email

from handrail import Document
from handrail.core.records import RunRecord
from handrail.durable import DurableRunner, SqlStore
from handrail.durable.serialize import dump_run
from handrail.exceptions import InputError, NotAllowed, ReviewNotFound
from handrail.review import ReviewService, sources
from handrail.review.sources import images_problem, source_file

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def pdf(tmp_path: Path) -> Document:
    draw_pdf(tmp_path / "invoice.pdf")
    return pdf_document(tmp_path / "invoice.pdf")


def test_the_source_is_found_relative_to_the_folder_and_checked(
    pdf: Document, tmp_path: Path
) -> None:
    assert source_file(pdf, tmp_path) == (tmp_path / "invoice.pdf").resolve()
    assert images_problem(pdf, tmp_path) is None
    absolute = dataclasses.replace(pdf, source=str(tmp_path / "invoice.pdf"))
    assert source_file(absolute, "/nowhere") == (tmp_path / "invoice.pdf").resolve()


def test_a_file_gone_changed_or_never_there_is_a_reason_not_an_image(
    pdf: Document, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match=r"^`invoice.pdf` is gone \(nothing readable at "):
        source_file(pdf, tmp_path / "elsewhere")
    (tmp_path / "invoice.pdf").write_bytes((tmp_path / "invoice.pdf").read_bytes() + b"\n")
    problem = images_problem(pdf, tmp_path)
    assert problem == (
        "`invoice.pdf` changed since the run read it (its sha256 differs): its pages now are "
        "not the ones the run read, so they are not shown; the text below is what the run read"
    )
    typed = dataclasses.replace(pdf, source=None)
    assert "was not read from a file" in str(images_problem(typed, tmp_path))
    unhashed = dataclasses.replace(pdf, metadata={})
    assert "did not record the sha256 of `invoice.pdf`" in str(images_problem(unhashed, tmp_path))
    assert images_problem(Document(text="no pages"), tmp_path) is None


def test_only_a_regular_file_within_the_limit_is_read(
    pdf: Document, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    os.symlink(tmp_path, folder / "invoice.pdf")  # a directory where the file was
    with pytest.raises(InputError, match="is not a regular file any more"):
        source_file(pdf, folder)
    monkeypatch.setattr(sources, "MAX_SOURCE_BYTES", 1000)
    with pytest.raises(InputError, match=r"over the 0 MiB a review page reads again"):
        source_file(pdf, tmp_path)


def test_pages_and_parts_survive_the_store(tmp_path: Path) -> None:
    write_email(tmp_path / "mail.eml", draw_pdf(tmp_path / "invoice.pdf"))
    for document in (pdf_document(tmp_path / "invoice.pdf"), email_document(tmp_path / "mail.eml")):
        db = f"sqlite:///{tmp_path / (document.id + '.db')}"
        (record,) = _run(db, [document])
        with SqlStore(db, read_only=True) as store:
            stored = store.get_run(record.run_id)
        assert stored is not None and stored.document == document
        assert stored.document.pages[0].words[0] == document.pages[0].words[0]
        assert stored.document.find("HF-2291") == document.find("HF-2291")


def test_the_service_renders_a_page_of_the_runs_own_file(tmp_path: Path) -> None:
    draw_pdf(tmp_path / "invoice.pdf")
    pdf = pdf_document(tmp_path / "invoice.pdf")
    db = f"sqlite:///{tmp_path / 'paged.db'}"
    _run(db, [pdf])
    with ReviewService(db, folder=tmp_path) as service:
        (view,) = service.reviews()
        review_id = view.request.review_id
        ana, _ = service.add_reviewer("ana", queues=[view.request.queue])
        bob, _ = service.add_reviewer("bob", queues=["elsewhere"])
        image = service.page_image(review_id, 2, ana)
        assert image.data.startswith(PNG) and (image.width, image.height) == (1237, 1600)
        assert service.page_image(review_id, 2, ana) is image  # kept while the file is the same
        with pytest.raises(NotAllowed):
            service.page_image(review_id, 1, bob)
        for missing in (0, 3):
            with pytest.raises(ReviewNotFound, match=f"has no page {missing} \\(it has 2\\)"):
                service.page_image(review_id, missing, ana)
        with pytest.raises(ReviewNotFound):
            service.page_image("rv-nope", 1, ana)
        (tmp_path / "invoice.pdf").unlink()
        with pytest.raises(InputError, match="is gone"):
            service.page_image(review_id, 2, ana)  # checked every time, kept image or not
        detail = service.review(review_id, ana)
        assert detail.document is not None and "is gone" in str(detail.document.images)
        assert detail.document.pages_of("total") == (2,)


def test_how_big_a_stored_run_of_a_ten_page_pdf_is(tmp_path: Path) -> None:
    """A 10-page invoice PDF (41 lines of 8 words a page, as dense as real invoices) keeps its
    words' boxes in the run's record: about 100 bytes a word, 0.3 MB here (measured: 313 KB;
    the durable runner keeps the document once more as the workflow's input). The bound
    catches a record that starts keeping things twice."""
    lines = [f"Line {i:02d} office chair model X{i} 189.00 GBP" for i in range(40)]
    pages = [[f"Invoice HF-2291 page {n}", *lines] for n in range(1, 11)]
    draw_pdf(tmp_path / "ten.pdf", pages)
    document = pdf_document(tmp_path / "ten.pdf", pages)
    (record,) = _run(f"sqlite:///{tmp_path / 'ten.db'}", [document])
    size = len(json.dumps(dump_run(record)))
    assert sum(len(page.words) for page in document.pages) == 10 * (4 + 40 * 8)
    assert size < 450_000, size


def _run(db: str, documents: list[Document]) -> list[RunRecord]:
    async def go() -> list[RunRecord]:
        async with DurableRunner(paged.pipeline, db=db, model=paged.model) as runner:
            return list(await runner.run_many(documents))

    records = asyncio.run(go())
    assert [r.status.value for r in records] == ["needs_review"] * len(documents)
    return records
