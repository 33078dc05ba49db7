"""Where library log lines go while a command runs, and how they read there.

DBOS gives its logger a console handler bound to the `sys.stderr` of the moment it first starts
(unless the logger has a handler already). A process that runs several commands (tests, a tool
embedding `main`) swaps `sys.stderr` between them, and DBOS's next start then flushes a closed
stream. A handler of our own in place of DBOS's avoids that.

Each line is one line: passwords masked (`mask_secrets`), an exception as its type and message
instead of a traceback. Repeats are collapsed (`Collapse`): during a database outage DBOS and the
worker log the same failure several times a second, so the first one is printed, then at most
one per interval saying how many were held back, and at exit how many were held since.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from handrail._utils import mask_secrets

LIBRARY_LOGGERS = ("dbos", "handrail", "asyncio")
"""The loggers whose warnings and errors a command prints on stderr (asyncio's: the tasks a
failing database left behind, each with a whole traceback otherwise)."""
COLLAPSE_EVERY_S = 10.0
"""How often a repeated log line is printed again (with how many were held back)."""
_MAX_KINDS = 500
"""How many different lines `Collapse` remembers (the oldest are forgotten first)."""
_VARYING = re.compile(r"\b[0-9a-f]{6,}\b|\d+(?:\.\d+)?")
"""What differs between two log lines of one kind: ids, counts, timings, ports."""


@dataclass(slots=True)
class _Kind:
    since: float
    """When the last line of this kind was printed."""
    held: int = 0
    """How many lines of this kind were held back since."""
    example: str = ""


class Collapse(logging.Filter):
    """Lets the first of a run of like records through, then at most one per `every` seconds,
    which carries how many were held back ("repeated 41 times in the last 10s").

    Records are alike when they come from the same logger at the same level and read the same
    once ids and numbers are left out. `held()` says what is still held (for the exit)."""

    def __init__(
        self, every: float = COLLAPSE_EVERY_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.every = every
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        message = _one_line(record)
        key = (record.name, record.levelno, _VARYING.sub("#", message))
        at = self.clock()
        kind = self._kinds.get(key)
        if kind is not None and at - kind.since < self.every:
            kind.held += 1
            kind.example = message
            return False
        if kind is not None and kind.held:
            record.handrail_repeated = _repeated(kind.held, at - kind.since)
        self._kinds.pop(key, None)
        self._kinds[key] = _Kind(since=at)  # newest last: the oldest are forgotten first
        while len(self._kinds) > _MAX_KINDS:
            del self._kinds[next(iter(self._kinds))]
        return True

    def reset(self) -> None:
        """Forget every line seen (what was held back is not reported)."""
        self._kinds.clear()

    def held(self) -> list[str]:
        """A line for each kind of record held back since it was last printed (and forgets
        them): the last one held, and how many."""
        at = self.clock()
        lines = [
            f"{name} {logging.getLevelName(level)}: {kind.example}"
            + _repeated(kind.held, at - kind.since)
            for (name, level, _), kind in self._kinds.items()
            if kind.held
        ]
        for kind in self._kinds.values():
            kind.held = 0
        return [mask_secrets(line) for line in lines]


def _repeated(held: int, seconds: float) -> str:
    times = "once more" if held == 1 else f"{held} more times"
    return f" (repeated {times} in the last {max(seconds, 1):.0f}s)"


def _one_line(record: logging.LogRecord) -> str:
    """The record's message on one line; an exception as `Type: first line of its message`."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string in a library's call: show it as it is
        message = str(record.msg)
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if "Traceback (most recent call last):" in text:  # a traceback formatted into the message
        before = text.split("Traceback (most recent call last):")[0].strip()
        text = f"{before} {lines[-1]}".strip()
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        first = next((line for line in str(error).splitlines() if line.strip()), "")
        text = f"{text} ({type(error).__name__}: {first.strip()})" if text else first
    return text


class OneLine(logging.Formatter):
    """`<logger> <LEVEL>: <message>` on one line, passwords masked, no traceback."""

    def format(self, record: logging.LogRecord) -> str:
        top = record.name.split(".")[0]
        repeated = getattr(record, "handrail_repeated", "")
        return mask_secrets(f"{top} {record.levelname}: {_one_line(record)}{repeated}")


class _CurrentStderr(logging.Handler):
    """Writes each record to the `sys.stderr` of its moment."""

    def __init__(self, collapse: Collapse) -> None:
        super().__init__()
        self.collapse = collapse
        self.addFilter(collapse)
        self.setFormatter(OneLine())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)

    def report_held(self) -> None:
        """Say what was held back since it was last printed (at the end of a command)."""
        for line in self.collapse.held():
            try:
                sys.stderr.write(line + "\n")
            except Exception:  # stderr closed at exit: nothing to tell
                return


_DBOS_CONSOLE = "__dbos_console_log_handler__"
"""The name DBOS gives the console handler it adds (only when its logger has no handler)."""

_handlers: dict[str, _CurrentStderr] = {}


def route_library_logs(*names: str, every: float = COLLAPSE_EVERY_S) -> None:
    """Send the warnings of the named loggers (default: DBOS's, handrail's, asyncio's) to the
    current stderr, one line each, repeats collapsed (one `Collapse` shared by all of them, which
    starts afresh: a command's first line of a kind is always printed)."""
    collapse = next(iter(_handlers.values())).collapse if _handlers else Collapse(every)
    collapse.reset()
    for name in names or LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if any(isinstance(h, _CurrentStderr) for h in logger.handlers):
            continue
        for old in [h for h in logger.handlers if h.name == _DBOS_CONSOLE]:
            logger.removeHandler(old)
        handler = _CurrentStderr(collapse)
        _handlers[name] = handler
        logger.addHandler(handler)
        # DBOS's own console handler does not propagate either. handrail's records still
        # reach the root logger's handlers (pytest's caplog), which print nothing in a command.
        logger.propagate = name != "dbos" and logger.propagate


def report_held_logs() -> None:
    """Print what the collapsed loggers held back (call as a command ends)."""
    for handler in list(_handlers.values())[:1]:  # they share one `Collapse`
        handler.report_held()


__all__ = ["COLLAPSE_EVERY_S", "Collapse", "OneLine", "report_held_logs", "route_library_logs"]
