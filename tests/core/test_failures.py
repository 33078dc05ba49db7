"""The failure classes of DESIGN §3, each with one owner: transport errors are retried, schema
errors re-asked, check failures follow `on_fail`, exhausted nodes take their fallback or
`on_exhausted`; timeouts, budgets and loop limits stop a run with a clear status."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import BaseModel
from tests.pipelines import cyclic, flaky, low_confidence

from handrail import (
    Budget,
    Check,
    CheckResult,
    Classify,
    Confidence,
    Draft,
    Extract,
    Fail,
    FakeModel,
    Fallback,
    Gate,
    ModelRequest,
    ModelResponse,
    PipelineBuilder,
    Reply,
    RetryPolicy,
    ReviewDecision,
    Rule,
    Runner,
    RunStatus,
    State,
    StepStatus,
    Summarize,
    Usage,
)
from handrail.exceptions import InvalidDecision, RateLimited

from ._helpers import FAST, attempts, history, step


def classify(**kwargs: Any) -> Any:
    """A one-node pipeline: `c` picks `a` or `b`, then `after` copies it."""
    kwargs.setdefault("retry", FAST)
    kwargs.setdefault("gate", None)
    return (
        PipelineBuilder("t")
        .add(Classify("c", labels=["a", "b"], **kwargs))
        .add(Rule("after", lambda s: s["c"]), after="c")
        .build()
    )


def is_a(output: Any, state: State) -> CheckResult:
    return CheckResult(passed=output == "a", message=f"expected a, got {output}")


# --- transport errors: retried with backoff --------------------------------------------------


@pytest.mark.parametrize("kind", ["rate_limit", "timeout", "unavailable"])
async def test_transient_errors_are_retried(kind: str) -> None:
    record = await Runner(flaky.pipeline, model=flaky.model(failures=2, kind=kind)).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert record.outputs == {"category": "bug"}
    assert attempts(step(record, "category")) == [
        ("call", "transient_error"),
        ("transport_retry", "transient_error"),
        ("transport_retry", "ok"),
    ]


async def test_retries_exhausted_fail_the_run_with_every_attempt_recorded() -> None:
    model = flaky.model(failures=3)
    record = await Runner(flaky.pipeline, model=model).run("doc")

    assert record.status is RunStatus.FAILED
    assert len(model.calls) == 3
    category = step(record, "category")
    assert category.status is StepStatus.FAILED
    assert attempts(category) == [
        ("call", "transient_error"),
        ("transport_retry", "transient_error"),
        ("transport_retry", "transient_error"),
    ]
    assert category.attempts[0].error == "RateLimited: scripted rate_limit for `category`"
    assert record.error is not None
    assert record.error.type == "RetriesExhausted"
    assert record.error.message == (
        "`category` failed 3 times with transient errors (last: RateLimited: scripted "
        "rate_limit for `category`); retry later, or raise RetryPolicy(attempts=...) on the node"
    )


async def test_attempts_one_means_no_retry() -> None:
    model = FakeModel({"c": [Fail("unavailable"), Reply("a")]})
    record = await Runner(classify(retry=RetryPolicy(attempts=1)), model=model).run("doc")
    assert record.status is RunStatus.FAILED
    assert attempts(step(record, "c")) == [("call", "transient_error")]


@pytest.mark.parametrize(
    ("kind", "error_type", "message"),
    [
        ("exception", "StepFailed", "`c` raised RuntimeError: scripted exception for `c`"),
        ("auth", "AuthenticationError", "scripted auth for `c`"),
    ],
)
async def test_permanent_errors_are_not_retried(kind: Any, error_type: str, message: str) -> None:
    model = FakeModel({"c": [Fail(kind), Reply("a")]})
    record = await Runner(classify(), model=model).run("doc")

    assert record.status is RunStatus.FAILED
    assert len(model.calls) == 1
    assert attempts(step(record, "c")) == [("call", "error")]
    assert record.error is not None
    assert (record.error.type, record.error.message) == (error_type, message)


async def test_retries_wait_with_backoff() -> None:
    model = FakeModel({"c": [Fail("unavailable"), Fail("unavailable"), Reply("a")]})
    policy = RetryPolicy(attempts=3, initial=0.05, maximum=0.05, jitter=0)
    started = time.perf_counter()
    record = await Runner(classify(retry=policy), model=model).run("doc")
    assert record.status is RunStatus.COMPLETED
    assert time.perf_counter() - started >= 0.09  # two waits of 0.05 s


class _RateLimitedOnce:
    """A model that is rate limited once with a `retry_after`, then answers."""

    name = "limited"

    def __init__(self) -> None:
        self.times: list[float] = []

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.times.append(time.perf_counter())
        if len(self.times) == 1:
            raise RateLimited("slow down", retry_after=0.1)
        return ModelResponse(output="a", model=self.name)


async def test_a_rate_limit_retry_after_is_honoured() -> None:
    model = _RateLimitedOnce()
    policy = RetryPolicy(attempts=2, initial=0, maximum=1.0, jitter=0)
    record = await Runner(classify(retry=policy), model=model).run("doc")
    assert record.status is RunStatus.COMPLETED
    assert model.times[1] - model.times[0] >= 0.09


# --- schema errors: re-asked with the validation errors --------------------------------------


class Order(BaseModel):
    order_id: str
    amount: float


def extract(**kwargs: Any) -> Any:
    kwargs.setdefault("retry", FAST)
    return PipelineBuilder("x").add(Extract("order", Order, gate=None, **kwargs)).build()


async def test_invalid_output_is_re_asked_with_the_validation_errors() -> None:
    model = FakeModel(
        {"order": [Reply({"order_id": "A-1"}), Reply({"order_id": "A-1", "amount": 5})]}
    )
    record = await Runner(extract(), model=model).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert record.outputs["order"] == Order(order_id="A-1", amount=5)
    assert attempts(step(record, "order")) == [("call", "invalid_output"), ("reask", "ok")]
    first, second = model.calls
    assert second.attempt == 2
    assert list(second.messages[: len(first.messages)]) == list(first.messages)
    assistant, user = second.messages[len(first.messages) :]
    assert (assistant.role, assistant.content) == ("assistant", '{"order_id": "A-1"}')
    assert (user.role, user.content) == (
        "user",
        "That output does not match the schema (amount: Field required). Reply again with the "
        "corrected output only.",
    )


async def test_a_classifier_is_re_asked_for_one_of_its_labels() -> None:
    model = FakeModel({"c": [Reply("maybe"), Reply("b")]})
    record = await Runner(classify(), model=model).run("doc")

    assert record.outputs["c"] == "b"
    assert model.calls[1].messages[-1].content == (
        "That answer is not valid (output: Input should be 'a' or 'b'). Answer with exactly "
        "one of: a, b."
    )


async def test_invalid_json_is_re_asked() -> None:
    model = FakeModel({"order": [Fail("invalid_json"), Reply({"order_id": "A", "amount": 1})]})
    record = await Runner(extract(), model=model).run("doc")
    assert record.status is RunStatus.COMPLETED
    assert attempts(step(record, "order")) == [("call", "invalid_output"), ("reask", "ok")]


async def test_re_asks_are_bounded() -> None:
    model = FakeModel({"order": Reply({"order_id": "A-1"})})
    record = await Runner(extract(max_reasks=1), model=model).run("doc")

    assert record.status is RunStatus.FAILED
    assert len(model.calls) == 2
    assert attempts(step(record, "order")) == [
        ("call", "invalid_output"),
        ("reask", "invalid_output"),
    ]
    assert record.error is not None
    assert record.error.type == "OutputInvalid"
    assert record.error.message == (
        "`order` returned output that does not fit its schema after 2 tries (1 error, first: "
        "Field required); raise max_reasks, simplify the schema or use a stronger model"
    )


async def test_no_re_ask_when_max_reasks_is_zero() -> None:
    model = FakeModel({"order": [Reply({}), Reply({"order_id": "A", "amount": 1})]})
    record = await Runner(extract(max_reasks=0), model=model).run("doc")
    assert record.status is RunStatus.FAILED
    assert len(model.calls) == 1


async def test_transport_retries_and_re_asks_are_counted_separately() -> None:
    model = FakeModel(
        {"order": [Fail("timeout"), Reply({}), Reply({"order_id": "A", "amount": 1})]}
    )
    record = await Runner(extract(), model=model).run("doc")
    assert record.status is RunStatus.COMPLETED
    assert attempts(step(record, "order")) == [
        ("call", "transient_error"),
        ("transport_retry", "invalid_output"),
        ("reask", "ok"),
    ]
    assert [a.number for a in step(record, "order").attempts] == [1, 2, 3]


# --- checks: on_fail --------------------------------------------------------------------------


async def test_check_retry_asks_again_with_the_check_message() -> None:
    model = FakeModel({"c": [Reply("b"), Reply("a")]})
    record = await Runner(classify(checks=[Check(is_a, on_fail="retry")]), model=model).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert record.outputs == {"c": "a", "after": "a"}
    c = step(record, "c")
    assert attempts(c) == [("call", "check_failed"), ("check_retry", "ok")]
    assert c.attempts[0].error == "expected a, got b"
    assert [(r.name, r.passed, r.on_fail) for r in c.checks] == [("is_a", True, "retry")]
    assert [m.content for m in model.calls[1].messages[-2:]] == [
        "b",
        "The output failed a check: expected a, got b. Correct it and reply again.",
    ]


async def test_check_retry_exhausted_fails_the_run() -> None:
    model = FakeModel({"c": Reply("b")})
    check = Check(is_a, on_fail="retry", max_retries=2)
    record = await Runner(classify(checks=[check]), model=model).run("doc")

    assert record.status is RunStatus.FAILED
    assert len(model.calls) == 3
    c = step(record, "c")
    assert attempts(c) == [
        ("call", "check_failed"),
        ("check_retry", "check_failed"),
        ("check_retry", "check_failed"),
    ]
    assert c.output == "b"  # the last output seen is kept for whoever looks at the failure
    assert record.error is not None
    assert record.error.type == "CheckFailed"
    assert record.error.message == "check `is_a` on `c` failed after its retries: expected a, got b"


async def test_check_retry_exhausted_goes_to_review_when_declared() -> None:
    model = FakeModel({"c": Reply("b")})
    pipeline = classify(checks=[Check(is_a, on_fail="retry")], on_exhausted="review")
    record = await Runner(pipeline, model=model).run("doc")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    [reason] = record.review.reasons
    assert (reason.kind, reason.message) == (
        "exhausted",
        "check `is_a` on `c` failed after its retries: expected a, got b",
    )


async def test_check_review_sends_the_run_to_review_with_the_check_as_reason() -> None:
    model = FakeModel({"c": Reply("b")})
    record = await Runner(classify(checks=[Check(is_a, on_fail="review")]), model=model).run("d")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert history(record) == [("c", 1, "needs_review", "b", ())]
    assert record.review is not None
    assert record.review.output == "b"
    [reason] = record.review.reasons
    assert (reason.kind, reason.check, reason.message) == ("check", "is_a", "expected a, got b")


async def test_check_fallback_uses_the_fallback() -> None:
    model = FakeModel({"c": Reply("b")})
    pipeline = classify(checks=[Check(is_a, on_fail="fallback")], fallback=Fallback(default="a"))
    record = await Runner(pipeline, model=model).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert record.outputs == {"c": "a", "after": "a"}
    c = step(record, "c")
    assert c.confidence == Confidence(value=0.0, source="fallback")
    assert c.error is not None
    assert (
        c.error.message == "check `is_a` on `c` failed and asks for the fallback: expected a, got b"
    )


async def test_check_fail_fails_the_run_and_keeps_what_the_step_did() -> None:
    model = FakeModel({"c": Reply("b", usage=Usage(input_tokens=7, output_tokens=1))})
    record = await Runner(classify(checks=[Check(is_a, on_fail="fail")]), model=model).run("doc")

    assert record.status is RunStatus.FAILED
    assert record.error is not None
    assert (record.error.type, record.error.message) == (
        "CheckFailed",
        "check `is_a` on `c` failed: expected a, got b",
    )
    c = step(record, "c")
    assert c.status is StepStatus.FAILED
    assert attempts(c) == [("call", "ok")]
    assert [(r.name, r.passed, r.on_fail) for r in c.checks] == [("is_a", False, "fail")]
    assert c.output == "b"
    assert record.usage.total_tokens == 8  # the call's tokens count even though it failed


async def test_check_fail_is_not_rescued_by_a_fallback() -> None:
    model = FakeModel({"c": Reply("b")})
    pipeline = classify(checks=[Check(is_a, on_fail="fail")], fallback=Fallback(default="a"))
    record = await Runner(pipeline, model=model).run("doc")
    assert record.status is RunStatus.FAILED


async def test_check_warn_records_the_failure_and_goes_on() -> None:
    model = FakeModel({"c": Reply("b")})
    record = await Runner(classify(checks=[Check(is_a, on_fail="warn")]), model=model).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert record.outputs == {"c": "b", "after": "b"}
    [result] = step(record, "c").checks
    assert (result.passed, result.message, result.on_fail) == (False, "expected a, got b", "warn")


async def test_the_strongest_failed_on_fail_wins() -> None:
    model = FakeModel({"c": Reply("b")})
    checks = [Check(is_a, on_fail="warn", name="soft"), Check(is_a, on_fail="review", name="hard")]
    record = await Runner(classify(checks=checks), model=model).run("doc")
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert [r.check for r in record.review.reasons] == ["hard"]

    checks = [Check(is_a, on_fail="review", name="soft"), Check(is_a, on_fail="fail", name="hard")]
    record = await Runner(classify(checks=checks), model=model).run("doc")
    assert record.status is RunStatus.FAILED
    assert record.error is not None
    assert record.error.message.startswith("check `hard` on `c` failed")


async def test_boolean_and_raising_checks() -> None:
    def positive(output: Any, state: State) -> bool:
        return output == "a"

    def broken(output: Any, state: State) -> bool:
        raise KeyError("total")

    model = FakeModel({"c": Reply("b")})
    checks = [Check(positive, on_fail="warn"), Check(broken, on_fail="warn", name="broken")]
    record = await Runner(classify(checks=checks), model=model).run("doc")

    assert [(r.name, r.passed, r.message) for r in step(record, "c").checks] == [
        ("positive", False, "positive failed"),
        ("broken", False, "check raised KeyError: 'total'"),
    ]


async def test_checks_on_rules_run_and_retry_the_rule() -> None:
    calls: list[int] = []

    def count(state: State) -> int:
        calls.append(1)
        return len(calls)

    def even(output: Any, state: State) -> bool:
        return output % 2 == 0

    pipeline = (
        PipelineBuilder("r").add(Rule("n", count, checks=[Check(even, on_fail="retry")])).build()
    )
    record = await Runner(pipeline).run("doc")
    assert record.outputs == {"n": 2}
    assert len(calls) == 2


async def test_free_text_confidence_comes_from_its_checks() -> None:
    def polite(output: Any, state: State) -> bool:
        return "please" in output

    def short(output: Any, state: State) -> bool:
        return len(output) < 100

    pipeline = (
        PipelineBuilder("d")
        .add(Draft("reply", checks=[Check(polite, on_fail="warn"), Check(short, on_fail="warn")]))
        .build()
    )
    record = await Runner(pipeline, model=FakeModel({"reply": Reply("No.")})).run("doc")
    assert step(record, "reply").confidence == Confidence(value=0.5, source="checks")


# --- fallbacks and on_exhausted ---------------------------------------------------------------


async def test_fallback_node_takes_over_instead_of_the_normal_edges() -> None:
    pipeline = (
        PipelineBuilder("t")
        .add(
            Classify(
                "c", labels=["a", "b"], retry=FAST, gate=None, fallback=Fallback(node="manual")
            )
        )
        .add(Rule("after", lambda s: s["c"]), after="c")
        .add(Rule("manual", lambda s: "queued for a person"))
        .build()
    )
    record = await Runner(pipeline, model=FakeModel({"c": Fail("unavailable")})).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert history(record) == [
        ("c", 1, "fallback", None, ("manual",)),
        ("manual", 1, "completed", None, ()),
    ]
    assert record.outputs == {"manual": "queued for a person"}
    c = step(record, "c")
    assert c.error is not None
    assert c.error.type == "RetriesExhausted"
    assert len(c.attempts) == 3


async def test_fallback_model_answers_once_more() -> None:
    backup = FakeModel({"c": Reply("b", confidence=0.9)}, name="backup")
    pipeline = classify(fallback=Fallback(model="backup"))
    record = await Runner(
        pipeline, model=FakeModel({"c": Fail("unavailable")}), models={"backup": backup}
    ).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert record.outputs == {"c": "b", "after": "b"}
    c = step(record, "c")
    assert [(a.kind, a.outcome, a.model) for a in c.attempts] == [
        ("call", "transient_error", "fake"),
        ("transport_retry", "transient_error", "fake"),
        ("transport_retry", "transient_error", "fake"),
        ("fallback_model", "ok", "backup"),
    ]
    assert c.model == "backup"
    assert len(backup.calls) == 1


async def test_fallback_model_given_as_an_instance() -> None:
    backup = FakeModel({"c": Reply("a")}, name="backup")
    record = await Runner(
        classify(fallback=Fallback(model=backup)), model=FakeModel({"c": Fail("timeout")})
    ).run("doc")
    assert record.outputs["c"] == "a"


async def test_a_failing_fallback_model_fails_the_run_with_all_attempts() -> None:
    backup = FakeModel({"c": Fail("exception")}, name="backup")
    record = await Runner(
        classify(fallback=Fallback(model=backup)), model=FakeModel({"c": Fail("unavailable")})
    ).run("doc")

    assert record.status is RunStatus.FAILED
    assert attempts(step(record, "c"))[-1] == ("call", "error")
    assert len(step(record, "c").attempts) == 4
    assert record.error is not None
    assert record.error.message == "`c` raised RuntimeError: scripted exception for `c`"


async def test_an_unknown_fallback_model_fails_the_step_and_keeps_its_attempts() -> None:
    record = await Runner(
        classify(fallback=Fallback(model="backup")), model=FakeModel({"c": Fail("unavailable")})
    ).run("doc")

    assert record.status is RunStatus.FAILED
    c = step(record, "c")
    assert c.status is StepStatus.FAILED
    assert len(c.attempts) == 3
    assert record.error is not None
    assert record.error.message == (
        "`c` asks for model 'backup', which the runner does not know; pass "
        "Runner(..., models={'backup': ...})"
    )


async def test_fallback_default_is_recorded_as_such_and_routes_a_classifier() -> None:
    pipeline = (
        PipelineBuilder("t")
        .add(
            Classify("c", labels=["a", "b"], retry=FAST, gate=None, fallback=Fallback(default="b"))
        )
        .add(Rule("A", lambda s: "A"), after="c", route="a")
        .add(Rule("B", lambda s: "B"), after="c", route="b")
        .build()
    )
    record = await Runner(pipeline, model=FakeModel({"c": Fail("unavailable")})).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert history(record) == [("c", 1, "completed", "b", ("B",)), ("B", 1, "completed", None, ())]
    assert step(record, "c").confidence == Confidence(value=0.0, source="fallback")


async def test_on_exhausted_review_sends_a_failed_node_to_a_person() -> None:
    runner = Runner(classify(on_exhausted="review"), model=FakeModel({"c": Fail("unavailable")}))
    record = await runner.run("doc")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert record.review.output is None
    [reason] = record.review.reasons
    assert reason.kind == "exhausted"
    assert reason.message.startswith("`c` failed 3 times with transient errors")

    with pytest.raises(InvalidDecision, match="has no output to approve"):
        await runner.resume(record.run_id, ReviewDecision.approve())
    done = await runner.resume(record.run_id, ReviewDecision.edit("b"))
    assert done.status is RunStatus.COMPLETED
    assert done.outputs == {"c": "b", "after": "b"}


# --- the reject band --------------------------------------------------------------------------


async def test_confidence_below_the_reject_band_fails_without_a_fallback() -> None:
    record = await Runner(low_confidence.pipeline, model=low_confidence.model(0.1)).run("doc")

    assert record.status is RunStatus.FAILED
    assert history(record) == [("category", 1, "failed", None, ())]
    assert record.error is not None
    assert record.error.type == "LowConfidence"
    assert record.error.message == (
        "`category` confidence 0.10 is below its reject band (0.2, scripted)"
    )


async def test_confidence_below_the_reject_band_takes_the_fallback_path() -> None:
    pipeline = (
        PipelineBuilder("t")
        .add(
            Classify(
                "c",
                labels=["a", "b"],
                gate=Gate(accept=0.9, reject=0.3),
                fallback=Fallback(node="manual"),
            )
        )
        .add(Rule("after", lambda s: s["c"]), after="c")
        .add(Rule("manual", lambda s: "manual"))
        .build()
    )
    record = await Runner(pipeline, model=FakeModel({"c": Reply("a", confidence=0.1)})).run("d")
    assert history(record) == [
        ("c", 1, "fallback", None, ("manual",)),
        ("manual", 1, "completed", None, ()),
    ]


async def test_confidence_below_the_reject_band_goes_to_review_when_declared() -> None:
    pipeline = (
        PipelineBuilder("t")
        .add(
            Classify(
                "c",
                labels=["a", "b"],
                gate=Gate(accept=0.9, reject=0.3),
                on_exhausted="review",
            )
        )
        .build()
    )
    record = await Runner(pipeline, model=FakeModel({"c": Reply("a", confidence=0.1)})).run("d")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    (reason,) = record.review.reasons
    assert (reason.kind, reason.value, reason.threshold) == ("rejected_band", 0.1, 0.3)
    assert reason.message == "`c` confidence 0.10 is below its reject band (0.3, scripted)"


# --- timeouts ---------------------------------------------------------------------------------


async def test_a_node_timeout_is_a_transient_error() -> None:
    model = FakeModel({"c": [Reply("a", latency=0.5), Reply("b")]})
    record = await Runner(classify(timeout=0.02), model=model).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert record.outputs["c"] == "b"
    c = step(record, "c")
    assert attempts(c) == [("call", "transient_error"), ("transport_retry", "ok")]
    assert c.attempts[0].error == "ProviderTimeout: `c` took longer than its timeout of 0.02s"


async def test_a_node_that_always_times_out_exhausts_its_retries() -> None:
    model = FakeModel({"c": Reply("a", latency=0.5)})
    started = time.perf_counter()
    record = await Runner(classify(timeout=0.02), model=model).run("doc")

    assert time.perf_counter() - started < 0.4
    assert record.status is RunStatus.FAILED
    assert record.error is not None
    assert record.error.message == (
        "`c` failed 3 times with transient errors (last: ProviderTimeout: `c` took longer than "
        "its timeout of 0.02s); retry later, or raise RetryPolicy(attempts=...) on the node"
    )


async def test_a_run_timeout_stops_the_run() -> None:
    model = FakeModel({"s": Reply("slow", latency=1.0)})
    pipeline = PipelineBuilder("slow", timeout=0.05).add(Summarize("s")).build()
    runner = Runner(pipeline, model=model)
    started = time.perf_counter()
    record = await runner.run("doc")

    assert time.perf_counter() - started < 0.5
    assert record.status is RunStatus.FAILED
    assert record.error is not None
    assert record.error.type == "RunTimeout"
    assert record.error.message == (
        f"run `{record.run_id}` took longer than its timeout of 0.05s; raise the timeout or "
        "look at the slowest step in `handrail runs show`"
    )


async def test_the_runner_timeout_overrides_the_pipeline() -> None:
    model = FakeModel({"s": Reply("slow", latency=0.1)})
    pipeline = PipelineBuilder("slow", timeout=0.01).add(Summarize("s")).build()
    record = await Runner(pipeline, model=model, timeout=5).run("doc")
    assert record.status is RunStatus.COMPLETED


# --- budgets ----------------------------------------------------------------------------------


def _costly(tokens: int = 60, cost: float = 0.02) -> FakeModel:
    usage = Usage(input_tokens=tokens, output_tokens=10, cost=cost)
    return FakeModel({"c": Reply("a", usage=usage)})


async def test_a_token_budget_stops_the_run_before_the_next_node() -> None:
    pipeline = (
        PipelineBuilder("t", budget=Budget(max_tokens=50))
        .add(Classify("c", labels=["a", "b"], gate=None))
        .add(Rule("after", lambda s: s["c"]), after="c")
        .build()
    )
    record = await Runner(pipeline, model=_costly()).run("doc")

    assert record.status is RunStatus.FAILED
    assert history(record) == [("c", 1, "completed", "a", ("after",))]
    assert record.usage.total_tokens == 70
    assert record.error is not None
    assert record.error.type == "BudgetExceeded"
    assert record.error.message == (
        f"run `{record.run_id}` used 70 tokens, over its budget of 50; raise "
        "Budget(max_tokens=...) or shorten the prompts"
    )


async def test_a_cost_budget_stops_the_run() -> None:
    record = await Runner(classify(), model=_costly(), budget=Budget(max_cost=0.01)).run("doc")
    assert record.status is RunStatus.FAILED
    assert record.error is not None
    assert record.error.message == (
        f"run `{record.run_id}` cost 0.0200, over its budget of 0.0100; raise "
        "Budget(max_cost=...) or use a cheaper model"
    )


async def test_a_run_within_its_budget_completes() -> None:
    budget = Budget(max_tokens=70, max_cost=0.02)
    record = await Runner(classify(), model=_costly(), budget=budget).run("doc")
    assert record.status is RunStatus.COMPLETED
    assert record.usage == Usage(input_tokens=60, output_tokens=10, cost=0.02)


async def test_retries_count_against_the_budget() -> None:
    usage = Usage(input_tokens=30, output_tokens=0)
    model = FakeModel({"c": [Reply("maybe", usage=usage), Reply("a", usage=usage)]})
    record = await Runner(classify(), model=model, budget=Budget(max_tokens=50)).run("doc")
    assert record.status is RunStatus.FAILED
    assert record.usage.total_tokens == 60


# --- loop limit -------------------------------------------------------------------------------


async def test_a_loop_past_its_limit_fails_the_run() -> None:
    model = cyclic.model(wrong_times=3)
    record = await Runner(cyclic.pipeline, model=model).run("invoice text")

    assert record.status is RunStatus.FAILED
    assert len(model.calls) == 3
    assert history(record)[-1] == ("totals_match", 3, "failed", "retry", ())
    assert record.error is not None
    assert record.error.type == "LoopLimitReached"
    assert record.error.message == (
        "`totals_match` chose to go back to `invoice` again, but that loop's limit (2) is "
        "reached; raise max_loops or give the node a fallback"
    )


async def test_a_loop_past_its_limit_takes_the_fallback_node() -> None:
    pipeline = (
        PipelineBuilder("cyclic")
        .add(Extract("invoice", cyclic.Invoice, gate=None))
        .add(
            Rule(
                "totals_match",
                cyclic.totals_match,
                routes=["ok", "retry"],
                fallback=Fallback(node="manual"),
            ),
            after="invoice",
        )
        .add(Rule("done", lambda s: s["invoice"].total), after="totals_match", route="ok")
        .add(Rule("manual", lambda s: "manual"))
        .edge("totals_match", "invoice", route="retry", max_loops=1)
        .build()
    )
    record = await Runner(pipeline, model=cyclic.model(wrong_times=5)).run("invoice text")

    assert record.status is RunStatus.COMPLETED
    assert history(record)[-2:] == [
        ("totals_match", 2, "fallback", "retry", ("manual",)),
        ("manual", 1, "completed", None, ()),
    ]
    assert record.outputs["manual"] == "manual"
