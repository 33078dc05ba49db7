"""Happy path: classify -> extract -> rule -> draft, all confident."""

from pathlib import Path

from pydantic import BaseModel

from handrail import Classify, Draft, Extract, FakeModel, PipelineBuilder, Reply, Rule


class Order(BaseModel):
    order_id: str
    amount: float


def total_with_tax(state):
    """Adds 20% tax to the order amount."""
    return round(state["order"].amount * 1.2, 2)


pipeline = (
    PipelineBuilder("happy", prompts=Path(__file__).parent / "prompts")
    .add(Classify("category", labels=["refund", "bug", "question"], prompt="classify_ticket.md"))
    .add(Extract("order", Order, prompt="extract_order.md"), after="category")
    .add(Rule("with_tax", total_with_tax), after="order")
    .add(Draft("reply", prompt="draft_reply.md"), after="with_tax")
    .build()
)


def model() -> FakeModel:
    return FakeModel(
        {
            "category": Reply("refund", confidence=0.97),
            "order": Reply(
                {"order_id": "A-17", "amount": 100.0},
                field_confidence={"order_id": 0.99, "amount": 0.95},
            ),
            "reply": Reply("Dear customer, your refund for A-17 is on its way."),
        }
    )
