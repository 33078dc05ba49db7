"""Page images for models that can see: the pages a request asks for (`ModelRequest.images`),
rendered from the document's source file by `handrail.documents.render_pages` and sent as
OpenAI-style content parts beside the text, the form litellm translates for every provider.

A page that cannot be rendered (the file moved, changed or unreadable) is not sent: the call
goes on with the text, and the response's warnings say which pages are missing and why.
"""

from __future__ import annotations

import asyncio
import base64
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from handrail.core.model import ModelRequest
from handrail.exceptions import InputError, PermanentProviderError
from handrail.providers._litellm import litellm

if TYPE_CHECKING:
    from handrail.core.state import Document

PASSWORD_VARIABLE = "HANDRAIL_PDF_PASSWORD"
"""The environment variable `handrail run` reads an encrypted PDF's password from."""
_CACHE_BYTES = 32 * 2**20
"""Rendered pages kept per model (their data URLs' size): a re-ask or a sample of the same step
renders once. A scanned A4 page at 1600 pixels is about 2 MB as a PNG data URL."""


@dataclass(frozen=True, slots=True)
class Seen:
    """What a call shows the model besides its messages."""

    parts: tuple[dict[str, Any], ...] = ()
    """Content parts: for each page, a text label and the image as a `data:` URL."""
    pages: tuple[int, ...] = ()
    """The page numbers the parts show."""
    warnings: tuple[str, ...] = ()
    """The pages asked for that could not be rendered, and why."""

    @property
    def size(self) -> int:
        """The characters of its images' data URLs."""
        return sum(len(p["image_url"]["url"]) for p in self.parts if p["type"] == "image_url")


NOTHING = Seen()


def vision_support(model: str) -> bool | None:
    """What litellm's model map says of `model` taking images: True, False, or None where it
    does not say (an unknown model, or an entry without `supports_vision`)."""
    try:
        info = litellm.get_model_info(model=model)
    except Exception:  # not in the map: litellm cannot tell
        return None
    value = info.get("supports_vision")
    return None if value is None else bool(value)


def refuse_blind(request: ModelRequest, model: str, *, local: bool) -> PermanentProviderError:
    """The error for a node asking a model that cannot see for page images."""
    asked = f"`{request.node}` asks for page images (pages {_listed(request.images)})"
    if local:
        return PermanentProviderError(
            f"{asked}, but the embedded model {model!r} reads text only; drop images= from "
            "the node, or run it with a hosted model that can see (e.g. --model "
            "openai/gpt-4o-mini)"
        )
    return PermanentProviderError(
        f"{asked}, but litellm's model map says {model!r} cannot take images; use a model that "
        "can see (e.g. openai/gpt-4o-mini), drop images= from the node, or pass "
        "LiteLLMModel(..., vision=True) if the map is wrong about it"
    )


class PageImages:
    """Renders the pages requests ask for (cached per document and pages) into content parts."""

    def __init__(self, *, max_side: int) -> None:
        if max_side < 64:
            raise ValueError(f"image_side={max_side}: use at least 64 pixels (default 1600)")
        self.max_side = max_side
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[Any, ...], Seen] = OrderedDict()
        self._cached = 0

    async def look(self, request: ModelRequest) -> Seen:
        """The parts for `request.images`, or NOTHING when it asks for none."""
        if not request.images:
            return NOTHING
        document = request.document
        if document is None:
            return Seen(
                warnings=(
                    f"`{request.node}` asked for page images but the request carried no "
                    "document to render them from; the model read the text only",
                )
            )
        key = (
            document.source,
            document.hash,
            document.metadata.get("file_sha256"),
            tuple(request.images),
        )
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        seen = await asyncio.to_thread(self._render, document, request.images, request.node)
        if seen.pages:  # a failure is not kept: the file may be back for the next call
            with self._lock:
                earlier = self._cache.pop(key, None)  # two calls rendered it at once
                self._cached += seen.size - (earlier.size if earlier is not None else 0)
                self._cache[key] = seen
                while self._cached > _CACHE_BYTES and len(self._cache) > 1:
                    self._cached -= self._cache.popitem(last=False)[1].size
        return seen

    def _render(self, document: Document, pages: Sequence[int], node: str) -> Seen:
        try:
            from handrail.documents import LoadOptions
            from handrail.documents.render import render_pages

            options = LoadOptions(password=os.environ.get(PASSWORD_VARIABLE) or None)
            images = render_pages(document, pages, max_side=self.max_side, options=options)
        except (InputError, ImportError) as e:
            return Seen(
                warnings=(
                    f"pages {_listed(pages)} of `{document.id}` could not be rendered as "
                    f"images for `{node}` ({e}); the model read the text only",
                )
            )
        labels = {page.number: page.label for page in document.pages}
        parts: list[dict[str, Any]] = []
        for image in images:
            label = labels.get(image.page) or f"Page {image.page}"
            data = base64.b64encode(image.data).decode("ascii")
            url = f"data:{image.media_type};base64,{data}"
            parts.append({"type": "text", "text": f"{label}:"})
            parts.append({"type": "image_url", "image_url": {"url": url}})
        sent = tuple(image.page for image in images)
        missing = [page for page in pages if page not in sent]
        warnings = (
            (
                f"pages {_listed(missing)} of `{document.id}` were not rendered as images for "
                f"`{node}`; the model read their text only",
            )
            if missing
            else ()
        )
        return Seen(parts=tuple(parts), pages=sent, warnings=warnings)


def with_images(
    messages: list[dict[str, Any]], parts: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`messages` with `parts` after the text of the first user message (the document's), the
    others untouched; a copy, so the text-only messages stay as they were for a re-ask."""
    if not parts:
        return messages
    shown = [dict(m) for m in messages]
    for message in shown:
        if message["role"] == "user":
            message["content"] = [{"type": "text", "text": message["content"]}, *parts]
            return shown
    shown.append({"role": "user", "content": list(parts)})
    return shown


def _listed(pages: Sequence[int]) -> str:
    return ", ".join(str(page) for page in pages)


__all__ = [
    "NOTHING",
    "PASSWORD_VARIABLE",
    "PageImages",
    "Seen",
    "refuse_blind",
    "vision_support",
    "with_images",
]
