"""The litellm custom provider `local`: turns a chat-completion call into engine work.

`litellm.acompletion(model="local/<name>", messages=..., handrail={...})` arrives here with the
`handrail` keyword in `optional_params`. Errors leave as litellm's own exception classes, which
litellm passes through unchanged (anything else would reach the caller as a retryable
`APIConnectionError`):

| problem                                                   | litellm exception             |
|-----------------------------------------------------------|-------------------------------|
| unknown alias, missing file, not a GGUF file, weights     | `NotFoundError`               |
| package or llama-cpp-python not installed                 |                               |
| the prompt does not fit the context window                | `ContextWindowExceededError`  |
| a malformed `handrail` request (task, labels, schema...)  | `BadRequestError`             |
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# First: it makes litellm read its bundled price map instead of fetching one at import.
from handrail.providers._litellm import litellm  # isort: skip

from litellm.llms.custom_llm import CustomLLM  # isort: skip
from handrail.providers.local import INSTALL, _engine
from handrail.providers.local._paths import ModelFileError, resolve_model_path
from handrail.providers.local._schema import grammar_schema
from handrail.providers.tokens import field_confidence_from_tokens

PROVIDER = "local"
TASKS = ("classify", "extract", "summarize", "draft")
_DEFAULT_MAX_TOKENS = {"classify": 16, "extract": 512, "summarize": 256, "draft": 384, None: 256}


@dataclass(frozen=True, kw_only=True, slots=True)
class Task:
    kind: str | None
    labels: tuple[str, ...] = ()
    document: str | None = None
    """The document's text, if the caller gives it: classification calibrates against the
    prompt without it (see `content_free`)."""
    schema: Mapping[str, Any] | None = None
    temperature: float = 0.0
    max_tokens: int = 256
    stop: tuple[str, ...] = ()
    seed: int | None = None


def parse_task(optional_params: Mapping[str, Any], model: str) -> Task:
    """The request's `handrail` block and sampling parameters; `BadRequestError` if malformed."""

    def bad(problem: str) -> Exception:
        return litellm.exceptions.BadRequestError(
            message=problem, model=model, llm_provider=PROVIDER
        )

    extra = optional_params.get("handrail") or {}
    if not isinstance(extra, Mapping):
        raise bad("handrail= must be a dict with task, labels and schema")
    kind = extra.get("task")
    if kind is not None and kind not in TASKS:
        raise bad(f"handrail task {kind!r} is unknown; use one of: {', '.join(TASKS)}")
    labels = extra.get("labels") or ()
    if kind == "classify":
        if not labels or not all(isinstance(x, str) and x.strip() for x in labels):
            raise bad("handrail task classify needs labels: a non-empty list of label names")
        if len(set(labels)) != len(labels):
            raise bad("handrail task classify has repeated labels; list each label once")
    document = extra.get("document")
    if document is not None and not isinstance(document, str):
        raise bad("handrail document must be the document's text (a string) or None")
    schema = extra.get("schema")
    if schema is not None and not isinstance(schema, Mapping):
        raise bad("handrail schema must be a JSON schema (a dict) or None")
    n = optional_params.get("n")
    if n not in (None, 1):
        raise bad(f"n={n}: the local provider returns one choice per call")
    temperature = optional_params.get("temperature")
    max_tokens = optional_params.get("max_tokens") or optional_params.get("max_completion_tokens")
    stop = optional_params.get("stop") or ()
    try:
        temperature = float(temperature) if temperature is not None else 0.0
        max_tokens = int(max_tokens) if max_tokens is not None else _DEFAULT_MAX_TOKENS[kind]
    except (TypeError, ValueError) as e:
        raise bad(f"temperature and max_tokens must be numbers ({e})") from None
    if temperature < 0 or max_tokens < 1:
        raise bad("temperature must be >= 0 and max_tokens >= 1")
    seed = optional_params.get("seed")
    return Task(
        kind=kind,
        labels=tuple(labels),
        document=document,
        schema=schema,
        temperature=temperature,
        max_tokens=max_tokens,
        stop=(stop,) if isinstance(stop, str) else tuple(stop),
        seed=int(seed) if seed is not None else None,
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class Answer:
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    extra: dict[str, Any]


def label_text(label: str) -> str:
    """How a label is written in the scored continuation: `card_arrival` -> `card arrival`
    (a small model has seen words far more often than identifiers)."""
    return " ".join(label.replace("_", " ").split())


def run_task(engine: _engine.Engine, messages: Sequence[Mapping[str, str]], task: Task) -> Answer:
    """Do the work of one call. Blocking: the caller holds `engine.lock` in a worker thread."""
    if task.kind == "classify":
        return _classify(engine, messages, task.labels, task.document)
    prompt_text = engine.render(messages)
    grammar = None
    if task.kind == "extract":
        if not engine.instruct:
            prompt_text += "\n\nJSON:\n"
        grammar = _grammar(task.schema)
    prompt = engine.tokenize(prompt_text, bos=True)
    try:
        generation = engine.generate(
            prompt,
            max_tokens=task.max_tokens,
            temperature=task.temperature,
            grammar=grammar,
            stop=task.stop,
            seed=task.seed,
        )
    except _engine.GrammarRejected as e:
        raise _rejected(engine, task.schema, e) from e
    extra: dict[str, Any] = {"confidence": None, "source": "logprobs"}
    text = generation.text
    if task.kind == "extract":
        text = text.strip()
        try:
            fields = field_confidence_from_tokens(generation.tokens, text)
        except ValueError:
            fields = {}  # cut off by max_tokens: no valid object, so no field is vouched for
        extra["field_confidence"] = fields
    return Answer(
        content=text,
        finish_reason=generation.finish_reason,
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=len(generation.tokens),
        extra=extra,
    )


CONTENT_FREE = ""
"""Stands in for the document when measuring the model's bias towards each label."""


def content_free(
    messages: Sequence[Mapping[str, str]], document: str | None
) -> list[dict[str, str]]:
    """The same prompt without the document: the document's text removed where the caller told
    us what it is, otherwise the last user message cut down to its last line (the cue, such as
    `Label:`; handrail's prompts end with one). Both measured on BANKING77 (docs/models.md)."""
    out = [dict(m) for m in messages]
    if document and document.strip() and any(document in m["content"] for m in out):
        for m in out:
            m["content"] = m["content"].replace(document, CONTENT_FREE)
        return out
    for m in reversed(out):
        if m["role"] == "user":
            lines = [line for line in m["content"].splitlines() if line.strip()]
            m["content"] = lines[-1].strip() if len(lines) > 1 else CONTENT_FREE
            break
    return out


def _classify(
    engine: _engine.Engine,
    messages: Sequence[Mapping[str, str]],
    labels: Sequence[str],
    document: str | None,
) -> Answer:
    """Label scoring with contextual calibration (Zhao et al. 2021, "Calibrate before use"):
    each label's log-probability after the prompt, minus its log-probability after the same
    prompt with the document removed, normalised over the labels. A small model's preference
    for some label strings regardless of the document (shorter, commoner, listed last in the
    examples) is taken out; on BANKING77 this lifted Gemma 3 270M from 48% to 74-76% right and
    its calibration error from 0.26 to 0.07-0.09 (docs/models.md)."""
    # A base model continues "Label:" with " card arrival"; an instruct model opens its turn
    # with the label itself.
    lead = "" if engine.instruct else " "
    continuations = {
        label: engine.tokenize(lead + label_text(label), bos=False) for label in labels
    }
    empty = [label for label, tokens in continuations.items() if not tokens]
    if empty:
        raise ValueError(f"label {empty[0]!r} has no tokens")
    prior_prompt = engine.tokenize(engine.render(content_free(messages, document)), bos=True)
    key = (tuple(prior_prompt), tuple(labels))
    prior = engine.priors.get(key)
    if prior is None:
        prior = engine.score_labels(prior_prompt, continuations, end=[]).logprobs
        engine.remember_prior(key, prior)
    prompt = engine.tokenize(engine.render(messages), bos=True)
    scores = engine.score_labels(prompt, continuations, end=[])
    calibrated = {k: v - prior[k] for k, v in scores.logprobs.items()}
    top = max(calibrated.values())
    weights = {k: math.exp(v - top) for k, v in calibrated.items()}
    total = sum(weights.values())
    probabilities = {k: w / total for k, w in weights.items()}
    best = max(probabilities, key=lambda k: probabilities[k])
    return Answer(
        content=best,
        finish_reason="stop",
        prompt_tokens=scores.prompt_tokens,
        completion_tokens=len(continuations[best]),
        extra={
            "label_scores": probabilities,
            "confidence": probabilities[best],
            "source": "logprobs",
        },
    )


def _grammar(schema: Mapping[str, Any] | None) -> str:
    return _gbnf(json.dumps(schema if schema is not None else {"type": "object"}))


@functools.lru_cache(maxsize=64)
def _gbnf(schema_json: str) -> str:
    """The GBNF grammar of a JSON schema, built once per schema (a node sends the same one for
    every document), from the schema without what the grammar cannot enforce (`_schema`):
    pydantic checks those constraints on the output afterwards."""
    safe, _ = grammar_schema(json.loads(schema_json))
    try:
        return _convert(safe)
    except Exception as e:
        raise _SchemaError(
            f"the JSON schema cannot be turned into a grammar{_where(safe, _convert)}: {e}"
        ) from e


def _convert(schema: Mapping[str, Any]) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    return str(json_schema_to_gbnf(json.dumps(schema)))


def _where(schema: Mapping[str, Any], fails: Callable[[Mapping[str, Any]], object]) -> str:
    """` (field `x`: its schema ...)` for the first property whose schema alone makes `fails`
    raise, so an error names the field and its constraints; "" when none does alone."""
    defs = {k: schema[k] for k in ("$defs", "definitions") if k in schema}
    for name, sub in (schema.get("properties") or {}).items():
        alone = {"type": "object", "properties": {name: sub}, "required": [name], **defs}
        try:
            fails(alone)
        except Exception:
            return f" (field `{name}`: {json.dumps(sub)})"
    return ""


class _SchemaError(Exception):
    pass


def _rejected(engine: _engine.Engine, schema: Mapping[str, Any] | None, e: Exception) -> Exception:
    """llama.cpp refused the grammar: name the field (and its schema) that makes it refuse."""
    safe, _ = grammar_schema(schema if schema is not None else {"type": "object"})
    vocab = engine.llama._model.vocab

    def fails(alone: Mapping[str, Any]) -> None:
        error = _engine.grammar_error(vocab, _convert(alone))
        if error is not None:
            raise ValueError(error)

    return _SchemaError(
        f"llama.cpp rejected the grammar built from the JSON schema{_where(safe, fails)}: {e}; "
        "this is a bug in handrail's schema-to-grammar step, please report it with the schema"
    )


_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _loop_lock(engine: _engine.Engine) -> asyncio.Lock:
    """One asyncio lock per engine and event loop: waiting callers queue on the loop instead
    of each holding a worker thread blocked on `engine.lock`."""
    locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    return locks.setdefault(id(engine), asyncio.Lock())


def _work(engine: _engine.Engine, messages: list[dict[str, str]], task: Task) -> Answer:
    with engine.lock:
        return run_task(engine, messages, task)


def _messages(messages: Sequence[Any]) -> list[dict[str, str]]:
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        out.append({"role": str(message.get("role", "user")), "content": str(content or "")})
    return out


class LocalHandler(CustomLLM):
    """litellm's entry point for `local/...` models."""

    async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
        # litellm passes everything by keyword (and more keywords in newer versions).
        model: str = kwargs["model"]
        messages: list[Any] = kwargs["messages"]
        optional_params: dict[str, Any] = kwargs.get("optional_params") or {}
        model_response: Any = kwargs["model_response"]
        name = model.removeprefix(f"{PROVIDER}/")
        full = f"{PROVIDER}/{name}"
        exc = litellm.exceptions
        task = parse_task(optional_params, full)
        try:
            path = resolve_model_path(name)
        except ModelFileError as e:
            raise exc.NotFoundError(message=str(e), model=full, llm_provider=PROVIDER) from e
        try:
            engine = await asyncio.to_thread(_engine.load, path)
        except ImportError as e:
            raise exc.NotFoundError(
                message=f"the local model needs llama-cpp-python ({e}); {INSTALL}",
                model=full,
                llm_provider=PROVIDER,
            ) from e
        except (ValueError, RuntimeError) as e:  # llama.cpp refused the file
            raise exc.NotFoundError(
                message=f"llama.cpp cannot load {path}: {e}", model=full, llm_provider=PROVIDER
            ) from e
        try:
            async with _loop_lock(engine):
                answer = await asyncio.to_thread(_work, engine, _messages(messages), task)
        except _engine.ContextOverflow as e:
            raise exc.ContextWindowExceededError(
                message=f"{e}; shorten the document or split it",
                model=full,
                llm_provider=PROVIDER,
            ) from e
        except (_SchemaError, ValueError) as e:
            raise exc.BadRequestError(message=str(e), model=full, llm_provider=PROVIDER) from e
        return _fill(model_response, full, answer)


def _fill(response: Any, model: str, answer: Answer) -> Any:
    choice = response.choices[0]
    choice.message.content = answer.content
    choice.message.provider_specific_fields = {"handrail": answer.extra}
    choice.finish_reason = answer.finish_reason
    response.model = model
    response.usage = litellm.Usage(
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        total_tokens=answer.prompt_tokens + answer.completion_tokens,
    )
    return response


HANDLER = LocalHandler()
