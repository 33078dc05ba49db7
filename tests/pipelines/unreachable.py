"""Definitions that must fail to build; each function returns the builder."""

from handrail import PipelineBuilder, Rule


def unreachable() -> PipelineBuilder:
    return (
        PipelineBuilder("unreachable").add(Rule("a", lambda s: 1)).add(Rule("orphan", lambda s: 2))
    )


def unbounded_cycle() -> PipelineBuilder:
    return (
        PipelineBuilder("unbounded")
        .add(Rule("a", lambda s: 1))
        .add(Rule("b", lambda s: 2), after="a")
        .edge("b", "a")
    )
