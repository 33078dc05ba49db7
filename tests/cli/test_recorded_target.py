"""`handrail review` imports a pipeline's code from the target the user gives, or from the target
recorded in the database only when it is a file inside the current project folder (issue 12,
D15): whoever can write the database must not be able to make `review approve` import a file of
their choosing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from .procs import Project, make_project

PLANTED = """
from pathlib import Path

Path({marker!r}).write_text("imported")
from flow import pipeline  # noqa: E402,F401
"""


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def plant(project: Project, target: str) -> None:
    """What someone who can write the database does: point pipeline `flow` at other code."""
    path = project.db.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        changed = conn.execute(
            "UPDATE handrail_pipelines SET target = ? WHERE name = 'flow'", (target,)
        ).rowcount
    assert changed == 1


def paused_review(project: Project) -> str:
    line = project.run("bug.txt")
    assert line["status"] == "needs_review"
    review_id: str = line["review"]["review_id"]
    return review_id


@pytest.fixture
def outside(tmp_path: Path) -> tuple[Path, Path]:
    """A file outside the project that leaves a marker when imported (and the marker)."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    marker = tmp_path / "imported.txt"
    (folder / "planted.py").write_text(PLANTED.format(marker=str(marker)))
    return folder / "planted.py", marker


def test_a_recorded_target_inside_the_project_is_used(project: Project) -> None:
    review_id = paused_review(project)
    done = project.handrail("review", "approve", review_id)
    assert done.code == 0, done.stderr


def test_a_recorded_file_outside_the_project_is_never_imported(
    project: Project, outside: tuple[Path, Path]
) -> None:
    planted, marker = outside
    review_id = paused_review(project)
    plant(project, f"{planted}:pipeline")
    done = project.handrail("review", "approve", review_id)
    assert done.code != 0
    assert not marker.exists()
    assert f"{planted}:pipeline" in done.stderr and "--target" in done.stderr, done.stderr
    # the review is still pending: nothing was decided
    assert project.handrail("review", "list", "--json").json_lines()[0]["status"] == "pending"


def test_a_recorded_module_from_outside_the_project_is_never_imported(
    project: Project, outside: tuple[Path, Path]
) -> None:
    planted, marker = outside
    review_id = paused_review(project)
    plant(project, "planted:pipeline")
    done = project.handrail(
        "review", "approve", review_id, PYTHONPATH=f"{planted.parent}:{project.folder}"
    )
    assert done.code != 0
    assert not marker.exists()
    assert "planted:pipeline" in done.stderr and "--target" in done.stderr, done.stderr


def test_a_recorded_relative_path_climbing_out_is_refused(
    project: Project, outside: tuple[Path, Path]
) -> None:
    _, marker = outside
    review_id = paused_review(project)
    plant(project, "../elsewhere/planted.py:pipeline")
    done = project.handrail("review", "approve", review_id)
    assert done.code != 0 and not marker.exists()
    assert "--target" in done.stderr


def test_a_symlink_in_the_project_to_a_file_outside_is_refused(
    project: Project, outside: tuple[Path, Path]
) -> None:
    planted, marker = outside
    review_id = paused_review(project)
    (project.folder / "link.py").symlink_to(planted)
    plant(project, f"{project.folder / 'link.py'}:pipeline")
    done = project.handrail("review", "approve", review_id)
    assert done.code != 0 and not marker.exists()


def test_escalate_refuses_a_recorded_target_outside_the_project(
    project: Project, outside: tuple[Path, Path]
) -> None:
    planted, marker = outside
    project.edit_flow(
        "from handrail import Classify, Draft, Gate, PipelineBuilder",
        "from datetime import timedelta\n\n"
        "from handrail import Classify, Draft, Escalation, Gate, PipelineBuilder, ReviewPolicy",
    )
    project.edit_flow(
        'prompts=Path(__file__).parent / "prompts")',
        'prompts=Path(__file__).parent / "prompts", review=ReviewPolicy('
        "deadline=timedelta(milliseconds=1), on_deadline=Escalation.reject()))",
    )
    paused_review(project)
    plant(project, f"{planted}:pipeline")
    done = project.handrail("review", "escalate")
    assert done.code == 1 and not marker.exists()
    assert f"{planted}:pipeline" in done.stderr and "--target" in done.stderr


def test_a_target_the_user_gives_is_imported_wherever_it_is(
    project: Project, tmp_path: Path
) -> None:
    review_id = paused_review(project)
    elsewhere = tmp_path / "elsewhere-cwd"
    elsewhere.mkdir()
    target = f"{project.folder / 'flow.py'}:pipeline"
    refused = project.handrail("review", "approve", review_id, cwd=elsewhere)
    assert refused.code != 0 and "--target" in refused.stderr  # recorded, but not in this folder
    done = project.handrail("review", "approve", review_id, "--target", target, cwd=elsewhere)
    assert done.code == 0, done.stderr
