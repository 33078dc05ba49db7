"""Tiny named fixture pipelines, reused by core, CLI and (later) tracing tests.

Each module defines `pipeline` (a built `Pipeline`) and, where it has LLM nodes, `model()`
returning the `FakeModel` script the tests use.
"""
