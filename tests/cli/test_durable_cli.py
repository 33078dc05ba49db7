"""`handrail run` durable by default, and `handrail runs list|show` over what it kept."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from handrail.durable import SqlStore

from .conftest import HAPPY, REFUND, Invoke
from .triage import DOCUMENTS, EXAMPLE, STATUSES, TARGET, TOTALS, by_document, statuses


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database of the test's own, run from a folder of its own (the example's helpdesk file
    lands there)."""
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'runs' / 'handrail.db'}"


def helpdesk_tickets(folder: Path) -> list[dict[str, str]]:
    return json.loads((folder / ".handrail" / "support_triage_helpdesk.json").read_text())


# --- handrail run --------------------------------------------------------------------------------


def test_the_example_gives_the_same_outcome_durably(cli: Invoke, db: str, tmp_path: Path) -> None:
    result = cli("run", TARGET, DOCUMENTS, "--db", db, "--model", "fake")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == TOTALS
    assert (tmp_path / "runs" / "handrail.db").is_file()
    with SqlStore(db) as store:
        assert len(store.list_runs()) == 10
        assert len(store.list_reviews()) == 3


def test_json_lines_match_the_in_memory_run(cli: Invoke, db: str) -> None:
    durable = cli("run", TARGET, DOCUMENTS, "--db", db, "--json").json_lines()
    memory = cli("run", TARGET, DOCUMENTS, "--in-memory", "--json").json_lines()
    assert statuses(durable) == STATUSES

    def comparable(lines: list[dict]) -> list[dict]:
        # A document that cannot even be read gets a fresh run id each time.
        return [line | {"run_id": None} if not line["steps"] else line for line in lines]

    assert comparable(durable) == comparable(memory)


def test_a_document_already_run_is_not_run_again(cli: Invoke, db: str, tmp_path: Path) -> None:
    first = by_document(cli("run", TARGET, DOCUMENTS, "--db", db, "--json").json_lines())
    filed = helpdesk_tickets(tmp_path)
    second = by_document(cli("run", TARGET, DOCUMENTS, "--db", db, "--json").json_lines())
    kept = [name for name, line in first.items() if line["status"] != "failed"]
    assert [second[name] | {"reused": False} for name in kept] == [first[name] for name in kept]
    assert all(second[name]["reused"] for name in kept)
    assert helpdesk_tickets(tmp_path) == filed, "no ticket was filed twice"


def test_the_database_comes_from_the_environment_else_the_working_folder(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "refund.txt").write_text(REFUND)
    env_db = tmp_path / "from-env.db"
    result = cli("run", HAPPY, "refund.txt", env={"HANDRAIL_DATABASE_URL": f"sqlite:///{env_db}"})
    assert result.exit_code == 0, result.stderr
    assert env_db.is_file()
    assert not (tmp_path / ".handrail" / "handrail.db").exists()

    monkeypatch.delenv("HANDRAIL_DATABASE_URL")
    assert cli("run", HAPPY, "refund.txt").exit_code == 0
    assert (tmp_path / ".handrail" / "handrail.db").is_file()


def test_db_may_be_a_plain_path(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "refund.txt").write_text(REFUND)
    assert cli("run", HAPPY, "refund.txt", "--db", "kept/runs.db").exit_code == 0
    assert (tmp_path / "kept" / "runs.db").is_file()
    listed = cli("runs", "list", "--db", "kept/runs.db", "--json").json_lines()
    assert [line["status"] for line in listed] == ["completed"]


