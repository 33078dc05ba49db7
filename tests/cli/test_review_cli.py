"""`handrail review list|show|approve|edit|reject|escalate` on the support-triage example's
reviews: what a reviewer sees, decisions that continue runs, and decisions that are refused."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from handrail import FakeModel
from handrail.durable import DurableRunner, SqlStore
from handrail.targets import load_pipeline

from .conftest import BUG, HAPPY, PIPELINES, Invoke
from .triage import TARGET, project_copy, run_example

DEADLINES = Path(__file__).parent / "deadlines.py"


def deadlines(folder: Path) -> Path:
    """`deadlines.py` copied into the project folder (recorded code is imported only from there)."""
    shutil.copy2(DEADLINES, folder / "deadlines.py")
    return folder / "deadlines.py"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)
    return f"sqlite:///{tmp_path / 'runs' / 'handrail.db'}"


@pytest.fixture
def runs(cli: Invoke, db: str) -> dict[str, dict[str, Any]]:
    """The example run durably: its JSON line per document file name."""
    return run_example(cli, db, project_copy())


def review_of(runs: dict[str, dict[str, Any]], document: str) -> str:
    review_id: str = runs[document]["review"]["review_id"]
    return review_id


def shown(cli: Invoke, db: str, *args: str) -> Any:
    result = cli(*args, "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


ESPRESSO = "02_refund_espresso_machine.eml"
CHARGED_TWICE = "07_charged_twice.eml"
WHOLESALE = "10_wholesale_enquiry.md"


# --- list and show -------------------------------------------------------------------------------


def test_review_list_json_is_the_queue_oldest_first(cli: Invoke, db: str, runs: dict) -> None:
    lines = cli("review", "list", "--db", db, "--json").json_lines()
    assert sorted(line["review_id"] for line in lines) == sorted(
        review_of(runs, d) for d in (ESPRESSO, CHARGED_TWICE, WHOLESALE)
    )
    created = [line["created_at"] for line in lines]
    assert created == sorted(created)
    espresso = next(line for line in lines if line["node"] == "refund_approval")
    assert {k: espresso[k] for k in ("status", "target", "queue", "deadline", "decision")} == {
        "status": "pending",
        "target": "details",
        "queue": "default",
        "deadline": None,
        "decision": None,
    }
    assert espresso["run_id"] == runs[ESPRESSO]["run_id"]
    assert espresso["reasons"][0]["message"] == (
        "refund of 1249 is above 500: approve it before we promise it"
    )


def test_review_list_table(cli: Invoke, db: str, runs: dict) -> None:
    result = cli("review", "list", "--db", db)
    assert result.exit_code == 0
    rows = {
        cells[0]: cells
        for cells in (
            [cell.strip() for cell in line.split("│")[1:-1]]
            for line in result.stdout.splitlines()
            if line.startswith("│") and not line.startswith("│  ")
        )
    }
    charged = rows[review_of(runs, CHARGED_TWICE)]
    assert charged[1:6] == [
        "default", "category", CHARGED_TWICE, "0.38", "confidence 0.38 < 0.7 (heuristic)",
    ]  # fmt: skip
    assert rows[review_of(runs, ESPRESSO)][2] == "refund_approval (of details)"
    assert result.stdout.splitlines()[-1] == "3 pending"


def test_review_list_by_queue(cli: Invoke, db: str, runs: dict) -> None:
    assert len(cli("review", "list", "--db", db, "--queue", "default", "--json").json_lines()) == 3
    nothing = cli("review", "list", "--db", db, "--queue", "supervisors")
    assert nothing.stdout == f"no pending reviews in queue `supervisors` in {db}\n"


def test_review_show_has_what_a_reviewer_needs(cli: Invoke, db: str, runs: dict) -> None:
    review_id = review_of(runs, ESPRESSO)
    data = shown(cli, db, "review", "show", review_id)
    assert data["output"] == {
        "email": "d.okafor@example.com",
        "customer_name": "Daniel Okafor",
        "order_id": "LH-47760",
        "amount": 1249.0,
        "product": "Vela Pro espresso machine",
    }
    assert data["document"] == runs[ESPRESSO]["document"]
    assert (data["node"], data["target"], data["queue"]) == (
        "refund_approval",
        "details",
        "default",
    )
    assert [r["kind"] for r in data["reasons"]] == ["review_node"]

    charged = shown(cli, db, "review", "show", review_of(runs, CHARGED_TWICE))
    assert charged["output"] == "refund"
    assert charged["confidence"] == pytest.approx(1.25 / 3.25)
    assert charged["reasons"][0]["threshold"] == 0.7

    text = cli("review", "show", review_id, "--db", db).stdout
    lines = text.splitlines()
    assert lines[0].split() == ["review", review_id]
    assert "node           refund_approval (of details)" in text
    assert "deadline       none (waits until someone decides)" in text
    assert "output under review (`details`):" in text
    assert '  "amount": 1249.0,' in lines


def test_unknown_review_id(cli: Invoke, db: str, runs: dict) -> None:
    message = (
        f"error: no review `rv-nope` in {db}; list pending reviews with `handrail review list` "
        "(and check --db or HANDRAIL_DATABASE_URL)\n"
    )
    for command in (["show"], ["approve"], ["reject"], ["edit", "--set", "a=1"]):
        verb, *rest = command
        result = cli("review", verb, "rv-nope", *rest, "--db", db)
        assert (result.exit_code, result.stdout, result.stderr) == (1, "", message), command


# --- decisions -----------------------------------------------------------------------------------


def test_approve_continues_the_run(cli: Invoke, db: str, runs: dict) -> None:
    review_id = review_of(runs, ESPRESSO)
    run_id = runs[ESPRESSO]["run_id"]
    result = cli("review", "approve", review_id, "--db", db, "--reviewer", "dana")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"approved {review_id} by dana; run {run_id} is completed: ")
    assert "create_ticket: LH-T" in result.stdout

    run = shown(cli, db, "runs", "show", run_id)
    assert run["status"] == "completed"
    assert "reply" in run["outputs"] and run["reviews"] == []
    [decision] = run["decisions"]
    assert (decision["review_id"], decision["action"], decision["reviewer"]) == (
        review_id,
        "approve",
        "dana",
    )
    assert len(cli("review", "list", "--db", db, "--json").json_lines()) == 2
    decided = cli("review", "list", "--db", db, "--all", "--json").json_lines()
    assert [(d["status"], d["decision"]["action"]) for d in decided if d["decision"]] == [
        ("decided", "approve")
    ]
    text = cli("runs", "show", run_id, "--db", db).stdout
    assert f"│ {review_id} │ approve  │ dana │" in text


def test_a_second_decision_is_refused(cli: Invoke, db: str, runs: dict) -> None:
    review_id = review_of(runs, ESPRESSO)
    assert cli("review", "approve", review_id, "--db", db, "-r", "dana").exit_code == 0
    for again in (
        ["approve", review_id],
        ["reject", review_id, "--reason", "changed my mind"],
        ["edit", review_id, "--set", "amount=1"],
    ):
        result = cli("review", *again, "--db", db, "-r", "sam")
        assert (result.exit_code, result.stdout) == (1, ""), again
        assert result.stderr == (
            f"error: review `{review_id}` of run `{runs[ESPRESSO]['run_id']}` was already "
            "decided (approve by dana); a decision is applied exactly once\n"
        )
    assert len(shown(cli, db, "runs", "show", runs[ESPRESSO]["run_id"])["decisions"]) == 1


def test_edit_merges_fields_into_the_output(cli: Invoke, db: str, runs: dict) -> None:
    review_id = review_of(runs, ESPRESSO)
    result = cli(
        "review", "edit", review_id, "--set", "amount=450", "--set", "product=Vela Pro",
        "--reason", "partial refund agreed", "--db", db, "-r", "dana", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [line] = result.json_lines()  # the run, as `handrail run --json` shows it
    assert (line["run_id"], line["status"]) == (runs[ESPRESSO]["run_id"], "completed")
    assert line["outputs"]["details"]["amount"] == 450.0
    assert line["outputs"]["details"]["product"] == "Vela Pro"
    assert line["outputs"]["details"]["order_id"] == "LH-47760"
    decision = shown(cli, db, "review", "show", review_id)["decision"]
    assert (decision["action"], decision["reason"], decision["output"]["amount"]) == (
        "edit",
        "partial refund agreed",
        450,
    )


def test_an_edit_that_fails_the_schema_writes_nothing(cli: Invoke, db: str, runs: dict) -> None:
    review_id = review_of(runs, ESPRESSO)
    result = cli("review", "edit", review_id, "--set", "amount=lots", "--db", db)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(
        "error: the edited output for `details` does not fit its schema: 1 validation error "
        "for TicketDetails\namount\n  Input should be a valid number"
    )
    with SqlStore(db) as store:
        assert store.get_review(review_id).status == "pending"
        assert store.get_decision(review_id) is None
        assert store.get_run(runs[ESPRESSO]["run_id"]).status.value == "needs_review"
    assert cli("review", "approve", review_id, "--db", db).exit_code == 0, "still decidable"


def test_a_label_is_edited_with_node_equals_value(cli: Invoke, db: str, runs: dict) -> None:
    review_id = review_of(runs, CHARGED_TWICE)
    result = cli("review", "edit", review_id, "--set", "category=billing", "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    [line] = result.json_lines()
    assert (line["status"], line["outputs"]["category"]) == ("completed", "billing")
    wholesale = review_of(runs, WHOLESALE)
    not_a_label = cli("review", "edit", wholesale, "--set", "category=cake", "--db", db)
    assert not_a_label.exit_code == 1
    assert "does not fit its schema" in not_a_label.stderr


def test_edit_from_a_json_file(cli: Invoke, db: str, runs: dict, tmp_path: Path) -> None:
    (tmp_path / "label.json").write_text('"account"')
    review_id = review_of(runs, WHOLESALE)
    result = cli("review", "edit", review_id, "--output", "label.json", "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    assert result.json_lines()[0]["outputs"]["category"] == "account"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [],
            "error: say what the corrected output is: --set field=value (repeatable) or "
            "--output FILE.json, not both\n",
        ),
        (
            ["--set", "amount=1", "--output", "x.json"],
            "error: say what the corrected output is: --set field=value (repeatable) or "
            "--output FILE.json, not both\n",
        ),
        (["--set", "amount"], "error: --set takes field=value, got `amount`\n"),
        (
            ["--set", "price=1"],
            "error: `price` is not a field of the output under review (`details`); its fields: "
            "`email`, `customer_name`, `order_id`, `amount`, `product`\n",
        ),
        (
            ["--output", "missing.json"],
            "error: cannot read `missing.json` (No such file or directory); check the path\n",
        ),
    ],
)
def test_edit_mistakes_are_usage_errors(
    cli: Invoke, db: str, runs: dict, args: list[str], message: str
) -> None:
    result = cli("review", "edit", review_of(runs, ESPRESSO), *args, "--db", db)
    assert (result.exit_code, result.stderr) == (2, message)


def test_set_on_a_label_names_the_node(cli: Invoke, db: str, runs: dict) -> None:
    result = cli("review", "edit", review_of(runs, CHARGED_TWICE), "--set", "label=x", "--db", db)
    assert (result.exit_code, result.stderr) == (
        2,
        'error: the output under review (`category`) is "refund", not an object with fields; '
        "replace it with --set category=VALUE or --output FILE.json\n",
    )


def test_set_values_are_json_when_they_parse(cli: Invoke, db: str, runs: dict) -> None:
    from handrail.review.records import edited_output

    with SqlStore(db) as store:
        review = store.get_review(review_of(runs, ESPRESSO))
    assert review is not None
    edited = edited_output(
        review,
        assignments=["amount=2.5", "email=null", "product=a  [kettle]", "order_id=[1, 2]"],
    )
    assert edited == review.output | {
        "amount": 2.5,
        "email": None,
        "product": "a  [kettle]",
        "order_id": [1, 2],
    }


def test_reject_ends_the_run(cli: Invoke, db: str, runs: dict) -> None:
    review_id = review_of(runs, WHOLESALE)
    result = cli(
        "review", "reject", review_id, "--reason", "a sales lead, not a ticket", "--db", db,
        "--reviewer", "ana",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    run_id = runs[WHOLESALE]["run_id"]
    assert result.stdout == f"rejected {review_id} by ana; run {run_id} is rejected\n"
    run = shown(cli, db, "runs", "show", run_id)
    assert run["status"] == "rejected"
    assert run["decisions"][0]["reason"] == "a sales lead, not a ticket"


def test_the_reviewer_defaults_to_the_user(cli: Invoke, db: str, runs: dict) -> None:
    review_id = review_of(runs, ESPRESSO)
    assert cli("review", "approve", review_id, "--db", db, env={"USER": "noor"}).exit_code == 0
    assert shown(cli, db, "review", "show", review_id)["decision"]["reviewer"] == "noor"


# --- finding the pipeline's code -----------------------------------------------------------------


@pytest.fixture
def unrecorded(db: str) -> str:
    """A review of the `happy` pipeline raised by a runner in Python, which records no target."""

    async def run() -> str:
        async with DurableRunner(load_pipeline(HAPPY), model=FakeModel(), db=db) as runner:
            record = await runner.run(BUG)
        assert record.review is not None
        return record.review.review_id

    return asyncio.run(run())


def test_a_pipeline_whose_code_was_never_recorded_needs_target(
    cli: Invoke, db: str, unrecorded: str
) -> None:
    result = cli("review", "approve", unrecorded, "--db", db)
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: where pipeline `happy`'s code is was never recorded in {db}; name it with "
        "--target path/to/file.py:pipeline\n",
    )
    other = f"{PIPELINES / 'branches.py'}:pipeline"
    wrong = cli("review", "approve", unrecorded, "--db", db, "--target", other)
    assert (wrong.exit_code, wrong.stderr) == (
        2,
        f"error: `{other}` is pipeline `branches`, not `happy`; name pipeline `happy`'s code "
        "with --target\n",
    )
    ok = cli(
        "review", "edit", unrecorded, "--set", "category=question", "--db", db, "--target", HAPPY
    )
    assert ok.exit_code == 0, ok.stderr
    assert "edited" in ok.stdout


def test_recorded_code_that_moved_is_a_usage_error(cli: Invoke, db: str, runs: dict) -> None:
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE handrail_pipelines SET target = '/gone/pipeline.py:pipeline'")
    result = cli("review", "approve", review_of(runs, ESPRESSO), "--db", db)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error: pipeline `support_triage`'s code is recorded in the database as "
        "`/gone/pipeline.py:pipeline`, which is not a .py file inside the current folder"
    )
    assert "pass --target" in result.stderr
    assert (
        cli(
            "review", "approve", review_of(runs, ESPRESSO), "--db", db, "--target", TARGET
        ).exit_code
        == 0
    )


# --- escalation ----------------------------------------------------------------------------------


def test_escalate_applies_overdue_escalations_of_every_pipeline(
    cli: Invoke, db: str, tmp_path: Path
) -> None:
    (tmp_path / "ticket.txt").write_text("Please refund my order.\n")
    code = deadlines(tmp_path)
    ran = {}
    for name in ("reject_late", "move_late"):
        [line] = cli("run", f"{code}:{name}", "ticket.txt", "--db", db, "--json").json_lines()
        assert line["status"] == "needs_review"
        ran[name] = line
    pending = cli("review", "list", "--db", db, "--json").json_lines()
    assert {line["on_deadline"] for line in pending} == {"reject", "move to queue `supervisors`"}

    result = cli("review", "escalate", "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    done = {line["action"]: line for line in result.json_lines()}
    assert set(done) == {"reject", "queue"}
    assert done["reject"]["run_id"] == ran["reject_late"]["run_id"]
    assert done["reject"]["run_status"] == "rejected"
    assert done["reject"]["detail"].endswith("passed: nobody looked in time")
    assert done["queue"]["run_status"] is None
    assert done["queue"]["detail"].endswith("moved from queue `default` to `supervisors`")

    [moved] = cli("review", "list", "--db", db, "--queue", "supervisors", "--json").json_lines()
    assert moved["review_id"] == done["queue"]["review_id"] and moved["escalation"]
    decision = shown(cli, db, "review", "show", done["reject"]["review_id"])["decision"]
    assert decision["reviewer"] == "handrail (deadline)"

    again = cli("review", "escalate", "--db", db)
    assert (again.exit_code, again.stdout) == (0, "no reviews past their deadline\n")


def test_escalate_text_and_a_pipeline_without_code(cli: Invoke, db: str, tmp_path: Path) -> None:
    (tmp_path / "ticket.txt").write_text("Please refund my order.\n")
    code = deadlines(tmp_path)
    for name in ("reject_late", "move_late"):
        assert cli("run", f"{code}:{name}", "ticket.txt", "--db", db).exit_code == 0
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        conn.execute("DELETE FROM handrail_pipelines WHERE name = 'move_late'")
    result = cli("review", "escalate", "--db", db)
    assert result.exit_code == 1
    [line] = result.stdout.splitlines()
    assert line.startswith("rv-") and ": reject: deadline " in line
    assert line.endswith("passed: nobody looked in time; run " + line.split("; run ")[1])
    assert line.split("; run ")[1].endswith(" is now rejected")
    assert result.stderr == (
        f"error: where pipeline `move_late`'s code is was never recorded in {db}; name it with "
        "--target path/to/file.py:pipeline\n"
    )


# --- what a reviewer sees: the document, each field against its gate, schema errors ---------------

SCHEMA_FAILURE = Path(__file__).parent / "schema_failure.py"


def test_review_show_has_the_document_and_each_field_against_its_threshold(
    cli: Invoke, db: str, runs: dict
) -> None:
    espresso = shown(cli, db, "review", "show", review_of(runs, ESPRESSO), "--target", TARGET)
    # The document as the run read it (an email: its headers and body as text).
    assert espresso["document_text"].startswith(
        "Subject: Return and refund: Vela Pro espresso machine\n"
    )
    assert "Daniel Okafor" in espresso["document_text"]
    fields = {row["field"]: row for row in espresso["fields"]}
    assert list(fields) == ["email", "customer_name", "order_id", "amount", "product"]
    # `details` keeps the default gate: its one required field is held to 0.8, the rest to none.
    # The confidences are those of `details` (the review is the `refund_approval` gate's).
    assert fields["email"] == {
        "field": "email",
        "value": "d.okafor@example.com",
        "confidence": 0.95,
        "confidence_source": "heuristic",
        "threshold": 0.8,
        "status": "ok",
    }
    assert {fields[f]["status"] for f in fields if f != "email"} == {"not gated"}
    assert fields["amount"]["value"] == 1249.0
    assert espresso["schema_errors"] == []

    # A label: the output against the classifier's gate, known from the reason even without
    # the pipeline's code.
    with sqlite3.connect(db.removeprefix("sqlite:///")) as conn:
        conn.execute("DELETE FROM handrail_pipelines")  # where the code is: no longer known
    charged = shown(cli, db, "review", "show", review_of(runs, CHARGED_TWICE))
    assert charged["fields"] == [
        {
            "field": "category",
            "value": "refund",
            "confidence": pytest.approx(1.25 / 3.25),
            "confidence_source": "heuristic",
            "threshold": 0.7,
            "status": "below",
        }
    ]

    table = cli("review", "show", review_of(runs, CHARGED_TWICE), "--db", db).stdout
    assert "`category` against its gate (as the reasons say)" in table
    assert "│ category │ refund │ 0.38 (heuristic) │ 0.7       │ below │" in table
    document = shown(cli, db, "review", "show", review_of(runs, CHARGED_TWICE))["document_text"]
    assert f"document ({len(document)} characters):" in table
    assert "Subject: Charged twice for one order" in table


@pytest.fixture
def schema_review(db: str) -> str:
    """A review raised because `refund`'s answers never fit its schema (nothing under review)."""
    from tests.cli import schema_failure

    async def run() -> str:
        async with DurableRunner(
            schema_failure.pipeline, model=schema_failure.model(), db=db
        ) as runner:
            record = await runner.run("Refund order A-17: twelve euros, please.")
        assert record.review is not None and record.review.output is None
        return record.review.review_id

    return asyncio.run(run())


