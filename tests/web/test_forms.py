"""The decision form from a schema, and the output read back from the submitted strings."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel

from handrail.web.forms import form_path, read_form, shape_of, show, widgets


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Part(BaseModel):
    sku: str
    count: int
    weight: float | None = None


class Order(BaseModel):
    kind: Literal["order", "return"]
    colour: Colour
    due: date | None = None
    gift: bool
    tags: list[str]
    parts: list[Part]
    priority: int = 3


def test_shapes_follow_the_types() -> None:
    shape = shape_of(Order)
    fields = dict(shape.fields)
    assert shape.kind == "group"
    assert fields["kind"].kind == "select" and [c for c, _ in fields["kind"].choices] == [
        "order",
        "return",
    ]
    assert fields["colour"].choices == (("red", "red"), ("blue", "blue"))
    assert (fields["due"].kind, fields["due"].nullable, fields["due"].required) == (
        "date",
        True,
        False,
    )
    assert fields["gift"].kind == "bool"
    assert fields["tags"].kind == "list" and fields["tags"].item is not None
    assert fields["tags"].item.kind == "text"
    parts = fields["parts"].item
    assert parts is not None and parts.kind == "group"
    assert dict(parts.fields)["weight"].kind == "number" and dict(parts.fields)["weight"].nullable
    assert fields["priority"].kind == "integer" and not fields["priority"].required
    assert shape_of(dict[str, int]).kind == "json"
    assert shape_of(Literal["a", "b"]).kind == "select"


def test_the_form_shows_values_and_one_blank_item_per_list() -> None:
    value = {
        "kind": "order",
        "colour": "red",
        "due": None,
        "gift": True,
        "tags": ["a"],
        "parts": [{"sku": "X-1", "count": 2, "weight": 1.5}],
        "priority": 3,
    }
    shown = {w.path: w for w in widgets(shape_of(Order), value, target="order")}
    assert shown["gift"].value == "true" and shown["due"].value == ""
    parts = shown["parts"]
    assert [item.path for item in parts.children] == ["parts.0", "parts.1"]
    assert parts.children[1].blank and not parts.children[0].blank
    assert [c.value for c in parts.children[0].children] == ["X-1", "2", "1.5"]
    assert parts.children[0].children[0].id == "field-parts-0-sku"
    assert parts.children[0].children[0].error_id == "error-parts-0-sku"
    assert show(shape_of(float), 1180.0) == "1180"
    dates = widgets(shape_of(Order), value | {"due": "2026-11-14"}, target="order")
    assert next(w for w in dates if w.path == "due").date_input
    odd = widgets(shape_of(Order), value | {"due": "14/11/2026"}, target="order")
    assert not next(w for w in odd if w.path == "due").date_input  # shown as text, kept


def test_submitted_strings_become_the_typed_output() -> None:
    form = {
        "out.kind": "return",
        "out.colour": "blue",
        "out.due": "",
        "out.gift": "false",
        "out.tags.0": "fragile",
        "out.tags.1": "",
        "out.tags.2": "urgent",
        "out.parts.0.sku": "X-1",
        "out.parts.0.count": "2",
        "out.parts.0.weight": "",
        "out.parts.1.sku": "Y-2",
        "out.parts.1.count": "1,200",
        "out.parts.1.weight": "0.5",
        "out.parts.2.sku": "Z-3",
        "out.parts.2.count": "seven",
        "out.parts.2.weight": "",
        "out.parts.3.sku": "",
        "out.parts.3.count": "",
        "out.parts.3.weight": "",
        "out.priority": "",
    }
    reading = read_form(shape_of(Order), form, target="order", dropped=["parts.0"])
    assert reading.output == {
        "kind": "return",
        "colour": "blue",
        "due": None,
        "gift": False,
        "tags": ["fragile", "urgent"],  # the empty item is no item
        "parts": [
            {"sku": "Y-2", "count": 1200, "weight": 0.5},
            {"sku": "Z-3", "count": "seven", "weight": None},
        ],  # the schema says why
    }
    assert reading.errors == []
    # the schema's error on parts.1.count is about the form's item 2 (item 0 was removed)
    assert form_path("parts.1.count", reading.paths or {}) == "parts.2.count"
    assert form_path("tags.1", reading.paths or {}) == "tags.2"
    assert form_path("kind", reading.paths or {}) == "kind"


def test_a_value_that_is_one_label_and_json_fields() -> None:
    label = read_form(
        shape_of(Literal["refund", "bug"]), {"out.category": "bug"}, target="category"
    )
    assert label.output == "bug"
    broken = read_form(shape_of(dict[str, int]), {"out.extra": "{not json"}, target="extra")
    assert broken.errors and broken.errors[0][0] == "extra" and "not JSON" in broken.errors[0][1]
