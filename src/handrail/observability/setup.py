"""One call that turns tracing and metrics on from the standard `OTEL_*` environment variables.

```python
telemetry = configure()                       # reads OTEL_* (OTLP over HTTP by default)
runner = Runner(pipeline, model=..., hooks=telemetry.hooks)
...
telemetry.shutdown()                          # sends what is left, at most a few seconds
```

What it reads (everything else, e.g. headers, certificates, compression, the sampler, is read by
the OpenTelemetry SDK and exporters themselves):

- `OTEL_SDK_DISABLED=true`: nothing is set up.
- `OTEL_TRACES_EXPORTER`: `otlp` (default), `console` (span JSON on stderr), `none`; a comma list
  for several. `OTEL_METRICS_EXPORTER` likewise, but its default is `otlp` only when an OTLP
  endpoint is set (a console look at traces should not try to reach localhost:4318 for metrics).
- `OTEL_EXPORTER_OTLP_ENDPOINT` / `OTEL_EXPORTER_OTLP_{TRACES,METRICS}_ENDPOINT`,
  `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf`; the others are not bundled: a warning, and
  HTTP is used), `OTEL_SERVICE_NAME` (default `handrail`), `OTEL_RESOURCE_ATTRIBUTES`.
- `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`,
  `OTEL_BSP_EXPORT_TIMEOUT` (also the most `shutdown()` waits, default 5 s here),
  `OTEL_METRIC_EXPORT_INTERVAL`.
- `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (read by `TracingHooks`).

A malformed value never stops a run: it becomes a warning (`Telemetry.warnings`, also logged on
the `handrail.observability` logger) naming the variable, what was wrong and what to write, and
the default is used.

Export never slows a run: spans go to a bounded queue (`BatchSpanProcessor`) that a background
thread sends; when the collector is down or slow the queue fills and spans are dropped, counted
(`Telemetry.stats()`), not raised. Stopping never raises either: what went wrong is in
`Telemetry.problems`, and a collector that refuses connections (nothing listens on its port) is
not waited for at all. The global OpenTelemetry providers are left alone unless `set_global=True`.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricExportResult,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from handrail.core.hooks import Hooks
from handrail.observability.env import ENDPOINTS as _ENDPOINTS
from handrail.observability.env import tracing_requested, truthy
from handrail.observability.spans import CAPTURE_ENV, TracingHooks, capture_mode

log = logging.getLogger("handrail.observability")

DEFAULT_SERVICE_NAME = "handrail"
DEFAULT_FLUSH_TIMEOUT_MS = 5000
"""The most `shutdown()` waits for the last spans and metrics (unless OTEL_BSP_EXPORT_TIMEOUT)."""
DEFAULT_OTLP_ENDPOINT = "http://localhost:4318"

_EXPORTERS = ("otlp", "console", "none")
_PROTOCOL = "http/protobuf"
_POSITIVE_INTS = {
    # variable: (default, what it is)
    "OTEL_BSP_SCHEDULE_DELAY": (5000, "milliseconds between exports"),
    "OTEL_BSP_MAX_QUEUE_SIZE": (2048, "spans kept waiting for export"),
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": (512, "spans per export"),
    "OTEL_BSP_EXPORT_TIMEOUT": (DEFAULT_FLUSH_TIMEOUT_MS, "milliseconds"),
    "OTEL_METRIC_EXPORT_INTERVAL": (60000, "milliseconds between metric exports"),
}
_POSITIVE_FLOATS = ("OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
_KEY_VALUE_LISTS = (
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
)


@dataclass(frozen=True, slots=True)
class ExportStats:
    """What became of the spans for one exporter."""

    exporter: str
    """`otlp http://host:4318/v1/traces` or `console`."""
    ended: int
    """Spans finished and handed to the exporter's queue."""
    exported: int
    """Spans the exporter reported as sent."""
    refused: bool = False
    """The collector refused connections (nothing listened on its port): nothing was waited for."""

    @property
    def dropped(self) -> int:
        """Spans never sent: a collector down or slow, the queue full, or time up at exit."""
        return max(self.ended - self.exported, 0)


