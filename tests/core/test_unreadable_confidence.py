"""The gate never accepts what it cannot read (issue 12, A1): a confidence that is not a finite
number in [0, 1] (NaN, inf, -inf, -0.1, 1.5, a string) is treated as no confidence, and a gated
node goes to review with a reason that says so, for node, label and field confidences alike."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import BaseModel

from handrail import (
    Check,
    Classify,
    Extract,
    FakeModel,
    Gate,
    Model,
    ModelRequest,
    ModelResponse,
    PipelineBuilder,
    Reply,
    Runner,
    RunStatus,
    State,
)
from handrail.core.records import Confidence

from ._helpers import step

BAD = [float("nan"), float("inf"), float("-inf"), -0.1, 1.5]
SHOWN = {id(v): s for v, s in zip(BAD, ["NaN", "inf", "-inf", "-0.1", "1.5"], strict=True)}
IDS = ["nan", "inf", "-inf", "negative", "above_one"]


def classify() -> Any:
    return (
        PipelineBuilder("unreadable")
        .add(Classify("cat", labels=["refund", "bug"], gate=Gate(accept=0.9)))
        .build()
    )


class Claim(BaseModel):
    number: str
    amount: float


def extract() -> Any:
    return PipelineBuilder("unreadable").add(Extract("claim", Claim, gate=Gate(accept=0.9))).build()


@pytest.mark.parametrize("value", BAD, ids=IDS)
async def test_a_node_confidence_it_cannot_read_goes_to_review(value: float) -> None:
    model = FakeModel({"cat": Reply("refund", confidence=value)})
    record = await Runner(classify(), model=model).run("my parcel never came")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    messages = [r.message for r in record.review.reasons]
    assert messages == [
        f"confidence of `cat` was {SHOWN[id(value)]}: not a number in [0, 1]; "
        "treated as no confidence"
    ]
    assert step(record, "cat").confidence is None  # never stored as a number


@pytest.mark.parametrize("value", BAD, ids=IDS)
async def test_a_label_score_it_cannot_read_goes_to_review(value: float) -> None:
    scores = {"refund": value, "bug": 0.02}
    model = FakeModel({"cat": Reply("refund", confidence=0.97, label_scores=scores)})
    record = await Runner(classify(), model=model).run("my parcel never came")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert (
        f"label score of `refund` on `cat` was {SHOWN[id(value)]}: not a number in [0, 1]; "
        "treated as no confidence"
    ) in [r.message for r in record.review.reasons]


@pytest.mark.parametrize("value", BAD, ids=IDS)
async def test_a_field_confidence_it_cannot_read_goes_to_review(value: float) -> None:
    reply = Reply(
        {"number": "C-1", "amount": 12.5}, field_confidence={"number": 0.99, "amount": value}
    )
    record = await Runner(extract(), model=FakeModel({"claim": reply})).run("claim C-1, 12.50")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    reasons = [(r.field, r.message) for r in record.review.reasons]
    assert reasons == [
        (
            "amount",
            f"confidence of field `amount` of `claim` was {SHOWN[id(value)]}: not a number in "
            "[0, 1]; treated as no confidence",
        )
    ]
    kept = step(record, "claim")
    assert set(kept.field_confidence) == {"number"}
    assert kept.confidence is not None and math.isfinite(kept.confidence.value)


async def test_a_nan_among_fields_does_not_hide_a_low_one() -> None:
    """`min` over numbers with a NaN in them answers at random: the NaN must be gone first."""
    reply = Reply(
        {"number": "C-1", "amount": 12.5},
        field_confidence={"number": float("nan"), "amount": 0.3},
    )
    record = await Runner(extract(), model=FakeModel({"claim": reply})).run("claim")
    kept = step(record, "claim")
    assert kept.confidence is not None and kept.confidence.value == 0.3
    assert record.review is not None
    assert [r.field for r in record.review.reasons] == ["number", "amount"]


class RawModel:
    """A user-written model that reports whatever it likes (not a FakeModel)."""

    name = "raw"

    def __init__(self, confidence: Any) -> None:
        self.confidence = confidence

    async def generate(self, request: ModelRequest) -> ModelResponse:
        return ModelResponse(
            output="refund", confidence=Confidence(value=self.confidence, source="self_reported")
        )


@pytest.mark.parametrize(
    ("value", "shown"), [("0.99", "'0.99'"), (True, "True"), (None, "None")], ids=str
)
async def test_a_confidence_that_is_not_a_number_goes_to_review(value: Any, shown: str) -> None:
    model: Model = RawModel(value)
    record = await Runner(classify(), model=model).run("a")
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert [r.message for r in record.review.reasons] == [
        f"confidence of `cat` was {shown}: not a number in [0, 1]; treated as no confidence"
    ]


async def test_without_a_gate_the_number_is_dropped_and_the_attempt_says_why() -> None:
    pipeline = PipelineBuilder("g").add(Classify("c", labels=["x", "y"], gate=None)).build()
    record = await Runner(pipeline, model=FakeModel({"c": Reply("x", confidence=math.inf)})).run(
        "doc"
    )
    assert record.status is RunStatus.COMPLETED
    kept = step(record, "c")
    assert kept.confidence is None
    assert kept.attempts[-1].warnings == (
        "confidence of `c` was inf: not a number in [0, 1]; treated as no confidence",
    )


async def test_an_unreadable_confidence_is_not_capped_into_a_number() -> None:
    """A failed check's cap only lowers a number the gate can read; it never turns NaN into
    an accepted value."""

    def never(output: Any, state: State) -> bool:
        return False

    pipeline = (
        PipelineBuilder("g")
        .add(
            Classify(
                "c",
                labels=["x", "y"],
                gate=Gate(accept=0.0),
                checks=[Check(never, on_fail="warn", cap=0.5)],
            )
        )
        .build()
    )
    record = await Runner(pipeline, model=FakeModel({"c": Reply("x", confidence=math.nan)})).run(
        "doc"
    )
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert "was NaN: not a number in [0, 1]" in record.review.reasons[0].message


def test_the_stored_record_has_no_nan_in_it() -> None:
    model = FakeModel(
        {"cat": Reply("refund", confidence=math.nan, label_scores={"refund": math.nan})}
    )
    record = Runner(classify(), model=model).run_sync("a")
    assert "NaN" not in json.dumps(
        [s.confidence.value for s in record.steps if s.confidence], allow_nan=True
    )


@pytest.mark.parametrize("value", BAD, ids=IDS)
def test_thresholds_and_caps_that_are_not_numbers_in_0_1_are_refused_when_declared(
    value: float,
) -> None:
    """The other way a number enters the gate: declared thresholds and check caps."""

    def ok(output: Any, state: State) -> bool:
        return True

    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        Gate(accept=value)
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        Gate(accept=0.9, fields={"amount": value})
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        Check(ok, cap=value)
