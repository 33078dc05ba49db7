"""The example pipelines run offline with the heuristic `FakeModel` and do what their READMEs say.

`examples/support_triage`: every document ends where the example's README says, for the reason
it gives; the helpdesk `Action` files each completed ticket exactly once, also across a review
decision, a repeated decision and a second runner over the same documents.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from handrail import (
    Document,
    FakeModel,
    Reply,
    ReviewAlreadyDecided,
    ReviewDecision,
    Runner,
    RunRecord,
    RunStatus,
    State,
    StepStatus,
)

ROOT = Path(__file__).resolve().parents[1]
TRIAGE = ROOT / "examples" / "support_triage"


def load_example(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the schemas' annotations through it
    spec.loader.exec_module(module)
    return module


triage = load_example(TRIAGE / "pipeline.py", "examples_support_triage")

EXPECTED = {
    "01_refund_cracked_kettle.eml": RunStatus.COMPLETED,
    "02_refund_espresso_machine.eml": RunStatus.NEEDS_REVIEW,
    "03_billing_wrong_vat_number.json": RunStatus.COMPLETED,
    "04_bug_checkout_button_android.md": RunStatus.COMPLETED,
    "05_account_locked_after_email_change.json": RunStatus.COMPLETED,
    "06_refund_without_order_number.txt": RunStatus.COMPLETED,
    "07_charged_twice.eml": RunStatus.NEEDS_REVIEW,
    "08_blank_upload.txt": RunStatus.FAILED,
    "09_voicemail_no_contact.txt": RunStatus.FAILED,
    "10_wholesale_enquiry.md": RunStatus.NEEDS_REVIEW,
}
COMPLETED = sorted(d for d, s in EXPECTED.items() if s is RunStatus.COMPLETED)


def documents() -> list[Document]:
    return [
        Document(text=path.read_text(encoding="utf-8"), id=path.name)
        for path in sorted((TRIAGE / "documents").iterdir())
    ]


@pytest.fixture
def helpdesk(tmp_path, monkeypatch):
    """The example's helpdesk, writing to a file of this test's own."""
    monkeypatch.setattr(triage.helpdesk, "path", tmp_path / "helpdesk.json")
    monkeypatch.setattr(triage.helpdesk, "calls", 0)
    return triage.helpdesk


async def run_batch(model: FakeModel | None = None) -> tuple[Runner, dict[str, RunRecord]]:
    runner = Runner(triage.pipeline, model=model or FakeModel())
    records = await runner.run_many(documents())
    return runner, {r.document_id: r for r in records}


def step(record: RunRecord, node: str) -> list:
    return [s for s in record.steps if s.node == node]


async def test_every_document_ends_where_the_readme_says(helpdesk):
    _, runs = await run_batch()
    assert {doc: run.status for doc, run in runs.items()} == EXPECTED


async def test_completed_tickets_carry_what_the_pipeline_found(helpdesk):
    _, runs = await run_batch()
    outputs = {doc: runs[doc].outputs for doc in COMPLETED}
    assert {doc: out["category"] for doc, out in outputs.items()} == {
        "01_refund_cracked_kettle.eml": "refund",
        "03_billing_wrong_vat_number.json": "billing",
        "04_bug_checkout_button_android.md": "bug",
        "05_account_locked_after_email_change.json": "account",
        "06_refund_without_order_number.txt": "refund",
    }
    kettle = outputs["01_refund_cracked_kettle.eml"]["details"]
    assert kettle.model_dump() == {
        "email": "marta.kowalczyk@example.org",
        "customer_name": "Marta Kowalczyk",
        "order_id": "LH-48213",
        "amount": 89.90,
        "product": "Aurora glass kettle 1.7 L",
    }
    # 89.90 is under the limit: the approval gate lets it through without a person.
    assert outputs["01_refund_cracked_kettle.eml"]["refund_approval"] == "not_required"
    assert outputs["04_bug_checkout_button_android.md"]["details"].product == (
        "Larkspur Home for Android 4.12.1"
    )

    # A refund without order number or amount is filed as waiting on the customer, with a
    # message asking for exactly what is missing, and gets no ordinary reply.
    gareth = runs["06_refund_without_order_number.txt"]
    assert gareth.outputs["completeness"] == ["the order number", "the amount to refund"]
    assert step(gareth, "completeness")[0].route == "incomplete"
    assert "ask_for_info" in gareth.outputs and "reply" not in gareth.outputs

    filed = {t["subject"]: t for t in helpdesk.tickets()}
    assert filed["Where is my refund?"]["status"] == "waiting_on_customer"
    assert filed["Billing: invoice shows our old VAT number"]["queue"] == "billing"
    assert [t["status"] for t in filed.values()].count("open") == 4


async def test_reviews_say_why_a_person_is_needed(helpdesk):
    _, runs = await run_batch()

    espresso = runs["02_refund_espresso_machine.eml"]
    (review,) = espresso.reviews
    assert review.node == "refund_approval" and review.target == "details"
    assert review.output.amount == 1249.0 and review.output.order_id == "LH-47760"
    assert [(r.kind, r.message) for r in review.reasons] == [
        ("review_node", "refund of 1249 is above 500: approve it before we promise it")
    ]
    assert "reply" not in espresso.outputs  # nothing is promised before the approval

    # Refund or billing? Two words each; the classifier's 0.38 is under the gate's 0.7.
    (charged_twice,) = runs["07_charged_twice.eml"].reviews
    assert charged_twice.node == "category" and charged_twice.output == "refund"
    (reason,) = charged_twice.reasons
    assert reason.kind == "low_confidence" and reason.threshold == 0.7
    assert reason.value == pytest.approx(1.25 / 3.25)

    # No evidence for any label: a tie at 0.20 is a guess, and the gate says so.
    (wholesale,) = runs["10_wholesale_enquiry.md"].reviews
    assert wholesale.node == "category"
    assert [(r.kind, r.value) for r in wholesale.reasons] == [("low_confidence", 0.2)]
    assert "details" not in runs["10_wholesale_enquiry.md"].outputs


async def test_failures_name_their_cause(helpdesk):
    _, runs = await run_batch()

    blank = runs["08_blank_upload.txt"]
    assert blank.error is not None and blank.error.type == "InputError"
    assert "is empty" in blank.error.message and blank.steps == ()

    voicemail = runs["09_voicemail_no_contact.txt"]
    assert voicemail.outputs["category"] == "refund"
    assert voicemail.error is not None and voicemail.error.type == "OutputInvalid"
    assert "Field required" in voicemail.error.message
    (details,) = step(voicemail, "details")
    assert details.status is StepStatus.FAILED
    # The first call and two re-asks, each without an address to reply to.
    assert [(a.kind, a.outcome) for a in details.attempts] == [
        ("call", "invalid_output"),
        ("reask", "invalid_output"),
        ("reask", "invalid_output"),
    ]
    assert "create_ticket" not in voicemail.outputs


async def test_reply_checks(helpdesk):
    _, runs = await run_batch()
    # The fake's canned reply never quotes an order number: a warning, recorded, not a stop.
    (reply,) = step(runs["01_refund_cracked_kettle.eml"], "reply")
    assert [(c.name, c.passed, c.on_fail) for c in reply.checks] == [
        ("no_unasked_amounts", True, "review"),
        ("cites_order_id", False, "warn"),
    ]
    assert reply.checks[1].message == "the reply does not quote order LH-48213"


async def test_a_reply_promising_more_than_asked_goes_to_review(helpdesk):
    generous = Reply("Good news: we will refund €150.00 for order LH-48213 today.")
    runner = Runner(triage.pipeline, model=FakeModel({"reply": generous}))
    doc = next(d for d in documents() if d.id == "01_refund_cracked_kettle.eml")
    record = await runner.run(doc)
    assert record.status is RunStatus.NEEDS_REVIEW
    (review,) = record.reviews
    assert review.node == "reply"
    assert [(r.kind, r.check, r.message) for r in review.reasons] == [
        (
            "check",
            "no_unasked_amounts",
            "the reply mentions [150.0] but the customer asked about 89.9",
        )
    ]
    assert helpdesk.calls == 0


async def test_the_action_files_each_completed_ticket_once(helpdesk):
    model = FakeModel()
    runner, runs = await run_batch(model)
    assert helpdesk.calls == len(COMPLETED) == 5
    numbers = {t["idempotency_key"]: t["number"] for t in helpdesk.tickets()}
    assert len(numbers) == len(helpdesk.tickets()) == 5
    for doc in COMPLETED:
        (filed,) = step(runs[doc], "create_ticket")
        assert filed.output == numbers[f"{runs[doc].run_id}:create_ticket"]

    # A person approves the large refund: the run goes on from the gate, drafts the reply and
    # files the ticket once; nothing before the gate runs again.
    espresso = runs["02_refund_espresso_machine.eml"]
    calls_before = len(model.calls)
    approved = await runner.decide(
        espresso.reviews[0].review_id, ReviewDecision.approve(reviewer="lead@larkspur")
    )
    assert approved.status is RunStatus.COMPLETED
    assert approved.outputs["refund_approval"] == "approved"
    assert [c.node for c in model.calls[calls_before:]] == ["reply"]
    assert [s.node for s in approved.steps].count("create_ticket") == 1
    assert [s.node for s in approved.steps].count("details") == 1
    assert helpdesk.calls == 6 and len(helpdesk.tickets()) == 6

    # The same decision again is refused, and running the document again returns the
    # finished run: the helpdesk hears nothing more.
    with pytest.raises(ReviewAlreadyDecided):
        await runner.decide(espresso.reviews[0].review_id, ReviewDecision.approve())
    doc = next(d for d in documents() if d.id == "02_refund_espresso_machine.eml")
    again = await runner.run(doc)
    assert again.run_id == approved.run_id and again.status is RunStatus.COMPLETED
    assert helpdesk.calls == 6

    # A new runner with an empty store (a restart without a durable store) runs everything
    # again; the run ids come from the documents' content, so the idempotency keys repeat and
    # the helpdesk opens no duplicate.
    _, rerun = await run_batch()
    assert {doc: rerun[doc].run_id for doc in COMPLETED} == {
        doc: runs[doc].run_id for doc in COMPLETED
    }
    assert helpdesk.calls == 6 + len(COMPLETED)
    assert len(helpdesk.tickets()) == 6


async def test_a_reviewer_settles_an_ambiguous_ticket(helpdesk):
    runner, runs = await run_batch()
    charged_twice = runs["07_charged_twice.eml"]
    settled = await runner.decide(
        charged_twice.reviews[0].review_id,
        ReviewDecision.edit("billing", reviewer="agent@larkspur", reason="a duplicate charge"),
    )
    assert settled.status is RunStatus.COMPLETED
    assert settled.outputs["category"] == "billing"
    assert settled.outputs["details"].order_id == "LH-48390"
    (filed,) = [t for t in helpdesk.tickets() if t["subject"] == "Charged twice for one order"]
    assert filed["queue"] == "billing" and filed["status"] == "open"


def test_read_ticket_reads_each_channel():
    read = triage.read_ticket
    texts = {d.id: d for d in documents()}

    email = read(State(texts["01_refund_cracked_kettle.eml"]))
    assert (email.channel, email.sender_name, email.sender_email) == (
        "email",
        "Marta Kowalczyk",
        "marta.kowalczyk@example.org",
    )
    assert email.subject == "Refund for cracked kettle, order LH-48213"
    assert "Refund amount: €89.90" in email.body and "Message-ID" not in email.body

    form = read(State(texts["05_account_locked_after_email_change.json"]))
    assert (form.channel, form.sender_email) == ("web_form", "tomas.rivera@example.com")

    note = read(State(texts["04_bug_checkout_button_android.md"]))
    assert (note.channel, note.subject, note.sender_email) == (
        "note",
        "Checkout button does nothing in the Android app",
        None,
    )


def test_the_graph_draws_every_node_and_route():
    mermaid = triage.pipeline.to_mermaid()
    assert mermaid.startswith("flowchart TD\n")
    for node in (
        'ticket{{"rule: ticket"}}',
        'category("classify: category · gate 0.7")',
        'details("extract: details · gate 0.8")',
        'completeness{{"rule: completeness"}}',
        'ask_for_info("draft: ask_for_info")',
        'refund_approval[/"review: refund_approval · of details"/]',
        'reply("draft: reply")',
        'create_ticket[["action: create_ticket"]]',
    ):
        assert f"    {node}\n" in mermaid
    for edge in (
        "__start__ --> ticket",
        'completeness -->|"incomplete"| ask_for_info',
        'completeness -->|"complete"| refund_approval',
        "reply --> create_ticket",
        "ask_for_info --> create_ticket",
    ):
        assert f"    {edge}\n" in mermaid
    assert set(triage.pipeline.nodes) == {
        "ticket",
        "category",
        "details",
        "completeness",
        "ask_for_info",
        "refund_approval",
        "reply",
        "create_ticket",
    }


async def test_documents_loaded_as_the_cli_loads_them_end_the_same_way(helpdesk):
    inputs = pytest.importorskip("handrail.inputs")
    items = inputs.load_documents([TRIAGE / "documents"])
    runner = Runner(triage.pipeline, model=FakeModel())
    records = await runner.run_many(items)
    assert {Path(r.document_id).name: r.status for r in records} == EXPECTED


README = (TRIAGE / "README.md").read_text(encoding="utf-8")


def test_the_readme_graph_is_the_pipeline_graph():
    (drawn,) = re.findall(r"```mermaid\n(.*?)```", README, re.S)
    assert drawn == triage.pipeline.to_mermaid()


def test_the_readme_python_runs(tmp_path, monkeypatch, capsys):
    # Run from a scratch folder that sees the repository's examples, so the helpdesk file the
    # example writes lands in tmp_path/.handrail.
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    (block,) = re.findall(r"```python\n(.*?)```", README, re.S)
    exec(compile(block, "examples/support_triage/README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[:10] == [f"{doc:44} {status}" for doc, status in EXPECTED.items()]
    assert printed[10:] == [
        "espresso machine: completed ticket LH-T0006",
        "charged twice: completed in the billing queue",
    ]
    filed = json.loads((tmp_path / ".handrail" / "support_triage_helpdesk.json").read_text())
    assert len(filed) == 7
