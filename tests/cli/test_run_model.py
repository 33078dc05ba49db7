"""A paused run continues with the model it started with (issue 12, A2), in processes of their
own: `handrail run --model X`, then `handrail review approve|edit|reject|escalate` or a
`handrail worker` finish it with X unless told otherwise (and say so when told otherwise)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest

from .procs import Project, make_project
from .triage import start_worker, wait_for


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def paused(project: Project, *args: str) -> tuple[str, str]:
    """Run bug.txt (it waits for review); its run id and review id."""
    line = project.run("bug.txt", *args)
    assert line["status"] == "needs_review", line
    return line["run_id"], line["review"]["review_id"]


def test_approve_continues_with_the_model_the_run_started_with(project: Project) -> None:
    run_id, review_id = paused(project, "--model", "fake/alpha")
    done = project.handrail("review", "approve", review_id, "--json")
    assert done.code == 0, done.stderr
    assert done.json()["status"] == "completed"
    assert project.step_models(run_id) == {"category": "fake/alpha", "reply": "fake/alpha"}
    assert "--model" not in done.stderr  # nothing overridden, nothing to say
    assert project.show(run_id)["model"]["name"] == "fake/alpha"


def test_edit_and_reject_keep_the_run_model_too(project: Project) -> None:
    project.edit_flow('"bug", "question"]', '"bug", "question"], on_exhausted="review"')
    run_id, review_id = paused(project, "--model", "fake/alpha")
    done = project.handrail("review", "edit", review_id, "--set", "category=bug", "--json")
    assert done.code == 0, done.stderr
    assert project.step_models(run_id)["reply"] == "fake/alpha"


def test_model_given_to_approve_overrides_and_says_so(project: Project) -> None:
    run_id, review_id = paused(project, "--model", "fake/alpha")
    done = project.handrail("review", "approve", review_id, "--model", "fake/beta")
    assert done.code == 0, done.stderr
    assert project.step_models(run_id) == {"category": "fake/alpha", "reply": "fake/beta"}
    said = [line for line in done.stderr.splitlines() if "fake/beta" in line]
    assert len(said) == 1 and "fake/alpha" in said[0], done.stderr
    assert project.show(run_id)["model"]["name"] == "fake/beta"


def test_the_same_model_given_again_says_nothing(project: Project) -> None:
    _, review_id = paused(project, "--model", "fake/alpha")
    done = project.handrail("review", "approve", review_id, "--model", "fake/alpha")
    assert done.code == 0, done.stderr
    assert done.stderr.strip() == ""


def test_a_recording_run_keeps_recording_after_approval(project: Project) -> None:
    recordings = project.folder / "recordings"
    run_id, review_id = paused(project, "--model", "fake", "--record", "recordings")
    nodes = lambda: sorted(  # noqa: E731
        json.loads(p.read_text())["request"]["node"] for p in recordings.glob("*.json")
    )
    assert nodes() == ["category"]
    done = project.handrail("review", "approve", review_id)
    assert done.code == 0, done.stderr
    assert nodes() == ["category", "reply"]
    spec = project.show(run_id)["model"]
    assert spec["record"] == str(recordings.resolve()) and spec["replay"] is None


def test_the_run_record_keeps_no_secret(project: Project) -> None:
    run_id, _ = paused(project, "--model", "fake/alpha", "--record", "recordings")
    stored = json.dumps(project.show(run_id)["model"])
    assert "key" not in stored.lower() and "secret" not in stored.lower()


def test_escalate_continues_each_run_with_its_own_model(project: Project) -> None:
    project.edit_flow(
        "from handrail import Classify, Draft, Gate, PipelineBuilder",
        "from datetime import timedelta\n\n"
        "from handrail import Classify, Draft, Escalation, Gate, PipelineBuilder, ReviewPolicy",
    )
    project.edit_flow(
        'prompts=Path(__file__).parent / "prompts")',
        'prompts=Path(__file__).parent / "prompts", review=ReviewPolicy('
        'deadline=timedelta(milliseconds=1), on_deadline=Escalation.default("bug")))',
    )
    run_id, _ = paused(project, "--model", "fake/alpha")
    done = project.handrail("review", "escalate")
    assert done.code == 0, done.stderr
    assert project.step_models(run_id)["reply"] == "fake/alpha"


def test_a_worker_runs_each_submitted_run_with_its_model(project: Project) -> None:
    project.edit_flow("ACCEPT = 0.9", "ACCEPT = 0.5")  # refund.txt completes
    queued = project.handrail(
        "run", project.target, "refund.txt", "--submit", "--no-wait", "--model", "fake/alpha"
    )
    assert queued.code == 0, queued.stderr
    run_id = queued.stdout.split()[0]
    worker = start_worker(project.folder, project.target, env=project.env())
    try:
        worker.first_line()
        wait_for(lambda: project.status(run_id) == "completed", what="the submitted run")
    finally:
        assert worker.stop() == 0, worker.output()
    assert project.step_models(run_id) == {"category": "fake/alpha", "reply": "fake/alpha"}


def test_a_worker_continues_decided_reviews_with_their_runs_models(project: Project) -> None:
    """A decision recorded whose continuation never ran (the deciding process died) is finished
    by a worker: with the run's model, though the worker was started without one."""
    run_id, review_id = paused(project, "--model", "fake/alpha")
    script = textwrap.dedent(
        f"""
        from handrail.core.records import ReviewDecision
        from handrail.durable import SqlStore

        store = SqlStore({project.db!r})
        store.record_decision({review_id!r}, ReviewDecision.approve(reviewer="ana"))
        store.close()
        """
    )
    decided = project.handrail_python(script)
    assert decided.code == 0, decided.stderr
    worker = start_worker(project.folder, project.target, env=project.env())
    try:
        worker.first_line()
        wait_for(lambda: project.status(run_id) == "completed", what="the continuation")
    finally:
        assert worker.stop() == 0, worker.output()
    assert project.step_models(run_id)["reply"] == "fake/alpha"


