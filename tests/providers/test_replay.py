"""`RecordingModel` and `ReplayModel`: a recorded run replays exactly, offline."""

from __future__ import annotations

import asyncio
import json
import pickle
import runpy
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from handrail import (
    Classify,
    Confidence,
    Document,
    Fail,
    FakeModel,
    PipelineBuilder,
    RecordingModel,
    ReplayModel,
    Reply,
    Runner,
    RunRecord,
    RunStatus,
    Usage,
)
from handrail.core.model import Message, ModelRequest, ModelResponse
from handrail.exceptions import InputError, PermanentProviderError, RateLimited, ReplayMiss
from handrail.providers.replay import VERSION, request_key

# The fixture pipeline, read from its file (this folder has no conftest putting `tests` on the
# import path).
HAPPY = runpy.run_path(str(Path(__file__).parents[1] / "pipelines" / "happy.py"))["pipeline"]
REFUND = "Please refund me, I want a refund.\nOrder ID: A-17\nAmount: 100\n"


def scripted() -> FakeModel:
    """Every kind of signal a response carries, and an invalid first answer that is re-asked."""
    return FakeModel(
        {
            "category": Reply(
                "refund",
                label_scores={"refund": 0.91, "bug": 0.06, "question": 0.03},
                source="logprobs",
                usage=Usage(input_tokens=40, output_tokens=1, cost=None),
            ),
            "order": [
                Fail("invalid_json"),
                Reply(
                    {"order_id": "A-17", "amount": 100.0},
                    field_confidence={"order_id": 0.99, "amount": 0.8},
                    usage=Usage(input_tokens=90, output_tokens=12, cost=0.0004),
                ),
            ],
            "reply": Reply("Dear customer, your refund is on its way.", confidence=0.7),
        },
        heuristic=False,
    )


def timeless(record: RunRecord) -> RunRecord:
    """A run record without what the clock decides (when, how long)."""
    steps = tuple(
        replace(
            s,
            started_at=None,
            duration_s=0.0,
            attempts=tuple(replace(a, duration_s=0.0) for a in s.attempts),
        )
        for s in record.steps
    )
    return replace(record, steps=steps, started_at=None, ended_at=None, duration_s=0.0)


def request(**changes: Any) -> ModelRequest:
    base = ModelRequest(
        node="category",
        kind="classify",
        messages=(Message(role="user", content="Please refund me"),),
        labels=("refund", "bug"),
        run_id="run-1",
        document_id="a.txt",
        params={"temperature": 0.0},
    )
    return replace(base, **changes)


def files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


async def test_a_recorded_run_replays_exactly(tmp_path: Path) -> None:
    fake = scripted()
    recorded = await Runner(HAPPY, model=RecordingModel(fake, tmp_path)).run(
        Document(id="a.txt", text=REFUND)
    )
    replayed = await Runner(HAPPY, model=ReplayModel(tmp_path)).run(
        Document(id="a.txt", text=REFUND)
    )

    assert timeless(replayed) == timeless(recorded)
    # What the comparison covers, spelled out: the re-ask, the sources, the unknown cost.
    assert recorded.status is RunStatus.COMPLETED
    order = next(s for s in replayed.steps if s.node == "order")
    assert [(a.kind, a.outcome) for a in order.attempts] == [
        ("call", "invalid_output"),
        ("reask", "ok"),
    ]
    assert order.field_confidence == {
        "order_id": Confidence(value=0.99, source="scripted"),
        "amount": Confidence(value=0.8, source="scripted"),
    }
    category = next(s for s in replayed.steps if s.node == "category")
    assert category.confidence == Confidence(value=0.91, source="logprobs")
    assert category.usage.cost is None and replayed.usage.cost is None
    assert replayed.usage.total_tokens == recorded.usage.total_tokens > 0
    # Four answers (the invalid one included), one file each; the fake was asked four times.
    assert len(fake.calls) == 4
    assert len(files(tmp_path)) == 4