@dataclass(slots=True)
class Telemetry:
    """What `configure` set up: the hooks to give runners, and how to stop."""

    hooks: tuple[Hooks, ...] = ()
    warnings: tuple[str, ...] = ()
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    flush_timeout_ms: int = DEFAULT_FLUSH_TIMEOUT_MS
    problems: list[str] = field(default_factory=list)
    """What went wrong while stopping (e.g. metrics not all sent in time): reported, never
    raised."""
    _counters: list[tuple[_CountingBatchProcessor, _CountingExporter]] = field(default_factory=list)
    _metric_failures: list[tuple[str, list[int]]] = field(default_factory=list)
    _metric_exporters: list[tuple[str, list[bool]]] = field(default_factory=list)
    """(URL, [skip]) of each OTLP metric exporter: `skip[0] = True` makes it send nothing more."""
    _refused: set[str] = field(default_factory=set)
    """Labels (`otlp URL`) of the exporters whose collector refused connections at shutdown."""
    _stopped: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.hooks)

    def stats(self) -> list[ExportStats]:
        """Spans ended / sent per exporter so far (exact once `shutdown` returned)."""
        return [
            ExportStats(
                exporter.label,
                processor.ended,
                exporter.exported,
                refused=exporter.label in self._refused,
            )
            for processor, exporter in self._counters
        ]

    def metric_failures(self) -> dict[str, int]:
        """Failed metric exports per OTLP endpoint (e.g. a collector that takes no metrics)."""
        return {label: count[0] for label, count in self._metric_failures if count[0]}

    def refused(self) -> set[str]:
        """The exporters (`otlp URL`, spans and metrics) whose collector refused connections when
        the telemetry stopped: nothing was sent to them and nothing was waited for."""
        return set(self._refused)

    def shutdown(self) -> list[ExportStats]:
        """Send what is queued, waiting at most `flush_timeout_ms` in all, then stop; what was
        not sent by then is counted as dropped. A collector that refuses connections is not
        waited for: its exporters stop at once. Never raises (an exporter or SDK failure is
        added to `problems`). Safe to call twice."""
        if self._stopped:
            return self.stats()
        self._stopped = True
        deadline = time.monotonic() + self.flush_timeout_ms / 1000
        self._find_refused()
        for processor, exporter in self._counters:
            if exporter.failing or exporter.label in self._refused:
                # The collector already refused: stop its retries now rather than wait them out.
                self._guarded(f"stopping the span exporter {exporter.label}", exporter.shutdown)
            self._guarded(
                f"sending the last spans to {exporter.label}",
                lambda p=processor: _shutdown_within(p, _remaining_ms(deadline)),
            )
        if self.tracer_provider is not None:
            self._guarded("stopping the tracer provider", self.tracer_provider.shutdown)
        if self.meter_provider is not None:
            for url, skip in self._metric_exporters:
                if f"otlp {url}" in self._refused:  # no final export that can only fail
                    skip[0] = True
            meter_provider = self.meter_provider
            self._guarded(
                "sending the last metrics",
                lambda: meter_provider.shutdown(timeout_millis=max(_remaining_ms(deadline), 1)),
            )
        return self.stats()

    def _find_refused(self, within_s: float = 0.3) -> None:
        """Note the OTLP collectors that refuse connections now (a quick local answer), unless
        they took an export already. Each is asked in a thread of its own, `within_s` in all:
        a slow name lookup or connection is not a refusal and is not waited for."""
        urls = {e.url for _, e in self._counters if e.url is not None and not e.exported}
        urls |= {url for url, _ in self._metric_exporters}
        refused: set[str] = set()

        def ask(url: str) -> None:
            if _refuses(url, timeout_s=within_s):
                refused.add(url)

        threads = [threading.Thread(target=ask, args=(url,), daemon=True) for url in urls]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + within_s
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0))
        self._refused |= {f"otlp {url}" for url in list(refused)}

    def _guarded(self, what: str, step: Any) -> None:
        """Run one step of stopping; a failure becomes a line in `problems`, never an error
        (the runs are stored already: telemetry must not fail the command)."""
        try:
            step()
        except Exception as e:  # the SDK raises bare Exception
            first = str(e).strip().splitlines()
            detail = "; ".join(line.strip() for line in first[:3] if line.strip())
            problem = f"{what} failed ({type(e).__name__}: {detail or 'no message'})"
            self.problems.append(problem)
            log.info("%s", problem)  # info: the command line prints `problems` itself


