"""A rule routing to one of three branches, and a join; plus two concurrent LLM branches."""

from handrail import Draft, FakeModel, PipelineBuilder, Reply, Route, Rule, Summarize


def size(state):
    """Routes on the document's length."""
    n = len(state.text)
    return Route("small" if n < 20 else "medium" if n < 60 else "large", output=n)


pipeline = (
    PipelineBuilder("branches")
    .add(Rule("size", size, routes=["small", "medium", "large"]))
    .add(Rule("small", lambda s: "S"), after="size", route="small")
    .add(Rule("medium", lambda s: "M"), after="size", route="medium")
    .add(Rule("large", lambda s: "L"), after="size", route="large")
    .add(
        Rule("join", lambda s: [k for k in ("small", "medium", "large") if k in s]),
        after=["small", "medium", "large"],
    )
    .build()
)

# Two LLM nodes with no edge between them run at the same time.
concurrent = (
    PipelineBuilder("concurrent", start=["summary", "reply"])
    .add(Summarize("summary", gate=None))
    .add(Draft("reply", gate=None))
    .add(Rule("both", lambda s: (s["summary"], s["reply"])), after=["summary", "reply"])
    .build()
)


def model(latency: float = 0.2) -> FakeModel:
    return FakeModel({"summary": Reply("short"), "reply": Reply("hello")}, latency=latency)
