"""One dispatcher in a process of its own, for `test_dispatch_processes.py`:

    python tests/notify/dispatch_process.py DB_URL SINK_URL FOLDER NAME

It opens its store, writes FOLDER/NAME.ready, waits for FOLDER/go (so that every process starts
sending at the same moment), runs `dispatch_due` rounds of a few rows each until a round finds
nothing due, and prints what it did as one JSON line: rows delivered, rounds, and when it started
and stopped sending (Unix seconds: the test checks that the two processes overlapped).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from handrail.durable import SqlStore
from handrail.notify import Notifications, Webhook, dispatch_due


def main(db: str, sink: str, folder: str, name: str) -> int:
    notify = Notifications(channels=[Webhook(name="hook", url=sink)])
    here = Path(folder)
    with SqlStore(db) as store:
        store.outbox_rows(status="delivered")  # connected before the start
        (here / f"{name}.ready").touch()
        deadline = time.monotonic() + 60
        while not (here / "go").exists():
            if time.monotonic() > deadline:
                print("no go file within 60 s", file=sys.stderr)
                return 2
            time.sleep(0.001)
        started = time.time()
        delivered = rounds = 0
        while True:
            done = dispatch_due(store, notify, limit=3)
            rounds += 1
            delivered += done.delivered
            if not done.messages:
                break
            if done.retrying or done.failed:
                print(f"a send failed: {done}", file=sys.stderr)
                return 1
        stopped = time.time()
    report = {"name": name, "delivered": delivered, "rounds": rounds}
    print(json.dumps(report | {"started": started, "stopped": stopped}))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
