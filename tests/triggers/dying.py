"""The happy pipeline, served by a `handrail serve` that dies (SIGKILL) right after its intake
commits a document and before it answers: a test-only hook, installed when this target is
imported with `TRIGGER_TEST_DIE_AFTER_COMMIT=1` in the environment. handrail itself has no such
hook; tests/triggers/test_live.py uses it to kill the server between receipt and answer."""

from __future__ import annotations

import os
import signal
from typing import Any

from tests.pipelines.happy import pipeline

from handrail.triggers import intake

if os.environ.get("TRIGGER_TEST_DIE_AFTER_COMMIT") == "1" and not hasattr(intake, "_dying"):
    _take = intake.Intake._take

    def _accept_then_die(self: intake.Intake, *args: Any, **kwargs: Any) -> intake.Accepted:
        _take(self, *args, **kwargs)  # committed: receipt, queued run, pick-up
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable: the process was killed")

    intake.Intake._take = _accept_then_die  # type: ignore[method-assign]
    intake._dying = True  # type: ignore[attr-defined]

__all__ = ["pipeline"]