def test_in_memory_writes_no_database(
    cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HANDRAIL_DATABASE_URL")
    result = cli("run", TARGET, DOCUMENTS, "--in-memory")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == TOTALS
    assert not (tmp_path / ".handrail" / "handrail.db").exists()
    assert not list(tmp_path.rglob("*.db")) and not (tmp_path / "state").exists()


def test_the_pipeline_code_is_recorded_with_an_absolute_path(
    cli: Invoke, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLE.parent)  # a relative target
    assert cli("run", "support_triage/pipeline.py", DOCUMENTS, "--db", db).exit_code == 0
    with SqlStore(db) as store:
        assert store.pipeline_target("support_triage") == f"{EXAMPLE / 'pipeline.py'}:pipeline"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--in-memory", "--db", "x.db"],
            "error: --in-memory runs without a database; leave out --db, --submit and "
            "--executor-id\n",
        ),
        (["--in-memory", "--submit"], None),
        (["--no-wait"], "error: --no-wait and --timeout go with --submit\n"),
        (["--timeout", "3"], "error: --no-wait and --timeout go with --submit\n"),
        (
            ["--submit", "--executor-id", "w1"],
            "error: --submit runs nothing here, so it has no executor id; give --executor-id "
            "to `handrail worker`\n",
        ),
    ],
)
def test_options_that_do_not_go_together(
    cli: Invoke, db: str, args: list[str], message: str | None
) -> None:
    result = cli("run", HAPPY, DOCUMENTS, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    if message is None:
        assert result.stderr.startswith("error: --in-memory runs without a database")
    else:
        assert result.stderr == message


def test_an_executor_id_can_be_given(cli: Invoke, db: str, tmp_path: Path) -> None:
    (tmp_path / "refund.txt").write_text(REFUND)
    result = cli("run", HAPPY, "refund.txt", "--db", db, "--executor-id", "batch-7", "--json")
    assert result.exit_code == 0, result.stderr
    [line] = result.json_lines()
    with sqlite3.connect(tmp_path / "runs" / "handrail.db") as conn:
        executors = conn.execute(
            "SELECT executor_id FROM workflow_status WHERE workflow_uuid = ?", (line["run_id"],)
        ).fetchall()
    assert executors == [("batch-7",)]  # DBOS ran the run's workflow under that id


# --- an unusable database ------------------------------------------------------------------------


def test_a_database_that_cannot_be_created_is_a_one_line_error(
    cli: Invoke, db: str, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    bad = f"sqlite:///{tmp_path / 'a-file' / 'handrail.db'}"
    result = cli("run", TARGET, DOCUMENTS, "--db", bad)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot use the SQLite database {bad} (cannot create its folder: [Errno 17] "
        f"File exists: '{tmp_path / 'a-file'}'); check the path and its permissions\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["run", TARGET, DOCUMENTS],
        ["runs", "list"],
        ["runs", "show", "run-1"],
        ["review", "list"],
        ["review", "approve", "rv-1"],
        ["review", "escalate"],
    ],
)
def test_a_file_that_is_not_a_database_is_a_one_line_error(
    cli: Invoke, db: str, tmp_path: Path, command: list[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are notes, not a database\n" * 100)
    result = cli(*command, "--db", f"sqlite:///{notes}")
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: the SQLite database sqlite:///{notes} is corrupted (file is not a database); "
        "restore it from a backup, or move it aside to start an empty one (`sqlite3 FILE "
        ".recover` may rescue its runs)\n"
    )


def test_an_unreachable_server_is_a_one_line_error(cli: Invoke, db: str) -> None:
    result = cli("runs", "list", "--db", "postgresql://nobody@127.0.0.1:1/handrail")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1
    assert "postgresql://nobody@127.0.0.1:1/handrail" in result.stderr


def test_a_url_of_another_database_is_a_one_line_error(cli: Invoke, db: str) -> None:
    result = cli("runs", "list", "--db", "mysql://host/db")
    assert (result.exit_code, result.stderr) == (
        1,
        "error: handrail cannot keep runs in `mysql` (`mysql://host/db`); use "
        "sqlite:///path/to/handrail.db or postgresql://user:password@host:5432/dbname\n",
    )


# --- handrail runs list --------------------------------------------------------------------------


@pytest.fixture
def example_db(cli: Invoke, db: str) -> str:
    assert cli("run", TARGET, DOCUMENTS, "--db", db).exit_code == 0
    return db


def test_runs_list_json_newest_first(cli: Invoke, example_db: str) -> None:
    result = cli("runs", "list", "--db", example_db, "--json")
    assert result.exit_code == 0
    lines = result.json_lines()
    assert statuses(lines) == STATUSES
    started = [line["started_at"] for line in lines]
    assert started == sorted(started, reverse=True)
    espresso = by_document(lines)["02_refund_espresso_machine.eml"]
    assert espresso["pipeline"] == "support_triage"
    assert espresso["steps"] == 5 and espresso["tokens"] > 0
    (review_id,) = espresso["reviews"]
    assert review_id.startswith("rv-") and espresso["error"] is None
    assert set(espresso) == {
        "run_id", "document", "pipeline", "status", "started_at", "ended_at", "duration_s",
        "steps", "tokens", "cost", "reviews", "error", "model", "pipeline_version",
    }  # fmt: skip
    assert espresso["model"] == "fake" and len(espresso["pipeline_version"]) == 12


def test_runs_list_filters(cli: Invoke, example_db: str) -> None:
    def listed(*args: str) -> list[dict]:
        return cli("runs", "list", "--db", example_db, "--json", *args).json_lines()

    assert {line["status"] for line in listed("--status", "needs_review")} == {"needs_review"}
    assert len(listed("--status", "needs_review")) == 3
    assert len(listed("--pipeline", "support_triage", "--limit", "4")) == 4
    assert listed("--pipeline", "other") == []
    bad = cli("runs", "list", "--db", example_db, "--status", "done")
    assert bad.exit_code == 2 and "--status" in bad.stderr


def test_runs_list_table(cli: Invoke, example_db: str) -> None:
    result = cli("runs", "list", "--db", example_db)
    assert result.exit_code == 0
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    ]
    assert len(rows) == 10
    by_name = {row[1]: row for row in rows}
    espresso = by_name["02_refund_espresso_machine.eml"]
    assert espresso[0].startswith("run-") and espresso[2] == "needs_review"
    assert espresso[5] == "5"  # steps
    assert result.stdout.startswith(f"documents in {DOCUMENTS}/")
    assert result.stdout.splitlines()[-1] == f"10 runs in {example_db}"
    limited = cli("runs", "list", "--db", example_db, "-n", "3")
    assert limited.stdout.splitlines()[-1] == (f"3 runs in {example_db}; --limit shows more than 3")


def test_runs_list_without_runs_creates_nothing(cli: Invoke, tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'nothing' / 'here.db'}"
    result = cli("runs", "list", "--db", missing)
    assert (result.exit_code, result.stdout) == (0, f"no runs in {missing}\n")
    assert cli("runs", "list", "--db", missing, "--json").stdout == ""
    assert not (tmp_path / "nothing").exists()


# --- handrail runs show --------------------------------------------------------------------------


def test_runs_show_json_has_the_steps_reviews_and_decisions(cli: Invoke, example_db: str) -> None:
    listed = by_document(cli("runs", "list", "--db", example_db, "--json").json_lines())
    run_id = listed["02_refund_espresso_machine.eml"]["run_id"]
    shown = json.loads(cli("runs", "show", run_id, "--db", example_db, "--json").stdout)
    assert (shown["run_id"], shown["status"], shown["pipeline"]) == (
        run_id,
        "needs_review",
        "support_triage",
    )
    assert [(s["node"], s["kind"], s["status"]) for s in shown["steps"]] == [
        ("ticket", "rule", "completed"),
        ("category", "classify", "completed"),
        ("details", "extract", "completed"),
        ("completeness", "rule", "completed"),
        ("refund_approval", "review", "needs_review"),
    ]
    category = shown["steps"][1]
    assert category["route"] == "refund" and category["attempts"] == 1
    assert category["confidence_source"] == "heuristic" and category["tokens"] > 0
    (review,) = shown["reviews"]
    assert review["review_id"] == shown["review"]["review_id"]
    assert review["output"]["amount"] == 1249.0
    assert shown["decisions"] == []


def test_runs_show_table(cli: Invoke, example_db: str) -> None:
    listed = by_document(cli("runs", "list", "--db", example_db, "--json").json_lines())
    failed = listed["09_voicemail_no_contact.txt"]["run_id"]
    result = cli("runs", "show", failed, "--db", example_db)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["run", failed]
    assert lines[1].split() == ["status", "failed"]
    assert any(line.startswith("error") and "OutputInvalid: `details`" in line for line in lines)
    steps = {
        cells[0]: cells
        for cells in (
            [cell.strip() for cell in line.split("│")[1:-1]]
            for line in lines
            if line.startswith("│")
        )
    }
    assert steps["category"][1:8] == [
        "classify", "1", "completed", "1", "0.76 (heuristic)", "refund", steps["category"][7],
    ]  # fmt: skip
    assert steps["details"][3] == "failed"
    assert steps["details"][4] == "3"  # attempts: the call and two re-asks
    assert steps["details"][10].startswith("OutputInvalid: `details` returned output")


def test_an_unknown_run_id_is_a_one_line_error(cli: Invoke, example_db: str) -> None:
    result = cli("runs", "show", "run-nope", "--db", example_db)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"error: no run `run-nope` in {example_db}; list runs with `handrail runs list` "
        "(and check --db or HANDRAIL_DATABASE_URL)\n",
    )


def test_a_database_from_a_newer_handrail_is_a_one_line_error(cli: Invoke, example_db: str) -> None:
    with sqlite3.connect(example_db.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE handrail_meta SET schema_version = 99, handrail_version = '9.0.0'")
    for command in (["runs", "list"], ["run", TARGET, DOCUMENTS], ["review", "list"]):
        result = cli(*command, "--db", example_db)
        assert (result.exit_code, result.stdout) == (1, ""), command
        assert result.stderr.startswith(
            f"error: the database at {example_db} holds run records in schema version 99, "
            "written by handrail 9.0.0;"
        )
        assert result.stderr.endswith("upgrade handrail (pip install -U handrail) to use it\n")
