"""`SqlStore`: the `RunStore` on SQLite or Postgres, in the database DBOS uses.

SQLAlchemy Core on one engine. SQLite runs in WAL mode with a busy timeout and foreign keys on,
and every write takes the write lock when it begins (`BEGIN IMMEDIATE`), so two processes never
deadlock upgrading a read to a write. Postgres gets a normal connection pool.

Guarantees, the same as `InMemoryStore`'s:
- `record_decision` accepts a decision exactly once, across threads and processes: a conditional
  `UPDATE ... WHERE status = 'pending'`, and the row count says who won.
- `save_step` is idempotent: a recovered workflow replays its steps and saves them again. A step
  record is identified by what it is, `(run_id, node, visit, status)` (a node's visit is unique
  within a run, and one visit has at most one record per status: `needs_review` then the
  decision's `completed` or `rejected`), so saving it again updates it in place; `seq`, its
  position, is given when it is first saved.
- `save_run` replaces the run, and leaves the step log equal to the run's steps and the pending
  queue equal to the run's pending reviews; a decided review is never reopened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from os import PathLike, fspath
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

try:
    from sqlalchemy import (
        ColumnElement,
        Connection,
        Engine,
        Table,
        create_engine,
        delete,
        event,
        func,
        insert,
        inspect,
        select,
        update,
    )
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.engine import URL, make_url
    from sqlalchemy.exc import (
        ArgumentError,
        DBAPIError,
        IntegrityError,
        InterfaceError,
        OperationalError,
    )
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        'handrail.durable needs the durable extra: pip install "handrail[durable]"'
    ) from e

from handrail._utils import now
from handrail._version import __version__
from handrail.core.records import (
    ReviewDecision,
    ReviewRequest,
    RunRecord,
    RunStatus,
    StepRecord,
)
from handrail.durable import schema
from handrail.durable.errors import StoreError, StoreUnavailable, StoreVersionError
from handrail.durable.serialize import (
    dump_decision,
    dump_run,
    dump_step,
    load_decision,
    load_review,
    load_run,
    load_step,
)
from handrail.exceptions import ReviewAlreadyDecided, ReviewNotFound

SQLITE_BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite write waits for another process's write lock before giving up."""
CONNECT_TIMEOUT_S = 10
"""How long connecting to Postgres may take before the store reports it unreachable."""
_SETUP_LOCK = 0x68616E64  # "hand": serialises schema setup between processes on Postgres
_URL_HELP = "use sqlite:///path/to/handrail.db or postgresql://user:password@host:5432/dbname"


