"""The log lines a command prints: repeats collapsed (`Collapse`, on a fake clock), one line per
record (no traceback), passwords masked, and DBOS's noise about handrail's own doings dropped."""

from __future__ import annotations

import logging
import sys

import pytest

from handrail.cli.logs import Collapse, OneLine, report_held_logs, route_library_logs
from handrail.durable.runtime import quiet_dbos_logs


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(
    message: str, *args: object, name: str = "dbos", level: int = logging.ERROR
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, message, args, None)


def test_the_first_line_passes_repeats_are_held_then_counted_once_per_interval() -> None:
    clock = Clock()
    collapse = Collapse(every=10, clock=clock)
    passed = []
    for second in range(30):  # an outage: the same failure 4 times a second, for 30 s
        for quarter in range(4):
            clock.now = 1000 + second + quarter / 4
            r = record(
                "Exception in queue thread for workflow %s: connection refused",
                f"wf{second}{quarter}",
            )
            if collapse.filter(r):
                passed.append((clock.now, getattr(r, "handrail_repeated", "")))
    assert passed == [
        (1000.0, ""),
        (1010.0, " (repeated 39 more times in the last 10s)"),
        (1020.0, " (repeated 39 more times in the last 10s)"),
    ]
    clock.now = 1030
    assert collapse.held() == [
        "dbos ERROR: Exception in queue thread for workflow wf293: connection refused"
        " (repeated 39 more times in the last 10s)"
    ]
    assert collapse.held() == []  # said once


def test_different_lines_levels_and_loggers_are_not_collapsed_together() -> None:
    clock = Clock()
    collapse = Collapse(every=10, clock=clock)
    records = [
        record("connection refused"),
        record("disk full"),
        record("connection refused", level=logging.WARNING),
        record("connection refused", name="handrail.durable"),
        record("connection refused"),
    ]
    assert [collapse.filter(r) for r in records] == [True, True, True, True, False]


def test_a_record_is_one_line_without_traceback_and_with_its_password_masked() -> None:
    try:
        raise ConnectionError("cannot connect\n  to postgresql://ann:p@ss-word@db/runs\nmore")
    except ConnectionError:
        r = logging.LogRecord(
            "dbos._sys_db",
            logging.ERROR,
            __file__,
            1,
            "Queue poll failed (try %d)",
            (3,),
            sys.exc_info(),
        )
    line = OneLine().format(r)
    assert line == "dbos ERROR: Queue poll failed (try 3) (ConnectionError: cannot connect)"
    r = record("Exception polling: Traceback (most recent call last):\n  File x\nOSError: down")
    assert OneLine().format(r) == "dbos ERROR: Exception polling: OSError: down"
    r = record("url postgresql://ann:p@ss-word@db/runs?sslpassword=x2 said hello")
    assert (
        OneLine().format(r)
        == "dbos ERROR: url postgresql://ann:***@db/runs?sslpassword=*** said hello"
    )


def test_a_command_prints_the_dbos_lines_collapsed_and_drops_its_noise(
    capsys: pytest.CaptureFixture[str],
) -> None:
    route_library_logs()
    quiet_dbos_logs()
    dbos = logging.getLogger("dbos")
    for i in range(100):
        dbos.warning("Asyncio task cancelled for workflow or step <function f%d>", i)
        dbos.warning(
            "Workflow already exists in queue: _dbos_internal_queue, but the provided queue "
            "name is: None. The queue is not updated."
        )
        dbos.error("Error in notification listener for %s: database is locked", f"run-{i:04}")
    report_held_logs()
    assert capsys.readouterr().err.splitlines() == [
        "dbos ERROR: Error in notification listener for run-0000: database is locked",
        "dbos ERROR: Error in notification listener for run-0099: database is locked"
        " (repeated 99 more times in the last 1s)",
    ]