def test_a_worker_given_a_model_overrides_and_says_so(project: Project) -> None:
    project.edit_flow("ACCEPT = 0.9", "ACCEPT = 0.5")  # refund.txt completes
    queued = project.handrail(
        "run", project.target, "refund.txt", "--submit", "--no-wait", "--model", "fake/alpha"
    )
    run_id = queued.stdout.split()[0]
    worker = start_worker(project.folder, project.target, "--model", "fake/beta", env=project.env())
    try:
        worker.first_line()
        wait_for(lambda: project.status(run_id) == "completed", what="the run")
    finally:
        assert worker.stop() == 0, worker.output()
    assert project.step_models(run_id)["reply"] == "fake/beta"
    assert "fake/beta" in worker.err.read_text()


@pytest.mark.slow
def test_a_run_on_the_local_model_is_approved_and_finished_by_it(project: Project) -> None:
    pytest.importorskip("llama_cpp")
    project.edit_flow("ACCEPT = 0.9", "ACCEPT = 0.0")  # the Review gate is what pauses
    project.edit_flow("from handrail import ", "from handrail import Review, ")
    project.edit_flow(
        '.add(Draft("reply", prompt="reply.md"), after="category")',
        '.add(Review("check", of="category"), after="category")\n'
        '        .add(Draft("reply", prompt="reply.md"), after="check")',
    )
    line = project.run("bug.txt", "--model", "local")
    assert line["status"] == "needs_review", line
    done = project.handrail("review", "approve", line["review"]["review_id"], timeout=600)
    assert done.code == 0, done.stderr
    assert project.step_models(line["run_id"])["reply"] == "local/gemma3-270m"


def test_a_run_whose_model_cannot_be_built_here_is_not_continued_with_another(
    project: Project,
) -> None:
    recorded = project.handrail(
        "run", project.target, "bug.txt", "--in-memory", "--model", "fake", "--record", "rec"
    )
    assert recorded.code == 0, recorded.stderr
    _, review_id = paused(project, "--replay", "rec")  # answered from the recordings
    shutil.rmtree(project.folder / "rec")  # which are gone when the review is decided
    refused = project.handrail("review", "approve", review_id)
    assert refused.code == 2
    assert "cannot be built here" in refused.stderr and "--model" in refused.stderr
    assert project.handrail("review", "list", "--json").json_lines()[0]["status"] == "pending"
    done = project.handrail("review", "approve", review_id, "--model", "fake")
    assert done.code == 0, done.stderr
