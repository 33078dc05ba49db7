"""Build-time checks of a pipeline (DESIGN §3). Every message names the node and the fix."""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx
from pydantic import BaseModel

from handrail.core.calibration import apply_calibration
from handrail.core.nodes import REJECTED_ROUTE, Classify, Extract, LLMNode, Node, Review, Rule
from handrail.core.pipeline import FALLBACK_ROUTE, Edge, NodePlan, Pipeline
from handrail.core.prompts import BUILTIN_NAMES, EXAMPLES, Prompt, default_prompt, load_prompt
from handrail.exceptions import GraphSetupError, PromptError

if TYPE_CHECKING:
    from handrail.core.pipeline import PipelineBuilder


def validate(builder: PipelineBuilder) -> Pipeline:
    errors = list(builder._errors)
    nodes = dict(builder._nodes)
    if not nodes:
        raise GraphSetupError(f"pipeline `{builder.name}` has no nodes; add one with .add(...)")
    nodes = apply_calibration(builder.name, nodes, errors)  # thresholds from data

    edges = _collect_edges(builder, nodes, errors)
    start = tuple(builder.start or [next(iter(nodes))])
    for name in start:
        if name not in nodes:
            errors.append(f"start node `{name}` does not exist; use one of: {_names(nodes)}")

    graph = nx.DiGraph(name=builder.name)
    for name, node in nodes.items():
        graph.add_node(name, node=node)
    for edge in edges:
        graph.add_edge(edge.source, edge.target, edge=edge)
    forward = nx.DiGraph()
    forward.add_nodes_from(nodes)
    forward.add_edges_from((e.source, e.target) for e in edges if not e.is_loop)

    _check_routes(nodes, edges, errors)
    dag = _check_cycles(forward, edges, errors)
    if dag:
        _check_reachability(nodes, graph, forward, start, errors)
    _check_pausing(builder, nodes, errors)
    prompts = _load_prompts(builder, nodes, errors)
    _check_examples(nodes, prompts, errors)
    if dag:
        _check_reads(nodes, forward, prompts, errors)
    if errors:
        raise GraphSetupError(_join(builder.name, errors))

    plans = {}
    for name, node in nodes.items():
        out = tuple(data["edge"] for _, _, data in graph.out_edges(name, data=True))
        regions = {
            e.target: frozenset(nx.descendants(forward, e.target) | {e.target})
            for e in out
            if e.is_loop
        }
        plans[name] = NodePlan(
            node=node, forward_in=forward.in_degree(name), out=out, loop_region=regions
        )
    return Pipeline(
        name=builder.name,
        graph=nx.freeze(graph),
        nodes=nodes,
        start=start,
        plans=plans,
        prompts=prompts,
        budget=builder.budget,
        timeout=builder.timeout,
        pausable=builder.pausable,
        description=builder.description,
        review=builder.review,
    )


def _join(pipeline: str, errors: list[str]) -> str:
    if len(errors) == 1:
        return f"pipeline `{pipeline}`: {errors[0]}"
    return f"pipeline `{pipeline}` has {len(errors)} problems:\n" + "\n".join(
        f"  - {e}" for e in errors
    )


def _names(nodes: dict[str, Node]) -> str:
    return ", ".join(f"`{n}`" for n in nodes)


def _collect_edges(
    builder: PipelineBuilder, nodes: dict[str, Node], errors: list[str]
) -> list[Edge]:
    merged: dict[tuple[str, str], Edge] = {}
    raw = list(builder._edges)
    for node in nodes.values():
        if node.fallback is not None and node.fallback.node is not None:
            raw.append(
                Edge(
                    source=node.name, target=node.fallback.node, routes=frozenset([FALLBACK_ROUTE])
                )
            )
    for edge in raw:
        for end in (edge.source, edge.target):
            if end not in nodes:
                what = "fallback of" if edge.is_fallback else "edge"
                errors.append(
                    f"{what} `{edge.source}` -> `{edge.target}`: no node named "
                    f"`{end}`; add it with .add(...) or use one of: {_names(nodes)}"
                )
        key = (edge.source, edge.target)
        previous = merged.get(key)
        if previous is None:
            merged[key] = edge
        elif (
            previous.routes
            and edge.routes
            and previous.when is None
            and edge.when is None
            and previous.max_loops == edge.max_loops
        ):
            merged[key] = Edge(
                source=edge.source,
                target=edge.target,
                routes=previous.routes | edge.routes,
                max_loops=edge.max_loops,
            )
        else:
            errors.append(
                f"two edges `{edge.source}` -> `{edge.target}`; keep one (list several "
                "routes in one edge with route=[...])"
            )
    return [e for e in merged.values() if e.source in nodes and e.target in nodes]


