"""`examples/invoice_intake` runs offline with the heuristic `FakeModel` and does what its README
says: every document ends where the README says, for the reason it gives; the PDFs are read from
their text layer with their pages, the scan and the phone photo through OCR; the ledger `Action`
posts each approved invoice exactly once, also across a review decision, a repeated decision
and a second runner over the same documents; and a weak model's made-up values are caught.

The documents are read as `handrail run` reads the folder (`handrail.inputs`), so OCR runs here:
the `ocr` extra is needed (`pip install -e ".[ocr]"`), as in CI.
"""

from __future__ import annotations

import functools
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
from handrail.cli.main import main
from handrail.documents import LoadOptions
from handrail.exceptions import InputError
from handrail.inputs import load_documents

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "invoice_intake"


def load_example(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the schemas' annotations through it
    spec.loader.exec_module(module)
    return module


intake = load_example(EXAMPLE / "pipeline.py", "examples_invoice_intake")

EXPECTED = {
    "01_northgate_office_supplies.txt": RunStatus.COMPLETED,
    "02_brightwire_order_receipt.eml": RunStatus.COMPLETED,
    "03_severn_print_invoice.eml": RunStatus.COMPLETED,
    "04_northgate_credit_note.txt": RunStatus.COMPLETED,
    "05_harbour_finch_wrong_total.txt": RunStatus.NEEDS_REVIEW,
    "06_pinecrest_ambiguous_dates.txt": RunStatus.NEEDS_REVIEW,
    "07_dunmore_due_before_issue.txt": RunStatus.NEEDS_REVIEW,
    "08_kestrel_laptops_over_limit.txt": RunStatus.NEEDS_REVIEW,
    "09_kestrel_wrong_po.eml": RunStatus.NEEDS_REVIEW,
    "10_apex_unknown_supplier.eml": RunStatus.NEEDS_REVIEW,
    "11_garbled_scan.txt": RunStatus.FAILED,
    "12_empty_upload.txt": RunStatus.FAILED,
    "13_severn_print_boards.pdf": RunStatus.COMPLETED,
    "14_brightwire_meeting_room_rewire.pdf": RunStatus.NEEDS_REVIEW,
    "15_dunmore_march_scan.pdf": RunStatus.COMPLETED,
    "16_harbour_finch_lunch_photo.jpg": RunStatus.COMPLETED,
}
COMPLETED = sorted(d for d, s in EXPECTED.items() if s is RunStatus.COMPLETED)


@functools.cache
def documents() -> tuple[Document | InputError, ...]:
    """The folder as `handrail run` reads it: text and e-mails as they are, the PDFs' text layer
    with its pages, the scan and the photo through OCR (seconds each: read once), and the empty
    upload as the `InputError` that fails its run. Ids are the files' paths."""
    return tuple(load_documents([EXAMPLE / "documents"]))


def document(name: str) -> Document:
    (found,) = [d for d in documents() if isinstance(d, Document) and Path(d.id).name == name]
    return found


@pytest.fixture
def ledger(tmp_path, monkeypatch):
    """The example's ledger, writing to a file of this test's own."""
    monkeypatch.setattr(intake.ledger, "path", tmp_path / "ledger.json")
    monkeypatch.setattr(intake.ledger, "calls", 0)
    return intake.ledger


async def run_batch(model: FakeModel | None = None) -> tuple[Runner, dict[str, RunRecord]]:
    runner = Runner(intake.pipeline, model=model or FakeModel())
    records = await runner.run_many(documents())
    return runner, {Path(r.document_id).name: r for r in records}


def reasons(record: RunRecord) -> list[tuple[str | None, str | None, str | None]]:
    """(kind, check, field) per reason of the run's one pending review."""
    (review,) = record.reviews
    return [(r.kind, r.check, r.field) for r in review.reasons]


async def test_every_document_ends_where_the_readme_says(ledger):
    _, runs = await run_batch()
    assert {doc: run.status for doc, run in runs.items()} == EXPECTED


async def test_what_is_posted_to_the_ledger(ledger):
    await run_batch()
    entries = {e["invoice_number"]: e for e in ledger.entries()}
    assert set(entries) == {
        "NOS-4471",
        "BW-778120",
        "SPC-25-0388",
        "CN-0193",
        "SPC-25-0412",
        "DC/25/0331",
        "HF-2025-0246",
    }
    for entry in entries.values():
        del entry["entry"], entry["idempotency_key"]  # depend on the batch's order
    northgate = entries["NOS-4471"]
    assert northgate == {
        "kind": "invoice",
        "supplier_id": "S-001",
        "supplier": "Northgate Office Supplies Ltd",
        "invoice_number": "NOS-4471",
        "invoice_date": "2025-03-03",
        "due_date": "2025-04-02",
        "po_number": "PO-2025-0117",
        "currency": "GBP",
        "net": 549.5,
        "tax": 109.9,
        "total": 659.4,
        "approval": "not_required",
    }
    # The receipt names no currency, no due date and no net: GBP, and nothing made up.
    receipt = entries["BW-778120"]
    assert (receipt["currency"], receipt["due_date"], receipt["net"], receipt["tax"]) == (
        "GBP",
        None,
        None,
        None,
    )
    assert (receipt["supplier_id"], receipt["total"]) == ("S-002", 86.34)
    # The credit note goes in as a credit, below zero, with no approval needed.
    credit = entries["CN-0193"]
    assert (credit["kind"], credit["total"], credit["tax"]) == ("credit_note", -226.8, -37.8)
    assert entries["SPC-25-0388"]["due_date"] == "2025-03-21"
    # The PDF, read from its text layer, posts like the pasted text.
    assert entries["SPC-25-0412"] == {
        "kind": "invoice",
        "supplier_id": "S-007",
        "supplier": "Severn Print & Copy Ltd",
        "invoice_number": "SPC-25-0412",
        "invoice_date": "2025-03-18",
        "due_date": "2025-04-01",
        "po_number": None,
        "currency": "GBP",
        "net": 289.1,
        "tax": 57.82,
        "total": 346.92,
        "approval": "not_required",
    }
    # The scan and the photo, read by OCR: the same numbers as printed, dates that parse, the
    # supplier found (the photo's by name or, where OCR runs the name together, VAT number).
    read_by_ocr = {
        number: (e["supplier_id"], e["invoice_date"], e["due_date"], e["net"], e["tax"], e["total"])
        for number, e in entries.items()
        if number in ("DC/25/0331", "HF-2025-0246")
    }
    assert read_by_ocr == {
        "DC/25/0331": ("S-006", "2025-03-31", "2025-04-14", 385.5, 77.1, 462.6),
        "HF-2025-0246": ("S-003", "2025-03-26", "2025-04-09", 175.0, 35.0, 210.0),
    }


async def test_the_model_sees_the_invoice_not_the_email_headers(ledger):
    model = FakeModel()
    runner = Runner(intake.pipeline, model=model)
    record = await runner.run(document("02_brightwire_order_receipt.eml"))
    (call,) = model.calls_for("invoice")
    user = call.messages[-1].content
    assert user.startswith("Thanks for your order, Alder & Quay.")
    assert "Message-ID" not in user and "Date: Thu" not in user
    assert '"invoice_number"' in call.messages[0].content  # the schema is in the prompt
    assert record.outputs["incoming"].sender == "orders@brightwire.example"
    # The email's Date header is not the order date.
    assert record.outputs["invoice"].invoice_date == "6 March 2025"


async def test_checks_that_disagree_send_the_invoice_to_a_person(ledger):
    _, runs = await run_batch()

    wrong_total = runs["05_harbour_finch_wrong_total.txt"]
    assert reasons(wrong_total) == [
        ("check", "total_adds_up", None),
        ("field_low_confidence", "total_adds_up", "subtotal"),
        ("field_low_confidence", "total_adds_up", "tax"),
        ("field_low_confidence", "total_adds_up", "total"),
    ]
    review = wrong_total.reviews[0]
    assert review.node == "invoice" and review.output.total == 459.0
    assert review.reasons[0].message == (
        "`total` 459.00 is not `subtotal` 412.50 + `tax` 82.50 = 495.00 (off by 36.00)"
    )
    assert review.reasons[3].message == (
        "field `total` confidence 0.50 < 0.8 (capped by check `total_adds_up`)"
    )
    capped = {f: c.value for f, c in review.field_confidence.items() if c.source == "checks"}
    assert capped == {"subtotal": 0.5, "tax": 0.5, "total": 0.5}

    dates = runs["06_pinecrest_ambiguous_dates.txt"]
    assert reasons(dates) == [
        ("check", "invoice_date_parses", None),
        ("check", "due_date_parses", None),
        ("field_low_confidence", "invoice_date_parses", "invoice_date"),
        ("field_low_confidence", "due_date_parses", "due_date"),
    ]
    assert [r.message for r in dates.reviews[0].reasons[:2]] == [
        "`invoice_date` '04/03/2025' is ambiguous: 4 March 2025 (day first) or 3 April 2025 "
        "(month first)",
        "`due_date` '05/03/2025' is ambiguous: 5 March 2025 (day first) or 3 May 2025 "
        "(month first)",
    ]

    order = runs["07_dunmore_due_before_issue.txt"]
    assert reasons(order)[0] == ("check", "due_date_not_before_invoice_date", None)
    assert order.reviews[0].reasons[0].message == (
        "`due_date` 14 February 2025 is before `invoice_date` 28 February 2025"
    )
    # Nothing after the extraction ran: no supplier lookup, no posting.
    for doc in ("05_harbour_finch_wrong_total.txt", "06_pinecrest_ambiguous_dates.txt"):
        assert set(runs[doc].outputs) == {"incoming"}


async def test_the_supplier_rule_and_the_approval_gate(ledger):
    _, runs = await run_batch()

    laptops = runs["08_kestrel_laptops_over_limit.txt"]
    (review,) = laptops.reviews
    assert (review.node, review.target, review.output.total) == ("approval", "invoice", 3178.8)
    assert [(r.kind, r.message) for r in review.reasons] == [
        (
            "review_node",
            "total 3,178.80 GBP is above the 1,000 approval limit: a budget holder approves it "
            "before it is posted",
        )
    ]
    assert laptops.outputs["supplier"].po_number == "PO-2025-0124"
    assert laptops.outputs["supplier_check"] == "not_required"

    # The electrician's two-page PDF: the total is on page 2, and the check that found the
    # values in the document says where.
    rewire = runs["14_brightwire_meeting_room_rewire.pdf"]
    (review,) = rewire.reviews
    assert (review.node, review.output.total) == ("approval", 3705.84)
    assert review.reasons[0].message.startswith("total 3,705.84 GBP is above the 1,000")
    (extract,) = [s for s in rewire.steps if s.node == "invoice"]
    (found,) = [c for c in extract.checks if c.name == "vendor_invoice_number_total_in_document"]
    assert found.passed
    assert found.details["pages"] == {"vendor": [1, 2], "invoice_number": [1, 2], "total": [2]}

    wrong_po = runs["09_kestrel_wrong_po.eml"].reviews[0]
    assert (wrong_po.node, wrong_po.target) == ("supplier_check", "supplier")
    assert [r.message for r in wrong_po.reasons] == [
        "purchase order PO-2025-0117 was raised with Northgate Office Supplies Ltd, not "
        "Kestrel IT Services Ltd"
    ]

    apex = runs["10_apex_unknown_supplier.eml"].reviews[0]
    assert apex.output.supplier_id is None
    assert [r.message for r in apex.reasons] == [
        "Apex Facility Solutions Ltd (VAT number GB 913 4471 20) is not on the supplier list: "
        "set the supplier up and confirm their bank details by phone before paying"
    ]
    assert not any(e["invoice_number"] == "AFS-7731" for e in ledger.entries())


async def test_failures_name_their_cause_and_do_not_stop_the_batch(ledger):
    _, runs = await run_batch()

    garbled = runs["11_garbled_scan.txt"]
    assert garbled.error is not None and garbled.error.type == "OutputInvalid"
    (invoice,) = [s for s in garbled.steps if s.node == "invoice"]
    assert invoice.status is StepStatus.FAILED
    assert [(a.kind, a.outcome) for a in invoice.attempts] == [
        ("call", "invalid_output"),
        ("reask", "invalid_output"),
        ("reask", "invalid_output"),
    ]

    empty = runs["12_empty_upload.txt"]
    assert empty.error is not None and empty.error.type == "InputError"
    assert "is empty" in empty.error.message and empty.steps == ()
    assert len(ledger.entries()) == len(COMPLETED)


async def test_the_ledger_posts_each_approved_invoice_once(ledger):
    model = FakeModel()
    runner, runs = await run_batch(model)
    assert ledger.calls == len(ledger.entries()) == len(COMPLETED) == 7
    keys = {e["idempotency_key"]: e["entry"] for e in ledger.entries()}
    for doc in COMPLETED:
        assert runs[doc].outputs["post_invoice"] == keys[f"{runs[doc].run_id}:post_invoice"]

    # A budget holder approves the laptops: the run goes on from the gate and posts once;
    # nothing before the gate runs again.
    laptops = runs["08_kestrel_laptops_over_limit.txt"]
    calls_before = len(model.calls)
    approved = await runner.decide(
        laptops.reviews[0].review_id, ReviewDecision.approve(reviewer="ruth@alderquay")
    )
    assert approved.status is RunStatus.COMPLETED
    assert len(model.calls) == calls_before
    assert [s.node for s in approved.steps].count("post_invoice") == 1
    assert ledger.calls == 8 and len(ledger.entries()) == 8
    (entry,) = [e for e in ledger.entries() if e["invoice_number"] == "KIT-30571"]
    assert (entry["approval"], entry["total"], entry["entry"]) == (
        "approved",
        3178.8,
        approved.outputs["post_invoice"],
    )

    # The same decision again is refused, and running the document again returns the
    # finished run: the ledger hears nothing more.
    with pytest.raises(ReviewAlreadyDecided):
        await runner.decide(laptops.reviews[0].review_id, ReviewDecision.approve())
    again = await runner.run(document("08_kestrel_laptops_over_limit.txt"))
    assert again.run_id == approved.run_id and again.status is RunStatus.COMPLETED
    assert ledger.calls == 8

    # A new runner with an empty store runs everything again; the run ids come from the
    # documents' content, so the idempotency keys repeat and nothing is posted twice.
    _, rerun = await run_batch()
    assert {d: rerun[d].run_id for d in COMPLETED} == {d: runs[d].run_id for d in COMPLETED}
    assert ledger.calls == 8 + len(COMPLETED)
    assert len(ledger.entries()) == 8


async def test_a_reviewer_corrects_the_total_and_the_invoice_is_posted(ledger):
    runner, runs = await run_batch()
    wrong_total = runs["05_harbour_finch_wrong_total.txt"]
    corrected = wrong_total.reviews[0].output.model_dump() | {"total": 495.0}
    done = await runner.decide(
        wrong_total.reviews[0].review_id,
        ReviewDecision.edit(corrected, reviewer="sam@alderquay", reason="transposed digits"),
    )
    assert done.status is RunStatus.COMPLETED
    (entry,) = [e for e in ledger.entries() if e["invoice_number"] == "HF-2025-0219"]
    assert (entry["supplier_id"], entry["total"], entry["approval"]) == (
        "S-003",
        495.0,
        "not_required",
    )


async def test_a_reviewer_settles_the_american_dates(ledger):
    runner, runs = await run_batch()
    dates = runs["06_pinecrest_ambiguous_dates.txt"]
    settled = dates.reviews[0].output.model_dump() | {
        "invoice_date": "2025-04-03",
        "due_date": "2025-05-03",
    }
    done = await runner.decide(dates.reviews[0].review_id, ReviewDecision.edit(settled))
    assert done.status is RunStatus.COMPLETED
    (entry,) = [e for e in ledger.entries() if e["invoice_number"] == "PCA-100482"]
    assert (entry["invoice_date"], entry["due_date"], entry["currency"], entry["total"]) == (
        "2025-04-03",
        "2025-05-03",
        "USD",
        588.0,
    )


async def test_a_rejected_supplier_posts_nothing(ledger):
    runner, runs = await run_batch()
    apex = runs["10_apex_unknown_supplier.eml"]
    done = await runner.decide(
        apex.reviews[0].review_id,
        ReviewDecision.reject("not a supplier of ours; bank-detail change scam"),
    )
    assert done.status is RunStatus.REJECTED
    assert "post_invoice" not in done.outputs
    assert len(ledger.entries()) == len(COMPLETED)


async def test_a_weak_model_that_makes_values_up_is_caught(ledger):
    # A small model reads the Northgate invoice but returns the total and vendor it imagined.
    made_up = {
        "vendor": "Northgate Stationers",
        "invoice_number": "NOS-4471",
        "invoice_date": "3 March 2025",
        "total": 695.4,
    }
    sure = dict.fromkeys(made_up, 0.9)
    model = FakeModel({"invoice": Reply(made_up, field_confidence=sure, source="logprobs")})
    record = await Runner(intake.pipeline, model=model).run(
        document("01_northgate_office_supplies.txt")
    )
    assert record.status is RunStatus.NEEDS_REVIEW
    assert reasons(record) == [
        ("check", "vendor_invoice_number_total_in_document", None),
        ("field_low_confidence", "vendor_invoice_number_total_in_document", "vendor"),
        ("field_low_confidence", "vendor_invoice_number_total_in_document", "total"),
    ]
    assert record.reviews[0].reasons[0].message == (
        "`vendor` 'Northgate Stationers', `total` 695.4 not found in the document"
    )
    # The invoice number it got right keeps the model's own number.
    assert record.reviews[0].field_confidence["invoice_number"].value == 0.9
    assert ledger.calls == 0

    # On the unreadable scan, an invented invoice stops at the same check instead of failing
    # or being posted.
    model = FakeModel({"invoice": Reply(made_up, field_confidence=sure, source="logprobs")})
    record = await Runner(intake.pipeline, model=model).run(document("11_garbled_scan.txt"))
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.reviews[0].reasons[0].message == (
        "`vendor` 'Northgate Stationers', `invoice_number` 'NOS-4471', `total` 695.4 not found "
        "in the document"
    )


def test_match_supplier_by_name_alias_or_vat_number():
    def match(**fields):
        invoice = intake.InvoiceFields(
            vendor="?", invoice_number="X-1", invoice_date="1 May 2025", total=1.0
        )
        state = State(Document(text="x", id="d"), {"invoice": invoice.model_copy(update=fields)})
        return intake.match_supplier(state)

    assert match(vendor="HARBOUR AND FINCH CATERING LIMITED").supplier_id == "S-003"
    assert match(vendor="Kestrel IT").supplier_id == "S-005"
    by_vat = match(vendor="K.I.T. Services", vat_number="GB558203614")
    assert (by_vat.supplier_id, by_vat.problems) == ("S-005", [])
    unknown = match(vendor="Kestrel Cleaning", po_number="PO-2025-0999")
    assert unknown.supplier_id is None
    assert unknown.problems == [
        "Kestrel Cleaning is not on the supplier list: set the supplier up and confirm their "
        "bank details by phone before paying",
        "purchase order PO-2025-0999 is not an open order",
    ]


def test_pdfs_are_read_with_their_pages_and_scans_through_ocr():
    severn = document("13_severn_print_boards.pdf")
    assert severn.media_type == "application/pdf"
    assert [(p.number, p.unit, p.text_from) for p in severn.pages] == [(1, "pt", "text")]
    # The text layer keeps a label and its value on one line (what the FakeModel reads), and a
    # table's row on one line with its columns apart.
    assert re.search(r"^Invoice number:\s+SPC-25-0412$", severn.text, re.M)
    row = r"^4\s+A1 mounted print on 5 mm foamboard, matt laminate\s+38\.00\s+152\.00$"
    assert re.search(row, severn.text, re.M)

    rewire = document("14_brightwire_meeting_room_rewire.pdf")
    assert [(p.number, p.text_from) for p in rewire.pages] == [(1, "text"), (2, "text")]
    (total,) = rewire.find("3,705.84")
    assert total.page == 2 and total.boxes

    # The scan has no text layer: its page is rendered and read by OCR, word by word.
    scan = document("15_dunmore_march_scan.pdf")
    (page,) = scan.pages
    assert (scan.media_type, page.text_from) == ("application/pdf", "ocr")
    assert page.words and all(0 < (w.confidence or 0) <= 1 for w in page.words)
    assert "DC/25/0331" in scan.text and "462.60" in scan.text

    photo = document("16_harbour_finch_lunch_photo.jpg")
    (page,) = photo.pages
    assert (photo.media_type, page.unit, page.text_from) == ("image/jpeg", "px", "ocr")
    assert (page.width, page.height) == (947, 792)
    assert "HF-2025-0246" in photo.text and "210.00" in photo.text


def test_without_ocr_the_scan_and_the_photo_fail_their_own_runs_saying_why():
    folder = EXAMPLE / "documents"
    names = (
        "13_severn_print_boards.pdf",
        "15_dunmore_march_scan.pdf",
        "16_harbour_finch_lunch_photo.jpg",
    )
    severn, scan, photo = load_documents(
        [folder / n for n in names], options=LoadOptions(ocr="never")
    )
    assert isinstance(severn, Document) and severn.pages[0].text_from == "text"
    for unread, name in ((scan, names[1]), (photo, names[2])):
        assert isinstance(unread, InputError)
        assert name in str(unread) and "--ocr auto" in str(unread)  # the file and the fix


async def test_the_scan_and_the_photo_post_the_same_with_the_other_ocr_engine(ledger):
    # The README's outcomes hold with either engine (RapidOCR and Tesseract err differently).
    other = next(e for e in ("rapidocr", "tesseract") if e != LoadOptions().ocr_engine)
    folder = EXAMPLE / "documents"
    names = ("15_dunmore_march_scan.pdf", "16_harbour_finch_lunch_photo.jpg")
    items = load_documents([folder / n for n in names], options=LoadOptions(ocr_engine=other))
    records = await Runner(intake.pipeline, model=FakeModel()).run_many(items)
    assert [r.status for r in records] == [RunStatus.COMPLETED] * 2
    posted = {
        e["invoice_number"]: (e["supplier_id"], e["invoice_date"], e["total"])
        for e in ledger.entries()
    }
    assert posted == {
        "DC/25/0331": ("S-006", "2025-03-31", 462.6),
        "HF-2025-0246": ("S-003", "2025-03-26", 210.0),
    }


def test_the_readme_command_runs_over_the_folder(tmp_path, monkeypatch, capsys):
    # `handrail run ... --model fake`, as the README says, from a folder of its own (the ledger
    # stand-in writes under the working directory).
    monkeypatch.chdir(tmp_path)
    target = f"{EXAMPLE / 'pipeline.py'}:pipeline"
    argv = ["run", target, str(EXAMPLE / "documents"), "--model", "fake", "--json"]
    assert main([*argv, "--db", str(tmp_path / "runs.db")]) == 0  # failed documents included
    runs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {Path(r["document"]).name: r["status"] for r in runs} == {
        doc: status.value for doc, status in EXPECTED.items()
    }
    posted = json.loads((tmp_path / ".handrail" / "invoice_intake_ledger.json").read_text())
    assert len(posted) == len(COMPLETED)


README = (EXAMPLE / "README.md").read_text(encoding="utf-8")


def test_the_readme_graph_is_the_pipeline_graph():
    (drawn,) = re.findall(r"```mermaid\n(.*?)```", README, re.S)
    assert drawn == intake.pipeline.to_mermaid()


def test_the_readme_table_lists_every_document_with_its_status():
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \|", README, re.M)
    listed = {doc: status for doc, status in rows if doc in EXPECTED}
    assert list(listed) == list(EXPECTED)
    for doc, status in listed.items():
        assert EXPECTED[doc].value.replace("_", " ") in status.replace("*", ""), doc


def test_the_readme_python_runs(tmp_path, monkeypatch, capsys):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    (block,) = re.findall(r"```python\n(.*?)```", README, re.S)
    exec(compile(block, "examples/invoice_intake/README.md", "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.splitlines()
    assert printed[: len(EXPECTED)] == [f"{doc:40} {status}" for doc, status in EXPECTED.items()]
    posted = json.loads((tmp_path / ".handrail" / "invoice_intake_ledger.json").read_text())
    assert printed[len(EXPECTED) :] == [
        "laptops: completed posted as AP-0008",
        "catering: completed posted as AP-0009",
    ]
    assert [(e["entry"], e["invoice_number"], e["total"]) for e in posted[7:]] == [
        ("AP-0008", "KIT-30571", 3178.8),
        ("AP-0009", "HF-2025-0219", 495.0),
    ]
