"""Durable runs: run records, steps and the review queue in SQLite or Postgres, beside DBOS.

Needs the `durable` extra (`pip install "handrail[durable]"`).
"""

from handrail.durable.errors import StoreError, StoreUnavailable, StoreVersionError
from handrail.durable.schema import SCHEMA_VERSION
from handrail.durable.store import SqlStore

__all__ = ["SCHEMA_VERSION", "SqlStore", "StoreError", "StoreUnavailable", "StoreVersionError"]
