"""DurableRunner in one process, on real SQLite files and a real Postgres server: the same
results as the in-memory runner, checkpoints and records, decisions exactly once, deadlines.

Crashes, restarts and several workers, which need real processes, are in test_processes.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic_core import to_jsonable_python
from tests.pipelines import approval, branches, happy, low_confidence

from handrail import (
    Action,
    Classify,
    Escalation,
    FakeModel,
    Gate,
    PipelineBuilder,
    Reply,
    Review,
    ReviewAlreadyDecided,
    ReviewDecision,
    ReviewNotFound,
    ReviewPolicy,
    Rule,
    Runner,
    RunStatus,
    StepStatus,
)
from handrail._utils import now
from handrail.durable import DurableRunner, SqlStore, StoreError, StoreUnavailable
from handrail.exceptions import InvalidDecision


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'handrail.db'}"
    return str(request.getfixturevalue("durable_postgres_url"))


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'handrail.db'}"


def comparable(record, *, as_json=False):
    """What must be equal between an in-memory run and a durable one."""
    outputs = dict(record.outputs)
    return (
        record.status,
        to_jsonable_python(outputs) if as_json else outputs,
        [(s.node, s.visit, s.status, s.route, s.next, s.confidence) for s in record.steps],
        record.usage.total_tokens,
    )


# --- same semantics as the in-memory runner -----------------------------------------------------


@pytest.mark.parametrize(
    ("module", "text"),
    [
        (happy, "Refund order A-17, 100 EUR please"),
        (branches, "a long ticket " * 20),
        (low_confidence, "it crashes"),
        (approval, "refund please"),
    ],
    ids=["happy", "branches", "low_confidence", "approval"],
)
async def test_a_durable_run_ends_as_the_in_memory_run_does(db, module, text):
    expected = await Runner(module.pipeline, model=module.model()).run(text)
    async with DurableRunner(module.pipeline, model=module.model(), db=db) as runner:
        record = await runner.run(text)
    assert comparable(record) == comparable(expected)
    with SqlStore(db) as store:  # and the database says the same as the returned record
        stored = store.get_run(record.run_id)
        assert stored is not None
        assert comparable(stored, as_json=True) == comparable(expected, as_json=True)
        assert [s.node for s in store.steps(record.run_id)] == [s.node for s in expected.steps]


async def test_a_document_already_run_is_not_run_again_even_by_a_new_runner(sqlite_db):
    model = happy.model()
    async with DurableRunner(happy.pipeline, model=model, db=sqlite_db) as runner:
        first = await runner.run("Refund order A-17")
    calls = len(model.calls)
    async with DurableRunner(happy.pipeline, model=model, db=sqlite_db) as runner:
        again = await runner.run("Refund order A-17")
    assert again.run_id == first.run_id
    assert again.status is RunStatus.COMPLETED
    assert len(model.calls) == calls, "the second runner called the model again"


async def test_outputs_come_back_as_their_node_types(sqlite_db):
    async with DurableRunner(happy.pipeline, model=happy.model(), db=sqlite_db) as runner:
        record = await runner.run("Refund order A-17")
        stored = runner.store.get_run(record.run_id)
        assert isinstance(stored.outputs["order"], dict)  # the store holds JSON...
        assert runner.revived(stored).outputs["order"] == happy.Order(order_id="A-17", amount=100.0)
    assert record.outputs["order"] == happy.Order(order_id="A-17", amount=100.0)  # ...runs don't


@dataclass
class Ticket:
    subject: str
    words: int


def read_ticket(state) -> Ticket:
    return Ticket(subject=state.text.split()[0], words=len(state.text.split()))


effects: list[str] = []


def file_ticket(state, key: str) -> str:
    # reads the rule's output as a Ticket: after a checkpoint it must still be one
    effects.append(key)
    return f"filed {state['ticket'].subject} ({state['ticket'].words} words)"


typed = (
    PipelineBuilder("typed_rules")
    .add(Rule("ticket", read_ticket))
    .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.9)), after="ticket")
    .add(Action("file", file_ticket), after="category")
    .build()
)


async def test_a_rule_output_is_revived_from_its_return_annotation_after_a_review(sqlite_db):
    effects.clear()
    model = FakeModel({"category": Reply("bug", confidence=0.5)})
    async with DurableRunner(typed, model=model, db=sqlite_db) as runner:
        paused = await runner.run("Crash when saving")
        assert paused.status is RunStatus.NEEDS_REVIEW
    async with DurableRunner(
        typed, model=model, db=sqlite_db
    ) as runner:  # a new process, as it were
        done = await runner.decide(paused.reviews[0].review_id, ReviewDecision.approve())
    assert done.status is RunStatus.COMPLETED, done.error
    assert done.outputs["file"] == "filed Crash (3 words)"
    assert effects == [f"{paused.run_id}:file"]


async def test_an_error_keeps_its_type_name_through_the_checkpoint(sqlite_db):
    def boom(state) -> int:
        raise KeyError("no such customer")

    pipeline = PipelineBuilder("boom").add(Rule("lookup", boom)).build()
    expected = await Runner(pipeline).run("hello")
    async with DurableRunner(pipeline, db=sqlite_db) as runner:
        record = await runner.run("hello")
    assert record.status is RunStatus.FAILED
    assert record.steps[0].error == expected.steps[0].error
    assert record.error == expected.error


async def test_an_empty_document_fails_its_own_run_and_the_batch_goes_on(sqlite_db):
    async with DurableRunner(happy.pipeline, model=happy.model(), db=sqlite_db) as runner:
        records = await runner.run_many(["Refund A-17", "   ", "Refund A-18"])
    assert [r.status for r in records] == [
        RunStatus.COMPLETED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
    ]
    assert "empty" in records[1].error.message


# --- decisions --------------------------------------------------------------------------------


async def test_approve_edit_and_reject_continue_durably_without_re_running_steps(db):
    approval.calls.clear()
    async with DurableRunner(approval.pipeline, model=approval.model(), db=db) as runner:
        paused = await runner.run_many(["refund 1", "refund 2", "refund 3"])
    assert all(r.status is RunStatus.NEEDS_REVIEW for r in paused)
    assert approval.calls["received"] == 3
    reviews = [r.reviews[0].review_id for r in paused]
    async with DurableRunner(approval.pipeline, model=approval.model(), db=db) as runner:
        approved = await runner.decide(reviews[0], ReviewDecision.approve(reviewer="ana"))
        edited = await runner.decide(reviews[1], ReviewDecision.edit("bug", reviewer="bo"))
        rejected = await runner.decide(reviews[2], ReviewDecision.reject("spam", reviewer="cy"))
    assert approval.calls["received"] == 3, "a completed step ran again after the decision"
    assert approved.status is RunStatus.COMPLETED
    assert approved.outputs["act"] == "handle refund"
    assert edited.status is RunStatus.COMPLETED
    assert edited.outputs["act"] == "handle bug"
    assert rejected.status is RunStatus.REJECTED
    assert rejected.error.message == "spam"
    with SqlStore(db) as store:
        assert store.get_decision(reviews[1]).reviewer == "bo"
        assert store.get_run(paused[0].run_id).status is RunStatus.COMPLETED
        assert store.list_reviews() == []


async def test_a_second_decision_is_refused_and_changes_nothing(sqlite_db):
    async with DurableRunner(approval.pipeline, model=approval.model(), db=sqlite_db) as runner:
        paused = await runner.run("refund please")
        review_id = paused.reviews[0].review_id
        done = await runner.decide(review_id, ReviewDecision.approve(reviewer="ana"))
        with pytest.raises(ReviewAlreadyDecided, match="already decided \\(approve by ana\\)"):
            await runner.decide(review_id, ReviewDecision.reject("no", reviewer="bo"))
        assert runner.store.get_run(paused.run_id) == done
        assert runner.store.get_decision(review_id).reviewer == "ana"


async def test_an_edit_that_fails_the_schema_writes_nothing(sqlite_db):
    async with DurableRunner(approval.pipeline, model=approval.model(), db=sqlite_db) as runner:
        paused = await runner.run("refund please")
        review_id = paused.reviews[0].review_id
        with pytest.raises(InvalidDecision):
            await runner.decide(review_id, ReviewDecision.edit("not-a-label"))
        assert runner.store.get_decision(review_id) is None
        assert runner.store.get_run(paused.run_id).status is RunStatus.NEEDS_REVIEW
        done = await runner.decide(review_id, ReviewDecision.approve())  # still decidable
    assert done.status is RunStatus.COMPLETED


async def test_an_unknown_review_is_a_clear_error(sqlite_db):
    async with DurableRunner(approval.pipeline, model=approval.model(), db=sqlite_db) as runner:
        with pytest.raises(ReviewNotFound, match=r"no review `rv-nope`.*handrail review list"):
            await runner.decide("rv-nope", ReviewDecision.approve())


async def test_a_decision_recorded_but_never_continued_is_continued_by_resume_decided(sqlite_db):
    approval.calls.clear()
    async with DurableRunner(approval.pipeline, model=approval.model(), db=sqlite_db) as runner:
        paused = await runner.run("refund please")
        # the process dies right after recording the decision, before the continuation starts
        runner.accept_decision(paused.run_id, ReviewDecision.approve(reviewer="ana"))
    async with DurableRunner(approval.pipeline, model=approval.model(), db=sqlite_db) as runner:
        assert await runner.resume_decided() == 1
        for _ in range(200):
            record = runner.store.get_run(paused.run_id)
            if record.status is not RunStatus.NEEDS_REVIEW:
                break
            await asyncio.sleep(0.05)
        assert record.status is RunStatus.COMPLETED
        assert await runner.resume_decided() == 0  # nothing left waiting
    assert approval.calls["act"] == 1
    assert approval.calls["received"] == 1


# --- deadlines ----------------------------------------------------------------------------------


def deadline_pipeline(escalation: Escalation | None, deadline=timedelta(hours=1)):
    policy = ReviewPolicy(deadline=deadline, on_deadline=escalation) if escalation else None
    return (
        PipelineBuilder("deadlines", review=policy or ReviewPolicy())
        .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.9)))
        .add(Rule("act", lambda s: f"handle {s['category']}"), after="category")
        .build()
    )


def unsure() -> FakeModel:
    return FakeModel({"category": Reply("refund", confidence=0.5)})


async def test_a_review_carries_its_queue_and_deadline(sqlite_db):
    pipeline = deadline_pipeline(Escalation.reject())
    async with DurableRunner(pipeline, model=unsure(), db=sqlite_db) as runner:
        paused = await runner.run("refund?")
        review = runner.store.get_review(paused.reviews[0].review_id)
    assert review.queue == "default"
    assert review.deadline == review.created_at + timedelta(hours=1)
    assert review.on_deadline == Escalation.reject()


async def test_nothing_escalates_before_the_deadline(sqlite_db):
    pipeline = deadline_pipeline(Escalation.reject())
    async with DurableRunner(pipeline, model=unsure(), db=sqlite_db) as runner:
        paused = await runner.run("refund?")
        assert await runner.escalate_due(at=now() + timedelta(minutes=59)) == []
        assert runner.store.get_run(paused.run_id).status is RunStatus.NEEDS_REVIEW


async def test_without_an_escalation_a_review_waits_forever(sqlite_db):
    pipeline = deadline_pipeline(None)
    async with DurableRunner(pipeline, model=unsure(), db=sqlite_db) as runner:
        paused = await runner.run("refund?")
        assert paused.reviews[0].deadline is None
        assert await runner.escalate_due(at=now() + timedelta(days=3650)) == []
        assert runner.store.get_run(paused.run_id).status is RunStatus.NEEDS_REVIEW
        assert runner.store.get_decision(paused.reviews[0].review_id) is None


async def test_a_deadline_can_reject(sqlite_db):
    pipeline = deadline_pipeline(Escalation.reject("nobody looked in time"))
    async with DurableRunner(pipeline, model=unsure(), db=sqlite_db) as runner:
        paused = await runner.run("refund?")
        done = await runner.escalate_due(at=now() + timedelta(hours=2))
        review_id = paused.reviews[0].review_id
        decision = runner.store.get_decision(review_id)
        record = runner.store.get_run(paused.run_id)
    assert [(d.review_id, d.action, d.run_status) for d in done] == [
        (review_id, "reject", RunStatus.REJECTED)
    ]
    assert decision.action == "reject"
    assert decision.reviewer == "handrail (deadline)"
    assert "passed: nobody looked in time" in decision.reason
    assert record.status is RunStatus.REJECTED


async def test_a_deadline_can_apply_a_declared_safe_default(sqlite_db):
    pipeline = deadline_pipeline(Escalation.default("bug"))
    async with DurableRunner(pipeline, model=unsure(), db=sqlite_db) as runner:
        paused = await runner.run("refund?")
        await runner.escalate_due(at=now() + timedelta(hours=2))
        record = runner.store.get_run(paused.run_id)
    assert record.status is RunStatus.COMPLETED
    assert record.outputs["act"] == "handle bug"
    assert record.decisions[0][1].action == "edit"


async def test_a_safe_default_that_fails_the_schema_is_a_clear_error(sqlite_db):
    pipeline = deadline_pipeline(Escalation.default("not-a-label"))
    async with DurableRunner(pipeline, model=unsure(), db=sqlite_db) as runner:
        paused = await runner.run("refund?")
        with pytest.raises(InvalidDecision, match="fix on_deadline"):
            await runner.escalate_due(at=now() + timedelta(hours=2))
        assert runner.store.get_run(paused.run_id).status is RunStatus.NEEDS_REVIEW


async def test_a_deadline_can_move_the_review_to_another_queue_once(sqlite_db):
    pipeline = deadline_pipeline(Escalation.to_queue("supervisors"))
    async with DurableRunner(pipeline, model=unsure(), db=sqlite_db) as runner:
        paused = await runner.run("refund?")
        later = now() + timedelta(hours=2)
        done = await runner.escalate_due(at=later)
        again = await runner.escalate_due(at=later + timedelta(days=1))
        review = runner.store.get_review(paused.reviews[0].review_id)
        record = runner.store.get_run(paused.run_id)
    assert [d.action for d in done] == ["queue"]
    assert again == []
    assert review.status == "pending"
    assert review.queue == "supervisors"
    assert review.escalated_at == later
    assert "moved from queue `default` to `supervisors`" in review.escalation
    assert record.status is RunStatus.NEEDS_REVIEW  # still a person's decision


def test_a_review_policy_needs_both_a_deadline_and_an_action():
    with pytest.raises(ValueError, match="both a deadline and on_deadline"):
        ReviewPolicy(deadline=timedelta(hours=1))
    with pytest.raises(ValueError, match="positive"):
        ReviewPolicy(deadline=timedelta(0), on_deadline=Escalation.reject())


def test_a_review_gate_may_have_its_own_policy():
    own = ReviewPolicy(queue="finance")
    pipeline = (
        PipelineBuilder("gates", review=ReviewPolicy(queue="general"))
        .add(Classify("category", labels=["refund", "bug"]))
        .add(Review("check", of="category", policy=own), after="category")
        .build()
    )
    assert pipeline.review_policy("check") is own
    assert pipeline.review_policy("category").queue == "general"


# --- lifecycle and bad input ------------------------------------------------------------------


async def test_a_runner_must_be_open_to_run(sqlite_db):
    runner = DurableRunner(happy.pipeline, model=happy.model(), db=sqlite_db)
    try:
        with pytest.raises(StoreError, match="not open"):
            await runner.run("Refund A-17")
    finally:
        await runner.close()


async def test_one_open_durable_runner_per_process(sqlite_db, tmp_path):
    async with DurableRunner(happy.pipeline, model=happy.model(), db=sqlite_db):
        other = DurableRunner(approval.pipeline, db=f"sqlite:///{tmp_path / 'other.db'}")
        with pytest.raises(StoreError, match="already open in this process"):
            await other.open()
        await other.close()


async def test_an_unreachable_postgres_is_a_clear_error():
    with pytest.raises(StoreUnavailable, match="cannot reach the database"):
        DurableRunner(happy.pipeline, db="postgresql://nobody:secret@127.0.0.1:1/handrail")


async def test_the_executor_id_is_held_and_the_next_process_takes_the_next_one(sqlite_db):
    async with DurableRunner(happy.pipeline, model=happy.model(), db=sqlite_db) as runner:
        assert runner.executor_id == "local"
        folder = Path(sqlite_db.removeprefix("sqlite:///") + ".executors")
        assert (folder / "local.lock").exists()


async def test_a_run_step_is_a_dbos_step_named_after_its_node(sqlite_db):
    import sqlite3

    async with DurableRunner(happy.pipeline, model=happy.model(), db=sqlite_db) as runner:
        record = await runner.run("Refund order A-17")
    conn = sqlite3.connect(sqlite_db.removeprefix("sqlite:///"))
    try:
        names = [
            row[0]
            for row in conn.execute(
                "SELECT function_name FROM operation_outputs WHERE workflow_uuid = ? "
                "ORDER BY function_id",
                (record.run_id,),
            )
        ]
    finally:
        conn.close()
    assert names == ["classify category", "extract order", "rule with_tax", "draft reply"]
    assert all(s.status is StepStatus.COMPLETED for s in record.steps)
