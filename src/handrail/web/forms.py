"""The decision form, generated from the node's output type, and the output read back from it.

`shape_of(type)` describes the type once (nested models, lists, enums and Literals, dates,
numbers, bools, optional fields); `widgets(...)` lays out the inputs for an output (or for the
values a reviewer submitted, kept on a 422); `read_form(...)` turns the submitted strings back
into the output (numbers, bools, lists, nested objects, an empty optional field as None) for
the service to validate. Inputs are named `out.<dotted path>`; a list's items are numbered in
the form, and `form_path` maps an error's path in the output back to the input it came from.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel

from handrail.core.values import read_number
from handrail.review import FieldView
from handrail.review.fields import label as path_label

Kind = Literal[
    "text",
    "integer",
    "number",
    "bool",
    "select",
    "date",
    "datetime",
    "json",
    "group",
    "list",
]
OUT = "out."
"""Prefix of the inputs holding the output."""
DROP = "drop."
"""Prefix of a list item's "remove" checkbox."""
_DEPTH = 8
"""Deeper (or recursive) models are edited as JSON."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Shape:
    """What a value of a type looks like in the form."""

    kind: Kind
    nullable: bool = False
    """None is a valid value (an optional field): an empty input means None."""
    required: bool = True
    """The field must be given (an empty, not nullable, not required one is left out)."""
    choices: tuple[tuple[str, Any], ...] = ()
    """For selects: (shown and submitted text, the value)."""
    fields: tuple[tuple[str, Shape], ...] = ()
    """For groups (a pydantic model): its fields in order."""
    item: Shape | None = None
    """For lists: the shape of one item."""
    help: str | None = None
    """The field's description, if the model gives one."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Widget:
    """One input (or fieldset, or list of items) of the decision form."""

    path: str
    """Dotted path in the form (list items by their number in the form)."""
    label: str
    shape: Shape
    value: str = ""
    """What the input shows."""
    children: tuple[Widget, ...] = ()
    blank: bool = False
    """The empty item at the end of a list (a new item once filled in; ignored while empty)."""
    dropped: bool = False
    """A list item whose remove box is ticked."""
    field: FieldView | None = None
    """The model's value, confidence, threshold and reasons for this leaf."""
    error: str | None = None

    @property
    def name(self) -> str:
        return OUT + self.path

    @property
    def drop_name(self) -> str:
        return DROP + self.path

    @property
    def id(self) -> str:
        return "field-" + dom_id(self.path)

    @property
    def error_id(self) -> str:
        return "error-" + dom_id(self.path)

    @property
    def kind(self) -> Kind:
        return self.shape.kind

    @property
    def date_input(self) -> bool:
        """A date the browser's date picker can hold (another value is shown as text, so it
        is kept as it is rather than emptied)."""
        if self.shape.kind != "date" or not self.value:
            return self.shape.kind == "date"
        try:
            dt.date.fromisoformat(self.value)
        except ValueError:
            return False
        return len(self.value) == 10

    @property
    def leaf(self) -> bool:
        return self.shape.kind not in ("group", "list")


def dom_id(path: str) -> str:
    """`lines.0.amount` -> `lines-0-amount` (the contract's ids: `field-...`, `error-...`)."""
    return path.replace(".", "-")


# --- the type's shape ----------------------------------------------------------------------------


def shape_of(annotation: Any, *, depth: int = 0) -> Shape:
    """How values of `annotation` are edited; unknown types are edited as JSON."""
    nullable = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            nullable = nullable or len(args) < len(typing.get_args(annotation))
            if len(args) == 1:
                annotation = args[0]
                continue
            return Shape(kind="json", nullable=nullable)
        break
    shape = _plain_shape(annotation, origin, depth)
    return Shape(
        kind=shape.kind,
        nullable=nullable,
        choices=shape.choices,
        fields=shape.fields,
        item=shape.item,
    )


def _plain_shape(annotation: Any, origin: Any, depth: int) -> Shape:
    if origin is Literal:
        return Shape(
            kind="select", choices=tuple((_text(v), v) for v in typing.get_args(annotation))
        )
    if origin in (list, tuple, set, frozenset, Sequence, typing.Sequence):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if depth >= _DEPTH or (origin is tuple and len(args) > 1):
            return Shape(kind="json")
        return Shape(kind="list", item=shape_of(args[0] if args else Any, depth=depth + 1))
    if not isinstance(annotation, type):
        return Shape(kind="json")
    if issubclass(annotation, BaseModel):
        if depth >= _DEPTH:
            return Shape(kind="json")
        fields = []
        for name, info in annotation.model_fields.items():
            inner = shape_of(info.annotation, depth=depth + 1)
            fields.append(
                (
                    name,
                    Shape(
                        kind=inner.kind,
                        nullable=inner.nullable,
                        required=info.is_required(),
                        choices=inner.choices,
                        fields=inner.fields,
                        item=inner.item,
                        help=info.description,
                    ),
                )
            )
        return Shape(kind="group", fields=tuple(fields))
    if issubclass(annotation, enum.Enum):
        return Shape(kind="select", choices=tuple((_text(m.value), m.value) for m in annotation))
    if issubclass(annotation, bool):
        return Shape(kind="bool")
    if issubclass(annotation, int):
        return Shape(kind="integer")
    if issubclass(annotation, float | Decimal):
        return Shape(kind="number")
    if issubclass(annotation, dt.datetime):
        return Shape(kind="datetime")
    if issubclass(annotation, dt.date):
        return Shape(kind="date")
    if issubclass(annotation, str):
        return Shape(kind="text")
    return Shape(kind="json")