def _check_routes(nodes: dict[str, Node], edges: list[Edge], errors: list[str]) -> None:
    used: dict[str, set[str]] = {}
    for edge in edges:
        source = nodes[edge.source]
        allowed = set(source.routes()) | {FALLBACK_ROUTE}
        if source.can_pause():
            allowed.add(REJECTED_ROUTE)
        for route in edge.routes - allowed:
            if source.routes():
                choices = ", ".join(f"`{r}`" for r in sorted(allowed - {FALLBACK_ROUTE}))
                errors.append(
                    f"edge `{edge.source}` -> `{edge.target}` has route `{route}`, but "
                    f"`{edge.source}` can only choose {choices}; fix the route name"
                )
            else:
                errors.append(
                    f"edge `{edge.source}` -> `{edge.target}` has route `{route}`, but "
                    f"`{edge.source}` ({source.kind}) declares no routes; declare "
                    f"routes=[...] on it, or use when= for a condition"
                )
        used.setdefault(edge.source, set()).update(edge.routes)
    for node in nodes.values():
        if isinstance(node, Rule):
            for route in node.routes():
                if route not in used.get(node.name, set()):
                    errors.append(
                        f"rule `{node.name}` declares route `{route}` but no edge "
                        f"carries it; add .edge({node.name!r}, TARGET, route={route!r})"
                    )


def _check_cycles(forward: nx.DiGraph, edges: list[Edge], errors: list[str]) -> bool:
    try:
        cycle = nx.find_cycle(forward)
    except nx.NetworkXNoCycle:
        pass
    else:
        path = " -> ".join(f"`{u}`" for u, _ in cycle) + f" -> `{cycle[0][0]}`"
        errors.append(
            f"cycle {path} has no visit limit; give the edge that goes back "
            "max_loops=N (e.g. .edge(..., max_loops=2))"
        )
        return False
    for edge in edges:
        if (
            edge.is_loop
            and edge.target != edge.source
            and edge.target not in nx.ancestors(forward, edge.source)
        ):
            errors.append(
                f"edge `{edge.source}` -> `{edge.target}` has max_loops but does not "
                f"go back to an earlier node; remove max_loops"
            )
    return True


def _check_reachability(
    nodes: dict[str, Node],
    graph: nx.DiGraph,
    forward: nx.DiGraph,
    start: tuple[str, ...],
    errors: list[str],
) -> None:
    starts = [s for s in start if s in nodes]
    reached: set[str] = set(starts)
    for s in starts:
        reached |= nx.descendants(forward, s)
    for name in nodes:
        if starts and name not in reached:
            errors.append(
                f"node `{name}` is unreachable: no edge leads to it from the start "
                f"({', '.join(f'`{s}`' for s in starts)}); add it with after=... or "
                "an edge to it"
            )
    sinks = {n for n in nodes if graph.out_degree(n) == 0}
    can_finish: set[str] = set(sinks)
    for sink in sinks:
        can_finish |= nx.ancestors(forward, sink)
    for name in nodes:
        if name in reached and name not in can_finish:
            errors.append(
                f"node `{name}` has no way to finish: every path from it loops back; "
                "add an edge from it (or a node after it) that leads out of the loop"
            )


def _check_pausing(builder: PipelineBuilder, nodes: dict[str, Node], errors: list[str]) -> None:
    for node in nodes.values():
        if node.fallback is None and any(c.on_fail == "fallback" for c in node.checks):
            errors.append(
                f"node `{node.name}` has a check with on_fail='fallback' but no "
                "fallback; add fallback=Fallback(...) or choose another on_fail"
            )
        if isinstance(node, Review) and node.of not in nodes:
            errors.append(
                f"review `{node.name}` reviews `{node.of}`, which is not a node; "
                f"use of= one of: {_names(nodes)}"
            )
        if isinstance(node, Extract) and node.gate is not None:
            unknown = set(node.gate.fields) - set(node.schema.model_fields)
            for f in sorted(unknown):
                errors.append(
                    f"extract `{node.name}` gates field `{f}`, which "
                    f"{node.schema.__name__} does not have; fields: "
                    f"{', '.join(node.schema.model_fields)}"
                )
        if builder.pausable or not node.can_pause():
            continue
        why = (
            "is a review gate"
            if isinstance(node, Review)
            else "has a confidence gate"
            if isinstance(node, LLMNode) and node.gate
            else "has examples that can send a run to review (agree=, unlike_below=)"
            if isinstance(node, LLMNode) and node.examples and node.examples.can_review
            else "can send the run to review (on_exhausted or a check's on_fail='review')"
        )
        errors.append(
            f"node `{node.name}` {why}, but pipeline `{builder.name}` is "
            "pausable=False; remove the gate/review (gate=None) or make it pausable"
        )


