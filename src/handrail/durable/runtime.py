"""The DBOS runtime of one process: configuration, launch, executor ids and dead-worker recovery.

DBOS is a process-wide singleton; handrail launches it once per process (`Runtime.launch`) with
the same database as the run records, and destroys it on the way out.

Executor ids. DBOS recovers, at launch, the pending workflows of its own executor id, and of no
other. handrail therefore gives every process an executor id it *holds* (a lock released the
instant the process dies: a file lock on SQLite, a session advisory lock on Postgres), picks the
first free one of a family (`local`, `local-2`, ...; `worker-<host>`, ...), and lets any live
process recover the pending workflows of an executor id nobody holds (`Runtime.reap`). Holding
the dead executor's lock while recovering it means it cannot come back meanwhile; checking a
*live* executor's lock fails, so a running workflow is never started a second time.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dbos import DBOS, DBOSConfig
from filelock import FileLock, Timeout
from sqlalchemy.engine import URL

from handrail._version import __version__
from handrail.durable.errors import StoreError, StoreUnavailable

APP_NAME = "handrail"
"""The DBOS application name every handrail process uses (workers and clients must agree)."""
QUEUE = "handrail"
"""The DBOS queue `handrail run --submit` puts runs on and `handrail worker` takes them from."""
MAX_EXECUTORS = 64
"""How many executor ids of one family (`local`, `local-2`, ...) a machine may hold at once."""

log = logging.getLogger("handrail.durable")


def app_version() -> str:
    """The DBOS `application_version`: handrail's own. Workers only run and recover workflows of
    their version, so a database is never driven by two incompatible handrails at once."""
    return __version__


def dbos_url(url: URL) -> str:
    """The URL DBOS connects with (its own driver choice; the password kept)."""
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        return f"sqlite:///{Path(url.database).expanduser().resolve()}"
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def default_executor_family(kind: str) -> str:
    """`local` for `handrail run`, `worker-<host>` for a worker, `cli` for review commands."""
    if kind == "worker":
        return f"worker-{socket.gethostname().split('.')[0] or 'host'}"
    return kind


# --- liveness locks ------------------------------------------------------------------------------


class _Liveness:
    """Locks that say "the process with this executor id is alive"."""

    def hold(self, executor_id: str) -> bool:
        """Take and keep `executor_id`'s lock for the life of this process; False if held."""
        raise NotImplementedError

    @contextmanager
    def probe(self, executor_id: str) -> Iterator[bool]:
        """Hold `executor_id`'s lock for the block if nobody does; yields whether it is held."""
        raise NotImplementedError
        yield False  # pragma: no cover

    def release(self) -> None:
        raise NotImplementedError


class _FileLiveness(_Liveness):
    """SQLite: one lock file per executor id beside the database (`<db>.executors/<id>.lock`)."""

    def __init__(self, database: Path) -> None:
        self.folder = database.parent / f"{database.name}.executors"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._held: list[FileLock] = []

    def _lock(self, executor_id: str) -> FileLock:
        return FileLock(self.folder / f"{executor_id}.lock", timeout=0)

    def hold(self, executor_id: str) -> bool:
        lock = self._lock(executor_id)
        try:
            lock.acquire()
        except Timeout:
            return False
        self._held.append(lock)
        return True

    @contextmanager
    def probe(self, executor_id: str) -> Iterator[bool]:
        lock = self._lock(executor_id)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def release(self) -> None:
        for lock in self._held:
            lock.release(force=True)
        self._held.clear()


class _AdvisoryLiveness(_Liveness):
    """Postgres: a session advisory lock per executor id, on a connection kept open."""

    def __init__(self, url: str) -> None:
        import psycopg

        try:
            self._conn: Any = psycopg.connect(
                url, autocommit=True, connect_timeout=10, application_name="handrail-liveness"
            )
        except psycopg.Error as e:
            raise StoreUnavailable(
                f"cannot reach the database to claim an executor id ({str(e).strip()}); "
                "start the server or fix the URL (HANDRAIL_DATABASE_URL or --db)"
            ) from e

    def _try(self, executor_id: str) -> bool:
        row = self._conn.execute(
            "SELECT pg_try_advisory_lock(hashtext(%s))", (f"handrail-executor:{executor_id}",)
        ).fetchone()
        return bool(row[0])

    def hold(self, executor_id: str) -> bool:
        return self._try(executor_id)

    @contextmanager
    def probe(self, executor_id: str) -> Iterator[bool]:
        if not self._try(executor_id):
            yield False
            return
        try:
            yield True
        finally:
            self._conn.execute(
                "SELECT pg_advisory_unlock(hashtext(%s))", (f"handrail-executor:{executor_id}",)
            )

    def release(self) -> None:
        self._conn.close()