class SqlStore:
    """A `RunStore` in a SQL database: `SqlStore("sqlite:///.handrail/handrail.db")` or
    `SqlStore("postgresql://user:password@host/db")`.

    Opening it connects, creates the `handrail_*` tables on first use (and the SQLite file's
    folder), and refuses a database written by a newer handrail (`StoreVersionError`) before
    writing anything. An unreachable database raises `StoreUnavailable`; a malformed URL,
    `StoreError`. A path (`pathlib.Path`) means a SQLite file.
    """

    def __init__(self, url: str | PathLike[str]) -> None:
        parsed, self.url = _parse(url)
        self.dialect: str = parsed.get_backend_name()
        """`sqlite` or `postgresql`."""
        self._engine = _engine(parsed, self.url)
        self._writer = self._engine.execution_options(handrail_write=True)
        try:
            self._prepare()
        except BaseException:
            self._engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"SqlStore({self.url!r})"

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's connections (it reconnects if used again)."""
        self._engine.dispose()

    # --- runs ----------------------------------------------------------------------------------

    def save_run(self, run: RunRecord) -> None:
        record = dump_run(run)
        row = {
            "run_id": run.run_id,
            "pipeline": run.pipeline,
            "document_id": run.document_id,
            "document_hash": run.document_hash,
            "status": run.status.value,
            "started_at": run.started_at,
            "ended_at": run.ended_at,
            "duration_s": run.duration_s,
            "tokens": run.usage.total_tokens,
            "cost": run.usage.cost,
            "error_type": run.error.type if run.error is not None else None,
            "record": record,
        }
        runs, steps, reviews = schema.runs, schema.steps, schema.reviews
        with self._errors(), self._writer.begin() as conn:
            conn.execute(self._upsert(runs, ["run_id"], [k for k in row if k != "run_id"]), row)

            saved = conn.execute(
                select(steps.c.node, steps.c.visit, steps.c.status)
                .where(steps.c.run_id == run.run_id)
                .order_by(steps.c.seq)
            ).all()
            wanted = [(s.node, s.visit, s.status.value) for s in run.steps]
            if [tuple(r) for r in saved] != wanted:  # usually equal: save_step saw every step
                conn.execute(delete(steps).where(steps.c.run_id == run.run_id))
                if run.steps:
                    conn.execute(
                        insert(steps),
                        [
                            _step_row(step, data) | {"seq": seq}
                            for seq, (step, data) in enumerate(
                                zip(run.steps, record["steps"], strict=True)
                            )
                        ],
                    )

            pending = [r.review_id for r in run.reviews]
            conn.execute(
                delete(reviews).where(
                    reviews.c.run_id == run.run_id,
                    reviews.c.status == "pending",
                    reviews.c.review_id.not_in(pending),
                )
            )
            if run.reviews:
                conn.execute(
                    self._upsert(
                        reviews,
                        ["review_id"],
                        ["run_id", "pipeline", "node", "created_at", "request"],
                        where=reviews.c.status == "pending",  # a decision is never undone
                    ),
                    [
                        {
                            "review_id": review.review_id,
                            "run_id": review.run_id,
                            "pipeline": review.pipeline,
                            "node": review.node,
                            "status": "pending",
                            "created_at": review.created_at,
                            "request": data,
                        }
                        for review, data in zip(run.reviews, record["reviews"], strict=True)
                    ],
                )

    def get_run(self, run_id: str) -> RunRecord | None:
        runs = schema.runs
        with self._errors(), self._engine.connect() as conn:
            data = conn.execute(select(runs.c.record).where(runs.c.run_id == run_id)).scalar()
        return None if data is None else load_run(data)

    def list_runs(
        self,
        *,
        status: RunStatus | str | None = None,
        pipeline: str | None = None,
        limit: int | None = None,
        since: datetime | None = None,
    ) -> list[RunRecord]:
        """Runs, newest first (by start time), optionally only those with a status, of a
        pipeline, or started at or after `since`."""
        runs = schema.runs
        query = select(runs.c.record)
        if status is not None:
            query = query.where(runs.c.status == RunStatus(status).value)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == pipeline)
        if since is not None:
            query = query.where(runs.c.started_at >= since)
        query = query.order_by(runs.c.started_at.desc().nulls_last(), runs.c.run_id.desc())
        if limit is not None:
            query = query.limit(limit)
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(query).scalars().all()
        return [load_run(data) for data in rows]

    # --- steps ---------------------------------------------------------------------------------

    def save_step(self, step: StepRecord) -> None:
        steps = schema.steps
        row = _step_row(step, dump_step(step))
        # seq: the step's position, given on first save only (a replay keeps the original)
        row["seq"] = (
            select(func.coalesce(func.max(steps.c.seq) + 1, 0))
            .where(steps.c.run_id == step.run_id)
            .scalar_subquery()
        )
        statement = self._upsert(
            steps, ["run_id", "node", "visit", "status"], ["started_at", "duration_s", "record"]
        )
        with self._errors():
            for attempt in (1, 2, 3):
                try:
                    with self._writer.begin() as conn:
                        conn.execute(statement.values(row))
                    return
                except IntegrityError:
                    # Two writers took the same next seq for one run at once (Postgres; SQLite
                    # writes one at a time). The loser tries again with the next number.
                    if attempt == 3:
                        raise

    def steps(self, run_id: str) -> list[StepRecord]:
        """Steps checkpointed for a run, in the order they were first saved."""
        steps = schema.steps
        query = select(steps.c.record).where(steps.c.run_id == run_id).order_by(steps.c.seq)
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(query).scalars().all()
        return [load_step(data) for data in rows]

    # --- reviews -------------------------------------------------------------------------------

    def get_review(self, review_id: str) -> ReviewRequest | None:
        reviews = schema.reviews
        query = select(reviews.c.request, reviews.c.status).where(reviews.c.review_id == review_id)
        with self._errors(), self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _review(row.request, row.status)

    def list_reviews(self, *, pending_only: bool = True) -> list[ReviewRequest]:
        """Reviews, oldest first (the queue's order)."""
        reviews = schema.reviews
        query = select(reviews.c.request, reviews.c.status)
        if pending_only:
            query = query.where(reviews.c.status == "pending")
        query = query.order_by(reviews.c.created_at, reviews.c.review_id)
        with self._errors(), self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_review(row.request, row.status) for row in rows]

    def get_decision(self, review_id: str) -> ReviewDecision | None:
        """The decision recorded for a review, if it has one."""
        reviews = schema.reviews
        query = select(reviews.c.decision).where(reviews.c.review_id == review_id)
        with self._errors(), self._engine.connect() as conn:
            data = conn.execute(query).scalar()
        return None if data is None else load_decision(data)

    def record_decision(self, review_id: str, decision: ReviewDecision) -> ReviewRequest:
        """Atomically mark a pending review decided and return it (exactly once, across
        processes: the first conditional update wins, every later one changes no row)."""
        reviews = schema.reviews
        data = dump_decision(decision)
        with self._errors(), self._writer.begin() as conn:
            won = conn.execute(
                update(reviews)
                .where(reviews.c.review_id == review_id, reviews.c.status == "pending")
                .values(
                    status="decided",
                    decision=data,
                    decided_at=decision.decided_at or now(),
                    reviewer=decision.reviewer,
                )
                .returning(reviews.c.request)
            ).first()
            if won is not None:
                return _review(won.request, "decided")
            previous = conn.execute(
                select(reviews.c.decision).where(reviews.c.review_id == review_id)
            ).first()
        if previous is None:
            raise ReviewNotFound(
                f"no review `{review_id}`; list pending reviews with `handrail review list`"
            )
        earlier = load_decision(previous.decision)
        raise ReviewAlreadyDecided(
            f"review `{review_id}` was already decided ({earlier.action}"
            f"{' by ' + earlier.reviewer if earlier.reviewer else ''}); "
            "a decision is applied exactly once"
        )

    # --- plumbing ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create the tables on first use, or check that this code understands them."""
        meta = schema.meta
        with self._errors(opening=True), self._writer.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_SETUP_LOCK)))
            found = (
                conn.execute(select(meta).where(meta.c.id == 1)).first()
                if inspect(conn).has_table(meta.name)
                else None
            )
            if found is None:
                schema.metadata.create_all(conn)
                stamp = now()
                conn.execute(
                    insert(meta).values(
                        id=1,
                        schema_version=schema.SCHEMA_VERSION,
                        handrail_version=__version__,
                        created_at=stamp,
                        updated_at=stamp,
                    )
                )
            elif found.schema_version > schema.SCHEMA_VERSION:
                raise StoreVersionError(
                    f"the database at {self.url} holds run records in schema version "
                    f"{found.schema_version}, written by handrail {found.handrail_version}; "
                    f"this handrail ({__version__}) reads version {schema.SCHEMA_VERSION} at "
                    "most: upgrade handrail (pip install -U handrail) to use it"
                )
            elif found.schema_version < schema.SCHEMA_VERSION:  # pragma: no cover - no v0 yet
                _migrate(conn, found.schema_version)
                conn.execute(
                    update(meta)
                    .where(meta.c.id == 1)
                    .values(
                        schema_version=schema.SCHEMA_VERSION,
                        handrail_version=__version__,
                        updated_at=now(),
                    )
                )

    def _upsert(
        self,
        table: Table,
        key: list[str],
        columns: list[str],
        *,
        where: ColumnElement[bool] | None = None,
    ) -> Any:
        """INSERT ... ON CONFLICT (key) DO UPDATE SET columns = the new values [WHERE ...]."""
        if self.dialect == "postgresql":
            pg = postgresql.insert(table)
            return pg.on_conflict_do_update(
                index_elements=key, set_={c: pg.excluded[c] for c in columns}, where=where
            )
        lite = sqlite.insert(table)
        return lite.on_conflict_do_update(
            index_elements=key, set_={c: lite.excluded[c] for c in columns}, where=where
        )

    @contextmanager
    def _errors(self, *, opening: bool = False) -> Iterator[None]:
        """Translate the driver's errors into handrail's, at the boundary. While opening, any
        database error (a file that is not SQLite, a refused login) means it cannot be used."""
        try:
            yield
        except (OperationalError, InterfaceError) as e:
            raise StoreUnavailable(_unavailable(self.dialect, self.url, e)) from e
        except DBAPIError as e:
            if opening:
                raise StoreUnavailable(_unavailable(self.dialect, self.url, e)) from e
            raise StoreError(
                f"the database at {self.url} refused a write: {_reason(e)}; "
                "this is a bug in handrail or a change made to its tables by hand"
            ) from e


