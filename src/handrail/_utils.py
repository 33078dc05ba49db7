"""Small helpers with no dependencies: ids, clocks, hashing.

`now()` and `new_id()` are module-level so tests can patch them for deterministic snapshots.
"""

from __future__ import annotations

import hashlib
import os
from datetime import UTC, datetime


def now() -> datetime:
    """The current time (UTC); patched in tests."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A random id such as `run-1f2e3d4c5b6a`; patched in tests."""
    return f"{prefix}-{os.urandom(6).hex()}"


def content_hash(data: bytes | str) -> str:
    """Hex SHA-256 of a document's content."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id from its parts: the same parts always give the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:16]}"


def unit_hash(*parts: str) -> float:
    """A deterministic number in [0, 1) from its parts (used for audit sampling)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
