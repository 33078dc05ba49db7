"""`LiteLLMModel` against a local OpenAI-compatible server on a real socket (`_openai_stub`):
litellm's real HTTP path, its exception mapping, and handrail's retries, re-asks and confidence."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
from pydantic import BaseModel

from handrail import (
    Classify,
    Extract,
    PipelineBuilder,
    RetryPolicy,
    Runner,
    RunRecord,
    RunStatus,
    StepRecord,
)
from handrail.providers.litellm import LiteLLMModel

from ._openai_stub import OpenAIStub, StubReply, openai_stub

FAST = RetryPolicy(attempts=3, initial=0, maximum=0, jitter=0)


class Invoice(BaseModel):
    vendor: str
    total: float


@pytest.fixture
def stub() -> Iterator[OpenAIStub]:
    with openai_stub() as server:
        yield server


def model(stub: OpenAIStub, **options: object) -> LiteLLMModel:
    return LiteLLMModel("openai/stub-model", api_base=stub.base_url, api_key="sk-test", **options)  # type: ignore[arg-type]


def classify(**options: object) -> object:
    node = Classify("category", labels=["refund", "bug"], gate=None, retry=FAST, **options)  # type: ignore[arg-type]
    return PipelineBuilder("http").add(node).build()


def extract() -> object:
    node = Extract("fields", schema=Invoice, gate=None, retry=FAST)
    return PipelineBuilder("http_extract").add(node).build()


def only_step(record: RunRecord) -> StepRecord:
    (step,) = record.steps
    return step


def kinds(step: StepRecord) -> list[tuple[str, str]]:
    return [(a.kind, a.outcome) for a in step.attempts]


async def test_label_confidence_from_token_logprobs(stub: OpenAIStub) -> None:
    stub.reply(StubReply(content="refund", logprobs=[("ref", -0.1), ("und", -0.05)]))
    record = await Runner(classify(), model=model(stub)).run("I want my money back")
    step = only_step(record)
    assert record.outputs["category"] == "refund"
    assert step.confidence is not None
    assert step.confidence.source == "logprobs"
    assert step.confidence.value == pytest.approx(math.exp(-0.15))
    assert stub.requests[0]["logprobs"] is True
    assert step.usage.input_tokens == 11 and step.usage.output_tokens == 7
    assert step.usage.cost is None  # a model litellm has no price for: unknown, not free


async def test_rate_limit_is_retried_by_the_node_policy_not_by_litellm(stub: OpenAIStub) -> None:
    stub.reply(
        StubReply(status=429, error="slow down", headers={"retry-after": "0"}),
        StubReply(content="bug", logprobs=[("bug", -0.01)]),
    )
    record = await Runner(classify(), model=model(stub)).run("the app crashes")
    assert record.status is RunStatus.COMPLETED
    assert kinds(only_step(record)) == [("call", "transient_error"), ("transport_retry", "ok")]
    assert len(stub.requests) == 2  # litellm itself did not retry
    assert "RateLimited" in (only_step(record).attempts[0].error or "")


async def test_timeout_is_retried_then_reported(stub: OpenAIStub) -> None:
    stub.reply(StubReply(content="bug", delay=1.5))
    record = await Runner(classify(), model=model(stub, timeout=0.3)).run("slow provider")
    step = only_step(record)
    assert record.status is RunStatus.FAILED
    assert kinds(step) == [
        ("call", "transient_error"),
        ("transport_retry", "transient_error"),
        ("transport_retry", "transient_error"),
    ]
    assert step.error is not None
    assert step.error.type == "RetriesExhausted"
    assert "timed out" in step.error.message


async def test_server_error_retried_and_auth_error_not(stub: OpenAIStub) -> None:
    stub.reply(StubReply(status=503, error="overloaded"), StubReply(content="bug"))
    record = await Runner(classify(), model=model(stub, confidence="none")).run("x")
    assert kinds(only_step(record)) == [("call", "transient_error"), ("transport_retry", "ok")]

    stub.script.clear()
    stub.reply(StubReply(status=401, error="bad key"))
    record = await Runner(classify(), model=model(stub)).run("y")
    step = only_step(record)
    assert kinds(step) == [("call", "error")]
    assert step.error is not None and step.error.type == "AuthenticationError"


async def test_invalid_json_is_reasked_with_the_validation_errors(stub: OpenAIStub) -> None:
    stub.reply(
        StubReply(tool_arguments='{"vendor": "Larkspur"}'),  # total missing
        StubReply(tool_arguments='{"vendor": "Larkspur", "total": 12.5}'),
    )
    record = await Runner(extract(), model=model(stub, confidence="none", mode="tools")).run(
        "Larkspur Home, total 12.50"
    )
    assert record.status is RunStatus.COMPLETED
    assert kinds(only_step(record)) == [("call", "invalid_output"), ("reask", "ok")]
    reask = stub.requests[1]["messages"]
    assert reask[-2] == {"role": "assistant", "content": '{"vendor": "Larkspur"}'}
    assert "total" in reask[-1]["content"] and "Field required" in reask[-1]["content"]
    assert stub.requests[0]["tools"][0]["function"]["name"] == "Invoice"


async def test_output_that_never_fits_fails_with_the_reask_count(stub: OpenAIStub) -> None:
    stub.reply(StubReply(tool_arguments="{not json"))
    record = await Runner(extract(), model=model(stub, confidence="none", mode="tools")).run("z")
    step = only_step(record)
    assert step.error is not None and step.error.type == "OutputInvalid"
    assert "after 3 tries" in step.error.message
    assert len(stub.requests) == 3


async def test_agreement_over_n_choices(stub: OpenAIStub) -> None:
    stub.reply(StubReply(choices=["refund", "refund", "bug", "refund"]))
    record = await Runner(classify(), model=model(stub, confidence="agreement", samples=4)).run(
        "money back please"
    )
    step = only_step(record)
    assert record.outputs["category"] == "refund"
    assert step.confidence is not None
    assert (step.confidence.value, step.confidence.source) == (0.75, "agreement")
    assert stub.requests[0]["n"] == 4


async def test_context_window_overflow_is_a_clear_error(stub: OpenAIStub) -> None:
    stub.reply(
        StubReply(
            status=400,
            error="This model's maximum context length is 8192 tokens. However, your messages "
            "resulted in 9000 tokens.",
        )
    )
    record = await Runner(classify(), model=model(stub)).run("a very long ticket " * 50)
    step = only_step(record)
    assert step.error is not None and step.error.type == "ContextWindowExceeded"
    assert "on_overflow='truncate'" in step.error.message
    assert len(stub.requests) == 1  # not retried: it would not fit the next time either


async def test_declared_truncation_cuts_the_document_and_says_so(stub: OpenAIStub) -> None:
    overflow = StubReply(status=400, error="maximum context length is 100 tokens")
    stub.reply(overflow, StubReply(content="bug", logprobs=[("bug", -0.2)]))
    document = "word " * 400
    record = await Runner(classify(), model=model(stub, on_overflow="truncate")).run(document)
    assert record.status is RunStatus.COMPLETED
    sent = [json.dumps(r["messages"]) for r in stub.requests]
    assert len(sent[1]) < len(sent[0])
    assert "truncated to fit the context window" in sent[1]
    (attempt,) = only_step(record).attempts
    assert any("truncated" in w for w in attempt.warnings)


async def test_field_confidence_from_token_logprobs_in_json_schema_mode(stub: OpenAIStub) -> None:
    tokens = [
        ('{"', 0.0), ("vendor", 0.0), ('":', 0.0), (' "', 0.0), ("Lark", -0.3), ("spur", -0.2),
        ('",', 0.0), (' "', 0.0), ("total", 0.0), ('":', 0.0), (" ", 0.0), ("12", -0.1),
        (".5", -0.4), ("}", 0.0),
    ]  # fmt: skip
    stub.reply(StubReply(content="".join(t for t, _ in tokens), logprobs=tokens))
    record = await Runner(extract(), model=model(stub)).run("Larkspur Home, total 12.50")
    step = only_step(record)
    assert record.status is RunStatus.COMPLETED
    assert stub.requests[0]["logprobs"] is True
    assert stub.requests[0]["response_format"]["type"] == "json_schema"
    fields = {name: (c.value, c.source) for name, c in step.field_confidence.items()}
    assert fields == {
        "vendor": (pytest.approx(math.exp(-0.5)), "logprobs"),
        "total": (pytest.approx(math.exp(-0.5)), "logprobs"),
    }


async def test_logprobs_that_do_not_spell_the_json_give_no_number(stub: OpenAIStub) -> None:
    stub.reply(
        StubReply(content='{"vendor": "A", "total": 1}', logprobs=[("something else", -0.1)])
    )
    record = await Runner(extract(), model=model(stub)).run("A, total 1")
    assert only_step(record).field_confidence == {}