def _step_row(step: StepRecord, data: Any) -> dict[str, Any]:
    return {
        "run_id": step.run_id,
        "node": step.node,
        "visit": step.visit,
        "status": step.status.value,
        "started_at": step.started_at,
        "duration_s": step.duration_s,
        "record": data,
    }


def _review(data: Any, status: Literal["pending", "decided"]) -> ReviewRequest:
    review = load_review(data)
    return review if review.status == status else replace(review, status=status)


# Upgrades from an older schema version: {version it produces: step}. Empty while version 1 is
# the only one; each future change adds its step here and bumps `schema.SCHEMA_VERSION`.
_MIGRATIONS: dict[int, Any] = {}


def _migrate(conn: Connection, found: int) -> None:  # pragma: no cover - no v0 yet
    for version in range(found + 1, schema.SCHEMA_VERSION + 1):
        _MIGRATIONS[version](conn)


# --- URLs and engines ---------------------------------------------------------------------------


def _mask(text: str) -> str:
    """A URL with its password replaced by `***`, even when it does not parse."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)


def _parse(url: str | PathLike[str]) -> tuple[URL, str]:
    """The SQLAlchemy URL to connect with, and the URL to show people (password masked)."""
    if not isinstance(url, str):
        path = fspath(url)
        return URL.create("sqlite", database=path), f"sqlite:///{path}"
    text = url.strip()
    shown = _mask(text)
    if "://" not in text:
        raise StoreError(f"`{shown}` is not a database URL; {_URL_HELP}")
    try:
        parsed = make_url(text)
    except (ArgumentError, ValueError) as e:
        raise StoreError(f"cannot parse the database URL `{shown}` ({e}); {_URL_HELP}") from e
    if parsed.password is None:
        shown = text
    backend = parsed.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if "+" not in parsed.drivername:  # SQLAlchemy's default driver is psycopg2; ours is 3
            parsed = parsed.set(drivername="postgresql+psycopg")
        if not parsed.database:
            raise StoreError(f"the database URL `{shown}` names no database; {_URL_HELP}")
        return parsed, shown
    if backend == "sqlite":
        if (
            not parsed.database
            or parsed.database == ":memory:"
            or parsed.database.startswith("file:")
        ):
            raise StoreError(
                f"`{shown}` is not a SQLite file; durable runs need one, e.g. "
                "sqlite:///.handrail/handrail.db (use InMemoryStore for a store in memory)"
            )
        return parsed, shown
    raise StoreError(f"handrail cannot keep runs in `{backend}` (`{shown}`); {_URL_HELP}")


def _json_dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _engine(url: URL, shown: str) -> Engine:
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
    return create_engine(
        url,
        pool_pre_ping=True,  # a worker outlives a server restart without a failed step
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "handrail"},
        json_serializer=_json_dumps,
    )


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


def _sqlite_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("handrail_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _reason(error: DBAPIError) -> str:
    lines = str(error.orig if error.orig is not None else error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def _unavailable(dialect: str, shown: str, error: DBAPIError) -> str:
    if dialect == "sqlite":
        return (
            f"cannot use the SQLite database {shown} ({_reason(error)}); check the path, its "
            "permissions and free disk space"
        )
    return (
        f"cannot reach the database at {shown} ({_reason(error)}); start the server or fix the "
        "URL (HANDRAIL_DATABASE_URL or --db)"
    )


__all__ = ["SqlStore", "StoreError", "StoreUnavailable", "StoreVersionError"]
