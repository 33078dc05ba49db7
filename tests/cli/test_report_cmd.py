"""`handrail report` over real runs in a SQLite store: the support-triage example with the fake
model, one review approved, one rejected and one left pending."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import HAPPY, REFUND, Invoke
from .triage import TARGET, run_example

ESPRESSO = "02_refund_espresso_machine.eml"
CHARGED_TWICE = "07_charged_twice.eml"
WHOLESALE = "10_wholesale_enquiry.md"
SINCE_ERROR = (
    "error: --since takes an ISO date (2025-03-01), an ISO date and time (2025-03-01T09:30, UTC "
    "unless it says otherwise) or a time back from now (30m, 24h, 7d); got `{}`\n"
)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite file given as a plain path, as `--db` allows, in a folder of the test's own that
    is also the working folder (the example's helpdesk file lands there)."""
    monkeypatch.chdir(tmp_path)
    return str(tmp_path / "intake.db")


def url(db: str) -> str:
    """The database as the report names it."""
    return f"sqlite:///{db}"


@pytest.fixture
def runs(cli: Invoke, db: str) -> dict[str, dict[str, Any]]:
    """The example's ten documents, then the espresso refund approved and the wholesale enquiry
    rejected; the ticket charged twice still waits."""
    runs = run_example(cli, db)
    for verb, document in (("approve", ESPRESSO), ("reject", WHOLESALE)):
        review_id = runs[document]["review"]["review_id"]
        # the example's code is outside the test's folder: named, not taken from the database
        result = cli(
            "review", verb, review_id, "--db", db, "--reviewer", "dana", "--target", TARGET
        )
        assert result.exit_code == 0, result.stderr
    return runs


