"""The confidence gate: accept / review / reject bands, per-field thresholds for `Extract`,
missing confidence, and audit sampling that is repeatable per document."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel
from tests.pipelines import low_confidence

from handrail import (
    Check,
    Classify,
    Confidence,
    Draft,
    Extract,
    FakeModel,
    Gate,
    PipelineBuilder,
    Reply,
    ReviewReason,
    Runner,
    RunStatus,
    State,
)

from ._helpers import history, step


@pytest.mark.parametrize(
    ("confidence", "status", "steps"),
    [
        (0.95, "completed", ["category", "shout"]),
        (0.9, "completed", ["category", "shout"]),  # accept is inclusive
        (0.6, "needs_review", ["category"]),
        (0.2, "needs_review", ["category"]),  # reject is exclusive
        (0.1, "failed", ["category"]),
    ],
)
async def test_bands(confidence: float, status: str, steps: list[str]) -> None:
    record = await Runner(low_confidence.pipeline, model=low_confidence.model(confidence)).run("d")
    assert record.status.value == status
    assert [s.node for s in record.steps] == steps


async def test_a_review_says_which_threshold_and_by_how_much() -> None:
    record = await Runner(low_confidence.pipeline, model=low_confidence.model(0.6)).run("doc")

    assert history(record) == [("category", 1, "needs_review", "bug", ())]
    assert record.outputs == {}  # nothing flows downstream until a person decides
    review = record.review
    assert review is not None
    assert (review.node, review.target, review.output) == ("category", "category", "bug")
    assert review.confidence == Confidence(value=0.6, source="scripted")
    assert review.reasons == (
        ReviewReason(
            kind="low_confidence",
            message="confidence 0.60 < 0.9 (scripted)",
            value=0.6,
            threshold=0.9,
        ),
    )
    assert review.document_id == record.document_id
    assert review.status == "pending"


async def test_label_scores_give_a_classifier_its_confidence() -> None:
    scores = {"bug": 0.95, "refund": 0.04, "question": 0.01}
    model = FakeModel({"category": Reply("bug", label_scores=scores, source="logprobs")})
    record = await Runner(low_confidence.pipeline, model=model).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert step(record, "category").confidence == Confidence(value=0.95, source="logprobs")


async def test_missing_confidence_is_never_accepted() -> None:
    model = FakeModel({"category": Reply("bug")})
    record = await Runner(low_confidence.pipeline, model=model).run("doc")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="low_confidence",
            message="the model gave no confidence for this output; a gated node needs one",
            threshold=0.9,
        ),
    )


async def test_without_a_gate_no_confidence_is_needed() -> None:
    pipeline = PipelineBuilder("g").add(Classify("c", labels=["x", "y"], gate=None)).build()
    record = await Runner(pipeline, model=FakeModel({"c": Reply("x")})).run("doc")
    assert record.status is RunStatus.COMPLETED
    assert step(record, "c").confidence is None


async def test_free_text_with_a_gate_is_gated_on_its_checks() -> None:
    def polite(output: Any, state: State) -> bool:
        return "please" in output.lower()

    def signed(output: Any, state: State) -> bool:
        return output.endswith("Support")

    pipeline = (
        PipelineBuilder("d")
        .add(
            Draft(
                "reply",
                gate=Gate(accept=0.9),
                checks=[Check(polite, on_fail="warn"), Check(signed, on_fail="warn")],
            )
        )
        .build()
    )
    runner = Runner(pipeline, model=FakeModel({"reply": Reply("Please wait. Support")}))
    assert (await runner.run("a")).status is RunStatus.COMPLETED

    runner = Runner(pipeline, model=FakeModel({"reply": Reply("Wait. Support")}))
    record = await runner.run("a")
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert [r.message for r in record.review.reasons] == ["confidence 0.50 < 0.9 (checks)"]


# --- Extract: a threshold per field ------------------------------------------------------------


class Invoice(BaseModel):
    number: str
    total: float
    note: str | None = None


INVOICE = {"number": "INV-1", "total": 12.5}


def invoice_pipeline() -> Any:
    gate = Gate(accept=0.8, fields={"total": 0.95})
    return PipelineBuilder("x").add(Extract("invoice", Invoice, gate=gate)).build()


async def run_invoice(field_confidence: dict[str, float], **reply: Any) -> Any:
    model = FakeModel({"invoice": Reply(INVOICE, field_confidence=field_confidence, **reply)})
    return await Runner(invoice_pipeline(), model=model).run("doc")


async def test_every_required_field_above_its_threshold_is_accepted() -> None:
    record = await run_invoice({"number": 0.85, "total": 0.96, "note": 0.1})

    assert record.status is RunStatus.COMPLETED
    invoice = step(record, "invoice")
    # the step's confidence is its weakest required field; optional `note` does not count
    assert invoice.confidence == Confidence(value=0.85, source="scripted")
    assert invoice.field_confidence["note"] == Confidence(value=0.1, source="scripted")


async def test_each_required_field_below_its_threshold_is_a_reason() -> None:
    record = await run_invoice({"number": 0.7, "total": 0.9, "note": 0.99})

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="field_low_confidence",
            field="number",
            value=0.7,
            threshold=0.8,
            message="field `number` confidence 0.70 < 0.8 (scripted)",
        ),
        ReviewReason(
            kind="field_low_confidence",
            field="total",
            value=0.9,
            threshold=0.95,
            message="field `total` confidence 0.90 < 0.95 (scripted)",
        ),
    )
    assert dict(record.review.field_confidence)["total"].value == 0.9


async def test_an_optional_field_is_gated_only_when_named() -> None:
    gate = Gate(accept=0.8, fields={"note": 0.5})
    pipeline = PipelineBuilder("x").add(Extract("invoice", Invoice, gate=gate)).build()
    fields = {"number": 0.9, "total": 0.9, "note": 0.2}
    model = FakeModel({"invoice": Reply(INVOICE, field_confidence=fields)})
    record = await Runner(pipeline, model=model).run("doc")

    assert record.review is not None
    assert [r.field for r in record.review.reasons] == ["note"]


async def test_a_required_field_without_confidence_is_sent_to_review() -> None:
    record = await run_invoice({"number": 0.9})

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="field_low_confidence",
            field="total",
            threshold=0.95,
            message="the model gave no confidence for field `total`; a gated field needs one",
        ),
    )


async def test_an_extraction_without_any_confidence_is_sent_to_review() -> None:
    record = await run_invoice({})
    assert record.review is not None
    assert [r.kind for r in record.review.reasons] == ["low_confidence"]


async def test_an_overall_confidence_gates_an_extraction_without_field_scores() -> None:
    assert (await run_invoice({}, confidence=0.9)).status is RunStatus.COMPLETED
    record = await run_invoice({}, confidence=0.5)
    assert record.review is not None
    assert [r.message for r in record.review.reasons] == ["confidence 0.50 < 0.8 (scripted)"]


# --- audit sampling ----------------------------------------------------------------------------


def audited(rate: float) -> Any:
    return (
        PipelineBuilder("audit")
        .add(Classify("c", labels=["x", "y"], gate=Gate(accept=0.5, audit=rate)))
        .build()
    )


def sure() -> FakeModel:
    return FakeModel({"c": Reply("x", confidence=0.99)})


async def test_audit_rate_one_reviews_every_accepted_output() -> None:
    record = await Runner(audited(1.0), model=sure()).run("doc")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="audit", value=1.0, message="picked for a quality audit (100% of accepted outputs)"
        ),
    )


async def test_audit_rate_zero_reviews_nothing() -> None:
    records = await Runner(audited(0.0), model=sure()).run_many([f"doc {i}" for i in range(50)])
    assert {r.status for r in records} == {RunStatus.COMPLETED}


async def test_audit_picks_a_share_of_documents_and_always_the_same_ones() -> None:
    documents = [f"document number {i}" for i in range(300)]
    first = await Runner(audited(0.3), model=sure()).run_many(documents)
    again = await Runner(audited(0.3), model=sure()).run_many(documents)

    picked = [
        d for d, r in zip(documents, first, strict=True) if r.status is RunStatus.NEEDS_REVIEW
    ]
    assert [d for d, r in zip(documents, again, strict=True) if r.review] == picked
    assert 0.2 * len(documents) < len(picked) < 0.4 * len(documents)
    for record in first:
        if record.review:
            assert [r.kind for r in record.review.reasons] == ["audit"]


async def test_audit_does_not_add_a_reason_to_an_output_already_under_review() -> None:
    model = FakeModel({"c": Reply("x", confidence=0.3)})
    record = await Runner(audited(1.0), model=model).run("doc")
    assert record.review is not None
    assert [r.kind for r in record.review.reasons] == ["low_confidence"]
