"""TLS for the e-mail tests: self-signed certificates made with the `openssl` command in the
test's folder, and an aiosmtpd server on 127.0.0.1 speaking implicit TLS or STARTTLS, with an
optional login it checks."""

from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as Mail
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True)
class Cert:
    """A self-signed certificate (its own CA) and its private key, as PEM files."""

    cert: Path
    key: Path

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate alone, checking the host name."""
        return ssl.create_default_context(cafile=str(self.cert))

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def self_signed(folder: Path, name: str, *, host: str = "127.0.0.1") -> Cert:
    """A certificate for `host` (an IP address or a DNS name), valid for a day."""
    openssl = shutil.which("openssl")
    if openssl is None:
        message = "the `openssl` command makes the test certificates; install OpenSSL"
        if os.environ.get("CI"):  # CI installs it: missing there is a failure, not a skip
            raise RuntimeError(message)
        pytest.skip(message)
    alt = f"IP:{host}" if host.replace(".", "").isdigit() else f"DNS:{host}"
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            f"/CN={host}",
            "-addext",
            f"subjectAltName={alt}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Cert(cert, key)


@dataclass
class TlsInbox:
    """What the server received: each message with the TLS version it came over (None: plain
    text), and every login it was asked for."""

    login: tuple[str, str] | None = None
    """The one login it accepts (None: it offers no AUTH)."""
    messages: list[tuple[Mail, str | None]] = field(default_factory=list)
    logins: list[tuple[str, str, str | None]] = field(default_factory=list)
    """(user, password, TLS version) of every AUTH attempt."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.original_content or envelope.content)
        self.messages.append((mail, _tls(server)))
        return "250 OK"

    def authenticator(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = data.login.decode(), data.password.decode()
        self.logins.append((user, password, _tls(server)))
        return AuthResult(success=(user, password) == self.login, handled=False)


def _tls(server: Any) -> str | None:
    tls = server.transport.get_extra_info("ssl_object")
    return None if tls is None else str(tls.version())


@dataclass
class TlsSmtp:
    host: str
    port: int
    inbox: TlsInbox


@contextmanager
def smtp_server(
    *,
    implicit: Cert | None = None,
    starttls: Cert | None = None,
    login: tuple[str, str] | None = None,
    plain_auth: bool = False,
) -> Iterator[TlsSmtp]:
    """An SMTP server on 127.0.0.1: `implicit` TLS from the first byte (port 465's way), or
    `starttls` required before any mail (587's); neither: plain text. With `login`, AUTH is
    offered (only after TLS, unless `plain_auth`) and required."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = TlsInbox(login=login)
    options: dict[str, Any] = {}
    if implicit is not None:
        options["ssl_context"] = implicit.server_context()
    if starttls is not None:
        options |= {"tls_context": starttls.server_context(), "require_starttls": True}
    if login is not None:
        options |= {
            "authenticator": inbox.authenticator,
            "auth_required": True,
            # aiosmtpd counts only STARTTLS as TLS; with implicit TLS every byte is in TLS
            "auth_require_tls": implicit is None and not plain_auth,
        }
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield TlsSmtp("127.0.0.1", port, inbox)
    finally:
        controller.stop()
