"""Fixtures for the durable tests: a throwaway PostgreSQL server (started once per session) and
run stores on SQLite files and on that server.

Without the PostgreSQL binaries, tests that need the server are skipped, except in CI (`CI` set),
where they fail: CI installs the Debian package `postgresql` and must run them.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from tests import _postgres  # noqa: E402

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_postgres.PostgresServer]:
    """A PostgreSQL cluster of our own on a free loopback port, for the whole session."""
    try:
        server = _postgres.start()
    except _postgres.PostgresNotFound as e:
        missing = str(e)
    else:
        missing = None
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must run the Postgres tests", pytrace=False)
        pytest.skip(missing)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: _postgres.PostgresServer) -> str:
    """`postgresql://postgres@127.0.0.1:PORT/handrail_test`, shared by the whole session."""
    return postgres_server.create_database("handrail_test")


@pytest.fixture(scope="session")
def _stores_database(postgres_server: _postgres.PostgresServer) -> str:
    return postgres_server.create_database("handrail_stores")


@pytest.fixture
def fresh_postgres_url(_stores_database: str) -> Iterator[str]:
    """An empty Postgres schema of its own for one test (creating a database takes 0.2 s, a
    schema a millisecond): the URL's `search_path` points there, and it is dropped afterwards."""
    import psycopg

    schema = f"t{next(_databases)}"
    with psycopg.connect(_stores_database, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{_stores_database}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(_stores_database, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file in a folder that does not exist yet (the store creates it)."""
    return f"sqlite:///{tmp_path / 'state' / 'handrail.db'}"


@pytest.fixture
def durable_postgres_url(postgres_server: _postgres.PostgresServer) -> Iterator[str]:
    """A Postgres database of its own for one durable test: DBOS keeps its tables in schema
    `dbos` whatever the search path, so workflow ids of different tests must not meet."""
    name = f"durable_{os.getpid()}_{next(_databases)}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)
