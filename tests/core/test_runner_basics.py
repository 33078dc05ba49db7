"""The in-memory runner on the happy path: steps, outputs, routing, documents, run ids."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from inline_snapshot import snapshot
from pydantic import TypeAdapter
from tests.pipelines import branches, cyclic, happy, low_confidence

from handrail import (
    Action,
    Classify,
    Confidence,
    Document,
    FakeModel,
    PipelineBuilder,
    Reply,
    ReviewDecision,
    Route,
    Rule,
    Runner,
    RunRecord,
    RunStatus,
    State,
    StepStatus,
    Summarize,
)
from handrail.core.execute import idempotency_key
from handrail.exceptions import ProviderUnavailable

from ._helpers import FAST, attempts, history, step

TICKET = "Order A-17: I want a refund please"


async def test_happy_path_runs_every_node_in_order() -> None:
    model = happy.model()
    record = await Runner(happy.pipeline, model=model).run(TICKET)

    assert record.status is RunStatus.COMPLETED
    assert record.error is None
    assert history(record) == snapshot(
        [
            ("category", 1, "completed", "refund", ("order",)),
            ("order", 1, "completed", None, ("with_tax",)),
            ("with_tax", 1, "completed", None, ("reply",)),
            ("reply", 1, "completed", None, ()),
        ]
    )
    assert record.outputs["category"] == "refund"
    assert record.outputs["order"] == happy.Order(order_id="A-17", amount=100.0)
    assert record.outputs["with_tax"] == 120.0
    assert record.outputs["reply"] == "Dear customer, your refund for A-17 is on its way."
    assert [c.node for c in model.calls] == ["category", "order", "reply"]


async def test_steps_record_confidence_attempts_model_and_usage() -> None:
    record = await Runner(happy.pipeline, model=happy.model()).run(TICKET)

    category = step(record, "category")
    assert category.confidence == Confidence(value=0.97, source="scripted")
    assert attempts(category) == [("call", "ok")]
    assert category.model == "fake"
    assert category.usage.total_tokens > 0
    order = step(record, "order")
    # an extraction's confidence is its weakest required field
    assert order.confidence == Confidence(value=0.95, source="scripted")
    assert dict(order.field_confidence) == {
        "order_id": Confidence(value=0.99, source="scripted"),
        "amount": Confidence(value=0.95, source="scripted"),
    }
    rule = step(record, "with_tax")
    assert rule.confidence == Confidence(value=1.0, source="rule")
    assert rule.attempts == ()
    assert record.usage.total_tokens == sum(s.usage.total_tokens for s in record.steps)
    assert record.usage.total_tokens > 0


async def test_prompts_see_the_document_and_earlier_outputs() -> None:
    model = happy.model()
    await Runner(happy.pipeline, model=model).run(TICKET)

    [reply] = model.calls_for("reply")
    assert [m.role for m in reply.messages] == ["user"]
    assert reply.messages[0].content == (
        "Write a reply to this refund ticket about order A-17:\n\n" + TICKET
    )
    [order] = model.calls_for("order")
    assert [m.role for m in order.messages] == ["system", "user"]
    assert order.messages[1].content == "The ticket is about: refund\n\n" + TICKET
    assert '"order_id"' in order.messages[0].content  # the schema is in the prompt


async def test_model_requests_carry_what_a_provider_needs() -> None:
    model = happy.model()
    record = await Runner(happy.pipeline, model=model).run(TICKET)

    category, order, reply = model.calls
    assert (category.kind, tuple(category.labels), category.attempt) == (
        "classify",
        ("refund", "bug", "question"),
        1,
    )
    assert category.output_schema == {"type": "string", "enum": ["refund", "bug", "question"]}
    assert order.kind == "extract"
    assert order.output_schema is not None
    assert order.output_schema["required"] == ["order_id", "amount"]
    assert reply.output_schema is None
    assert {c.run_id for c in model.calls} == {record.run_id}
    assert {c.document_id for c in model.calls} == {record.document_id}


async def test_node_params_reach_the_model() -> None:
    pipeline = (
        PipelineBuilder("params")
        .add(Summarize("summary", params={"temperature": 0.0, "max_tokens": 50}))
        .build()
    )
    model = FakeModel({"summary": Reply("short")})
    await Runner(pipeline, model=model).run("A long text.")
    assert dict(model.calls[0].params) == {"temperature": 0.0, "max_tokens": 50}


async def test_run_record_describes_the_run() -> None:
    runner = Runner(happy.pipeline, model=happy.model())
    record = await runner.run(Document(text=TICKET, id="tickets/17.txt"))

    assert record.pipeline == "happy"
    assert record.document_id == "tickets/17.txt"
    assert record.document_hash == Document(text=TICKET).hash
    assert record.run_id == runner.run_id_for(TICKET)
    assert record.started_at is not None and record.ended_at is not None
    assert record.started_at <= record.ended_at
    assert record.duration_s > 0
    assert runner.store.get_run(record.run_id) == record
    assert record.document.text == TICKET


async def test_timestamps_come_from_the_patchable_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    monkeypatch.setattr("handrail.core.runner.now", lambda: fixed)
    monkeypatch.setattr("handrail.core.runner.new_id", lambda prefix: f"{prefix}-1")

    record = await Runner(branches.pipeline).run("short", rerun=True)
    assert record.run_id == "run-1"
    assert (record.started_at, record.ended_at) == (fixed, fixed)
    assert {s.started_at for s in record.steps} == {fixed}


@pytest.mark.parametrize(
    ("document", "text"),
    [
        ("plain text", "plain text"),
        ({"b": 2, "a": "x"}, '{"a": "x", "b": 2}'),
        (Document(text="given", id="doc-1"), "given"),
    ],
)
async def test_documents_can_be_text_mappings_or_documents(document: Any, text: str) -> None:
    seen: list[str] = []
    pipeline = PipelineBuilder("echo").add(Rule("echo", lambda s: seen.append(s.text))).build()
    record = await Runner(pipeline).run(document)
    assert record.status is RunStatus.COMPLETED
    assert seen == [text]


async def test_the_same_document_is_not_run_twice_unless_asked() -> None:
    calls: list[str] = []
    pipeline = PipelineBuilder("once").add(Rule("count", lambda s: calls.append(s.text))).build()
    runner = Runner(pipeline)

    first = await runner.run("same text")
    second = await runner.run("same text")
    assert second == first
    assert calls == ["same text"]

    third = await runner.run("same text", rerun=True)
    assert third.run_id != first.run_id
    assert calls == ["same text", "same text"]

    named = await runner.run("same text", run_id="my-run")
    assert named.run_id == "my-run"
    assert len(calls) == 3


async def test_a_failed_run_is_run_again() -> None:
    results: list[Any] = [RuntimeError("down"), "ok"]

    def flaky(state: State) -> Any:
        result = results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    runner = Runner(PipelineBuilder("again").add(Rule("flaky", flaky)).build())
    first = await runner.run("doc")
    assert first.status is RunStatus.FAILED
    second = await runner.run("doc")
    assert second.run_id == first.run_id
    assert second.status is RunStatus.COMPLETED
    assert second.outputs == {"flaky": "ok"}


def test_run_sync_for_code_that_is_not_async() -> None:
    record = Runner(branches.pipeline).run_sync("tiny")
    assert record.outputs == {"size": 4, "small": "S", "join": ["small"]}


# --- rules and routing -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "branch"),
    [("short", "small"), ("x" * 30, "medium"), ("x" * 80, "large")],
)
async def test_a_rule_route_picks_one_branch_and_the_others_are_skipped(
    text: str, branch: str
) -> None:
    record = await Runner(branches.pipeline).run(text)

    assert record.status is RunStatus.COMPLETED
    assert history(record) == [
        ("size", 1, "completed", branch, (branch,)),
        (branch, 1, "completed", None, ("join",)),
        ("join", 1, "completed", None, ()),
    ]
    assert record.outputs["size"] == len(text)  # Route(output=...) is the rule's output
    assert record.outputs["join"] == [branch]


async def test_async_rules_are_awaited() -> None:
    async def later(state: State) -> str:
        await asyncio.sleep(0)
        return "done"

    record = await Runner(PipelineBuilder("a").add(Rule("later", later)).build()).run("x")
    assert record.outputs == {"later": "done"}


async def test_edge_conditions_choose_where_to_go() -> None:
    pipeline = (
        PipelineBuilder("cond")
        .add(Rule("length", lambda s: len(s.text)))
        .add(Rule("long", lambda s: "long"), after="length", when=lambda s: s["length"] > 5)
        .add(Rule("short", lambda s: "short"), after="length", when=lambda s: s["length"] <= 5)
        .build()
    )
    runner = Runner(pipeline)
    assert (await runner.run("abc")).outputs == {"length": 3, "short": "short"}
    assert (await runner.run("abcdefgh")).outputs == {"length": 8, "long": "long"}


async def test_a_rule_that_raises_fails_its_step_and_the_run() -> None:
    def broken(state: State) -> int:
        raise ZeroDivisionError("division by zero")

    pipeline = (
        PipelineBuilder("broken")
        .add(Rule("broken", broken))
        .add(Rule("after", lambda s: 1), after="broken")
        .build()
    )
    record = await Runner(pipeline).run("x")

    assert record.status is RunStatus.FAILED
    assert history(record) == [("broken", 1, "failed", None, ())]
    assert record.error is not None
    assert record.error.type == "StepFailed"
    assert record.error.message == "rule `broken` raised ZeroDivisionError: division by zero"
    assert step(record, "broken").error == record.error


async def test_reading_a_node_that_did_not_run_names_it() -> None:
    pipeline = PipelineBuilder("p").add(Rule("r", lambda s: s["missing"])).build()
    record = await Runner(pipeline).run("x")
    assert record.error is not None
    assert record.error.message.startswith(
        "rule `r` raised NoOutput: `missing` has no output in this run"
    )


async def test_a_rule_returning_an_undeclared_route() -> None:
    pipeline = (
        PipelineBuilder("p")
        .add(Rule("r", lambda s: Route("nope"), routes=["x"]))
        .add(Rule("t", lambda s: 2), after="r", route="x")
        .build()
    )
    record = await Runner(pipeline).run("x")
    assert record.status is RunStatus.FAILED
    assert record.error is not None
    assert record.error.message == (
        "rule `r` returned route `nope`, which it does not declare (declared: `x`); "
        "add it to routes=[...] and give it an edge"
    )


async def test_an_edge_condition_that_raises_fails_the_run_with_a_clear_message() -> None:
    pipeline = (
        PipelineBuilder("p")
        .add(Rule("r", lambda s: 1))
        .add(Rule("t", lambda s: 2), after="r", when=lambda s: 1 / 0 > 0)
        .build()
    )
    record = await Runner(pipeline).run("x")
    assert record.status is RunStatus.FAILED
    assert step(record, "r").status is StepStatus.FAILED
    assert record.error is not None
    assert record.error.message == (
        "the condition on edge `r` -> `t` raised ZeroDivisionError: division by zero; "
        "fix the condition"
    )


async def test_a_bounded_loop_runs_again_until_the_rule_is_satisfied() -> None:
    model = cyclic.model(wrong_times=2)
    record = await Runner(cyclic.pipeline, model=model).run("invoice text")

    assert record.status is RunStatus.COMPLETED
    assert history(record) == snapshot(
        [
            ("invoice", 1, "completed", None, ("totals_match",)),
            ("totals_match", 1, "completed", "retry", ("invoice",)),
            ("invoice", 2, "completed", None, ("totals_match",)),
            ("totals_match", 2, "completed", "retry", ("invoice",)),
            ("invoice", 3, "completed", None, ("totals_match",)),
            ("totals_match", 3, "completed", "ok", ("done",)),
            ("done", 1, "completed", None, ()),
        ]
    )
    assert len(model.calls) == 3
    assert record.outputs["done"] == 10.0


# --- actions ---------------------------------------------------------------------------------


async def test_actions_get_an_idempotency_key_that_survives_retries() -> None:
    keys: list[str] = []

    def notify(state: State, key: str) -> dict[str, bool]:
        keys.append(key)
        if len(keys) == 1:
            raise ProviderUnavailable("503 from the ticket system")
        return {"sent": True}

    async def archive(state: State, key: str) -> str:
        keys.append(key)
        return "archived"

    pipeline = (
        PipelineBuilder("act")
        .add(Action("notify", notify, retry=FAST))
        .add(Action("archive", archive), after="notify")
        .build()
    )
    record = await Runner(pipeline).run("doc")

    assert record.status is RunStatus.COMPLETED
    assert record.outputs == {"notify": {"sent": True}, "archive": "archived"}
    run = record.run_id
    assert keys == [f"{run}:notify", f"{run}:notify", f"{run}:archive"]
    assert attempts(step(record, "notify")) == [
        ("call", "transient_error"),
        ("transport_retry", "ok"),
    ]


def test_idempotency_keys_in_loops_carry_the_visit() -> None:
    assert idempotency_key("run-1", "notify", 1) == "run-1:notify"
    assert idempotency_key("run-1", "notify", 3) == "run-1:notify:3"


# --- models ----------------------------------------------------------------------------------


async def test_an_llm_node_without_a_model_fails_its_step_clearly() -> None:
    record = await Runner(happy.pipeline).run(TICKET)

    assert record.status is RunStatus.FAILED
    assert history(record) == [("category", 1, "failed", None, ())]
    assert record.error is not None
    assert record.error.type == "StepFailed"
    assert record.error.message == (
        "`category` needs a model but the runner has none; pass Runner(pipeline, model=...) "
        "or --model"
    )


async def test_nodes_can_name_their_model_or_bring_one() -> None:
    own = FakeModel({"b": Reply("from own")}, name="own")
    pipeline = (
        PipelineBuilder("models")
        .add(Summarize("a", model="cheap"))
        .add(Summarize("b", model=own), after="a")
        .add(Summarize("c"), after="b")
        .build()
    )
    cheap = FakeModel({"a": Reply("from cheap")}, name="cheap")
    default = FakeModel({"c": Reply("from default")}, name="default")
    record = await Runner(pipeline, model=default, models={"cheap": cheap}).run("x")

    assert record.outputs == {"a": "from cheap", "b": "from own", "c": "from default"}
    assert [step(record, n).model for n in "abc"] == ["cheap", "own", "default"]


async def test_an_unknown_model_name_fails_the_step_and_says_how_to_fix_it() -> None:
    pipeline = PipelineBuilder("models").add(Summarize("a", model="cheap")).build()
    record = await Runner(pipeline, model=FakeModel()).run("x")

    assert history(record) == [("a", 1, "failed", None, ())]
    assert record.error is not None
    assert record.error.message == (
        "`a` asks for model 'cheap', which the runner does not know; pass "
        "Runner(..., models={'cheap': ...})"
    )


async def test_classify_accepts_a_label_in_another_case_or_quoted() -> None:
    pipeline = PipelineBuilder("c").add(Classify("c", labels=["refund", "bug"], gate=None)).build()
    model = FakeModel({"c": Reply(' "Refund" ')})
    record = await Runner(pipeline, model=model).run("x")
    assert record.outputs == {"c": "refund"}
    assert step(record, "c").route == "refund"


# --- a whole record, pinned ------------------------------------------------------------------


def _without_durations(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: 0.0 if k == "duration_s" else _without_durations(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_durations(v) for v in value]
    return value


async def test_the_whole_record_of_a_reviewed_run(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    monkeypatch.setattr("handrail.core.runner.now", lambda: fixed)
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6))
    paused = await runner.run("The app crashes when I log in.")
    done = await runner.resume(paused.run_id, ReviewDecision.approve(reviewer="ann"))

    dumped = _without_durations(TypeAdapter(RunRecord).dump_python(done, mode="json"))
    assert dumped == snapshot(
        {
            "run_id": "run-51443dbf6de36850",
            "pipeline": "low_confidence",
            "document_id": "820547d03f13a4c0",
            "document_hash": "820547d03f13a4c0a1c6e3ee40422f9482d7b5226586682d68d0637cd072af96",
            "status": "completed",
            "outputs": {"category": "bug", "shout": "BUG"},
            "steps": [
                {
                    "run_id": "run-51443dbf6de36850",
                    "node": "category",
                    "kind": "classify",
                    "visit": 1,
                    "status": "needs_review",
                    "output": "bug",
                    "confidence": {"value": 0.6, "source": "scripted"},
                    "field_confidence": {},
                    "checks": [],
                    "route": "bug",
                    "next": [],
                    "attempts": [
                        {
                            "number": 1,
                            "kind": "call",
                            "outcome": "ok",
                            "error": None,
                            "duration_s": 0.0,
                            "usage": {"input_tokens": 30, "output_tokens": 1, "cost": 0.0},
                            "model": "fake",
                            "warnings": [],
                            "images": [],
                        }
                    ],
                    "started_at": "2025-01-02T03:04:05Z",
                    "duration_s": 0.0,
                    "usage": {"input_tokens": 30, "output_tokens": 1, "cost": 0.0},
                    "model": "fake",
                    "error": None,
                    "review_id": "rv-fe0be112253f4966",
                    "updates": {},
                    "examples": None,
                },
                {
                    "run_id": "run-51443dbf6de36850",
                    "node": "category",
                    "kind": "classify",
                    "visit": 1,
                    "status": "completed",
                    "output": "bug",
                    "confidence": {"value": 0.6, "source": "scripted"},
                    "field_confidence": {},
                    "checks": [],
                    "route": "bug",
                    "next": ["shout"],
                    "attempts": [],
                    "started_at": "2025-01-02T03:04:05Z",
                    "duration_s": 0.0,
                    "usage": {"input_tokens": 0, "output_tokens": 0, "cost": 0.0},
                    "model": "fake",
                    "error": None,
                    "review_id": "rv-fe0be112253f4966",
                    "updates": {},
                    "examples": None,
                },
                {
                    "run_id": "run-51443dbf6de36850",
                    "node": "shout",
                    "kind": "rule",
                    "visit": 1,
                    "status": "completed",
                    "output": "BUG",
                    "confidence": {"value": 1.0, "source": "rule"},
                    "field_confidence": {},
                    "checks": [],
                    "route": None,
                    "next": [],
                    "attempts": [],
                    "started_at": "2025-01-02T03:04:05Z",
                    "duration_s": 0.0,
                    "usage": {"input_tokens": 0, "output_tokens": 0, "cost": 0.0},
                    "model": None,
                    "error": None,
                    "review_id": None,
                    "updates": {},
                    "examples": None,
                },
            ],
            "reviews": [],
            "decisions": [
                [
                    "rv-fe0be112253f4966",
                    {
                        "action": "approve",
                        "output": None,
                        "reviewer": "ann",
                        "reason": None,
                        "review_id": "rv-fe0be112253f4966",
                        "decided_at": "2025-01-02T03:04:05Z",
                    },
                ]
            ],
            "error": None,
            "started_at": "2025-01-02T03:04:05Z",
            "ended_at": "2025-01-02T03:04:05Z",
            "duration_s": 0.0,
            "usage": {"input_tokens": 30, "output_tokens": 1, "cost": 0.0},
            "document": {
                "text": "The app crashes when I log in.",
                "id": "820547d03f13a4c0",
                "source": None,
                "metadata": {},
                "hash": "820547d03f13a4c0a1c6e3ee40422f9482d7b5226586682d68d0637cd072af96",
                "media_type": "text/plain",
                "pages": [],
                "parts": [],
                "warnings": [],
            },
            "trace_context": {},
            "warnings": [],
            "model": {"name": "fake", "params": {}, "record": None, "replay": None},
            "pipeline_version": "981e37f4e123",
        }
    )