def report_json(cli: Invoke, db: str, *args: str) -> dict[str, Any]:
    result = cli("report", "--db", db, "--json", *args)
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def cells(text: str) -> list[list[str]]:
    """The body rows of the tables printed."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def rows(text: str) -> dict[str, list[str]]:
    """The body rows of the tables printed, by their first cell."""
    return {row[0]: row[1:] for row in cells(text)}


def test_report_json_figures(cli: Invoke, db: str, runs: dict[str, dict[str, Any]]) -> None:
    data = report_json(cli, db)
    assert data["pipelines"] == ["support_triage"]
    assert data["runs"] == {
        "total": 10,
        "by_status": {"completed": 6, "needs_review": 1, "failed": 2, "rejected": 1, "running": 0},
        "finished": 9,
    }
    assert data["straight_through"] == {"runs": 5, "rate": 5 / 9}

    reviews = data["reviews"]
    assert (reviews["runs"], reviews["rate"], reviews["decided"]) == (3, 0.3, 2)
    assert reviews["decisions"] == {"approve": 1, "edit": 0, "reject": 1}
    assert (reviews["wait"]["count"], reviews["wait_unknown"]) == (2, 0)
    assert 0 < reviews["wait"]["median_s"] <= reviews["wait"]["p90_s"]
    assert reviews["pending"] == 1
    assert reviews["oldest_pending_id"] == runs[CHARGED_TWICE]["review"]["review_id"]
    assert reviews["oldest_pending_s"] > 0

    # two runs were resumed after a person decided: their wall time includes the wait
    assert data["cycle_time"]["count"] == data["processing_time"]["count"] == 9
    assert data["cycle_time"]["total_s"] > data["processing_time"]["total_s"]

    # `details` gave up on the voicemail after two re-asks; the blank upload never got a step
    assert data["retries"] == {
        "total": 2,
        "by_kind": {"transport_retry": 0, "reask": 2, "check_retry": 0, "fallback_model": 0},
    }
    assert data["steps"]["exceptions"] == 1
    assert data["errors"] == [
        {
            "type": "OutputInvalid",
            "steps": 1,
            "step_rate": 1 / data["steps"]["total"],
            "runs_failed": 1,
            "nodes": ["details"],
        },
        {"type": "InputError", "steps": 0, "step_rate": 0.0, "runs_failed": 1, "nodes": []},
    ]

    nodes = {node["node"]: node for node in data["nodes"]}
    assert list(nodes)[:4] == ["ticket", "category", "details", "completeness"]
    assert {name: (n["steps"], n["reviews"], n["exceptions"]) for name, n in nodes.items()} == {
        "ticket": (9, 0, 0),
        "category": (9, 2, 0),
        "details": (7, 0, 1),
        "completeness": (6, 0, 0),
        "refund_approval": (5, 1, 0),
        "reply": (5, 0, 0),
        "create_ticket": (6, 0, 0),
        "ask_for_info": (1, 0, 0),
    }
    assert data["steps"]["total"] == sum(n["steps"] for n in nodes.values())
    assert nodes["details"]["retries"]["by_kind"]["reask"] == 2
    top = max(nodes.values(), key=lambda n: n["duration"]["total_s"])
    assert data["bottleneck"]["by_total"] == {
        "pipeline": "support_triage",
        "node": top["node"],
        "total_s": top["duration"]["total_s"],
    }

    usage = data["usage"]
    assert (usage["cost_known"], usage["cost_unknown"], usage["cost_total"]) == (10, 0, 0.0)
    assert usage["tokens_mean"] == usage["tokens_total"] / 10 > 0


def test_report_tables(cli: Invoke, db: str, runs: dict[str, dict[str, Any]]) -> None:
    result = cli("report", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"workflow report: {url(db)}\n")
    table = rows(result.stdout)
    assert table["documents"] == [
        "10: 6 completed, 1 needs review, 2 failed, 1 rejected, 0 running"
    ]
    assert table["straight-through"] == ["55.6% (5 of 9 finished runs with no review)"]
    assert table["review rate"] == ["30.0% (3 of 10 runs needed a review)"]
    assert table["review wait"][0].endswith("(2 decisions: approve 1, reject 1)")
    charged = runs[CHARGED_TWICE]["review"]["review_id"]
    assert table["pending reviews"][0].startswith(f"1; the oldest ({charged}) has waited ")
    assert table["retries"] == ["2 (reask 2)"]
    assert table["cost per document"] == ["mean 0"]
    # the node table: steps, median, p90, total, exceptions, reviews, retries
    assert table["details"][0] == "extract"
    assert (table["details"][1], table["details"][5:]) == ("7", ["1 (14.3%)", "0", "2"])
    assert table["category"][5:] == ["0", "2 (22.2%)", "0"]
    # the error table: steps, runs failed, nodes
    assert table["OutputInvalid"] == ["1 (2.1%)", "1", "details"]  # 1 of 48 steps
    assert table["InputError"] == ["0", "1", ""]


def test_filters(cli: Invoke, db: str, runs: dict[str, dict[str, Any]], tmp_path: Path) -> None:
    (tmp_path / "refund.txt").write_text(REFUND)
    assert cli("run", HAPPY, "refund.txt", "--db", db).exit_code == 0

    both = report_json(cli, db)
    assert (both["runs"]["total"], both["pipelines"]) == (11, ["happy", "support_triage"])
    assert {(n["pipeline"], n["node"]) for n in both["nodes"]} >= {
        ("happy", "category"),
        ("support_triage", "category"),
    }
    happy = report_json(cli, db, "--pipeline", "happy")
    assert (happy["runs"]["total"], happy["filters"]["pipeline"]) == (1, "happy")
    shown = cli("report", "--db", db, "--pipeline", "happy").stdout.splitlines()
    assert shown[0] == f"workflow report: pipeline happy, {url(db)}"
    assert report_json(cli, db, "--since", "1h")["runs"]["total"] == 11
    future = report_json(cli, db, "--since", "2999-01-01")
    assert future["filters"]["since"] == "2999-01-01T00:00:00+00:00"
    assert (future["runs"]["total"], future["cycle_time"]["median_s"]) == (0, None)

    nothing = cli("report", "--db", db, "--pipeline", "claims")
    assert (nothing.exit_code, nothing.stdout) == (0, f"no matching runs in {url(db)}\n")
    several = cells(cli("report", "--db", db).stdout)
    assert ["happy", "category", "classify"] in [row[:3] for row in several], "pipeline column"


def test_no_database_yet(cli: Invoke, db: str) -> None:
    result = cli("report", "--db", db)
    assert (result.exit_code, result.stdout, result.stderr) == (0, f"no runs in {url(db)}\n", "")
    assert report_json(cli, db)["runs"]["total"] == 0
    assert not Path(db).exists(), "reading creates no database"


@pytest.mark.parametrize("since", ["yesterday", "7y", "2025-02-30"])
def test_a_malformed_since_is_a_usage_error(cli: Invoke, db: str, since: str) -> None:
    result = cli("report", "--db", db, "--since", since)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", SINCE_ERROR.format(since))


DEADLINES = Path(__file__).parent / "deadlines.py"


def test_the_bottleneck_weighs_human_wait_beside_node_time(
    cli: Invoke, db: str, runs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    # One more review, past its deadline the moment it is raised, in its own pipeline's queue.
    (tmp_path / "late.txt").write_text("Please refund my order.\n")
    late = cli("run", f"{DEADLINES}:move_late", "late.txt", "--db", db, "--json").json_lines()
    assert [line["status"] for line in late] == ["needs_review"]

    data = report_json(cli, db)
    queues = {queue["queue"]: queue for queue in data["review_queues"]}
    assert set(queues) == {"default"}  # both pipelines' reviews wait in `default`
    default = queues["default"]
    assert (default["decided"], default["pending"], default["overdue"]) == (2, 2, 1)
    assert default["wait"]["count"] == 2
    assert default["human_wait_s"] == pytest.approx(
        default["wait"]["total_s"] + default["pending_age_s"]
    )
    nodes_total = max(node["duration"]["total_s"] for node in data["nodes"])
    # The fake model answers in milliseconds; people took seconds (two CLI decisions, and two
    # reviews still waiting): the review queue is the bottleneck, and the report says so.
    assert default["human_wait_s"] > nodes_total
    assert data["bottleneck"]["is"] == "review"
    assert data["bottleneck"]["by_human_wait"] == {
        "queue": "default",
        "human_wait_s": default["human_wait_s"],
    }

    result = cli("report", "--db", db)
    table = rows(result.stdout)
    assert table["bottleneck"][0].startswith("review queue `default`: ")
    assert "waiting for people in all (2 pending, 1 overdue); slowest node: " in " ".join(
        table["bottleneck"]
    )
    assert "review queues (human wait)" in result.stdout
    # queue: decided, median wait, p90 wait, pending, overdue, waited in all
    decided, median, _, pending, overdue, _ = table["default"]
    assert (decided, pending, overdue) == ("2", "2", "1")
    assert median.endswith(("ms", "s", "min"))


def test_without_reviews_the_bottleneck_is_the_slowest_node(cli: Invoke, db: str) -> None:
    Path("refund.txt").write_text(REFUND)
    assert cli("run", HAPPY, "refund.txt", "--db", db).exit_code == 0
    data = report_json(cli, db)
    assert data["review_queues"] == []
    assert data["bottleneck"]["is"] == "node"
    assert data["bottleneck"]["by_human_wait"] is None
