"""Support-ticket triage for Larkspur Home, a small online shop for kitchen and home goods.

Every ticket (an email, a web-form export, an in-app bug report, a pasted note) is read,
classified, its facts extracted and checked against what its category needs, answered with a
suggested reply, and filed in the helpdesk. A person steps in when the classifier is unsure and
before any refund above REFUND_APPROVAL_LIMIT is promised.

    handrail run examples/support_triage/pipeline.py:pipeline examples/support_triage/documents \
        --model fake
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import json
import re
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from handrail import (
    Action,
    Check,
    CheckResult,
    Classify,
    Draft,
    Extract,
    Gate,
    PipelineBuilder,
    Review,
    Route,
    Rule,
    State,
)

PROMPTS = Path(__file__).resolve().parents[2] / "prompts" / "support_triage"
REFUND_APPROVAL_LIMIT = 500.0
"""Refunds above this amount need a person's approval before the reply promises them."""


# --- reading the ticket -------------------------------------------------------------------------


class Ticket(BaseModel):
    """A ticket as it arrived, whatever the channel."""

    channel: str
    """`email`, `web_form` or `note`."""
    subject: str
    body: str
    sender_name: str | None = None
    sender_email: str | None = None


_HEADER_BLOCK = re.compile(r"(?:[A-Za-z-]+:[^\n]*\n)+\n")


def read_ticket(state: State) -> Ticket:
    """Reads an email, a web-form export (JSON) or a note into a ticket."""
    text = state.text
    # `handrail run` hands an .eml over as its Subject/From/Date headers and text body; a raw
    # .eml parses the same way.
    if text.lstrip().startswith("{"):
        form = json.loads(text)
        return Ticket(
            channel="web_form",
            subject=form.get("subject", ""),
            body=form.get("message", ""),
            sender_name=form.get("name") or None,
            sender_email=form.get("email") or None,
        )
    if _HEADER_BLOCK.match(text) and re.search(r"^From:", text, re.MULTILINE):
        message = email.message_from_bytes(text.encode(), policy=email.policy.default)
        name, address = email.utils.parseaddr(str(message["From"]))
        return Ticket(
            channel="email",
            subject=str(message["Subject"] or ""),
            body=message.get_content().strip(),
            sender_name=name or None,
            sender_email=address or None,
        )
    first, _, rest = text.strip().partition("\n")
    return Ticket(channel="note", subject=first.lstrip("# ").strip(), body=rest.strip())


# --- what the model extracts --------------------------------------------------------------------
# "(also: ...)" lists the labels customers use for a field; the prompt shows the schema, and the
# offline FakeModel uses these aliases to find `Key: value` lines.


class TicketDetails(BaseModel):
    """The facts an agent needs to act on a ticket."""

    email: str = Field(
        description="Address to reply to (also: Email, E-mail, Email address, Reply to)"
    )
    customer_name: str | None = Field(
        default=None, description="The customer's full name (also: Customer, Name)"
    )
    order_id: str | None = Field(
        default=None,
        description="The shop's order number, like LH-48213 (also: Order, Order number, Order no)",
    )
    amount: float | None = Field(
        default=None,
        description=(
            "The money in question: the refund asked for or the charge disputed "
            "(also: Amount, Refund amount, Amount paid, Charged)"
        ),
    )
    product: str | None = Field(
        default=None, description="The product or app concerned (also: Item, App)"
    )


# --- rules, checks and the helpdesk -------------------------------------------------------------

NEEDS: dict[str, dict[str, str]] = {
    "refund": {"order_id": "the order number", "amount": "the amount to refund"},
    "billing": {"order_id": "the order number on the invoice or charge"},
    "bug": {"product": "which product or app version is affected"},
    "account": {},
    "other": {},
}
"""What each category needs before an agent can act, as the question to ask the customer."""


def completeness(state: State) -> Route:
    """Routes to `incomplete`, with what is missing, when the ticket lacks what it needs."""
    details = state["details"]
    needed = NEEDS[state["category"]]
    missing = [ask for field, ask in needed.items() if getattr(details, field) is None]
    return Route("incomplete" if missing else "complete", output=missing)


