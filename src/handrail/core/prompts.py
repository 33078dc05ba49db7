"""Prompt templates: one file per prompt, Jinja2, loaded and checked when the pipeline is built.

A file may hold a system and a user message, each introduced by a line `[system]` or `[user]`;
without markers the whole file is the user message. Templates see `document` (the `Document`),
`text`, every earlier node's output by node name, and for the node itself `labels` (classify),
`schema` (the JSON schema of the expected output) and `examples` (the labelled examples chosen
for this document, the most similar last: each has `text`, `output` and `id`; empty for a node
without examples; docs/learning.md). Undefined names are errors, never blanks.

Jinja2 is a pure templating library; the core uses it as it uses pydantic (docs/architecture.md).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from handrail.core.model import Message
from handrail.exceptions import PromptError

if TYPE_CHECKING:
    from jinja2 import Template

_SECTION = re.compile(r"^\[(system|user)\][ \t]*$", re.MULTILINE)
_COMMENT = re.compile(r"\{#.*?#\}", re.DOTALL)
_VERSION = re.compile(r"\{#-?\s*version:\s*([^\s#-]+)\s*-?#\}")
BUILTIN_NAMES = frozenset({"document", "text", "labels", "schema", "node"})
EXAMPLES = "examples"
"""The name under which a template sees its node's examples (a node named so keeps its name for
nodes without examples)."""

DEFAULT_PROMPTS: dict[str, str] = {
    "classify": (
        "[system]\nYou classify documents. Answer with exactly one of the labels.\n"
        "[user]\nLabels: {{ labels | join(', ') }}\n\nDocument:\n{{ text }}\n\nLabel:"
    ),
    "extract": (
        "[system]\nYou extract fields from documents as JSON matching this schema:\n"
        "{{ schema }}\nUse null for a field the document does not give.\n"
        "[user]\n{{ text }}"
    ),
    "summarize": "[system]\nSummarise the document in two sentences.\n[user]\n{{ text }}",
    "draft": "[system]\nDraft a short, polite reply to this message.\n[user]\n{{ text }}",
}

EXAMPLE_PROMPTS: dict[str, str] = {
    # The examples go in the system message, so the user message is the document alone, as
    # without examples; the most similar comes last, nearest the document.
    "classify": (
        "[system]\nYou classify documents. Answer with exactly one of the labels."
        "{% if examples %}\n\nLabelled examples:{% for example in examples %}\n\n"
        "Example {{ loop.index }}:\n{{ example.text }}\nLabel: {{ example.output }}"
        "{% endfor %}{% endif %}\n"
        "[user]\nLabels: {{ labels | join(', ') }}\n\nDocument:\n{{ text }}\n\nLabel:"
    ),
    "extract": (
        "[system]\nYou extract fields from documents as JSON matching this schema:\n"
        "{{ schema }}\nUse null for a field the document does not give."
        "{% if examples %}\n\nExamples of documents and their fields:"
        "{% for example in examples %}\n\nExample {{ loop.index }}:\n{{ example.text }}\n"
        "Fields: {{ example.output | tojson }}{% endfor %}{% endif %}\n"
        "[user]\n{{ text }}"
    ),
}
"""The default templates of a node that shows examples (`DEFAULT_PROMPTS` stay as they were, so
a pipeline without examples keeps its prompts, recordings and fingerprint)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Prompt:
    """A parsed prompt template."""

    name: str
    """The file it came from (relative to the prompts folder), or `default:<kind>`."""
    system: Template | None
    user: Template
    names: frozenset[str]
    """Top-level names the template reads."""
    attributes: Mapping[str, frozenset[str]] = field(default_factory=dict)
    """For each name, the attributes read from it (`details.amount` -> {"details": {"amount"}})."""
    version: str | None = None
    """From a `{# version: N #}` comment in the file, if it has one."""
    digest: str = ""
    """SHA-256 of the template's text (part of the pipeline's fingerprint)."""

    def render(self, context: Mapping[str, Any]) -> list[Message]:
        from jinja2 import UndefinedError

        try:
            messages = []
            if self.system is not None:
                messages.append(Message(role="system", content=_render(self.system, context)))
            messages.append(Message(role="user", content=_render(self.user, context)))
        except UndefinedError as e:
            raise PromptError(
                f"prompt {self.name}: {e.message}; read only the document and outputs of nodes "
                "that ran before this one"
            ) from e
        return messages


