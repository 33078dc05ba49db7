"""Reminders and escalations come from the escalation clock (`DurableRunner.escalate_due`, what
`handrail worker` and `handrail serve` run every second), driven here with `at=`: no sleeps."""

from __future__ import annotations

import json
from datetime import timedelta

from handrail import Classify, Escalation, FakeModel, Gate, PipelineBuilder, Reply, ReviewPolicy
from handrail.durable import DurableRunner, SqlStore
from handrail.notify import Notifications, Webhook, dispatch_due

from .conftest import Sink
from .helpers import SECRET_WORD

pipeline = (
    PipelineBuilder(
        "notify_deadline",
        review=ReviewPolicy(
            deadline=timedelta(hours=2), on_deadline=Escalation.to_queue("supervisors")
        ),
    )
    .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.9)))
    .build()
)


async def test_the_clock_reminds_then_escalates_and_each_is_sent(
    sqlite_url: str, sink: Sink
) -> None:
    notify = Notifications(
        channels=[
            Webhook(name="hook", url=sink.url, remind_before=timedelta(minutes=30)),
            Webhook(
                name="supervisors",
                url=sink.url.replace("/hook", "/supervisors"),
                queues=("supervisors",),
            ),
        ]
    )
    model = FakeModel({"category": Reply("bug", confidence=0.5)})
    async with DurableRunner(pipeline, db=sqlite_url, model=model, notify=notify) as runner:
        record = await runner.run(f"My {SECRET_WORD} broke")
        review = record.reviews[0]
        assert review.deadline is not None
        deadline = review.deadline
        assert await runner.escalate_due(deadline - timedelta(hours=1)) == []
        await runner.escalate_due(deadline - timedelta(minutes=20))  # a reminder
        await runner.escalate_due(deadline - timedelta(minutes=10))  # the same one: no more
        escalated = await runner.escalate_due(deadline + timedelta(seconds=1))
    assert [e.action for e in escalated] == ["queue"]
    with SqlStore(sqlite_url) as store:
        events = [(r.event, r.channel) for r in store.outbox_rows()]
        assert sorted(events) == [
            ("review.due_soon", "hook"),
            ("review.escalated", "hook"),
            ("review.escalated", "supervisors"),
            ("review.waiting", "hook"),
        ]
        done = dispatch_due(store, notify, now=deadline + timedelta(minutes=1))
    assert done.delivered == 4
    bodies = {(r.path, json.loads(r.body)["event"]): json.loads(r.body) for r in sink.received}
    moved = bodies[("/supervisors", "review.escalated")]
    assert "from queue `default` to `supervisors`" in moved["text"]
    assert f"/reviews/{review.review_id}" in moved["link"]
    assert "is due at" in bodies[("/hook", "review.due_soon")]["text"]
    assert all(SECRET_WORD not in r.body.decode() for r in sink.received)
