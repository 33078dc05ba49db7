"""Sending the outbox to real servers on 127.0.0.1: an HTTP sink (webhook and Slack-style) and
an SMTP server. Time is driven with `now=`, so no test sleeps through a backoff."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest

from handrail._utils import now
from handrail.durable import SqlStore
from handrail.notify import (
    Backoff,
    Email,
    Notifications,
    Slack,
    Webhook,
    dispatch_due,
    verify,
)

from .conftest import Sink, Smtp
from .helpers import SECRET_WORD, paused

SIGNING = "s3cret-signing-key"


def channels(sink: Sink, smtp: Smtp) -> Notifications:
    return Notifications(
        base_url="https://inbox.example.com",
        channels=[
            Webhook(name="hook", url=sink.url, secret_env="HR_TEST_HOOK_SECRET"),
            Slack(name="slack", url=sink.url.replace("/hook", "/slack")),
            Email(
                name="mail",
                host=smtp.host,
                port=smtp.port,
                security="none",
                sender="handrail@example.com",
                to=("reviewers@example.com",),
            ),
        ],
    )


async def test_a_waiting_review_sends_one_message_per_channel(
    sqlite_url: str, sink: Sink, smtp: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HR_TEST_HOOK_SECRET", SIGNING)
    notify = channels(sink, smtp)
    with SqlStore(sqlite_url, routes=notify.routes) as store:
        record = await paused(store)
        done = dispatch_due(store, notify)
        again = dispatch_due(store, notify)
        rows = store.outbox_rows()
    review = record.reviews[0]
    link = f"https://inbox.example.com/reviews/{review.review_id}"
    assert (done.delivered, done.messages, again.messages) == (3, 3, 0)
    assert {r.status for r in rows} == {"delivered"}

    hook = next(r for r in sink.received if r.path == "/hook")
    slack = next(r for r in sink.received if r.path == "/slack")
    assert len(sink.received) == 2 and len(smtp.inbox.messages) == 1
    _, to, mail = smtp.inbox.messages[0]
    mail_text = mail.get_payload()
    assert to == ["reviewers@example.com"]
    assert mail["X-Handrail-Event-Id"] == f"review.waiting:{review.review_id}"

    body = json.loads(hook.body)
    assert hook.headers["X-Handrail-Event-Id"] == f"review.waiting:{review.review_id}"
    assert body["event"] == "review.waiting" and body["link"] == link
    assert verify(
        SIGNING,
        hook.body,
        timestamp=hook.headers["X-Handrail-Timestamp"],
        signature=hook.headers["X-Handrail-Signature"],
    )
    assert not verify(
        "another-key",
        hook.body,
        timestamp=hook.headers["X-Handrail-Timestamp"],
        signature=hook.headers["X-Handrail-Signature"],
    )
    slack_text = json.loads(slack.body)["text"]
    reason = review.reasons[0].message
    for text in (body["text"], slack_text, mail_text):
        assert link in text
        assert reason in text
        assert SECRET_WORD.lower() not in text.lower()
    assert SECRET_WORD.lower() not in hook.body.decode().lower()


async def test_a_failing_sink_gets_one_delivery_after_backoff(sqlite_url: str, sink: Sink) -> None:
    sink.statuses = [500, 500]
    notify = Notifications(
        channels=[Webhook(name="hook", url=sink.url)],
        retry=Backoff(first=timedelta(seconds=30)),
    )
    with SqlStore(sqlite_url, routes=notify.routes) as store:
        await paused(store)
        t0 = now()
        first = dispatch_due(store, notify, now=t0)
        early = dispatch_due(store, notify, now=t0 + timedelta(seconds=29))
        second = dispatch_due(store, notify, now=t0 + timedelta(seconds=31))
        row = store.outbox_rows()[0]
        assert row.next_attempt_at == t0 + timedelta(seconds=31 + 60)  # 30 s, then 60 s
        third = dispatch_due(store, notify, now=t0 + timedelta(seconds=91))
        after = dispatch_due(store, notify, now=t0 + timedelta(hours=5))
        [row] = store.outbox_rows()
    assert (first.retrying, early.messages, second.retrying, third.delivered) == (1, 0, 1, 1)
    assert after.messages == 0
    assert (row.status, row.attempts, row.last_error) == (
        "delivered",
        3,
        f"POST {sink.url}: HTTP 500",
    )
    assert row.delivered_at == t0 + timedelta(seconds=91)
    ids = {r.headers["X-Handrail-Event-Id"] for r in sink.received}
    assert len(sink.received) == 3 and len(ids) == 1  # the same event id: the receiver dedupes


async def test_a_send_that_keeps_failing_is_given_up_without_leaking_secrets(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "T000/B000/XXXXsecretpath"
    monkeypatch.setenv("HR_TEST_SLACK_URL", f"http://127.0.0.1:9/services/{token}")
    notify = Notifications(
        channels=[Slack(name="slack", url_env="HR_TEST_SLACK_URL", timeout=2)],
        retry=Backoff(first=timedelta(seconds=1), attempts=2),
    )
    with SqlStore(sqlite_url, routes=notify.routes) as store:
        await paused(store)
        t0 = now()
        dispatch_due(store, notify, now=t0)
        last = dispatch_due(store, notify, now=t0 + timedelta(seconds=2))
        [row] = store.outbox_rows()
    assert last.failed == 1
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.last_error is not None and "POST ***" in row.last_error
    assert token not in row.last_error


async def test_a_digest_sends_one_message_for_a_busy_queue(sqlite_url: str, sink: Sink) -> None:
    notify = Notifications(
        base_url="http://127.0.0.1:8765",
        channels=[Webhook(name="hook", url=sink.url, digest=timedelta(minutes=10))],
    )
    with SqlStore(sqlite_url, routes=notify.routes) as store:
        records = [await paused(store, n) for n in range(4)]
        t0 = now()
        waiting = dispatch_due(store, notify, now=t0)
        sent = dispatch_due(store, notify, now=t0 + timedelta(minutes=11))
        rows = store.outbox_rows()
    assert waiting.messages == 0  # the window is still open
    assert (sent.messages, sent.delivered) == (1, 4)
    assert {r.status for r in rows} == {"delivered"}
    [request] = sink.received
    body = json.loads(request.body)
    assert body["subject"] == "4 reviews waiting in queue default"
    assert len(body["event_ids"]) == 4
    for record in records:
        assert f"http://127.0.0.1:8765/reviews/{record.reviews[0].review_id}" in body["text"]
    assert SECRET_WORD.lower() not in request.body.decode().lower()


async def test_include_content_opts_a_channel_into_the_output(sqlite_url: str, sink: Sink) -> None:
    notify = Notifications(
        channels=[
            Webhook(name="plain", url=sink.url),
            Webhook(name="full", url=sink.url.replace("/hook", "/full"), include_content=True),
        ]
    )
    with SqlStore(sqlite_url, routes=notify.routes) as store:
        await paused(store)
        dispatch_due(store, notify)
    texts = {r.path: json.loads(r.body)["text"] for r in sink.received}
    assert 'Output: "bug"' in texts["/full"]
    assert "Output" not in texts["/hook"]


@pytest.mark.parametrize("count", [40])
async def test_two_dispatchers_at_once_deliver_each_row_once(
    db_url: str, sink: Sink, count: int
) -> None:
    notify = Notifications(channels=[Webhook(name="hook", url=sink.url)])
    with SqlStore(db_url, routes=notify.routes) as store:
        for n in range(count):
            await paused(store, n)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            with SqlStore(db_url) as own:
                start.wait()
                while dispatch_due(own, notify, limit=3).messages:
                    pass
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    ids = [r.headers["X-Handrail-Event-Id"] for r in sink.received]
    assert len(ids) == count and len(set(ids)) == count
    with SqlStore(db_url) as store:
        assert {(r.status, r.attempts) for r in store.outbox_rows()} == {("delivered", 1)}


async def test_an_smtp_failure_is_recorded_without_the_password(
    sqlite_url: str, smtp: Smtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HR_TEST_SMTP_USER", "bell-user")
    monkeypatch.setenv("HR_TEST_SMTP_PASSWORD", "hunter2-long-password")
    notify = Notifications(
        channels=[
            Email(
                name="mail",
                host=smtp.host,
                port=smtp.port,
                security="none",  # a server that offers no AUTH: the login is refused
                sender="handrail@example.com",
                to=("reviewers@example.com",),
                username_env="HR_TEST_SMTP_USER",
                password_env="HR_TEST_SMTP_PASSWORD",
            )
        ]
    )
    with SqlStore(sqlite_url, routes=notify.routes) as store:
        await paused(store)
        done = dispatch_due(store, notify)
        [row] = store.outbox_rows()
    assert done.retrying == 1 and smtp.inbox.messages == []
    assert row.last_error is not None and row.last_error.startswith(f"SMTP {smtp.host}:")
    assert "hunter2" not in row.last_error and "bell-user" not in row.last_error


async def test_a_round_stops_before_a_send_could_outlast_its_lease(
    sqlite_url: str, sink: Sink
) -> None:
    """A slow receiver: a round sends only while a send still ends within the rows' lease (else
    another dispatcher could take a row being sent); the rest wait for the lease to end and are
    sent then, each once."""
    sink.delay = 0.4
    notify = Notifications(
        channels=[Webhook(name="hook", url=sink.url, timeout=1.0)],
        lease=timedelta(seconds=3.1),
    )
    with SqlStore(sqlite_url, routes=notify.routes) as store:
        for n in range(8):
            await paused(store, n)
        at = store.outbox_rows()[-1].next_attempt_at
        first = dispatch_due(store, notify, now=at)
        assert 1 <= first.delivered < 8
        pending = [r for r in store.outbox_rows() if r.status == "pending"]
        assert len(pending) == 8 - first.delivered
        assert all(r.next_attempt_at == at + notify.lease for r in pending)  # held to its end
        rest = 0
        later = at + notify.lease
        while rest < len(pending):
            later += timedelta(seconds=2)
            rest += dispatch_due(store, notify, now=later).delivered
        rows = store.outbox_rows()
    assert {r.status for r in rows} == {"delivered"}
    ids = [json.loads(r.body)["event_id"] for r in sink.received]
    assert sorted(ids) == sorted({*ids}) and len(ids) == 8
