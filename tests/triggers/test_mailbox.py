"""The mailbox trigger against a real IMAP server on 127.0.0.1 (pymap, over implicit TLS with a
certificate of its own, or STARTTLS, tests/triggers/imap_server.py), messages APPENDed by the
tests as a delivery would: each message is taken once and marked seen only after its commit; a
process killed between the commit and `\\Seen`, and a UIDVALIDITY change, never run a message
twice; what cannot be taken stays unseen or gets its failed run, never silently skipped; the
password shows nowhere."""

from __future__ import annotations

import email.policy
import hashlib
import logging
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from tests.pipelines import happy
from tests.triggers.conftest import SPEC, receipts, runs, workflows
from tests.triggers.imap_server import HOST, ImapServer

from handrail.core.records import RunStatus
from handrail.durable import schema
from handrail.exceptions import (
    AuthenticationError,
    HandrailError,
    InputError,
    PermanentProviderError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    StoreUnavailable,
)
from handrail.triggers import mailbox
from handrail.triggers.intake import Intake, read_document
from handrail.triggers.mailbox import MailboxTrigger, MailboxWatch, MailPoll, is_loopback
from handrail.triggers.state import trigger_states

ROOT = Path(__file__).resolve().parents[2]
SEEN = b"\\Seen"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ImapServer]:
    with ImapServer.start(tmp_path) as it:
        yield it


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Intake]:
    """The intake path on a SQLite file (the tests that do not depend on the database)."""
    with Intake(happy.pipeline, db=f"sqlite:///{tmp_path / 'handrail.db'}", model_spec=SPEC) as it:
        yield it


def trigger(intake: Intake, server: ImapServer, **options: Any) -> MailboxTrigger:
    """A trigger on the server's user over implicit TLS, trusting its certificate."""
    options = {"ssl_context": server.cert.client_context(), "port": server.tls_port} | options
    return MailboxTrigger(
        intake, host=HOST, username=server.user, password=server.password, **options
    )


