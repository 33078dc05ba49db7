"""The folder trigger on real files and a real database: a file is taken once, whole, only when
it stopped changing; what is not a document goes to failed/ with a note; a process killed
between the commit and the move, and two pollers on one folder, never run a file twice nor lose
one. Looks are driven explicitly with `poll_once(now=...)`; the last test drops a file in the
folder of a real `handrail serve --watch`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.browser import live
from tests.pipelines import happy
from tests.triggers.conftest import SPEC, receipts, runs, workflows
from tests.triggers.test_live import HAPPY, finished

from handrail.core.records import RunStatus
from handrail.triggers.folder import FolderTrigger, FolderWatch, Poll
from handrail.triggers.intake import Intake
from handrail.triggers.state import trigger_states

ROOT = Path(__file__).resolve().parents[2]
TEXT = b"Refund please. Order: A-17, amount 100.0\n"


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Intake]:
    """The intake path on a SQLite file (the tests that do not depend on the database)."""
    with Intake(happy.pipeline, db=f"sqlite:///{tmp_path / 'handrail.db'}", model_spec=SPEC) as it:
        yield it


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def looks(trigger: FolderTrigger, times: int = 2) -> list[Any]:
    """`times` polls, each 10 s after the last (past `settle`)."""
    return [trigger.poll_once(now=10.0 * n) for n in range(times)]


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())


def test_a_file_written_in_two_halves_is_taken_once_whole(intake: Intake, inbox: Path) -> None:
    trigger = FolderTrigger(intake, inbox, name="inbox")
    (inbox / "order.txt").write_bytes(TEXT[:20])
    assert trigger.poll_once(now=0.0).waiting == ("order.txt",)
    with (inbox / "order.txt").open("ab") as f:
        f.write(TEXT[20:])
    second = trigger.poll_once(now=10.0)
    assert second.waiting == ("order.txt",) and second.moved == ()  # it changed: look again

    third = trigger.poll_once(now=20.0)

    [moved] = third.moved
    assert moved.to == "processed/order.txt" and moved.new and moved.error is None
    assert (inbox / "processed" / "order.txt").read_bytes() == TEXT
    [receipt] = receipts(intake)
    assert receipt.source == "folder:inbox" and receipt.run_id == moved.run_id
    assert receipt.key.startswith("order.txt#") and receipt.detail["size"] == len(TEXT)
    assert workflows(intake) == 1
    assert looks(trigger) == [Poll(), Poll()]  # nothing left to take
    assert listing(inbox) == ["processed/order.txt"]


def test_a_file_is_taken_only_once_unchanged_for_settle_seconds(lite: Intake, inbox: Path) -> None:
    trigger = FolderTrigger(lite, inbox, settle=5.0)
    (inbox / "order.txt").write_bytes(TEXT)
    trigger.poll_once(now=0.0)
    assert trigger.poll_once(now=1.0).waiting == ("order.txt",)  # two looks, too close
    assert [m.name for m in trigger.poll_once(now=5.0).moved] == ["order.txt"]


def test_a_part_file_renamed_when_done_is_taken_once(lite: Intake, inbox: Path) -> None:
    trigger = FolderTrigger(lite, inbox)
    part = inbox / "order.txt.part"
    part.write_bytes(TEXT[:10])
    first = looks(trigger)
    assert all(p.moved == () and p.waiting == () for p in first)  # not even looked at
    part.write_bytes(TEXT)
    part.rename(inbox / "order.txt")

    taken = [m for p in looks(trigger, 3) for m in p.moved]

    assert [m.to for m in taken] == ["processed/order.txt"]
    assert (inbox / "processed" / "order.txt").read_bytes() == TEXT
    assert len(receipts(lite)) == 1 and workflows(lite) == 1


def test_hidden_and_partial_files_are_left_alone(lite: Intake, inbox: Path) -> None:
    names = [".hidden.txt", "a.txt.part", "b.txt~", "c.tmp", ".~lock.d.docx#"]
    for name in names:
        (inbox / name).write_bytes(TEXT)
    trigger = FolderTrigger(lite, inbox)

    polls = looks(trigger, 3)

    assert all(p.moved == () and p.waiting == () for p in polls)
    assert listing(inbox) == sorted(names)
    assert receipts(lite) == []


def test_an_unreadable_document_goes_to_failed_with_a_note_and_one_failed_run(
    lite: Intake, inbox: Path
) -> None:
    (inbox / "broken.json").write_bytes(b'{"order": ')
    trigger = FolderTrigger(lite, inbox)

    [moved] = looks(trigger)[1].moved

    assert moved.to == "failed/broken.json" and moved.error is not None
    assert listing(inbox) == ["failed/broken.json", "failed/broken.json.error.txt"]
    note = (inbox / "failed" / "broken.json.error.txt").read_text(encoding="utf-8")
    assert "broken.json" in note and "JSON" in note
    [receipt] = receipts(lite)
    assert receipt.run_id == moved.run_id and runs(lite) == 1 and workflows(lite) == 0
    record = lite.store.get_run(receipt.run_id)
    assert record is not None and record.status is RunStatus.FAILED


def test_a_file_of_a_type_handrail_does_not_read_goes_to_failed_with_a_note(
    lite: Intake, inbox: Path
) -> None:
    (inbox / "tool.exe").write_bytes(b"MZ\x90\x00")
    trigger = FolderTrigger(lite, inbox, name="inbox")

    [moved] = looks(trigger)[1].moved

    assert moved.to == "failed/tool.exe" and moved.run_id is None
    note = (inbox / "failed" / "tool.exe.error.txt").read_text(encoding="utf-8")
    assert note == (
        "`tool.exe` is of a type handrail does not read (by its suffix); the formats are in "
        "docs/documents.md\n"
    )
    assert receipts(lite) == []
    [state] = trigger_states(lite.store)
    assert state.name == "folder:inbox" and state.last_error == note.strip()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_never_opened_and_goes_to_failed(lite: Intake, inbox: Path) -> None:
    os.mkfifo(inbox / "pipe.txt")  # opening it for reading would block without a writer
    trigger = FolderTrigger(lite, inbox)

    [moved] = looks(trigger)[1].moved

    assert moved.to == "failed/pipe.txt" and "not a regular file" in (moved.error or "")
    assert receipts(lite) == []


def test_symlinks_out_of_the_folder_are_refused_and_inside_it_read(
    lite: Intake, inbox: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"not for the pipeline")
    (inbox / "out.txt").symlink_to(secret)
    (inbox / "keep").mkdir()
    (inbox / "keep" / "real.txt").write_bytes(TEXT)
    (inbox / "in.txt").symlink_to(inbox / "keep" / "real.txt")
    (inbox / "gone.txt").symlink_to(inbox / "nowhere.txt")
    trigger = FolderTrigger(lite, inbox)

    moved = {m.name: m for m in looks(trigger)[1].moved}

    assert moved["out.txt"].to == "failed/out.txt" and "outside" in (moved["out.txt"].error or "")
    assert moved["gone.txt"].to == "failed/gone.txt"
    assert "broken symlink" in (moved["gone.txt"].error or "")
    assert moved["in.txt"].to == "processed/in.txt" and moved["in.txt"].run_id is not None
    assert secret.read_bytes() == b"not for the pipeline"  # the link moved, not its target
    assert (inbox / "keep" / "real.txt").read_bytes() == TEXT  # subfolders are not taken
    assert [r.detail["size"] for r in receipts(lite)] == [len(TEXT)]


def test_a_name_taken_in_processed_is_never_overwritten(lite: Intake, inbox: Path) -> None:
    (inbox / "processed").mkdir()
    (inbox / "processed" / "order.txt").write_bytes(b"an earlier order")
    (inbox / "order.txt").write_bytes(TEXT)
    trigger = FolderTrigger(lite, inbox)

    [moved] = looks(trigger)[1].moved
    (inbox / "order.txt").write_bytes(TEXT)  # the same file dropped again: its run, no new one
    [again] = looks(trigger)[1].moved

    assert (moved.to, again.to) == ("processed/order-2.txt", "processed/order-3.txt")
    assert (inbox / "processed" / "order.txt").read_bytes() == b"an earlier order"
    assert again.run_id == moved.run_id and not again.new
    assert len(receipts(lite)) == 1 and workflows(lite) == 1


def test_a_file_left_linked_into_processed_by_a_dead_poller_is_not_copied_twice(
    lite: Intake, inbox: Path
) -> None:
    (inbox / "order.txt").write_bytes(TEXT)
    (inbox / "processed").mkdir()
    os.link(inbox / "order.txt", inbox / "processed" / "order.txt")  # died before the unlink
    trigger = FolderTrigger(lite, inbox)

    [moved] = looks(trigger)[1].moved

    assert moved.to == "processed/order.txt"
    assert listing(inbox) == ["processed/order.txt"]


DIE = """
import sys
import tests.triggers.dying  # kills this process right after the intake commits
from tests.pipelines import happy
from handrail.core.records import ModelSpec
from handrail.triggers.folder import FolderTrigger
from handrail.triggers.intake import Intake

