"""Paused runs to announce: the `low_confidence` fixture pipeline on a document holding a word
that must never reach a message."""

from __future__ import annotations

from tests.pipelines import low_confidence

from handrail import Runner, RunRecord
from handrail.durable import SqlStore

SECRET_WORD = "Zanzibarquux"
"""In every document's text: a message that contains it leaked the document."""


async def paused(store: SqlStore, n: int = 0) -> RunRecord:
    """A run of `low_confidence` waiting for review (its confidence 0.6 is below the gate)."""
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), store=store)
    record = await runner.run(f"Customer {n} writes: {SECRET_WORD} crashed on start.")
    assert record.review is not None
    return record
