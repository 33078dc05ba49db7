"""Prompt templates: `[system]`/`[user]` sections, errors that name the file and line, and
names checked when the pipeline is built rather than when a document arrives."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel
from tests.pipelines import happy

from handrail import (
    Classify,
    Document,
    Extract,
    FakeModel,
    GraphSetupError,
    Message,
    PipelineBuilder,
    Reply,
    Route,
    Rule,
    Runner,
    RunStatus,
    Summarize,
)
from handrail.core.prompts import DEFAULT_PROMPTS, default_prompt, load_prompt, parse_prompt
from handrail.exceptions import PromptError

from ._helpers import history

PROMPTS = Path(happy.__file__).parent / "prompts"


def test_a_file_without_markers_is_the_user_message() -> None:
    prompt = parse_prompt("\n\nSummarise {{ text }}\n", "plain.md")
    assert prompt.system is None
    assert prompt.render({"text": "this"}) == [Message(role="user", content="Summarise this")]


def test_system_and_user_sections() -> None:
    prompt = parse_prompt("[system]  \nBe brief.\n\n[user]\n{{ text }}\n", "two.md")
    assert prompt.render({"text": "hi"}) == [
        Message(role="system", content="Be brief."),
        Message(role="user", content="hi"),
    ]


def test_the_user_section_may_come_first() -> None:
    prompt = parse_prompt("[user]\nQ: {{ text }}\n[system]\nBe brief.\n", "order.md")
    assert [m.role for m in prompt.render({"text": "x"})] == ["system", "user"]


def test_a_marker_must_be_alone_on_its_line() -> None:
    prompt = parse_prompt("Say [user] twice\n", "inline.md")
    assert prompt.render({}) == [Message(role="user", content="Say [user] twice")]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "Preamble\n[user]\nhi\n",
            "prompt bad.md: text before the first [system]/[user] marker; put it under a marker "
            "or remove the markers",
        ),
        (
            "[user]\na\n[user]\nb\n",
            "prompt bad.md: more than one [user] section; merge them",
        ),
        (
            "[system]\nonly a system message\n",
            "prompt bad.md: no user message; add a [user] section with the text",
        ),
        ("   \n", "prompt bad.md: no user message; add a [user] section with the text"),
    ],
)
def test_malformed_sections(source: str, message: str) -> None:
    with pytest.raises(PromptError) as info:
        parse_prompt(source, "bad.md")
    assert str(info.value) == message


def test_a_syntax_error_names_the_file_and_its_line_in_the_file() -> None:
    source = "[system]\nBe brief.\n\n[user]\nTicket:\n{{ text }\n"
    with pytest.raises(PromptError) as info:
        parse_prompt(source, "reply.md")
    assert str(info.value) == (
        "prompt reply.md, line 6 ([user] section): unexpected '}'; fix the Jinja2 syntax"
    )


def test_a_syntax_error_without_sections_counts_leading_blank_lines() -> None:
    with pytest.raises(PromptError, match=r"prompt p\.md, line 3 \(\[user\] section\): "):
        parse_prompt("\n\n{% if x %}unclosed\n", "p.md")


def test_a_malformed_template_fails_the_build_naming_node_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "reply.md").write_text("[user]\n{{ text \n")
    builder = PipelineBuilder("p", prompts=tmp_path).add(Summarize("reply", prompt="reply.md"))
    with pytest.raises(GraphSetupError) as info:
        builder.build()
    assert str(info.value) == (
        "pipeline `p`: node `reply`: prompt reply.md, line 2 ([user] section): unexpected end "
        "of template, expected 'end of print statement'; fix the Jinja2 syntax"
    )


def test_a_missing_prompt_file(tmp_path: Path) -> None:
    builder = PipelineBuilder("p", prompts=tmp_path).add(Summarize("s", prompt="nope.md"))
    with pytest.raises(GraphSetupError) as info:
        builder.build()
    assert str(info.value) == (
        f"pipeline `p`: node `s`: prompt file 'nope.md' not found under {tmp_path}; create it "
        "or pass PipelineBuilder(prompts=...) pointing at the folder that holds it"
    )


def test_load_prompt_reads_a_file_relative_to_the_folder() -> None:
    prompt = load_prompt(PROMPTS, "classify_ticket.md")
    assert prompt.name == "classify_ticket.md"
    assert prompt.names == frozenset({"labels", "text"})


def test_names_and_attributes_read_by_a_template() -> None:
    prompt = parse_prompt(
        "[system]\n{{ schema }}\n[user]\n{{ order.order_id }} {{ order.amount }} {{ category }}",
        "p.md",
    )
    assert prompt.names == frozenset({"schema", "order", "category"})
    assert prompt.attributes == {"order": frozenset({"order_id", "amount"})}


# --- names checked at build time ---------------------------------------------------------------


class Details(BaseModel):
    order_id: str
    amount: float


def test_an_undefined_name_is_caught_at_build_time(tmp_path: Path) -> None:
    (tmp_path / "s.md").write_text("{{ text }} {{ whatever }}")
    builder = PipelineBuilder("p", prompts=tmp_path).add(Summarize("s", prompt="s.md"))
    with pytest.raises(GraphSetupError) as info:
        builder.build()
    assert str(info.value) == (
        "pipeline `p`: node `s` reads `whatever` in its prompt, which is neither a node nor "
        "one of document, labels, node, schema, text; fix the name"
    )


def test_a_prompt_reading_a_later_node_is_caught_at_build_time(tmp_path: Path) -> None:
    (tmp_path / "s.md").write_text("{{ later }}")
    builder = (
        PipelineBuilder("p", prompts=tmp_path)
        .add(Summarize("s", prompt="s.md"))
        .add(Rule("later", lambda s: 1), after="s")
    )
    with pytest.raises(GraphSetupError) as info:
        builder.build()
    assert str(info.value) == (
        "pipeline `p`: node `s` reads `later`, but `later` does not run before it; add an edge "
        "from `later` (or a node after it) to `s`"
    )


def test_a_misspelt_field_is_caught_at_build_time(tmp_path: Path) -> None:
    (tmp_path / "reply.md").write_text("Refund {{ details.amout }} for {{ details.order_id }}")
    builder = (
        PipelineBuilder("p", prompts=tmp_path)
        .add(Extract("details", Details, gate=None))
        .add(Summarize("reply", prompt="reply.md"), after="details")
    )
    with pytest.raises(GraphSetupError) as info:
        builder.build()
    assert str(info.value) == (
        "pipeline `p`: the prompt of `reply` reads `details.amout`, but `details` (Details) "
        "has no field `amout`; fields: order_id, amount"
    )


def test_fields_and_methods_of_the_producer_are_allowed(tmp_path: Path) -> None:
    (tmp_path / "reply.md").write_text("{{ details.amount }} {{ details.model_dump() }}")
    pipeline = (
        PipelineBuilder("p", prompts=tmp_path)
        .add(Extract("details", Details, gate=None))
        .add(Summarize("reply", prompt="reply.md"), after="details")
        .build()
    )
    assert pipeline.prompts["reply"].attributes == {"details": {"amount", "model_dump"}}


# --- rendering ---------------------------------------------------------------------------------


def test_templates_see_builtins_and_earlier_outputs(tmp_path: Path) -> None:
    (tmp_path / "c.md").write_text(
        "[system]\n{{ node }}: {{ labels | join('/') }}\n[user]\n"
        "{{ document.id }} {{ text }} {{ size }} {{ details | tojson }}"
    )
    pipeline = (
        PipelineBuilder("p", prompts=tmp_path)
        .add(Rule("size", lambda s: len(s.text)))
        .add(Rule("details", lambda s: Details(order_id="A", amount=1.5)), after="size")
        .add(Classify("c", labels=["x", "y"], prompt="c.md", gate=None), after="details")
        .build()
    )
    model = FakeModel({"c": Reply("x")})
    Runner(pipeline, model=model).run_sync(Document(text="abc", id="doc-9"))

    system, user = model.calls[0].messages
    assert system.content == "c: x/y"
    assert user.content == 'doc-9 abc 3 {\n  "order_id": "A",\n  "amount": 1.5\n}'


@pytest.mark.parametrize("kind", sorted(DEFAULT_PROMPTS))
def test_every_kind_has_a_default_prompt(kind: str) -> None:
    prompt = default_prompt(kind)
    messages = prompt.render({"text": "the document", "labels": ("a", "b"), "schema": "{schema}"})
    assert [m.role for m in messages] == ["system", "user"]
    assert "the document" in messages[-1].content
    assert prompt.name == f"default:{kind}"


def test_rendering_an_undefined_name_raises_a_prompt_error() -> None:
    prompt = parse_prompt("{{ missing }}", "p.md")
    with pytest.raises(PromptError) as info:
        prompt.render({})
    assert str(info.value) == (
        "prompt p.md: 'missing' is undefined; read only the document and outputs of nodes that "
        "ran before this one"
    )


def optional_branch(tmp_path: Path, template: str) -> Runner:
    (tmp_path / "join.md").write_text(template)
    pipeline = (
        PipelineBuilder("p", prompts=tmp_path)
        .add(Rule("pick", lambda s: Route(s.text), routes=["a", "b"]))
        .add(Rule("a", lambda s: "from a"), after="pick", route="a")
        .add(Rule("b", lambda s: "from b"), after="pick", route="b")
        .add(Summarize("join", prompt="join.md"), after=["a", "b"])
        .build()
    )
    return Runner(pipeline, model=FakeModel({"join": Reply("ok")}))


async def test_a_branch_not_taken_fails_the_prompt_that_reads_it_as_a_step(
    tmp_path: Path,
) -> None:
    record = await optional_branch(tmp_path, "{{ a }}").run("b")

    assert record.status is RunStatus.FAILED
    assert history(record)[-1] == ("join", 1, "failed", None, ())
    assert record.error is not None
    assert (record.error.type, record.error.message) == (
        "PromptError",
        "prompt join.md: 'a' is undefined; read only the document and outputs of nodes that "
        "ran before this one",
    )


async def test_a_prompt_can_test_for_an_optional_branch(tmp_path: Path) -> None:
    runner = optional_branch(tmp_path, "{% if a is defined %}{{ a }}{% else %}{{ b }}{% endif %}")
    record = await runner.run("b")
    assert record.status is RunStatus.COMPLETED
    assert runner.model.calls[0].messages[0].content == "from b"  # type: ignore[union-attr]


def test_a_version_comment_may_open_the_file_and_is_recorded() -> None:
    prompt = parse_prompt("{# version: 3 #}\n[system]\nBe brief.\n[user]\n{{ text }}", "p.md")
    assert prompt.version == "3"
    assert prompt.system is not None and prompt.system.render(text="x") == "Be brief."
    assert parse_prompt("{{ text }}", "q.md").version is None
    with pytest.raises(PromptError, match="text before the first"):
        parse_prompt("{# version: 3 #} stray\n[user]\n{{ text }}", "r.md")