# --- the runtime ---------------------------------------------------------------------------------


class Runtime:
    """DBOS in this process, on the database at `url`, under an executor id this process holds.

    `register` (before `launch`) names the workflow functions this process can run: DBOS recovers
    pending workflows at launch, and a workflow it cannot find stays pending for a process that
    can run it.
    """

    current: Runtime | None = None

    def __init__(
        self,
        url: URL,
        shown: str,
        *,
        executor_id: str | None = None,
        family: str = "local",
        recover_others: bool = True,
    ) -> None:
        self.url = url
        self.shown = shown
        self.dialect = url.get_backend_name()
        self.requested_executor = executor_id
        self.family = family
        self.recover_others = recover_others
        self.executor_id = ""
        self.launched = False
        self._liveness: _Liveness | None = None
        self._names: set[str] = set()

    def register(self, names: set[str]) -> None:
        self._names |= names

    def launch(self, listen: list[str]) -> None:
        """Start DBOS, dequeuing from the queues in `listen` (and DBOS's internal queue)."""
        if Runtime.current is not None:
            raise StoreError(
                "a durable runner is already open in this process (DBOS runs once per process); "
                "close it first, or use one DurableRunner for the whole process"
            )
        liveness = self._liveness_for()
        try:
            self.executor_id = self._claim(liveness)
            config: DBOSConfig = {
                "name": APP_NAME,
                "system_database_url": dbos_url(self.url),
                "executor_id": self.executor_id,
                "application_version": app_version(),
                "log_level": "WARNING",
                "notification_listener_polling_interval_sec": 0.1,
            }
            DBOS(config=config)
            try:
                DBOS.listen_queues(listen)
                DBOS.launch()
            except Exception as e:
                DBOS.destroy(destroy_registry=True)
                raise StoreUnavailable(
                    f"cannot start durable runs on {self.shown} ({type(e).__name__}: {e}); "
                    "check that the database is reachable and writable"
                ) from e
        except BaseException:
            liveness.release()
            raise
        self._liveness = liveness
        self.launched = True
        Runtime.current = self

    def destroy(self) -> None:
        if not self.launched:
            return
        self.launched = False
        Runtime.current = None
        try:
            DBOS.destroy(destroy_registry=True, workflow_completion_timeout_sec=0)
        finally:
            if self._liveness is not None:
                self._liveness.release()
                self._liveness = None

    def _liveness_for(self) -> _Liveness:
        if self.dialect == "sqlite":
            assert self.url.database is not None
            return _FileLiveness(Path(self.url.database).expanduser().resolve())
        return _AdvisoryLiveness(
            self.url.set(drivername="postgresql").render_as_string(hide_password=False)
        )

    def _claim(self, liveness: _Liveness) -> str:
        if self.requested_executor is not None:
            if not liveness.hold(self.requested_executor):
                raise StoreError(
                    f"executor id `{self.requested_executor}` is held by another live process "
                    f"on {self.shown}; give this one another --executor-id"
                )
            return self.requested_executor
        for n in range(1, MAX_EXECUTORS + 1):
            candidate = self.family if n == 1 else f"{self.family}-{n}"
            if liveness.hold(candidate):
                return candidate
        raise StoreError(
            f"all {MAX_EXECUTORS} executor ids `{self.family}`..`{self.family}-{MAX_EXECUTORS}` "
            f"are held by live processes on {self.shown}; stop some, or pass --executor-id"
        )

    def reap(self) -> int:
        """Recover the pending workflows of executors no live process holds; returns how many
        were handed back to the queues (any live process of this version then runs each once)."""
        if not self.launched or not self.recover_others or self._liveness is None:
            return 0
        pending = DBOS.list_workflows(
            status="PENDING", app_version=app_version(), load_input=False, load_output=False
        )
        dead = sorted(
            {
                w.executor_id
                for w in pending
                if w.executor_id and w.executor_id != self.executor_id and w.name in self._names
            }
        )
        recovered = 0
        for executor in dead:
            with self._liveness.probe(executor) as free:
                if free:
                    handles = DBOS._recover_pending_workflows([executor])
                    recovered += len(handles)
                    if handles:
                        log.info("recovered %d runs of stopped executor %s", len(handles), executor)
        return recovered
