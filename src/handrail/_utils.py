"""Small helpers with no dependencies: ids, clocks, hashing, masking secrets.

`now()` and `new_id()` are module-level so tests can patch them for deterministic snapshots.
"""

from __future__ import annotations

import hashlib
import os
import re
from datetime import UTC, datetime


def now() -> datetime:
    """The current time (UTC); patched in tests."""
    return datetime.now(UTC)


def new_id(prefix: str) -> str:
    """A random id such as `run-1f2e3d4c5b6a`; patched in tests."""
    return f"{prefix}-{os.urandom(6).hex()}"


def content_hash(data: bytes | str) -> str:
    """Hex SHA-256 of a document's content."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id from its parts: the same parts always give the same id."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:16]}"


def unit_hash(*parts: str) -> float:
    """A deterministic number in [0, 1) from its parts (used for audit sampling)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


MASK = "***"
"""What a password is shown as."""
MIN_SECRET = 4
"""Secrets shorter than this are masked only where they stand in a URL or a `password=`
(replacing every `ab` in a message would garble it without hiding anything)."""

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s`]*")
_PASSWORD_PARAM = re.compile(r"""(?i)\b((?:ssl)?password\s*=\s*)('[^']*'|"[^"]*"|[^\s&#;'"`,)]+)""")


def one_line(error: BaseException) -> str:
    """`error` as `Type: its first line` (never a traceback nor a multi-line SQL statement)."""
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def mask_secrets(text: str, *secrets: str | None, urls: bool = True) -> str:
    """`text` with every password in it replaced by `***`: the password of each URL in it
    (`scheme://user:PASSWORD@host/...`, also when the password holds `@`, `/` or `:`),
    `password=` values (URL query parameters, libpq `key=value` strings), and each of `secrets`
    (say, a URL's parsed password) wherever it appears; `urls=False`: only those (for text
    whose URLs were masked already, and which may show an example URL such as
    `postgresql://user:password@host/db`).

    The one function every message, log line and shown URL goes through."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET:
            text = text.replace(secret, MASK)
    if not urls:
        return text
    text = _URL.sub(_mask_url, text)
    return _PASSWORD_PARAM.sub(lambda m: m.group(1) + MASK, text)


def _mask_url(match: re.Match[str]) -> str:
    url = match.group(0)
    scheme, rest = url.split("://", 1)
    # The user info ends at the last `@` before the query: a password may hold `@` and `/`.
    end = min((i for i in (rest.find("?"), rest.find("#")) if i != -1), default=len(rest))
    at = rest.rfind("@", 0, end)
    if at <= 0 or rest.startswith("/"):  # no user info (`sqlite:///a@b.db` is a path)
        return url
    user, colon, _password = rest[:at].partition(":")
    if not colon:
        return url
    return f"{scheme}://{user}:{MASK}@{rest[at + 1 :]}"
