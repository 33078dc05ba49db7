"""Invoices and credit notes for the review inbox: an `Extract` whose output has a nested model, a
list of models, an enum, a `Literal`, a date, numbers and an optional field, answered by a scripted
`FakeModel` bound to the node (so `handrail run TARGET` uses it whatever `--model` says).

Every document stops for review: the model is unsure of one field (below the gate's 0.8), and
for the invoices it misreads the total, so the `total_adds_up` check fails too. `write_documents`
puts the documents (text invoices and e-mails) in a folder for `handrail run`.

A purchase-order number must start with `PO-` (a validator the form cannot know about), so a
browser can submit an edit the schema refuses: the 422 the inbox must show at the field.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from handrail import Escalation, Extract, FakeModel, Gate, PipelineBuilder, Reply, Rule
from handrail.checks import sums_to
from handrail.core.model import ModelRequest
from handrail.core.records import ReviewPolicy

QUEUE = "payables"
LEADS = "payables-leads"
ACCEPT = 0.8


class Currency(StrEnum):
    EUR = "EUR"
    GBP = "GBP"
    USD = "USD"


class Address(BaseModel):
    street: str
    city: str
    postcode: str


class Line(BaseModel):
    description: str
    quantity: int = Field(ge=1)
    amount: float


class Invoice(BaseModel):
    kind: Literal["invoice", "credit_note"]
    vendor: str
    number: str
    issued: date
    currency: Currency
    address: Address
    lines: list[Line]
    total: float
    po_number: str | None = None

    @field_validator("po_number")
    @classmethod
    def _po_prefix(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("PO-"):
            raise ValueError("a purchase-order number starts with PO-, e.g. PO-7781")
        return value


@dataclass(frozen=True, kw_only=True)
class Source:
    """One document and what the scripted model answers for it."""

    filename: str
    text: str
    answer: dict[str, Any]
    """The model's (partly wrong) output."""
    unsure: dict[str, float]
    """Field confidences below the gate (every other field gets 0.97)."""


def _invoice(
    *,
    vendor: str,
    number: str,
    issued: date,
    currency: Currency,
    street: str,
    city: str,
    postcode: str,
    lines: list[tuple[str, int, float]],
    po_number: str | None,
    misread_total: float,
) -> Source:
    total = round(sum(amount for _, _, amount in lines), 2)
    rows = "\n".join(f"{d:<34}{q:>5}{a:>14,.2f}" for d, q, a in lines)
    po = f"PO number: {po_number}\n" if po_number else ""
    text = (
        f"INVOICE\n\n{vendor}\n{street}\n{postcode} {city}\n\n"
        f"Invoice number: {number}\nInvoice date: {issued:%d %B %Y}\n{po}\n"
        f"{'Description':<34}{'Qty':>5}{'Amount':>14}\n{rows}\n\n"
        f"Total due ({currency.value}): {total:,.2f}\n\n"
        "Payment within 30 days to the account on file. Thank you for your business.\n"
    )
    answer = {
        "kind": "invoice",
        "vendor": vendor,
        "number": number,
        "issued": issued.isoformat(),
        "currency": currency.value,
        "address": {"street": street, "city": city, "postcode": postcode},
        "lines": [{"description": d, "quantity": q, "amount": a} for d, q, a in lines],
        "total": misread_total,
        "po_number": po_number,
    }
    return Source(
        filename=f"invoice-{number}.txt", text=text, answer=answer, unsure={"total": 0.41}
    )


def _credit_note_mail(
    *, vendor: str, sender: str, number: str, issued: date, amount: float, order: str
) -> Source:
    text = textwrap.dedent(
        f"""\
        From: Accounts <{sender}>
        To: payables@example.com
        Subject: Credit note {number} for order {order}
        Date: {issued:%a, %d %b %Y} 09:12:00 +0000
        Content-Type: text/plain; charset=utf-8

        Hello,

        please find below our credit note {number} of {issued:%d %B %Y} for the two damaged
        office chairs on your order {order}.

        Amount credited: EUR {amount:,.2f}

        The amount will be set against your next invoice.

        Kind regards,
        {vendor}
        Hafenstrasse 8, 20457 Hamburg
        """
    )
    answer = {
        "kind": "credit_note",
        "vendor": vendor,
        "number": number,
        "issued": (issued - timedelta(days=1)).isoformat(),  # the model took another date
        "currency": "EUR",
        "address": {"street": "Hafenstrasse 8", "city": "Hamburg", "postcode": "20457"},
        "lines": [{"description": "Office chair, damaged", "quantity": 2, "amount": amount}],
        "total": amount,
        "po_number": None,
    }
    return Source(
        filename=f"credit-{number}.eml",
        text=text,
        answer=answer,
        unsure={"issued": 0.55, "po_number": 0.62},
    )


