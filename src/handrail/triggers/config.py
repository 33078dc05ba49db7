"""`Triggers`: which triggers feed a pipeline, declared in Python beside it or read from
`[tool.handrail.triggers]` in pyproject.toml (docs/triggers.md#configuration).

```python
# support.py, beside `pipeline`
triggers = Triggers(
    http=["crm"],
    folders=[Folder(path="inbox")],
    mailboxes=[Mailbox(name="support", host="imap.example.com", username="support@example.com",
                       password_env="SUPPORT_IMAP_PASSWORD")],
    schedules=[Schedule(name="daily", cron="0 6 * * 1-5")],
)
```

```toml
[tool.handrail.triggers]
http = ["crm"]
[[tool.handrail.triggers.folders]]
path = "inbox"
[[tool.handrail.triggers.mailboxes]]
name = "support"
host = "imap.example.com"
username = "support@example.com"
password_env = "SUPPORT_IMAP_PASSWORD"
[[tool.handrail.triggers.schedules]]
name = "daily"
cron = "0 6 * * 1-5"
```

Both are read by `handrail serve` and `handrail worker` and merged (a name given twice is an
error). Secrets never live in either: an HTTP source's secret is `HANDRAIL_SOURCE_<NAME>_SECRET`,
a mailbox's password the variable `password_env` names; a key that would hold one is refused.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from handrail.exceptions import InputError
from handrail.triggers.schedule import Schedule

Security = Literal["ssl", "starttls", "none"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Folder:
    """A watched folder (`handrail.triggers.folder.FolderTrigger`)."""

    path: str
    name: str | None = None
    """Its receipts are under `folder:<name>` (default: the folder's absolute path)."""
    recursive: bool = False
    settle_seconds: float = 1.0
    interval_seconds: float = 2.0

    def __post_init__(self) -> None:
        if not self.path:
            raise InputError("a folder trigger needs `path`")
        _positive(f"folder `{self.path}`", settle_seconds=self.settle_seconds)
        _positive(f"folder `{self.path}`", interval_seconds=self.interval_seconds)

    @property
    def source(self) -> str:
        return f"folder:{self.name or Path(self.path).absolute().as_posix()}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Mailbox:
    """A mailbox read over IMAP (`handrail.triggers.mailbox.MailboxTrigger`)."""

    name: str
    host: str
    username: str | None = None
    """The login; or `username_env`, the variable holding it."""
    username_env: str | None = None
    password_env: str
    """The environment variable holding the password (never the password itself)."""
    port: int | None = None
    folder: str = "INBOX"
    security: Security = "ssl"
    """`ssl` (port 993), `starttls` (143), or `none` (loopback hosts only)."""
    ca_file: str | None = None
    """A CA bundle to trust instead of the system's (a private mail server)."""
    move_to: str | None = None
    """Move each message there once taken, instead of marking it seen."""
    interval_seconds: float = 60.0

    def __post_init__(self) -> None:
        if (self.username is None) == (self.username_env is None):
            raise InputError(f"mailbox `{self.name}`: give `username` or `username_env`")
        if self.security not in ("ssl", "starttls", "none"):
            raise InputError(
                f"mailbox `{self.name}`: security must be ssl, starttls or none (loopback only)"
            )
        _positive(f"mailbox `{self.name}`", interval_seconds=self.interval_seconds)

    @property
    def source(self) -> str:
        return f"mailbox:{self.name}"

    def login(self) -> tuple[str, str]:
        """The user name and password, from the environment; `InputError` names what is
        missing."""
        username = self.username
        if username is None:
            username = _env(f"mailbox `{self.name}`", self.username_env or "")
        return username, _env(f"mailbox `{self.name}`", self.password_env)


@dataclass(frozen=True, kw_only=True, slots=True)
class Triggers:
    """The triggers of one pipeline."""

    http: Sequence[str] = ()
    """HTTP sources (`handrail serve` only): each signed with `HANDRAIL_SOURCE_<NAME>_SECRET`."""
    folders: Sequence[Folder] = ()
    mailboxes: Sequence[Mailbox] = ()
    schedules: Sequence[Schedule] = ()
    where: str = field(default="Python", compare=False)
    """Where they were declared, for messages."""

    def __post_init__(self) -> None:
        for kind, names in (
            ("HTTP source", list(self.http)),
            ("folder", [f.source for f in self.folders]),
            ("mailbox", [m.name for m in self.mailboxes]),
            ("schedule", [s.name for s in self.schedules]),
        ):
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise InputError(f"{self.where}: {kind} given twice: {', '.join(twice)}")

    def __bool__(self) -> bool:
        return bool(self.http or self.folders or self.mailboxes or self.schedules)

    def merged(self, other: Triggers) -> Triggers:
        """These and `other`'s (a name in both is an error)."""
        return Triggers(
            http=[*self.http, *other.http],
            folders=[*self.folders, *other.folders],
            mailboxes=[*self.mailboxes, *other.mailboxes],
            schedules=[*self.schedules, *other.schedules],
            where=f"{self.where} and {other.where}",
        )

    def named(self) -> list[tuple[str, str]]:
        """Each trigger's (source name, kind), as `handrail_triggers` names it."""
        return [
            *((f"http:{h}", "http") for h in self.http),
            *((f.source, "folder") for f in self.folders),
            *((m.source, "mailbox") for m in self.mailboxes),
            *((s.source, "schedule") for s in self.schedules),
        ]


def load_triggers(pyproject: str | Path = "pyproject.toml") -> Triggers:
    """`[tool.handrail.triggers]` of `pyproject` (none when the file or table is absent);
    `InputError` names a wrong key and the fix."""
    path = Path(pyproject)
    if not path.is_file():
        return Triggers()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"cannot read {path}: {e}") from e
    table = data.get("tool", {}).get("handrail", {}).get("triggers")
    if table is None:
        return Triggers()
    return triggers_from(table, where=f"{path} [tool.handrail.triggers]")


