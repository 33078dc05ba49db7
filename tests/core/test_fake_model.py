"""`FakeModel`: scripted replies, sequences, callables, every `Fail` kind, and the heuristic
stand-in used when a node has no script."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import BaseModel, Field

from handrail import (
    Confidence,
    Fail,
    FakeModel,
    Message,
    Model,
    ModelRequest,
    Reply,
    Usage,
)
from handrail.exceptions import (
    AuthenticationError,
    HandrailError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    TransientError,
)
from handrail.providers import get_model


def request(node: str = "n", text: str = "hello", **kwargs: Any) -> ModelRequest:
    kwargs.setdefault("kind", "summarize")
    return ModelRequest(node=node, messages=(Message(role="user", content=text),), **kwargs)


def test_it_is_a_model() -> None:
    model = FakeModel(name="fake/test")
    assert isinstance(model, Model)
    assert model.name == "fake/test"
    assert get_model("fake").name == "fake"


# --- scripts -----------------------------------------------------------------------------------


async def test_a_single_reply_answers_every_call() -> None:
    model = FakeModel({"n": Reply("same")})
    outputs = [(await model.generate(request())).output for _ in range(3)]
    assert outputs == ["same", "same", "same"]


async def test_a_sequence_is_consumed_one_call_at_a_time_and_its_last_entry_repeats() -> None:
    model = FakeModel({"a": [Reply("1"), Reply("2")], "b": [Reply("x")]})
    outputs = [(await model.generate(request(node))).output for node in "aabaa"]
    assert outputs == ["1", "2", "x", "2", "2"]


async def test_a_callable_gets_the_request() -> None:
    model = FakeModel({"n": lambda req: Reply(f"attempt {req.attempt}: {req.messages[0].content}")})
    response = await model.generate(request(text="hi", attempt=2))
    assert response.output == "attempt 2: hi"


async def test_every_call_is_recorded() -> None:
    model = FakeModel({"a": Reply("1"), "b": Reply("2")})
    first, second = request("a"), request("b")
    await model.generate(first)
    await model.generate(second)
    assert model.calls == [first, second]
    assert model.calls_for("b") == [second]


async def test_a_reply_carries_confidence_scores_and_usage() -> None:
    usage = Usage(input_tokens=3, output_tokens=4, cost=0.5)
    model = FakeModel(
        {
            "n": Reply(
                {"a": 1},
                confidence=0.7,
                field_confidence={"a": 0.6},
                usage=usage,
                source="agreement",
            )
        }
    )
    response = await model.generate(request())
    assert response.output == {"a": 1}
    assert response.confidence == Confidence(value=0.7, source="agreement")
    assert dict(response.field_confidence) == {"a": Confidence(value=0.6, source="agreement")}
    assert response.usage == usage
    assert (response.model, response.finish_reason) == ("fake", "stop")


async def test_label_scores_give_the_confidence_of_the_chosen_label() -> None:
    model = FakeModel({"n": Reply("b", label_scores={"a": 0.2, "b": 0.8})})
    response = await model.generate(request(kind="classify", labels=("a", "b")))
    assert response.confidence == Confidence(value=0.8, source="scripted")
    assert dict(response.label_scores) == {"a": 0.2, "b": 0.8}


async def test_without_a_confidence_there_is_none() -> None:
    assert (await FakeModel({"n": Reply("x")}).generate(request())).confidence is None


async def test_usage_is_estimated_from_the_words() -> None:
    response = await FakeModel({"n": Reply("one two three")}).generate(
        request(text="a b c d e f g h i j")
    )
    assert response.usage == Usage(input_tokens=13, output_tokens=4, cost=0.0)


async def test_latency_of_the_model_and_of_one_reply() -> None:
    model = FakeModel({"fast": Reply("x", latency=0), "n": Reply("y")}, latency=0.1)

    started = time.perf_counter()
    await model.generate(request("fast"))  # a reply's own latency wins, even zero
    assert time.perf_counter() - started < 0.05

    started = time.perf_counter()
    await model.generate(request("n"))  # otherwise the model's
    assert time.perf_counter() - started >= 0.09


async def test_no_script_and_no_heuristic_is_an_error_that_says_what_to_add() -> None:
    with pytest.raises(KeyError) as info:
        await FakeModel(heuristic=False).generate(request("missing"))
    assert info.value.args[0] == (
        "FakeModel has no script for node `missing`; add FakeModel({'missing': Reply(...)})"
    )


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "error", "transient"),
    [
        ("timeout", ProviderTimeout, True),
        ("rate_limit", RateLimited, True),
        ("unavailable", ProviderUnavailable, True),
        ("auth", AuthenticationError, False),
    ],
)
async def test_provider_failures_raise_handrail_errors(
    kind: Any, error: type[Exception], transient: bool
) -> None:
    with pytest.raises(error) as info:
        await FakeModel({"n": Fail(kind)}).generate(request())
    assert isinstance(info.value, HandrailError)
    assert isinstance(info.value, TransientError) is transient
    assert str(info.value) == f"scripted {kind} for `n`"


async def test_a_rate_limit_says_when_to_come_back() -> None:
    with pytest.raises(RateLimited) as info:
        await FakeModel({"n": Fail("rate_limit", "too many")}).generate(request())
    assert (str(info.value), info.value.retry_after) == ("too many", 0.0)


async def test_exception_is_an_unexpected_error() -> None:
    with pytest.raises(RuntimeError, match="scripted exception for `n`"):
        await FakeModel({"n": Fail("exception")}).generate(request())


async def test_invalid_json_returns_output_that_fails_any_schema() -> None:
    response = await FakeModel({"n": Fail("invalid_json")}).generate(request())
    assert response.output == '{"this is": not json'
    assert response.usage.total_tokens > 0


async def test_a_failure_can_take_time() -> None:
    started = time.perf_counter()
    with pytest.raises(ProviderTimeout):
        await FakeModel({"n": Fail("timeout", latency=0.05)}).generate(request())
    assert time.perf_counter() - started >= 0.045


def test_an_unknown_failure_kind_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        Fail("boom")  # type: ignore[arg-type]
    assert str(info.value) == (
        "Fail('boom'): use timeout, rate_limit, unavailable, invalid_json, exception or auth"
    )


# --- the heuristic stand-in --------------------------------------------------------------------


async def test_heuristic_classify_counts_label_names_in_the_document() -> None:
    text = (
        "Labels: refund, bug_report, question\n\nDocument:\n"
        "The app has a bug report button and every bug report crashes it. Refund?"
    )
    response = await FakeModel().generate(
        request("c", text, kind="classify", labels=("refund", "bug_report", "question"))
    )
    assert response.output == "bug_report"
    assert dict(response.label_scores) == pytest.approx(
        {"refund": 1.25 / 3.75, "bug_report": 2.25 / 3.75, "question": 0.25 / 3.75}
    )
    assert response.confidence == Confidence(value=pytest.approx(0.6), source="heuristic")


async def classify(text: str, *labels: str) -> Any:
    return await FakeModel().generate(request("c", text, kind="classify", labels=labels))


async def test_heuristic_classify_never_matches_a_label_by_its_parts() -> None:
    """`not_a_claim` is not evidenced by "claim" (issue 12, G26)."""
    response = await classify(
        "Document:\nI want to file a claim for my window.", "claim", "not_a_claim"
    )
    assert response.output == "claim"
    assert dict(response.label_scores) == pytest.approx(
        {"claim": 1.25 / 1.5, "not_a_claim": 0.25 / 1.5}
    )

    response = await classify("This is not a claim, only a question.", "claim", "not_a_claim")
    assert response.output == "not_a_claim"  # and "not a claim" is no evidence for `claim`
    assert dict(response.label_scores) == pytest.approx(
        {"claim": 0.25 / 1.5, "not_a_claim": 1.25 / 1.5}
    )


@pytest.mark.parametrize(
    "prompt",
    [
        "Choose one of: claim, not_a_claim\n\n{doc}",
        "Categories: claim | not_a_claim.\n{doc}",
        "Answer with one label:\n- claim: a request for money\n- not_a_claim: anything else\n{doc}",
        "{doc}\n\nclaim or not_a_claim?",
        "Labels: claim, not_a_claim\n{doc}",
    ],
    ids=["choose", "pipes", "definitions", "question", "labels_line"],
)
async def test_heuristic_classify_needs_no_labels_line_to_ignore_the_label_list(
    prompt: str,
) -> None:
    response = await classify(prompt.format(doc="My parcel came late."), "claim", "not_a_claim")
    assert dict(response.label_scores) == pytest.approx({"claim": 0.5, "not_a_claim": 0.5})

    response = await classify(prompt.format(doc="I claim 50 EUR for it."), "claim", "not_a_claim")
    assert response.output == "claim"
    assert dict(response.label_scores) == pytest.approx(
        {"claim": 1.25 / 1.5, "not_a_claim": 0.25 / 1.5}
    )


async def test_heuristic_classify_counts_prose_that_names_two_labels() -> None:
    response = await classify("The bug made me ask for refunds.", "refund", "bug", "question")
    assert dict(response.label_scores) == pytest.approx(
        {"refund": 1.25 / 2.75, "bug": 1.25 / 2.75, "question": 0.25 / 2.75}
    )


async def test_heuristic_classify_without_evidence_is_unsure_and_picks_the_first_label() -> None:
    response = await FakeModel().generate(
        request("c", "nothing relevant", kind="classify", labels=("refund", "bug"))
    )
    assert response.output == "refund"
    assert response.confidence is not None
    assert response.confidence.value == 0.5


class Invoice(BaseModel):
    invoice_number: str = Field(description="The number (also: Invoice No, Ref)")
    total: float
    count: int
    vendor: str | None = None
    currency: str


async def test_heuristic_extract_reads_key_value_lines() -> None:
    text = "Ref: INV-9\nTotal: $1,234.50\nCount: 3 items\nHello there."
    response = await FakeModel().generate(
        request("e", text, kind="extract", output_schema=Invoice.model_json_schema())
    )
    # aliases come from the field description; numbers are cleaned; a missing optional field
    # is null and a missing required one is left out (so validation asks again)
    assert response.output == {
        "invoice_number": "INV-9",
        "total": 1234.5,
        "count": 3,
        "vendor": None,
    }
    assert {k: c.value for k, c in response.field_confidence.items()} == {
        "invoice_number": 0.95,
        "total": 0.95,
        "count": 0.95,
        "vendor": 0.5,
        "currency": 0.5,
    }
    assert {c.source for c in response.field_confidence.values()} == {"heuristic"}


async def test_heuristic_summary_is_the_first_two_sentences_of_the_body() -> None:
    response = await FakeModel().generate(
        request("s", "From: bob\nFirst one. Second one! Third one?", kind="summarize")
    )
    assert response.output == "First one. Second one!"


async def test_heuristic_draft_is_a_polite_holding_reply() -> None:
    response = await FakeModel().generate(request("d", "Where is my order?", kind="draft"))
    assert response.output.startswith("Hello,\n\nThank you for your message.")
    assert response.output.endswith("Kind regards,\nSupport")
