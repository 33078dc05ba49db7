"""`--record DIR` and `--replay DIR` on `handrail run` and `handrail worker`."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .conftest import HAPPY, Invoke
from .triage import start_worker

READABLE = ("tickets/refund.txt", "tickets/sub/bug.md")
"""The tickets the model is asked about (the other two cannot be read, so never get that far)."""


@pytest.fixture(autouse=True)
def _no_recordings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HANDRAIL_RECORD_DIR", raising=False)
    monkeypatch.delenv("HANDRAIL_REPLAY_DIR", raising=False)


def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, building a model to call fails: what runs must come from the recordings."""

    def no_model(spec: str, **_: Any) -> Any:
        raise AssertionError(f"a replay built the model {spec!r}")

    monkeypatch.setattr("handrail.providers.specs.get_model", no_model)


def runs(result: Any) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.stderr
    return [{k: v for k, v in line.items() if k != "review"} for line in result.json_lines()]


def test_a_replay_prints_what_the_recorded_run_printed(
    cli: Invoke, tickets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = cli(
        "run",
        HAPPY,
        *READABLE,
        "--in-memory",
        "--json",
        "--model",
        "fake",
        "--record",
        "recordings",
    )
    offline(monkeypatch)
    replayed = cli("run", HAPPY, *READABLE, "--in-memory", "--json", "--replay", "recordings")

    assert recorded.exit_code == replayed.exit_code == 0
    assert replayed.stdout == recorded.stdout
    assert [line["status"] for line in replayed.json_lines()] == ["completed", "needs_review"]
    # classify, extract and draft for the refund; the bug waits for review after classify
    assert len(list(Path("recordings").glob("*.json"))) == 4


def test_a_durable_replay_into_another_database_matches(
    cli: Invoke, tickets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = cli("run", HAPPY, *READABLE, "--json", "--record", "recordings")
    offline(monkeypatch)
    replayed = cli("run", HAPPY, *READABLE, "--json", "--replay", "recordings", "--db", "other.db")

    assert runs(replayed) == runs(recorded)


def test_a_replay_miss_fails_that_document_only(
    cli: Invoke, tickets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli("run", HAPPY, "tickets/refund.txt", "--in-memory", "--record", "recordings")
    offline(monkeypatch)

    result = cli("run", HAPPY, *READABLE, "--in-memory", "--json", "--replay", "recordings")

    assert result.exit_code == 0
    refund, bug = result.json_lines()
    assert refund["status"] == "completed"
    assert bug["status"] == "failed"
    assert bug["error"]["type"] == "ReplayMiss"
    assert bug["error"]["message"].startswith(
        "no recording for `category` in `recordings` (model 'fake', key "
    )
    assert bug["error"]["message"].endswith(
        "record it first: handrail run TARGET INPUT... --model fake --record recordings (a "
        "changed prompt, document, schema, labels, params or node name is a new key)"
    )


def test_record_and_replay_together_are_a_cache(
    cli: Invoke, tickets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = cli(
        "run",
        HAPPY,
        "tickets/refund.txt",
        "--in-memory",
        "--json",
        "--record",
        "cache",
        "--replay",
        "cache",
    )
    assert len(list(Path("cache").glob("*.json"))) == 3
    both = cli(
        "run", HAPPY, *READABLE, "--in-memory", "--json", "--record", "cache", "--replay", "cache"
    )
    assert len(list(Path("cache").glob("*.json"))) == 4  # only the bug's question was new
    offline(monkeypatch)
    replayed = cli("run", HAPPY, *READABLE, "--in-memory", "--json", "--replay", "cache")

    assert replayed.stdout == both.stdout
    assert replayed.stdout.startswith(first.stdout)


def test_the_directory_can_come_from_the_environment(
    cli: Invoke, tickets: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = cli(
        "run", HAPPY, *READABLE, "--in-memory", "--json", env={"HANDRAIL_RECORD_DIR": "recordings"}
    )
    offline(monkeypatch)
    replayed = cli(
        "run", HAPPY, *READABLE, "--in-memory", "--json", env={"HANDRAIL_REPLAY_DIR": "recordings"}
    )

    assert len(list(Path("recordings").glob("*.json"))) == 4
    assert replayed.stdout == recorded.stdout


@pytest.mark.parametrize("option", ["--record", "--replay"])
def test_a_file_is_not_a_recordings_directory(cli: Invoke, tickets: Path, option: str) -> None:
    result = cli("run", HAPPY, *READABLE, "--in-memory", option, "tickets/refund.txt")

    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        "error: `tickets/refund.txt` is a file, not a directory; give a directory for recordings\n"
    )


def test_replaying_a_directory_that_does_not_exist(cli: Invoke, tickets: Path) -> None:
    result = cli("run", HAPPY, *READABLE, "--in-memory", "--replay", "nowhere")

    assert result.exit_code == 2
    assert result.stderr == (
        "error: no recordings at `nowhere`: the directory does not exist; record first: "
        "handrail run TARGET INPUT... --model MODEL --record nowhere\n"
    )


def test_the_model_picks_among_recorded_models(cli: Invoke, tickets: Path) -> None:
    for model in ("fake/a", "fake/b"):
        cli("run", HAPPY, *READABLE, "--in-memory", "-m", model, "--record", "recordings")

    unsure = cli("run", HAPPY, *READABLE, "--in-memory", "--replay", "recordings")
    chosen = cli(
        "run", HAPPY, *READABLE, "--in-memory", "--json", "-m", "fake/b", "--replay", "recordings"
    )

    assert unsure.exit_code == 2
    assert unsure.stderr == (
        "error: `recordings` holds recordings of several models ('fake/a', 'fake/b'); choose "
        "one: ReplayModel(..., model=...) or --model\n"
    )
    assert [line["status"] for line in chosen.json_lines()] == ["completed", "needs_review"]


def test_submit_leaves_recording_to_the_workers(cli: Invoke, tickets: Path) -> None:
    result = cli("run", HAPPY, *READABLE, "--submit", "--record", "recordings")

    assert result.exit_code == 2
    assert result.stderr == (
        "error: --submit runs nothing here, so nothing to record or replay; give --record and "
        "--replay to `handrail worker`\n"
    )


def test_a_worker_records_what_it_runs(
    cli: Invoke, tickets: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    worker = start_worker(tmp_path, HAPPY, "--db", db, "--record", "recordings")
    try:
        worker.first_line()
        submitted = cli(
            "run", HAPPY, *READABLE, "--db", db, "--submit", "--json", "--timeout", "60"
        )
    finally:
        code = worker.stop(signal.SIGTERM)
    assert code == 0, worker.output()

    offline(monkeypatch)
    replayed = cli("run", HAPPY, *READABLE, "--in-memory", "--json", "--replay", "recordings")

    assert len(list((tmp_path / "recordings").glob("*.json"))) == 4
    assert runs(replayed) == runs(submitted)


def test_a_worker_with_an_unusable_directory_says_so(tickets: Path, tmp_path: Path) -> None:
    # In a process of its own: a worker that wrongly started would serve until stopped.
    worker = start_worker(tmp_path, HAPPY, "--replay", "nowhere")
    try:
        code = worker.popen.wait(30)
    except subprocess.TimeoutExpired:
        worker.stop(signal.SIGTERM)
        raise AssertionError(f"the worker served:\n{worker.output()}") from None

    assert code == 2
    assert worker.err.read_text().startswith(
        "error: no recordings at `nowhere`: the directory does not"
    )