async def test_replay_never_calls_a_model_and_returns_the_recorded_response(
    tmp_path: Path,
) -> None:
    answer = ModelResponse(
        output={"order_id": "A-17"},
        usage=Usage(input_tokens=3, output_tokens=4, cost=None),
        model="provider/model-2024-01-01",
        confidence=Confidence(value=0.4, source="self_reported"),
        field_confidence={"order_id": Confidence(value=0.3, source="logprobs")},
        label_scores={"refund": 0.25},
        finish_reason="length",
    )
    RecordingModel(FakeModel(name="provider/model"), tmp_path).record(request(), answer)

    replay = ReplayModel(tmp_path)

    assert replay.name == "provider/model"
    assert await replay.generate(request()) == answer


async def test_keys_leave_out_run_document_and_attempt(tmp_path: Path) -> None:
    recorder = RecordingModel(FakeModel({"category": Reply("refund")}), tmp_path)
    await recorder.generate(request())

    elsewhere = request(run_id="run-2", document_id="b.txt", attempt=3)
    assert request_key("fake", elsewhere) == request_key("fake", request())
    assert (await ReplayModel(tmp_path).generate(elsewhere)).output == "refund"


@pytest.mark.parametrize(
    "change",
    [
        {"params": {"temperature": 0.7}},
        {"messages": (Message(role="user", content="Please refund me!"),)},
        {"messages": (Message(role="system", content="Please refund me"),)},
        {"labels": ("refund", "bug", "question")},
        {"output_schema": {"type": "string"}},
        {"kind": "summarize"},
        {"node": "category2"},
    ],
    ids=["params", "content", "role", "labels", "schema", "kind", "node"],
)
def test_what_decides_an_answer_is_in_the_key(change: dict[str, Any]) -> None:
    assert request_key("fake", request(**change)) != request_key("fake", request())


def test_the_model_is_in_the_key() -> None:
    assert request_key("fake/a", request()) != request_key("fake/b", request())


async def test_two_params_make_two_recordings(tmp_path: Path) -> None:
    recorder = RecordingModel(FakeModel(), tmp_path)
    await recorder.generate(request(params={"temperature": 0.0}))
    await recorder.generate(request(params={"temperature": 0.7}))

    recorded = [json.loads(p.read_text()) for p in files(tmp_path)]
    assert sorted(r["request"]["params"]["temperature"] for r in recorded) == [0.0, 0.7]
    assert all(r["version"] == VERSION and r["model"] == "fake" for r in recorded)


async def test_a_miss_names_the_node_key_directory_and_fix(tmp_path: Path) -> None:
    await RecordingModel(FakeModel(), tmp_path).generate(request())
    missing = request(node="urgency")
    key = request_key("fake", missing)

    with pytest.raises(ReplayMiss) as caught:
        await ReplayModel(tmp_path).generate(missing)

    assert str(caught.value) == (
        f"no recording for `urgency` in `{tmp_path}` (model 'fake', key {key}); record it "
        f"first: handrail run TARGET INPUT... --model fake --record {tmp_path} (a changed "
        "prompt, document, schema, labels, params or node name is a new key)"
    )
    assert (caught.value.node, caught.value.key) == ("urgency", key)
    assert isinstance(caught.value, PermanentProviderError)
    restored = pickle.loads(pickle.dumps(caught.value))  # errors travel in durable checkpoints
    assert (type(restored), str(restored), restored.key) == (ReplayMiss, str(caught.value), key)


async def test_a_miss_fails_its_run_only(tmp_path: Path) -> None:
    await Runner(HAPPY, model=RecordingModel(scripted(), tmp_path)).run(REFUND)
    runner = Runner(HAPPY, model=ReplayModel(tmp_path))

    known, unknown = await runner.run_many([REFUND, "A different ticket.\n"])

    assert known.status is RunStatus.COMPLETED
    assert unknown.status is RunStatus.FAILED
    assert unknown.error is not None and unknown.error.type == "ReplayMiss"
    assert unknown.error.message.startswith("no recording for `category` in ")
    assert [(s.node, s.status.value) for s in unknown.steps] == [("category", "failed")]


