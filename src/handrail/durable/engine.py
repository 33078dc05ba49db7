"""Database URLs and the SQLAlchemy engine behind `SqlStore`.

SQLite: the file's folder is created, WAL mode, a busy timeout, foreign keys, and writes that
take the write lock when they begin (`BEGIN IMMEDIATE`), so two processes never deadlock
upgrading a read to a write. Postgres: psycopg 3, a normal pool, a connect timeout.
"""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from os import PathLike, fspath
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from handrail._utils import mask_secrets
from handrail.durable.errors import StoreError, StoreUnavailable

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite write waits for another process's write lock before giving up."""
CONNECT_TIMEOUT_S = 10
"""How long connecting to Postgres may take before the store reports it unreachable."""
URL_HELP = "use sqlite:///path/to/handrail.db or postgresql://user:password@host:5432/dbname"


def mask(text: str, *secrets: str | None) -> str:
    """`text` with every password in it replaced by `***` (see `mask_secrets`), even in a URL
    that does not parse."""
    return mask_secrets(text, *secrets)


def _quote_at_signs(text: str) -> str:
    """The URL with any `@` in its password or its query written `%40`: the user info ends at
    the *last* `@` before the query (SQLAlchemy would end it at another one, and take the rest
    for the host), and a `?password=` may hold `@` too."""
    scheme, sep, rest = text.partition("://")
    if not sep or rest.startswith("/"):  # no user info (`sqlite:///a@b.db` is a path)
        return text
    end = min((i for i in (rest.find("?"), rest.find("#")) if i != -1), default=len(rest))
    head, tail = rest[:end], rest[end:].replace("@", "%40")
    at = head.rfind("@")
    user, colon, secret = head[: max(at, 0)].partition(":")
    if at > 0 and colon and "@" in secret:
        head = f"{user}:{secret.replace('@', '%40')}@{head[at + 1 :]}"
    return f"{scheme}://{head}{tail}"


def password(url: URL) -> str | None:
    """The URL's password, given as `user:PASSWORD@` or as a `?password=` parameter."""
    given = url.query.get("password")
    if isinstance(given, tuple):
        given = given[0] if given else None
    return url.password or given or None


def parse(url: str | PathLike[str]) -> tuple[URL, str]:
    """The SQLAlchemy URL to connect with, and the URL to show people (password masked)."""
    if not isinstance(url, str):
        path = fspath(url)
        return URL.create("sqlite", database=path), f"sqlite:///{path}"
    text = url.strip()
    shown = mask(text)
    if "://" not in text:
        raise StoreError(f"`{shown}` is not a database URL; {URL_HELP}")
    try:
        parsed = make_url(_quote_at_signs(text))
    except (ArgumentError, ValueError) as e:
        raise StoreError(f"cannot parse the database URL `{shown}` ({e}); {URL_HELP}") from e
    shown = mask(text, password(parsed))
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if "+" not in parsed.drivername:  # SQLAlchemy's default driver is psycopg2; ours is 3
            parsed = parsed.set(drivername="postgresql+psycopg")
        if not parsed.database:
            raise StoreError(f"the database URL `{shown}` names no database; {URL_HELP}")
        if importlib.util.find_spec("psycopg") is None:
            raise StoreError(
                f"handrail needs the psycopg driver for Postgres (`{shown}`): "
                'pip install "handrail[postgres]"'
            )
        return parsed, shown
    if backend == "sqlite":
        database = parsed.database
        if not database or database == ":memory:" or database.startswith("file:"):
            raise StoreError(
                f"`{shown}` is not a SQLite file; durable runs need one, e.g. "
                "sqlite:///.handrail/handrail.db (use InMemoryStore for a store in memory)"
            )
        return parsed, shown
    raise StoreError(f"handrail cannot keep runs in `{backend}` (`{shown}`); {URL_HELP}")


