"""The pipeline version (fingerprint): what decides an output changes it, what does not leaves it,
and it is the same in every process (issue 12, A3)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from handrail import (
    Check,
    Classify,
    Draft,
    Extract,
    FakeModel,
    Gate,
    PipelineBuilder,
    Reply,
    Rule,
)
from handrail.core.pipeline import Pipeline
from handrail.core.records import ModelSpec, ReviewDecision, RunStatus
from handrail.core.runner import Runner
from handrail.core.store import InMemoryStore
from handrail.exceptions import InputError

ROOT = Path(__file__).parents[2]
TICKET = "Please refund me, I want a refund.\nOrder ID: A-17\nAmount: 100\n"


class Order(BaseModel):
    order_id: str
    amount: float


class OrderWithNote(BaseModel):
    order_id: str
    amount: float
    note: str | None = None


def positive(output: Any, state: Any) -> bool:
    return bool(output.amount > 0)


def positive_strict(output: Any, state: Any) -> bool:
    return bool(output.amount > 10)


def doubled(state: Any) -> float:
    return float(state["order"].amount * 2)


def build(
    *,
    accept: float = 0.8,
    labels: tuple[str, ...] = ("refund", "bug"),
    schema: type[BaseModel] = Order,
    check: Callable[[Any, Any], bool] = positive,
    on_fail: str = "review",
    draft_prompt: str = "draft.md",
    prompts: Path | None = None,
    description: str = "",
) -> Pipeline:
    return (
        PipelineBuilder("p", prompts=prompts, description=description)
        .add(Classify("category", labels=list(labels), gate=Gate(accept=accept)))
        .add(
            Extract("order", schema, checks=[Check(check, on_fail=on_fail)]),  # type: ignore[arg-type]
            after="category",
        )
        .add(Rule("total", doubled), after="order")
        .add(Draft("reply", prompt=draft_prompt), after="total")
        .build()
    )


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    (tmp_path / "draft.md").write_text("Draft a reply to {{ text }}")
    return tmp_path


def test_a_fingerprint_is_short_and_the_same_for_the_same_definition(prompts: Path) -> None:
    version = build(prompts=prompts).fingerprint
    assert len(version) == 12 and int(version, 16) >= 0
    assert build(prompts=prompts).fingerprint == version


@pytest.mark.parametrize(
    "change",
    [
        {"accept": 0.9},
        {"labels": ("refund", "bug", "question")},
        {"schema": OrderWithNote},
        {"check": positive_strict},
        {"on_fail": "fail"},
    ],
    ids=["gate", "labels", "schema", "check", "check-on-fail"],
)
def test_what_decides_an_output_changes_the_fingerprint(
    prompts: Path, change: dict[str, Any]
) -> None:
    assert build(prompts=prompts, **change).fingerprint != build(prompts=prompts).fingerprint


def test_a_prompt_text_changes_the_fingerprint(prompts: Path) -> None:
    before = build(prompts=prompts).fingerprint
    (prompts / "draft.md").write_text("Draft a warm reply to {{ text }}")
    assert build(prompts=prompts).fingerprint != before


def test_a_rule_whose_code_changes_changes_the_fingerprint(tmp_path: Path) -> None:
    def made(factor: int) -> Pipeline:
        namespace: dict[str, Any] = {}
        source = f"def doubled(state):\n    return state.text * {factor}\n"
        exec(compile(source, str(tmp_path / "rules.py"), "exec"), namespace)
        return PipelineBuilder("p").add(Rule("r", namespace["doubled"])).build()

    assert made(2).fingerprint == made(2).fingerprint
    assert made(3).fingerprint != made(2).fingerprint


def test_a_description_does_not_change_the_fingerprint(prompts: Path) -> None:
    plain = build(prompts=prompts).fingerprint
    assert build(prompts=prompts, description="Tickets, triaged.").fingerprint == plain


def test_the_fingerprint_is_the_same_in_another_process() -> None:
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from tests.pipelines.happy import pipeline; print(pipeline.fingerprint)"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    from tests.pipelines.happy import pipeline

    assert seen == {pipeline.fingerprint}


def test_the_run_id_depends_on_the_model_and_the_pipeline(prompts: Path) -> None:
    pipeline = build(prompts=prompts)
    fake = Runner(pipeline, model=FakeModel())
    assert Runner(pipeline, model=FakeModel()).run_id_for("x") == fake.run_id_for("x")
    assert Runner(pipeline, model=FakeModel(name="fake/alpha")).run_id_for("x") != (
        fake.run_id_for("x")
    )
    spec = ModelSpec(name="fake", params={"temperature": 0.2})
    assert Runner(pipeline, model=FakeModel(), model_spec=spec).run_id_for("x") != (
        fake.run_id_for("x")
    )
    assert Runner(build(prompts=prompts, accept=0.9), model=FakeModel()).run_id_for("x") != (
        fake.run_id_for("x")
    )


async def test_a_run_records_its_model_and_pipeline_version(prompts: Path) -> None:
    pipeline = build(prompts=prompts)
    model = FakeModel({"category": Reply("refund", confidence=0.99)}, name="fake/alpha")
    record = await Runner(pipeline, model=model).run("Order A-1, amount 5")
    assert record.model == ModelSpec(name="fake/alpha")
    assert record.pipeline_version == pipeline.fingerprint


async def test_rerun_true_runs_again_and_the_default_reuses(prompts: Path) -> None:
    runner = Runner(build(prompts=prompts), model=FakeModel())
    first = await runner.run("refund please")
    assert (await runner.run("refund please")).run_id == first.run_id
    assert (await runner.run("refund please", rerun=True)).run_id != first.run_id


async def test_a_paused_run_continues_with_the_model_it_started_with(prompts: Path) -> None:
    """`model_for` builds each run's own model from its record; without it the runner's own."""
    pipeline = build(prompts=prompts, accept=0.99)
    alpha = FakeModel(name="fake/alpha")
    paused = await Runner(pipeline, model=alpha).run(TICKET)
    assert paused.review is not None and paused.model == ModelSpec(name="fake/alpha")

    built: list[ModelSpec] = []

    def build_model(spec: ModelSpec) -> FakeModel:
        built.append(spec)
        return FakeModel(name=spec.name)

    store = InMemoryStore()
    store.save_run(paused)
    runner = Runner(pipeline, model=FakeModel(name="fake/beta"), store=store, model_for=build_model)
    done = await runner.decide(paused.review.review_id, ReviewDecision.approve(reviewer="ana"))
    assert built == [ModelSpec(name="fake/alpha")] and done.model == ModelSpec(name="fake/alpha")
    later = [s.model for s in done.steps[len(paused.steps) + 1 :] if s.kind != "rule"]
    assert later and set(later) == {"fake/alpha"}, done.steps


async def test_a_run_whose_model_cannot_be_built_fails_saying_so(prompts: Path) -> None:
    pipeline = build(prompts=prompts, accept=0.99)
    paused = await Runner(pipeline, model=FakeModel(name="fake/alpha")).run(TICKET)
    assert paused.review is not None
    store = InMemoryStore()
    store.save_run(paused)

    def unbuildable(spec: ModelSpec) -> FakeModel:
        raise InputError(f"no recordings at `gone/` for {spec.name}")

    runner = Runner(pipeline, model=FakeModel(), store=store, model_for=unbuildable)
    done = await runner.decide(paused.review.review_id, ReviewDecision.approve(reviewer="ana"))
    assert done.status is RunStatus.FAILED and done.error is not None
    assert "fake/alpha" in done.error.message and "no recordings at `gone/`" in done.error.message
    assert len(done.steps) == len(paused.steps) + 1, "no model answered it (only the decision)"
