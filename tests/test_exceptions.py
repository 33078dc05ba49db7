"""Errors survive pickling: they travel inside checkpointed step results of durable runs."""

from __future__ import annotations

import pickle

import pytest

from handrail.exceptions import (
    InputError,
    LowConfidence,
    OutputInvalid,
    RateLimited,
    RetriesExhausted,
    ReviewAlreadyDecided,
    StepFailed,
)

ERRORS = [
    LowConfidence(
        "`c` confidence 0.10 is below its reject band", node="c", value=0.1, threshold=0.3
    ),
    RetriesExhausted("out of attempts", node="c", attempts=3, last_error=RateLimited("slow")),
    RateLimited("slow down", retry_after=2.5),
    InputError("`a.txt` is empty", document_id="a.txt"),
    OutputInvalid("bad", node="x", attempts=2, errors=[{"loc": ["amount"], "msg": "required"}]),
    StepFailed("rule `r` raised", node="r"),
    ReviewAlreadyDecided("review `rv-1` was already decided"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_errors_round_trip_through_pickle(error: Exception) -> None:
    restored = pickle.loads(pickle.dumps(error))
    assert type(restored) is type(error)
    assert str(restored) == str(error)
    assert {k: str(v) for k, v in vars(restored).items()} == {
        k: str(v) for k, v in vars(error).items()
    }
