"""The mailbox trigger: e-mails arriving in an IMAP folder start runs
(docs/triggers.md#the-mailbox-trigger).

```python
trigger = MailboxTrigger(intake, host="imap.example.com", username="orders@example.com",
                         password=os.environ["ORDERS_IMAP_PASSWORD"])
trigger.poll_once()                          # connect, take what is new, log out
watch = MailboxWatch(trigger=trigger).start()  # polls every 60 s on a thread of its own
```

A poll logs in (IMAP over TLS by default; STARTTLS, or no TLS on loopback only), selects the
folder and takes each message that is unseen, and each message above the trigger's cursor seen
or not (one read by someone in a mail client before the poll is still taken). The cursor, in
`handrail_triggers.cursor`, is the folder's UIDVALIDITY and the highest UID dealt with; it only
saves work, the receipts are what keep a message from running twice.

Each message is keyed `<UIDVALIDITY>:<UID>:<Message-ID>` (a message without a Message-ID:
`sha256:<hex of its bytes>` in its place), fetched whole with `BODY.PEEK[]` (the fetch does
not set `\\Seen`) and handed to `Intake.accept_bytes` as one `message/rfc822` document: its
body and its attachments, as `.eml` files are read, one run per message. Only after that
returns is it marked `\\Seen` (or moved to `move_to`). So:

- a crash before the commit leaves it unseen: the next poll takes it;
- a crash after the commit, before `\\Seen`: the next poll finds its key's receipt and only
  marks it seen; one receipt, one run;
- a UIDVALIDITY change (the folder recreated, restored, moved to another server) renumbers
  every message: a message whose Message-ID (or bytes) was taken under an earlier UIDVALIDITY
  is only marked seen, not taken again;
- a message that cannot be read gets its failed run and is marked seen; one over the size
  limit (`FILE_LIMIT`, by its `RFC822.SIZE`, never fetched) too, with a failed run saying so;
- a message that cannot be fetched, a database error: the message stays unseen, the trigger's
  `last_error` says why (once), and the next poll tries again; the other messages are taken.

The password appears in no log, error or repr.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from handrail._utils import mask_secrets, now, one_line
from handrail.durable import schema
from handrail.exceptions import (
    AuthenticationError,
    HandrailError,
    InputError,
    PermanentProviderError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
)
from handrail.triggers.intake import FILE_LIMIT, Intake, Receipt
from handrail.triggers.state import report_error

log = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "none"]
MEDIA_TYPE = "message/rfc822"
NAME = "message.eml"
"""The file name each message is read as (its format: an e-mail, with its attachments)."""
LOOPBACK_NAMES = frozenset({"localhost"})
"""Host names taken as loopback for `security="none"` (besides loopback IP addresses)."""
_PORTS = {"ssl": 993, "starttls": 143, "none": 143}
_HEADER = b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
_BATCH = 200
"""How many messages' sizes and Message-IDs one FETCH asks for."""
_SEEN = b"\\Seen"


@dataclass(frozen=True, kw_only=True, slots=True)
class Taken:
    """What one poll did with one message."""

    uid: int
    key: str
    """Its receipt's key: `<UIDVALIDITY>:<UID>:<Message-ID>` (for a repeat found under an
    earlier UIDVALIDITY, that receipt's key)."""
    run_id: str
    new: bool = False
    """True when this poll queued its run."""
    repeat: bool = False
    """True when it had been taken before (a crash before `\\Seen`, a UIDVALIDITY change): it
    was only marked seen (or moved)."""
    error: str | None = None
    """Why it could not be read (its run is a failed one), else None."""


@dataclass(frozen=True, kw_only=True, slots=True)
class MailPoll:
    """What one poll of the folder did."""

    uidvalidity: int
    taken: tuple[Taken, ...] = ()
    """The messages taken in, or found taken before, and marked seen (or moved), by UID."""
    errors: tuple[int, ...] = ()
    """UIDs left unseen because something went wrong (fetch, database, marking seen): tried
    again on the next poll."""


@dataclass(frozen=True, kw_only=True, slots=True)
class _Cursor:
    uidvalidity: int
    last_uid: int


