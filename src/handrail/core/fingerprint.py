"""A pipeline's version: a short hash of what decides its outputs, computed once when it is built.

Two runs of one document are "the same" (one run id, the second reuses the first's result) only
when the pipeline's fingerprint and the model agree. The fingerprint covers:

- the structure: node names and kinds, edges with their routes, conditions and loop limits, the
  start nodes, budget, timeout, whether it can pause, review policies;
- LLM nodes: the prompt's text (a hash of the file or default template), the gate, labels, the
  output schema (its JSON schema), `max_reasks`, provider `params`, the node's model name and
  fallback, the retry policy and `on_exhausted`, for `Extract` the pages shown as images
  (`images=`) when it shows any (a text-only node's fingerprint is what it was before), and
  for a node with labelled examples their settings and a hash of the pool (ids, texts and
  outputs: a node without examples keeps the fingerprint it had before examples existed);
- checks, rules, actions and conditions (Python functions): each function's qualified name, plus
  a hash of its compiled code (bytecode, constants, names it uses) and of the plain
  values it closes over or takes as defaults (numbers, strings, ... as a check helper such as
  `sums_to("total", ["lines"])` keeps them).

Not covered: what a function reads at call time from elsewhere (a global variable's value, a file,
another module's function it calls), pydantic validators' code (only the schema they produce),
and objects a function closes over that are not plain values. Where the code lives is not
covered either: module names and file paths are left out, so a project folder cloned or moved
elsewhere (CI's checkout, a colleague's machine) keeps its pipeline versions and run ids. Change
one of the others and pass `--rerun` (or `Runner.run(..., rerun=True)`). Descriptions, hooks and
`learn_from_reviews` never change it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import types
from collections.abc import Callable, Mapping
from dataclasses import fields, is_dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from handrail.core.records import ModelSpec

if TYPE_CHECKING:
    from handrail.core.pipeline import Pipeline

LENGTH = 12
"""Hex digits of a fingerprint."""

_PLAIN = (str, int, float, bool, type(None))


def pipeline_fingerprint(pipeline: Pipeline) -> str:
    """The short hex fingerprint of `pipeline` (see the module docs for what it covers)."""
    data = {
        "name": pipeline.name,
        "start": list(pipeline.start),
        "budget": _value(pipeline.budget),
        "timeout": pipeline.timeout,
        "pausable": pipeline.pausable,
        "review": _value(pipeline.review),
        "nodes": {name: _node(node) for name, node in sorted(pipeline.nodes.items())},
        "prompts": {
            name: [prompt.name, prompt.digest] for name, prompt in sorted(pipeline.prompts.items())
        },
        "edges": sorted(
            (_value(edge) for edge in pipeline.edges()),
            key=lambda e: json.dumps(e, sort_keys=True),
        ),
    }
    return digest(data)[:LENGTH]


def digest(data: Any) -> str:
    """The SHA-256 hex digest of JSON data, keys sorted (the same in every process)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def describe_model(model: Any) -> ModelSpec | None:
    """What a model is, as a run's record keeps it: its `spec` attribute when it has a
    `ModelSpec` there, else its name alone."""
    if model is None:
        return None
    spec = getattr(model, "spec", None)
    return spec if isinstance(spec, ModelSpec) else ModelSpec(name=str(model.name))


def spec_json(spec: ModelSpec) -> dict[str, Any]:
    """A `ModelSpec` as JSON data."""
    return {
        "name": spec.name,
        "params": _plain(dict(spec.params)),
        "record": spec.record,
        "replay": spec.replay,
    }


def model_identity(spec: ModelSpec | None, models: Mapping[str, Any] = {}) -> str:
    """What of the models decides a run's outputs, hashed: the default model's name and
    parameters and the named models' names. Where its answers are recorded does not decide
    them, and a replay gives the recorded model's own answers: neither is part of it."""
    data = {
        "model": None if spec is None else [spec.name, _plain(dict(spec.params))],
        "models": {name: _value(model) for name, model in sorted(models.items())},
    }
    return digest(data)[:16]


