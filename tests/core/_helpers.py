"""Small readers of run records, so tests assert on behaviour in a compact form."""

from __future__ import annotations

from typing import Any

from handrail import RetryPolicy, RunRecord, StepRecord

FAST = RetryPolicy(attempts=3, initial=0, maximum=0, jitter=0)
"""Retries without waiting, to keep retry tests fast."""


def history(record: RunRecord) -> list[tuple[Any, ...]]:
    """(node, visit, status, route, next) per step, in the order the steps finished."""
    return [(s.node, s.visit, s.status.value, s.route, s.next) for s in record.steps]


def attempts(step: StepRecord) -> list[tuple[str, str]]:
    """(kind, outcome) per attempt of a step."""
    return [(a.kind, a.outcome) for a in step.attempts]


def step(record: RunRecord, node: str, *, visit: int | None = None) -> StepRecord:
    """The last step record of `node` (of one visit, if given)."""
    found = [s for s in record.steps if s.node == node and visit in (None, s.visit)]
    assert found, f"no step `{node}` in {history(record)}"
    return found[-1]
