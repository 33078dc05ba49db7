"""Drawing a pipeline as Mermaid or Graphviz DOT text."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from handrail.core.nodes import LLMNode, Review

if TYPE_CHECKING:
    from handrail.core.pipeline import Pipeline

_SHAPES = {"rule": ("{{", "}}"), "review": ("[/", "/]"), "action": ("[[", "]]")}


def _mermaid_id(name: str) -> str:
    return re.sub(r"\W", "_", name)


def _caption(pipeline: Pipeline, name: str) -> str:
    node = pipeline.nodes[name]
    extra = ""
    if isinstance(node, LLMNode) and node.gate is not None:
        extra = f" · gate {node.gate.accept:g}"
    elif isinstance(node, Review):
        extra = f" · of {node.of}"
    return f"{node.kind}: {name}{extra}"


def to_mermaid(pipeline: Pipeline) -> str:
    lines = ["flowchart TD", "    __start__([start])"]
    for name, node in pipeline.nodes.items():
        left, right = _SHAPES.get(node.kind, ("(", ")"))
        lines.append(f'    {_mermaid_id(name)}{left}"{_caption(pipeline, name)}"{right}')
    for name in pipeline.start:
        lines.append(f"    __start__ --> {_mermaid_id(name)}")
    for edge in pipeline.edges():
        arrow = "-.->" if edge.is_loop or edge.is_fallback else "-->"
        label = edge.label()
        text = f'|"{label}"|' if label else ""
        lines.append(f"    {_mermaid_id(edge.source)} {arrow}{text} {_mermaid_id(edge.target)}")
    return "\n".join(lines) + "\n"


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


_DOT_SHAPES = {"rule": "diamond", "review": "parallelogram", "action": "box3d"}


def to_dot(pipeline: Pipeline) -> str:
    lines = [
        f"digraph {_dot_quote(pipeline.name)} {{",
        "    rankdir=TB;",
        '    __start__ [shape=circle, label="start"];',
    ]
    for name, node in pipeline.nodes.items():
        shape = _DOT_SHAPES.get(node.kind, "box")
        lines.append(
            f"    {_dot_quote(name)} [shape={shape}, label={_dot_quote(_caption(pipeline, name))}];"
        )
    for name in pipeline.start:
        lines.append(f"    __start__ -> {_dot_quote(name)};")
    for edge in pipeline.edges():
        attrs = []
        if edge.label():
            attrs.append(f"label={_dot_quote(edge.label())}")
        if edge.is_loop or edge.is_fallback:
            attrs.append("style=dashed")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"    {_dot_quote(edge.source)} -> {_dot_quote(edge.target)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"