SOURCES: tuple[Source, ...] = (
    _invoice(
        vendor="Harbour & Finch Ltd.",
        number="HF-2291",
        issued=date(2026, 11, 14),
        currency=Currency.GBP,
        street="12 Quay Street",
        city="Bristol",
        postcode="BS1 4DJ",
        lines=[("Oak desk, 160 cm", 2, 1180.0), ("Cable trays", 4, 240.0)],
        po_number="PO-7781",
        misread_total=1240.0,
    ),
    _credit_note_mail(
        vendor="Northwind Supplies GmbH",
        sender="accounts@northwind-supplies.example",
        number="CN-0412",
        issued=date(2026, 11, 17),
        amount=318.5,
        order="5531",
    ),
    _invoice(
        vendor="Alder Print Co.",
        number="AP-10734",
        issued=date(2026, 11, 20),
        currency=Currency.USD,
        street="400 Mill Road",
        city="Portland",
        postcode="97209",
        lines=[("Brochures, A5, 2000 pcs", 1, 860.0), ("Design hours", 6, 540.0)],
        po_number=None,
        misread_total=1300.0,
    ),
    _invoice(
        vendor="Kestrel Logistics B.V.",
        number="KL-55012",
        issued=date(2026, 11, 23),
        currency=Currency.EUR,
        street="Havenweg 31",
        city="Rotterdam",
        postcode="3089 JK",
        lines=[("Pallet storage, November", 14, 392.0), ("Handling", 3, 87.5)],
        po_number="PO-8120",
        misread_total=497.5,
    ),
    _invoice(
        vendor="Mossgrove Catering",
        number="MC-3307",
        issued=date(2026, 11, 26),
        currency=Currency.GBP,
        street="5 Tanner Row",
        city="York",
        postcode="YO1 6JB",
        lines=[("Lunch for 24, board meeting", 24, 396.0), ("Coffee service", 2, 64.0)],
        po_number="PO-8164",
        misread_total=406.0,
    ),
    _invoice(
        vendor="Bluefin IT Services LLC",
        number="BF-90211",
        issued=date(2026, 11, 28),
        currency=Currency.USD,
        street="1200 Harbor Blvd",
        city="Oakland",
        postcode="94607",
        lines=[("Laptop setup", 5, 625.0), ("Licences, annual", 5, 1495.0)],
        po_number="PO-8177",
        misread_total=2210.0,
    ),
)

_BY_NUMBER = {s.answer["number"]: s for s in SOURCES}
_NUMBER = re.compile(r"\b(?:Invoice number: |credit note )([A-Z]{2}-\d+)")


def answer(request: ModelRequest) -> Reply:
    """The scripted answer for the document in `request` (found by its invoice/credit number)."""
    text = "\n".join(m.content for m in request.messages if m.role == "user")
    found = _NUMBER.search(text)
    if found is None or found.group(1) not in _BY_NUMBER:
        raise AssertionError("inbox_invoice: a document this fixture does not know")
    source = _BY_NUMBER[found.group(1)]
    confidence = {name: 0.97 for name in Invoice.model_fields} | source.unsure
    return Reply(dict(source.answer), field_confidence=confidence)


def write_documents(folder: Path, sources: tuple[Source, ...] = SOURCES) -> list[Path]:
    """The documents as files in `folder` (created), in `SOURCES` order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for source in sources:
        path = folder / source.filename
        path.write_text(source.text, encoding="utf-8")
        paths.append(path)
    return paths


def _book(state: Any) -> str:
    invoice = state["invoice"]
    return f"booked {invoice.kind} {invoice.number}: {invoice.total:.2f} {invoice.currency.value}"


model = FakeModel({"invoice": answer}, heuristic=False)

pipeline = (
    PipelineBuilder(
        "inbox_invoice",
        review=ReviewPolicy(
            queue=QUEUE, deadline=timedelta(hours=4), on_deadline=Escalation.to_queue(LEADS)
        ),
    )
    .add(
        Extract(
            "invoice",
            schema=Invoice,
            model=model,
            gate=Gate(accept=ACCEPT),
            checks=[sums_to("total", "lines")],
        )
    )
    .add(Rule("book", _book), after="invoice")
    .build()
)
