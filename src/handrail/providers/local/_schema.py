"""The JSON schema an Extract asks for, cut down to what llama.cpp's grammar can enforce.

llama-cpp-python turns a JSON schema into a GBNF grammar (`json_schema_to_gbnf`), and llama.cpp
compiles that. Not every JSON-schema constraint survives the trip: a `pattern` is translated
regex by regex, and `\\d`, `\\w`, `\\.` or a lookahead come out as a grammar llama.cpp rejects
(every extraction then fails); `minimum`, `multipleOf` and most `format`s are ignored anyway;
a `maxLength` of thousands becomes a grammar thousands of rules deep.

`grammar_schema` keeps what the grammar enforces faithfully (the shape: types, properties,
required, items, enums, consts, unions, refs; `minItems`/`maxItems` and `minLength`/`maxLength`
up to `MAX_REPEAT`; the `date`, `time`, `date-time` and `uuid` formats) and drops the rest,
saying what it dropped. Nothing is lost: the runner validates the output against the full
pydantic schema afterwards and re-asks with the errors (`max_reasks`), so a value that breaks
a dropped constraint is re-asked or reviewed, never accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MAX_REPEAT = 256
"""The largest `maxLength` / `maxItems` (and `min...`) kept: llama-cpp-python writes a bound of n
as n nested optional groups, so larger bounds make grammars too deep to be worth it."""

GRAMMAR_FORMATS = frozenset(
    {"date", "time", "date-time", "uuid", *(f"uuid{i}" for i in range(1, 6))}
)
"""String formats llama-cpp-python's converter turns into grammar rules."""

_SHAPE = frozenset({"type", "required", "enum", "const", "$ref"})
"""Kept as they are: they decide the JSON's shape."""
_SUBSCHEMAS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_STRUCTURE = _SHAPE | _SUBSCHEMAS | {"properties", "items", "additionalProperties"}
_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "$comment",
        "discriminator",
        "nullable",
    }
)
"""Dropped without a word: they say nothing about which JSON is valid."""
_LENGTHS = {"string": ("minLength", "maxLength"), "array": ("minItems", "maxItems")}
ANY_VALUE: dict[str, Any] = {"type": ["object", "array", "string", "number", "boolean", "null"]}
"""What a schema with no shape left means: any JSON value. (The converter would read `{}` as
"an object".)"""


@dataclass(frozen=True, kw_only=True, slots=True)
class Dropped:
    """A constraint left out of the grammar (pydantic still checks it after generation)."""

    field: str
    """Where: `code`, `lines[].code`, `Line.sku` (a field of a model defined once in `$defs`);
    `(root)` for the schema itself."""
    keyword: str
    """The JSON-schema keyword: `pattern`, `minimum`, `format`..."""
    value: Any

    def __str__(self) -> str:
        return f"`{self.field}` {self.keyword}={self.value!r}"


def grammar_schema(schema: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[Dropped, ...]]:
    """`schema` without the constraints the grammar cannot enforce, and what was dropped."""
    dropped: list[Dropped] = []
    out = _node(schema, "", dropped)
    return out, tuple(dropped)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _node(schema: Any, path: str, dropped: list[Dropped]) -> Any:
    if not isinstance(schema, Mapping):
        return schema  # `true` / `false` schemas, or malformed input the converter will name
    if len(schema.get("allOf") or ()) == 1 and isinstance(schema["allOf"][0], Mapping):
        # pydantic's `allOf: [{$ref}]` beside a description: the converter would build an
        # object from it, so use the one schema itself.
        schema = {**{k: v for k, v in schema.items() if k != "allOf"}, **schema["allOf"][0]}
    out: dict[str, Any] = {}
    kind = schema.get("type")
    for key, value in schema.items():
        where = path or "(root)"
        if key in _SHAPE:
            out[key] = value
        elif key == "properties" and isinstance(value, Mapping):
            out[key] = {name: _node(sub, _join(path, name), dropped) for name, sub in value.items()}
        elif key in ("$defs", "definitions") and isinstance(value, Mapping):
            out[key] = {name: _node(sub, name, dropped) for name, sub in value.items()}
        elif key == "items":
            if isinstance(value, list):
                out[key] = [_node(sub, f"{path}[{i}]", dropped) for i, sub in enumerate(value)]
            else:
                out[key] = _node(value, f"{path}[]", dropped)
        elif key == "additionalProperties":
            out[key] = _node(value, _join(path, "*"), dropped)
        elif key in _SUBSCHEMAS and isinstance(value, list):
            out[key] = [_node(sub, path, dropped) for sub in value]
        elif key in ("minLength", "maxLength", "minItems", "maxItems"):
            keep = key in _LENGTHS.get(kind, ()) if isinstance(kind, str) else False
            if keep and isinstance(value, int) and 0 <= value <= MAX_REPEAT:
                out[key] = value
            else:
                dropped.append(Dropped(field=where, keyword=key, value=value))
        elif key == "format":
            if kind in (None, "string") and value in GRAMMAR_FORMATS:
                out[key] = value
            else:
                dropped.append(Dropped(field=where, keyword=key, value=value))
        elif key in _ANNOTATIONS:
            continue
        else:  # pattern, minimum, maximum, multipleOf, uniqueItems, not, if/then/else...
            dropped.append(Dropped(field=where, keyword=key, value=value))
    if not any(key in _STRUCTURE for key in out):
        return {**ANY_VALUE, **{k: v for k, v in out.items() if k in ("$defs", "definitions")}}
    return out
