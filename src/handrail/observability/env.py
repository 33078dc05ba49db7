"""Whether the environment asks for tracing: read without importing OpenTelemetry, so commands
that trace nothing start as quickly as before."""

from __future__ import annotations

import os
from collections.abc import Mapping

ENDPOINTS = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)


def truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """True when the environment names somewhere to send traces: an OTLP endpoint, or an
    `OTEL_TRACES_EXPORTER` other than `none` (and the SDK is not disabled)."""
    env = os.environ if environ is None else environ
    if truthy(env.get("OTEL_SDK_DISABLED")):
        return False
    if any(env.get(name, "").strip() for name in ENDPOINTS[:2]):
        return True
    exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return bool(exporters) and exporters != "none"


__all__ = ["ENDPOINTS", "tracing_requested", "truthy"]
