"""`PipelineBuilder.build()` checks the graph (DESIGN §3) and freezes it.

Every message names the node and says how to fix it; the important ones are pinned here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import networkx as nx
import pytest
from inline_snapshot import snapshot
from pydantic import BaseModel
from tests.pipelines import branches, cyclic, unreachable

from handrail import (
    Action,
    Check,
    Classify,
    Extract,
    Fallback,
    Gate,
    GraphSetupError,
    Pipeline,
    PipelineBuilder,
    RetryPolicy,
    Review,
    Rule,
    Runner,
    Summarize,
)


def one(state: object) -> int:
    return 1


def build_error(builder: PipelineBuilder) -> str:
    with pytest.raises(GraphSetupError) as info:
        builder.build()
    return str(info.value)


class Order(BaseModel):
    order_id: str
    amount: float


# --- every case of DESIGN §3 ----------------------------------------------------------------


def test_unknown_node_as_edge_target() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one)).edge("a", "ghost")
    assert build_error(builder) == (
        "pipeline `p`: edge `a` -> `ghost`: no node named `ghost`; add it with .add(...) "
        "or use one of: `a`"
    )


def test_unknown_node_in_after_is_reported_with_its_consequence() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one)).add(Rule("b", one), after="ghost")
    assert build_error(builder).splitlines() == [
        "pipeline `p` has 2 problems:",
        "  - edge `ghost` -> `b`: no node named `ghost`; add it with .add(...) or use one of: "
        "`a`, `b`",
        "  - node `b` is unreachable: no edge leads to it from the start (`a`); add it with "
        "after=... or an edge to it",
    ]


def test_unknown_fallback_node() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one, fallback=Fallback(node="ghost")))
    assert build_error(builder) == (
        "pipeline `p`: fallback of `a` -> `ghost`: no node named `ghost`; add it with .add(...) "
        "or use one of: `a`"
    )


def test_unreachable_node() -> None:
    assert build_error(unreachable.unreachable()) == (
        "pipeline `unreachable`: node `orphan` is unreachable: no edge leads to it from the "
        "start (`a`); add it with after=... or an edge to it"
    )


def test_node_with_no_way_to_finish() -> None:
    builder = (
        PipelineBuilder("p")
        .add(Rule("a", one))
        .add(Rule("b", one), after="a")
        .edge("b", "a", max_loops=2)
    )
    assert build_error(builder).splitlines() == [
        "pipeline `p` has 2 problems:",
        *(
            f"  - node `{n}` has no way to finish: every path from it loops back; add an edge "
            "from it (or a node after it) that leads out of the loop"
            for n in "ab"
        ),
    ]


def test_cycle_without_a_limit() -> None:
    assert build_error(unreachable.unbounded_cycle()) == (
        "pipeline `unbounded`: cycle `a` -> `b` -> `a` has no visit limit; give the edge that "
        "goes back max_loops=N (e.g. .edge(..., max_loops=2))"
    )


def test_the_same_cycle_with_a_limit_builds() -> None:
    built = (
        PipelineBuilder("bounded")
        .add(Rule("a", one))
        .add(Rule("b", one, routes=["again", "out"]), after="a")
        .add(Rule("c", one), after="b", route="out")
        .edge("b", "a", route="again", max_loops=2)
        .build()
    )
    loop = next(e for e in built.edges() if e.is_loop)
    assert (loop.source, loop.target, loop.max_loops) == ("b", "a", 2)


NOT_PAUSABLE: dict[str, tuple[Callable[[], PipelineBuilder], str]] = {
    "confidence gate": (
        lambda: PipelineBuilder("p", pausable=False).add(Classify("c", labels=["x", "y"])),
        "pipeline `p`: node `c` has a confidence gate, but pipeline `p` is pausable=False; "
        "remove the gate/review (gate=None) or make it pausable",
    ),
    "review gate": (
        lambda: (
            PipelineBuilder("p", pausable=False)
            .add(Classify("c", labels=["x", "y"], gate=None))
            .add(Review("r", of="c"), after="c")
        ),
        "pipeline `p`: node `r` is a review gate, but pipeline `p` is pausable=False; "
        "remove the gate/review (gate=None) or make it pausable",
    ),
    "check on_fail=review": (
        lambda: PipelineBuilder("p", pausable=False).add(
            Rule("a", one, checks=[Check(lambda o, s: True, on_fail="review")])
        ),
        "pipeline `p`: node `a` can send the run to review (on_exhausted or a check's "
        "on_fail='review'), but pipeline `p` is pausable=False; remove the gate/review "
        "(gate=None) or make it pausable",
    ),
    "on_exhausted=review": (
        lambda: PipelineBuilder("p", pausable=False).add(Rule("a", one, on_exhausted="review")),
        "pipeline `p`: node `a` can send the run to review (on_exhausted or a check's "
        "on_fail='review'), but pipeline `p` is pausable=False; remove the gate/review "
        "(gate=None) or make it pausable",
    ),
}


@pytest.mark.parametrize("case", list(NOT_PAUSABLE))
def test_anything_that_can_pause_in_a_pipeline_that_cannot(case: str) -> None:
    make, message = NOT_PAUSABLE[case]
    assert build_error(make()) == message


def test_a_pipeline_that_cannot_pause_builds_without_gates() -> None:
    pipeline = (
        PipelineBuilder("p", pausable=False)
        .add(Classify("c", labels=["x", "y"], gate=None))
        .add(Rule("a", one, checks=[Check(lambda o, s: True, on_fail="warn")]), after="c")
        .build()
    )
    assert pipeline.pausable is False


def test_rule_route_with_no_edge() -> None:
    builder = (
        PipelineBuilder("p")
        .add(Rule("a", one, routes=["x", "y"]))
        .add(Rule("b", one), after="a", route="x")
    )
    assert build_error(builder) == (
        "pipeline `p`: rule `a` declares route `y` but no edge carries it; "
        "add .edge('a', TARGET, route='y')"
    )


def test_edge_route_the_source_cannot_choose() -> None:
    builder = (
        PipelineBuilder("p")
        .add(Classify("c", labels=["x", "y"], gate=None))
        .add(Rule("b", one), after="c", route="z")
    )
    assert build_error(builder) == (
        "pipeline `p`: edge `c` -> `b` has route `z`, but `c` can only choose `x`, `y`; "
        "fix the route name"
    )


def test_rejected_route_is_only_offered_by_nodes_that_can_pause() -> None:
    gated = (
        PipelineBuilder("p")
        .add(Classify("c", labels=["x"], gate=Gate(accept=0.9)))
        .add(Rule("m", one), after="c", route="rejected")
    )
    assert gated.build().nodes["m"].name == "m"
    ungated = (
        PipelineBuilder("p")
        .add(Classify("c", labels=["x"], gate=None))
        .add(Rule("m", one), after="c", route="rejected")
    )
    assert build_error(ungated) == (
        "pipeline `p`: edge `c` -> `m` has route `rejected`, but `c` can only choose `x`; "
        "fix the route name"
    )


def test_edge_route_on_a_node_without_routes() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one)).add(Rule("b", one), after="a", route="z")
    assert build_error(builder) == (
        "pipeline `p`: edge `a` -> `b` has route `z`, but `a` (rule) declares no routes; "
        "declare routes=[...] on it, or use when= for a condition"
    )


def test_node_reading_a_node_that_runs_later() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one, reads=["b"])).add(Rule("b", one), after="a")
    assert build_error(builder) == (
        "pipeline `p`: node `a` reads `b`, but `b` does not run before it; add an edge from "
        "`b` (or a node after it) to `a`"
    )


def test_node_reading_a_name_that_is_not_a_node() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one, reads=["nope"]))
    assert build_error(builder) == (
        "pipeline `p`: node `a` reads `nope`, which is neither a node nor one of document, "
        "labels, node, schema, text; fix the name"
    )


def test_node_reading_on_a_parallel_branch_is_not_before_it() -> None:
    builder = (
        PipelineBuilder("p", start=["a", "b"]).add(Rule("a", one)).add(Rule("b", one, reads=["a"]))
    )
    assert "node `b` reads `a`, but `a` does not run before it" in build_error(builder)


def test_prompt_reading_a_field_its_producer_lacks(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "reply.md").write_text("Order {{ details.order_id }} for {{ details.amout }}\n")
    builder = (
        PipelineBuilder("p", prompts=tmp_path)
        .add(Extract("details", Order, gate=None))
        .add(Summarize("reply", prompt="reply.md"), after="details")
    )
    assert build_error(builder) == (
        "pipeline `p`: the prompt of `reply` reads `details.amout`, but `details` (Order) has "
        "no field `amout`; fields: order_id, amount"
    )


def test_duplicate_node_names() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one)).add(Rule("a", one))
    assert build_error(builder) == (
        "pipeline `p`: two nodes are named `a`; give each node its own name"
    )


def test_duplicate_edges() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one)).add(Rule("b", one), after="a")
    builder.edge("a", "b")
    assert build_error(builder) == (
        "pipeline `p`: two edges `a` -> `b`; keep one (list several routes in one edge with "
        "route=[...])"
    )


def test_two_routed_edges_between_the_same_nodes_merge() -> None:
    pipeline = (
        PipelineBuilder("p")
        .add(Classify("c", labels=["x", "y", "z"], gate=None))
        .add(Rule("b", one), after="c", route="x")
        .edge("c", "b", route="y")
        .build()
    )
    [edge] = pipeline.edges()
    assert edge.routes == frozenset({"x", "y"})


# --- other mistakes ------------------------------------------------------------------------


def test_every_problem_is_listed_at_once() -> None:
    builder = (
        PipelineBuilder("p")
        .add(Rule("a", one))
        .add(Rule("orphan", one))
        .add(Rule("a", one))
        .edge("a", "ghost")
    )
    assert build_error(builder).splitlines() == [
        "pipeline `p` has 3 problems:",
        "  - two nodes are named `a`; give each node its own name",
        "  - edge `a` -> `ghost`: no node named `ghost`; add it with .add(...) or use one of: "
        "`a`, `orphan`",
        "  - node `orphan` is unreachable: no edge leads to it from the start (`a`); add it "
        "with after=... or an edge to it",
    ]


def test_empty_pipeline() -> None:
    assert build_error(PipelineBuilder("p")) == (
        "pipeline `p` has no nodes; add one with .add(...)"
    )


def test_unknown_start_node() -> None:
    message = build_error(PipelineBuilder("p", start="zzz").add(Rule("a", one)))
    assert message == "pipeline `p`: start node `zzz` does not exist; use one of: `a`"


def test_loop_limit_below_one() -> None:
    builder = (
        PipelineBuilder("p")
        .add(Rule("a", one))
        .add(Rule("b", one, routes=["again", "out"]), after="a")
        .add(Rule("c", one), after="b", route="out")
        .edge("b", "a", route="again", max_loops=0)
    )
    assert build_error(builder) == ("pipeline `p`: edge `b` -> `a` has max_loops=0; use 1 or more")


def test_loop_limit_on_an_edge_that_goes_forward() -> None:
    builder = (
        PipelineBuilder("p")
        .add(Rule("a", one))
        .add(Rule("b", one), after="a")
        .add(Rule("c", one), after="b")
        .edge("a", "c", max_loops=1)
    )
    assert build_error(builder) == (
        "pipeline `p`: edge `a` -> `c` has max_loops but does not go back to an earlier node; "
        "remove max_loops"
    )


def test_check_asking_for_a_fallback_the_node_lacks() -> None:
    builder = PipelineBuilder("p").add(
        Rule("a", one, checks=[Check(lambda o, s: True, on_fail="fallback")])
    )
    assert build_error(builder) == (
        "pipeline `p`: node `a` has a check with on_fail='fallback' but no fallback; "
        "add fallback=Fallback(...) or choose another on_fail"
    )


def test_review_of_an_unknown_node() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one)).add(Review("r", of="zz"), after="a")
    assert build_error(builder).splitlines()[1] == (
        "  - review `r` reviews `zz`, which is not a node; use of= one of: `a`, `r`"
    )


def test_gate_on_a_field_the_schema_lacks() -> None:
    builder = PipelineBuilder("p").add(Extract("e", Order, gate=Gate(fields={"amout": 0.9})))
    assert build_error(builder) == (
        "pipeline `p`: extract `e` gates field `amout`, which Order does not have; "
        "fields: order_id, amount"
    )


def test_builder_rejects_what_is_not_a_node_or_a_name() -> None:
    with pytest.raises(GraphSetupError, match=r"add\(\) takes a node .*got function"):
        PipelineBuilder("p").add(one)  # type: ignore[arg-type]
    with pytest.raises(GraphSetupError, match="a pipeline needs a name"):
        PipelineBuilder("")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Gate(accept=1.5), "Gate accept=1.5 is outside 0..1"),
        (lambda: Gate(accept=0.8, fields={"x": -0.1}), "Gate fields['x']=-0.1 is outside 0..1"),
        (lambda: Gate(accept=0.5, reject=0.6), "Gate reject=0.6 is above accept=0.5"),
        (lambda: RetryPolicy(attempts=0), "RetryPolicy attempts=0: use 1 or more"),
        (lambda: Fallback(), "Fallback takes exactly one of node=, model= or default="),
        (
            lambda: Fallback(node="a", default=1),
            "Fallback takes exactly one of node=, model= or default=",
        ),
        (lambda: Check(one, on_fail="ignore"), "Check on_fail='ignore': use one of retry"),  # type: ignore[arg-type]
    ],
)
def test_policy_records_validate_their_values(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(message)


def test_runner_takes_only_a_built_pipeline() -> None:
    with pytest.raises(TypeError, match=r"call PipelineBuilder\(...\).build\(\) first"):
        Runner(PipelineBuilder("p").add(Rule("a", one)))  # type: ignore[arg-type]


# --- what a built pipeline is ----------------------------------------------------------------


def test_built_pipeline_is_frozen() -> None:
    pipeline = branches.pipeline
    with pytest.raises(dataclasses.FrozenInstanceError):
        pipeline.name = "other"  # type: ignore[misc]
    with pytest.raises(nx.NetworkXError):
        pipeline.graph.add_node("extra")


def test_changing_the_builder_after_build_does_not_change_the_pipeline() -> None:
    builder = PipelineBuilder("p").add(Rule("a", one))
    pipeline = builder.build()
    builder.add(Rule("b", one), after="a")
    assert list(pipeline.nodes) == ["a"]
    assert builder.build().nodes.keys() == {"a", "b"}


def test_start_defaults_to_the_first_node_and_plans_count_forward_edges() -> None:
    pipeline = cyclic.pipeline
    assert pipeline.start == ("invoice",)
    # the loop edge back into `invoice` does not count: it starts without waiting for it
    assert {n: p.forward_in for n, p in pipeline.plans.items()} == {
        "invoice": 0,
        "totals_match": 1,
        "done": 1,
    }
    assert pipeline.plans["totals_match"].loop_region == {
        "invoice": frozenset({"invoice", "totals_match", "done"})
    }


def test_node_kinds_and_declared_routes() -> None:
    pipeline = branches.pipeline
    assert pipeline["size"].routes() == ("small", "medium", "large")
    assert Classify("c", labels=["a", "b"]).routes() == ("a", "b")
    assert [n.kind for n in (Rule("r", one), Action("x", lambda s, k: 1), Review("v", of="r"))] == [
        "rule",
        "action",
        "review",
    ]


def test_drawn_as_mermaid() -> None:
    assert branches.pipeline.to_mermaid() == snapshot("""\
flowchart TD
    __start__([start])
    size{{"rule: size"}}
    small{{"rule: small"}}
    medium{{"rule: medium"}}
    large{{"rule: large"}}
    join{{"rule: join"}}
    __start__ --> size
    size -->|"small"| small
    size -->|"medium"| medium
    size -->|"large"| large
    small --> join
    medium --> join
    large --> join
""")


def test_drawn_as_dot_marks_loops_dashed() -> None:
    dot = cyclic.pipeline.to_dot()
    assert '"totals_match" -> "invoice" [label="retry, at most 2x", style=dashed];' in dot
    assert dot.startswith('digraph "cyclic" {')


def test_pipeline_repr_and_lookup() -> None:
    pipeline: Pipeline = cyclic.pipeline
    assert repr(pipeline) == "Pipeline('cyclic', nodes=['invoice', 'totals_match', 'done'])"
    assert pipeline["invoice"].kind == "extract"
    assert [n.name for n in pipeline.llm_nodes] == ["invoice"]
