"""`handrail run` on inputs that are not plain documents: skipped files listed, special files,
symlinks, unreadable folders and a closed stdin, each answered without hanging the batch, and the
same failed run for the same broken file however often it is run (real processes, real SQLite)."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from tests.documents.conftest import pdf_bytes

from handrail.documents import SUFFIXES

from .conftest import BUG, HAPPY, REFUND, Invoke

SUPPORTED = "handrail reads " + ", ".join(SUFFIXES)
# Root can list a chmod-000 folder; without these two capabilities it cannot, like a user.
AS_A_USER = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def handrail(
    *args: str, cwd: Path, prefix: list[str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`handrail ARGS...` as a real process in `cwd`, with 2 GB of memory and a timeout: a
    regression that blocks or reads without end fails the test instead of hanging it."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "handrail.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit_memory,
        env={**os.environ, "COLUMNS": "250"},  # table rows and notes on one line each
    )


def lines(done: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def brief(line: dict[str, Any]) -> tuple[Any, ...]:
    """(document, status, error message or skip reason)."""
    detail = line.get("reason") or (line["error"] or {}).get("message")
    return (line["document"], line["status"], detail)


def test_the_summary_lists_every_skipped_file_and_why(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "refund.txt").write_text(REFUND)
    (inbox / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    (inbox / "orders.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    (inbox / ".notes.txt").write_text(BUG)
    monkeypatch.chdir(tmp_path)
    result = cli("run", HAPPY, "inbox")
    assert result.exit_code == 0
    out = result.stdout.splitlines()
    assert out[-5:] == [
        "skipped (not documents):",
        "  inbox/.notes.txt: hidden (names starting with `.` are not read)",
        f"  inbox/orders.zip: unsupported file type `.zip` ({SUPPORTED})",
        f"  inbox/photo.heic: unsupported file type `.heic` ({SUPPORTED})",
        "1 document: 1 completed, 0 needs review, 0 failed, 0 rejected; 3 skipped (listed above)",
    ]


def test_json_lines_end_with_one_line_per_skipped_file(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "refund.txt").write_text(REFUND)
    (inbox / "scan.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    monkeypatch.chdir(tmp_path)
    result = cli("run", HAPPY, "inbox", "--json")
    assert [brief(line) for line in result.json_lines()] == [
        ("inbox/refund.txt", "completed", None),
        ("inbox/scan.heic", "skipped", f"unsupported file type `.heic` ({SUPPORTED})"),
    ]
    assert result.json_lines()[-1] == {
        "run_id": None,
        "document": "inbox/scan.heic",
        "status": "skipped",
        "reason": f"unsupported file type `.heic` ({SUPPORTED})",
    }


def test_a_fifo_in_the_folder_does_not_hang_the_batch(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "refund.txt").write_text(REFUND)
    os.mkfifo(tmp_path / "inbox" / "pipe.txt")  # nobody ever writes to it
    done = handrail("run", HAPPY, "inbox", "--json", "--in-memory", cwd=tmp_path, timeout=60)
    assert [brief(line) for line in lines(done)] == [
        ("inbox/refund.txt", "completed", None),
        ("inbox/pipe.txt", "skipped", "a named pipe (FIFO), not a regular file"),
    ]


def test_a_symlink_to_dev_zero_is_refused_within_max_bytes(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "refund.txt").write_text(REFUND)
    (tmp_path / "inbox" / "zero.txt").symlink_to("/dev/zero")
    run = ("run", HAPPY, "inbox", "--json", "--in-memory", "--max-bytes", "1000")
    assert [brief(line) for line in lines(handrail(*run, cwd=tmp_path))] == [
        ("inbox/refund.txt", "completed", None),
        (
            "inbox/zero.txt",
            "skipped",
            "a symlink to `/dev/zero`, outside `inbox`; pass --follow-symlinks to read it",
        ),
    ]
    followed = lines(handrail(*run, "--follow-symlinks", cwd=tmp_path))
    assert [brief(line) for line in followed] == [
        ("inbox/refund.txt", "completed", None),
        ("inbox/zero.txt", "skipped", "a character device, not a regular file"),
    ]
    named = lines(handrail(*run[:2], "inbox/zero.txt", *run[3:], "--follow-symlinks", cwd=tmp_path))
    assert [brief(line) for line in named] == [
        (
            "inbox/zero.txt",
            "failed",
            "`inbox/zero.txt` is a character device, not a regular file; handrail reads "
            "regular files only (copy its content into a file, or pipe it into `-`)",
        )
    ]


def test_a_symlink_out_of_the_folder_never_puts_its_target_in_a_run(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "id.txt").write_text("SECRET-KEY-MATERIAL Order ID: A-17\n")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "note.txt").symlink_to("../keys/id.txt")
    (tmp_path / "inbox" / "refund.txt").write_text(REFUND)
    db = f"sqlite:///{tmp_path / 'state.db'}"
    done = handrail("run", HAPPY, "inbox", "--json", "--db", db, cwd=tmp_path)
    assert [brief(line) for line in lines(done)] == [
        ("inbox/refund.txt", "completed", None),
        (
            "inbox/note.txt",
            "skipped",
            f"a symlink to `{tmp_path / 'keys' / 'id.txt'}`, outside `inbox`; pass "
            "--follow-symlinks to read it",
        ),
    ]
    assert b"SECRET-KEY-MATERIAL" not in (tmp_path / "state.db").read_bytes()
    allowed = handrail(
        "run", HAPPY, "inbox", "--json", "--follow-symlinks", "--db", db, cwd=tmp_path
    )
    assert [(line["document"], line["run_id"] is not None) for line in lines(allowed)] == [
        ("inbox/note.txt", True),
        ("inbox/refund.txt", True),
    ]


def test_an_unreadable_subfolder_is_reported_and_the_rest_runs(tmp_path: Path) -> None:
    locked = tmp_path / "inbox" / "locked"
    locked.mkdir(parents=True)
    (locked / "a.txt").write_text(REFUND)
    (tmp_path / "inbox" / "refund.txt").write_text(REFUND)
    locked.chmod(0)
    try:
        prefix = AS_A_USER if os.geteuid() == 0 else []
        done = handrail("run", HAPPY, "inbox", "--in-memory", cwd=tmp_path, prefix=prefix)
    finally:
        locked.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-3:] == [
        "skipped (not documents):",
        "  inbox/locked/: a folder that cannot be read (Permission denied); check its permissions",
        "1 document: 1 completed, 0 needs review, 0 failed, 0 rejected; 1 skipped (listed above)",
    ]


def test_a_closed_stdin_is_a_clear_failure_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "refund.txt").write_text(REFUND)
    command = f"exec {sys.executable} -m handrail.cli run {HAPPY} refund.txt - --json --in-memory"
    done = subprocess.run(
        ["bash", "-c", command + " <&-"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert "Traceback" not in done.stderr
    assert [brief(line) for line in lines(done)] == [
        ("refund.txt", "completed", None),
        (
            "-",
            "failed",
            "stdin (`-`) is closed; pipe a document into `-` (`... - < file.txt`), or name "
            "files instead",
        ),
    ]


def test_an_empty_file_keeps_one_failed_run_over_three_reruns(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "empty.txt").write_text("")
    (tmp_path / "inbox" / "binary.txt").write_bytes(b"\x89PNG\x00")
    (tmp_path / "inbox" / "refund.txt").write_text(REFUND)
    db = f"sqlite:///{tmp_path / 'state.db'}"
    run_ids = []
    for _ in range(3):
        done = handrail("run", HAPPY, "inbox", "--json", "--db", db, cwd=tmp_path)
        run_ids.append([line["run_id"] for line in lines(done)])
    assert run_ids[0] == run_ids[1] == run_ids[2]
    listed = lines(handrail("runs", "list", "--json", "--db", db, cwd=tmp_path))
    assert sorted((line["document"], line["status"]) for line in listed) == [
        ("inbox/binary.txt", "failed"),
        ("inbox/empty.txt", "failed"),
        ("inbox/refund.txt", "completed"),
    ]


def test_a_file_name_that_is_not_utf8_fails_only_itself(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "refund.txt").write_text(REFUND)
    with open(os.path.join(os.fsencode(inbox), b"caf\xe9.txt"), "w") as file:  # Latin-1 name
        file.write(REFUND)
    db = f"sqlite:///{tmp_path / 'state.db'}"
    done = handrail("run", HAPPY, "inbox", "--json", "--db", db, cwd=tmp_path)
    assert [brief(line) for line in lines(done)] == [
        ("inbox/refund.txt", "completed", None),
        ("inbox/caf\ufffd.txt", "skipped", "its name is not valid UTF-8 (rename it)"),
    ]
    named = handrail("run", HAPPY, "inbox/caf\udce9.txt", "--json", "--db", db, cwd=tmp_path)
    assert [brief(line) for line in lines(named)] == [
        (
            "inbox/caf\ufffd.txt",
            "failed",
            "`inbox/caf\ufffd.txt`: its name is not valid UTF-8; rename it",
        )
    ]


def test_submit_without_waiting_lists_the_skipped_files_too(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "refund.txt").write_text(REFUND)
    (inbox / "scan.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    monkeypatch.chdir(tmp_path)
    result = cli("run", HAPPY, "inbox", "--submit", "--no-wait", "--json")
    assert result.exit_code == 0, result.stderr
    assert [(line["document"], line["status"]) for line in result.json_lines()] == [
        ("inbox/refund.txt", "queued"),
        ("inbox/scan.heic", "skipped"),
    ]
    table = cli("run", HAPPY, "inbox", "--submit", "--no-wait")
    assert table.stdout.splitlines()[1:3] == [
        "skipped (not documents):",
        f"  inbox/scan.heic: unsupported file type `.heic` ({SUPPORTED})",
    ]


# --- documents: PDFs, scans, e-mails with attachments -------------------------------------------


def _pdf(text: str, *, password: str | None = None) -> bytes:
    lines = [(72.0, 760.0 - 20 * y, line) for y, line in enumerate(text.splitlines())]
    return pdf_bytes(lines, encrypt=password)


def test_split_attachments_runs_the_body_and_each_attachment(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = EmailMessage()
    message["Subject"] = "Two tickets"
    message.set_content(BUG)
    message.add_attachment(REFUND.encode(), maintype="text", subtype="plain", filename="r.txt")
    message.add_attachment(_pdf(REFUND), maintype="application", subtype="pdf", filename="r.pdf")
    (tmp_path / "mail.eml").write_bytes(message.as_bytes())
    monkeypatch.chdir(tmp_path)
    together = cli("run", HAPPY, "mail.eml", "--json", "--in-memory")
    assert [brief(line) for line in together.json_lines()] == [  # one run, body and both
        ("mail.eml", "needs_review", None)
    ]
    split = cli("run", HAPPY, "mail.eml", "--json", "--in-memory", "--split-attachments")
    assert [brief(line) for line in split.json_lines()] == [
        ("mail.eml", "needs_review", None),
        ("mail.eml#r.txt", "completed", None),
        ("mail.eml#r.pdf", "completed", None),
    ]
    assert split.json_lines()[2]["outputs"]["order"] == {"order_id": "A-17", "amount": 100.0}


def test_an_encrypted_pdf_opens_with_the_password_from_the_environment(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locked.pdf").write_bytes(_pdf(REFUND, password="open-sesame-42"))
    monkeypatch.chdir(tmp_path)
    run = ("run", HAPPY, "locked.pdf", "--json", "--in-memory")
    opened = cli(*run, env={"HANDRAIL_PDF_PASSWORD": "open-sesame-42"})
    assert [brief(line) for line in opened.json_lines()] == [("locked.pdf", "completed", None)]
    for env in ({}, {"HANDRAIL_PDF_PASSWORD": "wrong-guess-17"}):
        refused = cli(*run, env=env)
        (line,) = refused.json_lines()
        assert (line["document"], line["status"]) == ("locked.pdf", "failed")
        assert "HANDRAIL_PDF_PASSWORD" in line["error"]["message"]
        assert "wrong-guess-17" not in refused.stdout + refused.stderr
    assert "open-sesame-42" not in opened.stdout + opened.stderr


def test_ocr_never_leaves_a_scan_unread_and_says_so(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PIL import Image

    Image.new("RGB", (200, 80), "white").save(tmp_path / "scan.png")
    monkeypatch.chdir(tmp_path)
    result = cli("run", HAPPY, "scan.png", "--json", "--in-memory", "--ocr", "never")
    ((document, status, message),) = [brief(line) for line in result.json_lines()]
    assert (document, status) == ("scan.png", "failed")
    assert message.startswith("`scan.png` has no text to process (page 1 ")
    assert "OCR is off" in message
    wrong = cli("run", HAPPY, "scan.png", "--ocr", "sometimes")
    assert wrong.exit_code == 2 and "'sometimes' is not one of" in wrong.stderr


VISION = """
from pydantic import BaseModel

from handrail import Extract, PipelineBuilder


class Order(BaseModel):
    order_id: str
    amount: float


pipeline = PipelineBuilder("vision").add(Extract("order", Order, images=2)).build()
"""


def test_runs_show_lists_the_pages_a_step_showed_its_model(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "vision.py").write_text(VISION)
    lines = [(72.0, 760.0 - 20 * y, line) for y, line in enumerate(REFUND.splitlines())]
    (tmp_path / "order.pdf").write_bytes(pdf_bytes(lines, lines, lines))
    monkeypatch.chdir(tmp_path)
    (run,) = cli("run", "vision.py:pipeline", "order.pdf", "--json").json_lines()
    assert run["status"] == "completed", run
    shown = cli("runs", "show", run["run_id"]).stdout
    header = next(line for line in shown.splitlines() if "pages shown" in line)
    row = next(line for line in shown.splitlines() if line.startswith("│ order"))
    assert [cell.strip() for cell in header.split("┃")][-2] == "pages shown"
    assert [cell.strip() for cell in row.split("│")][-2] == "1, 2"
    text_only = cli(
        "runs", "show", cli("run", HAPPY, "order.pdf", "--json").json_lines()[0]["run_id"]
    )
    assert "pages shown" not in text_only.stdout
