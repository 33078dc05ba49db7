"""Record a model's answers to a directory and play them back offline: `RecordingModel`,
`ReplayModel`.

    model = RecordingModel(get_model("openai/gpt-4o-mini"), "recordings")  # calls, and writes
    model = ReplayModel("recordings")                                       # offline and free

One JSON file per request key, `<key>.json`. The key is the SHA-256 of a canonical JSON of what
decides an answer: the model's name and the request's node, kind, messages, output schema,
labels and params, and the page numbers shown as images when there are any (the images
themselves are not hashed). The run id, document id and attempt number are left out, so the
same prompt replays in another run and after a retry. The node is in: the `Model` port hands a
model the node, and a model may answer by it (`FakeModel` scripts do), so without it two nodes
with the same prompt could not replay exactly; the price is that renaming a node means
recording again.

A file keeps a list of responses. The n-th time a `RecordingModel` sees a key it writes entry n
(so recording again into the same directory replaces entries instead of growing the list), and
a `ReplayModel` answers its n-th call for a key with entry n, going round again after the last:
a sampled model's different answers to one request replay in the order they came. Errors
(timeouts, rate limits) are not recorded, they are the provider's passing state; outputs that
fail validation are, so the runner's re-ask replays too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import threading
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from filelock import FileLock
from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, to_jsonable_python

from handrail._utils import now
from handrail.core.model import Model, ModelRequest, ModelResponse
from handrail.exceptions import InputError, PermanentProviderError, ReplayMiss

VERSION = 1
"""The format of a recording file; a file of another version is refused, never guessed at."""

_RESPONSE: TypeAdapter[ModelResponse] = TypeAdapter(ModelResponse)


def keyed_request(model: str, request: ModelRequest) -> dict[str, Any]:
    """What a recording is keyed by, as JSON data (also written in the file, for people)."""
    keyed = {
        "model": model,
        "node": request.node,
        "kind": request.kind,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "output_schema": to_jsonable_python(request.output_schema),
        "labels": list(request.labels),
        "params": to_jsonable_python(request.params),
    }
    if request.images:  # only then: recordings of text-only calls keep their keys
        keyed["images"] = list(request.images)
    return keyed


def request_key(model: str, request: ModelRequest) -> str:
    """The hex SHA-256 key of a request to `model` (see the module docs for what is in it)."""
    return _key(keyed_request(model, request))


def _key(keyed: dict[str, Any]) -> str:
    canonical = json.dumps(keyed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class RecordingModel:
    """A `Model` that asks `inner` and writes each answer to `directory` (created if missing).

    Files are replaced atomically (a temporary file, then `os.replace`), under a lock file in the
    directory, so a crash never leaves half a file and runs, threads or processes recording the
    same key at once leave a valid one.
    """

    def __init__(self, inner: Model, directory: str | os.PathLike[str]) -> None:
        self.inner = inner
        self.directory = _directory(directory, create=True)
        self._lock = threading.Lock()
        self._file_lock = FileLock(self.directory / ".lock")
        self._seen: dict[str, int] = {}

    @property
    def name(self) -> str:
        return self.inner.name

    async def generate(self, request: ModelRequest) -> ModelResponse:
        response = await self.inner.generate(request)
        self.record(request, response)
        return response

    def record(self, request: ModelRequest, response: ModelResponse) -> Path:
        """Write `response` as the answer to `request`; returns the file."""
        model = self.inner.name
        keyed = keyed_request(model, request)
        key = _key(keyed)
        try:
            entry = {
                "recorded_at": now().isoformat(),
                "response": _RESPONSE.dump_python(response, mode="json"),
            }
        except PydanticSerializationError as e:
            raise TypeError(
                f"cannot record `{request.node}`'s answer: {e}; RecordingModel keeps answers "
                "whose output is JSON data (text, numbers, lists, dicts, pydantic models)"
            ) from e
        path = self.directory / f"{key}.json"
        with self._lock, self._file_lock:
            position = self._seen.get(key, 0)
            self._seen[key] = position + 1
            try:
                entries = _read(path).entries
            except (FileNotFoundError, _Broken):  # nothing yet, or a broken file: start over
                entries = []
            if position < len(entries):
                entries[position] = entry
            else:
                entries.append(entry)
            record = {
                "version": VERSION,
                "key": key,
                "model": model,
                "request": {k: v for k, v in keyed.items() if k != "model"},
                "responses": entries,
            }
            _write(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        return path


class ReplayModel:
    """A `Model` that answers from the recordings in `directory`, offline and free.

    The answers are the recorded ones, exactly: output, usage and cost, confidence with its
    source, field confidence, label scores, finish reason and the answering model. `name` is the
    recorded model's; `model` chooses when the directory holds recordings of several. A request
    with no recording goes to `fallback` (not recorded unless it is a `RecordingModel`), or
    fails its step with `ReplayMiss`.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        model: str | None = None,
        fallback: Model | None = None,
    ) -> None:
        self.directory = _directory(directory, create=False)
        self.fallback = fallback
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[ModelResponse, ...]] = {}
        self._next: dict[str, int] = {}
        recorded: set[str] = set()
        for path in sorted(self.directory.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                recording = _read(path)
            except _Broken as e:
                raise InputError(str(e)) from None
            recorded.add(recording.model)
            self._loaded[path.stem] = recording.responses
        self.recorded_models = tuple(sorted(recorded))
        """The models the directory holds recordings of."""
        self._name = self._choose(model.strip() if model is not None else None)

    def _choose(self, model: str | None) -> str | None:
        names = self.recorded_models
        if model is not None:
            if names and model not in names and self.fallback is None:
                raise InputError(
                    f"no recordings of model {model!r} in `{self.directory}` (it holds "
                    f"{_listed(names)}); replay one of those, or record {model!r} first"
                )
            return model
        if len(names) > 1:
            raise InputError(
                f"`{self.directory}` holds recordings of several models ({_listed(names)}); "
                "choose one: ReplayModel(..., model=...) or --model"
            )
        if names:
            return names[0]
        return self.fallback.name if self.fallback is not None else None

    @property
    def name(self) -> str:
        return self._name or "replay"

    async def generate(self, request: ModelRequest) -> ModelResponse:
        key = request_key(self.name, request)
        responses = self._responses(key)
        if responses is None:
            if self.fallback is not None:
                return await self.fallback.generate(request)
            model = self._name or "MODEL"
            raise ReplayMiss(
                f"no recording for `{request.node}` in `{self.directory}` (model {self.name!r}, "
                f"key {key}); record it first: handrail run TARGET INPUT... --model {model} "
                f"--record {self.directory} (a changed prompt, document, schema, labels, params "
                "or node name is a new key)",
                node=request.node,
                key=key,
                directory=str(self.directory),
            )
        with self._lock:
            position = self._next.get(key, 0)
            self._next[key] = position + 1
        return responses[position % len(responses)]

    def _responses(self, key: str) -> tuple[ModelResponse, ...] | None:
        loaded = self._loaded.get(key)
        if loaded is not None:
            return loaded
        # Not there when we looked: a fallback recording into this directory may have added it.
        try:
            recording = _read(self.directory / f"{key}.json")
        except FileNotFoundError:
            return None
        except _Broken as e:
            raise PermanentProviderError(str(e)) from None
        with self._lock:
            return self._loaded.setdefault(key, recording.responses)


# --- files --------------------------------------------------------------------------------------


class _Broken(Exception):
    """A recording file that cannot be read (the message names it and says what to do)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Recording:
    model: str
    entries: list[dict[str, Any]]
    responses: tuple[ModelResponse, ...]


def _read(path: Path) -> _Recording:
    """The recording in `path`; `FileNotFoundError` if there is none, `_Broken` if unreadable."""
    fix = "delete it and record again"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise _Broken(f"recording `{path}` cannot be read ({e}); {fix}") from None
    if not isinstance(data, dict) or "version" not in data:
        raise _Broken(f"`{path}` is not a handrail recording (no version); {fix}")
    if data["version"] != VERSION:
        raise _Broken(
            f"recording `{path}` has format version {data['version']!r} and this handrail reads "
            f"version {VERSION}; use the handrail that wrote it, or {fix}"
        )
    try:
        model, entries = data["model"], data["responses"]
        if data["key"] != path.stem or not isinstance(model, str) or not entries:
            raise ValueError("its key, model or responses are missing or wrong")
        responses = tuple(_revive(entry["response"]) for entry in entries)
    except (KeyError, TypeError, ValueError) as e:  # pydantic's ValidationError is a ValueError
        detail = f"{e.error_count()} invalid fields" if isinstance(e, ValidationError) else e
        raise _Broken(f"recording `{path}` is damaged ({detail}); {fix}") from None
    return _Recording(model=model, entries=list(entries), responses=responses)


def _revive(data: Any) -> ModelResponse:
    response = _RESPONSE.validate_python(data)
    # JSON has no tuples: sequence fields (e.g. `warnings`) come back as tuples, as models
    # return them, so a replayed response equals the recorded one. `output` stays as recorded.
    tuples: dict[str, Any] = {
        f.name: tuple(value)
        for f in fields(response)
        if f.name != "output" and isinstance(value := getattr(response, f.name), list)
    }
    return replace(response, **tuples) if tuples else response


def _write(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically: readers see the old file or the new, never half."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide recordings from a shared checkout
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _directory(value: str | os.PathLike[str], *, create: bool) -> Path:
    path = Path(value).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"`{path}` is a file, not a directory; give a directory for recordings")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create the recordings directory `{path}`: {e}") from e
    elif not path.is_dir():
        raise InputError(
            f"no recordings at `{path}`: the directory does not exist; record first: "
            f"handrail run TARGET INPUT... --model MODEL --record {path}"
        )
    return path


def _listed(names: tuple[str, ...]) -> str:
    return ", ".join(repr(n) for n in names)


__all__ = ["VERSION", "RecordingModel", "ReplayModel", "keyed_request", "request_key"]
