"""`Document` and the immutable `State` a run carries."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping

import pytest

from handrail import Document, State
from handrail.core.state import NoOutput


def test_a_document_defaults_its_hash_and_id_from_its_text() -> None:
    doc = Document(text="hello")
    digest = hashlib.sha256(b"hello").hexdigest()
    assert doc.hash == digest
    assert doc.id == digest[:16]
    assert Document(text="hello", id="mail-1").id == "mail-1"
    assert Document(text="hello", id="mail-1").hash == digest


def test_document_of_text_mapping_or_document() -> None:
    doc = Document(text="x", id="given")
    assert Document.of(doc) is doc
    assert Document.of("plain").text == "plain"
    from_mapping = Document.of({"b": 1, "a": "é"})
    assert from_mapping.text == '{"a": "é", "b": 1}'
    assert from_mapping.data == {"a": "é", "b": 1}
    # key order does not change the document (nor its run id)
    assert Document.of({"a": "é", "b": 1}).hash == from_mapping.hash


def test_document_data_refuses_text_that_is_not_json() -> None:
    with pytest.raises(ValueError):
        _ = Document(text="not json").data


def test_a_document_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Document(text="x").text = "y"  # type: ignore[misc]


def test_state_is_a_mapping_of_outputs_over_a_document() -> None:
    doc = Document(text="the text")
    state = State(doc, {"a": 1})
    assert isinstance(state, Mapping)
    assert state.document is doc
    assert state.text == "the text"
    assert state["a"] == 1
    assert dict(state) == {"a": 1}
    assert len(state) == 1
    assert "a" in state and "b" not in state
    assert state.get("b", "default") == "default"


def test_with_output_returns_a_new_state_and_leaves_the_old_one() -> None:
    first = State(Document(text="x"))
    second = first.with_output("a", 1)
    third = second.with_output("a", 2).with_output("b", 3)

    assert dict(first) == {}
    assert dict(second) == {"a": 1}
    assert dict(third) == {"a": 2, "b": 3}
    assert third.document is first.document


def test_outputs_is_a_copy() -> None:
    state = State(Document(text="x"), {"a": 1})
    outputs = state.outputs()
    outputs["a"] = 99
    assert state["a"] == 1


def test_the_outputs_given_are_copied() -> None:
    given = {"a": 1}
    state = State(Document(text="x"), given)
    given["a"] = 2
    assert state["a"] == 1


def test_reading_a_missing_output_names_it_and_says_why() -> None:
    state = State(Document(text="x"))
    with pytest.raises(NoOutput) as info:
        state["refund"]
    assert isinstance(info.value, KeyError)
    assert str(info.value) == (
        "`refund` has no output in this run: it did not run (a branch not taken?) or is not a "
        "node of this pipeline; read it only from nodes that come after it"
    )


def test_state_has_no_attribute_assignment() -> None:
    state = State(Document(text="x"))
    with pytest.raises(AttributeError):
        state.extra = 1  # type: ignore[attr-defined]


def test_repr_names_the_document_and_outputs() -> None:
    state = State(Document(text="x", id="doc-1"), {"a": 1})
    assert repr(state) == "State(document='doc-1', outputs={'a': 1})"
