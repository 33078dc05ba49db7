"""Evals that say the truth at their seams (issue 12): actions are recorded, not called (A4); a
case the eval cannot finish is a failed case, not a crashed eval (E18); a case scores only the
fields it names (E19)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from handrail import (
    Action,
    Classify,
    Extract,
    Fail,
    FakeModel,
    Gate,
    PipelineBuilder,
    Reply,
    Rule,
    State,
)
from handrail.core.records import RunStatus
from handrail.evals.actions import record_actions
from handrail.evals.report import build_report
from handrail.evals.run import run_cases
from handrail.evals.suite import Suite, load_suite


class Order(BaseModel):
    order_id: str | None = None
    amount: float | None = None
    note: str | None = None


def suite_in(folder: Path, cases: list[dict[str, Any]], scoring: str) -> Suite:
    """A suite of `cases` (its pipeline is given to `run_cases` directly, not loaded)."""
    folder.mkdir(parents=True)
    (folder / "suite.yaml").write_text(f"pipeline: unused.py:pipeline\nscoring:\n{scoring}")
    (folder / "cases.jsonl").write_text("\n".join(json.dumps(c) for c in cases) + "\n")
    return load_suite(folder)


# --- A4: an eval never calls an Action ------------------------------------------------------------


FILED: list[str] = []


def file_ticket(state: State, idempotency_key: str) -> str:
    """Files the ticket (here: remembers the key, as a helpdesk would keep the ticket)."""
    FILED.append(idempotency_key)
    return f"T-{len(FILED)}"


def filing_pipeline() -> Any:
    return (
        PipelineBuilder("filing")
        .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.5)))
        .add(Action("file", file_ticket, reads=["category"]), after="category")
        .add(Rule("after_filing", lambda s: f"filed as {s['file']}"), after="file")
        .build()
    )


FILING_CASES = [
    {"id": "one", "document": "one: my money back please", "expected": {"category": "refund"}},
    {"id": "two", "document": "two: it crashes", "expected": {"category": "bug"}},
]


def text_of(request: Any) -> str:
    return " ".join(m.content for m in request.messages)


def filing_model() -> FakeModel:
    return FakeModel(
        {"category": lambda r: Reply("refund" if "one:" in text_of(r) else "bug", confidence=0.9)}
    )


async def test_actions_are_recorded_not_called(tmp_path: Path) -> None:
    FILED.clear()
    suite = suite_in(tmp_path / "s", FILING_CASES, "  category: {type: classification}\n")
    pipeline = filing_pipeline()
    ran = await run_cases(pipeline, suite.cases, model=filing_model())
    assert FILED == [], "the eval called the action"
    one = ran.results[0]
    assert one.record.status is RunStatus.COMPLETED  # went on as if the action succeeded
    assert [s.node for s in one.record.steps] == ["category", "file", "after_filing"]
    (call,) = one.actions
    assert (call.node, call.idempotency_key) == ("file", "eval-one:file")
    assert call.inputs == {"category": "refund"}  # what it declares it reads
    assert ran.actions_called is False

    report = build_report(suite, ran, model="fake")
    assert report["actions"] == {
        "called": False,
        "not_called": 2,
        "not_called_by_node": {"file": 2},
    }
    assert report["cases_detail"][1]["actions_not_called"] == [
        {"node": "file", "idempotency_key": "eval-two:file", "inputs": {"category": "bug"}}
    ]
    # the real pipeline is untouched: its action still calls
    assert pipeline.nodes["file"].fn is file_ticket


def test_the_recording_copy_is_the_same_pipeline_but_for_its_actions() -> None:
    pipeline = filing_pipeline()
    copy, log = record_actions(pipeline)
    assert len(log) == 0
    for field in fields(pipeline):  # name, start, prompts, budget, its computed version...
        if field.name not in ("graph", "nodes", "plans"):
            assert getattr(copy, field.name) == getattr(pipeline, field.name), field.name
    assert list(copy.nodes) == list(pipeline.nodes)
    assert copy.nodes["category"] is pipeline.nodes["category"]
    stand_in = copy.nodes["file"]
    assert isinstance(stand_in, Action) and stand_in.fn is not file_ticket
    assert copy.plans["file"].node is stand_in and copy.graph.nodes["file"]["node"] is stand_in
    plain = PipelineBuilder("none").add(Rule("r", lambda s: 1)).build()
    assert record_actions(plain)[0] is plain  # no action: nothing to copy


async def test_run_actions_calls_them(tmp_path: Path) -> None:
    FILED.clear()
    suite = suite_in(tmp_path / "s", FILING_CASES, "  category: {type: classification}\n")
    ran = await run_cases(filing_pipeline(), suite.cases, model=filing_model(), run_actions=True)
    assert sorted(FILED) == ["eval-one:file", "eval-two:file"]
    assert all(r.actions == () for r in ran.results)
    report = build_report(suite, ran, model="fake")
    assert report["actions"] == {"called": True, "not_called": 0, "not_called_by_node": {}}
    assert "actions_not_called" not in report["cases_detail"][0]


# --- E18: one case the eval cannot finish does not abort the eval ---------------------------------


def exhausting_pipeline() -> Any:
    return (
        PipelineBuilder("exhausting")
        .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.5)))
        .add(Extract("details", Order, gate=None, on_exhausted="review"), after="category")
        .build()
    )


async def test_a_case_with_nothing_to_approve_is_a_failed_case_and_the_report_finishes(
    tmp_path: Path,
) -> None:
    cases = [
        {"id": "fine", "document": "fine: order A-1", "expected": {"category": "refund"}},
        # the extraction fails every try and goes to review with no output: the eval's reviewer
        # has nothing to approve (the case names no expected `details` to edit in)
        {"id": "stuck", "document": "stuck: order B-2", "expected": {"category": "bug"}},
    ]
    suite = suite_in(tmp_path / "s", cases, "  category: {type: classification}\n")

    def details(request: Any) -> Reply | Fail:
        if "B-2" in text_of(request):
            return Fail("invalid_json")
        return Reply({"order_id": "A-1"}, confidence=0.9)

    def category(request: Any) -> Reply:
        return Reply("refund" if "fine:" in text_of(request) else "bug", confidence=1.0)

    model = FakeModel({"category": category, "details": details})
    ran = await run_cases(exhausting_pipeline(), suite.cases, model=model)
    fine, stuck = ran.results
    assert fine.error is None and fine.record.status is RunStatus.COMPLETED
    assert stuck.error is not None and stuck.error.startswith("InvalidDecision: ")
    assert "no output to approve" in stuck.error
    assert stuck.record.status is RunStatus.NEEDS_REVIEW  # the run as far as it got

    report = build_report(suite, ran, model="fake")
    assert report["errors"] == [{"id": "stuck", "error": stuck.error}]
    detail = {c["id"]: c for c in report["cases_detail"]}
    assert detail["stuck"]["eval_error"] == stuck.error
    assert "eval_error" not in detail["fine"]
    # the node that ran is still scored on the model's own answer
    assert report["nodes"]["category"]["scores"]["accuracy"] == 1.0


# --- E19: a case scores only the fields it names ------------------------------------------------


async def test_a_case_is_scored_on_the_fields_it_names(tmp_path: Path) -> None:
    cases = [
        # names 2 fields, both right; `note` (not named) was filled: still all right
        {"id": "named", "document": "n", "expected": {"details": {"order_id": "A-1", "amount": 5}}},
        # null: the field should be empty, and it was filled: wrong
        {
            "id": "empty",
            "document": "e",
            "expected": {"details": {"order_id": "A-1", "note": None}},
        },
    ]
    suite = suite_in(
        tmp_path / "s", cases, "  details: {type: extraction, fields: [order_id, amount, note]}\n"
    )
    pipeline = PipelineBuilder("fields").add(Extract("details", Order, gate=None)).build()
    model = FakeModel(
        {"details": Reply({"order_id": "A-1", "amount": 5.0, "note": "gift wrap"}, confidence=0.9)}
    )
    ran = await run_cases(pipeline, suite.cases, model=model)
    report = build_report(suite, ran, model="fake")
    detail = {c["id"]: c["nodes"]["details"] for c in report["cases_detail"]}
    assert detail["named"]["correct"] is True
    assert (detail["named"]["fields_right"], detail["named"]["fields_scored"]) == (2, 2)
    assert detail["empty"]["correct"] is False
    assert (detail["empty"]["fields_right"], detail["empty"]["fields_scored"]) == (1, 2)

    scores = report["nodes"]["details"]["scores"]
    assert scores["all_fields_right"]["normalised"] == 0.5
    note = scores["per_field"]["note"]["normalised"]
    assert (note["n"], note["spurious"]) == (1, 1)  # only the case that named it
    amount = scores["per_field"]["amount"]["normalised"]
    assert (amount["n"], amount["tp"]) == (1, 1)
