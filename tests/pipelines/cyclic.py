"""A loop with a visit limit: re-extract at most twice when the check rule says so."""

from pydantic import BaseModel

from handrail import Extract, Fail, FakeModel, PipelineBuilder, Reply, Route, Rule


class Invoice(BaseModel):
    total: float
    lines: list[float]


def totals_match(state):
    """Routes back to extraction when the lines do not add up to the total."""
    inv = state["invoice"]
    return Route("ok" if abs(sum(inv.lines) - inv.total) < 0.01 else "retry")


pipeline = (
    PipelineBuilder("cyclic")
    .add(Extract("invoice", Invoice, gate=None))
    .add(Rule("totals_match", totals_match, routes=["ok", "retry"]), after="invoice")
    .add(Rule("done", lambda s: s["invoice"].total), after="totals_match", route="ok")
    .edge("totals_match", "invoice", route="retry", max_loops=2)
    .build()
)


def model(wrong_times: int = 1) -> FakeModel:
    bad = Reply({"total": 10.0, "lines": [3.0, 3.0]})
    good = Reply({"total": 10.0, "lines": [4.0, 6.0]})
    return FakeModel({"invoice": [bad] * wrong_times + [good]})


__all__ = ["Fail", "model", "pipeline"]
