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

Short-lived commands (`kind="cli"`: review decisions, escalations) are *private*: an executor id
of their own (`cli-<host>-<pid>-<random>`), so DBOS recovers nothing of anyone's at their launch,
and they take nothing from DBOS's internal queue (where recovered workflows wait): such a process
runs only the workflows it starts or adopts (`Runtime.adopt`), and finishes them before it exits.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from dbos import DBOS, DBOSConfig
from filelock import FileLock, Timeout
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from handrail._utils import mask_secrets
from handrail._version import __version__
from handrail.durable.engine import corrupted, password, reason, unavailable
from handrail.durable.errors import StoreError, StoreUnavailable
from handrail.durable.serialize import CHECKPOINTS, refuse_pickles

APP_NAME = "handrail"
"""The DBOS application name every handrail process uses (workers and clients must agree)."""
QUEUE = "handrail"
"""The DBOS queue `handrail run --submit` puts runs on and `handrail worker` takes them from."""
MAX_EXECUTORS = 64
"""How many executor ids of one family (`local`, `local-2`, ...) a machine may hold at once."""

INTERNAL_QUEUE_NAME = "_dbos_internal_queue"
"""DBOS's own queue, where recovered workflows wait for any launched process (`dbos._utils`)."""

log = logging.getLogger("handrail.durable")

_DBOS_NOISE = (
    # a recovered run started again by the batch that wants it: the same workflow, expected
    "Workflow already exists in queue",
    # every task of a run handrail stops (Ctrl-C, a closing runner, a sibling branch no
    # longer needed): the run is pending and resumes, nothing to tell
    "Asyncio task cancelled",
    # handrail reports a launch that failed itself, in one line with the fix
    "DBOS failed to launch",
)


class _DbosLogs(logging.Filter):
    """On DBOS's logger: drops the lines above, masks passwords in the others."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if message.startswith(_DBOS_NOISE):
            return False
        try:
            text = record.getMessage()
        except Exception:  # a bad format string in DBOS's call: leave it as it is
            return True
        masked = mask_secrets(text)
        if masked != text:
            record.msg, record.args = masked, None
        return True


def quiet_dbos_logs() -> None:
    """Install `_DbosLogs` on DBOS's logger once per process."""
    dbos = logging.getLogger("dbos")
    if not any(isinstance(f, _DbosLogs) for f in dbos.filters):
        dbos.addFilter(_DbosLogs())


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

    def forget(self, executor_id: str) -> None:
        """Remove what is left of a private executor id's lock once released (its id is never
        used again)."""


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

    def forget(self, executor_id: str) -> None:
        # Safe for a private id only: nobody else ever holds it; a reaper probing it meanwhile
        # locks the unlinked file or a new one, either way alone.
        (self.folder / f"{executor_id}.lock").unlink(missing_ok=True)


