"""A hosted model's self-reported confidence comes through `json.loads`, which accepts `NaN` and
`Infinity`: the gate must treat those (and words) as no confidence and ask for a review."""

from __future__ import annotations

import pytest

from handrail import Classify, Gate, PipelineBuilder, Runner, RunStatus
from handrail.providers.litellm import LiteLLMModel


@pytest.mark.parametrize(
    ("reported", "shown"),
    [("NaN", "NaN"), ("Infinity", "inf"), ("-Infinity", "-inf"), ("1.5", "1.5"), ('"high"', "NaN")],
)
async def test_a_self_reported_confidence_it_cannot_read_goes_to_review(
    reported: str, shown: str
) -> None:
    pipeline = (
        PipelineBuilder("hosted")
        .add(Classify("cat", labels=["refund", "bug"], gate=Gate(accept=0.9)))
        .build()
    )
    model = LiteLLMModel(
        "openai/gpt-4o-mini",
        confidence="self_reported",
        mode="json",
        mock_response=f'{{"answer": "refund", "confidence": {reported}}}',
    )
    record = await Runner(pipeline, model=model).run("where is my money")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert record.review.output == "refund"
    assert [r.message for r in record.review.reasons] == [
        f"confidence of `cat` was {shown}: not a number in [0, 1]; treated as no confidence"
    ]
    assert record.steps[-1].confidence is None
