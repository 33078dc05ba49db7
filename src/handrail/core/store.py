"""Where runs, steps and reviews are kept: a protocol and the in-memory implementation.

The durable store (DBOS, SQLite/Postgres) implements the same protocol. `record_decision` is the
one place a decision is accepted, so "applied exactly once" is the store's guarantee.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from handrail.core.examples import ReviewedExample
from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, RunStatus, StepRecord
from handrail.exceptions import ReviewAlreadyDecided, ReviewNotFound


@runtime_checkable
class RunStore(Protocol):
    """Persistence for runs and the review queue."""

    def save_run(self, run: RunRecord) -> None:
        """Insert or replace a run record (with its steps and pending reviews)."""
        ...

    def save_step(self, step: StepRecord) -> None:
        """Record a finished step as soon as it finishes (a checkpoint)."""
        ...

    def steps(self, run_id: str) -> Sequence[StepRecord]:
        """The steps checkpointed for a run, in the order they were first saved."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None: ...

    def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> Sequence[RunRecord]:
        """Runs, newest first (by start time), filtered."""
        ...

    def get_review(self, review_id: str) -> ReviewRequest | None: ...

    def get_decision(self, review_id: str) -> ReviewDecision | None:
        """The decision recorded on a review, if any."""
        ...

    def list_reviews(self, *, pending_only: bool = True) -> Sequence[ReviewRequest]: ...

    def record_decision(
        self, review_id: str, decision: ReviewDecision, *, example: ReviewedExample | None = None
    ) -> ReviewRequest:
        """Atomically mark a pending review decided and return it.

        Raises `ReviewNotFound` for an unknown id and `ReviewAlreadyDecided` if a decision was
        already recorded; a decision is therefore accepted exactly once.

        `example`: the example the decision makes (a node with `learn_from_reviews=True`),
        kept with the decision, exactly once like it. The runner passes it only for such
        nodes, so a store that keeps no examples may leave the parameter out.
        """
        ...


class InMemoryStore:
    """A `RunStore` in a dict: for tests, evals and the non-durable runner.

    Same semantics as the SQL store: a step is keyed by (run, node, visit, status), so saving it
    again (a replay) replaces it; saving a run replaces its step log and drops reviews it no
    longer waits on; runs are listed newest first.
    """

    def __init__(self) -> None:
        self._runs: dict[str, RunRecord] = {}
        self._steps: dict[str, dict[tuple[str, int, str], StepRecord]] = {}
        self._reviews: dict[str, ReviewRequest] = {}
        self._decisions: dict[str, ReviewDecision] = {}
        self.examples: dict[str, ReviewedExample] = {}
        """The examples decisions made (nodes with `learn_from_reviews=True`), by id."""
        self._lock = threading.Lock()

    def save_run(self, run: RunRecord) -> None:
        with self._lock:
            self._runs[run.run_id] = run
            self._steps[run.run_id] = {_step_key(s): s for s in run.steps}
            waiting = {r.review_id for r in run.reviews}
            for review_id, review in list(self._reviews.items()):
                if (
                    review.run_id == run.run_id
                    and review.status == "pending"
                    and review_id not in waiting
                ):
                    del self._reviews[review_id]
            for review in run.reviews:
                if review.review_id not in self._decisions:
                    self._reviews[review.review_id] = review

    def save_step(self, step: StepRecord) -> None:
        with self._lock:
            self._steps.setdefault(step.run_id, {})[_step_key(step)] = step

    def steps(self, run_id: str) -> list[StepRecord]:
        with self._lock:
            return list(self._steps.get(run_id, {}).values())

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._runs.get(run_id)

    def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        pipeline: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[RunRecord]:
        runs = [
            r
            for r in self._runs.values()
            if (status is None or r.status == status)
            and (pipeline is None or r.pipeline == pipeline)
            and (since is None or (r.started_at is not None and r.started_at >= since))
        ]
        runs.sort(key=lambda r: r.started_at or _EPOCH, reverse=True)
        return runs[:limit] if limit is not None else runs

    def get_review(self, review_id: str) -> ReviewRequest | None:
        return self._reviews.get(review_id)

    def get_decision(self, review_id: str) -> ReviewDecision | None:
        return self._decisions.get(review_id)

    def list_reviews(self, *, pending_only: bool = True) -> list[ReviewRequest]:
        return [r for r in self._reviews.values() if not pending_only or r.status == "pending"]

    def record_decision(
        self, review_id: str, decision: ReviewDecision, *, example: ReviewedExample | None = None
    ) -> ReviewRequest:
        with self._lock:
            review = self._reviews.get(review_id)
            if review is None:
                raise ReviewNotFound(
                    f"no review `{review_id}`; list pending reviews with `handrail review list`"
                )
            if review_id in self._decisions:
                previous = self._decisions[review_id]
                raise ReviewAlreadyDecided(
                    f"review `{review_id}` was already decided ({previous.action}"
                    f"{' by ' + previous.reviewer if previous.reviewer else ''}); "
                    "a decision is applied exactly once"
                )
            self._decisions[review_id] = decision
            if example is not None:
                self.examples[example.example_id] = example
            decided = replace(review, status="decided")
            self._reviews[review_id] = decided
            return decided


def _step_key(step: StepRecord) -> tuple[str, int, str]:
    return (step.node, step.visit, step.status.value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
