"""Where notifications go: a signed generic webhook, a Slack-compatible incoming webhook
(Mattermost takes the same), and e-mail over SMTP.

Each channel says which events it wants (and of which queues) and how to send one `Message`.
Secrets (a webhook's signing secret, a Slack URL, an SMTP password) are read from environment
variables the channel names, when it sends; they never appear in what it raises: a failure is a
`DeliveryFailed` whose text has every secret masked.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, ClassVar, Literal

from handrail.durable.outbox import EVENTS, Route

SIGNATURE_HEADER = "X-Handrail-Signature"
TIMESTAMP_HEADER = "X-Handrail-Timestamp"
EVENT_ID_HEADER = "X-Handrail-Event-Id"
EVENT_HEADER = "X-Handrail-Event"


class DeliveryFailed(Exception):
    """A channel could not send a message; the text names why, with no secret in it."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One notification, rendered: what every channel sends in its own form."""

    event: str
    event_id: str
    """The dedupe id a receiver keys on (a digest's: its first row's)."""
    event_ids: tuple[str, ...]
    """Every outbox event it announces (several for a digest)."""
    subject: str
    text: str
    """Plain text: what happened, the reasons, the inbox link(s)."""
    link: str | None
    items: tuple[dict[str, Any], ...]
    """The events' payloads (ids, queue, reasons; never document text)."""


@dataclass(frozen=True, kw_only=True)
class Channel:
    """What every channel has: its name and which events it wants."""

    kind: ClassVar[str] = ""
    name: str
    events: frozenset[str] | tuple[str, ...] = EVENTS
    queues: tuple[str, ...] | None = None
    """Review events of these queues only (None: every queue)."""
    digest: timedelta | None = None
    """Group `review.waiting` of one queue: one message per window, listing every review."""
    remind_before: timedelta = timedelta(hours=1)
    """Send `review.due_soon` this long before a deadline."""
    include_content: bool = False
    """Show the output under review (and a failed run's error message). Off: never."""
    timeout: float = 10.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError(f"a {type(self).__name__} channel needs a name")
        unknown = sorted(set(self.events) - set(EVENTS))
        if unknown:
            raise ValueError(
                f"channel `{self.name}`: unknown events {', '.join(unknown)}; "
                f"use any of {', '.join(EVENTS)}"
            )

    @property
    def route(self) -> Route:
        """What the store needs to write this channel's outbox rows."""
        return Route(
            channel=self.name,
            events=frozenset(self.events),
            queues=frozenset(self.queues) if self.queues is not None else None,
            digest=self.digest,
            remind_before=self.remind_before,
            include_content=self.include_content,
        )

    def send(self, message: Message) -> None:
        raise NotImplementedError


@dataclass(frozen=True, kw_only=True)
class Webhook(Channel):
    """POST the message as JSON to `url`, signed: `X-Handrail-Signature: sha256=<hex>` is the
    HMAC-SHA256, keyed with the secret in `$secret_env`, of `<timestamp>.<body>`
    (`X-Handrail-Timestamp`: Unix seconds); `X-Handrail-Event-Id` is the dedupe key."""

    kind: ClassVar[str] = "webhook"
    url: str
    secret_env: str | None = None
    """The environment variable holding the signing secret (None: unsigned)."""

    def send(self, message: Message) -> None:
        secret = _env(self.secret_env, self.name) if self.secret_env else None
        body = json.dumps(
            {
                "event_id": message.event_id,
                "event": message.event,
                "event_ids": list(message.event_ids),
                "subject": message.subject,
                "text": message.text,
                "link": message.link,
                "items": list(message.items),
            }
        ).encode()
        headers = {EVENT_ID_HEADER: message.event_id, EVENT_HEADER: message.event}
        if secret is not None:
            headers |= sign(secret, body)
        _post(self.url, body, headers, self.timeout, [secret])


@dataclass(frozen=True, kw_only=True)
class Slack(Channel):
    """A Slack (or Mattermost) incoming webhook: `{"text": ...}` with the inbox link. The
    webhook URL is itself a secret: give `url_env` (or `url` in Python, for a local test)."""

    kind: ClassVar[str] = "slack"
    url_env: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        Channel.__post_init__(self)
        if (self.url is None) == (self.url_env is None):
            raise ValueError(f"Slack channel `{self.name}`: give url_env (or url), not both")

    def send(self, message: Message) -> None:
        url = self.url if self.url is not None else _env(self.url_env, self.name)
        text = message.text
        if message.link is not None:
            text = text.replace(message.link, f"<{message.link}|{message.link}>")
        body = json.dumps({"text": f"*{message.subject}*\n{text}"}).encode()
        _post(url, body, {EVENT_ID_HEADER: message.event_id}, self.timeout, [url])