def function_identity(fn: Callable[..., Any]) -> dict[str, Any]:
    """A function's qualified name and a hash of its code and plain captured values (not its
    module: a pipeline file loaded by path gets a module name from where it lies)."""
    if isinstance(fn, functools.partial):
        return {
            "partial": function_identity(fn.func),
            "args": _plain(fn.args),
            "keywords": _plain(fn.keywords),
        }
    target: Any = fn
    if not isinstance(fn, types.FunctionType | types.MethodType | types.BuiltinFunctionType):
        call = type(fn).__call__  # a callable object: its class's __call__
        if isinstance(call, types.FunctionType):
            target = call
    if isinstance(target, types.MethodType):
        target = target.__func__
    code = getattr(target, "__code__", None)
    identity: dict[str, Any] = {
        "name": getattr(fn, "__qualname__", None) or type(fn).__qualname__,
    }
    if isinstance(code, types.CodeType):
        captured = [
            cell.cell_contents for cell in (getattr(target, "__closure__", None) or ())
        ] + list(getattr(target, "__defaults__", None) or ())
        identity["code"] = digest([_code(code), [_plain(v) for v in captured]])[:16]
    if fn is not target and not isinstance(fn, types.MethodType):
        identity["state"] = _plain(getattr(fn, "__dict__", None))
    return identity


def _code(code: types.CodeType) -> Any:
    """Bytecode, constants (nested code objects recursively) and the names it uses: not the file
    name or line numbers, so moving a function in its file keeps its fingerprint."""
    return [
        code.co_code.hex(),
        [_code(c) if isinstance(c, types.CodeType) else _plain(c) for c in code.co_consts],
        list(code.co_names),
        code.co_argcount,
        code.co_kwonlyargcount,
    ]


def _plain(value: Any) -> Any:
    """A plain value as JSON data; anything else by its type's name only."""
    if isinstance(value, _PLAIN):
        return value if not isinstance(value, float) or value == value else "nan"
    if isinstance(value, tuple | list | frozenset | set):
        items = [_plain(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, frozenset | set) else items
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, types.FunctionType):  # by name and code only: no recursion
        return {"name": value.__qualname__, "code": digest(_code(value.__code__))[:16]}
    return f"<{type(value).__qualname__}>"


def _node(node: Any) -> dict[str, Any]:
    data: dict[str, Any] = _value(node)
    data["kind"] = node.kind
    data.pop("description", None)
    if not data.get("images"):  # text only: pipelines from before page images keep their ids
        data.pop("images", None)
    data.pop("examples", None)  # without examples: pipelines from before them keep their ids
    data.pop("learn_from_reviews", None)  # keeping reviews changes no output; the pool does
    examples = getattr(node, "examples", None)
    if examples is not None:  # a run with other examples is another run
        data["examples"] = {**_value(examples.settings()), "pool": examples.digest(node.name)}
    schema = getattr(node, "output_schema", None)
    if callable(schema):
        data["output_schema"] = _plain(schema())
    return data


def _value(value: Any) -> Any:
    """Records (nodes, gates, checks, policies...) field by field; functions by identity; models
    by name; pydantic classes by their JSON schema."""
    if value is None or isinstance(value, _PLAIN):
        return _plain(value)
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, type):
        schema = getattr(value, "model_json_schema", None)
        if callable(schema):
            return {"class": value.__qualname__, "schema": _plain(schema())}
        return value.__qualname__
    if isinstance(value, tuple | list | frozenset | set):
        items = [_value(v) for v in value]
        if isinstance(value, frozenset | set):
            items.sort(key=lambda v: json.dumps(v, sort_keys=True, default=str))
        return items
    if isinstance(value, Mapping):
        return {str(k): _value(v) for k, v in value.items()}
    name = getattr(value, "name", None)
    if isinstance(name, str) and callable(getattr(value, "generate", None)):  # a Model
        spec = getattr(value, "spec", None)
        return {"model": name, "spec": _value(spec)} if spec is not None else {"model": name}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _value(getattr(value, f.name)) for f in fields(value)}
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model instance (an escalation's default output)
        return _plain(dump(mode="json"))
    if callable(value):
        return function_identity(value)
    return _plain(value)


__all__ = [
    "LENGTH",
    "describe_model",
    "digest",
    "function_identity",
    "model_identity",
    "pipeline_fingerprint",
    "spec_json",
]
