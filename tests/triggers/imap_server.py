"""A real IMAP server on 127.0.0.1 for the mailbox trigger's tests: pymap's in-memory backend
(`pymap.backend.dict`, one user) in a process of its own, listening on two ports chosen by the
system: one plain, which offers STARTTLS (pymap lets a loopback client log in before it), and
one speaking TLS from the first byte (implicit TLS, as port 993 does), both with a self-signed
certificate for 127.0.0.1 made by the `openssl` command.

```python
with ImapServer.start(tmp_path) as server:
    server.append("INBOX", message_bytes)        # as a mail delivery would
    server.flags("INBOX")                         # {uid: (b"\\Seen", ...)}
```

Run as `python -m tests.triggers.imap_server CERT KEY`, it prints
`READY <plain port> <tls port>` once both listen, and serves until killed. pymap ships no
implicit-TLS listener, so the script starts pymap's own connection handler (`IMAPServer`) on an
asyncio server with TLS, as `pymap.imap.IMAPService.start` does on a plain one.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
from argparse import Namespace
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.notify.tls import Cert, self_signed

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
USER = "support@example.com"
PASSWORD = "imap-test-secret-7f3a9c"  # a test server's, never a real one


@dataclass
class ImapServer:
    """The server process, its ports and its certificate; `client()` logs in as the user."""

    process: subprocess.Popen[bytes]
    plain_port: int
    tls_port: int
    cert: Cert
    user: str = USER
    password: str = PASSWORD

    @classmethod
    @contextmanager
    def start(cls, folder: Path) -> Iterator[ImapServer]:
        """A server for the time of the `with` (its certificate written in `folder`); one
        that does not start raises, never skips."""
        cert = self_signed(folder, "imap", host=HOST)
        log = folder / "imap.log"
        with log.open("wb") as errors:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.triggers.imap_server", str(cert.cert), str(cert.key)],
                cwd=ROOT,
                env=os.environ | {"PYTHONPATH": str(ROOT)},
                stdout=subprocess.PIPE,
                stderr=errors,
            )
        try:
            assert process.stdout is not None
            ready, _, _ = select.select([process.stdout], [], [], 60)
            line = process.stdout.readline().decode().split() if ready else []
            if line[:1] != ["READY"]:
                said = log.read_text(encoding="utf-8", errors="replace")[-2000:]
                raise RuntimeError(f"the IMAP test server did not start: {line} {said}")
            yield cls(process, int(line[1]), int(line[2]), cert)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            if process.stdout is not None:
                process.stdout.close()

    def client(self) -> Any:
        """An `IMAPClient` logged in as the user over implicit TLS (close it: `.logout()`)."""
        from imapclient import IMAPClient

        client = IMAPClient(
            HOST, port=self.tls_port, ssl=True, ssl_context=self.cert.client_context(), timeout=10
        )
        client.login(self.user, self.password)
        return client

    @contextmanager
    def session(self) -> Iterator[Any]:
        client = self.client()
        try:
            yield client
        finally:
            client.logout()

    def append(self, folder: str, message: bytes, *, flags: tuple[bytes, ...] = ()) -> int:
        """APPEND `message` to `folder` (created if missing), as a delivery would; its UID."""
        with self.session() as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            answer = client.append(folder, message, flags=flags)
        # APPENDUID (UIDPLUS): b"[APPENDUID <uidvalidity> <uid>] ..."
        return int(answer.split(b"]")[0].split()[-1])

    def flags(self, folder: str) -> dict[int, tuple[bytes, ...]]:
        """Each message's UID in `folder` and its flags."""
        with self.session() as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS"]) if uids else {}
        return {uid: tuple(data[b"FLAGS"]) for uid, data in fetched.items()}

    def uidvalidity(self, folder: str) -> int:
        with self.session() as client:
            return int(client.folder_status(folder, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def recreate(self, folder: str) -> None:
        """Delete `folder` and create it again, empty: a new UIDVALIDITY, UIDs from 1 (a
        mailbox restored from a backup, or moved to another server, looks like this)."""
        with self.session() as client:
            client.delete_folder(folder)
            client.create_folder(folder)


async def _serve(cert: str, key: str, user: str, password: str) -> None:
    from proxyprotocol.reader import ProxyProtocolReader
    from pymap.backend.dict import DictBackend
    from pymap.imap import IMAPServer

    args = Namespace(
        host=HOST,
        port=0,
        debug=False,
        cert=cert,
        key=key,
        tls=True,
        passlib_cfg=None,
        proxy_protocol=None,
        inherited_sockets=None,
        demo_data=False,
        demo_user=user,
        demo_password=password,
    )
    backend, config = await DictBackend.init(args, invalid_user_sleep=0.0)
    config.apply_context()
    handler = ProxyProtocolReader(config.proxy_protocol).get_callback(
        IMAPServer(backend.login, config)
    )
    plain = await asyncio.start_server(handler, host=HOST, port=0)
    tls = await asyncio.start_server(handler, host=HOST, port=0, ssl=config.ssl_context)
    ports = [s.sockets[0].getsockname()[1] for s in (plain, tls)]
    print("READY", *ports, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with plain, tls:
        await stop.wait()


if __name__ == "__main__":
    cert_file, key_file = sys.argv[1:3]
    asyncio.run(_serve(cert_file, key_file, USER, PASSWORD))
