"""`handrail reviewers add|list|remove` and `handrail audit verify|export`, in-process with
typer's runner, on the real SQLite file of the review tests."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

from tests.pipelines.inbox_invoice import QUEUE
from typer.testing import CliRunner

from handrail import ReviewDecision
from handrail.cli.main import app
from handrail.review import ReviewService


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_reviewers_add_prints_the_token_once_and_it_signs_in(db: str) -> None:
    code, out, err = cli("reviewers", "add", "ana", "--queues", f"{QUEUE},claims", "--db", db)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"added reviewer ana (queues: {QUEUE}, claims) to ")
    assert lines[1].startswith("token: hr_")
    assert "shown only once" in lines[2]
    token = lines[1].removeprefix("token: ")
    with ReviewService(db) as service:
        assert service.authenticate(token).queues == (QUEUE, "claims")

    code, out, _ = cli("reviewers", "add", "lee", "--queues", "*", "--lead", "--db", db, "--json")
    added = json.loads(out)
    assert code == 0 and (added["name"], added["queues"], added["lead"]) == ("lee", ["*"], True)
    assert added["token"].startswith("hr_") and added["token"] != token

    code, out, _ = cli("reviewers", "list", "--db", db)
    assert code == 0 and "ana" in out and "lee" in out and token not in out
    code, out, _ = cli("reviewers", "list", "--db", db, "--json")
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(r["name"], r["queues"], r["lead"]) for r in listed] == [
        ("ana", [QUEUE, "claims"], False),
        ("lee", ["*"], True),
    ]
    assert all("token" not in r for r in listed)


def test_reviewers_mistakes_say_how_to_fix_them(db: str) -> None:
    code, _, err = cli("reviewers", "add", "ana lopez", "--queues", QUEUE, "--db", db)
    assert code == 2 and "error: reviewer name 'ana lopez' is not 1-100 letters" in err
    code, _, err = cli("reviewers", "add", "ana", "--queues", ",", "--db", db)
    assert code == 2 and "say which queues ana reviews" in err
    assert cli("reviewers", "add", "ana", "--queues", QUEUE, "--db", db)[0] == 0
    code, _, err = cli("reviewers", "add", "ana", "--queues", QUEUE, "--db", db)
    assert code == 2 and "ana" in err
    code, out, err = cli("reviewers", "remove", "ana", "--db", db)
    assert code == 0 and out.startswith("removed reviewer ana")
    code, _, err = cli("reviewers", "remove", "ana", "--db", db)
    assert code == 1 and "no reviewer `ana`" in err and "handrail reviewers list" in err


def test_reviewers_list_on_a_database_that_does_not_exist_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "none.db"
    code, out, _ = cli("reviewers", "list", "--db", f"sqlite:///{path}")
    assert code == 0 and out.startswith("no reviewers in ")
    assert not path.exists()


def _decide_one(db: str, reviews: dict[str, str]) -> None:
    with ReviewService(db, folder=Path(__file__).parents[2]) as service:
        ana, _ = service.add_reviewer("ana", queues=[QUEUE])
        output = dict(service.review(reviews["HF-2291"]).request.output) | {"total": 1420.0}
        service.decide(reviews["HF-2291"], ReviewDecision.edit(output), viewer=ana)


def test_audit_verify_passes_then_names_an_edited_row(db: str, reviews: dict[str, str]) -> None:
    _decide_one(db, reviews)
    code, out, _ = cli("audit", "verify", "--db", db)
    assert code == 0 and out.startswith("audit trail intact: 2 rows in ")
    code, out, _ = cli("audit", "verify", "--db", db, "--json")
    assert json.loads(out) == {"ok": True, "rows": 2, "first_bad": None, "problem": None}

    path = db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:  # someone with write access changes who decided
        triggers = [
            r[0] for r in conn.execute("select name from sqlite_master where type='trigger'")
        ]
        for name in triggers:
            if "audit" in name:
                conn.execute(f'drop trigger "{name}"')
        conn.execute("update handrail_audit set actor = 'bob' where action = 'decide'")
    code, out, err = cli("audit", "verify", "--db", db)
    assert code == 1 and out == ""
    assert "error: the audit trail in " in err and "is broken" in err and "seq 2" in err
    code, out, _ = cli("audit", "verify", "--db", db, "--json")
    shown = json.loads(out)
    assert code == 1 and (shown["ok"], shown["first_bad"]) == (False, 2)


def test_audit_export_writes_csv_and_json_lines(
    db: str, reviews: dict[str, str], tmp_path: Path
) -> None:
    _decide_one(db, reviews)
    code, out, _ = cli("audit", "export", "--db", db, "--format", "jsonl")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["action"] for r in rows] == ["reviewer_added", "decide"]
    decided = rows[1]
    assert (decided["actor"], decided["review_id"], decided["queue"]) == (
        "ana",
        reviews["HF-2291"],
        QUEUE,
    )
    assert decided["detail"]["changed"] == {"total": [1240.0, 1420.0]}
    assert decided["prev_hash"] == rows[0]["hash"] and rows[0]["prev_hash"] == "0" * 64

    target = tmp_path / "audit.csv"
    code, out, err = cli("audit", "export", "--db", db, "--output", str(target))
    assert code == 0 and out == "" and f"wrote 2 audit rows to {target}" in err
    table = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [r["seq"] for r in table] == ["1", "2"]
    assert table[1]["actor"] == "ana" and json.loads(table[1]["detail"])["action"] == "edit"
    assert table[1]["hash"] == decided["hash"]

    code, out, _ = cli("audit", "export", "--db", db, "--format", "jsonl", "--action", "decide")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [2]
    code, _, err = cli("audit", "export", "--db", db, "--output", str(tmp_path / "no" / "x.csv"))
    assert code == 2 and "cannot write" in err


def test_a_csv_cell_a_spreadsheet_would_run_is_defused() -> None:
    from datetime import UTC, datetime

    from handrail.durable import AuditEntry
    from handrail.review.audit import write_audit

    entry = AuditEntry(
        seq=1,
        at=datetime(2026, 12, 3, tzinfo=UTC),
        actor='=HYPERLINK("http://evil")',
        action="decide",
        review_id=None,
        run_id=None,
        queue="@q",
        detail={},
        prev_hash="0" * 64,
        hash="f" * 64,
    )
    out = io.StringIO()
    assert write_audit([entry], out, "csv") == 1
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert row["actor"] == '\'=HYPERLINK("http://evil")' and row["queue"] == "'@q"


def test_serve_reviewers_and_audit_are_commands() -> None:
    for command, says in (
        ("serve", "--no-worker"),
        ("reviewers", "add"),
        ("audit", "verify"),
    ):
        code, out, _ = cli(command, "--help")
        assert code == 0 and says in out, out
