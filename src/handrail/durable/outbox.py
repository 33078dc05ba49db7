"""The notification outbox (`handrail_outbox`): rows written in the transaction of the event they
announce, and claimed by a dispatcher with a lease (docs/notifications.md).

This module knows which channels want which events (`Route`, plain data the store is given) and
what a row holds; sending and rendering are `handrail.notify`'s (a layer above: the store never
imports it).

- **Writing** (`write`): one row per (event, channel) for every route that wants the event, with
  a deterministic event id (`review.waiting:<review id>`), inserted only if absent: saving a run
  again, or a recovered workflow replaying, never announces an event twice.
- **Claiming** (`claim`): one `UPDATE ... WHERE status = 'pending' AND next_attempt_at <= now`
  over a batch picked by a subquery (`FOR UPDATE SKIP LOCKED` on Postgres), which adds one to
  `attempts` and moves `next_attempt_at` to the end of a lease. The WHERE is evaluated again on
  the row itself, so two dispatchers never both claim one row; `attempts` is the claim's token:
  marking delivered or failed only changes a row still held under the same token.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic_core import to_jsonable_python
from sqlalchemy import Connection, and_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite

from handrail.core.records import ReviewRequest, RunRecord
from handrail.durable.schema import outbox

EVENTS: tuple[str, ...] = (
    "review.waiting",
    "review.due_soon",
    "review.escalated",
    "run.failed",
    "trigger.failed",
)
"""Every event a channel can ask for."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Route:
    """Which events one channel wants: what the store needs to write its rows (the channel's
    address and secrets stay with `handrail.notify`)."""

    channel: str
    """The channel's name: the outbox row's `channel`."""
    events: frozenset[str] = frozenset(EVENTS)
    queues: frozenset[str] | None = None
    """Review events of these queues only (None: every queue)."""
    digest: timedelta | None = None
    """`review.waiting` rows wait this long, so one message lists a queue's reviews."""
    remind_before: timedelta = timedelta(hours=1)
    """`review.due_soon` is written this long before a review's deadline."""
    include_content: bool = False
    """Put the output under review (and a failed run's error message) in the payload."""

    def wants(self, event: str, queue: str | None) -> bool:
        if event not in self.events:
            return False
        return queue is None or self.queues is None or queue in self.queues


class Routing(Protocol):
    """What `DurableRunner(notify=...)` takes: anything with `routes` (`notify.Notifications`)."""

    @property
    def routes(self) -> Sequence[Route]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class OutboxRow:
    """One notification to send to one channel, as the outbox holds it."""

    event_id: str
    channel: str
    event: str
    created_at: datetime
    payload: Mapping[str, Any]
    status: str
    attempts: int
    next_attempt_at: datetime
    delivered_at: datetime | None = None
    last_error: str | None = None
    queue: str | None = None
    """The review's queue (from the payload), for digests."""


# --- payloads: reasons and ids, never document text ----------------------------------------------


def review_payload(review: ReviewRequest, route: Route) -> dict[str, Any]:
    """What a review event says: ids, queue, reasons, confidence, deadline; the output under
    review only when the route includes content. Never the document's text."""
    data: dict[str, Any] = {
        "review_id": review.review_id,
        "run_id": review.run_id,
        "pipeline": review.pipeline,
        "node": review.node,
        "queue": review.queue,
        "document_id": review.document_id,
        "created_at": review.created_at.isoformat(),
        "reasons": [r.message for r in review.reasons],
        "confidence": review.confidence.value if review.confidence is not None else None,
        "deadline": review.deadline.isoformat() if review.deadline is not None else None,
        "escalation": review.escalation,
    }
    if route.include_content:
        data["output"] = to_jsonable_python(review.output, fallback=str)
    return data


def run_payload(run: RunRecord, route: Route) -> dict[str, Any]:
    """What `run.failed` says: ids and the error's type (its message only with content: an
    error message can quote an output)."""
    data: dict[str, Any] = {
        "run_id": run.run_id,
        "pipeline": run.pipeline,
        "document_id": run.document_id,
        "error_type": run.error.type if run.error is not None else None,
    }
    if route.include_content and run.error is not None:
        data["error"] = run.error.message
    return data


# --- writing -------------------------------------------------------------------------------------


def write(
    conn: Connection,
    routes: Iterable[Route],
    *,
    event: str,
    event_id: str,
    payload: Callable[[Route], Mapping[str, Any]],
    at: datetime,
    queue: str | None = None,
) -> int:
    """Insert, in `conn`'s transaction, one pending row per route that wants `event` (of
    `queue`), unless that (event id, channel) is already there; how many routes wanted it."""
    if event not in EVENTS:
        raise ValueError(f"unknown event {event!r}: use one of {', '.join(EVENTS)}")
    rows = []
    for route in routes:
        if not route.wants(event, queue):
            continue
        due = at
        if event == "review.waiting" and route.digest is not None:
            due = at + route.digest
        rows.append(
            {
                "event_id": event_id,
                "channel": route.channel,
                "event": event,
                "created_at": at,
                "payload": dict(payload(route)),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": due,
            }
        )
    if rows:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(outbox).on_conflict_do_nothing(), rows)
    return len(rows)