def shape_of_value(value: Any) -> Shape:
    """A shape guessed from a value, when the node's type is not known (its code not found)."""
    if isinstance(value, Mapping):
        return Shape(
            kind="group", fields=tuple((str(k), shape_of_value(v)) for k, v in value.items())
        )
    if isinstance(value, bool):
        return Shape(kind="bool")
    if isinstance(value, int):
        return Shape(kind="integer")
    if isinstance(value, float):
        return Shape(kind="number")
    if isinstance(value, str):
        return Shape(kind="text")
    return Shape(kind="json", nullable=True)


# --- laying out the form -------------------------------------------------------------------------


def widgets(
    shape: Shape,
    output: Any,
    *,
    target: str,
    fields: Sequence[FieldView] = (),
    submitted: Mapping[str, str] | None = None,
    dropped: Sequence[str] = (),
    errors: Mapping[str, str] | None = None,
) -> tuple[Widget, ...]:
    """The form's top-level widgets for `output` (a model's fields; or one input named after
    the node, for an output that is one value), or for the `submitted` strings when given
    (a re-shown form keeps what the reviewer typed). `errors` are by form path."""
    layout = _Layout(
        fields={f.path: f for f in fields},
        submitted=submitted,
        dropped=frozenset(dropped),
        errors=errors or {},
    )
    if shape.kind == "group":
        values = output if isinstance(output, Mapping) else {}
        return tuple(layout.widget(sub, name, values.get(name)) for name, sub in shape.fields)
    return (layout.widget(shape, target, output),)


@dataclass(frozen=True, kw_only=True, slots=True)
class _Layout:
    fields: Mapping[str, FieldView]
    submitted: Mapping[str, str] | None
    dropped: frozenset[str]
    errors: Mapping[str, str]

    def widget(self, shape: Shape, path: str, value: Any, *, blank: bool = False) -> Widget:
        base = Widget(
            path=path,
            label=path_label(path),
            shape=shape,
            blank=blank,
            dropped=path in self.dropped,
            error=self.errors.get(path),
        )
        if shape.kind == "group":
            values = value if isinstance(value, Mapping) else {}
            children = tuple(
                self.widget(sub, f"{path}.{name}", values.get(name), blank=blank)
                for name, sub in shape.fields
            )
            return replace(base, children=children)
        if shape.kind == "list":
            assert shape.item is not None
            if self.submitted is not None:
                numbers = _indices(self.submitted, path)
                items = [
                    self.widget(shape.item, f"{path}.{n}", None)
                    for n in numbers
                    if not _all_empty(self.submitted, f"{path}.{n}")
                ]
                next_number = max(numbers, default=-1) + 1
            else:
                values_list = value if isinstance(value, list | tuple) else []
                items = [
                    self.widget(shape.item, f"{path}.{n}", item)
                    for n, item in enumerate(values_list)
                ]
                next_number = len(items)
            items.append(self.widget(shape.item, f"{path}.{next_number}", None, blank=True))
            return replace(base, children=tuple(items))
        shown = (
            self.submitted.get(OUT + path, "")
            if self.submitted is not None
            else ("" if blank else show(shape, value))
        )
        return replace(base, value=shown, field=self.fields.get(path))


