"""Sending the outbox: `dispatch_due` (one round, any clock) and `Dispatcher` (rounds on a
background thread, as `handrail worker` and `handrail serve` run it).

A round claims the due rows of this process's channels (a lease: no other dispatcher takes them
while it sends), groups a digest channel's `review.waiting` rows of one queue into one message,
sends each message once, and marks its rows delivered, or to retry after a backoff, or failed
once the attempts are used up. The row is the whole state, so retries survive restarts.

Delivery is at least once: a process that dies after the channel accepted a message and before
the row is marked delivered sends it again when the lease ends. Every message carries its event
id (`X-Handrail-Event-Id`) for the receiver to drop such a repeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from os import PathLike

from handrail._utils import now as _now
from handrail.durable import SqlStore, database_url
from handrail.durable.outbox import OutboxRow
from handrail.notify.channels import Channel, DeliveryFailed
from handrail.notify.config import Notifications
from handrail.notify.messages import render

log = logging.getLogger("handrail.notify")

EVERY = 5.0
"""Seconds between two rounds of a `Dispatcher`."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Dispatched:
    """What one round did, counted in outbox rows."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    messages: int = 0


def dispatch_due(
    store: SqlStore, notify: Notifications, *, now: datetime | None = None, limit: int = 100
) -> Dispatched:
    """Send every outbox row due by `now` (default: the clock) to its channel, once."""
    at = now or _now()
    mine = {c.name for c in notify.channels}
    rows = store.claim_outbox(at=at, lease=notify.lease, limit=limit, channels=sorted(mine))
    counts = {"delivered": 0, "retrying": 0, "failed": 0, "messages": 0}
    began = time.monotonic()
    lease = notify.lease.total_seconds()
    for channel, group in _groups(store, notify, rows, at):
        if time.monotonic() - began + channel.timeout >= lease:
            # a send begun now could end after the lease, when another dispatcher may take the
            # row again: the rest of the round is left to the lease's end (sent then, once)
            break
        outcome = _send(store, notify, channel, group, at)
        counts[outcome] += len(group)
        counts["messages"] += 1
    return Dispatched(**counts)


def _groups(
    store: SqlStore, notify: Notifications, rows: Sequence[OutboxRow], at: datetime
) -> list[tuple[Channel, list[OutboxRow]]]:
    """One group per message: each row alone, except a digest channel's `review.waiting` rows
    of one queue, together with that queue's rows still in their window."""
    groups: list[tuple[Channel, list[OutboxRow]]] = []
    digests: dict[tuple[str, str], list[OutboxRow]] = {}
    for row in rows:
        channel = notify.channel(row.channel)
        assert channel is not None
        if row.event == "review.waiting" and channel.digest is not None and row.queue:
            key = (channel.name, row.queue)
            if key not in digests:
                digests[key] = []
                groups.append((channel, digests[key]))
            digests[key].append(row)
        else:
            groups.append((channel, [row]))
    for (name, queue), group in digests.items():
        group += store.claim_waiting(channel=name, queue=queue, at=at, lease=notify.lease)
        group.sort(key=lambda r: (r.created_at, r.event_id))
    return groups


def _send(
    store: SqlStore, notify: Notifications, channel: Channel, rows: list[OutboxRow], at: datetime
) -> str:
    try:
        channel.send(render(rows, notify.base_url))
    except Exception as e:
        # A channel's own errors are already masked; anything else is named by type only.
        error = str(e) if isinstance(e, DeliveryFailed) else f"{type(e).__name__}"
        error = error[:500]
        tries = max(r.attempts for r in rows)
        delay = notify.retry.delay(tries)
        retry_at = at + delay if delay is not None else None
        store.settle_outbox(rows, error=error, retry_at=retry_at)
        log.warning(
            "notification %s to channel `%s` failed (attempt %d): %s%s",
            rows[0].event_id,
            channel.name,
            tries,
            error,
            f"; retrying at {retry_at:%H:%M:%S}" if retry_at else "; giving up",
        )
        return "retrying" if retry_at is not None else "failed"
    store.settle_outbox(rows, delivered_at=at)
    return "delivered"


class Dispatcher:
    """`dispatch_due` every `every` seconds on a background thread, with a store of its own."""

    def __init__(
        self,
        notify: Notifications,
        *,
        db: str | PathLike[str] | None = None,
        every: float = EVERY,
    ) -> None:
        self.notify = notify
        self.db = db
        self.every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Dispatcher:
        self._thread = threading.Thread(target=self._main, name="handrail-notify", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _main(self) -> None:
        store: SqlStore | None = None
        try:
            while not self._stop.is_set():
                try:
                    store = store or SqlStore(database_url(self.db))
                    dispatch_due(store, self.notify)
                except Exception as e:  # a database hiccup: the next round tries again
                    log.warning("could not send notifications (%s); retrying", e)
                self._stop.wait(self.every)
        finally:
            if store is not None:
                store.close()
