"""Supplier-invoice intake for Alder & Quay, a small architecture practice in Bristol.

Invoices and receipts reach the practice as PDFs, scans, phone photos, emails and pasted text
(`handrail run` reads the PDFs' text layer and OCRs the scans and photos). Each one is
read, its fields extracted and checked against arithmetic and the calendar (the total is the
lines plus VAT, the dates are real and in order, the supplier, number and total are really in the
document), its supplier matched against the supplier list and any purchase-order number against
the open orders, and it is posted once to the accounts-payable ledger. A person steps in when a
check disagrees with the extraction, when the supplier or the purchase order does not match, and
before anything above APPROVAL_LIMIT is posted. The model may be weak: every number it gives is
checked before it reaches the ledger, and what does not add up waits for a person.

    handrail run examples/invoice_intake/pipeline.py:pipeline examples/invoice_intake/documents \
        --model fake
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from handrail import (
    Action,
    Extract,
    PipelineBuilder,
    Review,
    Rule,
    State,
    appears_in_document,
    date_parses,
    line_amounts,
    not_before,
    sums_to,
)
from handrail.checks import parse_date

PROMPTS = Path(__file__).resolve().parents[2] / "prompts" / "invoice_intake"
APPROVAL_LIMIT = 1000.0
"""Invoices above this total (in their own currency) need a budget holder's approval."""
HOME_CURRENCY = "GBP"
"""What an invoice that names no currency is in."""


# --- reading the document ----------------------------------------------------------------------


class Incoming(BaseModel):
    """A document as it arrived: an email's body, or the text of a scan or a paste."""

    channel: str
    """`email` or `text`."""
    text: str
    sender: str | None = None
    subject: str | None = None


_HEADER_BLOCK = re.compile(r"(?:[A-Za-z-]+:[^\n]*\n)+\n")


def read_incoming(state: State) -> Incoming:
    """Reads an email (raw, or as `handrail run` hands it over) or plain text."""
    text = state.text
    if _HEADER_BLOCK.match(text) and re.search(r"^From:", text, re.MULTILINE):
        message = email.message_from_bytes(text.encode(), policy=email.policy.default)
        _, address = email.utils.parseaddr(str(message["From"]))
        return Incoming(
            channel="email",
            text=message.get_content().strip(),
            sender=address or None,
            subject=str(message["Subject"] or "") or None,
        )
    return Incoming(channel="text", text=text.strip())


# --- what the model extracts -------------------------------------------------------------------
# "(also: ...)" lists the labels invoices print for a field; the prompt shows the schema, and the
# offline FakeModel uses these aliases to find `Key: value` lines.


class LineItem(BaseModel):
    """One line of the invoice."""

    description: str = Field(description="What was supplied, as printed")
    quantity: float | None = Field(default=None, description="How many (also: Qty)")
    unit_price: float | None = Field(
        default=None, description="The price of one, a number without the currency sign"
    )
    amount: float | None = Field(
        default=None, description="The line's total, a number without the currency sign"
    )


class InvoiceFields(BaseModel):
    """What accounts payable needs from a supplier invoice, receipt or credit note."""

    vendor: str = Field(
        description="The supplier's name as printed (also: Supplier, Seller, Sold by, Bill from)"
    )
    vat_number: str | None = Field(
        default=None,
        description="The supplier's VAT registration number (also: VAT no, VAT number, "
        "VAT reg no, VAT registration)",
    )
    invoice_number: str = Field(
        description="The invoice, receipt or credit note number, copied exactly (also: Invoice "
        "no, Invoice number, Invoice #, Receipt no, Order number, Credit note no)"
    )
    invoice_date: str = Field(
        description="The date of issue exactly as printed, not converted (also: Invoice date, "
        "Date of issue, Issue date, Order date, Credit note date, Date)"
    )
    due_date: str | None = Field(
        default=None,
        description="When payment is due, exactly as printed (also: Due date, Payment due, Due)",
    )
    po_number: str | None = Field(
        default=None,
        description="Our purchase-order number, if the invoice quotes one (also: PO number, "
        "Purchase order, Your order, PO)",
    )
    currency: str | None = Field(
        default=None, description="ISO code such as GBP, EUR or USD (also: Currency)"
    )
    lines: list[LineItem] | None = Field(default=None, description="The invoice's lines")
    subtotal: float | None = Field(
        default=None,
        description="The net amount before tax, when printed (also: Subtotal, Net total, Net)",
    )
    tax: float | None = Field(
        default=None,
        description="VAT or sales tax added to the net amount; null when prices include it "
        "(also: VAT, Sales tax, Tax, VAT total)",
    )
    total: float = Field(
        description="The amount to pay, a number; negative for a credit note (also: Total, "
        "Total due, Amount due, Balance due, Total paid, Total credit)"
    )


