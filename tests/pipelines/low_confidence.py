"""A classifier whose confidence is below its gate: the run waits for review."""

from handrail import Classify, FakeModel, Gate, PipelineBuilder, Reply, Rule

pipeline = (
    PipelineBuilder("low_confidence")
    .add(
        Classify(
            "category", labels=["refund", "bug", "question"], gate=Gate(accept=0.9, reject=0.2)
        )
    )
    .add(Rule("shout", lambda s: s["category"].upper()), after="category")
    .build()
)


def model(confidence: float = 0.6) -> FakeModel:
    return FakeModel({"category": Reply("bug", confidence=confidence)})