async def test_a_miss_goes_to_the_fallback_which_records_only_when_told(tmp_path: Path) -> None:
    await RecordingModel(FakeModel(), tmp_path).generate(request())
    before = files(tmp_path)
    plain = ReplayModel(tmp_path, fallback=FakeModel({"urgency": Reply("high")}))

    assert (await plain.generate(request(node="urgency"))).output == "high"
    assert files(tmp_path) == before

    fallback = FakeModel({"urgency": Reply("high")})
    cache = ReplayModel(tmp_path, fallback=RecordingModel(fallback, tmp_path))
    for _ in range(2):
        assert (await cache.generate(request(node="urgency"))).output == "high"
    assert len(fallback.calls) == 1  # the second call replayed what the first recorded
    assert len(files(tmp_path)) == len(before) + 1


async def test_errors_are_not_recorded(tmp_path: Path) -> None:
    recorder = RecordingModel(FakeModel({"category": Fail("rate_limit")}), tmp_path)

    with pytest.raises(RateLimited):
        await recorder.generate(request())

    assert files(tmp_path) == []


async def test_sampled_answers_replay_in_order_then_go_round(tmp_path: Path) -> None:
    answers = [Reply("refund", confidence=0.9), Reply("bug", confidence=0.6), Reply("refund")]
    recorder = RecordingModel(FakeModel({"category": answers}), tmp_path)
    for _ in answers:
        await recorder.generate(request())

    replay = ReplayModel(tmp_path)
    got = [await replay.generate(request()) for _ in range(4)]

    assert [r.output for r in got] == ["refund", "bug", "refund", "refund"]
    assert [r.confidence for r in got[:2]] == [
        Confidence(value=0.9, source="scripted"),
        Confidence(value=0.6, source="scripted"),
    ]
    assert got[3] == got[0]


async def test_recording_again_replaces_entries_instead_of_adding(tmp_path: Path) -> None:
    for label in ("refund", "bug"):
        session = RecordingModel(FakeModel({"category": Reply(label)}), tmp_path)
        await session.generate(request())

    (path,) = files(tmp_path)
    assert [e["response"]["output"] for e in json.loads(path.read_text())["responses"]] == ["bug"]


async def test_concurrent_tasks_recording_one_key_keep_every_answer(tmp_path: Path) -> None:
    count = iter(range(100))
    fake = FakeModel({"category": lambda _: Reply(f"answer-{next(count)}", latency=0.001)})
    recorder = RecordingModel(fake, tmp_path)

    await asyncio.gather(*(recorder.generate(request()) for _ in range(20)))

    (path,) = files(tmp_path)
    outputs = [e["response"]["output"] for e in json.loads(path.read_text())["responses"]]
    assert sorted(outputs) == sorted(f"answer-{i}" for i in range(20))
    assert list(tmp_path.glob(".*.tmp")) == []


def test_threads_recording_one_key_at_once_leave_a_valid_file(tmp_path: Path) -> None:
    shared = RecordingModel(FakeModel({"category": Reply("shared")}), tmp_path / "shared")
    start = threading.Barrier(16)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        # Half share one recorder (one session), half have their own (like separate processes).
        own = RecordingModel(FakeModel({"category": Reply(f"own-{n}")}), tmp_path / "own")
        recorder = shared if n % 2 else own
        start.wait()
        try:
            for _ in range(5):
                asyncio.run(recorder.generate(request()))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    (shared_file,) = files(tmp_path / "shared")
    assert len(json.loads(shared_file.read_text())["responses"]) == 40
    (own_file,) = files(tmp_path / "own")
    own = json.loads(own_file.read_text())["responses"]
    assert len(own) == 5  # each session writes entries 0..4: the last writer wins each one
    assert all(e["response"]["output"].startswith("own-") for e in own)
    assert list(tmp_path.glob("*/.*.tmp")) == []
    assert asyncio.run(ReplayModel(tmp_path / "own").generate(request())).output.startswith("own-")


