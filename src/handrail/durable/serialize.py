"""Records to JSON-able values and back, with pydantic's `TypeAdapter`; and the JSON form of
every checkpoint DBOS keeps for handrail (`CHECKPOINTS`).

Outputs that were pydantic models (or dataclasses) come back as plain dicts: the runner
re-validates them against each node's schema when it rebuilds a run. A `Document` comes back as a
`Document`, datetimes as timezone-aware values.

Checkpoints. DBOS pickles what it checkpoints unless told otherwise, and unpickling runs code:
whoever could write the database could then run code in the next `handrail run`. handrail hands
DBOS `CHECKPOINTS`, a serializer that writes JSON (`{"handrail": 1, "value": ...}`) and reads
nothing else, and makes DBOS refuse the rows that name its pickle serializer (`refuse_pickles`).
What a checkpoint may hold is closed: JSON values, tuples, step outcomes (`Outcome`, its fields
through their declared types) and errors (type name and message, read back as `RecordedError`,
or the built-in exception of that name).
"""

from __future__ import annotations

import builtins
import json
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar, get_type_hints

from dbos._serialization import DBOSDefaultSerializer, Serializer
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from handrail.core.outcome import Outcome, RecordedError
from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, StepRecord
from handrail.durable.errors import CheckpointRefused, StoreError

T = TypeVar("T")

_run = TypeAdapter(RunRecord)
_step = TypeAdapter(StepRecord)
_review = TypeAdapter(ReviewRequest)
_decision = TypeAdapter(ReviewDecision)


def _dump(adapter: TypeAdapter[T], value: T, what: str) -> Any:
    try:
        return adapter.dump_python(value, mode="json")
    except PydanticSerializationError as e:
        raise StoreError(
            f"cannot store {what}: {e}; node outputs must be JSON-able (pydantic models, "
            "dataclasses, dicts, lists, strings, numbers)"
        ) from e


def dump_run(run: RunRecord) -> Any:
    return _dump(_run, run, f"run `{run.run_id}`")


def load_run(data: Any) -> RunRecord:
    return _run.validate_python(data)


def dump_step(step: StepRecord) -> Any:
    return _dump(_step, step, f"step `{step.node}` of run `{step.run_id}`")


def load_step(data: Any) -> StepRecord:
    return _step.validate_python(data)


def dump_review(review: ReviewRequest) -> Any:
    return _dump(_review, review, f"review `{review.review_id}`")


def load_review(data: Any) -> ReviewRequest:
    return _review.validate_python(data)


def dump_decision(decision: ReviewDecision) -> Any:
    return _dump(_decision, decision, "the decision")


def load_decision(data: Any) -> ReviewDecision:
    return _decision.validate_python(data)


# --- DBOS checkpoints ----------------------------------------------------------------------------

CHECKPOINT_FORMAT = 1
"""The version of the JSON form below; a checkpoint of another version is refused."""

_UNTRUSTED = (
    "handrail writes checkpoints as JSON and never loads anything else, because loading a "
    "pickle can run any code: it was written by a handrail before checkpoints were JSON, or "
    "put there by someone who can write the database. Finish or abandon that run (run the "
    "document again with the handrail that started it, or delete the database if its runs "
    "do not matter), and check who can write the database"
)


class JsonCheckpoints(Serializer):
    """The DBOS serializer of every handrail process: JSON in, JSON out, nothing else."""

    def name(self) -> str:
        return "handrail_json"

    def serialize(self, data: Any) -> str:
        return json.dumps(
            {"handrail": CHECKPOINT_FORMAT, "value": _encode(data)},
            ensure_ascii=False,
            separators=(",", ":"),
        )

    def deserialize(self, serialized_data: str) -> Any:
        try:
            envelope = json.loads(serialized_data)
        except (TypeError, ValueError):
            raise CheckpointRefused(
                f"refused a checkpoint that is not JSON ({_peek(serialized_data)}); " + _UNTRUSTED
            ) from None
        if not isinstance(envelope, dict) or envelope.get("handrail") != CHECKPOINT_FORMAT:
            raise CheckpointRefused(
                f"refused a checkpoint that is not in handrail's format "
                f"({_peek(serialized_data)}); " + _UNTRUSTED
            )
        return _decode(envelope.get("value"))


