"""`configure()` from the OTEL_* variables: what it sets up, the warnings for malformed values,
and a collector that is down or hangs costing the run nothing (spans counted as dropped)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from tests.pipelines import happy, low_confidence
from typer.testing import CliRunner

from handrail import Runner
from handrail.cli.main import app
from handrail.observability.env import tracing_requested
from handrail.observability.setup import check_environment, configure


@pytest.fixture(autouse=True)
def _clean_otel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens on it any more


# --- when tracing is on, and the warnings --------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_requested_by_an_endpoint_or_an_exporter(
    environ: dict[str, str], wanted: bool
) -> None:
    assert tracing_requested(environ) is wanted


def test_a_well_formed_environment_has_no_warnings() -> None:
    assert (
        check_environment(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.example.com:4318",
                "OTEL_TRACES_EXPORTER": "otlp,console",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_BSP_SCHEDULE_DELAY": "200",
                "OTEL_EXPORTER_OTLP_TIMEOUT": "2.5",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=intake",
                "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer x",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "SPAN_ONLY",
            }
        )
        == []
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318", "write it like http://localhost:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://:99999", "is not a URL"),
        ("OTEL_TRACES_EXPORTER", "jaeger", "use otlp, console, none"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "lots", "not a whole number above 0"),
        ("OTEL_BSP_SCHEDULE_DELAY", "-5", "the default (5000) is used"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "not a number of seconds"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team=intake,prod", "`prod` is not key=value"),
        ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "all", "SPAN_AND_EVENT"),
    ],
)
def test_a_malformed_value_gets_a_warning_naming_it_and_the_fix(
    name: str, value: str, says: str
) -> None:
    (warning,) = check_environment({name: value})
    assert name in warning
    assert repr(value) in warning or f"`{value.split(',')[-1]}`" in warning
    assert says in warning


def test_configure_warns_and_still_traces(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "lots")
    exporter = InMemorySpanExporter()
    telemetry = configure(span_exporters=[exporter], metric_readers=[])
    assert any("OTEL_BSP_MAX_QUEUE_SIZE" in w for w in telemetry.warnings)
    assert any("OTEL_BSP_MAX_QUEUE_SIZE" in r.getMessage() for r in caplog.records)

    Runner(happy.pipeline, model=happy.model(), hooks=telemetry.hooks).run_sync("refund 42")
    (stats,) = telemetry.shutdown()
    assert stats.ended == stats.exported == len(exporter.get_finished_spans()) > 0
    assert stats.dropped == 0


# --- what configure sets up ----------------------------------------------------------------------


def test_disabled_sdk_sets_up_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    telemetry = configure()
    assert telemetry.hooks == ()
    assert not telemetry.enabled
    assert telemetry.shutdown() == []


def traced_resource() -> dict[str, object]:
    """The resource of the spans of one run traced through `configure()`."""
    exporter = InMemorySpanExporter()
    telemetry = configure(span_exporters=[exporter], metric_readers=[])
    Runner(happy.pipeline, model=happy.model(), hooks=telemetry.hooks).run_sync("refund 42")
    telemetry.shutdown()
    return dict(exporter.get_finished_spans()[0].resource.attributes)


def test_service_name_defaults_to_handrail_and_follows_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert traced_resource()["service.name"] == "handrail"

    monkeypatch.setenv("OTEL_SERVICE_NAME", "claims-intake")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
    resource = traced_resource()
    assert resource["service.name"] == "claims-intake"
    assert resource["deployment.environment"] == "test"


def test_the_environment_picks_otlp_and_console_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/")
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,console")
    telemetry = configure()
    try:
        assert [s.exporter for s in telemetry.stats()] == [
            "otlp http://127.0.0.1:4318/v1/traces",
            "console",
        ]
        assert telemetry.meter_provider is not None  # an endpoint: metrics go there too
        assert [type(h).__name__ for h in telemetry.hooks] == ["TracingHooks", "MetricsHooks"]
    finally:
        telemetry.shutdown()


def test_a_console_look_sends_no_metrics_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    telemetry = configure()
    try:
        assert [s.exporter for s in telemetry.stats()] == ["console"]
        assert telemetry.meter_provider is None
        assert [type(h).__name__ for h in telemetry.hooks] == ["TracingHooks"]
    finally:
        telemetry.shutdown()


# --- a collector that is down or hangs -----------------------------------------------------------


def test_a_dead_collector_costs_the_run_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_port()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "1")  # export while the run goes on
    monkeypatch.setenv("OTEL_BSP_EXPORT_TIMEOUT", "500")
    telemetry = configure()
    assert telemetry.warnings == ()

    untraced = Runner(happy.pipeline, model=happy.model()).run_sync("refund 42")
    traced = Runner(happy.pipeline, model=happy.model(), hooks=telemetry.hooks).run_sync(
        "refund 42"
    )
    stats = telemetry.shutdown()

    assert traced.status == untraced.status
    assert traced.outputs == untraced.outputs
    (spans,) = stats
    assert spans.ended > 0
    assert spans.exported == 0
    assert spans.dropped == spans.ended  # counted, never raised


class _Hanging(BaseHTTPRequestHandler):
    """A collector that reads a request and answers only when released."""

    received = threading.Event()
    release = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.set()
        type(self).release.wait(30)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def hanging_collector() -> Iterator[tuple[str, type[_Hanging]]]:
    handler = type(
        "Handler", (_Hanging,), {"received": threading.Event(), "release": threading.Event()}
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()


async def test_a_hanging_collector_never_holds_up_a_run(
    monkeypatch: pytest.MonkeyPatch, hanging_collector: tuple[str, type[_Hanging]]
) -> None:
    url, handler = hanging_collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "1")
    monkeypatch.setenv("OTEL_BSP_EXPORT_TIMEOUT", "300")
    telemetry = configure()
    runner = Runner(
        low_confidence.pipeline, model=low_confidence.model(0.95), hooks=telemetry.hooks
    )

    first = await runner.run("first document")
    assert handler.received.wait(10), "the first spans were sent while the batch went on"
    # The collector holds that request open; the runs go on regardless.
    second = await runner.run("second document")
    third = await runner.run("third document")
    assert [str(r.status) for r in (first, second, third)] == ["completed"] * 3
    assert not handler.release.is_set()

    (spans,) = telemetry.shutdown()  # gives up on the stuck export after 300 ms
    assert spans.ended >= 3 * 3
    assert spans.exported < spans.ended
    assert spans.dropped == spans.ended - spans.exported


class _TracesOnly(BaseHTTPRequestHandler):
    """A collector like Arize Phoenix: takes traces, answers 405 to metrics."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200 if self.path == "/v1/traces" else 405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def traces_only_collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TracesOnly)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_collector_refusing_metrics_is_reported_once_spans_still_sent(
    monkeypatch: pytest.MonkeyPatch, traces_only_collector: str, tmp_path: Path
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", traces_only_collector)
    telemetry = configure()
    Runner(happy.pipeline, model=happy.model(), hooks=telemetry.hooks).run_sync("refund 42")
    (spans,) = telemetry.shutdown()
    assert spans.ended == spans.exported > 0
    assert telemetry.metric_failures() == {f"otlp {traces_only_collector}/v1/metrics": 1}

    document = tmp_path / "ticket.txt"
    document.write_text("Refund order 42 please, it arrived broken.")
    result = CliRunner().invoke(
        app, ["run", f"{PIPELINES}/happy.py:pipeline", str(document), "--in-memory"]
    )
    assert result.exit_code == 0, result.output
    assert f"spans sent to otlp {traces_only_collector}/v1/traces" in result.stderr
    assert "metrics could not be sent" in result.stderr
    assert "OTEL_METRICS_EXPORTER=none" in result.stderr
