"""`LiteLLMModel` on litellm's own `mock_response`: request building, confidence, usage, errors."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from handrail import (
    Classify,
    Extract,
    Gate,
    PipelineBuilder,
    RetryPolicy,
    Runner,
    RunRecord,
    RunStatus,
    StepRecord,
)
from handrail.core.model import Message, ModelRequest
from handrail.exceptions import (
    AuthenticationError,
    InputError,
    ProviderTimeout,
    RateLimited,
)
from handrail.providers import get_model
from handrail.providers._confidence import agree as _agree
from handrail.providers.litellm import LiteLLMModel

FAST = RetryPolicy(attempts=3, initial=0, maximum=0, jitter=0)


def step(record: RunRecord, node: str) -> StepRecord:
    return next(s for s in record.steps if s.node == node)


def attempts(record: StepRecord) -> list[tuple[str, str]]:
    return [(a.kind, a.outcome) for a in record.attempts]


class Invoice(BaseModel):
    vendor: str
    total: float | None = None


def request(kind: str = "classify", **extra: object) -> ModelRequest:
    values: dict[str, object] = {
        "node": "n",
        "kind": kind,
        "messages": (Message(role="system", content="S"), Message(role="user", content="U")),
    }
    if kind == "classify":
        values["labels"] = ("refund", "bug")
    if kind == "extract":
        values["output_type"] = Invoice
        values["output_schema"] = Invoice.model_json_schema()
    values.update(extra)
    return ModelRequest(**values)  # type: ignore[arg-type]


async def test_plain_answer_with_usage_and_price_map_cost() -> None:
    model = LiteLLMModel("openai/gpt-4o-mini", confidence="none", mock_response="refund")
    response = await model.generate(request())
    assert response.output == "refund"
    assert response.model == "openai/gpt-4o-mini"
    assert response.usage.input_tokens > 0 and response.usage.output_tokens > 0
    assert response.usage.cost is not None and response.usage.cost > 0
    assert response.confidence is None
    assert response.finish_reason == "stop"


async def test_unknown_price_is_recorded_as_unknown_not_free() -> None:
    model = LiteLLMModel(
        "openai/handrail-test-model-not-in-price-map", confidence="none", mock_response="bug"
    )
    response = await model.generate(request())
    assert response.usage.cost is None


async def test_agreement_is_the_share_of_samples_that_agree() -> None:
    answers = iter(["refund", "bug", "refund"])
    model = LiteLLMModel("ollama/llama3.2", confidence="agreement", samples=3)
    model.params["mock_response"] = "x"

    async def fake(**kwargs: object) -> object:

        return await litellm_acompletion(**{**kwargs, "mock_response": next(answers)})

    from handrail.providers import litellm as module

    litellm_acompletion = module.litellm.acompletion
    module.litellm.acompletion = fake  # type: ignore[method-assign]
    try:
        response = await model.generate(request())
    finally:
        module.litellm.acompletion = litellm_acompletion  # type: ignore[method-assign]
    assert response.output == "refund"
    assert response.confidence is not None
    assert response.confidence.source == "agreement"
    assert response.confidence.value == pytest.approx(2 / 3)


def test_agreement_per_field_counts_every_sample() -> None:
    answers = [
        '{"vendor": "ACME", "total": 10}',
        '{"vendor": "acme ", "total": 12}',
        "not json at all",
    ]
    output, confidence, fields = _agree(request("extract"), answers)
    assert json.loads(output) == {"vendor": "ACME", "total": 10}
    assert confidence is None
    assert fields["vendor"].value == pytest.approx(2 / 3)  # case and spaces do not disagree
    assert fields["total"].value == pytest.approx(1 / 3)  # the unparsable sample counts against
    assert {c.source for c in fields.values()} == {"agreement"}


async def test_self_reported_confidence_is_marked_as_such() -> None:
    model = LiteLLMModel(
        "openai/gpt-4o-mini",
        confidence="self_reported",
        mode="json",
        mock_response=json.dumps({"answer": {"vendor": "ACME", "total": 5}, "confidence": 0.7}),
    )
    response = await model.generate(request("extract"))
    assert json.loads(response.output) == {"vendor": "ACME", "total": 5}
    assert response.confidence is not None
    assert (response.confidence.value, response.confidence.source) == (0.7, "self_reported")


async def test_extract_schema_prepared_once_per_type() -> None:
    auto = LiteLLMModel(
        "openai/gpt-4o-mini", confidence="none", mock_response='{"vendor": "A", "total": 1}'
    )
    tools = LiteLLMModel("openai/gpt-4o-mini", confidence="none", mode="tools", api_key="sk-t")
    for _ in range(3):
        await auto.generate(request("extract"))
        await tools.generate(request("extract", params={"mock_tool_calls": [_tool_call()]}))
    assert len(auto._prepared) == len(tools._prepared) == 1
    (prepared,) = auto._prepared.values()
    assert prepared.source == "content"  # the provider enforces the JSON schema
    assert prepared.kwargs["response_format"]["json_schema"]["schema"]["required"] == ["vendor"]
    (prepared,) = tools._prepared.values()
    assert prepared.source == "tool"
    assert prepared.kwargs["tools"][0]["function"]["parameters"]["required"] == ["vendor"]


def _tool_call() -> dict[str, object]:
    return {
        "id": "call_1",
        "type": "function",
        "function": {"name": "Invoice", "arguments": '{"vendor": "A", "total": 1}'},
    }


async def test_mocked_transient_errors_map_to_handrail_errors() -> None:
    model = LiteLLMModel("openai/gpt-4o-mini", confidence="none", api_key="sk-t")
    with pytest.raises(RateLimited, match="rate limited"):
        await model.generate(request(params={"mock_response": "litellm.RateLimitError"}))
    with pytest.raises(ProviderTimeout, match="timed out"):
        await model.generate(
            request(params={"mock_timeout": True, "timeout": 0.01, "mock_response": "x"})
        )


def test_unknown_model_string_is_a_clear_input_error() -> None:
    with pytest.raises(InputError, match=r"unknown model 'gpt-nonsense-9'.*provider/model"):
        get_model("gpt-nonsense-9")


async def test_missing_api_key_fails_the_step_with_the_variable_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    model = get_model("anthropic/claude-3-5-haiku-latest")
    pipeline = PipelineBuilder("auth").add(Classify("c", labels=["a", "b"], gate=None)).build()
    record = await Runner(pipeline, model=model).run("a message")
    assert record.status is RunStatus.FAILED
    failed = step(record, "c")
    assert failed.error is not None
    assert failed.error.type == "AuthenticationError"
    assert "ANTHROPIC_API_KEY" in failed.error.message
    with pytest.raises(AuthenticationError):
        await model.generate(request())


async def test_through_the_runner_invalid_json_is_reasked_then_accepted() -> None:
    answers = iter(['{"vendor": ', '{"vendor": "Larkspur", "total": 12.5}'])
    model = LiteLLMModel("openai/gpt-4o-mini", confidence="none", mode="json", api_key="sk-t")

    from handrail.providers import litellm as module

    real = module.litellm.acompletion

    async def scripted(**kwargs: object) -> object:
        return await real(**{**kwargs, "mock_response": next(answers)})

    module.litellm.acompletion = scripted  # type: ignore[method-assign]
    try:
        pipeline = (
            PipelineBuilder("inv")
            .add(Extract("fields", schema=Invoice, gate=None, retry=FAST))
            .build()
        )
        record = await Runner(pipeline, model=model).run("Larkspur invoice, total 12.50")
    finally:
        module.litellm.acompletion = real  # type: ignore[method-assign]
    assert record.status is RunStatus.COMPLETED
    fields = step(record, "fields")
    assert attempts(fields) == [("call", "invalid_output"), ("reask", "ok")]
    assert record.outputs["fields"] == {"vendor": "Larkspur", "total": 12.5} or (
        record.outputs["fields"].vendor == "Larkspur"
    )


async def test_gated_node_without_a_confidence_goes_to_review() -> None:
    model = LiteLLMModel("openai/gpt-4o-mini", confidence="none", mock_response="refund")
    pipeline = (
        PipelineBuilder("g").add(Classify("c", labels=["refund", "bug"], gate=Gate())).build()
    )
    record = await Runner(pipeline, model=model).run("a message")
    assert record.status is RunStatus.NEEDS_REVIEW


def test_local_model_without_the_extra_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def without_llama(name: str, *args: object) -> object:
        return None if name == "llama_cpp" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_llama)
    with pytest.raises(InputError, match=r"pip install 'handrail\[local\]'"):
        get_model("local")