CHECKPOINTS = JsonCheckpoints()
"""The serializer handrail gives DBOS (`DBOSConfig["serializer"]`, `DBOSClient(serializer=)`)."""


def refuse_pickles() -> None:
    """Make DBOS refuse rows that say they are pickled (DBOS picks the deserializer by the
    row's own `serialization` column, so a planted row could otherwise name pickle). Affects
    DBOS's shared pickle serializer in this process; handrail owns DBOS in its processes."""

    def refuse(_data: str) -> Any:
        raise CheckpointRefused("refused a pickled checkpoint; " + _UNTRUSTED)

    DBOSDefaultSerializer.deserialize = refuse  # type: ignore[method-assign,assignment]


def _peek(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:37] + "..."


_OUTCOME_ADAPTERS: dict[str, TypeAdapter[Any]] | None = None


def _outcome_adapters() -> dict[str, TypeAdapter[Any]]:
    global _OUTCOME_ADAPTERS
    if _OUTCOME_ADAPTERS is None:
        hints = get_type_hints(Outcome)
        _OUTCOME_ADAPTERS = {
            f.name: TypeAdapter(hints[f.name])
            for f in fields(Outcome)
            if f.name not in ("output", "error")
        }
    return _OUTCOME_ADAPTERS


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, set | frozenset):
        return {"$set": [_encode(v) for v in value]}
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("$") for k in value):
            return {k: _encode(v) for k, v in value.items()}
        if all(isinstance(k, str) for k in value):
            return {"$dict": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, Outcome):
        data = {
            name: adapter.dump_python(getattr(value, name), mode="json")
            for name, adapter in _outcome_adapters().items()
        }
        data["output"] = _encode(value.output)
        error = value.error
        data["error"] = None if error is None else _encode(error)
        return {"$outcome": data}
    if isinstance(value, BaseException):
        recorded = RecordedError.of(value)
        return {"$error": {"type": recorded.type_name, "message": str(recorded)}}
    raise StoreError(
        f"cannot checkpoint a {type(value).__name__}: handrail's checkpoints hold JSON values, "
        "tuples, step outcomes and errors (node outputs must be JSON-able: pydantic models, "
        "dataclasses, dicts, lists, strings, numbers)"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1 or not next(iter(value)).startswith("$"):
        return {k: _decode(v) for k, v in value.items()}
    [(tag, body)] = value.items()
    try:
        if tag == "$tuple":
            return tuple(_decode(v) for v in body)
        if tag == "$set":
            return {_decode(v) for v in body}
        if tag == "$dict":
            return {k: _decode(v) for k, v in body.items()}
        if tag == "$datetime":
            return datetime.fromisoformat(body)
        if tag == "$outcome":
            return _decode_outcome(body)
        if tag == "$error":
            return _decode_error(body["type"], body["message"])
    except (TypeError, ValueError, KeyError, AttributeError, ValidationError) as e:
        raise CheckpointRefused(
            f"refused a checkpoint whose `{tag}` value is malformed ({type(e).__name__}); "
            "handrail did not write it: someone changed the database by hand"
        ) from None
    raise CheckpointRefused(
        f"refused a checkpoint holding `{tag}`, which handrail never writes; someone changed "
        "the database by hand"
    )


def _decode_outcome(body: dict[str, Any]) -> Outcome:
    adapters = _outcome_adapters()
    unknown = set(body) - set(adapters) - {"output", "error"}
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    values = {name: adapters[name].validate_python(body[name]) for name in adapters if name in body}
    error = _decode(body.get("error"))
    if error is not None and not isinstance(error, BaseException):
        raise TypeError("error is not an error")
    return Outcome(**values, output=_decode(body.get("output")), error=error)


def _decode_error(type_name: str, message: str) -> Exception:
    """The built-in exception of that name, else a `RecordedError` (never a class looked up by
    a module path: a checkpoint cannot make handrail import anything)."""
    if not isinstance(type_name, str) or not isinstance(message, str):
        raise TypeError("type and message must be text")
    builtin = getattr(builtins, type_name, None)
    if (
        isinstance(builtin, type)
        and issubclass(builtin, Exception)
        and not issubclass(builtin, OSError | UnicodeError)  # their constructors differ
    ):
        return builtin(message)
    return RecordedError(type_name, message)
