"""Durable runs on DBOS: run records, steps and the review queue in SQLite or Postgres.

SQLite needs nothing beyond the base install; Postgres needs `pip install "handrail[postgres]"`.
"""

from handrail.durable.audit import AuditCheck, AuditEntry
from handrail.durable.errors import StoreError, StoreUnavailable, StoreVersionError
from handrail.durable.examples import chain, review_examples
from handrail.durable.people import Claim, InboxRow, Reviewer
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
    "AuditCheck",
    "AuditEntry",
    "Claim",
    "DurableRunner",
    "Escalated",
    "Finished",
    "InboxRow",
    "Reviewer",
    "SqlStore",
    "StoreError",
    "StoreUnavailable",
    "StoreVersionError",
    "Submitter",
    "abandon",
    "chain",
    "database_url",
    "review_examples",
]
