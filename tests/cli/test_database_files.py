"""SQLite files that cannot be written or are damaged, with real commands in real processes: one
clear line instead of a traceback; `runs list`, `review list` and `report` read a database on a
read-only file system, or one whose file is read-only; a damaged file is called corrupted.

The tests run as root here, and root ignores permission bits: a folder or file is made read-only
with a read-only bind mount in a mount namespace of the command's own (`unshare --mount`), which
refuses every write (EROFS) whoever asks. Without root, `chmod a-w` does the same job.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import BUG, HAPPY, REFUND

TARGET = f"{HAPPY}:pipeline"
ROOT_USER = hasattr(os, "geteuid") and os.geteuid() == 0


def handrail(
    folder: Path, *args: str, read_only: tuple[Path, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`handrail ARGS...` in a process of its own, with `read_only` paths unwritable for it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
    command = [sys.executable, "-m", "handrail.cli", *args]
    if read_only and ROOT_USER:
        mounts = " && ".join(
            f"mount --bind {shlex.quote(str(p))} {shlex.quote(str(p))} && "
            f"mount -o remount,bind,ro {shlex.quote(str(p))}"
            for p in read_only
        )
        command = ["unshare", "--mount", "sh", "-c", f'{mounts} && exec "$@"', "sh", *command]
    elif read_only:
        for p in read_only:
            p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        return subprocess.run(
            command, cwd=folder, env=env, capture_output=True, text=True, timeout=120
        )
    finally:
        if read_only and not ROOT_USER:
            for p in read_only:
                p.chmod(0o755 if p.is_dir() else 0o644)


@pytest.fixture
def kept(tmp_path: Path) -> Path:
    """A database holding two runs, one of them waiting for review (in its own folder)."""
    (tmp_path / "refund.txt").write_text(REFUND)
    (tmp_path / "bug.md").write_text(BUG)
    db = tmp_path / "state" / "handrail.db"
    made = handrail(tmp_path, "run", TARGET, "refund.txt", "bug.md", "--db", str(db))
    assert made.returncode == 0, made.stderr
    return db


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.mark.parametrize("what", ["folder", "file"])
def test_read_commands_work_on_a_read_only_database(tmp_path: Path, kept: Path, what: str) -> None:
    frozen = kept.parent if what == "folder" else kept
    before = sorted(p.name for p in kept.parent.iterdir())

    runs = handrail(tmp_path, "runs", "list", "--db", str(kept), "--json", read_only=(frozen,))
    assert runs.returncode == 0, runs.stderr
    assert sorted(json.loads(line)["status"] for line in runs.stdout.splitlines()) == [
        "completed",
        "needs_review",
    ]
    reviews = handrail(tmp_path, "review", "list", "--db", str(kept), "--json", read_only=(frozen,))
    assert reviews.returncode == 0, reviews.stderr
    assert len(reviews.stdout.splitlines()) == 1
    report = handrail(tmp_path, "report", "--db", str(kept), read_only=(frozen,))
    assert report.returncode == 0, report.stderr
    assert "2: 1 completed, 1 needs review, 0 failed" in report.stdout

    # A command that writes says so in one line, with the fix.
    line = one_error_line(
        handrail(tmp_path, "run", TARGET, "refund.txt", "--db", str(kept), read_only=(frozen,))
    )
    assert line.startswith(f"error: cannot write the SQLite database sqlite:///{kept} (") or (
        line.startswith(f"error: cannot use the SQLite database sqlite:///{kept} (cannot create")
    )
    assert "writable" in line and "`runs list`, `review list` and `report` can read it" in line
    if what == "folder":
        assert sorted(p.name for p in kept.parent.iterdir()) == before  # nothing written


def test_a_database_in_an_unwritable_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "refund.txt").write_text(REFUND)
    folder = tmp_path / "locked"
    folder.mkdir()
    line = one_error_line(
        handrail(
            tmp_path,
            "run",
            TARGET,
            "refund.txt",
            "--db",
            str(folder / "new.db"),
            read_only=(folder,),
        )
    )
    assert "SQLite database" in line and str(folder / "new.db") in line
    assert "writable" in line
    assert list(folder.iterdir()) == []


def test_a_file_that_is_not_a_database_is_called_corrupted(tmp_path: Path) -> None:
    garbage = tmp_path / "handrail.db"
    garbage.write_bytes(os.urandom(64 * 1024))
    (tmp_path / "refund.txt").write_text(REFUND)
    for command in (("runs", "list"), ("review", "list"), ("run", TARGET, "refund.txt")):
        line = one_error_line(handrail(tmp_path, *command, "--db", str(garbage)))
        assert line.startswith(f"error: the SQLite database sqlite:///{garbage} is corrupted (")
        assert "restore it from a backup, or move it aside to start an empty one" in line


def test_a_database_damaged_inside_is_called_corrupted_not_a_bug(
    tmp_path: Path, kept: Path
) -> None:
    size = kept.stat().st_size
    assert size > 8 * 4096
    with kept.open("r+b") as f:  # the header and schema stay; the pages after them do not
        f.seek(4 * 4096)
        f.write(os.urandom(size - 4 * 4096))
    line = one_error_line(handrail(tmp_path, "runs", "list", "--db", str(kept)))
    assert line.startswith(f"error: the SQLite database sqlite:///{kept} is corrupted (")
    assert "bug in handrail" not in line


@pytest.mark.skipif(not ROOT_USER, reason="mounting a small tmpfs (a disk that fills) needs root")
def test_a_full_disk_costs_a_few_lines_not_tracebacks(tmp_path: Path) -> None:
    """The support example's ten documents on a 900 kB file system: the database fills up
    mid-batch. Each kind of failure is one line (then counted), and the command ends with one
    error line that says so; no traceback (there were 130, over 2,000 lines)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    example = Path(HAPPY).parents[2] / "examples" / "support_triage"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
    command = shlex.join(
        [
            sys.executable, "-m", "handrail.cli", "run", f"{example / 'pipeline.py'}:pipeline",
            str(example / "documents"), "--db", str(disk / "handrail.db"),
        ]
    )  # fmt: skip
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "sh",
            "-c",
            f"mount -t tmpfs -o size=900k tmpfs {disk} && {command}",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert 1 <= len(lines) <= 12, result.stderr
    assert lines[-1] == (
        f"error: cannot use the SQLite database sqlite:///{disk / 'handrail.db'} (database or "
        "disk is full); check the path, its permissions and free disk space"
    )
