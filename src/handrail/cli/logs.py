"""Where library log lines go while a command runs: to whatever `sys.stderr` is at the time.

DBOS gives its logger a console handler bound to the `sys.stderr` of the moment it first starts
(unless the logger has a handler already). A process that runs several commands (tests, a tool
embedding `main`) swaps `sys.stderr` between them, and DBOS's next start then flushes a closed
stream. A handler of our own in place of DBOS's avoids that.
"""

from __future__ import annotations

import logging
import sys


class _CurrentStderr(logging.Handler):
    """Writes each record to the `sys.stderr` of its moment."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


_DBOS_CONSOLE = "__dbos_console_log_handler__"
"""The name DBOS gives the console handler it adds (only when its logger has no handler)."""


def route_library_logs(*names: str) -> None:
    """Send the warnings of the named loggers (default: DBOS's) to the current stderr."""
    for name in names or ("dbos",):
        logger = logging.getLogger(name)
        if any(isinstance(h, _CurrentStderr) for h in logger.handlers):
            continue
        for old in [h for h in logger.handlers if h.name == _DBOS_CONSOLE]:
            logger.removeHandler(old)
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter(f"{name} %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False


__all__ = ["route_library_logs"]
