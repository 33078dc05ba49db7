"""E-mail over TLS to a real SMTP server on 127.0.0.1 (aiosmtpd) with a self-signed certificate
made in the test: implicit TLS (`security="ssl"`) and STARTTLS, the certificate always verified
(trusted only through `ca_file`), the login sent only inside TLS and never written down."""

from __future__ import annotations

import logging
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path

import pytest

from handrail._utils import now
from handrail.durable import SqlStore
from handrail.notify import Email, Notifications, dispatch_due

from .helpers import paused
from .tls import Cert, TlsSmtp, self_signed, smtp_server

USER, PASSWORD = "bell-user", "tls-hunter2-password"

# aiosmtpd counts only STARTTLS as TLS: it warns about AUTH on an implicit-TLS server (and on the
# plain-text server that tempts the client to log in without TLS).
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


def mail(server: TlsSmtp, security: str, ca_file: Path | None) -> Notifications:
    return Notifications(
        channels=[
            Email(
                name="mail",
                host=server.host,
                port=server.port,
                security=security,  # type: ignore[arg-type]
                ca_file=str(ca_file) if ca_file is not None else None,
                sender="handrail@example.com",
                to=("reviewers@example.com",),
                username_env="HR_TEST_SMTP_USER",
                password_env="HR_TEST_SMTP_PASSWORD",
                timeout=5,
            )
        ]
    )


def serving(security: str, cert: Cert) -> AbstractContextManager[TlsSmtp]:
    """The server `security` expects, with `cert` and a required login: implicit TLS for
    `ssl`, STARTTLS required before anything else for `starttls`."""
    if security == "ssl":
        return smtp_server(implicit=cert, login=(USER, PASSWORD))
    return smtp_server(starttls=cert, login=(USER, PASSWORD))


def handrail_logs(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("handrail"))


@pytest.fixture(autouse=True)
def _login(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("HR_TEST_SMTP_USER", USER)
    monkeypatch.setenv("HR_TEST_SMTP_PASSWORD", PASSWORD)
    caplog.set_level(logging.DEBUG)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
async def test_a_trusted_tls_server_gets_the_mail_and_the_login_inside_tls(
    sqlite_url: str, tmp_path: Path, security: str, caplog: pytest.LogCaptureFixture
) -> None:
    cert = self_signed(tmp_path, "server")
    with serving(security, cert) as server:
        notify = mail(server, security, cert.cert)
        with SqlStore(sqlite_url, routes=notify.routes) as store:
            record = await paused(store)
            done = dispatch_due(store, notify)
            [row] = store.outbox_rows()
    assert (done.delivered, row.status, row.attempts, row.last_error) == (1, "delivered", 1, None)
    [(message, tls)] = server.inbox.messages
    assert tls is not None and tls.startswith("TLSv1.")
    assert message["X-Handrail-Event-Id"] == f"review.waiting:{record.reviews[0].review_id}"
    assert server.inbox.logins == [(USER, PASSWORD, tls)]  # the login went inside TLS
    assert PASSWORD not in handrail_logs(caplog)


@pytest.mark.parametrize("security", ["ssl", "starttls"])
async def test_a_refused_login_is_retried_without_the_password_then_delivered_once(
    sqlite_url: str,
    tmp_path: Path,
    security: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = "wrong-password-for-the-bell"
    monkeypatch.setenv("HR_TEST_SMTP_PASSWORD", wrong)
    cert = self_signed(tmp_path, "server")
    with serving(security, cert) as server:
        notify = mail(server, security, cert.cert)
        with SqlStore(sqlite_url, routes=notify.routes) as store:
            await paused(store)
            t0 = now()
            first = dispatch_due(store, notify, now=t0)
            [refused] = store.outbox_rows()
            monkeypatch.setenv("HR_TEST_SMTP_PASSWORD", PASSWORD)  # the operator fixes it
            second = dispatch_due(store, notify, now=t0 + timedelta(seconds=31))
            third = dispatch_due(store, notify, now=t0 + timedelta(hours=2))
            [row] = store.outbox_rows()
    assert (first.retrying, second.delivered, third.messages) == (1, 1, 0)
    assert refused.status == "pending" and refused.next_attempt_at == t0 + timedelta(seconds=30)
    assert refused.last_error is not None
    assert refused.last_error.startswith(f"SMTP 127.0.0.1:{server.port}: SMTPAuthenticationError")
    assert (row.status, row.attempts) == ("delivered", 2)
    *refused_logins, accepted = server.inbox.logins  # smtplib tries PLAIN, then LOGIN
    assert {(u, p) for u, p, _ in refused_logins} == {(USER, wrong)}
    assert accepted[:2] == (USER, PASSWORD)
    assert all(tls is not None for _, _, tls in server.inbox.logins)
    assert len(server.inbox.messages) == 1
    for text in (refused.last_error, handrail_logs(caplog)):
        assert wrong not in text and PASSWORD not in text and USER not in text


@pytest.mark.parametrize("security", ["ssl", "starttls"])
@pytest.mark.parametrize(
    ("trust", "fix"),
    [
        ("another CA", "give ca_file the CA that signed it"),
        ("the system's CAs", "give ca_file the CA that signed it"),
        ("another host's cert", "not for 127.0.0.1: set host to a name the certificate holds"),
    ],
)
async def test_an_untrusted_certificate_is_refused_and_retried(
    sqlite_url: str,
    tmp_path: Path,
    security: str,
    trust: str,
    fix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    if trust == "another host's cert":  # trusted, but not for 127.0.0.1: a wrong host
        cert = self_signed(tmp_path, "server", host="mail.example.invalid")
        ca_file: Path | None = cert.cert
    else:
        cert = self_signed(tmp_path, "server")
        ca_file = self_signed(tmp_path, "other").cert if trust == "another CA" else None
    with serving(security, cert) as server:
        notify = mail(server, security, ca_file)
        with SqlStore(sqlite_url, routes=notify.routes) as store:
            await paused(store)
            t0 = now()
            done = dispatch_due(store, notify, now=t0)
            [row] = store.outbox_rows()
    assert (done.delivered, done.retrying) == (0, 1)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at == t0 + timedelta(seconds=30)
    assert row.last_error is not None
    assert row.last_error.startswith(f"SMTP 127.0.0.1:{server.port}: SSLCertVerificationError")
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error
    assert fix in row.last_error
    assert server.inbox.messages == [] and server.inbox.logins == []  # nothing left the client
    assert PASSWORD not in row.last_error and PASSWORD not in handrail_logs(caplog)


async def test_starttls_never_falls_back_to_plain_text(
    sqlite_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A server that offers no STARTTLS (and would take the login in plain text) gets nothing:
    no login, no mail."""
    cert = self_signed(tmp_path, "server")
    with smtp_server(login=(USER, PASSWORD), plain_auth=True) as server:
        notify = mail(server, "starttls", cert.cert)
        with SqlStore(sqlite_url, routes=notify.routes) as store:
            await paused(store)
            done = dispatch_due(store, notify)
            [row] = store.outbox_rows()
    assert (done.retrying, row.status) == (1, "pending")
    assert row.last_error is not None
    assert row.last_error.startswith(f"SMTP 127.0.0.1:{server.port}: SMTPNotSupportedError")
    assert "nothing was sent in plain text" in row.last_error
    assert server.inbox.messages == [] and server.inbox.logins == []
    assert PASSWORD not in handrail_logs(caplog)