def _render(template: Template, context: Mapping[str, Any]) -> str:
    """`template.render(context)` without re-merging the globals on every call. Every template
    comes from one environment and has no globals of its own, so the environment's globals are
    merged once (Jinja documents `new_context(shared=True)` for passing prepared data)."""
    global _GLOBALS
    if _GLOBALS is None:
        _GLOBALS = dict(template.environment.globals)
    ctx = template.new_context({**_GLOBALS, **context}, shared=True)
    return str(template.environment.concat(template.root_render_func(ctx)))


_GLOBALS: dict[str, Any] | None = None


def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )
    env.filters["tojson"] = lambda v: json.dumps(_plain(v), ensure_ascii=False, indent=2)
    return env


def _plain(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    return dump(mode="json") if callable(dump) else value


_ENV: Any = None


def parse_prompt(source: str, name: str) -> Prompt:
    """Parse a template's text; raises `PromptError` naming the file and line."""
    global _ENV
    from jinja2 import TemplateSyntaxError, meta, nodes

    if _ENV is None:
        _ENV = _environment()
    matches = list(_SECTION.finditer(source))
    sections: dict[str, str] = {}
    first_line: dict[str, int] = {}  # per section: lines of the file before its text

    def add(role: str, start: int, end: int) -> None:
        raw = source[start:end]
        sections[role] = raw.strip()
        first_line[role] = source.count("\n", 0, start + len(raw) - len(raw.lstrip()))

    if not matches:
        add("user", 0, len(source))
    else:
        # Jinja comments (such as a `{# version: 2 #}` line) may come before the first marker.
        if _COMMENT.sub("", source[: matches[0].start()]).strip():
            raise PromptError(
                f"prompt {name}: text before the first [system]/[user] marker; "
                "put it under a marker or remove the markers"
            )
        for i, match in enumerate(matches):
            role = match.group(1)
            if role in sections:
                raise PromptError(f"prompt {name}: more than one [{role}] section; merge them")
            end = matches[i + 1].start() if i + 1 < len(matches) else len(source)
            add(role, match.end(), end)
    if not sections.get("user"):
        raise PromptError(f"prompt {name}: no user message; add a [user] section with the text")
    templates: dict[str, Any] = {}
    names: set[str] = set()
    attributes: dict[str, set[str]] = {}
    for role, body in sections.items():
        try:
            ast = _ENV.parse(body)
        except TemplateSyntaxError as e:
            line = first_line[role] + (e.lineno or 1)
            raise PromptError(
                f"prompt {name}, line {line} ([{role}] section): "
                f"{(e.message or 'syntax error').rstrip('.')}; fix the Jinja2 syntax"
            ) from e
        names |= meta.find_undeclared_variables(ast)
        for getattr_node in ast.find_all(nodes.Getattr):
            if isinstance(getattr_node.node, nodes.Name):
                attributes.setdefault(getattr_node.node.name, set()).add(getattr_node.attr)
        templates[role] = _ENV.from_string(body)
    return Prompt(
        name=name,
        system=templates.get("system"),
        user=templates["user"],
        names=frozenset(names),
        attributes={k: frozenset(v) for k, v in attributes.items()},
        version=version.group(1) if (version := _VERSION.search(source)) else None,
        digest=hashlib.sha256(source.encode("utf-8")).hexdigest(),
    )


def load_prompt(folder: Path | None, relative: str) -> Prompt:
    """Read and parse `folder/relative`; raises `PromptError` if missing or malformed."""
    path = (folder / relative) if folder is not None else Path(relative)
    try:
        source = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        where = f" under {folder}" if folder is not None else ""
        raise PromptError(
            f"prompt file {relative!r} not found{where}; create it or pass "
            "PipelineBuilder(prompts=...) pointing at the folder that holds it"
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise PromptError(f"prompt file {path} cannot be read ({e}); save it as UTF-8 text") from e
    return parse_prompt(source, relative)


def default_prompt(kind: str, *, examples: bool = False) -> Prompt:
    """The default template of a node `kind`; with `examples`, the one that shows them."""
    if examples and kind in EXAMPLE_PROMPTS:
        return parse_prompt(EXAMPLE_PROMPTS[kind], f"default:{kind}+examples")
    return parse_prompt(DEFAULT_PROMPTS[kind], f"default:{kind}")