def is_large_refund(state: State) -> bool:
    return state["category"] == "refund" and (state["details"].amount or 0) > REFUND_APPROVAL_LIMIT


def large_refund_message(state: State) -> str:
    amount = state["details"].amount or 0
    return (
        f"refund of {amount:g} is above {REFUND_APPROVAL_LIMIT:g}: approve it before we promise it"
    )


_MONEY = re.compile(r"(?:[$€£]|\b(?:USD|EUR|GBP)\s?)(\d[\d,]*(?:\.\d+)?)")


def no_unasked_amounts(reply: str, state: State) -> CheckResult:
    """The reply promises no sum above what the customer asked for."""
    asked = state["details"].amount
    promised = [float(m.replace(",", "")) for m in _MONEY.findall(reply)]
    over = [p for p in promised if asked is None or p > asked]
    if not over:
        return CheckResult(passed=True)
    limit = "named no amount" if asked is None else f"asked about {asked:g}"
    return CheckResult(passed=False, message=f"the reply mentions {over} but the customer {limit}")


def cites_order_id(reply: str, state: State) -> CheckResult:
    """The reply quotes the order number, so the customer knows which order we mean."""
    order_id = state["details"].order_id
    if order_id is None or order_id in reply:
        return CheckResult(passed=True)
    return CheckResult(passed=False, message=f"the reply does not quote order {order_id}")


class Helpdesk:
    """A stand-in for the helpdesk's API: tickets kept in a JSON file.

    Like an API that honours an `Idempotency-Key` header, filing twice with the same key returns
    the ticket filed first instead of opening a duplicate. `calls` counts requests.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0
        self._lock = threading.Lock()

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket filed, oldest first."""
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def file(self, key: str, ticket: dict[str, Any]) -> str:
        """Opens a ticket, unless one was filed with this key; returns its number."""
        with self._lock:
            self.calls += 1
            tickets = self.tickets()
            for filed in tickets:
                if filed["idempotency_key"] == key:
                    return str(filed["number"])
            number = f"LH-T{len(tickets) + 1:04d}"
            tickets.append({"number": number, "idempotency_key": key, **ticket})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            scratch = self.path.with_suffix(".tmp")
            scratch.write_text(json.dumps(tickets, indent=2, ensure_ascii=False))
            scratch.replace(self.path)
            return number


helpdesk = Helpdesk(Path(".handrail") / "support_triage_helpdesk.json")


def create_ticket(state: State, idempotency_key: str) -> str:
    """Files the ticket with its suggested reply in the helpdesk."""
    answered = "reply" in state
    return helpdesk.file(
        idempotency_key,
        {
            "queue": state["category"],
            "status": "open" if answered else "waiting_on_customer",
            "subject": state["ticket"].subject,
            "details": state["details"].model_dump(),
            "suggested_reply": state["reply"] if answered else state["ask_for_info"],
        },
    )


# --- the pipeline -------------------------------------------------------------------------------

pipeline = (
    PipelineBuilder("support_triage", prompts=PROMPTS)
    .add(Rule("ticket", read_ticket))
    .add(
        Classify(
            "category",
            labels=["refund", "billing", "bug", "account", "other"],
            prompt="classify.md",
            gate=Gate(accept=0.7),  # below it, a person picks the queue
        ),
        after="ticket",
    )
    .add(Extract("details", TicketDetails, prompt="extract.md"), after="category")
    .add(Rule("completeness", completeness, routes=["complete", "incomplete"]), after="details")
    .add(Draft("ask_for_info", prompt="ask_for_info.md"), after="completeness", route="incomplete")
    .add(
        Review(
            "refund_approval",
            of="details",
            when=is_large_refund,
            message=large_refund_message,
        ),
        after="completeness",
        route="complete",
    )
    .add(
        Draft(
            "reply",
            prompt="reply.md",
            checks=[
                Check(no_unasked_amounts, on_fail="review"),
                Check(cites_order_id, on_fail="warn"),
            ],
        ),
        after="refund_approval",
    )
    .add(Action("create_ticket", create_ticket), after=["reply", "ask_for_info"])
    .build()
)
