"""`Notifications`: the channels, the inbox's address and the retry policy, declared in Python or
read from `[tool.handrail.notify]` in pyproject.toml (`load_notifications`).

The config file names environment variables for secrets (`secret_env`, `url_env`,
`password_env`); a key that would hold a secret itself (`secret`, `password`, a Slack `url`) is
refused.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from handrail.durable.outbox import Route
from handrail.exceptions import InputError
from handrail.notify.channels import Channel, Email, Slack, Webhook

DEFAULT_BASE_URL = "http://127.0.0.1:8765"


@dataclass(frozen=True, kw_only=True, slots=True)
class Backoff:
    """How a failed send is retried: after `first`, then twice as long each time (at most
    `longest`), `attempts` times in all; then the row is marked `failed` for good."""

    first: timedelta = timedelta(seconds=30)
    longest: timedelta = timedelta(hours=1)
    attempts: int = 10

    def delay(self, attempts: int) -> timedelta | None:
        """How long to wait after the `attempts`-th failed try; None: give up."""
        if attempts >= self.attempts:
            return None
        delay: timedelta = self.first * 2 ** (attempts - 1)
        return min(delay, self.longest)


@dataclass(frozen=True, kw_only=True, slots=True)
class Notifications:
    """Who hears about what: `DurableRunner(..., notify=Notifications(channels=[...]))` writes
    the outbox rows; `dispatch_due(store, notify)` (run by `handrail worker` and `handrail
    serve`) sends them."""

    channels: Sequence[Channel]
    base_url: str = DEFAULT_BASE_URL
    """The inbox's address as people reach it (`handrail serve`'s): links are built on it."""
    retry: Backoff = Backoff()
    lease: timedelta = timedelta(minutes=2)
    """How long a dispatcher holds a row it is sending: longer than any channel's timeout."""

    def __post_init__(self) -> None:
        names = [c.name for c in self.channels]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"channel names must be unique; given twice: {', '.join(twice)}")
        longest = max((c.timeout for c in self.channels), default=0.0)
        if self.lease.total_seconds() <= 3 * longest:
            raise ValueError(
                f"lease={self.lease.total_seconds():.0f} s must exceed three channel timeouts "
                f"({longest:.0f} s each): a send must end before another dispatcher may retry it"
            )

    @property
    def routes(self) -> tuple[Route, ...]:
        """What the store writes rows for (`SqlStore(routes=...)`)."""
        return tuple(c.route for c in self.channels)

    def channel(self, name: str) -> Channel | None:
        return next((c for c in self.channels if c.name == name), None)


_KINDS: dict[str, type[Channel]] = {"webhook": Webhook, "slack": Slack, "email": Email}
_SECRET_KEYS = {"secret", "password", "username", "token"}
_COMMON = {"name", "kind", "events", "queues", "digest_seconds", "remind_before_seconds"}
_COMMON |= {"include_content", "timeout"}
_OWN = {
    "webhook": {"url", "secret_env"},
    "slack": {"url_env"},
    "email": {
        "host",
        "port",
        "sender",
        "to",
        "security",
        "username_env",
        "password_env",
        "ca_file",
    },
}


def load_notifications(pyproject: str | Path = "pyproject.toml") -> Notifications | None:
    """`[tool.handrail.notify]` of `pyproject` as `Notifications`, or None when the file or the
    table is absent. `InputError` names a wrong key and how to fix it."""
    path = Path(pyproject)
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}") from e
    table = data.get("tool", {}).get("handrail", {}).get("notify")
    if table is None:
        return None
    return notifications_from(table, where=f"{path} [tool.handrail.notify]")


def notifications_from(table: Mapping[str, Any], *, where: str) -> Notifications:
    """`Notifications` from a parsed `[tool.handrail.notify]` table."""
    unknown = sorted(set(table) - {"base_url", "channels", "retry_first_seconds", "retry_attempts"})
    if unknown:
        raise InputError(
            f"{where}: unknown keys {', '.join(unknown)}; use base_url, retry_first_seconds, "
            "retry_attempts and [[tool.handrail.notify.channels]]"
        )
    channels = [_channel(c, where) for c in table.get("channels", [])]
    retry = Backoff(
        first=timedelta(seconds=float(table.get("retry_first_seconds", 30))),
        attempts=int(table.get("retry_attempts", 10)),
    )
    try:
        return Notifications(
            channels=channels, base_url=str(table.get("base_url", DEFAULT_BASE_URL)), retry=retry
        )
    except ValueError as e:
        raise InputError(f"{where}: {e}") from e


def _channel(entry: Mapping[str, Any], where: str) -> Channel:
    name = entry.get("name", "?")
    kind = entry.get("kind")
    if kind not in _KINDS:
        raise InputError(f"{where}: channel `{name}`: kind must be webhook, slack or email")
    secrets = sorted(set(entry) & _SECRET_KEYS)
    if secrets or (kind == "slack" and "url" in entry):
        shown = ", ".join(secrets or ["url"])
        raise InputError(
            f"{where}: channel `{name}`: {shown} would put a secret in the config file; name an "
            "environment variable instead (secret_env, url_env, username_env, password_env)"
        )
    unknown = sorted(set(entry) - _COMMON - _OWN[kind])
    if unknown:
        raise InputError(
            f"{where}: channel `{name}`: unknown keys {', '.join(unknown)}; a {kind} channel "
            f"takes {', '.join(sorted(_COMMON | _OWN[kind]))}"
        )
    args: dict[str, Any] = {k: v for k, v in entry.items() if k != "kind"}
    if "digest_seconds" in args:
        args["digest"] = timedelta(seconds=float(args.pop("digest_seconds")))
    if "remind_before_seconds" in args:
        args["remind_before"] = timedelta(seconds=float(args.pop("remind_before_seconds")))
    for key in ("events", "queues", "to"):
        if key in args:
            args[key] = tuple(args[key])
    try:
        return _KINDS[kind](**args)
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: channel `{name}`: {e}") from e