def make_engine(url: URL, shown: str, *, relaxed: bool = False, read_only: bool = False) -> Engine:
    """One engine for the store; for SQLite, creates the file's folder first.

    `relaxed` (Postgres): commits that do not wait for the server's disk flush
    (`synchronous_commit = off`), for writes something else makes durable anyway.
    `read_only` (SQLite): opens the file read-only (`mode=ro`), changing nothing in it or its
    folder, so it can be read on a read-only file system or without write permission."""
    if url.get_backend_name() == "sqlite" and read_only:
        assert url.database is not None
        return _read_only_sqlite(Path(url.database).expanduser().resolve())
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        path = Path(url.database).expanduser()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreUnavailable(
                f"cannot use the SQLite database {shown} (cannot create its folder: {e}); "
                "check the path and its permissions"
            ) from e
        engine = create_engine(
            url.set(database=str(path)),
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            json_serializer=_json_dumps,
        )
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT_S,
        "application_name": "handrail",
    }
    if relaxed:  # keep any options the URL gives (a search_path, say)
        given = url.query.get("options")
        given = " ".join(given) if isinstance(given, tuple) else (given or "")
        connect_args["options"] = f"{given} -c synchronous_commit=off".strip()
        url = url.difference_update_query(["options"])
    return create_engine(url, connect_args=connect_args, json_serializer=_json_dumps)


def _read_only_sqlite(path: Path) -> Engine:
    """A SQLite engine that only reads. A WAL database needs its `-shm` file to be read; where
    it is missing and cannot be created (a read-only folder or file system), the file is read
    as `immutable` (as it is on disk: nobody can be writing it there)."""
    uri = path.as_uri()

    def connect() -> sqlite3.Connection:
        timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
        conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False, timeout=timeout)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as e:
            conn.close()
            if "unable to open" not in str(e) and "readonly" not in str(e):
                raise
            conn = sqlite3.connect(
                f"{uri}?mode=ro&immutable=1", uri=True, check_same_thread=False, timeout=timeout
            )
        return conn

    engine = create_engine("sqlite://", creator=connect, json_serializer=_json_dumps)
    event.listen(engine, "connect", _sqlite_connect_read_only)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


CORRUPTED = ("file is not a database", "database disk image is malformed")
"""What SQLite says of a file that is not (or no longer) a database."""
READ_ONLY = ("readonly database", "read-only file system", "unable to open database file")
"""What SQLite says when it cannot write the file or create the files beside it."""


def corrupted(message: str) -> bool:
    return any(text in message for text in CORRUPTED)


def reason(error: BaseException, *secrets: str | None) -> str:
    """The first line of the driver's message, passwords masked."""
    orig = getattr(error, "orig", None)
    lines = str(orig if orig is not None else error).strip().splitlines()
    return mask(lines[0].strip() if lines else type(error).__name__, *secrets)


def unavailable(dialect: str, shown: str, error: BaseException, secret: str | None = None) -> str:
    """The one-line message for a database that cannot be used, with the fix."""
    why = reason(error, secret)
    if dialect == "sqlite":
        if corrupted(why):
            return (
                f"the SQLite database {shown} is corrupted ({why}); restore it from a backup, "
                "or move it aside to start an empty one (`sqlite3 FILE .recover` may rescue "
                "its runs)"
            )
        if any(text in why for text in READ_ONLY):
            return (
                f"cannot write the SQLite database {shown} ({why}); make the file and its "
                "folder writable, or use another --db (`runs list`, `review list` and "
                "`report` can read it as it is)"
            )
        return (
            f"cannot use the SQLite database {shown} ({why}); check the path, its "
            "permissions and free disk space"
        )
    return (
        f"cannot reach the database at {shown} ({why}); start the server or fix the "
        "URL (HANDRAIL_DATABASE_URL or --db)"
    )


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling would start transactions late (and never for DDL);
    # with it off, `_sqlite_begin` says BEGIN itself.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode, NORMAL loses no committed transaction when a process crashes; only a
        # power cut can cost the last ones. FULL would sync the disk on every step.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _sqlite_connect_read_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("handrail_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
