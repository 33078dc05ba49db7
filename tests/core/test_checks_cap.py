"""Check caps (DESIGN §4, checks as a confidence source): a failed check with `cap` lowers the
node's confidence, and for `Extract` the confidence of the fields its result names, before the
gate looks; a passing check never raises a number, and a missing number is never invented."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from handrail import (
    Check,
    CheckResult,
    Classify,
    Confidence,
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

from ._helpers import step


class Invoice(BaseModel):
    number: str
    total: float
    subtotal: float | None = None
    note: str | None = None


INVOICE = {"number": "INV-1", "total": 12.5, "subtotal": 10.0, "note": None}
SURE = {"number": 0.95, "total": 0.95, "subtotal": 0.95, "note": 0.9}


def total_is_subtotal(output: Any, state: State) -> CheckResult:
    if output.total == output.subtotal:
        return CheckResult(passed=True, fields=("total", "subtotal"))
    return CheckResult(
        passed=False,
        message=f"total {output.total:g} != subtotal {output.subtotal:g}",
        fields=("total", "subtotal"),
    )


async def run(*checks: Check, fields: dict[str, float] | None = None, **gate: Any) -> Any:
    pipeline = (
        PipelineBuilder("x")
        .add(Extract("invoice", Invoice, checks=checks, gate=Gate(**gate)))
        .build()
    )
    reply = Reply(INVOICE, field_confidence=SURE if fields is None else fields)
    return await Runner(pipeline, model=FakeModel({"invoice": reply})).run("doc")


async def test_a_failed_check_caps_the_fields_it_names_and_the_gate_says_which_check() -> None:
    record = await run(Check(total_is_subtotal, on_fail="warn", cap=0.4))

    invoice = step(record, "invoice")
    capped = Confidence(value=0.4, source="checks")
    assert dict(invoice.field_confidence) == {
        "number": Confidence(value=0.95, source="scripted"),
        "total": capped,
        "subtotal": capped,
        "note": Confidence(value=0.9, source="scripted"),
    }
    assert invoice.confidence == capped
    assert invoice.checks[0].fields == ("total", "subtotal")
    # A warning alone would not stop the run; the capped fields fall under the gate. The
    # optional `subtotal` is gated too, because a check disagreed with it.
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="field_low_confidence",
            field="total",
            value=0.4,
            threshold=0.8,
            check="total_is_subtotal",
            message="field `total` confidence 0.40 < 0.8 (capped by check `total_is_subtotal`)",
        ),
        ReviewReason(
            kind="field_low_confidence",
            field="subtotal",
            value=0.4,
            threshold=0.8,
            check="total_is_subtotal",
            message="field `subtotal` confidence 0.40 < 0.8 (capped by check `total_is_subtotal`)",
        ),
    )


async def test_with_on_fail_review_the_check_and_its_fields_are_all_reasons() -> None:
    record = await run(Check(total_is_subtotal, on_fail="review", cap=0.4))

    assert record.review is not None
    assert [(r.kind, r.field, r.check) for r in record.review.reasons] == [
        ("check", None, "total_is_subtotal"),
        ("field_low_confidence", "total", "total_is_subtotal"),
        ("field_low_confidence", "subtotal", "total_is_subtotal"),
    ]
    assert record.review.reasons[0].message == "total 12.5 != subtotal 10"


async def test_a_passing_check_never_raises_confidence() -> None:
    agree = {**INVOICE, "subtotal": 12.5}
    pipeline = (
        PipelineBuilder("x")
        .add(Extract("invoice", Invoice, checks=[Check(total_is_subtotal, cap=0.4)]))
        .build()
    )
    fields = {"number": 0.9, "total": 0.6, "subtotal": 0.6}
    model = FakeModel({"invoice": Reply(agree, field_confidence=fields)})
    record = await Runner(pipeline, model=model).run("doc")

    invoice = step(record, "invoice")
    assert invoice.checks[0].passed
    assert invoice.field_confidence["total"] == Confidence(value=0.6, source="scripted")
    assert record.review is not None
    assert [r.message for r in record.review.reasons] == [
        "field `total` confidence 0.60 < 0.8 (scripted)"
    ]


async def test_a_cap_above_the_models_number_changes_nothing_but_still_gates_the_field() -> None:
    fields = {**SURE, "subtotal": 0.3}
    record = await run(Check(total_is_subtotal, on_fail="warn", cap=0.5), fields=fields)

    invoice = step(record, "invoice")
    assert invoice.field_confidence["subtotal"] == Confidence(value=0.3, source="scripted")
    assert invoice.field_confidence["total"] == Confidence(value=0.5, source="checks")
    assert record.review is not None
    assert [r.message for r in record.review.reasons] == [
        "field `total` confidence 0.50 < 0.8 (capped by check `total_is_subtotal`)",
        "field `subtotal` confidence 0.30 < 0.8 (scripted; check `total_is_subtotal` failed on it)",
    ]


async def test_a_missing_field_confidence_is_not_invented() -> None:
    fields = {"number": 0.95, "total": 0.95}  # no number for `subtotal`
    record = await run(Check(total_is_subtotal, on_fail="warn", cap=0.9), fields=fields)

    invoice = step(record, "invoice")
    assert "subtotal" not in invoice.field_confidence
    assert invoice.field_confidence["total"] == Confidence(value=0.9, source="checks")
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="field_low_confidence",
            field="subtotal",
            threshold=0.8,
            check="total_is_subtotal",
            message="the model gave no confidence for field `subtotal`; a gated field needs one "
            "(check `total_is_subtotal` failed on it)",
        ),
    )


async def test_the_lowest_cap_wins_and_a_check_naming_no_field_caps_every_field() -> None:
    def never(output: Any, state: State) -> bool:
        return False

    record = await run(
        Check(total_is_subtotal, on_fail="warn", cap=0.6),
        Check(never, on_fail="warn", cap=0.7),
        accept=0.5,
    )
    invoice = step(record, "invoice")
    assert {name: (c.value, c.source) for name, c in invoice.field_confidence.items()} == {
        "number": (0.7, "checks"),
        "total": (0.6, "checks"),
        "subtotal": (0.6, "checks"),
        "note": (0.7, "checks"),
    }
    assert invoice.confidence == Confidence(value=0.6, source="checks")
    assert record.status is RunStatus.COMPLETED  # every cap is above this gate's 0.5


async def test_a_check_without_a_cap_leaves_confidence_alone() -> None:
    record = await run(Check(total_is_subtotal, on_fail="warn"))

    invoice = step(record, "invoice")
    assert invoice.field_confidence["total"] == Confidence(value=0.95, source="scripted")
    assert record.status is RunStatus.COMPLETED
    assert invoice.checks[0].passed is False


async def test_a_cap_lowers_a_classifiers_confidence_and_names_the_check() -> None:
    def not_spam(output: Any, state: State) -> bool:
        return "prize" not in state.text

    pipeline = (
        PipelineBuilder("c")
        .add(
            Classify(
                "category",
                labels=["bug", "spam"],
                checks=[Check(not_spam, on_fail="warn", cap=0.3)],
            )
        )
        .build()
    )
    model = FakeModel({"category": Reply("bug", confidence=0.97)})
    record = await Runner(pipeline, model=model).run("You won a prize")

    assert step(record, "category").confidence == Confidence(value=0.3, source="checks")
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="low_confidence",
            value=0.3,
            threshold=0.8,
            check="not_spam",
            message="confidence 0.30 < 0.8 (capped by check `not_spam`)",
        ),
    )
    # The same document without the word passes at the model's own number.
    record = await Runner(pipeline, model=model).run("The app crashes")
    assert step(record, "category").confidence == Confidence(value=0.97, source="scripted")


@pytest.mark.parametrize("cap", [-0.1, 1.5])
def test_a_cap_outside_0_to_1_is_refused(cap: float) -> None:
    with pytest.raises(ValueError, match=rf"Check cap={cap} is outside 0..1"):
        Check(total_is_subtotal, cap=cap)