with Intake(happy.pipeline, db=sys.argv[1], model_spec=ModelSpec(name="fake")) as intake:
    trigger = FolderTrigger(intake, sys.argv[2], name="inbox")
    trigger.poll_once(now=0.0)
    trigger.poll_once(now=10.0)
raise SystemExit("not killed")
"""


def test_killed_between_the_commit_and_the_move_the_next_poll_only_moves_it(
    db: str, inbox: Path
) -> None:
    (inbox / "order.txt").write_bytes(TEXT)
    env = os.environ | {"PYTHONPATH": str(ROOT), "TRIGGER_TEST_DIE_AFTER_COMMIT": "1"}
    done = subprocess.run(
        [sys.executable, "-c", DIE, db, str(inbox)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert listing(inbox) == ["order.txt"]  # committed, never moved

    with Intake(happy.pipeline, db=db, model_spec=SPEC) as intake:
        [receipt] = receipts(intake)
        trigger = FolderTrigger(intake, inbox, name="inbox")
        [moved] = looks(trigger)[1].moved

        assert moved.to == "processed/order.txt" and moved.run_id == receipt.run_id
        assert not moved.new
        assert listing(inbox) == ["processed/order.txt"]
        assert len(receipts(intake)) == 1 and workflows(intake) == 1


def test_two_pollers_racing_for_one_file_take_it_once(db: str, inbox: Path) -> None:
    (inbox / "order.txt").write_bytes(TEXT)
    with (
        Intake(happy.pipeline, db=db, model_spec=SPEC) as one,
        Intake(happy.pipeline, db=db, model_spec=SPEC) as other,
    ):
        first = FolderTrigger(one, inbox, name="inbox")
        second = FolderTrigger(other, inbox, name="inbox")
        first.poll_once(now=0.0)
        second.poll_once(now=0.0)
        seconds: list[Any] = []
        accept = one.accept_bytes

        def accept_then_lose_the_race(*args: Any, **kwargs: Any) -> Any:
            accepted = accept(*args, **kwargs)
            seconds.append(second.poll_once(now=10.0))  # commits a repeat, moves the file
            return accepted

        one.accept_bytes = accept_then_lose_the_race  # type: ignore[method-assign]
        [late] = first.poll_once(now=10.0).moved

        [[early]] = [p.moved for p in seconds]
        assert early.to == "processed/order.txt" and early.run_id == late.run_id
        assert late.to is None  # the other poller moved it first
        assert listing(inbox) == ["processed/order.txt"]
        assert len(receipts(one)) == 1 and workflows(one) == 1


def test_two_pollers_on_one_folder_take_each_file_once_and_lose_none(db: str, inbox: Path) -> None:
    names = [f"order-{n:02}.txt" for n in range(12)]
    for n, name in enumerate(names):
        (inbox / name).write_bytes(TEXT + f"order {n}\n".encode())
    with (
        Intake(happy.pipeline, db=db, model_spec=SPEC) as one,
        Intake(happy.pipeline, db=db, model_spec=SPEC) as other,
    ):
        pollers = [FolderTrigger(it, inbox, name="inbox") for it in (one, other)]
        start = threading.Barrier(2)
        failures: list[BaseException] = []

        def poll(trigger: FolderTrigger) -> None:
            try:
                start.wait(30)
                for n in range(3):
                    trigger.poll_once(now=10.0 * n)
            except BaseException as e:
                failures.append(e)

        threads = [threading.Thread(target=poll, args=(p,)) for p in pollers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

        assert failures == []
        assert listing(inbox) == [f"processed/{name}" for name in names]
        assert sorted(r.key.split("#")[0] for r in receipts(one)) == names
        assert workflows(one) == len(names)


def test_the_watch_loop_takes_a_dropped_file_on_its_own(lite: Intake, inbox: Path) -> None:
    watch = FolderWatch(trigger=FolderTrigger(lite, inbox, settle=0.2), interval=0.2).start()
    try:
        (inbox / "order.txt").write_bytes(TEXT)
        deadline = time.monotonic() + 30
        while not (inbox / "processed" / "order.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        watch.stop()
    assert listing(inbox) == ["processed/order.txt"]
    assert len(receipts(lite)) == 1 and watch.error is None


def test_a_file_dropped_in_a_folder_handrail_serve_watches_is_run(tmp_path: Path) -> None:
    project = live.Project(folder=tmp_path, target=HAPPY)
    server = live.Server(project, "--watch", "inbox")
    try:
        assert f"from the folder {tmp_path / 'inbox'}" in server.output()
        (tmp_path / "inbox" / "order.txt.part").write_bytes(TEXT)
        (tmp_path / "inbox" / "order.txt.part").rename(tmp_path / "inbox" / "order.txt")
        live.wait_until(
            lambda: (tmp_path / "inbox" / "processed" / "order.txt").exists() or None,
            what="the file to be taken",
        )
        with Intake(happy.pipeline, db=project.db, model_spec=SPEC) as intake:
            [receipt] = receipts(intake)
        assert receipt.source == f"folder:{tmp_path / 'inbox'}"
        ended = live.wait_until(lambda: finished(project, receipt.run_id), what="the run to end")
        assert ended in (RunStatus.NEEDS_REVIEW, RunStatus.COMPLETED)
    finally:
        server.stop()


def test_a_recursive_trigger_takes_subfolders_and_keeps_their_paths(
    lite: Intake, inbox: Path
) -> None:
    (inbox / "acme").mkdir()
    (inbox / "acme" / "march.txt").write_bytes(TEXT)
    (inbox / "acme" / ".hidden").mkdir()
    (inbox / "acme" / ".hidden" / "skip.txt").write_bytes(TEXT + b"hidden")
    (inbox / "top.txt").write_bytes(TEXT + b"top")
    (inbox / "processed").mkdir()
    (inbox / "processed" / "old.txt").write_bytes(TEXT + b"old")
    flat = FolderTrigger(lite, inbox, name="flat")
    assert [m.name for m in looks(flat)[-1].moved] == ["top.txt"]
    (inbox / "top.txt").write_bytes(TEXT + b"top again")
    deep = FolderTrigger(lite, inbox, name="deep", recursive=True)
    done = looks(deep)[-1]
    assert sorted(m.name for m in done.moved) == ["acme/march.txt", "top.txt"]
    assert {m.to for m in done.moved} == {"processed/acme/march.txt", "processed/top-2.txt"}
    assert (inbox / "processed" / "acme" / "march.txt").read_bytes() == TEXT
    assert (inbox / "acme" / ".hidden" / "skip.txt").exists()  # hidden folders left alone
    assert (inbox / "processed" / "old.txt").exists()  # processed/ is never taken
    keys = sorted(r.key.partition("#")[0] for r in receipts(lite) if r.source == "folder:deep")
    assert keys == ["acme/march.txt", "top.txt"]
    assert looks(deep)[-1].moved == ()  # nothing left to take


def test_a_file_dropped_in_a_folder_handrail_worker_watches_is_run(tmp_path: Path) -> None:
    from tests.cli.triage import start_worker, wait_for

    db = f"sqlite:///{tmp_path / 'handrail.db'}"
    worker = start_worker(
        tmp_path, HAPPY, "--db", db, "--model", "fake", "--watch", "drop",
        env={"PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        wait_for(lambda: "from the folder" in worker.output(), 60, "the worker to watch")
        (tmp_path / "drop" / "order.txt").write_bytes(TEXT)
        wait_for(lambda: (tmp_path / "drop" / "processed" / "order.txt").exists(), 30, "the take")
        with Intake(happy.pipeline, db=db, model_spec=SPEC) as intake:
            [receipt] = receipts(intake)
            wait_for(
                lambda: (
                    (r := intake.store.get_run(receipt.run_id)) is not None
                    and r.status is not RunStatus.RUNNING
                ),
                60,
                "the run to end",
            )
    finally:
        assert worker.stop(signal.SIGTERM) == 0, worker.output()
