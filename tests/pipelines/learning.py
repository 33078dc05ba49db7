"""Nodes that learn from reviews: a classifier and an extractor whose gates send every answer to
review (confidence 0.6 < 0.9), and the same classifier not opted in."""

from __future__ import annotations

from pydantic import BaseModel

from handrail import Classify, Examples, Extract, FakeModel, Gate, Pipeline, PipelineBuilder, Reply
from handrail.core.examples import ExampleSource

LABELS = ["card_lost", "card_arrival", "refund"]
GATE = Gate(accept=0.9)


class Order(BaseModel):
    order_id: str
    amount: float


def intents(*, learn: bool = True, examples: Examples | ExampleSource | None = None) -> Pipeline:
    return (
        PipelineBuilder("intents")
        .add(
            Classify(
                "intent",
                labels=LABELS,
                gate=GATE,
                learn_from_reviews=learn,
                examples=examples,
            )
        )
        .build()
    )


orders = (
    PipelineBuilder("orders")
    .add(Extract("order", Order, gate=GATE, learn_from_reviews=True))
    .build()
)


def model(label: str = "card_lost", confidence: float = 0.6) -> FakeModel:
    return FakeModel(
        {
            "intent": Reply(label, confidence=confidence),
            "order": Reply({"order_id": "A-1", "amount": 12.5}, confidence=confidence),
        }
    )
