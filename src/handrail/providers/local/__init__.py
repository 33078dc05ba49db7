"""The embedded model: a GGUF file run in this process by llama.cpp, served to litellm as the
custom provider `local`, so `LiteLLMModel("local/gemma3-270m")` takes the same path as any
hosted model.

    from handrail.providers import local
    local.register()                       # idempotent; LiteLLMModel("local/...") calls it
    await litellm.acompletion(model="local/gemma3-270m", messages=[...],
                              handrail={"task": "classify", "labels": [...], "schema": None})

Importing this module loads neither litellm nor llama.cpp; `register()` imports litellm, and the
model file is loaded on the first call (once per process). docs/models.md says how the
confidence is computed and how well it is calibrated.
"""

from __future__ import annotations

import importlib.util
import os
import threading

from handrail.providers.local._paths import (
    ALIASES,
    DEFAULT,
    ModelFileError,
    known_names,
    resolve_model_path,
)

INSTALL = "pip install 'handrail[local]'"
_REGISTER_LOCK = threading.Lock()


def register() -> None:
    """Register the `local` provider with litellm (idempotent; keeps other custom providers).

    Raises `ImportError` naming the extra to install when llama-cpp-python or litellm is
    missing, so a pipeline fails when it is built rather than on its first document.
    """
    for module, package in (("llama_cpp", "llama-cpp-python"), ("litellm", "litellm")):
        if importlib.util.find_spec(module) is None:
            raise ImportError(
                f"the embedded model `local/...` needs {package}, which is not installed; {INSTALL}"
            )
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from handrail.providers.local._handler import HANDLER, PROVIDER, LocalHandler

    with _REGISTER_LOCK:
        import litellm

        entries = [
            entry
            for entry in (litellm.custom_provider_map or [])
            if not (
                entry.get("provider") == PROVIDER
                and isinstance(entry.get("custom_handler"), LocalHandler)
            )
        ]
        if any(entry.get("provider") == PROVIDER for entry in entries):
            raise RuntimeError(
                "another litellm custom provider is already registered as `local`; "
                "remove it from litellm.custom_provider_map"
            )
        litellm.custom_provider_map = [
            *entries,
            {"provider": PROVIDER, "custom_handler": HANDLER},
        ]
        # litellm reads the map on every call, but only after its own setup step; run it now
        # so a model string is recognised even before that (e.g. by get_llm_provider).
        from litellm.utils import custom_llm_setup

        custom_llm_setup()  # type: ignore[no-untyped-call]


__all__ = [
    "ALIASES",
    "DEFAULT",
    "INSTALL",
    "ModelFileError",
    "known_names",
    "register",
    "resolve_model_path",
]
