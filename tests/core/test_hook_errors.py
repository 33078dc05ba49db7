"""A hook never breaks a run (issue 12, A5): whatever hook method raises, the error is logged once,
kept as a warning on the run's record, reported to the other hooks (`hook_failed`), and the run
ends as it would have without the hook. Async hook methods are awaited inside their own run."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from tests.pipelines import flaky, low_confidence

from handrail import Hooks, ReviewDecision, Runner, RunStatus
from handrail.core.hooks import HookSet

EVENTS = [
    "run_started",
    "run_finished",
    "step_started",
    "step_finished",
    "model_call_started",
    "model_call_finished",
    "review_requested",
    "review_decided",
]


class Notify(Hooks):
    """Posts each review to a helpdesk that is down."""

    def review_requested(self, **_: Any) -> None:
        raise ConnectionError("helpdesk down")


async def test_a_review_requested_hook_that_raises_does_not_fail_the_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), hooks=[Notify()])
    with caplog.at_level(logging.WARNING, logger="handrail.hooks"):
        record = await runner.run("it crashes")

    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.error is None
    warning = "hook Notify.review_requested raised ConnectionError: helpdesk down; the run went on"
    assert record.warnings == (warning,)
    stored = runner.store.get_run(record.run_id)
    assert stored is not None and stored.warnings == (warning,)
    logged = [r for r in caplog.records if r.name == "handrail.hooks"]
    assert len(logged) == 1
    assert logged[0].getMessage().startswith(warning)

    resumed = await runner.resume(record.run_id, ReviewDecision.approve())
    assert resumed.status is RunStatus.COMPLETED
    assert resumed.warnings == (warning,)  # kept across the pause


def raising(event: str, error: Exception) -> Hooks:
    def method(self: Hooks, **_: Any) -> None:
        raise error

    return type("Broken", (Hooks,), {event: method})()


@pytest.mark.parametrize("event", EVENTS)
async def test_no_hook_method_can_break_a_run(event: str) -> None:
    """One policy for every method: the run ends as it would without the hook."""
    seen: list[str] = []

    def record_event(self: Hooks, **_: Any) -> None:
        seen.append(event)

    after = type("After", (Hooks,), {event: record_event})()  # listed after the broken one
    hooks = [raising(event, RuntimeError("boom")), after]
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), hooks=hooks)
    record = await runner.run("doc")
    assert record.status is RunStatus.NEEDS_REVIEW
    record = await runner.resume(record.run_id, ReviewDecision.approve())

    assert record.status is RunStatus.COMPLETED
    assert record.outputs == {"category": "bug", "shout": "BUG"}
    assert record.warnings
    assert set(record.warnings) == {
        f"hook Broken.{event} raised RuntimeError: boom; the run went on"
    }
    assert seen  # the hook after the broken one still ran
    stored = runner.store.get_run(record.run_id)
    assert stored is not None and stored.warnings == record.warnings


async def test_the_same_error_is_logged_once_and_kept_on_every_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = Runner(
        flaky.pipeline,
        model=flaky.model(0),
        hooks=[raising("step_finished", ConnectionError("collector down"))],
    )
    with caplog.at_level(logging.WARNING, logger="handrail.hooks"):
        records = await runner.run_many([f"doc {i}" for i in range(5)])

    assert [r.status for r in records] == [RunStatus.COMPLETED] * 5
    assert all(len(r.warnings) == 1 for r in records)
    assert len([r for r in caplog.records if r.name == "handrail.hooks"]) == 1


async def test_other_hooks_hear_of_the_error() -> None:
    reports: list[tuple[Any, ...]] = []

    class Listener(Hooks):
        def hook_failed(
            self, *, run_id: str | None, hook: str, method: str, error: Exception, **_: Any
        ) -> None:
            reports.append((run_id, hook, method, type(error).__name__))

    runner = Runner(
        low_confidence.pipeline, model=low_confidence.model(0.6), hooks=[Notify(), Listener()]
    )
    record = await runner.run("doc")
    assert reports == [(record.run_id, "Notify", "review_requested", "ConnectionError")]


async def test_a_failing_input_keeps_the_hook_error_too() -> None:
    runner = Runner(
        flaky.pipeline, model=flaky.model(0), hooks=[raising("run_finished", OSError("x"))]
    )
    record = runner.failed_input(OSError("cannot read a.txt"), document_id="a.txt")
    assert record.status is RunStatus.FAILED
    assert record.warnings == ("hook Broken.run_finished raised OSError: x; the run went on",)


# --- async hook methods ---------------------------------------------------------------------------


class SlowNotify(Hooks):
    """An async hook that takes its time (a webhook): awaited, without holding up other runs."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.finished: list[str] = []
        self.steps: list[str] = []

    async def step_finished(self, *, step: Any, **_: Any) -> None:
        self.steps.append(step.node)

    async def run_finished(self, *, run: Any, **_: Any) -> None:
        await asyncio.sleep(self.delay)
        self.finished.append(run.run_id)


async def test_async_hooks_are_awaited_without_blocking_other_runs() -> None:
    hook = SlowNotify(0.3)
    runner = Runner(flaky.pipeline, model=flaky.model(0), hooks=[hook])
    t0 = time.perf_counter()
    records = await runner.run_many([f"doc {i}" for i in range(8)], concurrency=8)
    elapsed = time.perf_counter() - t0

    assert sorted(hook.finished) == sorted(r.run_id for r in records)  # every one awaited
    assert hook.steps == ["category"] * 8
    assert elapsed < 8 * 0.3 / 2, elapsed  # side by side, not one after another


async def test_an_async_hook_that_raises_is_a_warning_too() -> None:
    class Broken(Hooks):
        async def review_requested(self, **_: Any) -> None:
            await asyncio.sleep(0)
            raise ConnectionError("helpdesk down")

    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), hooks=[Broken()])
    record = await runner.run("doc")
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.warnings == (
        "hook Broken.review_requested raised ConnectionError: helpdesk down; the run went on",
    )


def test_hook_failed_is_dispatched_only_to_hooks_that_override_it() -> None:
    assert HookSet([Notify()]).hook_failed == ()
