"""Tracing and metrics for handrail runs with OpenTelemetry (DESIGN §6), and the workflow report.

- `configure()` sets up the SDK from the standard `OTEL_*` variables and returns the hooks to give
  a `Runner` (`handrail.observability.setup`).
- `TracingHooks` and `MetricsHooks` are `Hooks` written against the OpenTelemetry API; attach
  them yourself with `Runner(pipeline, model=..., hooks=[TracingHooks()])` to use providers of
  your own.

The names are imported on first use: `import handrail` and `handrail.observability.env` /
`handrail.observability.report` never import OpenTelemetry.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handrail.observability.metrics import MetricsHooks
    from handrail.observability.setup import ExportStats, Telemetry, configure
    from handrail.observability.spans import TracingHooks

_WHERE = {
    "TracingHooks": "handrail.observability.spans",
    "MetricsHooks": "handrail.observability.metrics",
    "configure": "handrail.observability.setup",
    "Telemetry": "handrail.observability.setup",
    "ExportStats": "handrail.observability.setup",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'handrail.observability' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["ExportStats", "MetricsHooks", "Telemetry", "TracingHooks", "configure"]
