"""`SqlStore`: the `RunStore` on SQLite or Postgres, in the database DBOS uses.

SQLAlchemy Core on one engine (`engine.py`: SQLite in WAL mode, Postgres with a normal pool), the
tables in `schema.py`, the statements prebuilt in `statements.py`.

What it guarantees, beyond reading back what was saved:
- `record_decision` accepts a decision exactly once, across threads and processes: a conditional
  `UPDATE ... WHERE status = 'pending'`; the one that changed the row won.
- `save_step` is idempotent: a recovered workflow replays its steps and saves them again. A step
  record is identified by what it is, `(run_id, node, visit, status)` (a node's visit is unique
  within a run, and one visit has at most one record per status: `needs_review`, then the
  decision's `completed` or `rejected`), so saving it again updates it in place; `seq`, its
  position, is given when it is first saved.
- `save_run` is idempotent too. It replaces the run, and leaves the step log equal to the run's
  steps and the run's pending reviews equal to its record's; a decided review is never reopened.
- A connection the server dropped (a Postgres restart) is replaced and the call made once more
  (`record_decision` then recognises its own decision if the first attempt was applied).
- The decision that wins, its audit row, the end of the review's claim and the example it makes
  (`learn_from_reviews=True`, `examples.py`) commit together (one transaction, on Postgres too),
  and so do an escalation and its audit row.
- Given notification routes (`routes=`, `notify_to`), a saved review, a run saved failed and an
  escalation write their outbox rows in the same transaction (`review.waiting`, `run.failed`,
  `review.escalated`): the announcement exists if and only if the event does.

Reviewers, sessions, claims, the inbox and the audit trail are in `people.py` (`ReviewTables`);
the outbox's methods in `notices.py` (`OutboxTables`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime
from os import PathLike
from types import TracebackType
from typing import Any, Literal, TypeVar

from sqlalchemy import Connection, Engine, func, insert, inspect, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError

from handrail._utils import now
from handrail._version import __version__
from handrail.core.examples import ReviewedExample
from handrail.core.records import (
    ReviewDecision,
    ReviewRequest,
    RunRecord,
    RunStatus,
    StepRecord,
)
from handrail.durable import audit, examples, outbox, schema
from handrail.durable.engine import (
    corrupted,
    make_engine,
    parse,
    password,
    reason,
    unavailable,
)
from handrail.durable.errors import StoreError, StoreUnavailable, StoreVersionError
from handrail.durable.examples import ExampleTables
from handrail.durable.notices import OutboxTables
from handrail.durable.outbox import Route
from handrail.durable.people import ReviewTables, already_decided
from handrail.durable.serialize import (
    dump_decision,
    dump_review,
    dump_run,
    dump_step,
    load_decision,
    load_review,
    load_run,
    load_step,
)
from handrail.durable.statements import statements
from handrail.exceptions import ReviewNotFound

T = TypeVar("T")

DEADLINE_ACTOR = "handrail (deadline)"
"""Who escalates a review whose deadline passed (the runner's deadline reviewer)."""

_SETUP_LOCK = 0x68616E64  # "hand": serialises schema setup between processes on Postgres


class SqlStore(ReviewTables, OutboxTables, ExampleTables):
    """A `RunStore` in a SQL database: `SqlStore("sqlite:///.handrail/handrail.db")` or
    `SqlStore("postgresql://user:password@host/db")`; a `pathlib.Path` means a SQLite file.

    Opening it connects, creates the `handrail_*` tables on first use (and the SQLite file's
    folder), and refuses a database written by a newer handrail (`StoreVersionError`) before
    writing anything. An unreachable, unwritable or corrupted database raises
    `StoreUnavailable`; a malformed URL, `StoreError`.

    `read_only=True` changes nothing: no tables are created (`empty` says there are none), and
    a SQLite file is opened read-only, so it can be read on a read-only file system.

    `routes`: the notification channels and the events each wants (`Notifications.routes`):
    the store writes their outbox rows with the events (docs/notifications.md).
    """

    def __init__(
        self,
        url: str | PathLike[str],
        *,
        read_only: bool = False,
        routes: Sequence[Route] = (),
    ) -> None:
        parsed, self.url = parse(url)
        """The database's URL, its password masked."""
        self.dialect: str = parsed.get_backend_name()
        """`sqlite` or `postgresql`."""
        self.read_only = read_only
        self.routes: tuple[Route, ...] = ()
        self.notify_to(routes)
        self.empty = False
        """True when the database holds no run records yet (`read_only` stores only)."""
        self._secret = password(parsed)
        self._sql = statements(self.dialect)
        self._engine = make_engine(parsed, self.url, read_only=read_only)
        self._writer = self._engine.execution_options(handrail_write=True)
        # A single statement needs no transaction around it: on Postgres, autocommit saves the
        # BEGIN and COMMIT (or ROLLBACK) round trips. SQLite's writes still take the write lock
        # when they begin.
        autocommit = self._engine.execution_options(isolation_level="AUTOCOMMIT")
        postgres = self.dialect == "postgresql"
        self._single = autocommit if postgres else self._writer
        self._reader = autocommit if postgres else self._engine
        # Step checkpoints on Postgres commit without waiting for the disk flush: a step record
        # lost to a server crash is saved again when its workflow replays, and `save_run` (a
        # normal commit) rewrites the whole step log when the run ends or pauses.
        self._relaxed: Engine | None = None
        self._steps = self._single
        try:
            self._call(self._prepare, opening=True)
            if postgres and not read_only:
                self._relaxed = make_engine(parsed, self.url, relaxed=True)
                self._steps = self._relaxed.execution_options(isolation_level="AUTOCOMMIT")
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
        if self._relaxed is not None:
            self._relaxed.dispose()

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
        wanted = [(s.node, s.visit, s.status.value) for s in run.steps]
        sql = self._sql

        def work() -> None:
            with self._writer.begin() as conn:
                conn.execute(sql.save_run, row)
                saved = conn.execute(sql.step_keys, {"run_id": run.run_id}).all()
                if [tuple(r) for r in saved] != wanted:  # usually equal: save_step saw each step
                    conn.execute(sql.delete_steps, {"run_id": run.run_id})
                    if run.steps:
                        conn.execute(
                            sql.insert_steps,
                            [
                                _step_row(step, data) | {"seq": seq}
                                for seq, (step, data) in enumerate(
                                    zip(run.steps, record["steps"], strict=True)
                                )
                            ],
                        )
                keep = [r.review_id for r in run.reviews]
                conn.execute(sql.drop_stale_reviews, {"run_id": run.run_id, "keep": keep})
                if run.reviews:
                    conn.execute(
                        sql.save_reviews,
                        [
                            {
                                "review_id": review.review_id,
                                "run_id": review.run_id,
                                "pipeline": review.pipeline,
                                "node": review.node,
                                "status": "pending",
                                "created_at": review.created_at,
                                "deadline": review.deadline,
                                "queue": review.queue,
                                "escalated": review.escalated_at is not None,
                                "request": data,
                            }
                            for review, data in zip(run.reviews, record["reviews"], strict=True)
                        ],
                    )
                if self.routes:  # announced with the event, in its transaction
                    waiting = [r for r in run.reviews if r.status == "pending"]
                    outbox.announce_reviews(conn, self.routes, waiting)
                    if run.status is RunStatus.FAILED:
                        outbox.announce_failure(conn, self.routes, run, now())

        self._call(work)

    def get_run(self, run_id: str) -> RunRecord | None:
        runs = schema.runs
        query = select(runs.c.record).where(runs.c.run_id == run_id)
        data = self._call(lambda: self._read(lambda conn: conn.execute(query).scalar()))
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
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).scalars().all()))
        return [load_run(data) for data in rows]

    # --- steps ---------------------------------------------------------------------------------

    def save_step(self, step: StepRecord) -> None:
        row = _step_row(step, dump_step(step)) | {"seq_run_id": step.run_id}

        def work() -> None:
            for attempt in (1, 2, 3):
                try:
                    with self._steps.begin() as conn:
                        conn.execute(self._sql.save_step, row)
                    return
                except IntegrityError:
                    # Two writers took the same next seq for one run at once (Postgres; SQLite
                    # writes one at a time). The loser tries again with the next number.
                    if attempt == 3:
                        raise

        self._call(work)

    def steps(self, run_id: str) -> list[StepRecord]:
        """Steps checkpointed for a run, in the order they were first saved."""
        steps = schema.steps
        query = select(steps.c.record).where(steps.c.run_id == run_id).order_by(steps.c.seq)
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).scalars().all()))
        return [load_step(data) for data in rows]

    # --- reviews -------------------------------------------------------------------------------

    def get_review(self, review_id: str) -> ReviewRequest | None:
        reviews = schema.reviews
        query = select(reviews.c.request, reviews.c.status).where(reviews.c.review_id == review_id)
        row = self._call(lambda: self._read(lambda conn: conn.execute(query).first()))
        return None if row is None else _review(row.request, row.status)

    def list_reviews(self, *, pending_only: bool = True) -> list[ReviewRequest]:
        """Reviews, oldest first (the queue's order)."""
        reviews = schema.reviews
        query = select(reviews.c.request, reviews.c.status)
        if pending_only:
            query = query.where(reviews.c.status == "pending")
        query = query.order_by(reviews.c.created_at, reviews.c.review_id)
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).all()))
        return [_review(row.request, row.status) for row in rows]

    def get_decision(self, review_id: str) -> ReviewDecision | None:
        """The decision recorded for a review, if it has one."""
        reviews = schema.reviews
        query = select(reviews.c.decision).where(reviews.c.review_id == review_id)
        data = self._call(lambda: self._read(lambda conn: conn.execute(query).scalar()))
        return None if data is None else load_decision(data)

    def record_decision(
        self, review_id: str, decision: ReviewDecision, *, example: ReviewedExample | None = None
    ) -> ReviewRequest:
        """Atomically mark a pending review decided and return it (exactly once, across
        processes: the first conditional update wins, every later one changes no row). The
        winner's audit row (`decide`: the action, reason, queue, and for an edit the fields it
        changed, before and after), the end of the review's claim and `example` (the example
        the decision makes, `learn_from_reviews=True`) commit with it."""
        data = dump_decision(decision)
        stamp = decision.decided_at or now()
        params = {
            "target": review_id,
            "decision": data,
            "decided_at": stamp,
            "reviewer": decision.reviewer,
        }
        reviews = schema.reviews

        def work() -> tuple[Any, Any]:
            with self._writer.begin() as conn:  # a transaction on Postgres too
                won = conn.execute(self._sql.decide, params).first()
                if won is None:
                    query = select(reviews.c.request, reviews.c.decision, reviews.c.decided_at)
                    return None, conn.execute(query.where(reviews.c.review_id == review_id)).first()
                conn.execute(self._sql.drop_claim, {"review_id": review_id})
                detail: dict[str, Any] = {
                    "action": decision.action,
                    "reason": decision.reason,
                    "queue": won.queue,
                }
                if decision.action == "edit":
                    before = won.request.get("output") if isinstance(won.request, dict) else None
                    detail["changed"] = audit.changed_fields(before, data.get("output"))
                audit.append(
                    conn,
                    at=stamp,
                    actor=decision.reviewer or "unknown",
                    action="decide",
                    review_id=review_id,
                    run_id=won.run_id,
                    queue=won.queue,
                    detail=detail,
                )
                # an escalation's automatic answer is a policy's, not a person's judgement
                if example is not None and decision.reviewer != DEADLINE_ACTOR:
                    examples.write(conn, example)
                return won, None

        with self._errors():
            try:
                won, previous = work()
            except DBAPIError as e:
                if not e.connection_invalidated:
                    raise
                # The server dropped the connection; the transaction may have committed before
                # it did. If the decision now recorded is this one, it was ours (and so were
                # its audit row and the claim's end: they committed with it).
                won, previous = work()
                if won is None and previous is not None and previous.decision == data:
                    won, previous = previous, None
        if won is not None:
            return _review(won.request, "decided")
        if previous is None:
            raise ReviewNotFound(
                f"no review `{review_id}`; list pending reviews with `handrail review list`"
            )
        raise already_decided(review_id, load_decision(previous.decision), previous.decided_at)

    def escalate_review(self, review: ReviewRequest) -> bool:
        """Replace a pending review's request with its escalated form (another queue, the
        escalation noted), with an audit row (`escalate`: from and to which queue, and why).
        False when it was decided meanwhile."""
        reviews = schema.reviews
        values = {
            "request": dump_review(replace(review, status="pending")),
            "deadline": review.deadline,
            "queue": review.queue,
            "escalated": True,
        }
        pending = (reviews.c.review_id == review.review_id, reviews.c.status == "pending")

        def work() -> bool:
            with self._writer.begin() as conn:
                before = conn.execute(
                    select(reviews.c.queue).where(*pending).with_for_update()
                ).scalar()
                if (
                    before is None
                    or not conn.execute(update(reviews).where(*pending).values(values)).rowcount
                ):
                    return False
                audit.append(
                    conn,
                    at=review.escalated_at or now(),
                    actor=DEADLINE_ACTOR,
                    action="escalate",
                    review_id=review.review_id,
                    run_id=review.run_id,
                    queue=review.queue,
                    detail={"from": before, "to": review.queue, "reason": review.escalation},
                )
                outbox.write(
                    conn,
                    self.routes,
                    event="review.escalated",
                    event_id=f"review.escalated:{review.review_id}",
                    payload=outbox.escalated_payload_for(review, before),
                    at=review.escalated_at or now(),
                    queue=review.queue,
                )
                return True

        return self._call(work)

    def due_reviews(self, at: datetime, *, pipeline: str | None = None) -> list[ReviewRequest]:
        """Pending reviews whose deadline is at or before `at`, oldest deadline first."""
        reviews = schema.reviews
        query = select(reviews.c.request).where(
            reviews.c.status == "pending", reviews.c.deadline <= at
        )
        if pipeline is not None:
            query = query.where(reviews.c.pipeline == pipeline)
        query = query.order_by(reviews.c.deadline, reviews.c.review_id)
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).scalars().all()))
        return [_review(data, "pending") for data in rows]

    def decided_waiting(self) -> list[ReviewRequest]:
        """Decided reviews whose run still waits on them: a decision recorded whose continuation
        has not finished (or never started, the process having died in between)."""
        reviews, runs = schema.reviews, schema.runs
        query = (
            select(reviews.c.request)
            .join(runs, runs.c.run_id == reviews.c.run_id)
            .where(reviews.c.status == "decided", runs.c.status == "needs_review")
            .order_by(reviews.c.decided_at)
        )
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).scalars().all()))
        candidates = [_review(data, "decided") for data in rows]
        waiting = []
        for review in candidates:
            run = self.get_run(review.run_id)
            if run is not None and any(r.review_id == review.review_id for r in run.reviews):
                waiting.append(review)
        return waiting

    # --- pipelines -----------------------------------------------------------------------------

    def save_pipeline(self, name: str, target: str) -> None:
        """Remember where pipeline `name`'s code is (a CLI target, `path.py:attr`)."""
        stmt = statements(self.dialect).save_pipeline

        def work() -> None:
            with self._single.begin() as conn:
                conn.execute(stmt, {"name": name, "target": target, "updated_at": now()})

        self._call(work)

    def pipeline_target(self, name: str) -> str | None:
        """Where pipeline `name`'s code is, as last recorded by `handrail run` or a worker."""
        table = schema.pipelines
        query = select(table.c.target).where(table.c.name == name)
        return self._call(lambda: self._read(lambda conn: conn.execute(query).scalar()))

    def pipelines(self) -> dict[str, str]:
        """Every recorded pipeline: {name: where its code is (its CLI target)}, by name."""
        table = schema.pipelines
        query = select(table.c.name, table.c.target).order_by(table.c.name)
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).all()))
        return {row.name: row.target for row in rows}

    # --- plumbing ------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Create the tables on first use, or check that this code understands them."""
        meta = schema.meta
        if self.read_only:
            with self._engine.connect() as conn:
                found = (
                    conn.execute(select(meta).where(meta.c.id == 1)).first()
                    if inspect(conn).has_table(meta.name)
                    else None
                )
            self.empty = found is None
            if found is not None and found.schema_version != schema.SCHEMA_VERSION:
                self._check_version(found)
            return
        with self._writer.begin() as conn:
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
                self._check_version(found)
            elif found.schema_version < schema.SCHEMA_VERSION:
                try:
                    schema.migrate(conn, found.schema_version)
                except DBAPIError as e:
                    if e.connection_invalidated:
                        raise
                    raise StoreError(
                        f"cannot upgrade the run records at {self.url} from schema version "
                        f"{found.schema_version} to {schema.SCHEMA_VERSION}: "
                        f"{reason(e, self._secret)}; nothing was changed (the upgrade is one "
                        "transaction): fix what the database names (a table or column made by "
                        "hand?) and run the command again"
                    ) from e
                audit.append(
                    conn,
                    at=now(),
                    actor="handrail",
                    action="schema_migrated",
                    detail={
                        "from": found.schema_version,
                        "to": schema.SCHEMA_VERSION,
                        "handrail": __version__,
                    },
                )
                conn.execute(
                    update(meta)
                    .where(meta.c.id == 1)
                    .values(
                        schema_version=schema.SCHEMA_VERSION,
                        handrail_version=__version__,
                        updated_at=now(),
                    )
                )

    def _check_version(self, found: Any) -> None:
        if found.schema_version > schema.SCHEMA_VERSION:
            raise StoreVersionError(
                f"the database at {self.url} holds run records in schema version "
                f"{found.schema_version}, written by handrail {found.handrail_version}; "
                f"this handrail ({__version__}) reads version {schema.SCHEMA_VERSION} at "
                "most: upgrade handrail (pip install -U handrail) to use it"
            )
        if self.read_only:  # an older schema, which only a writing handrail upgrades
            raise StoreVersionError(
                f"the database at {self.url} holds run records in schema version "
                f"{found.schema_version}; this handrail ({__version__}) reads version "
                f"{schema.SCHEMA_VERSION}: run a command that writes (`handrail run`) once "
                "to upgrade it"
            )

    def _read(self, query: Callable[[Connection], T]) -> T:
        with self._reader.connect() as conn:
            return query(conn)

    def _call(self, work: Callable[[], T], *, opening: bool = False) -> T:
        """Run `work` (safe to repeat), translating the driver's errors into handrail's. A
        connection the server had dropped is replaced (SQLAlchemy empties the pool on a
        disconnect) and `work` runs once more."""
        with self._errors(opening=opening):
            try:
                return work()
            except DBAPIError as e:
                if not e.connection_invalidated:
                    raise
            return work()

    @contextmanager
    def _errors(self, *, opening: bool = False) -> Iterator[None]:
        """While opening, any database error (a file that is not SQLite, a refused login) means
        the database cannot be used."""
        try:
            yield
        except (OperationalError, InterfaceError) as e:
            raise StoreUnavailable(unavailable(self.dialect, self.url, e, self._secret)) from e
        except DBAPIError as e:
            if opening or (self.dialect == "sqlite" and corrupted(reason(e))):
                raise StoreUnavailable(unavailable(self.dialect, self.url, e, self._secret)) from e
            raise StoreError(
                f"the database at {self.url} refused a write: {reason(e, self._secret)}; "
                "this is a bug in handrail or a change made to its tables by hand"
            ) from e

    # --- transactions for other modules' rows ----------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction on the store's database, for rows that must commit with others
        (a trigger's receipt with DBOS's queued run, `handrail.triggers`). An `IntegrityError`
        (a key the caller relies on, taken by someone else) is the caller's to read; other
        driver errors are translated as the store's own are."""
        try:
            with self._writer.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except DBAPIError as e:
            with self._errors():
                raise e

    def reading(self) -> AbstractContextManager[Connection]:
        """A connection that only reads (autocommit on Postgres), for other modules' queries."""
        return self._reader.connect()


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


__all__ = ["SqlStore", "StoreError", "StoreUnavailable", "StoreVersionError"]
