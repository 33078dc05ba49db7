"""`handrail review export --suite DIR`: the support-triage example run durably, its reviews
decided (an edit, a rejection, an approval) and exported as eval cases, once."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.cli.conftest import BUG, HAPPY, Invoke
from tests.cli.conftest import _isolated as _isolated  # the CLI tests' isolation, autouse
from tests.cli.conftest import cli as cli  # the in-process invoker fixture
from tests.cli.triage import EXAMPLE, TARGET, run_example

from handrail import FakeModel, InputError, ReviewDecision
from handrail.durable import DurableRunner, SqlStore
from handrail.evals.export import decided_reviews, export_cases
from handrail.evals.suite import load_suite
from handrail.inputs import load_document
from handrail.targets import load_pipeline

ESPRESSO = "02_refund_espresso_machine.eml"
CHARGED_TWICE = "07_charged_twice.eml"
WHOLESALE = "10_wholesale_enquiry.md"


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(tmp_path)  # the example's helpdesk writes under the current folder
    return f"sqlite:///{tmp_path / 'runs' / 'handrail.db'}"


@pytest.fixture
def decided(cli: Invoke, db: str) -> dict[str, dict[str, Any]]:
    """The example run durably and its three reviews decided: the category of the double charge
    edited, the wholesale enquiry rejected, the large refund approved. Its JSON line per
    document, with `review_id`."""
    runs = run_example(cli, db)
    for document, *decision in (
        (CHARGED_TWICE, "edit", "--set", "category=billing", "-r", "dana"),
        (WHOLESALE, "reject", "--reason", "a sales lead, not a ticket", "-r", "ana"),
        (ESPRESSO, "approve", "-r", "sam"),
    ):
        verb, *options = decision
        review_id = runs[document]["review"]["review_id"]
        result = cli("review", verb, review_id, *options, "--db", db, "--target", TARGET)
        assert result.exit_code == 0, result.stderr
        runs[document]["review_id"] = review_id
    return runs


def cases_in(folder: Path) -> list[dict[str, Any]]:
    text = (folder / "cases.jsonl").read_text()
    return [json.loads(line) for line in text.splitlines()]


def test_decided_reviews_become_cases_once(
    cli: Invoke, db: str, decided: dict[str, Any], tmp_path: Path
) -> None:
    result = cli("review", "export", "--suite", "evals/triage", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "added 3 cases to evals/triage/cases.jsonl (1 approved, 1 edited, 1 rejected); skipped 0 "
        "already exported",
        "created evals/triage/suite.yaml for pipeline `support_triage`; scoring category "
        "(classification), details (extraction)",
    ]
    folder = tmp_path / "evals" / "triage"
    charged, wholesale, espresso = (
        decided[d]["review_id"] for d in (CHARGED_TWICE, WHOLESALE, ESPRESSO)
    )
    lines = cases_in(folder)
    assert [line["id"] for line in lines] == [
        f"07_charged_twice-{charged}",
        f"10_wholesale_enquiry-{wholesale}",
        f"02_refund_espresso_machine-{espresso}",
    ], "in the order the reviews were decided"
    edit, reject, approve = lines
    assert {k: v for k, v in edit.items() if k != "metadata"} == {
        "id": f"07_charged_twice-{charged}",
        "path": f"documents/07_charged_twice-{charged}.txt",
        "expected": {"category": "billing"},
        "tags": ["review", "edited"],
    }
    assert (reject["expected"], reject["route"], reject["tags"]) == (
        {},
        "reject",
        ["review", "rejected"],
    )
    assert "route" not in approve
    assert approve["expected"] == {
        "details": {
            "email": "d.okafor@example.com",
            "customer_name": "Daniel Okafor",
            "order_id": "LH-47760",
            "amount": 1249.0,
            "product": "Vela Pro espresso machine",
        }
    }
    metadata = reject["metadata"]
    decided_at = metadata.pop("decided_at")
    assert metadata == {
        "source": "review",
        "review_id": wholesale,
        "run_id": decided[WHOLESALE]["run_id"],
        "pipeline": "support_triage",
        "node": "category",
        "decision": "reject",
        "reviewer": "ana",
        "reason": "a sales lead, not a ticket",
        "document_id": decided[WHOLESALE]["document"],
    }
    assert decided_at.endswith("+00:00")
    assert (approve["metadata"]["node"], approve["metadata"]["reviewer"]) == (
        "refund_approval",
        "sam",
    )
    # each document as the run saw it: the .eml's readable text, read back the same from .txt
    for line, name in zip(lines, (CHARGED_TWICE, WHOLESALE, ESPRESSO), strict=True):
        original = load_document(EXAMPLE / "documents" / name)
        assert not isinstance(original, Exception)
        assert (folder / line["path"]).read_text() == original.text
    text = (folder / "suite.yaml").read_text()
    pipeline_line = next(line for line in text.splitlines() if line.startswith("pipeline: "))
    assert text.replace(pipeline_line, "pipeline: TARGET") == (
        "# An eval suite for pipeline `support_triage`, started by `handrail review export` "
        "from reviewers'\n"
        "# decisions. The schema: docs/evals.md, Suite files.\n"
        "pipeline: TARGET\n"
        "scoring:\n"
        "  category: {type: classification}\n"
        "  details: {type: extraction}\n"
    )
    # the target names the example's file, relative to the suite where they share a folder
    # below the root, else absolute
    written, _, attribute = json.loads(pipeline_line.removeprefix("pipeline: ")).rpartition(":")
    expected_path, _, expected_attribute = TARGET.rpartition(":")
    assert attribute == expected_attribute
    assert (folder / written).resolve() == Path(expected_path).resolve()

    before = (folder / "cases.jsonl").read_text()
    again = cli("review", "export", "--suite", "evals/triage", "--db", db)
    assert again.exit_code == 0, again.stderr
    assert again.stdout == (
        "added 0 cases to evals/triage/cases.jsonl; skipped 3 already exported\n"
    )
    assert (folder / "cases.jsonl").read_text() == before

    suite = load_suite(folder, load=load_pipeline)
    assert suite.name == "triage"
    assert [(c.id, c.route, dict(c.expected)) for c in suite.cases] == [
        (line["id"], line.get("route"), line["expected"]) for line in lines
    ]
    assert set(suite.scoring) == {"category", "details"}


def test_json_output_and_since(cli: Invoke, db: str, decided: dict[str, Any]) -> None:
    later = cli("review", "export", "--suite", "s", "--db", db, "--since", "2999-01-01", "--json")
    assert later.exit_code == 0, later.stderr
    assert json.loads(later.stdout) == {
        "suite": "s",
        "cases_file": "s/cases.jsonl",
        "pipeline": None,
        "added": [],
        "skipped": [],
        "no_document": [],
        "created_suite": False,
        "unscored": [],
    }
    assert not Path("s").exists(), "nothing to export: nothing written"
    result = cli("review", "export", "--suite", "s", "--db", db, "--since", "1d", "--json")
    data = json.loads(result.stdout)
    assert [(a["decision"], a["path"]) for a in data["added"]] == [
        (action, f"documents/{a['id']}.txt")
        for action, a in zip(("edit", "reject", "approve"), data["added"], strict=True)
    ]
    assert (data["created_suite"], data["pipeline"]) == (True, "support_triage")
    bad = cli("review", "export", "--suite", "s", "--db", db, "--since", "yesterday")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: --since takes an ISO date")


def test_an_existing_suite_is_kept_and_unscored_nodes_noted(
    cli: Invoke, db: str, decided: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "suite"
    folder.mkdir()
    yaml_text = (
        f"pipeline: {TARGET}\ncases: mine.jsonl\nscoring:\n  category: {{type: classification}}\n"
    )
    (folder / "suite.yaml").write_text(yaml_text)
    (folder / "mine.jsonl").write_text('{"id": "mine", "document": "Refund please"}')  # no \n
    result = cli("review", "export", "--suite", "suite", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "note: suite.yaml does not score `details`; add it under `scoring:`"
    ]
    assert (folder / "suite.yaml").read_text() == yaml_text
    assert not (folder / "cases.jsonl").exists()
    ids = [json.loads(line)["id"] for line in (folder / "mine.jsonl").read_text().splitlines()]
    assert len(ids) == 4 and ids[0] == "mine"
    assert len(load_suite(folder, load=load_pipeline).cases) == 4


def test_a_malformed_cases_file_is_not_appended_to(
    cli: Invoke, db: str, decided: dict[str, Any], tmp_path: Path
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "cases.jsonl").write_text('{"id": "a", "document": "x"}\n{oops\n')
    result = cli("review", "export", "--suite", "broken", "--db", db)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: suite `broken` has 2 problems:\n"
        "  broken/cases.jsonl line 2 is not JSON (Expecting property name enclosed in double "
        "quotes: column 2); write one JSON object per line\n"
        "  fix broken/cases.jsonl before exporting into it\n"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["cases.jsonl"]


def test_reviews_of_several_pipelines_need_a_choice(
    cli: Invoke, db: str, decided: dict[str, Any], tmp_path: Path
) -> None:
    (tmp_path / "bug.txt").write_text(BUG)
    [line] = cli("run", HAPPY, "bug.txt", "--db", db, "--json").json_lines()
    review_id = line["review"]["review_id"]
    assert cli("review", "approve", review_id, "--db", db, "--target", HAPPY).exit_code == 0
    result = cli("review", "export", "--suite", "mixed", "--db", db)
    assert (result.exit_code, result.stderr) == (
        2,
        "error: there are decided reviews of 2 pipelines (happy, support_triage); choose whose "
        "with --pipeline NAME\n",
    )
    chosen = cli("review", "export", "--suite", "mixed", "--db", db, "-p", "happy", "--json")
    assert [a["review_id"] for a in json.loads(chosen.stdout)["added"]] == [review_id]
    # later exports stay with the pipeline of the first
    again = cli("review", "export", "--suite", "mixed", "--db", db, "--json")
    assert json.loads(again.stdout)["skipped"] == [review_id]


def test_the_library_call_makes_a_file_target_relative(db: str, tmp_path: Path) -> None:
    async def run() -> None:
        pipeline = load_pipeline(HAPPY)
        async with DurableRunner(pipeline, model=FakeModel(), db=db) as runner:
            record = await runner.run(BUG)
            assert record.review is not None
            decision = ReviewDecision.edit("question", reviewer="kim")
            await runner.decide(record.review.review_id, decision)

    asyncio.run(run())
    with SqlStore(db) as store:
        decided = decided_reviews(store)
    folder = tmp_path / "evals" / "happy"
    with pytest.raises(InputError) as raised:
        export_cases(folder, decided)
    assert str(raised.value) == (
        f"`{folder.as_posix()}` has no suite.yaml and where pipeline `happy`'s code is was never "
        "recorded; name it with --target path/to/file.py:pipeline"
    )
    assert not folder.exists()
    target = f"{tmp_path / 'code' / 'happy.py'}:pipeline"
    result = export_cases(folder, decided, targets={"happy": target})
    assert [c.line["expected"] for c in result.added] == [{"category": "question"}]
    assert (folder / "suite.yaml").read_text().splitlines()[2:] == [
        'pipeline: "../../code/happy.py:pipeline"',
        "scoring:",
        "  category: {type: classification}",
    ]


def test_an_export_never_writes_outside_the_suite_folder(
    cli: Invoke, db: str, tmp_path: Path
) -> None:
    """issue 12, D17: `cases: ../../../OUTSIDE_cases.jsonl` in suite.yaml, or a `documents`
    folder that links out, is refused before anything is written."""

    async def run() -> None:
        async with DurableRunner(load_pipeline(HAPPY), model=FakeModel(), db=db) as runner:
            record = await runner.run(BUG)
            assert record.review is not None
            await runner.decide(record.review.review_id, ReviewDecision.approve(reviewer="kim"))

    asyncio.run(run())
    folder = tmp_path / "a" / "b" / "suite"
    folder.mkdir(parents=True)
    (folder / "suite.yaml").write_text(f"pipeline: {HAPPY}\ncases: ../../../OUTSIDE_cases.jsonl\n")
    result = cli("review", "export", "--suite", str(folder), "--db", db)
    assert (result.exit_code, result.stdout) == (2, "")
    assert 'field "cases": "../../../OUTSIDE_cases.jsonl" is outside the suite folder' in (
        result.stderr
    )
    assert not (tmp_path / "OUTSIDE_cases.jsonl").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["suite.yaml"]

    (folder / "suite.yaml").write_text(f"pipeline: {HAPPY}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "documents").symlink_to(elsewhere)
    with SqlStore(db) as store:
        decided = decided_reviews(store)
    with pytest.raises(InputError, match='"documents" is outside the suite folder'):
        export_cases(folder, decided)
    assert list(elsewhere.iterdir()) == []
    assert not (folder / "cases.jsonl").exists()
