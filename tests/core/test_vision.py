"""`Extract(..., images=...)`: which pages a node asks a model to see, how each attempt records the
pages the model was shown, and that pipelines without images keep their version and run ids."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from handrail import (
    Classify,
    Document,
    Extract,
    FakeModel,
    Gate,
    Page,
    PipelineBuilder,
    Reply,
    Runner,
    RunStatus,
)
from handrail.core.model import ModelRequest, ModelResponse
from handrail.core.pipeline import Pipeline
from handrail.exceptions import GraphSetupError

from ._helpers import attempts, step

TEXT = "Supplier: ACME\nTotal: 12.50\n"


class Invoice(BaseModel):
    supplier: str
    total: float


def paged(pages: int) -> Document:
    """A document with `pages` pages of text, as a PDF loader makes it."""
    texts = [f"Supplier: ACME page {n}\nTotal: 12.50" for n in range(1, pages + 1)]
    text = "\n\n".join(texts)
    starts = [sum(len(t) + 2 for t in texts[:i]) for i in range(pages)]
    return Document(
        text=text,
        id="invoice.pdf",
        source="invoice.pdf",
        media_type="application/pdf",
        pages=tuple(
            Page(
                number=n + 1,
                width=612,
                height=792,
                start=starts[n],
                end=starts[n] + len(texts[n]),
                label=f"invoice.pdf, page {n + 1}",
            )
            for n in range(pages)
        ),
    )


def pipeline(images: Any = False) -> Pipeline:
    builder = PipelineBuilder("vision")
    builder.add(Classify("kind", labels=["invoice", "other"]))
    builder.add(Extract("fields", Invoice, gate=Gate(accept=0.9), images=images))
    builder.edge("kind", "fields", when="invoice")
    return builder.build()


def run_pipeline(images: Any = False) -> Pipeline:
    return (
        PipelineBuilder("vision")
        .add(Classify("kind", labels=["invoice", "other"], gate=None))
        .add(Extract("fields", Invoice, gate=Gate(accept=0.9), images=images), after="kind")
        .build()
    )


# --- the declaration --------------------------------------------------------------------------


def test_images_true_is_four_pages_a_number_is_that_many_and_false_is_none() -> None:
    assert Extract("x", Invoice, images=True).images == 4
    assert Extract("x", Invoice, images=2).images == 2
    assert Extract("x", Invoice, images=False).images == 0
    assert Extract("x", Invoice).images == 0


@pytest.mark.parametrize("bad", [-1, 2.5, "2", None])
def test_an_images_value_that_is_not_a_page_count_is_refused_when_built(bad: Any) -> None:
    with pytest.raises(GraphSetupError) as e:
        Extract("fields", Invoice, images=bad)
    assert str(e.value) == (
        f"Extract `fields`: images={bad!r} is not a page count; use images=True (up to 4 "
        "pages), a number of pages such as images=2, or False"
    )


def test_a_pipeline_without_images_keeps_its_version_and_run_ids() -> None:
    # Pinned before `images=` existed (commit 70eb83d): adding the option moved no run id.
    text_only = pipeline()
    assert text_only.fingerprint == "e32e9a34b6c8"
    assert Runner(text_only, model=FakeModel()).run_id_for(TEXT) == "run-2c43a0ae4c504d11"
    assert pipeline(images=0).fingerprint == "e32e9a34b6c8"


def test_images_change_the_version_and_true_is_the_same_as_four() -> None:
    two, four, true = pipeline(images=2), pipeline(images=4), pipeline(images=True)
    assert len({pipeline().fingerprint, two.fingerprint, four.fingerprint}) == 3
    assert true.fingerprint == four.fingerprint


# --- what is asked and recorded -----------------------------------------------------------------


async def test_the_first_pages_are_asked_for_and_recorded_on_the_attempt() -> None:
    model = FakeModel()
    document = paged(3)
    record = await Runner(run_pipeline(images=2), model=model).run(document)
    assert record.status == RunStatus.COMPLETED
    [call] = model.calls_for("fields")
    assert call.images == (1, 2)
    assert call.document == document
    assert [a.images for a in step(record, "fields").attempts] == [(1, 2)]
    # only the node that declares images asks for them
    assert model.calls_for("kind")[0].images == ()
    assert [a.images for a in step(record, "kind").attempts] == [()]


async def test_a_limit_above_the_page_count_asks_for_every_page() -> None:
    model = FakeModel()
    record = await Runner(run_pipeline(images=True), model=model).run(paged(2))
    assert model.calls_for("fields")[0].images == (1, 2)
    assert step(record, "fields").attempts[0].images == (1, 2)


async def test_a_document_without_pages_is_read_as_text_without_an_error() -> None:
    model = FakeModel()
    record = await Runner(run_pipeline(images=2), model=model).run(TEXT)
    assert record.status == RunStatus.COMPLETED
    assert record.outputs["fields"] == Invoice(supplier="ACME", total=12.5)
    assert model.calls_for("fields")[0].images == ()
    assert step(record, "fields").attempts[0].images == ()
    assert record.warnings == ()


async def test_a_reask_shows_the_pages_again_and_records_them_on_each_attempt() -> None:
    model = FakeModel(
        {
            "fields": [
                Reply({"supplier": "ACME"}, confidence=0.95),  # no total: re-asked
                Reply({"supplier": "ACME", "total": 12.5}, confidence=0.95),
            ]
        }
    )
    record = await Runner(run_pipeline(images=1), model=model).run(paged(3))
    fields = step(record, "fields")
    assert attempts(fields) == [("call", "invalid_output"), ("reask", "ok")]
    assert [a.images for a in fields.attempts] == [(1,), (1,)]
    assert [c.images for c in model.calls_for("fields")] == [(1,), (1,)]


class _HalfBlind:
    """A model that could render only the first page it was asked for, and says so."""

    name = "half-blind"

    async def generate(self, request: ModelRequest) -> ModelResponse:
        if request.kind == "classify":
            return ModelResponse(output="invoice")
        shown = request.images[:1]
        return ModelResponse(
            output={"supplier": "ACME", "total": 12.5},
            images_sent=shown,
            warnings=(f"page {request.images[1]} could not be rendered",),
        )


async def test_pages_a_model_could_not_show_are_missing_from_the_record_with_a_warning() -> None:
    record = await Runner(run_pipeline(images=2), model=_HalfBlind()).run(paged(3))
    [attempt] = step(record, "fields").attempts
    assert attempt.images == (1,)
    assert attempt.warnings == ("page 2 could not be rendered",)
