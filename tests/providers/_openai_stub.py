"""A local OpenAI-compatible HTTP server on a real socket, scripted per test.

litellm talks to it through its ordinary `openai/...` path with `api_base`, so the tests exercise
litellm's real request building, HTTP client, response parsing and exception mapping.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class StubReply:
    """One scripted answer: a chat completion body, or an HTTP error."""

    content: str | None = None
    tool_arguments: str | None = None
    status: int = 200
    error: str = ""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    logprobs: list[tuple[str, float]] | None = None
    choices: list[str] | None = None
    """Several answers at once (for `n=`)."""


Script = StubReply | Callable[[dict[str, Any]], StubReply]


class OpenAIStub:
    def __init__(self) -> None:
        self.script: list[Script] = []
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.base_url = ""

    def reply(self, *replies: Script) -> None:
        self.script.extend(replies)

    def _next(self, body: dict[str, Any]) -> StubReply:
        with self._lock:
            self.requests.append(body)
            entry = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        return entry(body) if callable(entry) else entry


def _completion(body: dict[str, Any], reply: StubReply) -> dict[str, Any]:
    def choice(index: int, content: str | None) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reply.tool_arguments is not None:
            name = body["tools"][0]["function"]["name"]
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{index}",
                    "type": "function",
                    "function": {"name": name, "arguments": reply.tool_arguments},
                }
            ]
        out: dict[str, Any] = {
            "index": index,
            "message": message,
            "finish_reason": "tool_calls" if reply.tool_arguments is not None else "stop",
        }
        if reply.logprobs is not None:
            out["logprobs"] = {
                "content": [
                    {"token": t, "logprob": lp, "bytes": None, "top_logprobs": []}
                    for t, lp in reply.logprobs
                ]
            }
        return out

    contents = reply.choices if reply.choices is not None else [reply.content]
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "stub"),
        "choices": [choice(i, c) for i, c in enumerate(contents)],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }


@contextmanager
def openai_stub() -> Iterator[OpenAIStub]:
    stub = OpenAIStub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            reply = stub._next(body)
            if reply.delay:
                time.sleep(reply.delay)
            if reply.status != 200:
                payload = json.dumps(
                    {"error": {"message": reply.error or f"status {reply.status}", "type": "x"}}
                ).encode()
            else:
                payload = json.dumps(_completion(body, reply)).encode()
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