async def test_a_damaged_recording_is_named(tmp_path: Path) -> None:
    await RecordingModel(FakeModel(), tmp_path).generate(request())
    (path,) = files(tmp_path)
    path.write_text('{"version": 1, "key": "')

    with pytest.raises(InputError, match=rf"^recording `{path}` cannot be read \(.*\); delete"):
        ReplayModel(tmp_path)

    path.write_text(json.dumps({"version": 1, "key": path.stem, "model": "fake"}))
    with pytest.raises(InputError, match=rf"^recording `{path}` is damaged \('responses'\)"):
        ReplayModel(tmp_path)


async def test_a_recording_of_another_version_is_refused(tmp_path: Path) -> None:
    await RecordingModel(FakeModel(), tmp_path).generate(request())
    (path,) = files(tmp_path)
    path.write_text(json.dumps({**json.loads(path.read_text()), "version": 2}))

    with pytest.raises(InputError) as caught:
        ReplayModel(tmp_path)

    assert str(caught.value) == (
        f"recording `{path}` has format version 2 and this handrail reads version 1; use the "
        "handrail that wrote it, or delete it and record again"
    )


async def test_a_recording_damaged_during_a_replay_fails_that_call(tmp_path: Path) -> None:
    replay = ReplayModel(tmp_path, model="fake")
    broken = tmp_path / f"{request_key('fake', request())}.json"
    broken.write_text("not json")

    with pytest.raises(PermanentProviderError, match=rf"^recording `{broken}` cannot be read"):
        await replay.generate(request())


async def test_the_model_chooses_among_recorded_models(tmp_path: Path) -> None:
    for name in ("fake/a", "fake/b"):
        await RecordingModel(FakeModel(name=name), tmp_path).generate(request())

    with pytest.raises(InputError, match=r"several models \('fake/a', 'fake/b'\); choose one"):
        ReplayModel(tmp_path)
    with pytest.raises(InputError, match=r"no recordings of model 'fake/c' in .* \(it holds"):
        ReplayModel(tmp_path, model="fake/c")
    chosen = ReplayModel(tmp_path, model="fake/b")
    assert chosen.name == "fake/b"
    assert (await chosen.generate(request())).model == "fake/b"


def test_directories_that_cannot_hold_recordings(tmp_path: Path) -> None:
    a_file = tmp_path / "a.txt"
    a_file.write_text("x")

    with pytest.raises(InputError, match=r"is a file, not a directory"):
        RecordingModel(FakeModel(), a_file)
    with pytest.raises(InputError, match=r"is a file, not a directory"):
        ReplayModel(a_file)
    with pytest.raises(InputError, match=r"^no recordings at `.*missing`: the directory does"):
        ReplayModel(tmp_path / "missing")
    RecordingModel(FakeModel(), tmp_path / "new" / "dir")
    assert (tmp_path / "new" / "dir").is_dir()


async def test_a_pipeline_node_with_params_replays(tmp_path: Path) -> None:
    pipeline = (
        PipelineBuilder("params")
        .add(Classify("c", labels=["a", "b"], gate=None, params={"temperature": 0.3}))
        .build()
    )
    recorded = await Runner(pipeline, model=RecordingModel(FakeModel(), tmp_path)).run("a text")
    (path,) = files(tmp_path)
    assert json.loads(path.read_text())["request"]["params"] == {"temperature": 0.3}
    replayed = await Runner(pipeline, model=ReplayModel(tmp_path)).run("a text")
    assert timeless(replayed) == timeless(recorded)


def test_replay_needs_no_provider_installed() -> None:
    code = (
        "import sys, handrail.providers.replay, handrail; "
        "assert 'litellm' not in sys.modules, 'litellm imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
