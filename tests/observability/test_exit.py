"""The end of a traced command: a collector that refuses connections costs nothing, and nothing
that goes wrong while sending the last spans and metrics fails a batch whose runs are stored
(real `handrail run` processes against a closed port and a collector that never answers)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tests.pipelines import happy

from handrail import Runner
from handrail.observability.setup import configure

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "support_triage"
RUN = ["run", f"{EXAMPLE / 'pipeline.py'}:pipeline", str(EXAMPLE / "documents")]
RUN += ["--in-memory", "--model", "fake"]


@pytest.fixture(autouse=True)
def _clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens on it any more: connections are refused


def handrail(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`handrail ARGS...` in a process of its own, with no OTEL_ or HANDRAIL_ variable but `env`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HANDRAIL_", "OTEL_"))}
    return subprocess.run(
        [sys.executable, "-m", "handrail.cli", *args],
        cwd=cwd,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def tracing_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "tracing" in line]


def test_a_refusing_collector_is_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    telemetry = configure()  # the default bound: 5 s
    Runner(happy.pipeline, model=happy.model(), hooks=telemetry.hooks).run_sync("refund 42")

    started = time.monotonic()
    (spans,) = telemetry.shutdown()
    took = time.monotonic() - started

    assert took < 1.0, f"stopping took {took:.2f} s with a collector that refused at once"
    assert spans.refused and spans.ended > 0 and spans.dropped == spans.ended
    assert telemetry.refused() == {
        f"otlp http://127.0.0.1:{port}/v1/traces",
        f"otlp http://127.0.0.1:{port}/v1/metrics",
    }
    assert telemetry.problems == []


def test_handrail_run_with_the_collector_down_exits_0_with_one_line(tmp_path: Path) -> None:
    port = closed_port()
    result = handrail(RUN, tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{port}")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    [line] = tracing_lines(result.stderr)
    found = re.fullmatch(
        r"warning: tracing: (\d+) of (\d+) spans \(nor any metrics\) were not sent to "
        rf"otlp http://127\.0\.0\.1:{port}/v1/traces: it refused the connection \(is the "
        r"collector running\?\); the runs are unaffected",
        line,
    )
    assert found is not None, line
    assert found.group(1) == found.group(2) and int(found.group(1)) > 10


class _Silent(BaseHTTPRequestHandler):
    """A collector that reads each request and never answers it (until the test ends)."""

    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).release.wait(60)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def silent_collector() -> Iterator[str]:
    handler = type("Handler", (_Silent,), {"release": threading.Event()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


def test_metrics_that_cannot_be_sent_in_time_do_not_fail_the_batch(
    tmp_path: Path, silent_collector: str
) -> None:
    # The last spans use up the whole bound waiting for the collector, so the meter provider
    # gets no time: the SDK raises "deadline already exceeded" for its second reader.
    result = handrail(
        RUN,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=silent_collector,
        OTEL_METRICS_EXPORTER="otlp,console",
        OTEL_BSP_EXPORT_TIMEOUT="300",
    )

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "10 documents: 5 completed, 3 needs review, 2 failed" in result.stdout + result.stderr
    lines = tracing_lines(result.stderr)
    assert any(
        line.startswith("warning: tracing: sending the last metrics failed (")
        and line.endswith("the runs are unaffected")
        for line in lines
    ), lines
