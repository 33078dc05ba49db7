"""Durable runs on DBOS: run records, steps and the review queue in SQLite or Postgres.

SQLite needs nothing beyond the base install; Postgres needs `pip install "handrail[postgres]"`.
"""

from handrail.durable.errors import StoreError, StoreUnavailable, StoreVersionError
from handrail.durable.runner import (
    DEFAULT_DATABASE,
    DurableRunner,
    Escalated,
    Finished,
    Submitter,
    database_url,
)
from handrail.durable.schema import SCHEMA_VERSION
from handrail.durable.store import SqlStore
from handrail.durable.versions import AbandonedRun, abandon

__all__ = [
    "DEFAULT_DATABASE",
    "SCHEMA_VERSION",
    "AbandonedRun",
    "DurableRunner",
    "Escalated",
    "Finished",
    "SqlStore",
    "StoreError",
    "StoreUnavailable",
    "StoreVersionError",
    "Submitter",
    "abandon",
    "database_url",
]
