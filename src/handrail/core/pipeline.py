"""Defining a pipeline: `PipelineBuilder` collects nodes and edges, `build()` checks them and
returns a frozen `Pipeline`. The runner never re-checks structure."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from handrail.core.nodes import LLMNode, Node
from handrail.core.records import ReviewPolicy
from handrail.exceptions import GraphSetupError

if TYPE_CHECKING:
    import networkx as nx

    from handrail.core.prompts import Prompt
    from handrail.core.state import State

Condition = Callable[["State"], bool]
FALLBACK_ROUTE = "__fallback__"


@dataclass(frozen=True, kw_only=True, slots=True)
class Edge:
    """A transition. Taken when its routes contain the source's route (if routes are given) and
    its condition holds (if one is given). `max_loops` marks an edge that goes back (a loop)."""

    source: str
    target: str
    routes: frozenset[str] = frozenset()
    when: Condition | None = None
    max_loops: int | None = None
    """For an edge that goes back: how many times it may be followed in one run."""

    @property
    def is_loop(self) -> bool:
        return self.max_loops is not None

    @property
    def is_fallback(self) -> bool:
        return FALLBACK_ROUTE in self.routes

    def label(self) -> str:
        parts = sorted(r for r in self.routes if r != FALLBACK_ROUTE)
        if self.is_fallback:
            parts.append("fallback")
        if self.when is not None:
            parts.append(f"if {getattr(self.when, '__name__', 'condition')}")
        if self.max_loops is not None:
            parts.append(f"at most {self.max_loops}x")
        return ", ".join(parts)


@dataclass(frozen=True, kw_only=True, slots=True)
class Budget:
    """Limits for one run; exceeding one fails the run with `BudgetExceeded`."""

    max_tokens: int | None = None
    max_cost: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class NodePlan:
    """What the scheduler needs to know about a node, computed once at build time."""

    node: Node
    forward_in: int
    """Number of incoming edges that are not loops."""
    out: tuple[Edge, ...]
    loop_region: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """For each loop edge out of this node: target -> nodes re-run when it is followed."""


class PipelineBuilder:
    """Collects nodes and edges. `build()` validates and freezes.

    `prompts` is the folder holding the prompt files nodes name. `start` defaults to the first
    node added. `pausable=False` declares a pipeline that must never wait for a person (any gate
    or review check then is a setup error).
    """

    def __init__(
        self,
        name: str,
        *,
        prompts: str | Path | None = None,
        start: str | Sequence[str] | None = None,
        budget: Budget | None = None,
        timeout: float | None = None,
        pausable: bool = True,
        review: ReviewPolicy | None = None,
        description: str = "",
    ) -> None:
        if not name or not isinstance(name, str):
            raise GraphSetupError("a pipeline needs a name, e.g. PipelineBuilder('invoice_intake')")
        self.name = name
        self.prompts = Path(prompts) if prompts is not None else None
        self.start = [start] if isinstance(start, str) else list(start or [])
        self.budget = budget or Budget()
        self.timeout = timeout
        self.pausable = pausable
        self.review = review or ReviewPolicy()
        self.description = description
        self._nodes: dict[str, Node] = {}
        self._edges: list[Edge] = []
        self._errors: list[str] = []

    def add(
        self,
        node: Node,
        *,
        after: str | Sequence[str] | None = None,
        route: str | Sequence[str] | None = None,
        when: Condition | None = None,
    ) -> PipelineBuilder:
        """Add a node, optionally with edges from the nodes it comes `after`."""
        if not isinstance(node, Node):
            raise GraphSetupError(
                f"add() takes a node (Rule, Classify, Extract, ...), got {type(node).__name__}"
            )
        if node.name in self._nodes:
            self._errors.append(f"two nodes are named `{node.name}`; give each node its own name")
        else:
            self._nodes[node.name] = node
        for source in [after] if isinstance(after, str) else (after or []):
            self.edge(source, node.name, route=route, when=when)
        return self

    def edge(
        self,
        source: str,
        target: str,
        *,
        route: str | Sequence[str] | None = None,
        when: Condition | None = None,
        max_loops: int | None = None,
    ) -> PipelineBuilder:
        """Add an edge. `route` restricts it to those routes of `source` (a rule's `Route`, a
        classifier's label); `when` to states where the condition holds; `max_loops` marks an
        edge back to an earlier node and bounds how often it is followed."""
        routes = frozenset([route] if isinstance(route, str) else (route or []))
        if max_loops is not None and max_loops < 1:
            self._errors.append(
                f"edge `{source}` -> `{target}` has max_loops={max_loops}; use 1 or more"
            )
        self._edges.append(
            Edge(source=source, target=target, routes=routes, when=when, max_loops=max_loops)
        )
        return self

    def build(self) -> Pipeline:
        """Validate and freeze; raises `GraphSetupError` listing every problem found."""
        from handrail.core.validation import validate

        return validate(self)


@dataclass(frozen=True, kw_only=True, eq=False)
class Pipeline:
    """A validated, frozen pipeline. Build one with `PipelineBuilder`."""

    name: str
    graph: nx.DiGraph
    """Nodes carry `node=<Node>`, edges carry `edge=<Edge>`. Frozen."""
    nodes: Mapping[str, Node]
    start: tuple[str, ...]
    plans: Mapping[str, NodePlan]
    prompts: Mapping[str, Prompt]
    budget: Budget
    timeout: float | None
    pausable: bool
    description: str = ""
    review: ReviewPolicy = field(default_factory=ReviewPolicy)
    """Where reviews wait and what happens at their deadline (a `Review` gate may override)."""
    fingerprint: str = field(default="", init=False)
    """The pipeline's version: a short hash of what decides its outputs (structure, prompt
    texts, gates, checks, schemas; see `handrail.core.fingerprint`), computed when it is built.
    Part of every run id, so a changed pipeline never reuses an earlier one's results."""

    def __post_init__(self) -> None:
        from handrail.core.fingerprint import pipeline_fingerprint

        object.__setattr__(self, "fingerprint", pipeline_fingerprint(self))

    def review_policy(self, node: str) -> ReviewPolicy:
        """The review policy for a review raised at `node`."""
        found = self.nodes.get(node)
        policy = getattr(found, "policy", None)
        return policy if isinstance(policy, ReviewPolicy) else self.review

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    @property
    def llm_nodes(self) -> list[LLMNode]:
        return [n for n in self.nodes.values() if isinstance(n, LLMNode)]

    def edges(self) -> list[Edge]:
        return [data["edge"] for _, _, data in self.graph.edges(data=True)]

    def to_mermaid(self) -> str:
        from handrail.core.draw import to_mermaid

        return to_mermaid(self)

    def to_dot(self) -> str:
        from handrail.core.draw import to_dot

        return to_dot(self)

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, nodes={list(self.nodes)})"
