"""MetricsHooks: the instruments the fixture pipelines produce, read back from the SDK's
InMemoryMetricReader on a private MeterProvider (the global provider is never set)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from tests.pipelines import approval, flaky, happy, low_confidence

from handrail import FakeModel, Reply, ReviewDecision, Runner, RunRecord, Usage
from handrail.observability.metrics import (
    CALL_DURATION_BUCKETS,
    TOKEN_BUCKETS,
    MetricsHooks,
)

Key = frozenset[tuple[str, Any]]


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


@pytest.fixture
def hooks(reader: InMemoryMetricReader) -> MetricsHooks:
    return MetricsHooks(meter_provider=MeterProvider(metric_readers=[reader]))


def collect(reader: InMemoryMetricReader) -> dict[str, dict[Key, Any]]:
    """Instrument name -> {attributes: data point} (cumulative since the hooks were made)."""
    found: dict[str, dict[Key, Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data is not None else ():
        for scope in resource.scope_metrics:
            assert scope.scope.name == "handrail"
            for metric in scope.metrics:
                points = found.setdefault(metric.name, {})
                for point in metric.data.data_points:
                    points[frozenset((point.attributes or {}).items())] = point
    return found


def attrs(**attributes: Any) -> Key:
    return frozenset((k.replace("__", "."), v) for k, v in attributes.items())


def values(points: dict[Key, Any]) -> dict[Key, Any]:
    """Counter points as {attributes: value}."""
    return {key: point.value for key, point in points.items()}


def step_key(pipeline: str, node: str, kind: str, status: str, **extra: Any) -> Key:
    return attrs(
        gen_ai__workflow__name=pipeline,
        handrail__node__name=node,
        handrail__node__kind=kind,
        handrail__step__status=status,
        **extra,
    )


def model_key(model: str = "fake", provider: str = "fake", **extra: Any) -> Key:
    return attrs(
        gen_ai__operation__name="chat",
        gen_ai__provider__name=provider,
        gen_ai__request__model=model,
        **extra,
    )


RUN_COMPLETED = attrs(gen_ai__workflow__name="happy", handrail__run__status="completed")
COMPLETED_UNREVIEWED = RUN_COMPLETED | attrs(handrail__run__reviewed=False)


@pytest.fixture
async def happy_run(hooks: MetricsHooks) -> RunRecord:
    return await Runner(happy.pipeline, model=happy.model(), hooks=[hooks]).run("ticket A-17")


async def test_a_completed_run_records_its_duration_steps_and_count(
    reader: InMemoryMetricReader, happy_run: RunRecord
) -> None:
    record, found = happy_run, collect(reader)
    run = found["handrail.run.duration"]
    assert set(run) == {RUN_COMPLETED}
    assert run[RUN_COMPLETED].count == 1
    assert run[RUN_COMPLETED].sum == record.duration_s
    assert values(found["handrail.runs"]) == {COMPLETED_UNREVIEWED: 1}

    steps = found["handrail.step.duration"]
    assert set(steps) == {
        step_key("happy", "category", "classify", "completed"),
        step_key("happy", "order", "extract", "completed"),
        step_key("happy", "with_tax", "rule", "completed"),
        step_key("happy", "reply", "draft", "completed"),
    }
    for step in record.steps:
        point = steps[step_key("happy", step.node, step.kind, "completed")]
        assert (point.count, point.sum) == (1, step.duration_s)
    assert "handrail.reviews" not in found and "handrail.review.wait" not in found


async def test_token_usage_and_call_duration_follow_the_genai_conventions(
    reader: InMemoryMetricReader, happy_run: RunRecord
) -> None:
    record, found = happy_run, collect(reader)
    tokens = found["gen_ai.client.token.usage"]
    fake = model_key(gen_ai__response__model="fake")
    assert set(tokens) == {
        fake | attrs(gen_ai__token__type="input"),
        fake | attrs(gen_ai__token__type="output"),
    }
    llm_steps = [s for s in record.steps if s.kind != "rule"]
    input_tokens = tokens[fake | attrs(gen_ai__token__type="input")]
    output_tokens = tokens[fake | attrs(gen_ai__token__type="output")]
    assert input_tokens.count == output_tokens.count == len(llm_steps) == 3
    assert (
        input_tokens.sum
        == record.usage.input_tokens
        == sum(s.usage.input_tokens for s in llm_steps)
    )
    assert output_tokens.sum == record.usage.output_tokens > 0
    assert tuple(input_tokens.explicit_bounds) == TOKEN_BUCKETS  # the semconv bucket advice

    calls = found["gen_ai.client.operation.duration"]
    assert set(calls) == {fake}
    assert calls[fake].count == 3
    assert calls[fake].sum <= record.duration_s
    assert tuple(calls[fake].explicit_bounds) == CALL_DURATION_BUCKETS


async def test_failed_calls_and_steps_carry_error_type(
    reader: InMemoryMetricReader, hooks: MetricsHooks
) -> None:
    record = await Runner(flaky.pipeline, model=flaky.model(failures=5), hooks=[hooks]).run("x")

    found = collect(reader)
    calls = found["gen_ai.client.operation.duration"]
    assert {key: point.count for key, point in calls.items()} == {
        model_key(error__type="RateLimited"): 3
    }
    assert "gen_ai.client.token.usage" not in found  # no response, no usage
    assert "handrail.cost" not in found and "handrail.cost.unknown" not in found
    (step,) = record.steps
    assert step.error is not None and step.error.type == "RetriesExhausted"
    assert set(found["handrail.step.duration"]) == {
        step_key("flaky", "category", "classify", "failed", error__type="RetriesExhausted")
    }
    assert values(found["handrail.runs"]) == {
        attrs(
            gen_ai__workflow__name="flaky",
            handrail__run__status="failed",
            handrail__run__reviewed=False,
        ): 1
    }


async def test_retried_calls_are_each_recorded(
    reader: InMemoryMetricReader, hooks: MetricsHooks
) -> None:
    await Runner(flaky.pipeline, model=flaky.model(failures=2), hooks=[hooks]).run("x")

    calls = collect(reader)["gen_ai.client.operation.duration"]
    assert {key: point.count for key, point in calls.items()} == {
        model_key(error__type="RateLimited"): 2,
        model_key(gen_ai__response__model="fake"): 1,
    }


async def test_a_paused_then_resumed_run_is_counted_once_and_its_time_not_twice(
    reader: InMemoryMetricReader, hooks: MetricsHooks
) -> None:
    slow = FakeModel({"category": Reply("bug", confidence=0.6, latency=0.2)})
    runner = Runner(low_confidence.pipeline, model=slow, hooks=[hooks])
    paused = await runner.run("doc")
    assert paused.review is not None
    decided_at = paused.review.created_at + timedelta(minutes=90)

    found = collect(reader)
    pause = attrs(gen_ai__workflow__name="low_confidence", handrail__run__status="needs_review")
    assert values(found["handrail.runs"]) == {pause: 1}
    assert values(found["handrail.reviews"]) == {
        attrs(gen_ai__workflow__name="low_confidence", handrail__node__name="category"): 1
    }

    final = await runner.resume(paused.run_id, ReviewDecision.approve(decided_at=decided_at))
    assert final.status == "completed"

    found = collect(reader)
    completed = attrs(gen_ai__workflow__name="low_confidence", handrail__run__status="completed")
    assert values(found["handrail.runs"]) == {
        pause: 1,
        completed | attrs(handrail__run__reviewed=True): 1,
    }
    runs = found["handrail.run.duration"]
    assert {key: point.count for key, point in runs.items()} == {pause: 1, completed: 1}
    assert runs[pause].sum == paused.duration_s >= 0.2
    # the resumed segment is its own time, not the cumulative RunRecord.duration_s again
    assert runs[completed].sum < 0.1
    assert final.duration_s == pytest.approx(runs[pause].sum + runs[completed].sum, abs=0.05)

    steps = {key: point.count for key, point in found["handrail.step.duration"].items()}
    # the paused execution is recorded; the record the decision settles it with is not
    assert steps == {
        step_key("low_confidence", "category", "classify", "needs_review"): 1,
        step_key("low_confidence", "shout", "rule", "completed"): 1,
    }

    wait = found["handrail.review.wait"]
    approved = attrs(
        gen_ai__workflow__name="low_confidence",
        handrail__node__name="category",
        handrail__review__decision="approve",
    )
    assert set(wait) == {approved}
    assert wait[approved].count == 1
    assert wait[approved].sum == pytest.approx(90 * 60)


async def test_a_rejected_review_counts_a_rejected_run(
    reader: InMemoryMetricReader, hooks: MetricsHooks
) -> None:
    runner = Runner(approval.pipeline, model=approval.model("refund"), hooks=[hooks])
    paused = await runner.run("please refund")
    assert paused.review is not None
    decision = ReviewDecision.reject(decided_at=paused.review.created_at + timedelta(seconds=42))
    final = await runner.resume(paused.run_id, decision)
    assert final.status == "rejected"

    found = collect(reader)
    assert values(found["handrail.runs"]) == {
        attrs(gen_ai__workflow__name="approval", handrail__run__status="needs_review"): 1,
        attrs(
            gen_ai__workflow__name="approval",
            handrail__run__status="rejected",
            handrail__run__reviewed=True,
        ): 1,
    }
    (wait,) = found["handrail.review.wait"].items()
    assert wait[0] == attrs(
        gen_ai__workflow__name="approval",
        handrail__node__name="approve_refund",
        handrail__review__decision="reject",
    )
    assert wait[1].sum == pytest.approx(42)
    steps = found["handrail.step.duration"]
    review_steps = [key for key in steps if ("handrail.node.kind", "review") in key]
    assert review_steps == [step_key("approval", "approve_refund", "review", "needs_review")]


def priced(cost: float | None) -> Reply:
    return Reply("ok", usage=Usage(input_tokens=120, output_tokens=30, cost=cost))


async def test_cost_adds_up_to_the_runs_cost(
    reader: InMemoryMetricReader, hooks: MetricsHooks
) -> None:
    model = FakeModel(
        {
            "category": Reply("refund", confidence=0.97, usage=Usage(input_tokens=50, cost=0.002)),
            "order": Reply(
                {"order_id": "A-17", "amount": 100.0},
                field_confidence={"order_id": 0.99, "amount": 0.95},
                usage=Usage(input_tokens=400, output_tokens=25, cost=0.0125),
            ),
            "reply": priced(0.03),
        },
        name="openai/gpt-4o-mini",
    )
    record = await Runner(happy.pipeline, model=model, hooks=[hooks]).run("ticket A-17")
    assert record.status == "completed" and record.usage.cost is not None

    found = collect(reader)
    cost = values(found["handrail.cost"])
    assert sum(cost.values()) == pytest.approx(record.usage.cost) == pytest.approx(0.0445)
    openai = attrs(
        gen_ai__workflow__name="happy",
        gen_ai__provider__name="openai",
        gen_ai__request__model="openai/gpt-4o-mini",
    )
    assert cost[openai | attrs(handrail__node__name="order")] == pytest.approx(0.0125)
    assert "handrail.cost.unknown" not in found
    tokens = found["gen_ai.client.token.usage"]
    key = model_key(
        "openai/gpt-4o-mini",
        provider="openai",
        gen_ai__response__model="openai/gpt-4o-mini",
        gen_ai__token__type="input",
    )
    assert tokens[key].sum == 50 + 400 + 120 == record.usage.input_tokens


async def test_unknown_cost_is_counted_not_added(
    reader: InMemoryMetricReader, hooks: MetricsHooks
) -> None:
    model = FakeModel(
        {
            "category": Reply("refund", confidence=0.97, usage=Usage(cost=0.001)),
            "order": Reply(
                {"order_id": "A-17", "amount": 100.0},
                field_confidence={"order_id": 0.99, "amount": 0.95},
                usage=Usage(cost=0.002),
            ),
            "reply": priced(None),
        }
    )
    record = await Runner(happy.pipeline, model=model, hooks=[hooks]).run("ticket A-17")
    assert record.status == "completed"
    assert record.usage.cost is None  # one unknown call makes the run's cost unknown

    found = collect(reader)
    assert sum(values(found["handrail.cost"]).values()) == pytest.approx(0.003)
    fake = attrs(gen_ai__provider__name="fake", gen_ai__request__model="fake")
    assert values(found["handrail.cost.unknown"]) == {
        fake | attrs(gen_ai__workflow__name="happy", handrail__node__name="reply"): 1
    }


async def test_no_attribute_names_a_run_document_or_review(
    reader: InMemoryMetricReader, hooks: MetricsHooks
) -> None:
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), hooks=[hooks])
    paused = await runner.run("doc")
    assert paused.review is not None
    await runner.resume(paused.run_id, ReviewDecision.approve())
    happy_run = await Runner(happy.pipeline, model=happy.model(), hooks=[hooks]).run("A-17")

    found = collect(reader)
    assert len(found) == 8  # every instrument but handrail.cost.unknown
    ids = {
        paused.run_id,
        paused.document_id,
        paused.review.review_id,
        happy_run.run_id,
        happy_run.document_id,
    }
    for name, points in found.items():
        for key in points:
            assert not {str(v) for _, v in key} & ids, name
            assert not any("id" in k.split(".") for k, _ in key), name


async def test_concurrent_runs_are_each_counted_and_forgotten(
    reader: InMemoryMetricReader, hooks: MetricsHooks
) -> None:
    documents = [f"ticket {n}" for n in range(5)]
    records = await Runner(happy.pipeline, model=happy.model(), hooks=[hooks]).run_many(
        documents, concurrency=3
    )

    found = collect(reader)
    assert values(found["handrail.runs"]) == {COMPLETED_UNREVIEWED: 5}
    assert found["handrail.run.duration"][RUN_COMPLETED].sum == pytest.approx(
        sum(r.duration_s for r in records)
    )
    classify = step_key("happy", "category", "classify", "completed")
    assert found["handrail.step.duration"][classify].count == 5
    assert hooks._runs == {}  # the run -> pipeline map does not grow with finished runs


async def test_an_empty_document_is_a_failed_run(
    reader: InMemoryMetricReader, hooks: MetricsHooks
) -> None:
    await Runner(happy.pipeline, model=happy.model(), hooks=[hooks]).run("   ")

    assert values(collect(reader)["handrail.runs"]) == {
        attrs(
            gen_ai__workflow__name="happy",
            handrail__run__status="failed",
            handrail__run__reviewed=False,
        ): 1
    }


async def test_the_default_no_op_meter_provider_changes_nothing(
    reader: InMemoryMetricReader,
) -> None:
    assert not isinstance(metrics.get_meter_provider(), MeterProvider)  # no SDK configured
    outcomes = []
    for hooks in ([MetricsHooks()], []):
        runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), hooks=hooks)
        paused = await runner.run("doc")
        final = await runner.resume(paused.run_id, ReviewDecision.approve())
        unknown = FakeModel({"reply": priced(None)})
        other = await Runner(happy.pipeline, model=unknown, hooks=hooks).run("Order: A-17")
        outcomes.append([(r.status, r.outputs) for r in (paused, final, other)])

    with_hooks, without = outcomes
    assert with_hooks == without
    assert [status for status, _ in with_hooks][:2] == ["needs_review", "completed"]
    assert collect(reader) == {}  # nothing reached a provider nobody passed
