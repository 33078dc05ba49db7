"""The database under `SqlStore`: its tables, SQLite's settings, bad URLs, unreachable servers,
a database from a newer handrail, and decisions raced from threads and processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from tests import _postgres
from tests.pipelines import low_confidence

from handrail import HandrailError, ReviewAlreadyDecided, ReviewDecision, Runner, RunRecord
from handrail._version import __version__
from handrail.durable import (
    SCHEMA_VERSION,
    SqlStore,
    StoreError,
    StoreUnavailable,
    StoreVersionError,
)

TABLES = [
    "handrail_audit",
    "handrail_claims",
    "handrail_examples",
    "handrail_meta",
    "handrail_outbox",
    "handrail_pipelines",
    "handrail_receipts",
    "handrail_reviewers",
    "handrail_reviews",
    "handrail_runs",
    "handrail_sessions",
    "handrail_steps",
    "handrail_triggers",
]


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    return str(request.getfixturevalue(name))


def engine_for(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def rows(url: str, query: str) -> list[tuple[Any, ...]]:
    engine = engine_for(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(query)]
    finally:
        engine.dispose()


def execute(url: str, statement: str) -> None:
    engine = engine_for(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(statement)
    finally:
        engine.dispose()


async def paused_run(store: SqlStore, text: str = "doc") -> RunRecord:
    runner = Runner(low_confidence.pipeline, model=low_confidence.model(0.6), store=store)
    return await runner.run(text)


# --- the tables ----------------------------------------------------------------------------------


def test_first_use_creates_the_prefixed_tables_and_stamps_the_version(url: str) -> None:
    SqlStore(url).close()
    assert sorted(sa.inspect(engine_for(url)).get_table_names()) == TABLES
    [(schema_version, handrail_version)] = rows(
        url, "SELECT schema_version, handrail_version FROM handrail_meta"
    )
    assert (schema_version, handrail_version) == (SCHEMA_VERSION, __version__)

    SqlStore(url).close()  # opening again changes nothing
    assert len(rows(url, "SELECT * FROM handrail_meta")) == 1


def test_the_sqlite_folder_is_created_and_the_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "handrail.db"
    with SqlStore(f"sqlite:///{path}") as store:
        assert store.dialect == "sqlite"
        store.list_runs()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_path_means_a_sqlite_file(tmp_path: Path) -> None:
    with SqlStore(tmp_path / "runs.db") as store:
        assert store.url == f"sqlite:///{tmp_path / 'runs.db'}"
    assert (tmp_path / "runs.db").exists()


async def test_sqlite_writes_wait_for_another_process_lock_instead_of_failing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "handrail.db"
    store = SqlStore(f"sqlite:///{path}")
    record = await paused_run(store)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock...
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    t0 = time.perf_counter()
    try:
        store.record_decision(record.review.review_id, ReviewDecision.approve())  # type: ignore[union-attr]
    finally:
        release.join()
        other.close()
        store.close()
    assert time.perf_counter() - t0 >= 0.25  # ...and the decision waited for it


def test_foreign_keys_are_enforced_on_sqlite(sqlite_url: str) -> None:
    with SqlStore(sqlite_url) as store, store._engine.begin() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000


def test_two_stores_set_up_one_postgres_database_at_once(fresh_postgres_url: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_one() -> None:
        barrier.wait()
        try:
            SqlStore(fresh_postgres_url).close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(rows(fresh_postgres_url, "SELECT * FROM handrail_meta")) == 1


def drop_store_connections(url: str) -> int:
    """What a Postgres restart does to a pool: every handrail connection is cut."""
    [(cut,)] = rows(
        url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = 'handrail' AND pid <> pg_backend_pid()",
    )
    return int(cut)


async def test_connections_the_server_dropped_are_replaced(fresh_postgres_url: str) -> None:
    with SqlStore(fresh_postgres_url) as store:
        record = await paused_run(store)
        review_id = record.review.review_id  # type: ignore[union-attr]

        assert drop_store_connections(fresh_postgres_url) >= 1
        assert store.get_run(record.run_id) is not None
        drop_store_connections(fresh_postgres_url)
        store.save_step(record.steps[0])
        drop_store_connections(fresh_postgres_url)
        store.save_run(record)
        drop_store_connections(fresh_postgres_url)
        assert store.record_decision(review_id, ReviewDecision.approve()).status == "decided"
        assert store.list_reviews() == []


# --- a database from a newer handrail ------------------------------------------------------------


async def test_a_database_from_a_newer_handrail_is_refused_before_anything_is_written(
    url: str,
) -> None:
    with SqlStore(url) as store:
        await paused_run(store)
    execute(url, "UPDATE handrail_meta SET schema_version = 99, handrail_version = '7.2.0'")
    before = {t: rows(url, f"SELECT * FROM {t}") for t in TABLES}

    with pytest.raises(StoreVersionError) as info:
        SqlStore(url)
    assert str(info.value) == (
        f"the database at {url} holds run records in schema version 99, written by handrail "
        f"7.2.0; this handrail ({__version__}) reads version {SCHEMA_VERSION} at most: upgrade "
        "handrail (pip install -U handrail) to use it"
    )
    assert isinstance(info.value, HandrailError)
    assert {t: rows(url, f"SELECT * FROM {t}") for t in TABLES} == before


# --- bad URLs and unreachable databases ----------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            "handrail.db",
            "`handrail.db` is not a database URL; use sqlite:///path/to/handrail.db or "
            "postgresql://user:password@host:5432/dbname",
        ),
        (
            "postgresql://ann:s3cret@db.example:port/runs",
            "cannot parse the database URL `postgresql://ann:***@db.example:port/runs` (invalid "
            "literal for int() with base 10: 'port'); use sqlite:///path/to/handrail.db or "
            "postgresql://user:password@host:5432/dbname",
        ),
        (
            "mysql://ann:s3cret@db.example/runs",
            "handrail cannot keep runs in `mysql` (`mysql://ann:***@db.example/runs`); use "
            "sqlite:///path/to/handrail.db or postgresql://user:password@host:5432/dbname",
        ),
        (
            "postgresql://ann@db.example",
            "the database URL `postgresql://ann@db.example` names no database; use "
            "sqlite:///path/to/handrail.db or postgresql://user:password@host:5432/dbname",
        ),
        (
            "sqlite:///:memory:",
            "`sqlite:///:memory:` is not a SQLite file; durable runs need one, e.g. "
            "sqlite:///.handrail/handrail.db (use InMemoryStore for a store in memory)",
        ),
    ],
)
def test_a_malformed_url_is_a_clear_error(bad: str, message: str) -> None:
    with pytest.raises(StoreError) as info:
        SqlStore(bad)
    assert str(info.value) == message
    assert "s3cret" not in str(info.value)


def test_an_unreachable_postgres_names_the_url_without_its_password() -> None:
    port = _postgres.free_port()  # nothing listens there
    with pytest.raises(StoreUnavailable) as info:
        SqlStore(f"postgresql://ann:s3cret@127.0.0.1:{port}/runs")
    message = str(info.value)
    assert message.startswith(f"cannot reach the database at postgresql://ann:***@127.0.0.1:{port}")
    assert message.endswith("; start the server or fix the URL (HANDRAIL_DATABASE_URL or --db)")
    assert "refused" in message.lower()
    assert "s3cret" not in message
    assert "\n" not in message


def test_a_missing_postgres_database_is_unavailable(postgres_url: str) -> None:
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_db"
    with pytest.raises(StoreUnavailable, match=r'database "no_such_db" does not exist'):
        SqlStore(missing)


def test_a_sqlite_file_that_cannot_be_created_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "plain-file").write_text("not a folder")
    with pytest.raises(StoreUnavailable) as info:
        SqlStore(f"sqlite:///{tmp_path / 'plain-file' / 'handrail.db'}")
    assert str(info.value).startswith(
        f"cannot use the SQLite database sqlite:///{tmp_path / 'plain-file' / 'handrail.db'} "
        "(cannot create its folder:"
    )
    assert str(info.value).endswith("; check the path and its permissions")


def test_a_file_that_is_not_a_database_is_called_corrupted(tmp_path: Path) -> None:
    (tmp_path / "notes.db").write_text("just some notes, certainly not SQLite " * 100)
    for read_only in (False, True):
        with pytest.raises(StoreUnavailable) as info:
            SqlStore(f"sqlite:///{tmp_path / 'notes.db'}", read_only=read_only)
        assert str(info.value) == (
            f"the SQLite database sqlite:///{tmp_path / 'notes.db'} is corrupted (file is not a "
            "database); restore it from a backup, or move it aside to start an empty one "
            "(`sqlite3 FILE .recover` may rescue its runs)"
        )


async def test_a_read_only_store_changes_nothing_and_reads_what_is_there(tmp_path: Path) -> None:
    path = tmp_path / "handrail.db"
    sqlite3.connect(path).close()  # an empty SQLite file: no handrail tables
    with SqlStore(path, read_only=True) as store:
        assert store.empty
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handrail.db"]
    assert sa.inspect(engine_for(f"sqlite:///{path}")).get_table_names() == []

    with SqlStore(path) as store:
        record = await paused_run(store)
    with SqlStore(path, read_only=True) as store:
        assert not store.empty
        assert [r.run_id for r in store.list_runs()] == [record.run_id]
        with pytest.raises(StoreUnavailable, match="cannot write the SQLite database"):
            store.record_decision(record.review.review_id, ReviewDecision.approve())  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://ann:p@ss-s3cret@127.0.0.1:{port}/runs",
        "postgresql://ann@127.0.0.1:{port}/runs?password=p@ss-s3cret",
        "postgresql://ann:p@ss-s3cret@127.0.0.1:{port}/runs?password=p@ss-s3cret",
    ],
)
def test_a_password_is_masked_even_with_at_signs_or_as_a_parameter(url: str) -> None:
    port = _postgres.free_port()  # nothing listens there
    with pytest.raises(StoreUnavailable) as info:
        SqlStore(url.format(port=port))
    message = str(info.value)
    assert "s3cret" not in message and "ss-" not in message
    assert f"127.0.0.1:{port}/runs" in message  # the host is the host, not part of the password


# --- exactly-once decisions under races ----------------------------------------------------------


def race(n: int, decide: Callable[[int], None]) -> tuple[list[int], list[BaseException]]:
    """Run `decide(i)` in n threads released together; who won, and what the others raised."""
    barrier = threading.Barrier(n)
    won: list[int] = []
    lost: list[BaseException] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            decide(i)
            won.append(i)
        except BaseException as e:
            lost.append(e)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won, lost


async def test_threads_racing_on_one_review_decide_it_once(url: str) -> None:
    with SqlStore(url) as store:
        review_id = (await paused_run(store)).review.review_id  # type: ignore[union-attr]
        # each thread has its own store: its own connections, as separate processes would
        stores = [SqlStore(url) for _ in range(8)]
        try:
            won, lost = race(
                8,
                lambda i: stores[i].record_decision(
                    review_id, ReviewDecision.approve(reviewer=f"r{i}")
                ),
            )
        finally:
            for s in stores:
                s.close()
        assert len(won) == 1
        assert len(lost) == 7 and all(isinstance(e, ReviewAlreadyDecided) for e in lost)
        decision = store.get_decision(review_id)
        assert decision is not None and decision.reviewer == f"r{won[0]}"


def _decide_in_a_process(url: str, review_id: str, who: str, barrier: Any, results: Any) -> None:
    store = SqlStore(url)
    barrier.wait()
    try:
        store.record_decision(review_id, ReviewDecision.approve(reviewer=who))
        results.put((who, "won"))
    except ReviewAlreadyDecided:
        results.put((who, "refused"))
    except BaseException as e:  # pragma: no cover - reported to the test
        results.put((who, f"{type(e).__name__}: {e}"))
    finally:
        store.close()


async def test_processes_racing_on_one_review_decide_it_once(url: str) -> None:
    with SqlStore(url) as store:
        review_id = (await paused_run(store)).review.review_id  # type: ignore[union-attr]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    results = context.Queue()
    processes = [
        context.Process(
            target=_decide_in_a_process, args=(url, review_id, f"p{i}", barrier, results)
        )
        for i in range(3)
    ]
    for p in processes:
        p.start()
    outcomes = sorted(results.get(timeout=60)[1] for _ in processes)
    for p in processes:
        p.join(timeout=60)
    assert outcomes == ["refused", "refused", "won"]
    with SqlStore(url) as store:
        assert store.get_review(review_id).status == "decided"  # type: ignore[union-attr]
