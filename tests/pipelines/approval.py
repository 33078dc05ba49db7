"""A `Review` gate that stops only refunds, and a gated classifier with a `rejected` path.

`calls` counts every rule invocation, so tests can prove a resumed run re-executes nothing.
"""

from collections import Counter

from handrail import Classify, FakeModel, Gate, PipelineBuilder, Reply, Review, Rule

calls: Counter[str] = Counter()


def counted(name, fn):
    def rule(state):
        calls[name] += 1
        return fn(state)

    return Rule(name, rule)


# classify -> (a person approves refunds) -> act on the (possibly edited) category
pipeline = (
    PipelineBuilder("approval")
    .add(counted("received", lambda s: len(s.text)))
    .add(Classify("category", labels=["refund", "bug"], gate=None), after="received")
    .add(
        Review(
            "approve_refund",
            of="category",
            when=lambda s: s["category"] == "refund",
            message="refunds need a person's approval",
        ),
        after="category",
    )
    .add(counted("act", lambda s: f"handle {s['category']}"), after="approve_refund")
    .build()
)

# a low-confidence label goes to review; a rejected one goes to a person's queue
rejectable = (
    PipelineBuilder("rejectable")
    .add(counted("received", lambda s: len(s.text)))
    .add(Classify("category", labels=["refund", "bug"], gate=Gate(accept=0.9)), after="received")
    .add(counted("act", lambda s: f"handle {s['category']}"), after="category")
    .add(counted("manual", lambda s: "queued for a person"), after="category", route="rejected")
    .build()
)


def model(label: str = "refund", confidence: float = 0.95) -> FakeModel:
    return FakeModel({"category": Reply(label, confidence=confidence)})