class MailboxTrigger:
    """Takes the messages arriving in an IMAP folder in through `intake`, each once (see the
    module).

    - `host`, `port` (default 993 for `"ssl"`, else 143), `username`, `password`: the account;
    - `folder`: the folder to take messages from;
    - `security`: `"ssl"` (TLS from the first byte), `"starttls"` (a plain connection upgraded
      before the login; refused if the server does not offer it), or `"none"`, allowed only to
      a loopback host; `ssl_context` checks the server's certificate (default: the system's
      CAs and the host name);
    - `name`: the trigger's name; its receipts are under `mailbox:<name>` (default:
      `mailbox:<username>@<host>/<folder>`);
    - `move_to`: a folder (created if missing) each message is moved to once taken, instead of
      being marked `\\Seen` where it is;
    - `timeout`: seconds for the connection and each answer.

    `poll_once` is synchronous (network and database): call it from a thread in async code.
    """

    def __init__(
        self,
        intake: Intake,
        *,
        host: str,
        username: str,
        password: str,
        port: int | None = None,
        folder: str = "INBOX",
        security: Security = "ssl",
        ssl_context: ssl.SSLContext | None = None,
        name: str | None = None,
        move_to: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if security not in _PORTS:
            raise InputError(
                f'`security` is "ssl", "starttls" or "none", not `{security}`; IMAP over TLS '
                '(port 993) is "ssl"'
            )
        if security == "none" and not is_loopback(host):
            raise InputError(
                f'`security="none"` would send the password and the mail to `{host}` '
                "unencrypted, so it is allowed only to a loopback host (127.0.0.1, ::1, "
                'localhost); use security="ssl" (IMAP over TLS, port 993) or "starttls" '
                "(port 143)"
            )
        if not folder or (move_to is not None and (not move_to or move_to == folder)):
            raise InputError("`folder` names a folder, and `move_to` (if given) another one")
        if timeout <= 0:
            raise InputError(f"`timeout` is a number of seconds above 0, not {timeout}")
        self.intake = intake
        self.host = host
        self.port = port if port is not None else _PORTS[security]
        self.username = username
        self._password = password
        self.folder = folder
        self.security: Security = security
        self.ssl_context = ssl_context
        self.source = f"mailbox:{name or f'{username}@{host}/{folder}'}"
        self.move_to = move_to
        self.timeout = timeout
        self._reported: set[tuple[str, str]] = set()
        self._failing: str | None = None

    def __repr__(self) -> str:
        return (
            f"MailboxTrigger(source={self.source!r}, host={self.host!r}, port={self.port}, "
            f"security={self.security!r}, folder={self.folder!r}, move_to={self.move_to!r})"
        )

    def poll_once(self) -> MailPoll:
        """Connect, take each new message (unseen, or above the cursor), mark each seen (or
        move it) once its receipt and run are committed, and log out. A failure to connect,
        log in or open the folder is recorded as the trigger's last error and raised (a
        `ProviderError`: `AuthenticationError` for a refused login)."""
        try:
            client = self._connect()
            try:
                done = self._poll(client)
            finally:
                _logout(client)
        except Exception as e:
            error = self._translated(e)
            self._report_poll(f"{type(error).__name__}: {self._masked(str(error))}")
            if error is e:
                raise
            raise error from e
        self._failing = None
        return done

    def _connect(self) -> Any:
        imapclient = _imapclient()
        secure = self.security != "none"
        context = (self.ssl_context or ssl.create_default_context()) if secure else None
        client = imapclient.IMAPClient(
            self.host,
            port=self.port,
            ssl=self.security == "ssl",
            ssl_context=context,
            timeout=self.timeout,
        )
        try:
            if self.security == "starttls":
                client.starttls(context)
            client.login(self.username, self._password)
        except BaseException:
            with contextlib.suppress(Exception):
                client.shutdown()
            raise
        return client

    def _poll(self, client: Any) -> MailPoll:
        imap = _imapclient()
        try:
            selected = client.select_folder(self.folder)
        except imap.exceptions.IMAPClientAbortError:
            raise
        except imap.exceptions.IMAPClientError as e:
            raise PermanentProviderError(
                f"`{self.source}`: the folder `{self.folder}` cannot be opened "
                f"({self._masked(_words(e))}); check its name (IMAP names are case-sensitive, "
                "but INBOX)"
            ) from e
        if self.move_to is not None and not client.folder_exists(self.move_to):
            client.create_folder(self.move_to)
        uidvalidity = int(selected[b"UIDVALIDITY"])
        uidnext = selected.get(b"UIDNEXT")
        cursor = self._cursor()
        since = cursor.last_uid if cursor and cursor.uidvalidity == uidvalidity else None
        found = {int(uid) for uid in client.search(["NOT", "DELETED", "UNSEEN"])}
        if since is not None:
            above = client.search(["NOT", "DELETED", "UID", f"{since + 1}:*"])
            # `UID n:*` answers the last message even when its UID is below n: keep those above
            found |= {int(uid) for uid in above if int(uid) > since}
        uids = sorted(found)
        high = since if since is not None else (int(uidnext) - 1 if uidnext else None)
        taken: list[Taken] = []
        errors: list[int] = []
        failed = False  # the cursor stops below the first message left behind
        try:
            for batch in _batches(uids):
                heads = client.fetch(batch, [b"FLAGS", b"RFC822.SIZE", _HEADER])
                for uid in batch:
                    done = self._take_one(client, uidvalidity, uid, heads.get(uid))
                    if isinstance(done, Taken):
                        taken.append(done)
                    elif done == "error":
                        errors.append(uid)
                        failed = True
                    if not failed:
                        high = uid if high is None else max(high, uid)
        finally:
            if high is not None and _Cursor(uidvalidity=uidvalidity, last_uid=high) != cursor:
                self._save_cursor(_Cursor(uidvalidity=uidvalidity, last_uid=high))
        return MailPoll(uidvalidity=uidvalidity, taken=tuple(taken), errors=tuple(errors))

    def _take_one(
        self, client: Any, uidvalidity: int, uid: int, head: dict[bytes, Any] | None
    ) -> Taken | Literal["done", "gone", "error"]:
        """Take message `uid` in (or find it taken) and mark it seen; "done" when it was taken
        before and is seen already (nothing to do: the cursor is held below a message left
        behind); "gone" when another client moved or expunged it since the search; "error"
        when it was left unseen (the error is recorded). A lost connection is raised."""
        if head is None:
            return "gone"
        key = f"{uidvalidity}:{uid}"
        try:
            size = int(head.get(b"RFC822.SIZE", 0))
            message_id = _message_id(_header_fields(head))
            data: bytes | None = None
            if message_id is not None:
                identity = message_id
            elif size > FILE_LIMIT:  # not fetched: its header stands for its bytes
                header = self._fetch(client, uid, b"BODY.PEEK[HEADER]", b"BODY[HEADER]")
                if header is None:
                    return "gone"
                identity = f"header-sha256:{hashlib.sha256(header).hexdigest()}"
            else:
                data = self._fetch(client, uid, b"BODY.PEEK[]", b"BODY[]")
                if data is None:
                    return "gone"
                identity = f"sha256:{hashlib.sha256(data).hexdigest()}"
            key = f"{uidvalidity}:{uid}:{identity}"
            found = self.intake.receipt(self.source, key) or self._renumbered(identity, uidvalidity)
            if found is not None:
                if self.move_to is None and _SEEN in head.get(b"FLAGS", ()):
                    return "done"
                if not self._acknowledge(client, uid):
                    return "gone"
                return Taken(uid=uid, key=found.key, run_id=found.run_id, repeat=True)
            document_id = message_id or f"{uidvalidity}-{uid}.eml"
            detail = {
                "folder": self.folder,
                "uidvalidity": uidvalidity,
                "uid": uid,
                "message_id": message_id,
            }
            if size > FILE_LIMIT:
                too_big = InputError(
                    f"`{document_id}` is over the {_megabytes(FILE_LIMIT)} limit for a "
                    f"message ({size} bytes): it was not fetched; send its attachments in "
                    "smaller messages",
                    document_id=document_id,
                )
                told = {"name": NAME, "size": size, "media_type": MEDIA_TYPE}
                accepted = self.intake.accept(self.source, key, too_big, detail=told | detail)
            else:
                if data is None:
                    data = self._fetch(client, uid, b"BODY.PEEK[]", b"BODY[]")
                    if data is None:
                        return "gone"
                accepted = self.intake.accept_bytes(
                    self.source,
                    key,
                    data,
                    name=NAME,
                    media_type=MEDIA_TYPE,
                    document_id=document_id,
                    detail=detail,
                )
            # committed: from here on a crash leaves it unseen, and the next poll only marks it
            self._acknowledge(client, uid)
        except Exception as e:
            if _lost(e):
                raise
            self._report(key, f"message {uid} was left unseen: {self._one_line(e)}")
            return "error"
        self._reported = {seen for seen in self._reported if seen[0] != key}
        return Taken(
            uid=uid,
            key=key,
            run_id=accepted.run_id,
            new=accepted.new,
            repeat=accepted.repeat,
            error=accepted.error,
        )

    def _fetch(self, client: Any, uid: int, item: bytes, answer: bytes) -> bytes | None:
        """`item` of message `uid` (None if it is gone)."""
        got = client.fetch([uid], [item]).get(uid)
        if got is None:
            return None
        data = got.get(answer)
        if not isinstance(data, bytes):
            raise ProviderError(f"the server sent no `{answer.decode()}` for message {uid}")
        return data

    def _acknowledge(self, client: Any, uid: int) -> bool:
        """Mark message `uid` seen, and move it to `move_to` if given; False when it is gone
        (another poller moved it)."""
        imap = _imapclient()
        try:
            client.add_flags([uid], [_SEEN])
            if self.move_to is None:
                return True
            if client.has_capability("MOVE"):
                client.move([uid], self.move_to)
            else:  # COPY, then delete it here; EXPUNGE only it (UIDPLUS), else leave it flagged
                client.copy([uid], self.move_to)
                client.delete_messages([uid])
                if client.has_capability("UIDPLUS"):
                    client.uid_expunge([uid])
        except imap.exceptions.IMAPClientAbortError:
            raise
        except imap.exceptions.IMAPClientError:
            if not client.search(["UID", str(uid)]):
                return False
            raise
        return True

    def _renumbered(self, identity: str, uidvalidity: int) -> Receipt | None:
        """The receipt of the message of `identity` (its Message-ID, else its SHA-256) taken
        under another UIDVALIDITY of this folder, if any: the same message, renumbered."""
        table = schema.receipts
        query = select(table).where(
            table.c.source == self.source, table.c.key.endswith(f":{identity}", autoescape=True)
        )
        with self.intake.store.reading() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            validity, _, rest = row.key.partition(":")
            if rest.partition(":")[2] == identity and validity != str(uidvalidity):
                return Receipt(**row._asdict())
        return None

    def _cursor(self) -> _Cursor | None:
        table = schema.triggers
        with self.intake.store.reading() as conn:
            value = conn.execute(
                select(table.c.cursor).where(table.c.name == self.source)
            ).scalar_one_or_none()
        if not isinstance(value, dict):  # none yet
            return None
        try:
            return _Cursor(uidvalidity=int(value["uidvalidity"]), last_uid=int(value["last_uid"]))
        except (TypeError, KeyError, ValueError):  # not one of ours: start afresh
            return None

    def _save_cursor(self, cursor: _Cursor) -> None:
        """Write `cursor` (after the commits it follows: it only saves work)."""
        table = schema.triggers
        at = now()
        values = {
            "kind": "mailbox",
            "pipeline": self.intake.pipeline.name,
            "cursor": {"uidvalidity": cursor.uidvalidity, "last_uid": cursor.last_uid},
            "updated_at": at,
        }
        try:
            with self.intake.store.transaction() as conn:
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                conn.execute(
                    dialect.insert(table)
                    .values(name=self.source, **values)
                    .on_conflict_do_update(index_elements=[table.c.name], set_=values)
                )
        except Exception as e:  # the next poll looks at a few messages again, no more
            log.warning("%s: could not save the cursor: %s", self.source, self._one_line(e))

    def _report_poll(self, error: str) -> None:
        """Record a failed poll once while it keeps failing the same way."""
        if error == self._failing:
            return
        self._failing = error
        self._report(f"poll@{now().isoformat(timespec='seconds')}", error)

    def _report(self, key: str, error: str) -> None:
        """Record `error` as the trigger's last error (and announce it as `trigger.failed`),
        once per message and error, not on every poll."""
        error = self._masked(error)
        if (key, error) in self._reported:
            return
        self._reported.add((key, error))
        report_error(
            self.intake.store,
            name=self.source,
            kind="mailbox",
            pipeline=self.intake.pipeline.name,
            error=error,
            key=key,
            log=log,
        )

    def _translated(self, e: Exception) -> Exception:
        """`e` as a handrail error saying what to do (IMAP and network errors), else `e`."""
        if isinstance(e, HandrailError):
            return e
        return translate(e, where=f"`{self.source}` ({self.host}:{self.port})", mask=self._masked)

    def _masked(self, text: str) -> str:
        return mask_secrets(text, self._password, urls=False)

    def _one_line(self, e: BaseException) -> str:
        return self._masked(one_line(e))


def translate(e: Exception, *, where: str, mask: Callable[[str], str] | None = None) -> Exception:
    """The handrail error for an IMAP client's or the network's exception `e`, its message
    starting with `where` and saying what to do; any other exception as it is."""
    imap = _imapclient()
    words = _words(e) if mask is None else mask(_words(e))
    if isinstance(e, imap.exceptions.LoginError):
        return AuthenticationError(
            f"{where} refused the login ({words}); check the user name and password (an "
            "account with two-factor sign-in needs an app password)"
        )
    if isinstance(e, imap.exceptions.CapabilityError):
        return PermanentProviderError(
            f'{where}: {words}; with security="starttls" the server must offer STARTTLS: use '
            'security="ssl" (port 993)'
        )
    if isinstance(e, ssl.SSLCertVerificationError):
        return PermanentProviderError(
            f"{where}: the server's certificate could not be verified ({words}); give "
            "`ssl_context` a context trusting its CA (ssl.create_default_context(cafile=...))"
        )
    if isinstance(e, TimeoutError | socket.timeout):
        return ProviderTimeout(f"{where} did not answer in time ({words}); it is tried again")
    if isinstance(e, imap.exceptions.IMAPClientAbortError | OSError):
        return ProviderUnavailable(
            f"{where} cannot be reached or dropped the connection ({words}); it is tried again"
        )
    if isinstance(e, imap.exceptions.IMAPClientReadOnlyError):
        return PermanentProviderError(f"{where}: the folder is read-only ({words})")
    if isinstance(e, imap.exceptions.IMAPClientError):  # a NO or BAD answer, a protocol error
        return ProviderError(f"{where}: {words}")
    return e


@dataclass(kw_only=True)
class MailboxWatch:
    """Runs `trigger.poll_once` on a thread of its own every `interval` seconds (sooner after
    `wake()`)."""

    trigger: MailboxTrigger
    interval: float = 60.0
    error: str | None = None
    """The last poll's failure (connecting, logging in, opening the folder), else None."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MailboxWatch:
        self._thread = threading.Thread(target=self._poll, name="handrail-mailbox", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.trigger.poll_once()  # records its own failure as the trigger's last error
                self.error = None
            except Exception as e:  # the server is down, the password changed: keep polling
                self.error = self.trigger._one_line(e)
            self._wake.wait(max(self.interval, 0.05))


def is_loopback(host: str) -> bool:
    """Whether `host` is this machine: a loopback IP address or `localhost`."""
    name = host.strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _imapclient() -> Any:
    try:
        import imapclient
        import imapclient.exceptions
    except ImportError as e:  # pragma: no cover - the extra is installed in the test environment
        raise ImportError(
            'the mailbox trigger needs imapclient: pip install "handrail[triggers]"'
        ) from e
    return imapclient


def _message_id(raw: bytes | None) -> str | None:
    """The Message-ID in the header bytes `raw`, white space collapsed; one too long or not
    printable ASCII is replaced by its SHA-256 (the key stays short and plain)."""
    if not raw:
        return None
    value = BytesHeaderParser(policy=compat32).parsebytes(raw).get("Message-ID")
    text = " ".join(str(value or "").split())
    if not text:
        return None
    if len(text) > 300 or not (text.isascii() and text.isprintable()):
        return f"message-id-sha256:{hashlib.sha256(text.encode('utf-8', 'replace')).hexdigest()}"
    return text


def _header_fields(head: dict[bytes, Any]) -> bytes | None:
    """The `BODY[HEADER.FIELDS (MESSAGE-ID)]` of a FETCH answer (servers spell the item's
    name their own way: quoted, another case)."""
    for item, value in head.items():
        if bytes(item).upper().startswith(b"BODY[HEADER.FIELDS") and isinstance(value, bytes):
            return value
    return None


def _megabytes(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size} bytes"


def _batches(uids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(uids), _BATCH):
        yield uids[start : start + _BATCH]


def _lost(e: BaseException) -> bool:
    """Whether `e` means the connection is gone (the rest of the poll cannot go on)."""
    return isinstance(e, _imapclient().exceptions.IMAPClientAbortError | OSError)


def _logout(client: Any) -> None:
    try:
        client.logout()
    except Exception:  # the connection is gone already: nothing to close cleanly
        with contextlib.suppress(Exception):
            client.shutdown()


def _words(e: BaseException) -> str:
    """What `e` says, one line: the server's words for an IMAP error."""
    text = str(e)
    if text.startswith("b'") or text.startswith('b"'):  # imapclient passes the answer's bytes
        text = text[2:-1]
    first = text.splitlines()[0] if text else ""
    return first or type(e).__name__


__all__ = [
    "MEDIA_TYPE",
    "MailPoll",
    "MailboxTrigger",
    "MailboxWatch",
    "Taken",
    "is_loopback",
    "translate",
]
