"""The audit trail as files people keep: JSON Lines (every field, exactly as stored: the chain
can be checked again from it) and CSV (for a spreadsheet: a cell that a spreadsheet would read
as a formula gets a leading `'`)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Literal, TextIO

from handrail.review.shapes import jsonable

if TYPE_CHECKING:
    from handrail.durable import AuditEntry

AuditFormat = Literal["csv", "jsonl"]
COLUMNS = (
    "seq",
    "at",
    "actor",
    "action",
    "review_id",
    "run_id",
    "queue",
    "detail",
    "prev_hash",
    "hash",
)
"""The fields of an audit row, in the order the exports write them."""
_BATCH = 1000
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    """One audit row as plain JSON data (`at` in ISO 8601, UTC)."""
    return {
        "seq": entry.seq,
        "at": jsonable(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "review_id": entry.review_id,
        "run_id": entry.run_id,
        "queue": entry.queue,
        "detail": jsonable(dict(entry.detail)),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }


def all_entries(read: Callable[..., list[AuditEntry]], **filters: Any) -> Iterator[AuditEntry]:
    """Every entry `read` (`ReviewService.audit_entries`) gives with `filters`, read a
    thousand at a time (an export of a long trail never holds it all)."""
    after = 0
    while True:
        batch = read(after_seq=after, limit=_BATCH, **filters)
        yield from batch
        if len(batch) < _BATCH:
            return
        after = batch[-1].seq


def write_audit(entries: Iterable[AuditEntry], out: TextIO, format: AuditFormat = "csv") -> int:
    """Write `entries` to `out` as CSV (a header row, then one row each; `detail` as JSON) or
    JSON Lines; returns how many were written."""
    count = 0
    if format == "jsonl":
        for entry in entries:
            out.write(json.dumps(audit_json(entry), ensure_ascii=False) + "\n")
            count += 1
        return count
    if format != "csv":
        raise ValueError(f"audit format {format!r}: use csv or jsonl")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for entry in entries:
        row = audit_json(entry)
        row["detail"] = json.dumps(row["detail"], ensure_ascii=False, sort_keys=True)
        writer.writerow([_cell(row[column]) for column in COLUMNS])
        count += 1
    return count


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


__all__ = ["COLUMNS", "AuditFormat", "all_entries", "audit_json", "write_audit"]