def configure(
    *,
    service_name: str | None = None,
    span_exporters: Sequence[SpanExporter] | None = None,
    metric_readers: Sequence[MetricReader] | None = None,
    capture_content: str | None = None,
    set_global: bool = False,
) -> Telemetry:
    """Set up the OpenTelemetry SDK from the `OTEL_*` environment variables (see the module).

    `span_exporters` / `metric_readers` replace the ones the environment names (tests, or a
    backend of your own); `capture_content` overrides
    `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`. Returns a `Telemetry` whose `hooks`
    go to `Runner(..., hooks=...)`; call its `shutdown()` before the process ends.
    """
    env = os.environ
    problems = check_environment(env)
    for problem in problems:
        log.warning("%s", problem)
    if truthy(env.get("OTEL_SDK_DISABLED")):
        return Telemetry(warnings=tuple(problems))
    if capture_content is None:
        capture_content = env.get(CAPTURE_ENV)
    mode, capture_problem = capture_mode(capture_content)
    if capture_problem and capture_problem not in problems:
        problems.append(capture_problem)

    attributes: dict[str, Any] = {}
    if service_name is not None or not env.get("OTEL_SERVICE_NAME", "").strip():
        attributes["service.name"] = service_name or DEFAULT_SERVICE_NAME
    resource = Resource.create(attributes)
    settings = {name: _positive_int(env, name)[0] for name in _POSITIVE_INTS}
    flush_ms = (
        settings["OTEL_BSP_EXPORT_TIMEOUT"]
        if env.get("OTEL_BSP_EXPORT_TIMEOUT", "").strip()
        else DEFAULT_FLUSH_TIMEOUT_MS
    )

    tracer_provider = TracerProvider(resource=resource)
    telemetry = Telemetry(
        warnings=tuple(problems), tracer_provider=tracer_provider, flush_timeout_ms=flush_ms
    )
    exporters = (
        [(_label(e), e) for e in span_exporters]
        if span_exporters is not None
        else _span_exporters(env)
    )
    for label, exporter in exporters:
        counting = _CountingExporter(exporter, label)
        if label.startswith("otlp "):
            counting.url = label.removeprefix("otlp ")
        processor = _CountingBatchProcessor(
            counting,
            max_queue_size=settings["OTEL_BSP_MAX_QUEUE_SIZE"],
            schedule_delay_millis=settings["OTEL_BSP_SCHEDULE_DELAY"],
            max_export_batch_size=min(
                settings["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"], settings["OTEL_BSP_MAX_QUEUE_SIZE"]
            ),
            export_timeout_millis=settings["OTEL_BSP_EXPORT_TIMEOUT"],
        )
        tracer_provider.add_span_processor(processor)
        telemetry._counters.append((processor, counting))

    readers = (
        list(metric_readers)
        if metric_readers is not None
        else _metric_readers(
            env,
            settings["OTEL_METRIC_EXPORT_INTERVAL"],
            telemetry._metric_failures,
            telemetry._metric_exporters,
        )
    )
    hooks: list[Hooks] = [TracingHooks(tracer_provider=tracer_provider, capture_content=mode)]
    if readers:
        from handrail.observability.metrics import MetricsHooks

        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        telemetry.meter_provider = meter_provider
        hooks.append(MetricsHooks(meter_provider=meter_provider))
    telemetry.hooks = tuple(hooks)
    if set_global:
        trace.set_tracer_provider(tracer_provider)
        if telemetry.meter_provider is not None:
            metrics.set_meter_provider(telemetry.meter_provider)
    return telemetry