def test_review_show_after_a_schema_failure_names_the_field_and_why(
    cli: Invoke, db: str, schema_review: str
) -> None:
    target = f"{SCHEMA_FAILURE}:pipeline"
    data = shown(cli, db, "review", "show", schema_review, "--target", target)
    assert data["output"] is None
    assert data["schema_errors"] == [
        {
            "field": "amount",
            "message": "Input should be a valid number, unable to parse string as a number "
            "(got 'twelve euros')",
        }
    ]
    assert [(f["field"], f["threshold"], f["status"]) for f in data["fields"]] == [
        ("order_id", 0.8, "no confidence"),
        ("amount", 0.9, "no confidence"),
        ("note", None, "not gated"),
    ]
    assert data["document_text"] == "Refund order A-17: twelve euros, please."

    text = cli("review", "show", schema_review, "--db", db, "--target", target).stdout
    assert "why `refund`'s last answer did not fit its schema" in text
    assert "│ amount │ Input should be a valid number, unable to parse string as a number " in text


def test_edit_sets_fields_when_nothing_is_under_review(
    cli: Invoke, db: str, schema_review: str
) -> None:
    target = f"{SCHEMA_FAILURE}:pipeline"
    typo = cli("review", "edit", schema_review, "--set", "amout=12", "--db", db, "--target", target)
    assert typo.exit_code == 2  # a usage mistake, as for other bad --set values
    assert typo.stderr == (
        "error: `amout` is not a field of `refund`'s schema; its fields: `order_id`, `amount`, "
        "`note`\n"
    )
    result = cli(
        "review", "edit", schema_review, "--set", "order_id=A-17", "--set", "amount=12",
        "--db", db, "--target", target, "--json", "-r", "dana",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    [line] = result.json_lines()
    assert line["status"] == "completed"
    assert line["outputs"]["refund"] == {"order_id": "A-17", "amount": 12.0, "note": None}
    assert line["outputs"]["act"] == "refund 12.0"
