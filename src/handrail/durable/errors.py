"""The store's errors live in `handrail.exceptions`; re-exported here for the durable package."""

from __future__ import annotations

from handrail.exceptions import CheckpointRefused, StoreError, StoreUnavailable, StoreVersionError

__all__ = ["CheckpointRefused", "StoreError", "StoreUnavailable", "StoreVersionError"]
