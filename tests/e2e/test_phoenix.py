"""End to end: `handrail run` exports its traces over OTLP/HTTP to a real Arize Phoenix, and the
span tree read back through Phoenix's REST API is the one docs/observability.md describes.

Phoenix runs from a virtual environment of its own (it pins its own OpenTelemetry, SQLAlchemy
and FastAPI), named by HANDRAIL_PHOENIX: the path of that environment's `phoenix` script (see
docs/tracing-e2e.md; .ci/run installs it). Outside CI the test is skipped without it; with CI
set, a missing Phoenix fails the test instead of hiding it.

The expectations come from the run itself, not from numbers written here: the run ids, statuses
and reviews from `handrail run --json`, the steps (kind, status, attempts, confidence, model,
tokens) from `handrail runs show --json` on the same database.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from handrail.observability.spans import CAPTURE_ENV, SAFE_REASONS

pytestmark = pytest.mark.slow

PHOENIX = os.environ.get("HANDRAIL_PHOENIX")
if not PHOENIX and not os.environ.get("CI"):
    pytest.skip(
        "set HANDRAIL_PHOENIX to the `phoenix` script of an arize-phoenix virtual environment "
        "(docs/tracing-e2e.md)",
        allow_module_level=True,
    )

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "invoice_intake"
TARGET = f"{EXAMPLE / 'pipeline.py'}:pipeline"
DOCUMENTS = EXAMPLE / "documents"
MODEL = "fake"

NON_LLM_KINDS = frozenset({"rule", "action", "review"})
"""Node kinds that never call the model; every other kind (classify, extract, ...) does."""
EVALUATION = "gen_ai.evaluation.result"
GATE = "handrail.gate"

READY_TIMEOUT_S = 120.0
INGEST_TIMEOUT_S = 60.0
CLI_TIMEOUT_S = 300.0

# Straight to 127.0.0.1, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Span = dict[str, Any]


# --- Phoenix -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phoenix:
    base_url: str
    """`http://127.0.0.1:PORT`: the UI, the REST API under /v1 and OTLP/HTTP at /v1/traces."""
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get_json(url: str) -> tuple[int, Any]:
    """(HTTP status, the decoded body or None); raises OSError when nothing answers."""
    try:
        with _OPENER.open(url, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, None


def _tail(log: Path, lines: int = 40) -> str:
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        return f"(no log: {error})"
    return "\n".join(text.splitlines()[-lines:])


def _phoenix_env(port: int, workdir: Path) -> dict[str, str]:
    """The caller's environment without any PHOENIX_* or OTEL_* setting of its own (a
    PHOENIX_SQL_DATABASE_URL there must not receive test data), plus a private, quiet server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))}
    env.update(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        # gRPC cannot be switched off and binds every interface ([::]); port 0 lets the OS pick
        # a free one, so it never collides. The test sends OTLP over HTTP only.
        PHOENIX_GRPC_PORT="0",
        PHOENIX_WORKING_DIR=str(workdir),
        PHOENIX_SQL_DATABASE_URL=f"sqlite:///{workdir / 'phoenix.db'}",
        PHOENIX_TELEMETRY_ENABLED="false",
        PHOENIX_ALLOW_EXTERNAL_RESOURCES="false",
        PHOENIX_DISABLE_AGENT_ASSISTANT="true",
        PHOENIX_ENABLE_MCP_SERVER="false",
    )
    return env