def check_environment(environ: Mapping[str, str]) -> list[str]:
    """One message per malformed `OTEL_*` value handrail relies on: what is wrong and the fix."""
    problems: list[str] = []
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"):
        for value in _names(environ.get(name, "")):
            if value not in _EXPORTERS:
                problems.append(
                    f"{name}={environ[name]!r}: `{value}` is not an exporter handrail bundles; "
                    f"use {', '.join(_EXPORTERS)} (comma-separated); ignored"
                )
    for name in ("OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"):
        value = environ.get(name, "").strip()
        if value and value != _PROTOCOL:
            problems.append(
                f"{name}={value!r}: handrail bundles the OTLP exporter for {_PROTOCOL} only; "
                f"set {name}={_PROTOCOL} and point the endpoint at the collector's HTTP port "
                "(usually 4318); using HTTP"
            )
    for name in _ENDPOINTS:
        value = environ.get(name, "").strip()
        if value and not _is_url(value):
            problems.append(
                f"{name}={value!r} is not a URL; write it like http://localhost:4318 "
                "(scheme, host and port); nothing is exported to it"
            )
    for name in _POSITIVE_INTS:
        problem = _positive_int(environ, name)[1]
        if problem:
            problems.append(problem)
    for name in _POSITIVE_FLOATS:
        value = environ.get(name, "").strip()
        if value and not _positive_number(value):
            problems.append(
                f"{name}={value!r} is not a number of seconds above 0; the default (10) is used"
            )
    for name in _KEY_VALUE_LISTS:
        value = environ.get(name, "").strip()
        bad = [item for item in value.split(",") if item.strip() and "=" not in item]
        if bad:
            problems.append(
                f"{name}: `{bad[0].strip()}` is not key=value; write "
                f"{name}=key1=value1,key2=value2; that item is ignored"
            )
    capture_problem = capture_mode(environ.get(CAPTURE_ENV))[1]
    if capture_problem:
        problems.append(capture_problem)
    return problems


# --- exporters -------------------------------------------------------------------------------


def _span_exporters(env: Mapping[str, str]) -> list[tuple[str, SpanExporter]]:
    chosen = _chosen(env, "OTEL_TRACES_EXPORTER", default=("otlp",))
    found: list[tuple[str, SpanExporter]] = []
    if "otlp" in chosen:
        endpoint = _endpoint(env, "TRACES", "v1/traces")
        if endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            found.append((f"otlp {endpoint}", OTLPSpanExporter(endpoint=endpoint)))
    if "console" in chosen:
        found.append(("console", ConsoleSpanExporter(out=_Stderr())))  # type: ignore[arg-type]
    return found


def _metric_readers(
    env: Mapping[str, str],
    interval_ms: int,
    failures: list[tuple[str, list[int]]],
    otlp: list[tuple[str, list[bool]]],
) -> list[MetricReader]:
    """The readers the environment names; each OTLP exporter's failed exports are counted in
    `failures` as (its label, [count]), and `otlp` gets (its URL, [skip]): set skip[0] and it
    sends nothing more."""
    has_endpoint = any(env.get(name, "").strip() for name in (_ENDPOINTS[0], _ENDPOINTS[2]))
    chosen = _chosen(env, "OTEL_METRICS_EXPORTER", default=("otlp",) if has_endpoint else ())
    exporters: list[MetricExporter] = []
    if "otlp" in chosen:
        endpoint = _endpoint(env, "METRICS", "v1/metrics")
        if endpoint is not None:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
                OTLPMetricExporter,
            )

            failed = [0]
            skip = [False]
            failures.append((f"otlp {endpoint}", failed))
            otlp.append((endpoint, skip))

            class _Counted(OTLPMetricExporter):
                def export(self, metrics_data: Any, *args: Any, **kwargs: Any) -> Any:
                    if skip[0]:  # the collector refused: nothing to wait for
                        return MetricExportResult.FAILURE
                    result = super().export(metrics_data, *args, **kwargs)
                    if result is not MetricExportResult.SUCCESS:
                        failed[0] += 1
                    return result

            exporters.append(_Counted(endpoint=endpoint))
    if "console" in chosen:
        exporters.append(ConsoleMetricExporter(out=_Stderr()))  # type: ignore[arg-type]
    return [
        PeriodicExportingMetricReader(exporter, export_interval_millis=interval_ms)
        for exporter in exporters
    ]


def _chosen(env: Mapping[str, str], name: str, *, default: tuple[str, ...]) -> tuple[str, ...]:
    names = _names(env.get(name, ""))
    if not names:
        return default
    return tuple(n for n in names if n in _EXPORTERS and n != "none")


