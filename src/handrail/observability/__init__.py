"""Tracing for handrail runs with OpenTelemetry (DESIGN §6).

`TracingHooks` is a `Hooks` implementation written against the OpenTelemetry API; attach it
with `Runner(pipeline, model=..., hooks=[TracingHooks()])`. This package is not imported by
`import handrail`, so the core and the top-level namespace stay free of OpenTelemetry.
"""

from __future__ import annotations

from handrail.observability.spans import TracingHooks

__all__ = ["TracingHooks"]