def mail(
    n: int,
    *,
    message_id: str | None = "",
    body: str | None = None,
    attachment: tuple[str, str, bytes] | None = None,
) -> bytes:
    """Order `n` as an e-mail's bytes (CRLF lines, as delivered), Message-ID `<order-n@...>`
    unless given (None: no Message-ID header)."""
    message = EmailMessage()
    message["From"] = "Ann Lee <ann@example.com>"
    message["To"] = "support@example.com"
    message["Subject"] = f"Refund for order A-{n}"
    message["Date"] = "Mon, 01 Jan 2024 10:00:00 +0000"
    if message_id is not None:
        message["Message-ID"] = message_id or f"<order-{n}@example.com>"
    message.set_content(
        body if body is not None else f"Refund please. Order: A-{n}, amount {n}.0\n"
    )
    if attachment is not None:
        name, media_type, data = attachment
        maintype, subtype = media_type.split("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message.as_bytes(policy=email.policy.SMTP)


def seen(server: ImapServer, folder: str = "INBOX") -> dict[int, bool]:
    return {uid: SEEN in flags for uid, flags in server.flags(folder).items()}


def cursor(intake: Intake, source: str) -> Any:
    table = schema.triggers
    with intake.store.reading() as conn:
        return conn.execute(select(table.c.cursor).where(table.c.name == source)).scalar_one()


def last_error(intake: Intake, source: str) -> str | None:
    return {s.name: s.last_error for s in trigger_states(intake.store)}[source]


def test_each_message_is_taken_once_across_polls_and_marked_seen(
    intake: Intake, server: ImapServer
) -> None:
    first, second = server.append("INBOX", mail(1)), server.append("INBOX", mail(2))
    box = trigger(intake, server)

    poll = box.poll_once()

    assert [(t.uid, t.new, t.repeat, t.error) for t in poll.taken] == [
        (first, True, False, None),
        (second, True, False, None),
    ]
    assert seen(server) == {first: True, second: True}
    validity = server.uidvalidity("INBOX")
    source = f"mailbox:{server.user}@{HOST}/INBOX"
    assert [(r.source, r.key) for r in receipts(intake)] == [
        (source, f"{validity}:{first}:<order-1@example.com>"),
        (source, f"{validity}:{second}:<order-2@example.com>"),
    ]
    detail = receipts(intake)[0].detail
    assert detail["media_type"] == "message/rfc822" and detail["uid"] == first
    assert detail["message_id"] == "<order-1@example.com>" and detail["folder"] == "INBOX"
    assert workflows(intake) == 2
    assert cursor(intake, source) == {"uidvalidity": validity, "last_uid": second}

    third = server.append("INBOX", mail(3))
    again = box.poll_once()

    assert [(t.uid, t.new) for t in again.taken] == [(third, True)]
    assert box.poll_once() == MailPoll(uidvalidity=validity)
    assert len(receipts(intake)) == 3 and workflows(intake) == 3
    assert all(seen(server).values())


def test_a_message_with_a_pdf_attachment_is_one_run_of_the_whole_message(
    lite: Intake, server: ImapServer, tmp_path: Path
) -> None:
    from tests.review.paged import draw_pdf

    pdf = draw_pdf(tmp_path / "invoice.pdf")
    message = mail(7, attachment=("invoice.pdf", "application/pdf", pdf))
    server.append("INBOX", message)

    [taken] = trigger(lite, server).poll_once().taken

    assert taken.new and taken.error is None
    [receipt] = receipts(lite)
    assert receipt.run_id == taken.run_id and workflows(lite) == 1
    # what the intake read is the whole message as delivered: body and attachment, one document
    assert receipt.detail["sha256"] == hashlib.sha256(message).hexdigest()
    document = read_document(
        message, name="message.eml", media_type="message/rfc822", document_id="x", source="s"
    )
    assert not isinstance(document, InputError)
    assert [p.name for p in document.parts][1:] == ["invoice.pdf"]
    assert "Refund please" in document.text and "Total due GBP 402.00" in document.text


def test_seen_is_set_only_after_the_commit(lite: Intake, server: ImapServer) -> None:
    uid = server.append("INBOX", mail(1))
    box = trigger(lite, server)
    at_commit: list[dict[int, bool]] = []
    accept = lite.accept_bytes

    def accept_and_look(*args: Any, **kwargs: Any) -> Any:
        accepted = accept(*args, **kwargs)
        at_commit.append(seen(server))  # committed, not yet acknowledged
        return accepted

    lite.accept_bytes = accept_and_look  # type: ignore[method-assign]
    box.poll_once()

    assert at_commit == [{uid: False}]  # fetched with BODY.PEEK[]: fetching did not set \Seen
    assert seen(server) == {uid: True}


DIE = """
import os, ssl, sys
import tests.triggers.dying  # kills this process right after the intake commits
from tests.pipelines import happy
from handrail.core.records import ModelSpec
from handrail.triggers.intake import Intake
from handrail.triggers.mailbox import MailboxTrigger

db, port, cafile, user = sys.argv[1:5]
with Intake(happy.pipeline, db=db, model_spec=ModelSpec(name="fake")) as intake:
    context = ssl.create_default_context(cafile=cafile)
    MailboxTrigger(intake, host="127.0.0.1", port=int(port), username=user,
                   password=os.environ["IMAP_TEST_PASSWORD"], ssl_context=context).poll_once()
raise SystemExit("not killed")
"""


def test_killed_between_the_commit_and_seen_the_next_poll_only_marks_it(
    db: str, server: ImapServer
) -> None:
    first, second = server.append("INBOX", mail(1)), server.append("INBOX", mail(2))
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "TRIGGER_TEST_DIE_AFTER_COMMIT": "1",
        "IMAP_TEST_PASSWORD": server.password,
    }
    done = subprocess.run(
        [sys.executable, "-c", DIE, db, str(server.tls_port), str(server.cert.cert), server.user],
        env=env,
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert seen(server) == {first: False, second: False}  # committed, never marked

    with Intake(happy.pipeline, db=db, model_spec=SPEC) as intake:
        [receipt] = receipts(intake)
        assert workflows(intake) == 1

        poll = trigger(intake, server).poll_once()

        assert [(t.uid, t.repeat, t.new) for t in poll.taken] == [
            (first, True, False),
            (second, False, True),
        ]
        assert poll.taken[0].run_id == receipt.run_id
        assert seen(server) == {first: True, second: True}
        assert len(receipts(intake)) == 2 and workflows(intake) == 2


def test_a_uidvalidity_change_takes_no_message_twice(lite: Intake, server: ImapServer) -> None:
    orders = [mail(1), mail(2), mail(3, message_id=None)]  # the third has no Message-ID
    for message in orders:
        server.append("Orders", message)
    box = trigger(lite, server, folder="Orders")
    before = box.poll_once()
    assert [t.new for t in before.taken] == [True, True, True]
    old = server.uidvalidity("Orders")

    # the folder restored from a backup: a new UIDVALIDITY, the same messages unseen again,
    # renumbered from the first UID, and one new message
    server.recreate("Orders")
    for message in [*orders, mail(4)]:
        server.append("Orders", message)
    new = server.uidvalidity("Orders")
    assert new != old

    after = box.poll_once()

    assert [(t.repeat, t.new) for t in after.taken] == [(True, False)] * 3 + [(False, True)]
    assert [t.run_id for t in after.taken[:3]] == [t.run_id for t in before.taken]
    assert [t.key.split(":")[0] for t in after.taken] == [str(old)] * 3 + [str(new)]
    assert after.taken[2].key.split(":", 2)[2].startswith("sha256:")
    assert all(seen(server, "Orders").values())
    assert len(receipts(lite)) == 4 and workflows(lite) == 4
    assert cursor(lite, box.source)["uidvalidity"] == new


def test_a_message_read_in_a_mail_client_before_the_poll_is_still_taken(
    lite: Intake, server: ImapServer
) -> None:
    server.append("INBOX", mail(1), flags=(SEEN,))  # there before the trigger: not taken
    box = trigger(lite, server)
    assert box.poll_once().taken == ()

    late = server.append("INBOX", mail(2), flags=(SEEN,))  # arrived, read by someone at once
    [taken] = box.poll_once().taken

    assert taken.uid == late and taken.new
    assert box.poll_once().taken == ()
    assert len(receipts(lite)) == 1


def test_a_message_that_cannot_be_read_gets_a_failed_run_and_is_marked_seen(
    lite: Intake, server: ImapServer
) -> None:
    # no subject, sender nor date, and an empty body: nothing to read
    empty = b"Message-ID: <order-1@example.com>\r\nTo: support@example.com\r\n\r\n"
    uid = server.append("INBOX", empty)
    box = trigger(lite, server)

    [taken] = box.poll_once().taken

    assert taken.error is not None and "empty" in taken.error
    record = lite.store.get_run(taken.run_id)
    assert record is not None and record.status is RunStatus.FAILED
    assert record.document_id == "<order-1@example.com>"
    assert seen(server) == {uid: True}
    assert last_error(lite, box.source) == taken.error
    assert box.poll_once().taken == () and runs(lite) == 1 and workflows(lite) == 0


def test_a_message_over_the_limit_is_not_fetched_and_gets_a_failed_run(
    lite: Intake, server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mailbox, "FILE_LIMIT", 2000)
    big = mail(1, attachment=("scan.txt", "text/plain", b"x" * 5000))
    big_uid, small_uid = server.append("INBOX", big), server.append("INBOX", mail(2))
    box = trigger(lite, server)

    big_taken, small_taken = box.poll_once().taken

    assert big_taken.uid == big_uid and big_taken.error == (
        f"`<order-1@example.com>` is over the 2000 bytes limit for a message ({len(big)} "
        "bytes): it was not fetched; send its attachments in smaller messages"
    )
    record = lite.store.get_run(big_taken.run_id)
    assert record is not None and record.status is RunStatus.FAILED
    assert small_taken.uid == small_uid and small_taken.new and small_taken.error is None
    assert seen(server) == {big_uid: True, small_uid: True}
    [receipt, _] = receipts(lite)
    assert receipt.detail["size"] == len(big) and "sha256" not in receipt.detail
    assert last_error(lite, box.source) == big_taken.error


def test_a_database_error_leaves_the_message_unseen_and_the_next_poll_takes_it(
    lite: Intake, server: ImapServer, caplog: pytest.LogCaptureFixture
) -> None:
    box = trigger(lite, server)
    box.poll_once()  # the cursor: the folder's UIDNEXT - 1
    first, second = server.append("INBOX", mail(1)), server.append("INBOX", mail(2))
    accept = lite.accept_bytes

    def down_for_the_first(source: str, key: str, data: bytes, **kwargs: Any) -> Any:
        if key.endswith("<order-1@example.com>"):
            raise StoreUnavailable("the database is down")
        return accept(source, key, data, **kwargs)

    lite.accept_bytes = down_for_the_first  # type: ignore[method-assign]
    poll = box.poll_once()
    again = box.poll_once()

    assert poll.errors == again.errors == (first,)
    assert [t.uid for t in poll.taken] == [second] and again.taken == ()
    assert seen(server) == {first: False, second: True}
    error = f"message {first} was left unseen: StoreUnavailable: the database is down"
    assert last_error(lite, box.source) == error
    assert caplog.text.count(error) == 1  # once, not on every poll
    # the cursor stays below the message left behind (marked seen by someone, it is still
    # taken); the message after it, taken, is looked at again, and left as it is
    assert cursor(lite, box.source)["last_uid"] == first - 1

    with server.session() as client:  # someone reads it in a mail client meanwhile
        client.select_folder("INBOX")
        client.add_flags([first], [SEEN])
    lite.accept_bytes = accept  # type: ignore[method-assign]
    [taken] = box.poll_once().taken
    assert taken.uid == first and taken.new
    assert all(seen(server).values()) and workflows(lite) == 2


def test_two_pollers_on_one_mailbox_take_each_message_once(db: str, server: ImapServer) -> None:
    uids = [server.append("INBOX", mail(n)) for n in range(10)]
    with (
        Intake(happy.pipeline, db=db, model_spec=SPEC) as one,
        Intake(happy.pipeline, db=db, model_spec=SPEC) as other,
    ):
        pollers = [trigger(it, server) for it in (one, other)]
        start = threading.Barrier(2)
        failures: list[BaseException] = []
        polls: list[MailPoll] = []

        def poll(box: MailboxTrigger) -> None:
            try:
                start.wait(30)
                polls.extend(box.poll_once() for _ in range(2))
            except BaseException as e:
                failures.append(e)

        threads = [threading.Thread(target=poll, args=(p,)) for p in pollers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)

        assert failures == [] and all(p.errors == () for p in polls)
        assert sorted(t.uid for p in polls for t in p.taken if t.new) == uids
        assert len(receipts(one)) == 10 and workflows(one) == 10
        assert seen(server) == dict.fromkeys(uids, True)


def test_move_to_moves_each_message_after_its_commit(lite: Intake, server: ImapServer) -> None:
    server.append("INBOX", mail(1))
    server.append("INBOX", mail(2))
    box = trigger(lite, server, move_to="Processed")

    assert len(box.poll_once().taken) == 2

    assert server.flags("INBOX") == {}
    assert list(seen(server, "Processed").values()) == [True, True]
    assert box.poll_once().taken == () and workflows(lite) == 2


def test_starttls_and_no_tls_on_loopback_take_messages_too(
    lite: Intake, server: ImapServer
) -> None:
    server.append("INBOX", mail(1))
    upgraded = trigger(lite, server, security="starttls", port=server.plain_port)
    assert [t.new for t in upgraded.poll_once().taken] == [True]

    server.append("INBOX", mail(2))
    plain = trigger(lite, server, security="none", port=server.plain_port, ssl_context=None)
    assert [t.new for t in plain.poll_once().taken] == [True]
    assert upgraded.source == plain.source  # the same account and folder: one trigger
    assert workflows(lite) == 2


def test_a_wrong_password_is_a_clear_error_recorded_as_the_last_error(
    lite: Intake, server: ImapServer, caplog: pytest.LogCaptureFixture
) -> None:
    uid = server.append("INBOX", mail(1))
    wrong = "not-the-password-4821"
    box = MailboxTrigger(
        lite,
        host=HOST,
        port=server.tls_port,
        username=server.user,
        password=wrong,
        ssl_context=server.cert.client_context(),
    )
    caplog.set_level(logging.DEBUG)

    with pytest.raises(AuthenticationError) as raised:
        box.poll_once()
    with pytest.raises(AuthenticationError):
        box.poll_once()

    message = (
        f"`mailbox:{server.user}@{HOST}/INBOX` ({HOST}:{server.tls_port}) refused the login "
        "([AUTHENTICATIONFAILED] Invalid authentication credentials.); check the user name and "
        "password (an account with two-factor sign-in needs an app password)"
    )
    assert str(raised.value) == message
    assert last_error(lite, box.source) == f"AuthenticationError: {message}"
    assert caplog.text.count(message) == 1  # recorded once while it keeps failing
    assert wrong not in caplog.text and wrong not in repr(box)
    assert seen(server) == {uid: False} and receipts(lite) == []


def test_the_password_is_in_no_log_error_or_repr(
    lite: Intake, server: ImapServer, caplog: pytest.LogCaptureFixture
) -> None:
    server.append("INBOX", mail(1))
    caplog.set_level(logging.DEBUG)  # imapclient logs every command at DEBUG
    box = trigger(lite, server)
    box.poll_once()
    missing = trigger(lite, server, folder="Nowhere")
    with pytest.raises(PermanentProviderError) as raised:
        missing.poll_once()

    assert "LOGIN" in caplog.text  # the log was on
    assert server.password not in caplog.text
    assert server.password not in repr(box) and server.password not in str(raised.value)
    assert "`Nowhere` cannot be opened" in str(raised.value)
    assert server.password not in (last_error(lite, missing.source) or "")


def test_a_certificate_the_context_does_not_trust_is_refused(
    lite: Intake, server: ImapServer
) -> None:
    box = trigger(lite, server, ssl_context=ssl.create_default_context())  # the system's CAs

    with pytest.raises(PermanentProviderError, match="certificate could not be verified"):
        box.poll_once()
    assert "certificate" in (last_error(lite, box.source) or "")


def test_no_tls_to_a_remote_host_is_refused(lite: Intake) -> None:
    with pytest.raises(InputError) as raised:
        MailboxTrigger(lite, host="imap.example.com", username="u", password="p", security="none")
    assert str(raised.value) == (
        '`security="none"` would send the password and the mail to `imap.example.com` '
        "unencrypted, so it is allowed only to a loopback host (127.0.0.1, ::1, localhost); "
        'use security="ssl" (IMAP over TLS, port 993) or "starttls" (port 143)'
    )
    for host in ("127.0.0.1", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("imap.example.com", "10.0.0.1", "localhost.example.com", "0.0.0.0"):
        assert not is_loopback(host), host


def test_a_server_that_cannot_be_reached_is_the_last_error(lite: Intake) -> None:
    import socket

    with socket.socket() as free:
        free.bind((HOST, 0))
        port = free.getsockname()[1]
    box = MailboxTrigger(
        lite, host=HOST, port=port, username="u", password="secret-pw", security="none"
    )
    with pytest.raises(ProviderUnavailable, match="cannot be reached"):
        box.poll_once()
    assert "cannot be reached" in (last_error(lite, box.source) or "")


def test_every_imapclient_error_is_translated() -> None:
    from imapclient import exceptions

    foreign = [
        value
        for value in vars(exceptions).values()
        if isinstance(value, type) and issubclass(value, Exception)
    ]
    assert len(foreign) >= 8
    for kind in foreign:
        translated = mailbox.translate(kind("b'the server said no'"), where="`mailbox:x`")
        assert isinstance(translated, ProviderError), kind
        assert "the server said no" in str(translated) and "b'" not in str(translated)
    assert isinstance(
        mailbox.translate(exceptions.LoginError("no"), where="x"), AuthenticationError
    )
    assert isinstance(mailbox.translate(TimeoutError("slow"), where="x"), ProviderTimeout)
    assert isinstance(mailbox.translate(ConnectionResetError(), where="x"), ProviderUnavailable)
    assert isinstance(
        mailbox.translate(ssl.SSLCertVerificationError("bad"), where="x"), PermanentProviderError
    )
    assert isinstance(mailbox.translate(exceptions.LoginError("x"), where="x"), HandrailError)
    unrelated = KeyError("x")
    assert mailbox.translate(unrelated, where="x") is unrelated


def test_the_watch_takes_a_message_on_its_own(lite: Intake, server: ImapServer) -> None:
    watch = MailboxWatch(trigger=trigger(lite, server), interval=0.2).start()
    try:
        uid = server.append("INBOX", mail(1))
        deadline = time.monotonic() + 30
        while not seen(server).get(uid) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watch.stop()
    assert seen(server) == {uid: True}
    assert len(receipts(lite)) == 1 and watch.error is None


def test_the_watch_keeps_polling_and_says_why_it_fails(lite: Intake, server: ImapServer) -> None:
    box = trigger(lite, server)
    box._password = "wrong-password-1"  # the password was changed on the server
    watch = MailboxWatch(trigger=box, interval=0.1).start()
    try:
        deadline = time.monotonic() + 30
        while watch.error is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert watch.error is not None and watch.error.startswith("AuthenticationError: ")
        box._password = server.password
        uid = server.append("INBOX", mail(1))
        while not seen(server).get(uid) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        watch.stop()
    assert seen(server) == {uid: True} and watch.error is None


def test_the_python_example_in_docs_triggers_md_takes_a_message(
    lite: Intake, server: ImapServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import re

    doc = (ROOT / "docs" / "triggers.md").read_text(encoding="utf-8")
    section = doc[doc.index("## The mailbox trigger") : doc.index("## Schedules")]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    assert 'host="imap.example.com",' in code and f'username="{server.user}"' in code
    # the same code, pointed at the test server
    code = code.replace(
        'host="imap.example.com",',
        f'host="{HOST}", port={server.tls_port}, ssl_context=context,',
    )
    monkeypatch.setenv("SUPPORT_IMAP_PASSWORD", server.password)
    uid = server.append("INBOX", mail(1))
    namespace: dict[str, Any] = {"intake": lite, "context": server.cert.client_context()}

    exec(code, namespace)
    namespace["watch"].stop()

    assert server.flags("INBOX") == {} and list(seen(server, "Taken").values()) == [True]
    [receipt] = receipts(lite)
    assert receipt.source == f"mailbox:{server.user}@{HOST}/INBOX"
    assert receipt.detail["uid"] == uid and workflows(lite) == 1


def test_a_mailbox_in_pyproject_is_read_by_handrail_worker(
    tmp_path: Path, server: ImapServer
) -> None:
    """The configuration path end to end: `[[tool.handrail.triggers.mailboxes]]` with the
    password in the environment, read by a real `handrail worker`, which takes the message once,
    marks it seen and runs it."""
    from tests.cli.triage import start_worker, wait_for

    from handrail.core.records import RunStatus
    from handrail.durable import SqlStore

    db = f"sqlite:///{tmp_path / 'handrail.db'}"
    (tmp_path / "pyproject.toml").write_text(
        "[[tool.handrail.triggers.mailboxes]]\n"
        'name = "orders"\n'
        f'host = "{HOST}"\n'
        f"port = {server.tls_port}\n"
        f'username = "{server.user}"\n'
        'password_env = "ORDERS_IMAP_PASSWORD"\n'
        f'ca_file = "{server.cert.cert}"\n'
        "interval_seconds = 0.5\n",
        encoding="utf-8",
    )
    uid = server.append("INBOX", mail(1))
    happy_target = str(ROOT / "tests" / "pipelines" / "happy.py") + ":pipeline"
    env = {"PYTHONPATH": str(ROOT), "ORDERS_IMAP_PASSWORD": server.password}
    worker = start_worker(tmp_path, happy_target, "--db", db, "--model", "fake", env=env)
    try:
        wait_for(lambda: "from the mailbox mailbox:orders" in worker.output(), 60, "the worker")
        wait_for(lambda: SEEN in server.flags("INBOX").get(uid, ()), 60, "the message seen")
        with SqlStore(db, read_only=True) as store:
            states = {s.name: s for s in trigger_states(store)}
            with store.reading() as conn:
                [receipt] = conn.execute(select(schema.receipts)).all()
        assert receipt.source == "mailbox:orders"
        assert states["mailbox:orders"].last_error is None

        def ended() -> bool:
            with SqlStore(db, read_only=True) as store:
                record = store.get_run(receipt.run_id)
            return record is not None and record.status is not RunStatus.RUNNING

        wait_for(ended, 60, "the run to end")
    finally:
        assert worker.stop(signal.SIGTERM) == 0, worker.output()
    assert server.password not in worker.output()
