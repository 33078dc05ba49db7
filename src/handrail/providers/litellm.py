"""`LiteLLMModel`: any model litellm can reach, behind handrail's `Model` port.

    LiteLLMModel("openai/gpt-4o-mini")
    LiteLLMModel("ollama/llama3.2", confidence="agreement", samples=5)
    LiteLLMModel("openai/my-model", api_base="http://127.0.0.1:8000/v1")
    LiteLLMModel("local/gemma3-270m")            # the embedded model (handrail[local])
    LiteLLMModel("openai/gpt-4o-mini", image_side=1024)  # page images for Extract(images=...)

One call of `generate` is one step attempt: litellm's own retries are off (the node's
`RetryPolicy` owns retries), instructor turns the node's schema into the provider's structured
output request (tools, or JSON mode with the schema in the prompt), and the raw output goes back
to the runner, which validates it and re-asks with the errors. Every litellm exception is
translated here into handrail's provider errors (`_errors.py`); nothing above this module sees a
litellm type.

Page images (`Extract(..., images=N)`, `_images.py`): the pages are rendered from the
document's source file and sent as image content parts after the document's text. A model
litellm's map says cannot see is refused before any call (`vision=True` overrides the map); the
embedded model reads text only and refuses too. A page that cannot be rendered is left out and
the response's warnings say so.

Confidence (DESIGN §4), chosen by `confidence=`:
- `"auto"` (default): the embedded model's label scores / token probabilities; token logprobs
  where the provider returns them; else agreement over `samples` answers.
- `"logprobs"`, `"agreement"`, `"self_reported"` (marked as such), `"none"` force one source.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from handrail.core.model import ModelRequest, ModelResponse
from handrail.core.records import Confidence, ConfidenceSource, Usage
from handrail.exceptions import AuthenticationError, ContextWindowExceeded, InputError
from handrail.providers._confidence import agree, logprob_confidence, reported_number
from handrail.providers._errors import translate
from handrail.providers._images import (
    NOTHING,
    PageImages,
    Seen,
    refuse_blind,
    vision_support,
    with_images,
)
from handrail.providers._litellm import litellm
from handrail.providers._requests import (
    Prepared,
    append_system,
    append_user,
    prepare,
    skip_mcp,
    structured_mode,
    truncate,
)

ConfidenceMethod = Literal["auto", "logprobs", "agreement", "self_reported", "none"]
StructuredMode = Literal["auto", "tools", "json", "json_schema", "md_json"]
Overflow = Literal["fail", "truncate"]
_MAX_TRUNCATIONS = 4
CONFIDENCE_METHODS: tuple[str, ...] = ("auto", "logprobs", "agreement", "self_reported", "none")

_SELF_REPORT = (
    "Also report how sure you are: `confidence` is the probability (0 to 1) that your answer "
    "is right."
)


class LiteLLMModel:
    """A `Model` for any litellm model string (see module docs)."""

    def __init__(
        self,
        model: str,
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        confidence: ConfidenceMethod = "auto",
        samples: int = 3,
        sample_temperature: float = 0.7,
        mode: StructuredMode = "auto",
        timeout: float | None = None,
        on_overflow: Overflow = "fail",
        vision: bool | None = None,
        image_side: int = 1600,
        **params: Any,
    ) -> None:
        model = model.strip()
        if confidence not in CONFIDENCE_METHODS:
            raise ValueError(
                f"LiteLLMModel(confidence={confidence!r}): use one of "
                f"{', '.join(CONFIDENCE_METHODS)}"
            )
        if samples < 2 and confidence == "agreement":
            raise ValueError("LiteLLMModel(samples=...) needs at least 2 answers to agree")
        if on_overflow not in ("fail", "truncate"):
            raise ValueError(f"LiteLLMModel(on_overflow={on_overflow!r}): use fail or truncate")
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.confidence = confidence
        self.samples = samples
        self.sample_temperature = sample_temperature
        self.timeout = timeout
        self.on_overflow = on_overflow
        # Whether the model takes images; None: litellm's model map decides on the first request
        # with images (a model the map says nothing of is sent them).
        self.vision = vision
        self.params = dict(params)
        self._images = PageImages(max_side=image_side)
        self.local = model.startswith("local/")
        if self.local:
            from handrail.providers import local

            try:
                local.register()
            except ImportError as e:  # the `local` extra is not installed
                raise InputError(str(e)) from e
        self.provider = _provider(model, api_base)
        self._mode: str = mode
        self._prepared: dict[tuple[type[Any], str], Prepared] = {}
        self._self_report_types: dict[type[Any] | None, type[BaseModel]] = {}
        self._env_checked = False
        self._supported: frozenset[str] | None = None

    @property
    def name(self) -> str:
        return self.model

    def __repr__(self) -> str:
        return f"LiteLLMModel({self.model!r}, confidence={self.confidence!r})"

    # --- the call ------------------------------------------------------------------------------

    async def generate(self, request: ModelRequest) -> ModelResponse:
        if not self._env_checked:
            self._check_environment(request)
        seen = await self._look(request)
        if self.local:
            return await self._generate_local(request)
        method = self._method(request)
        if method == "agreement":
            return await self._generate_agreement(request, seen)
        if method == "self_reported":
            return await self._generate_self_reported(request, seen)
        kwargs = self._kwargs(request, logprobs=method == "logprobs", seen=seen)
        response = await self._complete(kwargs, request)
        output, source = self._raw_output(response, kwargs)
        confidence: Confidence | None = None
        fields: dict[str, Confidence] = {}
        if method == "logprobs":
            confidence, fields = logprob_confidence(response, request, output, source)
        return ModelResponse(
            output=output,
            usage=self._usage(response),
            model=self._response_model(response),
            confidence=confidence,
            field_confidence=fields,
            finish_reason=_finish_reason(response),
            warnings=_warnings(seen, kwargs),
            images_sent=seen.pages,
        )

    async def _look(self, request: ModelRequest) -> Seen:
        """The page images `request` asks for, rendered; refused for a model that cannot see."""
        if not request.images:
            return NOTHING
        if self.local:
            raise refuse_blind(request, self.model, local=True)
        if self.vision is None:
            self.vision = vision_support(self.model) is not False
        if not self.vision:
            raise refuse_blind(request, self.model, local=False)
        return await self._images.look(request)

    async def _complete(self, kwargs: dict[str, Any], request: ModelRequest) -> Any:
        """One litellm call; a context-window overflow is truncated only when declared."""
        for tried in range(_MAX_TRUNCATIONS + 1):
            call = {k: v for k, v in kwargs.items() if not k.startswith("_handrail")}
            call["messages"] = with_images(call["messages"], kwargs.get("_handrail_images", ()))
            try:
                return await litellm.acompletion(**call)
            except Exception as e:
                error = translate(e, self.model, request.node)
                if error is None:
                    raise
                declared = (
                    isinstance(error, ContextWindowExceeded)
                    and self.on_overflow == "truncate"
                    and tried < _MAX_TRUNCATIONS
                )
                if not declared:
                    raise error from e
                kwargs["messages"], note = truncate(kwargs["messages"])
                kwargs.setdefault("_handrail_warnings", []).append(note)
        raise AssertionError("unreachable: the last try raises")

    def _method(self, request: ModelRequest) -> str:
        if self.confidence != "auto":
            return self.confidence
        if request.kind not in ("classify", "extract"):
            return "none"  # summaries and drafts get their confidence from checks
        if "logprobs" in self._supported_params():
            return "logprobs"
        return "agreement"

    def _supported_params(self) -> frozenset[str]:
        if self._supported is None:
            try:
                found = litellm.get_supported_openai_params(
                    model=self.model, custom_llm_provider=self.provider
                )
            except Exception:
                found = None
            self._supported = frozenset(found or ())
        return self._supported

    def _check_environment(self, request: ModelRequest) -> None:
        """A missing API key is a clear error before any call (litellm reports some as 500s)."""
        if self.local or self.api_key or self.api_base or "mock_response" in self.params:
            self._env_checked = True
            return
        if "mock_response" in request.params:
            return
        try:
            found = litellm.validate_environment(model=self.model)
        except Exception:
            found = {}
        missing = [k for k in found.get("missing_keys") or () if not os.environ.get(k)]
        if missing and not found.get("keys_in_environment", False):
            names = " and ".join(missing)
            raise AuthenticationError(
                f"`{request.node}`: model {self.model!r} needs {names} in the environment; "
                f"export {missing[0]}=... or pass LiteLLMModel(..., api_key=...)"
            )
        self._env_checked = True

    # --- request building ----------------------------------------------------------------------

    def _kwargs(
        self,
        request: ModelRequest,
        *,
        logprobs: bool = False,
        schema_type: type[Any] | None = None,
        seen: Seen = NOTHING,
    ) -> dict[str, Any]:
        messages = [{"role": m.role, "content": m.content} for m in request.messages]
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_retries": 0,
        }
        if seen.parts:  # added to the messages per call, after any truncation of their text
            kwargs["_handrail_images"] = seen.parts
        if self.api_base is not None:
            kwargs["api_base"] = self.api_base
        if self.api_key is not None:
            kwargs["api_key"] = self.api_key
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout
        kwargs.update(self.params)
        kwargs.update(request.params)
        if self.local:  # the `local` provider builds its own grammar and scores labels itself
            kwargs["handrail"] = {
                "task": request.kind,
                "labels": list(request.labels),
                "schema": dict(request.output_schema) if request.output_schema else None,
            }
            return kwargs
        output_type = schema_type or request.output_type
        if output_type is not None:
            mode = "json_schema" if logprobs else self._structured_mode()
            prepared = self._prepare(output_type, mode)
            kwargs.update(prepared.kwargs)
            if "tools" in prepared.kwargs and skip_mcp():
                kwargs["_skip_mcp_handler"] = True
            kwargs["_handrail_source"] = prepared.source
            if prepared.system_suffix:
                append_system(messages, prepared.system_suffix)
            if prepared.user_suffix:
                append_user(messages, prepared.user_suffix)
        if logprobs:
            kwargs["logprobs"] = True
        return kwargs

    def _structured_mode(self) -> str:
        if self._mode != "auto":
            return self._mode
        self._mode = structured_mode(self.model, self._supported_params())
        return self._mode

    def _prepare(self, output_type: type[Any], mode: str) -> Prepared:
        """instructor's request for `output_type` in `mode`, built once per pair."""
        prepared = self._prepared.get((output_type, mode))
        if prepared is None:
            prepared = self._prepared[(output_type, mode)] = prepare(output_type, mode)
        return prepared

    # --- responses -----------------------------------------------------------------------------

    def _raw_output(self, response: Any, kwargs: Mapping[str, Any]) -> tuple[Any, str]:
        message = response.choices[0].message
        source = kwargs.get("_handrail_source", "text")
        if source == "tool":
            calls = getattr(message, "tool_calls", None) or []
            if calls:
                return calls[0].function.arguments, source
            return message.content or "", "content"
        text = message.content or ""
        if source == "markdown":
            found = re.search(r"```(?:json)?\s*(.*?)```", text, re.S)
            if found:
                return found.group(1).strip(), source
        return text, source

    def _usage(self, response: Any) -> Usage:
        usage = getattr(response, "usage", None)
        input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        if self.local:
            return Usage(input_tokens=input_tokens, output_tokens=output_tokens, cost=0.0)
        cost = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
        if cost is None:
            try:
                cost = litellm.completion_cost(completion_response=response)
            except Exception:
                cost = None  # not in litellm's price map: unknown, never free
        return Usage(
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost=float(cost) if cost is not None else None,
        )

    def _response_model(self, response: Any) -> str:
        answered = getattr(response, "model", None) or ""
        if not answered or answered == self.model.split("/", 1)[-1]:
            return self.model
        return answered if "/" in answered else f"{self.provider}/{answered}"

    # --- the embedded model --------------------------------------------------------------------

    async def _generate_local(self, request: ModelRequest) -> ModelResponse:
        kwargs = self._kwargs(request)
        response = await self._complete(kwargs, request)
        message = response.choices[0].message
        extra = (getattr(message, "provider_specific_fields", None) or {}).get("handrail") or {}
        source: ConfidenceSource = extra.get("source") or "logprobs"
        value = extra.get("confidence")
        return ModelResponse(
            output=message.content or "",
            usage=self._usage(response),
            model=self.model,
            confidence=Confidence(value=float(value), source=source) if value is not None else None,
            field_confidence={
                k: Confidence(value=float(v), source=source)
                for k, v in (extra.get("field_confidence") or {}).items()
            },
            label_scores={k: float(v) for k, v in (extra.get("label_scores") or {}).items()},
            finish_reason=_finish_reason(response),
            warnings=tuple(kwargs.get("_handrail_warnings", ())),
        )

    # --- agreement -----------------------------------------------------------------------------

    async def _generate_agreement(self, request: ModelRequest, seen: Seen) -> ModelResponse:
        kwargs = self._kwargs(request, seen=seen)
        kwargs.setdefault("temperature", self.sample_temperature)
        responses: list[Any] = []
        answers: list[Any] = []
        if "n" in self._supported_params():
            first = await self._complete({**kwargs, "n": self.samples}, request)
            responses.append(first)
            answers.extend(
                self._raw_output(_Choice(c), kwargs)[0] for c in first.choices[: self.samples]
            )
        # A provider without `n` (or one that ignored it) answers once per call: never count
        # fewer answers as agreement of the full sample.
        missing = self.samples - len(answers)
        if missing > 0:
            more = await asyncio.gather(
                *(self._complete(dict(kwargs), request) for _ in range(missing))
            )
            responses.extend(more)
            answers.extend(self._raw_output(r, kwargs)[0] for r in more)
        usage = sum((self._usage(r) for r in responses), Usage())
        first = responses[0]
        output, confidence, fields = agree(request, answers)
        return ModelResponse(
            output=output,
            usage=usage,
            model=self._response_model(first),
            confidence=confidence,
            field_confidence=fields,
            finish_reason=_finish_reason(first),
            warnings=_warnings(seen, kwargs),
            images_sent=seen.pages,
        )

    # --- self-reported -------------------------------------------------------------------------

    async def _generate_self_reported(self, request: ModelRequest, seen: Seen) -> ModelResponse:
        wrapper = self._self_report_type(request)
        kwargs = self._kwargs(request, schema_type=wrapper, seen=seen)
        append_system(kwargs["messages"], _SELF_REPORT)
        response = await self._complete(kwargs, request)
        raw, _ = self._raw_output(response, kwargs)
        output: Any = raw
        confidence = None
        try:
            data = json.loads(raw) if isinstance(raw, str) else raw
            output = data["answer"]
            confidence = Confidence(
                value=reported_number(data["confidence"]), source="self_reported"
            )
        except (ValueError, TypeError, KeyError):
            pass  # the runner validates what came back and re-asks
        if isinstance(output, dict | list) and request.output_type is not None:
            output = json.dumps(output)
        return ModelResponse(
            output=output,
            usage=self._usage(response),
            model=self._response_model(response),
            confidence=confidence,
            finish_reason=_finish_reason(response),
            warnings=_warnings(seen, kwargs),
            images_sent=seen.pages,
        )

    def _self_report_type(self, request: ModelRequest) -> type[BaseModel]:
        key = request.output_type
        found = self._self_report_types.get(key)
        if found is None:
            answer: Any = request.output_type or str
            found = create_model(
                "AnswerWithConfidence",
                answer=(answer, ...),
                confidence=(float, Field(ge=0.0, le=1.0)),
            )
            self._self_report_types[key] = found
        return found


# --- helpers ------------------------------------------------------------------------------------


def _provider(model: str, api_base: str | None) -> str:
    """The litellm provider of `model`; an unknown model string is a clear `InputError`."""
    if model.startswith("local/"):
        return "local"
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=model, api_base=api_base)
    except Exception as e:
        raise InputError(
            f"unknown model {model!r}: litellm cannot tell its provider; write it as "
            "provider/model, e.g. openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, "
            "ollama/llama3.2, local/gemma3-270m, or openai/NAME with api_base= for an "
            "OpenAI-compatible server"
        ) from e
    return str(provider)


def _warnings(seen: Seen, kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    """The call's declared degradations: pages not shown, then any truncation."""
    return (*seen.warnings, *kwargs.get("_handrail_warnings", ()))


def _finish_reason(response: Any) -> str | None:
    try:
        reason = response.choices[0].finish_reason
    except (AttributeError, IndexError):
        return None
    return str(reason) if reason is not None else None


class _Choice:
    def __init__(self, choice: Any) -> None:
        self.choices = [choice]
