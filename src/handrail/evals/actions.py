"""An eval never touches the outside world: `Action` nodes record what they would do, not do it.

`record_actions(pipeline)` gives a copy of the pipeline in which every `Action` node's function is
a stand-in: it records what the action would have been called with (its idempotency key and the
outputs of the state it would read: the nodes it declares in `reads`, else every output so far)
and returns `None`, as if the call had succeeded, so the run goes on to the nodes after it. The
action's checks are left out of the copy (they check the answer of a system that was not called);
everything else (names, edges, gates, the version computed when the pipeline was built) is the
pipeline's own.

`handrail eval` runs this copy unless `--run-actions` is given (docs/evals.md, "Actions"). The
stand-ins are plain functions on the copy: no change to the runner, and the real pipeline is
untouched.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import networkx as nx
from pydantic_core import to_jsonable_python

from handrail.core.nodes import Action
from handrail.core.pipeline import Pipeline

if TYPE_CHECKING:
    from handrail.core.state import State


@dataclass(frozen=True, kw_only=True, slots=True)
class ActionCall:
    """One call an eval did not make: what the action would have been called with."""

    node: str
    run_id: str
    idempotency_key: str
    """The key the action would have passed to the system it calls."""
    inputs: Mapping[str, Any]
    """The state's outputs the action would have read (JSON values), by node name."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "idempotency_key": self.idempotency_key,
            "inputs": dict(self.inputs),
        }


class ActionLog:
    """The calls the stand-ins recorded, in the order they were made (safe across threads)."""

    def __init__(self) -> None:
        self._calls: list[ActionCall] = []
        self._lock = threading.Lock()

    def add(self, call: ActionCall) -> None:
        with self._lock:
            self._calls.append(call)

    def for_run(self, run_id: str) -> tuple[ActionCall, ...]:
        """The calls one run would have made."""
        with self._lock:
            return tuple(c for c in self._calls if c.run_id == run_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._calls)


def record_actions(pipeline: Pipeline) -> tuple[Pipeline, ActionLog]:
    """A copy of `pipeline` whose `Action` nodes record their calls in the returned log instead
    of making them; `pipeline` itself when it has no `Action` node."""
    log = ActionLog()
    swapped = {
        name: replace(node, fn=_stand_in(node, log), checks=())
        for name, node in pipeline.nodes.items()
        if isinstance(node, Action)
    }
    if not swapped:
        return pipeline, log
    graph = pipeline.graph.copy()
    for name, node in swapped.items():
        graph.nodes[name]["node"] = node
    nodes = {name: swapped.get(name, node) for name, node in pipeline.nodes.items()}
    plans = {
        name: replace(plan, node=swapped[name]) if name in swapped else plan
        for name, plan in pipeline.plans.items()
    }
    copy = replace(pipeline, graph=nx.freeze(graph), nodes=nodes, plans=plans)
    for computed in fields(pipeline):  # what the pipeline computed when built (its version)
        if not computed.init:  # is its own, not the copy's: the stand-ins are no change to it
            object.__setattr__(copy, computed.name, getattr(pipeline, computed.name))
    return copy, log


def _stand_in(node: Action, log: ActionLog) -> Any:
    name = node.name
    suffix = f":{name}"

    async def not_called(state: State, idempotency_key: str) -> None:
        # the key is `{run_id}:{node}`, or `{run_id}:{node}:{visit}` in a loop
        head = idempotency_key
        if not head.endswith(suffix):
            head = head.rpartition(":")[0]
        run_id = head[: -len(suffix)] if head.endswith(suffix) else head
        outputs = state.outputs()
        read = [r for r in node.reads if r in outputs] if node.reads else list(outputs)
        log.add(
            ActionCall(
                node=name,
                run_id=run_id,
                idempotency_key=idempotency_key,
                inputs={r: to_jsonable_python(outputs[r], fallback=repr) for r in read},
            )
        )

    not_called.__doc__ = f"`{name}`, not called: an eval records the call instead."
    return not_called


__all__ = ["ActionCall", "ActionLog", "record_actions"]
