"""Independent branches run at the same time; joins wait only for branches that were taken;
`run_many` keeps at most N runs in flight and one broken document fails only its own run."""

from __future__ import annotations

import time
from typing import Any

import pytest
from tests.pipelines import branches

from handrail import (
    Fail,
    FakeModel,
    Hooks,
    InputError,
    ModelRequest,
    PipelineBuilder,
    Reply,
    Route,
    Rule,
    Runner,
    RunStatus,
    Summarize,
)

from ._helpers import history


async def test_independent_llm_branches_run_concurrently() -> None:
    runner = Runner(branches.concurrent, model=branches.model(latency=0.2))
    started = time.perf_counter()
    record = await runner.run("Please refund order A-17.")
    elapsed = time.perf_counter() - started

    assert record.status is RunStatus.COMPLETED
    assert record.outputs["both"] == ("short", "hello")
    assert elapsed < 0.35, f"two 0.2 s branches took {elapsed:.3f} s: they ran one after another"


async def test_a_join_waits_for_every_taken_branch() -> None:
    model = FakeModel(
        {"summary": Reply("short", latency=0.1), "reply": Reply("hello", latency=0.01)}
    )
    record = await Runner(branches.concurrent, model=model).run("doc")

    assert [s.node for s in record.steps] == ["reply", "summary", "both"]
    assert [s.next for s in record.steps] == [("both",), ("both",), ()]


def pick_one() -> Any:
    return (
        PipelineBuilder("pick")
        .add(Rule("pick", lambda s: Route("slow"), routes=["slow", "fast"]))
        .add(Summarize("slow"), after="pick", route="slow")
        .add(Rule("fast", lambda s: "fast"), after="pick", route="fast")
        .add(
            Rule("join", lambda s: sorted(k for k in ("slow", "fast") if k in s)),
            after=["slow", "fast"],
        )
        .build()
    )


async def test_a_join_does_not_wait_for_a_branch_that_was_not_taken() -> None:
    model = FakeModel({"slow": Reply("done", latency=0.05)})
    record = await Runner(pick_one(), model=model).run("doc")

    assert history(record) == [
        ("pick", 1, "completed", "slow", ("slow",)),
        ("slow", 1, "completed", None, ("join",)),
        ("join", 1, "completed", None, ()),
    ]
    assert record.outputs["join"] == ["slow"]


async def test_a_failing_branch_stops_the_others_at_once() -> None:
    pipeline = (
        PipelineBuilder("fail_fast", start=["slow", "broken"])
        .add(Summarize("slow"))
        .add(Summarize("broken"))
        .build()
    )
    model = FakeModel({"slow": Reply("done", latency=2.0), "broken": Fail("exception")})
    started = time.perf_counter()
    record = await Runner(pipeline, model=model).run("doc")

    assert time.perf_counter() - started < 1.0
    assert record.status is RunStatus.FAILED
    assert record.error is not None and record.error.type == "StepFailed"
    # The branch still running is stopped, and its step says so.
    assert [(s.node, s.status.value) for s in record.steps] == [
        ("broken", "failed"),
        ("slow", "failed"),
    ]
    cancelled = record.steps[1].error
    assert cancelled is not None and cancelled.type == "Cancelled"
    assert cancelled.message == "`slow` was stopped because the run ended while it ran"


async def test_a_step_overtaken_by_a_loop_is_superseded_and_runs_again() -> None:
    decisions = iter(["again", "done"])
    pipeline = (
        PipelineBuilder("superseded")
        .add(Rule("start", lambda s: "A"))
        .add(
            Rule("decide", lambda s: Route(next(decisions)), routes=["again", "done"]),
            after="start",
        )
        .add(Summarize("slow"), after="start")
        .add(Rule("end", lambda s: s["slow"]), after="slow")
        .edge("decide", "end", route="done")
        .edge("decide", "start", route="again", max_loops=1)
        .build()
    )
    model = FakeModel({"slow": Reply("summary", latency=0.05)})
    record = await Runner(pipeline, model=model).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert [(s.node, s.visit, s.status.value) for s in record.steps] == [
        ("start", 1, "completed"),
        ("decide", 1, "completed"),
        ("start", 2, "completed"),
        ("decide", 2, "completed"),
        ("slow", 1, "superseded"),
        ("slow", 2, "completed"),
        ("end", 1, "completed"),
    ]
    assert len(model.calls) == 2


# --- run_many ----------------------------------------------------------------------------------


