"""A pipeline whose extraction never fits its schema with the scripted model below (the amount
comes back as words), sent to review by `on_exhausted="review"`: nothing is under review."""

from pydantic import BaseModel

from handrail import Extract, FakeModel, Gate, PipelineBuilder, Reply, Rule


class Refund(BaseModel):
    order_id: str
    amount: float
    note: str | None = None


pipeline = (
    PipelineBuilder("refunds")
    .add(
        Extract(
            "refund",
            Refund,
            gate=Gate(accept=0.8, fields={"amount": 0.9}),
            on_exhausted="review",
            max_reasks=1,
        )
    )
    .add(Rule("act", lambda state: f"refund {state['refund'].amount}"), after="refund")
    .build()
)


def model() -> FakeModel:
    return FakeModel({"refund": Reply({"order_id": "A-17", "amount": "twelve euros"})})
