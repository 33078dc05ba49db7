"""A hook that raises is a `handrail.hook.error` event on the run's span (issue 12, A5): the run
goes on, and the trace says which hook failed. Read back from the SDK's in-memory exporter."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.pipelines import low_confidence

from handrail import Hooks, Runner, RunStatus
from handrail.observability import TracingHooks


class Notify(Hooks):
    def review_requested(self, **_: Any) -> None:
        raise ConnectionError("helpdesk down for ticket 4111-1111")


@pytest.mark.parametrize(("capture", "message"), [(None, None), ("SPAN_ONLY", True)])
async def test_a_hook_error_is_an_event_on_the_run_span(
    capture: str | None, message: bool | None
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = TracingHooks(tracer_provider=provider, capture_content=capture or "NO_CONTENT")
    runner = Runner(
        low_confidence.pipeline, model=low_confidence.model(0.6), hooks=[Notify(), tracing]
    )
    record = await runner.run("it crashes")
    assert record.status is RunStatus.NEEDS_REVIEW

    [run_span] = [s for s in exporter.get_finished_spans() if s.name.startswith("invoke_workflow")]
    events = [e for e in run_span.events if e.name == "handrail.hook.error"]
    assert len(events) == 1
    attributes = dict(events[0].attributes or {})
    expected: dict[str, Any] = {
        "handrail.hook.name": "Notify",
        "handrail.hook.method": "review_requested",
        "exception.type": "ConnectionError",
    }
    if message:  # the message may quote the document: only with content capture on
        expected["exception.message"] = "helpdesk down for ticket 4111-1111"
    assert attributes == expected