# --- the supplier list and the supplier rule ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Supplier:
    name: str
    vat_number: str | None = None
    aliases: tuple[str, ...] = ()


SUPPLIERS: dict[str, Supplier] = {
    "S-001": Supplier("Northgate Office Supplies Ltd", "GB 284 6613 09", ("Northgate",)),
    "S-002": Supplier("Brightwire Electrical Ltd", "GB 731 0458 22", ("Brightwire",)),
    "S-003": Supplier("Harbour & Finch Catering Ltd", "GB 402 9917 65", ("Harbour and Finch",)),
    "S-004": Supplier("Pinecrest Analytics, Inc.", None, ("Pinecrest",)),
    "S-005": Supplier("Kestrel IT Services Ltd", "GB 558 2036 14", ("Kestrel IT",)),
    "S-006": Supplier("Dunmore Cleaning Co.", "GB 190 7742 81", ("Dunmore Cleaning",)),
    "S-007": Supplier("Severn Print & Copy Ltd", "GB 613 5580 37", ("Severn Print",)),
}
"""The suppliers set up in accounts payable (with checked bank details), by supplier id."""

OPEN_PURCHASE_ORDERS: dict[str, str] = {
    "PO-2025-0117": "S-001",  # office chairs and a whiteboard
    "PO-2025-0124": "S-005",  # three laptops for the new starters
}
"""Purchase orders not yet fully invoiced, and the supplier each was raised with."""


class SupplierMatch(BaseModel):
    """Who the invoice is from, by our supplier list, and what does not match."""

    supplier_id: str | None
    """Our id for the supplier, or None when it is not on the list."""
    supplier: str | None
    """The name on our list."""
    po_number: str | None = None
    problems: list[str] = []
    """What a person must look at before the invoice is paid; empty when all matches."""


def _name_key(name: str) -> str:
    words = re.sub(r"[^\w\s]", " ", name.casefold().replace("&", " and ")).split()
    legal = {"ltd", "limited", "inc", "llc", "plc", "co", "company", "the"}
    return " ".join(w for w in words if w not in legal)


def _vat_key(vat: str | None) -> str:
    return re.sub(r"[^A-Z0-9]", "", (vat or "").upper())


def match_supplier(state: State) -> SupplierMatch:
    """Finds the supplier by name or VAT number, and checks a quoted purchase order is theirs."""
    invoice = state["invoice"]
    wanted, vat = _name_key(invoice.vendor), _vat_key(invoice.vat_number)
    found = next(
        (
            sid
            for sid, s in SUPPLIERS.items()
            if wanted in {_name_key(n) for n in (s.name, *s.aliases)}
            or (vat and vat == _vat_key(s.vat_number))
        ),
        None,
    )
    problems = []
    if found is None:
        on_file = f" (VAT number {invoice.vat_number})" if invoice.vat_number else ""
        problems.append(
            f"{invoice.vendor}{on_file} is not on the supplier list: set the supplier up and "
            "confirm their bank details by phone before paying"
        )
    po = invoice.po_number
    if po is not None:
        owner = OPEN_PURCHASE_ORDERS.get(po.strip().upper())
        if owner is None:
            problems.append(f"purchase order {po} is not an open order")
        elif found is not None and owner != found:
            problems.append(
                f"purchase order {po} was raised with {SUPPLIERS[owner].name}, "
                f"not {SUPPLIERS[found].name}"
            )
    return SupplierMatch(
        supplier_id=found,
        supplier=SUPPLIERS[found].name if found else None,
        po_number=po,
        problems=problems,
    )


