"""A provider that fails transiently before answering: retried with backoff."""

from handrail import Classify, Fail, FakeModel, PipelineBuilder, Reply, RetryPolicy

FAST = RetryPolicy(attempts=3, initial=0.0, maximum=0.0, jitter=0.0)

pipeline = (
    PipelineBuilder("flaky")
    .add(Classify("category", labels=["refund", "bug"], retry=FAST, gate=None))
    .build()
)


def model(failures: int = 2, kind: str = "rate_limit") -> FakeModel:
    return FakeModel({"category": [Fail(kind)] * failures + [Reply("bug", confidence=0.9)]})
