"""Rendering pages: the Jinja2 templates (autoescaped: every value a document, a model or a
reviewer wrote is text, never markup) and the small formats they use. Times are UTC."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import Response

from handrail.review import DocumentView
from handrail.review.shapes import jsonable

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def when(moment: datetime | None) -> str:
    """`2026-03-05 18:42` (UTC), or empty."""
    if moment is None:
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return f"{moment:%Y-%m-%d %H:%M:%S}"


def age(seconds: float | None) -> str:
    """`42 s`, `12 min`, `3.5 h`, `2.1 d`."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def duration(seconds: float | None) -> str:
    """Like `age`, with milliseconds under a second (a step's processing time)."""
    if seconds is not None and seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    return age(seconds)


def score(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.0f}%"


def compact(value: Any, limit: int = 120) -> str:
    """A value on one line, cut at `limit` characters."""
    text = value if isinstance(value, str) else json.dumps(jsonable(value), ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pretty(value: Any) -> str:
    return json.dumps(jsonable(value), indent=2, ensure_ascii=False)


def segments(document: DocumentView) -> list[tuple[str, str | None, int]]:
    """The document's body cut at its highlights: (text, field path or None, highlight no.)."""
    parts: list[tuple[str, str | None, int]] = []
    body, position = document.body, 0
    for number, mark in enumerate(sorted(document.highlights, key=lambda h: h.start)):
        if mark.start < position or mark.end > len(body) or mark.end <= mark.start:
            continue  # overlapping or out of range: shown as plain text
        if mark.start > position:
            parts.append((body[position : mark.start], None, 0))
        parts.append((body[mark.start : mark.end], mark.path, number))
        position = mark.end
    if position < len(body):
        parts.append((body[position:], None, 0))
    return parts


def make_templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(("html", "svg"), default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        age=age,
        duration=duration,
        score=score,
        percent=percent,
        compact=compact,
        pretty=pretty,
    )
    env.globals.update(segments=segments)
    return Jinja2Templates(env=env)


def page(
    templates: Jinja2Templates,
    request: Request,
    name: str,
    context: Mapping[str, Any],
    *,
    status_code: int = 200,
) -> Response:
    """Template `name` with `context` (plus `request`, `me` and `csrf` when signed in)."""
    full = {"me": None, "csrf": "", "title": "handrail", **context}
    return templates.TemplateResponse(request, name, full, status_code=status_code)


__all__ = [
    "STATIC",
    "TEMPLATES",
    "age",
    "compact",
    "duration",
    "make_templates",
    "page",
    "percent",
    "pretty",
    "score",
    "segments",
    "when",
]
