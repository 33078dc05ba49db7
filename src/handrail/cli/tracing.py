"""Tracing for the commands that run pipelines: on with `--trace`, or when the environment names
a collector (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_TRACES_EXPORTER`...; see
`handrail.observability.setup`).

OpenTelemetry is imported only when tracing is on, so commands start as quickly as before. The
exporters' own log lines (a line per failed export, with retries) are kept quiet; what became of
the spans is one line on stderr when the command ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from handrail.core.hooks import Hooks

if TYPE_CHECKING:
    from handrail.observability.setup import Telemetry

Trace = Annotated[
    bool | None,
    typer.Option(
        "--trace/--no-trace",
        help="Send OpenTelemetry traces and metrics to the collector the OTEL_* variables name "
        "(default endpoint http://localhost:4318). Default: on when OTEL_EXPORTER_OTLP_ENDPOINT "
        "or OTEL_TRACES_EXPORTER is set.",
        show_default=False,
    ),
]


@contextmanager
def traced(trace: bool | None) -> Iterator[tuple[Hooks, ...]]:
    """The hooks to give runners while the block runs (none when tracing is off); on leaving,
    sends what is left (a few seconds at most) and says on stderr what was sent and dropped."""
    from handrail.observability.env import tracing_requested

    if trace is False or (trace is None and not tracing_requested()):
        yield ()
        return
    from handrail.observability.setup import configure

    # The exporters log every failed export and retry, also from their thread after the command
    # is done; the summary line below says it once. Left quiet for the rest of the process.
    quiet = logging.getLogger("opentelemetry")
    if quiet.level == logging.NOTSET:
        quiet.setLevel(logging.CRITICAL)
    telemetry = configure()
    for warning in telemetry.warnings:
        typer.echo(f"warning: {warning}", err=True)
    try:
        yield telemetry.hooks
    finally:
        for line in _summary(telemetry):
            typer.echo(line, err=True)


def _summary(telemetry: Telemetry) -> list[str]:
    """Stops the telemetry (never raises) and says what became of the spans and metrics: a
    line per exporter, a line per problem."""
    stats = telemetry.shutdown()
    refused = telemetry.refused()
    lines = []
    for stat in stats:
        if stat.refused:
            also = " (nor any metrics)" if _metrics_url(stat.exporter) in refused else ""
            lines.append(
                f"warning: tracing: {stat.dropped} of {stat.ended} spans{also} were not sent to "
                f"{stat.exporter}: it refused the connection (is the collector running?); the "
                "runs are unaffected"
            )
        elif stat.dropped:
            lines.append(
                f"warning: tracing: {stat.dropped} of {stat.ended} spans were not sent to "
                f"{stat.exporter} (collector down, slow or refusing them); the runs are "
                "unaffected"
            )
        else:
            lines.append(f"tracing: {stat.exported} spans sent to {stat.exporter}")
    said = {_metrics_url(stat.exporter) for stat in stats if stat.refused}
    for where in sorted(refused - said - {stat.exporter for stat in stats}):
        lines.append(
            f"warning: tracing: metrics were not sent to {where}: it refused the connection (is "
            "the collector running?); the runs are unaffected"
        )
    for where, failed in telemetry.metric_failures().items():
        if where in refused:
            continue
        lines.append(
            f"warning: tracing: metrics could not be sent to {where} ({failed} failed "
            "exports); if the collector takes no metrics (Arize Phoenix does not), set "
            "OTEL_METRICS_EXPORTER=none"
        )
    lines += [f"warning: tracing: {p}; the runs are unaffected" for p in telemetry.problems]
    return lines


def _metrics_url(label: str) -> str:
    """`otlp http://h:4318/v1/traces` -> `otlp http://h:4318/v1/metrics` (where the same
    collector takes metrics)."""
    return label.removesuffix("/v1/traces") + "/v1/metrics"


__all__ = ["Trace", "traced"]