def supplier_problems(state: State) -> bool:
    return bool(state["supplier"].problems)


def supplier_message(state: State) -> str:
    return "; ".join(state["supplier"].problems)


def over_limit(state: State) -> bool:
    return bool(state["invoice"].total > APPROVAL_LIMIT)


def approval_message(state: State) -> str:
    invoice = state["invoice"]
    currency = invoice.currency or HOME_CURRENCY
    return (
        f"total {invoice.total:,.2f} {currency} is above the {APPROVAL_LIMIT:,.0f} approval "
        "limit: a budget holder approves it before it is posted"
    )


# --- the accounts-payable ledger ---------------------------------------------------------------


class Ledger:
    """A stand-in for the accounting system's API: ledger entries kept in a JSON file.

    Posting with an idempotency key already used returns the entry posted first, as an API that
    honours an `Idempotency-Key` header does. `calls` counts requests.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0
        self._lock = threading.Lock()

    def entries(self) -> list[dict[str, Any]]:
        """Every entry posted, oldest first."""
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def post(self, key: str, entry: dict[str, Any]) -> str:
        """Posts the entry, unless one was posted with this key; returns the entry's number."""
        with self._lock:
            self.calls += 1
            entries = self.entries()
            earlier = [e["entry"] for e in entries if e["idempotency_key"] == key]
            if earlier:
                return str(earlier[0])
            number = f"AP-{len(entries) + 1:04d}"
            entries.append({"entry": number, "idempotency_key": key, **entry})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            scratch = self.path.with_suffix(".tmp")
            scratch.write_text(json.dumps(entries, indent=2, ensure_ascii=False))
            scratch.replace(self.path)
            return number


ledger = Ledger(Path(".handrail") / "invoice_intake_ledger.json")


def _iso(text: str | None) -> str | None:
    """The date as ISO 8601 when it parses unambiguously, else as printed (never a guess)."""
    if text is None:
        return None
    try:
        return parse_date(text).isoformat()
    except ValueError:
        return text


def post_invoice(state: State, idempotency_key: str) -> str:
    """Posts the invoice (or credit note) to accounts payable; returns the ledger entry."""
    invoice, supplier = state["invoice"], state["supplier"]
    return ledger.post(
        idempotency_key,
        {
            "kind": "credit_note" if invoice.total < 0 else "invoice",
            "supplier_id": supplier.supplier_id,
            "supplier": supplier.supplier or invoice.vendor,
            "invoice_number": invoice.invoice_number,
            "invoice_date": _iso(invoice.invoice_date),
            "due_date": _iso(invoice.due_date),
            "po_number": supplier.po_number,
            "currency": invoice.currency or HOME_CURRENCY,
            "net": invoice.subtotal,
            "tax": invoice.tax,
            "total": invoice.total,
            "approval": state["approval"],
        },
    )


# --- the pipeline ------------------------------------------------------------------------------

pipeline = (
    PipelineBuilder("invoice_intake", prompts=PROMPTS)
    .add(Rule("incoming", read_incoming))
    .add(
        Extract(
            "invoice",
            InvoiceFields,
            prompt="extract.md",
            checks=[
                sums_to("total", "subtotal", plus="tax"),
                sums_to("total", "lines", plus="tax", name="total_matches_lines"),
                line_amounts("lines"),
                date_parses("invoice_date"),
                date_parses("due_date"),
                not_before("due_date", "invoice_date"),
                appears_in_document("vendor", "invoice_number", "total"),
            ],
        ),
        after="incoming",
    )
    .add(Rule("supplier", match_supplier), after="invoice")
    .add(
        Review("supplier_check", of="supplier", when=supplier_problems, message=supplier_message),
        after="supplier",
    )
    .add(
        Review("approval", of="invoice", when=over_limit, message=approval_message),
        after="supplier_check",
    )
    .add(Action("post_invoice", post_invoice), after="approval")
    .build()
)
