"""A run paused for review and resumed stays one trace (in this process and in another one), the
review decision is a span of its own, and prompts are recorded only when asked for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.pipelines import happy, low_confidence

from handrail import ReviewDecision, Runner
from handrail.observability import TracingHooks
from handrail.observability.spans import capture_mode

ROOT = Path(__file__).resolve().parents[2]
TRIAGE = f"{ROOT}/examples/support_triage/pipeline.py:pipeline"
TICKETS = ROOT / "examples" / "support_triage" / "documents"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.clear()


def tracing(exporter: InMemorySpanExporter, capture: str | None = None) -> TracingHooks:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return TracingHooks(tracer_provider=provider, capture_content=capture)


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


# --- resume in this process ------------------------------------------------------------------


async def test_a_resumed_run_stays_in_its_trace_with_a_review_decision_span(
    exporter: InMemorySpanExporter,
) -> None:
    runner = Runner(
        low_confidence.pipeline, model=low_confidence.model(0.6), hooks=[tracing(exporter)]
    )
    paused = await runner.run("the app crashes")
    assert paused.review is not None
    created = paused.review.created_at
    decision = ReviewDecision.edit(
        "question", reviewer="alice", reason="it asks", decided_at=created + timedelta(hours=30)
    )
    done = await runner.resume(paused.run_id, decision)
    assert str(done.status) == "completed"

    spans = exporter.get_finished_spans()
    first, resumed = named(spans, "invoke_workflow low_confidence")
    assert first.parent is None
    assert attrs(first)["handrail.run.status"] == "needs_review"
    assert first.context is not None and resumed.context is not None
    assert {s.context.trace_id for s in spans if s.context} == {first.context.trace_id}
    assert resumed.parent is not None and resumed.parent.span_id == first.context.span_id
    assert attrs(resumed)["handrail.run.resumed"] is True
    assert attrs(resumed)["handrail.run.status"] == "completed"

    (review,) = named(spans, "review_decision category")
    assert review.parent is not None and review.parent.span_id == first.context.span_id
    assert attrs(review) | {} == {
        "handrail.run.id": paused.run_id,
        "handrail.node.name": "category",
        "handrail.review.id": paused.review.review_id,
        "handrail.review.decision": "edit",
        "handrail.review.wait_s": 30 * 3600.0,
        "handrail.review.queue": "default",
        "handrail.review.reviewer": "alice",
        "handrail.review.reason": "it asks",
        "openinference.span.kind": "GUARDRAIL",
    }
    assert review.end_time is not None and review.start_time is not None
    assert review.end_time - review.start_time == 30 * 3600 * 10**9
    (event,) = review.events
    assert dict(event.attributes or {}) == {
        "gen_ai.evaluation.name": "handrail.review",
        "gen_ai.evaluation.score.label": "edit",
        "gen_ai.evaluation.explanation": "it asks",
    }
    # the steps after the decision hang under the resumed segment
    (shout,) = named(spans, "rule shout")
    assert shout.parent is not None and shout.parent.span_id == resumed.context.span_id
    assert done.trace_context == paused.trace_context
    assert paused.trace_context["traceparent"].split("-")[1] == f"{first.context.trace_id:032x}"


async def test_a_run_started_untraced_gets_a_trace_at_its_decision(
    exporter: InMemorySpanExporter,
) -> None:
    untraced = Runner(low_confidence.pipeline, model=low_confidence.model(0.6))
    paused = await untraced.run("the app crashes")
    assert paused.trace_context == {}

    traced = Runner(
        low_confidence.pipeline,
        model=low_confidence.model(0.6),
        store=untraced.store,
        hooks=[tracing(exporter)],
    )
    done = await traced.resume(paused.run_id, ReviewDecision.approve(reviewer="bob"))

    spans = exporter.get_finished_spans()
    (review,) = named(spans, "review_decision category")
    (resumed,) = named(spans, "invoke_workflow low_confidence")
    assert review.parent is None and review.context is not None
    assert resumed.parent is not None and resumed.parent.span_id == review.context.span_id
    assert done.trace_context["traceparent"].split("-")[2] == f"{review.context.span_id:016x}"


# --- resume in another process, through the command line -------------------------------------


def console_spans(stderr: str) -> list[dict[str, Any]]:
    """The spans `OTEL_TRACES_EXPORTER=console` wrote (indented JSON objects) among other lines."""
    decoder = json.JSONDecoder()
    spans: list[dict[str, Any]] = []
    at = stderr.find("{\n")
    while at != -1:
        span, end = decoder.raw_decode(stderr, at)
        spans.append(span)
        at = stderr.find("{\n", end)
    return spans


def handrail(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HANDRAIL_"))} | {
        "OTEL_TRACES_EXPORTER": "console",
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "handrail.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )


def test_a_run_resumed_by_another_process_stays_one_trace(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    first = handrail(
        "run",
        TRIAGE,
        str(TICKETS / "02_refund_espresso_machine.eml"),
        "--db",
        db,
        "--json",
        cwd=tmp_path,
    )
    (line,) = [json.loads(x) for x in first.stdout.splitlines() if x.startswith("{")]
    assert line["status"] == "needs_review"
    review_id = line["review"]["review_id"]
    before = console_spans(first.stderr)
    (run_span,) = [s for s in before if s["name"].startswith("invoke_workflow")]
    assert run_span["parent_id"] is None
    trace_id = run_span["context"]["trace_id"]

    second = handrail(  # the example is outside the folder: its code is named (see D15)
        "review", "approve", review_id, "--db", db, "--reviewer", "carol", "--target", TRIAGE,
        cwd=tmp_path,
    )  # fmt: skip
    after = console_spans(second.stderr)
    assert after, second.stderr
    assert {s["context"]["trace_id"] for s in after} == {trace_id}
    (review,) = [s for s in after if s["name"].startswith("review_decision")]
    (resumed,) = [s for s in after if s["name"].startswith("invoke_workflow")]
    assert review["parent_id"] == run_span["context"]["span_id"]
    assert resumed["parent_id"] == run_span["context"]["span_id"]
    assert review["attributes"]["handrail.review.reviewer"] == "carol"
    assert review["attributes"]["handrail.review.decision"] == "approve"
    assert review["attributes"]["handrail.review.wait_s"] >= 0
    assert resumed["attributes"]["handrail.run.resumed"] is True
    later_steps = [s for s in after if s["parent_id"] == resumed["context"]["span_id"]]
    assert later_steps, "the steps after the decision belong to the resumed segment"
    assert "tracing:" in second.stderr


# --- content capture ---------------------------------------------------------------------------


async def test_prompts_and_completions_are_not_recorded_by_default(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", raising=False)
    document = "The app crashes when I log in with SECRET-TOKEN-42."
    await Runner(happy.pipeline, model=happy.model(), hooks=[tracing(exporter)]).run(document)

    spans = exporter.get_finished_spans()
    assert named(spans, "chat fake")
    for span in spans:
        dumped = span.to_json()
        assert "SECRET-TOKEN-42" not in dumped
        assert "gen_ai.input.messages" not in dumped


@pytest.mark.parametrize(
    ("mode", "on_span", "in_event"),
    [("SPAN_ONLY", True, False), ("EVENT_ONLY", False, True), ("SPAN_AND_EVENT", True, True)],
)
async def test_content_capture_when_asked(
    exporter: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    on_span: bool,
    in_event: bool,
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", mode)
    document = "The app crashes when I log in with SECRET-TOKEN-42."
    await Runner(happy.pipeline, model=happy.model(), hooks=[tracing(exporter)]).run(document)

    calls = named(exporter.get_finished_spans(), "chat fake")
    assert calls
    for call in calls:
        events = [e for e in call.events if e.name == "gen_ai.client.inference.operation.details"]
        assert ("gen_ai.input.messages" in attrs(call)) is on_span
        assert ("gen_ai.output.messages" in attrs(call)) is on_span
        assert bool(events) is in_event
        source = attrs(call) if on_span else dict(events[0].attributes or {})
        prompt = json.loads(source["gen_ai.input.messages"])
        assert any("SECRET-TOKEN-42" in p["content"] for m in prompt for p in m["parts"])
        assert {m["role"] for m in prompt} <= {"system", "user", "assistant"}
        (answer,) = json.loads(source["gen_ai.output.messages"])
        assert answer["role"] == "assistant" and answer["parts"][0]["type"] == "text"


def test_capture_modes_and_the_warning_for_a_wrong_one() -> None:
    assert capture_mode(None) == ("NO_CONTENT", None)
    assert capture_mode("span_only") == ("SPAN_ONLY", None)
    assert capture_mode("true") == ("SPAN_ONLY", None)
    assert capture_mode("false") == ("NO_CONTENT", None)
    mode, warning = capture_mode("everything")
    assert mode == "NO_CONTENT"
    assert warning is not None
    assert "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT='everything'" in warning
    assert "SPAN_ONLY" in warning
