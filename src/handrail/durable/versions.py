"""Runs another handrail version left pending: telling people about them, and giving them up.

DBOS runs and recovers only the workflows of its own `application_version` (handrail's version).
A run left pending by a crash, followed by an upgrade, is therefore never finished by the new
handrail: starting it again returns the old, pending workflow, and waiting on it is forever. The
new handrail says so when it opens the database (`pending_elsewhere`), fails such a run at once
instead of waiting (with `how_to_finish` in its error), and `abandon` gives those runs up
honestly: their workflows are cancelled in DBOS and their runs recorded as failed, so running
their documents again starts them afresh.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from os import PathLike
from pathlib import Path
from typing import Any

from sqlalchemy.exc import DBAPIError

from handrail._utils import now
from handrail.core.records import ErrorInfo, RunRecord, RunStatus
from handrail.core.state import Document
from handrail.durable.errors import StoreError
from handrail.exceptions import InputError

ABANDONED = "Abandoned"
"""The error type of a run given up with `abandon`."""


def how_to_finish(version: str) -> str:
    """What to do about runs version `version` left pending."""
    return (
        f"Finish them by running handrail {version} (the version that started them) on this "
        f"database, or give them up with `handrail runs abandon --version {version}`."
    )


def pending_elsewhere(workflows: Mapping[str, str]) -> str:
    """One paragraph: how many runs which versions left pending, and what to do (`workflows`:
    workflow id -> version)."""
    from handrail.durable.runtime import app_version

    counts = Counter(workflows.values())
    parts = [f"{n} from handrail {v}" for v, n in sorted(counts.items())]
    total = sum(counts.values())
    lines = [
        f"{total} run{'s are' if total != 1 else ' is'} pending from another handrail version "
        f"({', '.join(parts)}; this is {app_version()}), left by a process that stopped before "
        "an upgrade: this handrail does not run them and does not wait for them."
    ]
    lines += [how_to_finish(v) for v in sorted(counts)]
    return " ".join(lines)


@dataclass(frozen=True, kw_only=True, slots=True)
class AbandonedRun:
    """One workflow `abandon` gave up (or left alone, with why)."""

    workflow_id: str
    run_id: str | None
    status: str
    """`abandoned` (cancelled, its run recorded as failed), `finished` (cancelled; its run's
    record shows it had ended, and is kept) or `running` (a live process of that version runs
    it: left alone)."""
    detail: str = ""


def abandon(db: str | PathLike[str] | None, version: str) -> list[AbandonedRun]:
    """Give up the runs handrail `version` left pending or queued in `db`: cancel their DBOS
    workflows and record each run as failed (`Abandoned`), unless a live process of that version
    is running it. Running such a document again afterwards starts it afresh."""
    from dbos import DBOSClient

    from handrail.durable.engine import parse
    from handrail.durable.runner import database_url
    from handrail.durable.runtime import APP_NAME, Runtime, app_version, dbos_url
    from handrail.durable.serialize import CHECKPOINTS, refuse_pickles
    from handrail.durable.store import SqlStore

    version = version.strip()
    if not version:
        raise InputError("--version is empty; give the handrail version whose runs to abandon")
    if version == app_version():
        raise InputError(
            f"handrail {version} is this version: its pending runs are recovered by "
            "`handrail run` and workers, not abandoned; give another --version"
        )
    url = database_url(db)
    parsed, shown = parse(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None
        if not Path(parsed.database).expanduser().is_file():
            return []  # nothing was ever kept there (and giving up nothing creates nothing)
    store = SqlStore(url)
    try:
        refuse_pickles()
        client = DBOSClient(
            system_database_url=dbos_url(parsed), application_name=APP_NAME, serializer=CHECKPOINTS
        )
    except Exception as e:
        store.close()
        raise StoreError(f"cannot read the runs in {shown} ({type(e).__name__}: {e})") from e
    liveness = Runtime(parsed, shown)._liveness_for()
    done: list[AbandonedRun] = []
    try:
        try:
            flows = client.list_workflows(
                status=["PENDING", "ENQUEUED"], app_version=version, load_input=False
            )
        except DBAPIError as e:
            if "workflow_status" not in str(e):
                raise
            flows = []  # no durable run ever started here: DBOS's tables were never made
        for flow in flows:
            if not flow.name.startswith("handrail."):
                continue
            if flow.status == "PENDING" and flow.executor_id:
                with liveness.probe(flow.executor_id) as free:
                    if not free:
                        done.append(
                            AbandonedRun(
                                workflow_id=flow.workflow_id,
                                run_id=None,
                                status="running",
                                detail=f"a live process (executor {flow.executor_id}) runs it",
                            )
                        )
                        continue
                    client.cancel_workflow(flow.workflow_id)
            else:
                client.cancel_workflow(flow.workflow_id)
            run_id, ended = _mark_failed(store, client, flow, version)
            detail = f"its run had already ended ({ended}): its record is kept" if ended else ""
            status = "finished" if ended else "abandoned"
            done.append(
                AbandonedRun(
                    workflow_id=flow.workflow_id, run_id=run_id, status=status, detail=detail
                )
            )
    finally:
        liveness.release()
        client.destroy()
        store.close()
    return done


def _mark_failed(store: Any, client: Any, flow: Any, version: str) -> tuple[str | None, str]:
    """Record the run of an abandoned workflow as failed, unless its record shows the run got
    past that workflow's work (the process died after saving it: the record stands). Returns
    the run id (None when the workflow's inputs cannot be read and no record names it) and the
    status the record kept ("" when it was marked failed)."""
    message = (
        f"abandoned at {now():%Y-%m-%d %H:%M:%S} UTC (`handrail runs abandon --version "
        f"{version}`): handrail {version} left it pending; running the document again starts "
        "it afresh"
    )
    error = ErrorInfo(type=ABANDONED, message=message)
    record: RunRecord | None = None
    if flow.workflow_id.endswith(":decision"):  # a decision's continuation
        review_id = flow.workflow_id.removesuffix(":decision")
        review = store.get_review(review_id)
        record = store.get_run(review.run_id) if review is not None else None
        unfinished = record is not None and any(r.review_id == review_id for r in record.reviews)
    else:
        record = store.get_run(flow.workflow_id) or _from_inputs(store, client, flow)
        unfinished = record is not None and record.status in (RunStatus.RUNNING, RunStatus.FAILED)
    if record is None:
        return None, ""
    if not unfinished:
        return record.run_id, record.status.value
    store.save_run(
        replace(record, status=RunStatus.FAILED, error=error, ended_at=now(), reviews=())
    )
    return record.run_id, ""


def _from_inputs(store: Any, client: Any, flow: Any) -> RunRecord | None:
    """The record of a run whose workflow id is not its run id (a retry), or a new one for a
    run cut off before it saved one: from its workflow's inputs (run id, document)."""
    try:
        [loaded] = client.list_workflows(workflow_ids=[flow.workflow_id], load_input=True)
        args = loaded.input["args"]
        run_id, document = str(args[0]), dict(args[1])
    except Exception:  # inputs another version wrote in a form this one cannot read
        return None
    earlier: RunRecord | None = store.get_run(run_id)
    if earlier is not None:
        return earlier
    pipeline = flow.name.split(":", 1)[-1]
    doc = Document(text=str(document.get("text", "")), id=str(document.get("id") or ""))
    return RunRecord(
        run_id=run_id,
        pipeline=pipeline,
        document_id=doc.id,
        document_hash=doc.hash,
        status=RunStatus.FAILED,
        document=doc,
        started_at=now(),
    )


__all__ = ["ABANDONED", "AbandonedRun", "abandon", "how_to_finish", "pending_elsewhere"]
