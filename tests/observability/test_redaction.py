"""With content capture off (the default), no document text reaches spans or log lines: error
and check messages that quote the document are redacted; with capture on they are recorded."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import BaseModel

from handrail import (
    Check,
    CheckResult,
    Extract,
    Fail,
    FakeModel,
    PipelineBuilder,
    Reply,
    Rule,
    Runner,
)
from handrail.observability import TracingHooks
from handrail.observability.spans import CAPTURE_ENV

CARD = "4111-1111-1111-1111"
TICKET = f"Please refund my order, paid with card {CARD}, it never arrived."


class Payment(BaseModel):
    card: str


def parse_ticket(state: object) -> str:
    text = state.document.text  # type: ignore[attr-defined]
    raise ValueError(f"cannot parse ticket: {text}")


def card_not_blocked(output: Payment, state: object) -> CheckResult:
    return CheckResult(passed=False, message=f"card {output.card} is on the block list")


failing = PipelineBuilder("failing").add(Rule("parse", parse_ticket)).build()
checked = (
    PipelineBuilder("checked")
    .add(Extract("payment", Payment, checks=[Check(card_not_blocked, on_fail="review")]))
    .build()
)


def model() -> FakeModel:
    return FakeModel({"payment": Reply({"card": CARD}, field_confidence={"card": 0.99})})


@pytest.fixture(autouse=True)
def _no_capture_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CAPTURE_ENV, raising=False)


def traced(capture: str | None) -> tuple[TracingHooks, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TracingHooks(tracer_provider=provider, capture_content=capture), exporter


def texts(spans: Iterator[ReadableSpan] | list[ReadableSpan]) -> list[str]:
    """Every string a collector would receive: attribute values, event attributes, status
    descriptions."""
    found: list[str] = []
    for span in spans:
        found += [str(v) for v in (span.attributes or {}).values()]
        for event in span.events:
            found += [event.name, *(str(v) for v in (event.attributes or {}).values())]
        if span.status.description:
            found.append(span.status.description)
    return found


async def run_both(hooks: TracingHooks) -> None:
    failed = await Runner(failing, model=model(), hooks=[hooks]).run(TICKET)
    assert str(failed.status) == "failed"
    reviewed = await Runner(checked, model=model(), hooks=[hooks]).run(TICKET)
    assert str(reviewed.status) == "needs_review"
    echoed = FakeModel({"payment": Fail("exception", f"the provider echoed {CARD}")})
    refused = await Runner(checked, model=echoed, hooks=[hooks]).run(TICKET)
    assert str(refused.status) == "failed"


async def test_no_document_text_reaches_spans_or_logs_without_capture(
    caplog: pytest.LogCaptureFixture,
) -> None:
    hooks, exporter = traced(None)
    with caplog.at_level(logging.DEBUG):
        await run_both(hooks)

    spans = exporter.get_finished_spans()
    assert not [text for text in texts(spans) if CARD in text]
    assert not [r.getMessage() for r in caplog.records if CARD in r.getMessage()]

    # What the error and the check were is still there: type, node, check name, length.
    rule = next(s for s in spans if s.name == "rule parse")
    assert rule.status.status_code is StatusCode.ERROR
    assert (rule.attributes or {})["error.type"] == "StepFailed"
    message = f"cannot parse ticket: {TICKET}"
    assert rule.status.description == (
        "rule `parse` raised ValueError: "
        f"[redacted: {len(message)} chars; set {CAPTURE_ENV}=SPAN_ONLY to record]"
    )
    run = next(s for s in spans if s.name == "invoke_workflow failing")
    assert run.status.description == rule.status.description
    extract = next(s for s in spans if s.name == "extract payment")
    check, gate = (
        next(e for e in extract.events if (e.attributes or {}).get("gen_ai.evaluation.name") == n)
        for n in ("card_not_blocked", "handrail.gate")
    )
    assert (check.attributes or {})["gen_ai.evaluation.score.label"] == "fail"
    said = len(f"card {CARD} is on the block list")
    assert str((check.attributes or {})["gen_ai.evaluation.explanation"]).startswith(
        f"[redacted: {said} chars;"
    )
    assert str((gate.attributes or {})["gen_ai.evaluation.explanation"]).startswith(
        f"check `card_not_blocked` [redacted: {said} chars;"
    )


@pytest.mark.parametrize("capture", ["SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT"])
async def test_with_capture_on_the_messages_are_recorded(capture: str) -> None:
    hooks, exporter = traced(capture)
    await run_both(hooks)

    spans = exporter.get_finished_spans()
    rule = next(s for s in spans if s.name == "rule parse")
    said = f"rule `parse` raised ValueError: cannot parse ticket: {TICKET}"
    assert rule.status.description == said
    extract = next(s for s in spans if s.name == "extract payment")
    explanations = [
        (e.attributes or {}).get("gen_ai.evaluation.explanation") for e in extract.events
    ]
    assert f"card {CARD} is on the block list" in explanations
    chat = [s for s in spans if s.name == "chat fake" and s.status.description]
    assert [s.status.description for s in chat] == [f"the provider echoed {CARD}"]
