"""The schedule trigger: each tick is one receipt and one run of its own, however often it
fires (a worker that died while firing, a backfill); a file that cannot be read at a tick is a
failed run and the trigger's last error. And live: two `handrail worker` processes on one
database, a schedule every two seconds in pyproject.toml, each tick taken once."""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tests.cli.triage import start_worker, wait_for

from handrail.core.records import RunStatus
from handrail.durable import SqlStore, schema
from handrail.triggers.intake import Intake
from handrail.triggers.schedule import Schedule
from handrail.triggers.state import trigger_states

from .conftest import receipts, runs, workflows

ROOT = Path(__file__).resolve().parents[2]
HAPPY = str(ROOT / "tests" / "pipelines" / "happy.py") + ":pipeline"
TICK = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)


def test_a_tick_fired_twice_is_one_receipt_and_one_run(intake: Intake) -> None:
    daily = Schedule(name="daily", cron="0 6 * * *", text="Open tickets as of {scheduled_at}")
    first = daily.fire(intake, TICK)
    again = daily.fire(intake, TICK)
    assert first.new and not first.repeat
    assert again.repeat and again.run_id == first.run_id
    (receipt,) = receipts(intake)
    assert (receipt.source, receipt.key) == ("schedule:daily", TICK.isoformat())
    assert receipt.detail["cron"] == "0 6 * * *"
    assert workflows(intake, first.run_id) == 1
    states = {s.name: s for s in trigger_states(intake.store)}
    assert states["schedule:daily"].kind == "schedule"
    assert states["schedule:daily"].last_pickup_at is not None


def test_each_tick_is_a_run_of_its_own_even_with_the_same_text(intake: Intake) -> None:
    fixed = Schedule(name="sweep", cron="*/5 * * * *", text="Sweep the queue.")
    ticks = [TICK + timedelta(minutes=5 * n) for n in range(3)]
    taken = [fixed.fire(intake, at) for at in ticks]
    assert len({t.run_id for t in taken}) == 3
    assert all(t.new for t in taken)
    assert workflows(intake) == 3


def test_the_document_of_a_tick(tmp_path: Path) -> None:
    made = Schedule(name="daily", cron="0 6 * * *", text="{schedule} at {scheduled_at}")
    document = made.document(TICK)
    assert not isinstance(document, Exception)
    assert document.text == f"daily at {TICK.isoformat()}"
    assert document.id == f"daily@{TICK.isoformat()}"
    assert document.metadata["scheduled_at"] == TICK.isoformat()
    report = tmp_path / "report.csv"
    report.write_text("queue,open\nbilling,4\n", encoding="utf-8")
    from_file = Schedule(name="report", cron="0 6 * * *", file=str(report)).document(TICK)
    assert not isinstance(from_file, Exception)
    assert "billing" in from_file.text


def test_a_file_missing_at_a_tick_is_a_failed_run_and_the_last_error(
    intake: Intake, tmp_path: Path
) -> None:
    report = Schedule(name="report", cron="0 6 * * *", file=str(tmp_path / "gone.csv"))
    taken = report.fire(intake, TICK)
    assert taken.error is not None and "cannot read" in taken.error
    record = intake.store.get_run(taken.run_id)
    assert record is not None and record.status is RunStatus.FAILED
    states = {s.name: s for s in trigger_states(intake.store)}
    assert "gone.csv" in (states["schedule:report"].last_error or "")
    assert report.fire(intake, TICK).repeat  # and no second failed run
    assert runs(intake) == 1


def test_two_workers_take_each_tick_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'handrail.db'}"
    (tmp_path / "pyproject.toml").write_text(
        "[[tool.handrail.triggers.schedules]]\n"
        'name = "often"\n'
        'cron = "*/2 * * * * *"\n'
        'text = "Tick {scheduled_at}"\n',
        encoding="utf-8",
    )
    env = {"PYTHONPATH": str(ROOT)}
    first = start_worker(tmp_path, HAPPY, "--db", db, "--model", "fake", env=env)
    second = start_worker(tmp_path, HAPPY, "--db", db, "--model", "fake", env=env)
    try:
        wait_for(lambda: "runs on the schedule often" in first.output(), 60, "the first worker")
        wait_for(lambda: "serving" in second.output(), 60, "the second worker")

        def taken() -> list[tuple[str, str]]:
            with SqlStore(db, read_only=True) as store, store.reading() as conn:
                table = schema.receipts
                rows = conn.execute(select(table.c.key, table.c.run_id)).all()
            return [(row.key, row.run_id) for row in rows]

        wait_for(lambda: len(taken()) >= 3, 60, "three ticks")
    finally:
        codes = [w.stop(signal.SIGTERM) for w in (first, second)]
    assert codes == [0, 0], first.output() + second.output()
    ticks = taken()
    keys = [key for key, _ in ticks]
    assert len(keys) == len(set(keys))
    assert len({run for _, run in ticks}) == len(ticks)  # a run per tick
    seconds = sorted(datetime.fromisoformat(k) for k in keys)
    assert all(t.second % 2 == 0 for t in seconds)
    with SqlStore(db, read_only=True) as store:
        records = [store.get_run(run) for _, run in ticks]
    assert all(r is not None for r in records)


@pytest.mark.parametrize("cron", ["0 6 * *", "61 * * * *"])
def test_a_bad_cron_is_refused(cron: str) -> None:
    with pytest.raises(Exception, match="is not a cron expression"):
        Schedule(name="bad", cron=cron)