def announce_reviews(
    conn: Connection, routes: Sequence[Route], reviews: Iterable[ReviewRequest]
) -> None:
    """`review.waiting` for each pending review (once per review, whatever saves it again)."""
    for review in reviews:
        write(
            conn,
            routes,
            event="review.waiting",
            event_id=f"review.waiting:{review.review_id}",
            payload=review_payload_for(review),
            at=review.created_at,
            queue=review.queue,
        )


def announce_failure(
    conn: Connection, routes: Sequence[Route], run: RunRecord, at: datetime
) -> None:
    """`run.failed` for a run saved failed (once per run id)."""
    write(
        conn,
        routes,
        event="run.failed",
        event_id=f"run.failed:{run.run_id}",
        payload=lambda route: run_payload(run, route),
        at=run.ended_at or at,
    )


def review_payload_for(review: ReviewRequest) -> Callable[[Route], Mapping[str, Any]]:
    """`review_payload` of `review` for each route."""
    return lambda route: review_payload(review, route)


def escalated_payload_for(
    review: ReviewRequest, from_queue: str
) -> Callable[[Route], Mapping[str, Any]]:
    """`review.escalated`'s payload: the review's (in its new queue) and the queue it left."""
    return lambda route: review_payload(review, route) | {"from_queue": from_queue}


# --- claiming ------------------------------------------------------------------------------------


def claim(
    conn: Connection, *, now: datetime, lease: timedelta, channels: Sequence[str], limit: int
) -> list[OutboxRow]:
    """Claim up to `limit` due pending rows of `channels` (oldest due first) until `now +
    lease` (a process sends only to the channels it knows)."""
    due = and_(
        outbox.c.status == "pending",
        outbox.c.next_attempt_at <= now,
        outbox.c.channel.in_(list(channels)),
    )
    batch = (
        select(outbox.c.event_id, outbox.c.channel)
        .where(due)
        .order_by(outbox.c.next_attempt_at, outbox.c.event_id, outbox.c.channel)
        .limit(limit)
    )
    chosen: Any = batch
    if conn.dialect.name == "postgresql":
        # MATERIALIZED: chosen once. As a plain subquery, Postgres may run it again for each
        # row it updates, each run skipping the rows already locked: every due row was claimed
        # instead of at most `limit`
        cte = batch.with_for_update(skip_locked=True).cte("batch").prefix_with("MATERIALIZED")
        chosen = select(cte.c.event_id, cte.c.channel)
    stmt = (
        update(outbox)
        .where(due, tuple_(outbox.c.event_id, outbox.c.channel).in_(chosen))
        .values(attempts=outbox.c.attempts + 1, next_attempt_at=now + lease)
        .returning(*outbox.c)
    )
    return sorted((load_row(r) for r in conn.execute(stmt)), key=lambda r: r.created_at)


def claim_waiting(
    conn: Connection, *, channel: str, queue: str, now: datetime, lease: timedelta
) -> list[OutboxRow]:
    """Claim the `review.waiting` rows of `channel` and `queue` nobody has tried yet (whatever
    their digest window): what a digest message lists beside the row that came due."""
    fresh = and_(
        outbox.c.channel == channel,
        outbox.c.event == "review.waiting",
        outbox.c.status == "pending",
        outbox.c.attempts == 0,
    )
    found = conn.execute(select(outbox.c.event_id, outbox.c.payload).where(fresh)).all()
    ids = [r.event_id for r in found if _queue(r.payload) == queue]
    if not ids:
        return []
    stmt = (
        update(outbox)
        .where(fresh, outbox.c.event_id.in_(ids))
        .values(attempts=1, next_attempt_at=now + lease)
        .returning(*outbox.c)
    )
    return [load_row(r) for r in conn.execute(stmt)]


def settle(
    conn: Connection,
    rows: Sequence[OutboxRow],
    *,
    delivered_at: datetime | None = None,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> int:
    """Mark rows held under their claim delivered (`delivered_at`), or failed: to be tried
    again at `retry_at`, or for good without one. How many were still held."""
    done = 0
    for row in rows:
        held = and_(
            outbox.c.event_id == row.event_id,
            outbox.c.channel == row.channel,
            outbox.c.status == "pending",
            outbox.c.attempts == row.attempts,
        )
        if delivered_at is not None:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": delivered_at}
        elif retry_at is not None:
            values = {"last_error": error, "next_attempt_at": retry_at}
        else:
            values = {"status": "failed", "last_error": error}
        done += conn.execute(update(outbox).where(held).values(values)).rowcount
    return done


def _queue(payload: Any) -> str | None:
    queue = payload.get("queue") if isinstance(payload, dict) else None
    return queue if isinstance(queue, str) else None


def load_row(r: Any) -> OutboxRow:
    """An `OutboxRow` from a selected (or returned) `handrail_outbox` row."""
    columns = {c.name: r._mapping[c.name] for c in outbox.c}
    return OutboxRow(**columns, queue=_queue(r.payload))
