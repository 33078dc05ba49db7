"""A decided review whose run did not finish (the command that decided it was cut off between
recording the decision and continuing) is finished by the next command that touches it:
`handrail review approve|reject|edit` again, or `handrail runs resume RUN_ID` (issue 12, B6).
The killed-mid-continuation cases are in tests/durable/test_recovery.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from .procs import Project, make_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def cut_off(project: Project, action: str = "approve", reviewer: str = "ana") -> tuple[str, str]:
    """A run of bug.txt waiting for review whose decision is recorded and never continued (as
    a `review approve` killed right after recording it leaves it): (run id, review id)."""
    line = project.run("bug.txt", "--rerun")
    assert line["status"] == "needs_review", line
    run_id, review_id = line["run_id"], line["review"]["review_id"]
    script = f"""
from dataclasses import replace
from handrail._utils import now
from handrail.core.records import ReviewDecision
from handrail.durable import SqlStore
decision = ReviewDecision.{action}({"" if action == "approve" else '"no", '}reviewer="{reviewer}")
with SqlStore("{project.db}") as store:
    stamped = replace(decision, review_id="{review_id}", decided_at=now())
    store.record_decision("{review_id}", stamped)
"""
    done = project.handrail_python(script)
    assert done.code == 0, done.stderr
    assert project.show(run_id)["status"] == "needs_review"
    return run_id, review_id


def test_approving_again_finishes_the_cut_off_run_and_says_so(project: Project) -> None:
    run_id, review_id = cut_off(project)
    done = project.handrail("review", "approve", review_id, "--reviewer", "ana")
    assert done.code == 0, done.stderr  # the decision asked for is the one recorded
    assert f"review {review_id} was already decided (approve by ana)" in done.stderr
    assert "finishing it now" in done.stderr
    assert f"run {run_id} is completed" in done.stdout
    assert project.show(run_id)["status"] == "completed"
    again = project.handrail("review", "approve", review_id)
    assert again.code == 1 and "already decided (approve by ana)" in again.stderr
    assert "finishing" not in again.stderr


def test_another_decision_on_a_cut_off_review_finishes_the_recorded_one_and_fails(
    project: Project,
) -> None:
    run_id, review_id = cut_off(project, "reject", "bob")
    done = project.handrail("review", "approve", review_id)
    assert done.code == 1, done.stdout
    assert "already decided (reject by bob)" in done.stderr
    assert f"run {run_id} is rejected" in done.stdout
    assert project.show(run_id)["status"] == "rejected"


def test_runs_resume_finishes_a_cut_off_run_and_leaves_a_finished_one(project: Project) -> None:
    run_id, _ = cut_off(project)
    done = project.handrail("runs", "resume", run_id)
    assert done.code == 0, done.stderr
    assert f"run {run_id} is completed" in done.stdout
    assert "never started: ran it here" in done.stdout
    again = project.handrail("runs", "resume", run_id)
    assert again.code == 0, again.stderr
    assert "nothing left to do" in again.stdout
    unknown = project.handrail("runs", "resume", "run_nope")
    assert unknown.code == 1 and "no run `run_nope`" in unknown.stderr
