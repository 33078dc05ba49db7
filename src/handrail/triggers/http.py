"""The HTTP trigger's sources and their signatures (docs/triggers.md).

Each source (`crm`, `forms`...) has its own secret, read from the environment variable
`HANDRAIL_SOURCE_<NAME>_SECRET` (never from a file, never logged). A request names its source
and is signed in the style of Stripe's and GitHub's webhooks:

```
X-Handrail-Source: crm
X-Handrail-Timestamp: 1718000000                      (unix seconds)
X-Handrail-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + raw body)>
```

A status request (`GET .../documents/{run_id}`) is signed with the same headers and secret over
`GET <path>`, a newline and the timestamp (`sign_status`): `HMAC(secret, f"GET {path}\n{ts}")`,
so a signature is good for that one path and method, and never for a POST (whose signed text
starts with the timestamp's digits, not `GET`).

A signature is accepted within 5 minutes of the server's clock either way; compared in
constant time; an unknown source is checked against a random key, so an answer never tells
which sources exist.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from handrail.exceptions import InputError

SOURCE_HEADER = "X-Handrail-Source"
TIMESTAMP_HEADER = "X-Handrail-Timestamp"
SIGNATURE_HEADER = "X-Handrail-Signature"
TOLERANCE_S = 300
"""How far a request's timestamp may be from the server's clock, either way (5 minutes)."""
MIN_SECRET = 16
"""The shortest secret accepted, in characters (`openssl rand -hex 32` makes 64)."""
SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
"""What a source's name may be: lower-case letters, digits, `_` and `-`."""


def secret_variable(source: str) -> str:
    """The environment variable holding `source`'s secret: `crm` -> `HANDRAIL_SOURCE_CRM_SECRET`
    (`-` becomes `_`)."""
    return f"HANDRAIL_SOURCE_{source.upper().replace('-', '_')}_SECRET"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Handrail-Signature` value of `body` sent at `timestamp` (unix seconds, as sent)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def sign_status(secret: str, timestamp: str, path: str | bytes) -> str:
    """The `X-Handrail-Signature` value of a status request for `path` (as sent, percent-encoded
    as in the request line, without a query string) at `timestamp`."""
    mac = hmac.new(secret.encode("utf-8"), status_message(timestamp, path), hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def status_message(timestamp: str, path: str | bytes) -> bytes:
    """What a status request's signature covers: `GET <path>\n<timestamp>`."""
    raw = path.encode("ascii") if isinstance(path, str) else path
    return b"GET " + raw + b"\n" + timestamp.encode("ascii")


def fresh(timestamp: str | None, at: float) -> bool:
    """Whether `timestamp` (unix seconds, as sent) is within `TOLERANCE_S` of `at`."""
    if not timestamp or not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        return False
    return abs(at - int(timestamp)) <= TOLERANCE_S


@dataclass(frozen=True, slots=True)
class Sources:
    """The sources a server takes documents from, with their secrets (kept out of `repr`)."""

    _secrets: Mapping[str, str] = field(repr=False)

    @classmethod
    def from_env(cls, names: Iterable[str], environ: Mapping[str, str] | None = None) -> Sources:
        """The sources `names`, each secret from its environment variable; `InputError` naming
        the variable (never its value) for a bad name, a missing or a short secret."""
        env = os.environ if environ is None else environ
        found: dict[str, str] = {}
        for name in names:
            if not SOURCE_NAME.fullmatch(name):
                raise InputError(
                    f"`{name}` is not a source name: use lower-case letters, digits, `_` and "
                    "`-` (at most 63), e.g. --source crm"
                )
            variable = secret_variable(name)
            secret = env.get(variable, "").strip()
            if not secret:
                raise InputError(
                    f"source `{name}` has no secret: set {variable} in the environment (e.g. "
                    f"`export {variable}=$(openssl rand -hex 32)`), and give the sender the same"
                )
            if len(secret) < MIN_SECRET:
                raise InputError(
                    f"the secret in {variable} is shorter than {MIN_SECRET} characters; use a "
                    "random one (`openssl rand -hex 32`)"
                )
            found[name] = secret
        return cls(found)

    @property
    def names(self) -> list[str]:
        return sorted(self._secrets)

    def verify(
        self,
        *,
        source: str | None,
        timestamp: str | None,
        signature: str | None,
        body: bytes | None = None,
        at: float,
        path: str | bytes | None = None,
    ) -> bool:
        """Whether the request is signed by `source`'s secret, with a timestamp `fresh` at `at`
        (the server's clock, unix seconds): a POST of `body`, or a status request for `path`."""
        if not source or not signature or timestamp is None or not fresh(timestamp, at):
            return False
        if (body is None) == (path is None):
            raise ValueError("verify a body (a POST) or a path (a status request), not both")
        known = self._secrets.get(source)
        # an unknown source costs the same HMAC, against a key nobody has
        key = known or secrets.token_hex(32)
        expected = (
            sign(key, timestamp, body)
            if body is not None
            else sign_status(key, timestamp, path or b"")
        )
        matches = hmac.compare_digest(expected.encode(), signature.strip().encode())
        return known is not None and matches


__all__ = [
    "MIN_SECRET",
    "SIGNATURE_HEADER",
    "SOURCE_HEADER",
    "TIMESTAMP_HEADER",
    "TOLERANCE_S",
    "Sources",
    "fresh",
    "secret_variable",
    "sign",
    "sign_status",
    "status_message",
]
