"""`handrail serve`: the review inbox, a server-rendered web app over `handrail.review`.

Needs the `web` extra: `pip install "handrail[web]"` (FastAPI, uvicorn, python-multipart).
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as e:  # pragma: no cover - the extra is installed in the test environment
    raise ImportError(
        'the review inbox needs FastAPI and uvicorn: pip install "handrail[web]"'
    ) from e

from handrail.web.app import create_app

__all__ = ["create_app"]
