"""Which nodes of one run may start: the bookkeeping behind DESIGN §3's scheduling rules.

A node is ready when every incoming (non-loop) edge is resolved and at least one was taken.
When every incoming edge is resolved and none was taken, the node is skipped, and its own edges
resolve as not taken. Following a loop edge resets the loop's region (the loop target and all
that comes after it), so those nodes run again with the new inputs.

Pure and synchronous: the runner owns execution. Replaying a run's step records through
`start`/`finish`/`pause` rebuilds exactly this state, which is how a run resumes after review.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping

from handrail.core.pipeline import Edge, NodePlan

READY, RUNNING, DONE, SKIPPED, PAUSED = "ready", "running", "done", "skipped", "paused"


class Scheduler:
    __slots__ = (
        "epoch",
        "loops",
        "plans",
        "ready",
        "remaining",
        "sources",
        "status",
        "taken_in",
        "visits",
    )

    def __init__(
        self,
        plans: Mapping[str, NodePlan],
        start: Iterable[str],
        sources: Mapping[str, tuple[str, ...]],
    ) -> None:
        self.plans = plans
        self.sources = sources
        self.remaining = {name: plan.forward_in for name, plan in plans.items()}
        self.taken_in: dict[str, set[str]] = {}
        self.status: dict[str, str] = {}
        self.visits: dict[str, int] = {}
        self.epoch: dict[str, int] = {}
        self.loops: dict[tuple[str, str], int] = {}
        self.ready: deque[str] = deque()
        for name in start:
            self._make_ready(name)

    def _make_ready(self, name: str) -> None:
        self.status[name] = READY
        self.ready.append(name)

    def pop_ready(self) -> str | None:
        """The next node to start, or None; stale queue entries are dropped."""
        while self.ready:
            name = self.ready.popleft()
            if self.status.get(name) == READY:
                return name
        return None

    def start(self, name: str) -> tuple[int, int]:
        """Mark `name` running; returns (visit number, epoch)."""
        self.status[name] = RUNNING
        visit = self.visits.get(name, 0) + 1
        self.visits[name] = visit
        return visit, self.epoch.get(name, 0)

    def is_current(self, name: str, epoch: int) -> bool:
        """False when a loop reset `name` while it ran: its result is superseded."""
        return self.epoch.get(name, 0) == epoch

    def pause(self, name: str) -> None:
        self.status[name] = PAUSED

    def loop_edge(self, name: str, taken: Iterable[str]) -> Edge | None:
        """The loop edge among the taken targets, if any."""
        for edge in self.plans[name].out:
            if edge.is_loop and edge.target in taken:
                return edge
        return None

    def loop_allowed(self, edge: Edge) -> bool:
        return self.loops.get((edge.source, edge.target), 0) < (edge.max_loops or 0)

    def finish(self, name: str, taken: Iterable[str]) -> None:
        """`name` is done; `taken` are the targets of the edges it follows."""
        self.status[name] = DONE
        plans = self.plans
        if plans[name].loop_region:
            loop = self.loop_edge(name, taken)
            if loop is not None:
                self._follow_loop(name, loop)
                return
        remaining = self.remaining
        taken_in = self.taken_in
        stack: list[tuple[str, Iterable[str]]] = [(name, taken)]
        while stack:
            source, chosen = stack.pop()
            for edge in plans[source].out:
                if edge.max_loops is not None:
                    continue
                target = edge.target
                left = remaining[target] - 1
                remaining[target] = left
                if target in chosen:
                    sources = taken_in.get(target)
                    if sources is None:
                        taken_in[target] = {source}
                    else:
                        sources.add(source)
                if left == 0:
                    if taken_in.get(target):
                        self.status[target] = READY
                        self.ready.append(target)
                    else:
                        self.status[target] = SKIPPED
                        stack.append((target, ()))

    def _follow_loop(self, name: str, edge: Edge) -> None:
        key = (edge.source, edge.target)
        self.loops[key] = self.loops.get(key, 0) + 1
        region = self.plans[name].loop_region[edge.target]
        for node in region:
            self.status.pop(node, None)
            self.epoch[node] = self.epoch.get(node, 0) + 1
            inside = [s for s in self.sources[node] if s in region]
            self.remaining[node] = len(inside)
            kept = self.taken_in.get(node, set()) - region
            self.taken_in[node] = kept
        self.taken_in[edge.target].add(name)
        self._make_ready(edge.target)