def _load_prompts(
    builder: PipelineBuilder, nodes: dict[str, Node], errors: list[str]
) -> dict[str, Prompt]:
    prompts: dict[str, Prompt] = {}
    for node in nodes.values():
        if not isinstance(node, LLMNode):
            continue
        try:
            prompts[node.name] = (
                default_prompt(node.kind, examples=_shows_examples(node))
                if node.prompt is None
                else load_prompt(builder.prompts, node.prompt)
            )
        except PromptError as e:
            errors.append(f"node `{node.name}`: {e}")
    return prompts


def _listed(node: Node) -> frozenset[str]:
    """The names a message lists as built in (`examples` for a node that has examples)."""
    if isinstance(node, LLMNode) and node.examples is not None:
        return BUILTIN_NAMES | {EXAMPLES}
    return BUILTIN_NAMES


def _shows_examples(node: LLMNode) -> bool:
    return node.examples is not None and node.examples.k > 0


def _check_examples(nodes: dict[str, Node], prompts: dict[str, Prompt], errors: list[str]) -> None:
    """Read each node's pool (once: it is kept for the runs) and check it fits the node."""
    for node in nodes.values():
        if not isinstance(node, LLMNode) or node.examples is None:
            continue
        examples = node.examples
        if isinstance(node, Classify):
            problems = examples.check(node.name, labels=node.labels())
        elif isinstance(node, Extract):
            problems = examples.check(node.name, fields=list(node.schema.model_fields))
        else:  # pragma: no cover - only Classify and Extract take examples
            problems = []
        errors.extend(f"node `{node.name}`: {p}" for p in problems)
        prompt = prompts.get(node.name)
        if prompt is not None and _shows_examples(node) and EXAMPLES not in prompt.names:
            errors.append(
                f"node `{node.name}` has examples to show (k={examples.k}), but its prompt "
                f"{prompt.name} never reads `{EXAMPLES}`; show them (`{{% for example in "
                "examples %}}{{{{ example.text }}}} -> {{{{ example.output }}}}{{% endfor %}}`) "
                "or pass Examples(..., k=0) to use them for the vote alone"
            )


def _check_reads(
    nodes: dict[str, Node], forward: nx.DiGraph, prompts: dict[str, Prompt], errors: list[str]
) -> None:
    for node in nodes.values():
        prompt = prompts.get(node.name)
        builtin = BUILTIN_NAMES
        if isinstance(node, LLMNode) and (EXAMPLES not in nodes or node.examples is not None):
            builtin = builtin | {EXAMPLES}  # a node named `examples` keeps its name elsewhere
        reads = set(node.reads) | ((prompt.names - builtin) if prompt else set())
        before = nx.ancestors(forward, node.name)
        for name in sorted(reads):
            where = "" if name in node.reads else " in its prompt"
            if name not in nodes:
                errors.append(
                    f"node `{node.name}` reads `{name}`{where}, which is neither a node "
                    f"nor one of {', '.join(sorted(_listed(node)))}; fix the name"
                )
            elif name not in before:
                errors.append(
                    f"node `{node.name}` reads `{name}`, but `{name}` does not run "
                    f"before it; add an edge from `{name}` (or a node after it) to "
                    f"`{node.name}`"
                )
            elif prompt is not None:
                _check_fields(node, name, nodes[name], prompt, errors)


def _check_fields(node: Node, name: str, producer: Node, prompt: Prompt, errors: list[str]) -> None:
    schema = getattr(producer, "schema", None)
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        return
    fields = set(schema.model_fields) | {n for n in dir(schema) if not n.startswith("_")}
    for attr in sorted(prompt.attributes.get(name, frozenset()) - fields):
        errors.append(
            f"the prompt of `{node.name}` reads `{name}.{attr}`, but `{name}` "
            f"({schema.__name__}) has no field `{attr}`; fields: "
            f"{', '.join(schema.model_fields)}"
        )
