"""Real servers on 127.0.0.1 for the notification tests: an HTTP sink (stdlib `http.server` on a
thread) answering a scripted list of statuses, an SMTP server (aiosmtpd), and run stores on a
SQLite file and on a throwaway PostgreSQL server (the durable tests' fixtures)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message as Mail
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from tests.durable.conftest import (  # noqa: F401 - the durable tests' database fixtures
    _stores_database,
    fresh_postgres_url,
    postgres_server,
    sqlite_url,
)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Sink:
    """An HTTP server that records every POST and answers with `statuses` in turn (then 200),
    each after `delay` seconds (a slow receiver)."""

    url: str
    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def sink() -> Iterator[Sink]:
    state: dict[str, Sink] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            s = state["sink"]
            with s.lock:
                s.received.append(Request(self.path, dict(self.headers.items()), body))
                status = s.statuses.pop(0) if s.statuses else 200
            time.sleep(s.delay)
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["sink"] = Sink(url=f"http://127.0.0.1:{server.server_address[1]}/hook")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["sink"]
    finally:
        server.shutdown()
        server.server_close()


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], Mail]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = message_from_bytes(envelope.original_content or envelope.content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), mail))
        return "250 OK"


@dataclass
class Smtp:
    host: str
    port: int
    inbox: _Inbox


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield Smtp("127.0.0.1", port, inbox)
    finally:
        controller.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on SQLite, then on Postgres."""
    name = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    return str(request.getfixturevalue(name))