def _wait_ready(process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"Phoenix exited with code {process.returncode} before it was ready; "
                f"the end of its log:\n{_tail(log)}"
            )
        try:
            status, _ = _get_json(f"{base_url}/readyz")
        except OSError:
            status = 0
        if status == 200:
            return
        time.sleep(0.5)
    pytest.fail(
        f"Phoenix did not answer {base_url}/readyz within {READY_TIMEOUT_S:.0f} s; "
        f"the end of its log:\n{_tail(log)}"
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


@pytest.fixture(scope="module")
def phoenix() -> Iterator[Phoenix]:
    """A Phoenix server of this module's own on 127.0.0.1, its database in a temporary folder
    that is removed afterwards."""
    assert PHOENIX, (
        "CI must provide Arize Phoenix: set HANDRAIL_PHOENIX to the `phoenix` script of its "
        "virtual environment (.ci/run installs it in .phoenix-venv)"
    )
    executable = Path(PHOENIX)
    assert executable.is_file() and os.access(executable, os.X_OK), (
        f"HANDRAIL_PHOENIX={PHOENIX} is not an executable file"
    )
    workdir = Path(tempfile.mkdtemp(prefix="handrail-phoenix-"))
    log = workdir / "phoenix.log"
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    try:
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(executable), "serve"],
                cwd=workdir,
                env=_phoenix_env(port, workdir),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_ready(process, base_url, log)
            yield Phoenix(base_url, log)
        finally:
            _stop(process)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def read_spans(phoenix: Phoenix, project: str) -> list[Span]:
    """Every span of `project`, page by page (`GET /v1/projects/{name}/spans`, `next_cursor`);
    none while Phoenix has not created the project (404)."""
    spans: list[Span] = []
    cursor: str | None = None
    while True:
        query = {"limit": "50", **({"cursor": cursor} if cursor else {})}
        url = (
            f"{phoenix.base_url}/v1/projects/{urllib.parse.quote(project, safe='')}/spans?"
            f"{urllib.parse.urlencode(query)}"
        )
        status, body = _get_json(url)
        if status == 404:
            return []
        assert status == 200, f"GET {url}: HTTP {status}"
        spans.extend(body["data"])
        cursor = body["next_cursor"]
        if not cursor:
            return spans


def wait_for_spans(phoenix: Phoenix, project: str, expected: int) -> list[Span]:
    """Phoenix ingests asynchronously: poll until `expected` spans are there (or the time is
    up), then read once more after a pause, so that late extra spans are seen too."""
    deadline = time.monotonic() + INGEST_TIMEOUT_S
    spans = read_spans(phoenix, project)
    while len(spans) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        spans = read_spans(phoenix, project)
    time.sleep(1.0)
    return read_spans(phoenix, project)


# --- handrail ------------------------------------------------------------------------------------


def _handrail() -> list[str]:
    script = Path(sys.executable).with_name("handrail")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "handrail.cli"]


