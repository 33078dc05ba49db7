"""Hooks observe runs: events in order, keyword arguments only, nothing for what a hook does
not override."""

from __future__ import annotations

from typing import Any

from inline_snapshot import snapshot
from tests.pipelines import flaky, low_confidence

from handrail import Fail, FakeModel, Hooks, Reply, ReviewDecision, Runner, RunStatus
from handrail.core.hooks import HookSet


class Recorder(Hooks):
    """Records every event with the names of the keyword arguments it got."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.kwargs: dict[str, list[str]] = {}

    def _seen(self, event: str, kwargs: dict[str, Any], *detail: Any) -> None:
        self.kwargs.setdefault(event, sorted(kwargs))
        self.events.append((event, *detail))

    def run_started(self, **kwargs: Any) -> None:
        self._seen("run_started", kwargs, kwargs["resumed"])

    def run_finished(self, **kwargs: Any) -> None:
        self._seen("run_finished", kwargs, kwargs["run"].status.value)

    def step_started(self, **kwargs: Any) -> None:
        self._seen("step_started", kwargs, kwargs["node"], kwargs["visit"])

    def step_finished(self, **kwargs: Any) -> None:
        step = kwargs["step"]
        self._seen("step_finished", kwargs, step.node, step.status.value)

    def model_call_started(self, **kwargs: Any) -> None:
        self._seen("model_call_started", kwargs, kwargs["node"], kwargs["call_id"])

    def model_call_finished(self, **kwargs: Any) -> None:
        error = kwargs["error"]
        self._seen(
            "model_call_finished",
            kwargs,
            kwargs["node"],
            kwargs["call_id"],
            type(error).__name__ if error else None,
        )

    def review_requested(self, **kwargs: Any) -> None:
        self._seen("review_requested", kwargs, kwargs["request"].node)

    def review_decided(self, **kwargs: Any) -> None:
        self._seen("review_decided", kwargs, kwargs["decision"].action, kwargs["request"].status)


async def test_event_order_for_a_run_paused_for_review_and_resumed() -> None:
    recorder = Recorder()
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), hooks=[recorder])
    record = await runner.run("doc")
    await runner.resume(record.run_id, ReviewDecision.approve())

    assert recorder.events == snapshot(
        [
            ("run_started", False),
            ("step_started", "category", 1),
            ("model_call_started", "category", 1),
            ("model_call_finished", "category", 1, None),
            ("step_finished", "category", "needs_review"),
            ("review_requested", "category"),
            ("run_finished", "needs_review"),
            ("review_decided", "approve", "decided"),
            ("run_started", True),
            ("step_finished", "category", "completed"),
            ("step_started", "shout", 1),
            ("step_finished", "shout", "completed"),
            ("run_finished", "completed"),
        ]
    )


async def test_every_retry_is_its_own_model_call() -> None:
    recorder = Recorder()
    await Runner(flaky.pipeline, model=flaky.model(failures=2), hooks=[recorder]).run("doc")

    calls = [e for e in recorder.events if e[0].startswith("model_call")]
    assert calls == [
        ("model_call_started", "category", 1),
        ("model_call_finished", "category", 1, "RateLimited"),
        ("model_call_started", "category", 2),
        ("model_call_finished", "category", 2, "RateLimited"),
        ("model_call_started", "category", 3),
        ("model_call_finished", "category", 3, None),
    ]


async def test_hooks_get_keyword_arguments_named_as_documented() -> None:
    recorder = Recorder()
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), hooks=[recorder])
    record = await runner.run("doc")
    await runner.resume(record.run_id, ReviewDecision.approve())

    assert recorder.kwargs == snapshot(
        {
            "run_started": ["document", "pipeline", "resumed", "run_id", "trace_context"],
            "step_started": ["kind", "node", "run_id", "visit"],
            "model_call_started": ["call_id", "model", "node", "request", "run_id"],
            "model_call_finished": [
                "call_id",
                "duration_s",
                "error",
                "model",
                "node",
                "response",
                "run_id",
            ],
            "step_finished": ["step"],
            "review_requested": ["request"],
            "run_finished": ["run"],
            "review_decided": ["decision", "request", "trace_context"],
        }
    )


class KeywordOnly(Hooks):
    """Written the way the docs ask: keyword-only, with `**_` for fields added later."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def run_started(self, *, run_id: str, pipeline: str, **_: Any) -> None:
        self.seen.append(f"start {pipeline}")

    def step_finished(self, *, step: Any, **_: Any) -> None:
        self.seen.append(f"step {step.node}")

    def run_finished(self, *, run: Any, **_: Any) -> None:
        self.seen.append(f"end {run.status.value}")


async def test_keyword_only_hooks_with_a_catch_all_work() -> None:
    hook = KeywordOnly()
    record = await Runner(flaky.pipeline, model=flaky.model(failures=0), hooks=[hook]).run("d")
    assert record.status is RunStatus.COMPLETED
    assert hook.seen == ["start flaky", "step category", "end completed"]


async def test_several_hooks_are_called_in_the_order_given() -> None:
    order: list[str] = []

    class Named(Hooks):
        def __init__(self, name: str) -> None:
            self.name = name

        def run_finished(self, **_: Any) -> None:
            order.append(self.name)

    await Runner(flaky.pipeline, model=flaky.model(0), hooks=[Named("a"), Named("b")]).run("d")
    assert order == ["a", "b"]


def test_only_overridden_methods_are_dispatched() -> None:
    class OnlySteps(Hooks):
        def step_finished(self, **_: Any) -> None:
            pass

    only = OnlySteps()
    hooks = HookSet([only, Hooks()])
    assert hooks.step_finished == (only.step_finished,)
    for event in (
        "run_started",
        "run_finished",
        "step_started",
        "model_call_started",
        "model_call_finished",
        "review_requested",
        "review_decided",
        "hook_failed",
    ):
        assert getattr(hooks, event) == (), event


async def test_a_plain_hooks_instance_is_never_called() -> None:
    class Tripwire(Hooks):
        """Overrides nothing; any attribute lookup of an event at run time would be a cost."""

        looked_up: list[str] = []  # noqa: RUF012

        def __getattribute__(self, name: str) -> Any:
            type(self).looked_up.append(name)
            return super().__getattribute__(name)

    hook = Tripwire()
    runner = Runner(flaky.pipeline, model=FakeModel({"category": Reply("bug")}), hooks=[hook])
    Tripwire.looked_up.clear()
    record = await runner.run("doc")
    assert record.status is RunStatus.COMPLETED
    assert Tripwire.looked_up == []


async def test_model_call_finished_reports_the_error_of_a_failed_call() -> None:
    errors: list[BaseException | None] = []

    class Errors(Hooks):
        def model_call_finished(self, *, error: BaseException | None, **_: Any) -> None:
            errors.append(error)

    model = FakeModel({"category": [Fail("timeout"), Reply("bug")]})
    await Runner(flaky.pipeline, model=model, hooks=[Errors()]).run("doc")
    assert [type(e).__name__ for e in errors] == ["ProviderTimeout", "NoneType"]
