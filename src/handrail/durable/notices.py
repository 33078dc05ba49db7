"""The store's outbox methods (`OutboxTables`, mixed into `SqlStore`): events raised from outside
the store's own save paths (`record_event`, for triggers), reminders written by the escalation
clock (`remind_due`), and the dispatcher's claim and settle (see `outbox.py`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, select

from handrail._utils import now
from handrail.durable import outbox, schema
from handrail.durable.outbox import OutboxRow, Route
from handrail.durable.serialize import load_review

T = TypeVar("T")


class OutboxTables:
    """Writing events to the outbox and claiming them for delivery (mixed into `SqlStore`)."""

    dialect: str
    routes: tuple[Route, ...]
    _writer: Engine

    if TYPE_CHECKING:

        def _call(self, work: Callable[[], T]) -> T: ...

        def _read(self, query: Callable[[Connection], T]) -> T: ...

    def notify_to(self, routes: Sequence[Route]) -> None:
        """Write outbox rows for these channels from now on (replacing any given before)."""
        names = [r.channel for r in routes]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"channel names must be unique; given twice: {', '.join(twice)}")
        self.routes = tuple(routes)

    def record_event(
        self,
        event: str,
        *,
        event_id: str,
        payload: Mapping[str, Any],
        queue: str | None = None,
        at: datetime | None = None,
        conn: Connection | None = None,
    ) -> int:
        """Announce `event` to every channel that wants it: one outbox row per channel, in
        `conn`'s transaction when given (so the event and its announcement commit together),
        else in a transaction of its own. `event_id` must be the same every time the same
        event is recorded (e.g. `trigger.failed:<trigger>:<source key>`): a repeat writes
        nothing. `payload` must hold no document text. Returns how many channels want it.

        Triggers call it for `trigger.failed` with `payload={"trigger": name, "pipeline": ...,
        "error": a message without secrets or document text}`.
        """
        stamp = at or now()

        def write(c: Connection) -> int:
            return outbox.write(
                c,
                self.routes,
                event=event,
                event_id=event_id,
                payload=lambda _route: payload,
                at=stamp,
                queue=queue,
            )

        if conn is not None:
            return write(conn)

        def work() -> int:
            with self._writer.begin() as c:
                return write(c)

        return self._call(work)

    def remind_due(self, at: datetime | None = None, *, pipeline: str | None = None) -> int:
        """Write `review.due_soon` for pending reviews whose deadline is within a channel's
        `remind_before` of `at` (and not yet passed): once per review and deadline. Called by
        the escalation clock (`DurableRunner.escalate_due`). Returns how many (review, channel)
        reminders are due (a reminder already written is not written again)."""
        wanting = [r for r in self.routes if "review.due_soon" in r.events]
        if not wanting:
            return 0
        at = at or now()
        horizon = at + max(r.remind_before for r in wanting)
        reviews = schema.reviews
        query = select(reviews.c.request).where(
            reviews.c.status == "pending", reviews.c.deadline > at, reviews.c.deadline <= horizon
        )
        if pipeline is not None:
            query = query.where(reviews.c.pipeline == pipeline)

        def work() -> int:
            written = 0
            with self._writer.begin() as conn:
                for data in conn.execute(query).scalars().all():
                    review = load_review(data)
                    assert review.deadline is not None
                    routes = [r for r in wanting if review.deadline <= at + r.remind_before]
                    written += outbox.write(
                        conn,
                        routes,
                        event="review.due_soon",
                        event_id=f"review.due_soon:{review.review_id}:"
                        f"{review.deadline.isoformat()}",
                        payload=outbox.review_payload_for(review),
                        at=at,
                        queue=review.queue,
                    )
            return written

        return self._call(work)

    # --- delivery --------------------------------------------------------------------------------

    def claim_outbox(
        self, *, at: datetime, lease: timedelta, channels: Sequence[str], limit: int = 100
    ) -> list[OutboxRow]:
        """Claim due rows of `channels` for sending until `at + lease` (see `outbox.claim`)."""

        def work() -> list[OutboxRow]:
            with self._writer.begin() as conn:
                return outbox.claim(conn, now=at, lease=lease, channels=channels, limit=limit)

        return self._call(work)

    def claim_waiting(
        self, *, channel: str, queue: str, at: datetime, lease: timedelta
    ) -> list[OutboxRow]:
        """Claim the untried `review.waiting` rows of a channel's queue, for a digest."""

        def work() -> list[OutboxRow]:
            with self._writer.begin() as conn:
                return outbox.claim_waiting(conn, channel=channel, queue=queue, now=at, lease=lease)

        return self._call(work)

    def settle_outbox(
        self,
        rows: Sequence[OutboxRow],
        *,
        delivered_at: datetime | None = None,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> int:
        """Mark claimed rows delivered, to retry, or failed for good (see `outbox.settle`)."""

        def work() -> int:
            with self._writer.begin() as conn:
                return outbox.settle(
                    conn, rows, delivered_at=delivered_at, error=error, retry_at=retry_at
                )

        return self._call(work)

    def outbox_rows(self, *, status: str | None = None) -> list[OutboxRow]:
        """The outbox, oldest first (optionally only `pending`, `delivered` or `failed` rows)."""
        table = schema.outbox
        query = select(table)
        if status is not None:
            query = query.where(table.c.status == status)
        query = query.order_by(table.c.created_at, table.c.event_id, table.c.channel)
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).all()))
        return [outbox.load_row(r) for r in rows]