class _AdvisoryLiveness(_Liveness):
    """Postgres: a session advisory lock per executor id, on a connection kept open."""

    def __init__(self, url: str, secret: str | None = None) -> None:
        import psycopg

        try:
            self._conn: Any = psycopg.connect(
                url, autocommit=True, connect_timeout=10, application_name="handrail-liveness"
            )
        except psycopg.Error as e:
            raise StoreUnavailable(
                f"cannot reach the database to claim an executor id ({reason(e, secret)}); "
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

    `recover_others=False` makes a *private* runtime (short-lived commands): an executor id of
    its own, nothing recovered at launch, nothing taken from DBOS's internal queue, no reaping;
    it runs what it starts and what it adopts (`adopt`).
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
        self._private_id = False
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
                # JSON checkpoints, never pickles: see `serialize.CHECKPOINTS`
                "serializer": CHECKPOINTS,
            }
            refuse_pickles()
            quiet_dbos_logs()
            DBOS(config=config)
            if not self.recover_others:
                _take_nothing_queued()
            try:
                DBOS.listen_queues(listen)
                DBOS.launch()
            except Exception as e:
                DBOS.destroy(destroy_registry=True)
                raise StoreUnavailable(self._cannot_start(e)) from e
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
                if self._private_id:
                    self._liveness.forget(self.executor_id)
                self._liveness = None

    def _cannot_start(self, error: BaseException) -> str:
        """One line for a launch that failed: the first line of the error, passwords masked
        (DBOS's errors quote whole SQL statements and parameters)."""
        if isinstance(error, DBAPIError) or isinstance(error.__cause__, DBAPIError):
            cause = error if isinstance(error, DBAPIError) else error.__cause__
            assert cause is not None
            return unavailable(self.dialect, self.shown, cause, password(self.url))
        why = reason(error, password(self.url))
        if self.dialect == "sqlite" and corrupted(why):
            return unavailable(self.dialect, self.shown, error, password(self.url))
        return (
            f"cannot start durable runs on {self.shown} ({type(error).__name__}: {why}); "
            "check that the database is reachable and writable"
        )

    def _liveness_for(self) -> _Liveness:
        if self.dialect == "sqlite":
            assert self.url.database is not None
            database = Path(self.url.database).expanduser().resolve()
            try:
                return _FileLiveness(database)
            except OSError as e:
                raise StoreUnavailable(
                    f"cannot use the SQLite database {self.shown} (cannot create "
                    f"{database.name}.executors beside it: {e.strerror or e}); make its folder "
                    "writable, or use another --db (`runs list`, `review list` and `report` "
                    "can read it as it is)"
                ) from e
        return _AdvisoryLiveness(
            self.url.set(drivername="postgresql").render_as_string(hide_password=False),
            password(self.url),
        )

    def _claim(self, liveness: _Liveness) -> str:
        if self.requested_executor is not None:
            if not liveness.hold(self.requested_executor):
                raise StoreError(
                    f"executor id `{self.requested_executor}` is held by another live process "
                    f"on {self.shown}; give this one another --executor-id"
                )
            return self.requested_executor
        if not self.recover_others:  # private: an id no other process ever had or will have
            host = socket.gethostname().split(".")[0] or "host"
            private = f"{self.family}-{host}-{os.getpid()}-{secrets.token_hex(3)}"
            if liveness.hold(private):
                self._private_id = True
                return private
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

    def adopt(self, workflow_id: str) -> bool:
        """Run a workflow here whose process died (PENDING under an executor id no live process
        holds) or that waits in DBOS's internal queue after a recovery. False when it is not
        ours to take (a live process runs it, a worker's queue holds it, or it ended): the
        caller then waits for it. Only one process ever takes it (a conditional update)."""
        if not self.launched or self._liveness is None:
            return False
        status = DBOS.get_workflow_status(workflow_id)
        if status is None or status.app_version != app_version():
            return False
        if status.status == "ENQUEUED":
            if status.queue_name not in (None, INTERNAL_QUEUE_NAME):
                return False  # a submitted run: a worker of its queue takes it
            return self._take(workflow_id, "ENQUEUED", None)
        owner = status.executor_id
        if status.status != "PENDING" or not owner or owner == self.executor_id:
            return False
        with self._liveness.probe(owner) as free:
            return free and self._take(workflow_id, "PENDING", owner)

    def _take(self, workflow_id: str, state: str, owner: str | None) -> bool:
        """Claim one workflow for this executor and start it on DBOS's loop, as DBOS's queue
        does when it dequeues one (DBOS 3.4 has no public call for a single workflow: its
        recovery hands every workflow of an executor to the internal queue, for anyone)."""
        from dbos._core import execute_dequeued_workflow
        from dbos._dbos import _get_dbos_instance

        dbos = _get_dbos_instance()
        sys_db = dbos._sys_db
        table = sys_db.tables.workflow_status
        owner_xid = secrets.token_hex(16)
        claim = sa.update(table).where(
            table.c.workflow_uuid == workflow_id, table.c.status == state
        )
        if owner is not None:
            claim = claim.where(table.c.executor_id == owner)
        claim = claim.values(
            status="PENDING",
            owner_xid=owner_xid,
            executor_id=self.executor_id,
            started_at_epoch_ms=sys_db._now_ms_sql(),
            recovery_attempts=table.c.recovery_attempts + 1,
            updated_at=sys_db._now_ms_sql(),
        )
        with sys_db.engine.begin() as conn:
            if conn.execute(claim).rowcount != 1:
                return False
        status = sys_db.get_workflow_status(workflow_id)
        assert status is not None
        execute_dequeued_workflow(dbos, status, owner_xid)
        log.info("took over %s from %s", workflow_id, owner or "the internal queue")
        return True

    def running_here(self) -> set[str]:
        """Ids of the workflows of this process's pipelines and version that it runs (pending
        under its executor id) or that wait in DBOS's internal queue for a process like it (a
        recovery handed them back). One of another pipeline or version, never run here, is not
        counted."""
        if not self.launched:
            return set()
        flows = DBOS.list_workflows(
            status=["PENDING", "ENQUEUED"],
            name=sorted(self._names),
            app_version=app_version(),
            load_input=False,
            load_output=False,
        )
        return {
            w.workflow_id
            for w in flows
            if (w.status == "PENDING" and w.executor_id == self.executor_id)
            or (w.status == "ENQUEUED" and w.queue_name == INTERNAL_QUEUE_NAME)
        }

    def other_versions(self) -> dict[str, str]:
        """Workflows of this process's pipelines left pending or queued by another handrail
        version (a crash, then an upgrade): workflow id -> that version. No process of this
        version runs them, and none waits for them."""
        if not self.launched:
            return {}
        flows = DBOS.list_workflows(
            status=["PENDING", "ENQUEUED"],
            name=sorted(self._names),
            load_input=False,
            load_output=False,
        )
        mine = app_version()
        return {w.workflow_id: w.app_version or "?" for w in flows if w.app_version != mine}


def _take_nothing_queued() -> None:
    """Keep this process out of DBOS's internal queue, where recovered workflows of any process
    wait: a worker concurrency of 0 (DBOS 3.4 has no public switch; its queue thread claims
    nothing beyond a queue's worker concurrency)."""
    from dbos._dbos import _get_dbos_instance

    _get_dbos_instance()._registry.get_internal_queue()._worker_concurrency = 0