def handrail(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Runs the real CLI in a subprocess. A non-zero exit fails with its stderr."""
    result = subprocess.run(
        [*_handrail(), *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert result.returncode == 0, (
        f"handrail {' '.join(args)} exited with {result.returncode}:\n{result.stderr[-4000:]}"
    )
    return result


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# --- reading spans -------------------------------------------------------------------------------


def attrs(span: Span) -> dict[str, Any]:
    """Phoenix's flattened attributes; it moves `openinference.span.kind` to `span_kind`."""
    attributes: dict[str, Any] = span["attributes"]
    return attributes


def span_id(span: Span) -> str:
    value: str = span["context"]["span_id"]
    return value


def trace_id(span: Span) -> str:
    value: str = span["context"]["trace_id"]
    return value


def redacted_reason(reason: dict[str, Any]) -> str:
    """A review reason as a span carries it with content capture off."""
    check = f" `{reason['check']}`" if reason.get("check") else ""
    size = len(reason["message"])
    return (
        f"{reason['kind']}{check} [redacted: {size} chars; set {CAPTURE_ENV}=SPAN_ONLY to record]"
    )


def evaluations(span: Span) -> list[dict[str, Any]]:
    events = span.get("events") or []
    return [dict(e["attributes"]) for e in events if e["name"] == EVALUATION]


def describe(spans: list[Span]) -> str:
    return ", ".join(
        f"{name} x{n}" for name, n in sorted(Counter(s["name"] for s in spans).items())
    )


# --- the test ------------------------------------------------------------------------------------


def test_handrail_run_traces_reach_phoenix(phoenix: Phoenix, tmp_path: Path) -> None:
    project = f"handrail-e2e-{uuid.uuid4().hex[:12]}"
    db = f"sqlite:///{tmp_path / 'handrail.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "HANDRAIL_"))}
    env.update(
        OTEL_EXPORTER_OTLP_ENDPOINT=phoenix.base_url,
        OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
        OTEL_SERVICE_NAME="handrail-e2e",
        OTEL_RESOURCE_ATTRIBUTES=f"openinference.project.name={project}",
        # Phoenix takes traces only (POST /v1/metrics answers 405).
        OTEL_METRICS_EXPORTER="none",
    )
    documents = sorted(p for p in DOCUMENTS.rglob("*") if p.is_file())

    # The example's ledger stand-in writes under the working directory: a folder of our own.
    batch = handrail(
        "run", TARGET, str(DOCUMENTS), "--model", MODEL, "--json", "--db", db,
        cwd=tmp_path, env=env,
    )  # fmt: skip
    runs = _json_lines(batch.stdout)
    assert len(runs) == len(documents), f"{len(runs)} runs for {len(documents)} documents"
    details = {
        run["run_id"]: json.loads(
            handrail(
                "runs", "show", run["run_id"], "--json", "--db", db, cwd=tmp_path, env=env
            ).stdout
        )
        for run in runs
    }

    # What the batch must show for this test to mean something: every run status, checks that
    # fail, a review gate that stops a run, and a model call re-asked.
    assert {run["status"] for run in runs} >= {"completed", "needs_review", "failed"}
    all_steps = [step for detail in details.values() for step in detail["steps"]]
    assert any(s["kind"] == "review" and s["status"] == "needs_review" for s in all_steps)
    assert any(s["kind"] not in NON_LLM_KINDS and s["attempts"] > 1 for s in all_steps)

    model_calls = sum(s["attempts"] for s in all_steps if s["kind"] not in NON_LLM_KINDS)
    expected = len(runs) + len(all_steps) + model_calls
    spans = wait_for_spans(phoenix, project, expected)
    assert len(spans) == expected, (
        f"Phoenix has {len(spans)} spans in {project}, expected {expected} "
        f"({len(runs)} runs, {len(all_steps)} steps, {model_calls} model calls): "
        f"{describe(spans)}; `handrail run` said on stderr:\n{batch.stderr[-2000:]}"
    )
    assert len({span_id(s) for s in spans}) == len(spans), "a span was stored twice"

    # One root span per document run, nothing else is a root.
    roots = [s for s in spans if s["parent_id"] is None]
    assert len(roots) == len(documents), describe(roots)
    root_of = {attrs(s)["handrail.run.id"]: s for s in roots}
    assert set(root_of) == {run["run_id"] for run in runs}
    assert len({trace_id(s) for s in roots}) == len(roots), "two runs share a trace"

    failed_checks = 0
    for run in runs:
        detail = details[run["run_id"]]
        root = root_of[run["run_id"]]
        check_run_span(root, run, detail)

        in_trace = [s for s in spans if trace_id(s) == trace_id(root)]
        step_spans = [s for s in in_trace if s["parent_id"] == span_id(root)]
        step_ids = {span_id(s) for s in step_spans}
        chat_spans = [s for s in in_trace if s["parent_id"] in step_ids]
        assert len(in_trace) == 1 + len(step_spans) + len(chat_spans), (
            f"{run['document']}: spans outside the run > step > chat tree: {describe(in_trace)}"
        )

        # Step spans: exactly the steps the store has, children of the run span.
        by_visit = {
            (attrs(s).get("handrail.node.name"), attrs(s).get("handrail.node.visit")): s
            for s in step_spans
        }
        assert len(by_visit) == len(step_spans) and sorted(by_visit, key=str) == sorted(
            ((s["node"], s["visit"]) for s in detail["steps"]), key=str
        ), f"{run['document']}: the run span's children are {describe(step_spans)}"
        for step in detail["steps"]:
            span = by_visit[(step["node"], step["visit"])]
            check_step_span(span, step, run)
            chats = [c for c in chat_spans if c["parent_id"] == span_id(span)]
            check_chat_spans(chats, step, run)
            failed_checks += len(attrs(span).get("handrail.check.failed") or [])

        # Tokens: the run's total is what its chat spans add up to.
        input_tokens = sum(attrs(c)["gen_ai.usage.input_tokens"] for c in chat_spans)
        output_tokens = sum(attrs(c)["gen_ai.usage.output_tokens"] for c in chat_spans)
        assert input_tokens + output_tokens == detail["tokens"], run["document"]
        if detail["tokens"]:
            assert attrs(root)["gen_ai.usage.input_tokens"] == input_tokens
            assert attrs(root)["gen_ai.usage.output_tokens"] == output_tokens

    assert failed_checks, "no check failed in the batch: the example no longer exercises checks"


def check_run_span(root: Span, run: dict[str, Any], detail: dict[str, Any]) -> None:
    a = attrs(root)
    assert root["name"] == f"invoke_workflow {detail['pipeline']}"
    assert root["span_kind"] == "CHAIN"
    assert a["gen_ai.operation.name"] == "invoke_workflow"
    assert a["gen_ai.workflow.name"] == detail["pipeline"]
    assert a["handrail.run.status"] == run["status"]
    assert a["handrail.run.id"] == run["run_id"]
    assert a["handrail.document.id"] == run["document"]
    if run["status"] == "failed":
        assert root["status_code"] == "ERROR", run["document"]
        assert a["error.type"] == run["error"]["type"], run["document"]
    else:
        assert root["status_code"] != "ERROR", run["document"]


def check_step_span(span: Span, step: dict[str, Any], run: dict[str, Any]) -> None:
    where = f"{run['document']}, {step['kind']} {step['node']}"
    a = attrs(span)
    assert span["name"] == f"{step['kind']} {step['node']}", where
    assert span["span_kind"] == ("GUARDRAIL" if step["kind"] == "review" else "CHAIN"), where
    assert a["handrail.run.id"] == run["run_id"], where
    assert a["handrail.node.name"] == step["node"], where
    assert a["handrail.node.kind"] == step["kind"], where
    assert a["handrail.step.status"] == step["status"], where
    assert a["handrail.attempts"] == step["attempts"], where
    llm = step["kind"] not in NON_LLM_KINDS
    if step["confidence"] is not None:
        assert a["handrail.confidence"] == pytest.approx(step["confidence"]), where
        assert a["handrail.confidence.source"] == step["confidence_source"], where
    elif llm:
        assert step["status"] == "failed", f"{where}: an LLM step without a confidence"
    if step["model"] is not None:
        assert a["gen_ai.request.model"] == step["model"], where
    if step["status"] == "failed":
        assert span["status_code"] == "ERROR", where
        assert a["error.type"], where

    # Evaluation events: one per check result, then the gate's decision.
    results = evaluations(span)
    assert all(r.get("gen_ai.evaluation.name") for r in results), where
    checks = [r for r in results if r["gen_ai.evaluation.name"] != GATE]
    gates = [r for r in results if r["gen_ai.evaluation.name"] == GATE]
    assert len(checks) == a.get("handrail.check.count", 0), where
    assert all(r["gen_ai.evaluation.score.label"] in ("pass", "fail") for r in checks), where
    failed = [
        r["gen_ai.evaluation.name"] for r in checks if r["gen_ai.evaluation.score.label"] == "fail"
    ]
    assert sorted(failed) == sorted(a.get("handrail.check.failed") or []), where
    if step["status"] == "needs_review":
        assert [g["gen_ai.evaluation.score.label"] for g in gates] == ["review"], where
        review = run["review"]
        assert review is not None and review["node"] == step["node"], where
        assert a["handrail.review.id"] == review["review_id"], where
        # Content capture is off: reasons handrail writes from numbers and field names are kept,
        # those quoting a check's or an error's message (which may quote the document) are not.
        assert gates[0]["gen_ai.evaluation.explanation"] == "; ".join(
            r["message"] if r["kind"] in SAFE_REASONS else redacted_reason(r)
            for r in review["reasons"]
        ), where
        assert not any(
            r["message"] in gates[0]["gen_ai.evaluation.explanation"]
            for r in review["reasons"]
            if r["kind"] not in SAFE_REASONS
        ), where
    elif llm and step["status"] == "completed":
        assert [g["gen_ai.evaluation.score.label"] for g in gates] == ["accepted"], where
        assert gates[0]["gen_ai.evaluation.score.value"] == pytest.approx(step["confidence"])
    elif not llm and step["kind"] != "review":
        assert not gates, f"{where}: a gate event on a node without a gate"


def check_chat_spans(chats: list[Span], step: dict[str, Any], run: dict[str, Any]) -> None:
    where = f"{run['document']}, {step['kind']} {step['node']}"
    if step["kind"] in NON_LLM_KINDS:
        assert not chats, f"{where}: model calls under a step that calls no model"
        return
    assert len(chats) == step["attempts"], f"{where}: {len(chats)} chat spans"
    for chat in chats:
        a = attrs(chat)
        assert chat["name"] == f"chat {MODEL}", where
        assert chat["span_kind"] == "LLM", where
        assert a["gen_ai.operation.name"] == "chat", where
        assert a["gen_ai.request.model"] == MODEL, where
        assert a["gen_ai.provider.name"] == MODEL, where
        assert a["handrail.node.name"] == step["node"], where
        assert isinstance(a["gen_ai.usage.input_tokens"], int), where
        assert a["gen_ai.usage.input_tokens"] > 0, where
        assert isinstance(a["gen_ai.usage.output_tokens"], int), where
    attempts = sorted(attrs(c)["handrail.attempt"] for c in chats)
    assert attempts == list(range(1, len(chats) + 1)), f"{where}: attempts {attempts}"