def _endpoint(env: Mapping[str, str], signal: str, path: str) -> str | None:
    """The signal's full URL (its own variable as is, else the base + `/v1/...`); None when the
    variable is malformed (already warned)."""
    own = env.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
    if own:
        return own if _is_url(own) else None
    base = env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or DEFAULT_OTLP_ENDPOINT
    if not _is_url(base):
        return None
    return base.rstrip("/") + "/" + path


class _Stderr:
    """A file-like object writing to the `sys.stderr` of the moment (tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _CountingBatchProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting the sampled spans handed to it (what its exporter
    should eventually send; the queue drops silently when full)."""

    def __init__(self, exporter: SpanExporter, **options: Any) -> None:
        super().__init__(exporter, **options)
        self._ended = itertools.count()  # `next` is atomic: no lock on the hot path
        self._reads = 0
        self._read_lock = threading.Lock()

    @property
    def ended(self) -> int:
        with self._read_lock:  # reading a count advances it once: subtract the reads
            value = next(self._ended) - self._reads
            self._reads += 1
        return value

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is not None and context.trace_flags.sampled:
            next(self._ended)
        super().on_end(span)


class _CountingExporter(SpanExporter):
    """Passes batches on and counts the spans the exporter reports as sent."""

    def __init__(self, inner: SpanExporter, label: str) -> None:
        self.inner = inner
        self.label = label
        self.exported = 0
        self.failing = False
        self.url: str | None = None
        """The collector's URL, for an OTLP exporter."""
        self._down = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._down:
            return SpanExportResult.FAILURE
        try:
            result = self.inner.export(spans)
        except Exception:  # an exporter bug must not reach the run
            log.exception("span exporter %s raised", self.label)
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
            self.failing = False
        else:
            self.failing = True
        return result

    def shutdown(self) -> None:
        if not self._down:
            self._down = True
            try:
                self.inner.shutdown()
            except Exception:  # an exporter bug must not reach the command
                log.exception("span exporter %s failed to stop", self.label)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        try:
            return self.inner.force_flush(timeout_millis)
        except Exception:  # reported, never raised
            log.exception("span exporter %s failed to flush", self.label)
            return False


# --- parsing ---------------------------------------------------------------------------------


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip().lower() for n in value.split(",") if n.strip())


def _is_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _positive_number(value: str) -> bool:
    try:
        return float(value) > 0
    except ValueError:
        return False


def _positive_int(env: Mapping[str, str], name: str) -> tuple[int, str | None]:
    default, what = _POSITIVE_INTS[name]
    raw = env.get(name, "").strip()
    if not raw:
        return default, None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value > 0:
        return value, None
    return default, (
        f"{name}={raw!r} is not a whole number above 0 ({what}); the default ({default}) is used"
    )


def _label(exporter: SpanExporter) -> str:
    return type(exporter).__name__


def _shutdown_within(processor: BatchSpanProcessor, timeout_ms: int) -> None:
    """`BatchSpanProcessor.shutdown()` takes no timeout (it waits up to 30 s for a stuck export);
    the batch worker inside it does."""
    worker = getattr(processor, "_batch_processor", None)
    if worker is not None and hasattr(worker, "shutdown"):
        worker.shutdown(timeout_millis=timeout_ms)
    else:  # pragma: no cover - another SDK layout
        processor.shutdown()  # type: ignore[no-untyped-call]


def _refuses(url: str, timeout_s: float = 0.3) -> bool:
    """Whether the collector at `url` refuses connections right now (nothing listens on its
    port, answered at once): a final export could only fail. A proxy in the way, a slow answer
    or any other error is not taken as a refusal (then the usual bounded wait applies)."""
    parts = urlsplit(url)
    host = parts.hostname
    if host is None:
        return False
    if urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host):
        return False
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with socket.create_connection((host, port), timeout=timeout_s):
            return False
    except ConnectionRefusedError:
        return True
    except (OSError, ValueError):
        return False


def _remaining_ms(deadline: float) -> int:
    return max(int((deadline - time.monotonic()) * 1000), 0)


__all__ = [
    "DEFAULT_FLUSH_TIMEOUT_MS",
    "ExportStats",
    "Telemetry",
    "check_environment",
    "configure",
    "tracing_requested",
]