class _InFlight(Hooks):
    """Counts model calls in flight: the script increments, the finished hook decrements."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def started(self, request: ModelRequest) -> Reply:
        self.now += 1
        self.most = max(self.most, self.now)
        return Reply("summary", latency=0.02)

    def model_call_finished(self, **_: Any) -> None:
        self.now -= 1


def one_llm_node() -> Any:
    return PipelineBuilder("one").add(Summarize("s")).build()


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_run_many_never_has_more_than_n_runs_in_flight(concurrency: int) -> None:
    counter = _InFlight()
    runner = Runner(one_llm_node(), model=FakeModel({"s": counter.started}), hooks=[counter])
    documents = [f"document {i}" for i in range(12)]
    records = await runner.run_many(documents, concurrency=concurrency)

    assert counter.most == concurrency
    assert counter.now == 0
    assert [r.status for r in records] == [RunStatus.COMPLETED] * 12
    assert [r.document.text for r in records] == documents  # results in input order


async def test_run_many_refuses_a_concurrency_below_one() -> None:
    with pytest.raises(ValueError, match="concurrency=0: use 1 or more"):
        await Runner(one_llm_node()).run_many(["a"], concurrency=0)


async def test_a_broken_document_fails_only_its_own_run() -> None:
    runner = Runner(one_llm_node(), model=FakeModel({"s": Reply("ok")}))
    unreadable = InputError("cannot read scan.pdf: not a text file")
    records = await runner.run_many(["first", unreadable, "   ", "last"], concurrency=2)

    assert [r.status for r in records] == [
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
    ]
    assert records[1].error is not None
    assert (records[1].error.type, records[1].error.message) == (
        "InputError",
        "cannot read scan.pdf: not a text file",
    )
    assert records[1].document_id == "unreadable"
    assert records[2].error is not None
    assert records[2].error.message == (
        f"document `{records[2].document_id}` is empty; there is nothing to process "
        "(check the file, or leave it out of the batch)"
    )
    assert records[2].steps == ()
    assert runner.store.get_run(records[1].run_id) == records[1]


async def test_a_document_whose_node_fails_does_not_fail_the_batch() -> None:
    def script(request: ModelRequest) -> Reply | Fail:
        return Fail("exception") if "bad" in request.messages[-1].content else Reply("ok")

    runner = Runner(one_llm_node(), model=FakeModel({"s": script}))
    records = await runner.run_many(["good one", "bad one", "good two"])
    assert [r.status.value for r in records] == ["completed", "failed", "completed"]


async def test_iter_many_yields_each_run_as_soon_as_it_ends() -> None:
    def script(request: ModelRequest) -> Reply:
        return Reply("ok", latency=0.1 if "slow" in request.messages[-1].content else 0.0)

    runner = Runner(one_llm_node(), model=FakeModel({"s": script}))
    seen = [r.document.text async for r in runner.iter_many(["slow", "quick"], concurrency=2)]
    assert seen == ["quick", "slow"]


async def test_run_many_reports_each_result_as_it_comes() -> None:
    seen: list[str] = []
    runner = Runner(one_llm_node(), model=FakeModel({"s": Reply("ok")}))
    records = await runner.run_many(["a", "b"], on_result=lambda r: seen.append(r.run_id))
    assert sorted(seen) == sorted(r.run_id for r in records)


async def test_skipping_spreads_down_a_branch_not_taken() -> None:
    pipeline = (
        PipelineBuilder("deep")
        .add(Rule("pick", lambda s: Route("short"), routes=["long", "short"]))
        .add(Rule("long_1", lambda s: 1), after="pick", route="long")
        .add(Rule("long_2", lambda s: 2), after="long_1")
        .add(Rule("short", lambda s: 3), after="pick", route="short")
        .add(Rule("join", lambda s: sorted(s)), after=["long_2", "short"])
        .build()
    )
    record = await Runner(pipeline).run("doc")

    assert [s.node for s in record.steps] == ["pick", "short", "join"]
    assert record.outputs["join"] == ["pick", "short"]


async def test_the_same_document_twice_in_one_batch_runs_once() -> None:
    model = FakeModel({"slow": Reply("done", latency=0.05)})
    pipeline = PipelineBuilder("twice").add(Summarize("slow")).build()
    runner = Runner(pipeline, model=model)

    first, second = await runner.run_many(["same text", "same text"], concurrency=2)

    assert first.run_id == second.run_id
    assert first.status is second.status is RunStatus.COMPLETED
    assert len(model.calls) == 1
    assert len([s for s in first.steps if s.node == "slow"]) == 1