@dataclass(frozen=True, kw_only=True)
class Email(Channel):
    """E-mail over SMTP: `security` is `starttls` (port 587), `ssl` (465) or `none` (a relay on
    loopback); the login, if any, from `$username_env` and `$password_env`. With TLS the
    server's certificate and host name are always checked, against the system's CAs or, given
    `ca_file`, against the CAs in that PEM file only. `starttls` never falls back to plain text:
    a server that does not offer STARTTLS is refused."""

    kind: ClassVar[str] = "email"
    host: str
    port: int = 587
    sender: str
    to: tuple[str, ...]
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username_env: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    """A PEM file of the CAs to trust instead of the system's (a private CA, a self-signed
    server): the certificate is verified all the same."""

    def __post_init__(self) -> None:
        Channel.__post_init__(self)
        if not self.to:
            raise ValueError(f"e-mail channel `{self.name}`: give at least one address in `to`")
        if self.security not in ("starttls", "ssl", "none"):
            raise ValueError(
                f"e-mail channel `{self.name}`: security={self.security!r}; "
                "use starttls, ssl or none"
            )
        if self.ca_file is not None and self.security == "none":
            raise ValueError(
                f"e-mail channel `{self.name}`: ca_file is for a TLS server; use security "
                "starttls or ssl with it"
            )

    def send(self, message: Message) -> None:
        username = _env(self.username_env, self.name) if self.username_env else None
        password = _env(self.password_env, self.name) if self.password_env else None
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.to)
        mail[EVENT_ID_HEADER] = message.event_id
        mail.set_content(message.text)
        try:
            smtp: smtplib.SMTP
            if self.security == "ssl":
                context = ssl.create_default_context(cafile=self.ca_file)
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    # Raises SMTPNotSupportedError when the server does not offer it: never
                    # continue in plain text.
                    smtp.starttls(context=ssl.create_default_context(cafile=self.ca_file))
                if username is not None and password is not None:
                    smtp.login(username, password)
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as e:
            said = f"SMTP {self.host}:{self.port}: {type(e).__name__}: {e}{self._fix(e)}"
            raise DeliveryFailed(mask(said, [password, username])) from None

    def _fix(self, error: Exception) -> str:
        """How to fix a TLS failure (nothing for the others)."""
        if isinstance(error, ssl.SSLCertVerificationError):
            if "mismatch" in (error.verify_message or ""):
                return (
                    f"; the server's certificate is not for {self.host}: set host to a name "
                    "the certificate holds (verification is never turned off)"
                )
            return (
                "; the server's certificate is not trusted: give ca_file the CA that signed it "
                "(verification is never turned off)"
            )
        if isinstance(error, smtplib.SMTPNotSupportedError) and self.security == "starttls":
            return (
                "; the server does not offer STARTTLS and security is starttls, so nothing was "
                "sent in plain text: use a server that offers it, or security ssl"
            )
        return ""


# --- signing -------------------------------------------------------------------------------------


def sign(secret: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The signature headers of `body` (`timestamp`: Unix seconds, default now)."""
    import time

    stamp = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: f"sha256={digest}"}


def verify(
    secret: str,
    body: bytes,
    *,
    timestamp: str,
    signature: str,
    now: float | None = None,
    tolerance: float = 300.0,
) -> bool:
    """What a receiver checks: the signature matches and the timestamp is within `tolerance`
    seconds of `now` (a replayed old request is refused)."""
    import time

    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance:
        return False
    expected = sign(secret, body, timestamp=stamp)[SIGNATURE_HEADER]
    return hmac.compare_digest(expected, signature)


# --- plumbing ------------------------------------------------------------------------------------


def mask(text: str, secrets: list[str | None]) -> str:
    """`text` with every secret (longer than 3 characters) replaced by `***`."""
    for secret in secrets:
        if secret and len(secret) > 3:
            text = text.replace(secret, "***")
    return text


def _env(name: str | None, channel: str) -> str:
    value = os.environ.get(name or "", "")
    if not value:
        raise DeliveryFailed(
            f"channel `{channel}`: the environment variable {name} is not set; set it in the "
            "environment of the process that sends (the worker, `handrail serve`)"
        )
    return value


def _post(
    url: str, body: bytes, headers: dict[str, str], timeout: float, secrets: list[str | None]
) -> None:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "handrail"} | headers,
    )
    if not url.startswith(("http://", "https://")):
        raise DeliveryFailed("the webhook URL must start with http:// or https://")
    where = mask(url, secrets)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            answer.read(1024)
    except urllib.error.HTTPError as e:
        raise DeliveryFailed(f"POST {where}: HTTP {e.code}") from None
    except (OSError, ValueError) as e:
        raise DeliveryFailed(mask(f"POST {where}: {type(e).__name__}: {e}", secrets)) from None


__all__ = [
    "Channel",
    "DeliveryFailed",
    "Email",
    "Message",
    "Slack",
    "Webhook",
    "sign",
    "verify",
]