def triggers_from(table: Mapping[str, Any], *, where: str) -> Triggers:
    """`Triggers` from a parsed `[tool.handrail.triggers]` table."""
    kinds = {"http", "folders", "mailboxes", "schedules"}
    unknown = sorted(set(table) - kinds)
    if unknown:
        raise InputError(
            f"{where}: unknown keys {', '.join(unknown)}; use http = [...] and "
            "[[...folders]], [[...mailboxes]], [[...schedules]] tables"
        )
    http = table.get("http", [])
    if not isinstance(http, list) or not all(isinstance(h, str) for h in http):
        raise InputError(f'{where}: http must be a list of source names, e.g. http = ["crm"]')
    return Triggers(
        http=http,
        folders=[_entry(Folder, f, where, "folders") for f in table.get("folders", [])],
        mailboxes=[_entry(Mailbox, m, where, "mailboxes") for m in table.get("mailboxes", [])],
        schedules=[_entry(Schedule, s, where, "schedules") for s in table.get("schedules", [])],
        where=where,
    )


_SECRETS = {"password", "secret", "token"}


def _entry(kind: type[Any], entry: Any, where: str, table: str) -> Any:
    if not isinstance(entry, Mapping):
        raise InputError(f"{where}: each [[{table}]] entry must be a table")
    label = entry.get("name") or entry.get("path") or "?"
    secrets = sorted(set(entry) & _SECRETS)
    if secrets:
        raise InputError(
            f"{where}: {table} `{label}`: {', '.join(secrets)} would put a secret in the config "
            "file; name an environment variable instead (password_env)"
        )
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(entry) - known)
    if unknown:
        raise InputError(
            f"{where}: {table} `{label}`: unknown keys {', '.join(unknown)}; it takes "
            f"{', '.join(sorted(known))}"
        )
    try:
        return kind(**entry)
    except InputError as e:
        raise InputError(f"{where}: {e}") from e
    except (TypeError, ValueError) as e:
        raise InputError(f"{where}: {table} `{label}`: {e}") from e


def _positive(what: str, **values: float) -> None:
    for key, value in values.items():
        if not isinstance(value, int | float) or value <= 0:
            raise InputError(f"{what}: {key} must be a number of seconds above 0")


def _env(what: str, variable: str) -> str:
    value = os.environ.get(variable, "") if variable else ""
    if not value:
        raise InputError(f"{what}: set the environment variable {variable or '(none named)'}")
    return value


__all__ = ["Folder", "Mailbox", "Schedule", "Triggers", "load_triggers", "triggers_from"]
