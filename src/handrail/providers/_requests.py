"""Building litellm requests for `LiteLLMModel`: instructor's structured-output parameters,
prepared once per (schema, mode) and reused, and the message edits around them."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from handrail.providers._litellm import litellm


@dataclass(frozen=True, slots=True)
class Prepared:
    """What instructor builds for one response model and mode, built once and reused."""

    kwargs: Mapping[str, Any]
    """Request parameters (`tools` + `tool_choice`, or `response_format`)."""
    system_suffix: str
    """Text instructor adds to the system message (JSON modes: the schema)."""
    user_suffix: str
    """Text instructor adds to the last user message (markdown JSON mode)."""
    source: Literal["tool", "content", "markdown"]
    """Where the structured output comes back."""


def structured_mode(model: str, supported: frozenset[str]) -> str:
    """Provider-enforced JSON schema where the provider has it, else tools, else JSON mode."""
    try:
        if litellm.supports_response_schema(model=model):
            return "json_schema"
    except Exception:
        pass
    try:
        tools = bool(litellm.supports_function_calling(model=model))
    except Exception:
        tools = False
    return "tools" if tools or "tools" in supported else "json"


@functools.cache
def skip_mcp() -> bool:
    """litellm 1.106 imports its optional `mcp` package for any call with `tools`; when that
    package is absent, skip its MCP bridge (handrail's tools are never MCP tools), using the
    flag that litellm version reads (checked in its source, so no unknown parameter is sent)."""
    import importlib.util
    import inspect

    if importlib.util.find_spec("mcp") is not None:
        return False
    try:
        return "_skip_mcp_handler" in inspect.getsource(litellm.main.completion)
    except (OSError, TypeError, AttributeError):
        return False


def prepare(output_type: type[Any], mode: str) -> Prepared:
    from instructor import Mode
    from instructor.processing import handle_response_model

    modes = {
        "tools": Mode.TOOLS,
        "json": Mode.JSON,
        "json_schema": Mode.JSON_SCHEMA,
        "md_json": Mode.MD_JSON,
    }
    marker = "\x00handrail\x00"
    probe = [{"role": "system", "content": marker}, {"role": "user", "content": marker}]
    _, kwargs = handle_response_model(output_type, mode=modes[mode], messages=probe)
    messages = kwargs.pop("messages", probe)
    system = next((m["content"] for m in messages if m["role"] == "system"), marker)
    user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), marker)
    source: Literal["tool", "content", "markdown"] = (
        "tool" if mode == "tools" else "markdown" if mode == "md_json" else "content"
    )
    return Prepared(
        kwargs=kwargs,
        system_suffix=str(system).replace(marker, "", 1),
        user_suffix=str(user).replace(marker, "", 1),
        source=source,
    )


def append_system(messages: list[dict[str, Any]], text: str) -> None:
    for message in messages:
        if message["role"] == "system":
            message["content"] = f"{message['content']}{text}"
            return
    messages.insert(0, {"role": "system", "content": text.strip()})


def append_user(messages: list[dict[str, Any]], text: str) -> None:
    for message in reversed(messages):
        if message["role"] == "user":
            message["content"] = f"{message['content']}{text}"
            return


def truncate(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """Cut the longest user message to half its length (declared by on_overflow="truncate")."""
    longest = max(
        (i for i, m in enumerate(messages) if m["role"] == "user"),
        key=lambda i: len(messages[i]["content"]),
    )
    text = messages[longest]["content"]
    keep = len(text) // 2
    cut = [dict(m) for m in messages]
    cut[longest]["content"] = text[:keep] + "\n[... truncated to fit the context window]"
    note = (
        f"the document did not fit the context window; its prompt was truncated from "
        f"{len(text)} to {keep} characters (on_overflow='truncate')"
    )
    return cut, note