def show(shape: Shape, value: Any) -> str:
    """A value as its input shows it."""
    if value is None:
        return ""
    if shape.kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return _text(value.value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _indices(submitted: Mapping[str, str], path: str) -> list[int]:
    """The item numbers of list `path` among the submitted inputs, in order."""
    prefix = OUT + path + "."
    found = set()
    for key in submitted:
        if key.startswith(prefix):
            head = key[len(prefix) :].split(".", 1)[0]
            if head.isdigit():
                found.add(int(head))
    return sorted(found)


def _all_empty(submitted: Mapping[str, str], path: str) -> bool:
    """Whether every input of the item (or field) at `path` is empty."""
    exact, prefix = OUT + path, OUT + path + "."
    return all(
        not value.strip()
        for key, value in submitted.items()
        if key == exact or key.startswith(prefix)
    )


# --- reading it back -----------------------------------------------------------------------------


@dataclass(kw_only=True, slots=True)
class Reading:
    """The output read from a submitted form."""

    output: Any = None
    errors: list[tuple[str, str]] | None = None
    """(form path, message) for inputs that could not be read at all (JSON that does not
    parse); the schema's own errors come from the service."""
    paths: dict[str, str] | None = None
    """Output path of each list item -> its form path (items dropped or left blank shift the
    numbers)."""


def read_form(
    shape: Shape, form: Mapping[str, str], *, target: str, dropped: Sequence[str] = ()
) -> Reading:
    """The output the submitted `form` (`out.<path>` -> text) describes."""
    reading = Reading(errors=[], paths={})
    gone = frozenset(dropped)
    if shape.kind == "group":
        reading.output = _read_group(shape, "", "", form, gone, reading)
    else:
        value = _read(shape, target, target, form, gone, reading)
        reading.output = None if value is _MISSING else value
    return reading


_MISSING: Any = object()


def _read(
    shape: Shape,
    path: str,
    out_path: str,
    form: Mapping[str, str],
    gone: frozenset[str],
    reading: Reading,
) -> Any:
    if shape.kind == "group":
        return _read_group(shape, path, out_path, form, gone, reading)
    if shape.kind == "list":
        assert shape.item is not None and reading.paths is not None
        items: list[Any] = []
        for number in _indices(form, path):
            item_path = f"{path}.{number}"
            if item_path in gone or _all_empty(form, item_path):
                continue
            item_out = f"{out_path}.{len(items)}"
            reading.paths[item_out] = item_path
            value = _read(shape.item, item_path, item_out, form, gone, reading)
            items.append(None if value is _MISSING else value)
        return items
    text = form.get(OUT + path)
    if text is None:
        return _MISSING
    return _leaf(shape, path, text, reading)


def _read_group(
    shape: Shape,
    path: str,
    out_path: str,
    form: Mapping[str, str],
    gone: frozenset[str],
    reading: Reading,
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, sub in shape.fields:
        sub_path = f"{path}.{name}" if path else name
        sub_out = f"{out_path}.{name}" if out_path else name
        value = _read(sub, sub_path, sub_out, form, gone, reading)
        if value is not _MISSING:
            values[name] = value
    return values


def _leaf(shape: Shape, path: str, text: str, reading: Reading) -> Any:
    stripped = text.strip()
    if not stripped and (shape.kind != "text" or shape.nullable):
        if shape.nullable:
            return None
        return _MISSING  # left out: the schema's default, or "field required"
    if shape.kind in ("integer", "number"):
        number = read_number(stripped)
        if not isinstance(number, Decimal):
            return text  # the schema says why it is not a number
        if shape.kind == "integer" and number == number.to_integral_value():
            return int(number)
        return float(number)
    if shape.kind == "bool":
        return {"true": True, "false": False}.get(stripped.lower(), text)
    if shape.kind == "select":
        return next((value for shown, value in shape.choices if shown == text), text)
    if shape.kind == "json":
        try:
            return json.loads(text)
        except ValueError as e:
            assert reading.errors is not None
            reading.errors.append((path, f"not JSON ({e}); write the value as JSON"))
            return text
    if shape.kind in ("date", "datetime"):
        return stripped
    return text


def form_path(path: str, paths: Mapping[str, str]) -> str:
    """The form path of an output path (`lines.1.amount` -> `lines.2.amount` when item 1 of
    the form was removed)."""
    parts = path.split(".")
    for size in range(len(parts), 0, -1):
        prefix = ".".join(parts[:size])
        if prefix in paths:
            return ".".join([paths[prefix], *parts[size:]])
    return path


def changed_inputs(shown: Sequence[Widget], form: Mapping[str, str]) -> list[str]:
    """The form paths of the leaves whose submitted text differs from what the form showed
    (an approval that would silently drop a correction)."""
    changed = []
    stack = list(shown)
    while stack:
        widget = stack.pop(0)
        if widget.blank:
            if not _all_empty(form, widget.path):
                changed.append(widget.path)
            continue
        if widget.leaf:
            given = form.get(widget.name)
            if given is not None and given.strip() != widget.value.strip():
                changed.append(widget.path)
        else:
            stack[:0] = widget.children
    return changed


__all__ = [
    "DROP",
    "OUT",
    "Reading",
    "Shape",
    "Widget",
    "changed_inputs",
    "dom_id",
    "form_path",
    "read_form",
    "shape_of",
    "shape_of_value",
    "show",
    "widgets",
]
