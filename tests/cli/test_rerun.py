"""A rerun never returns results made with another model or pipeline (issue 12, A3): what
decides an output is part of what makes two runs the same; reused results are counted;
`--rerun` forces new runs; `runs list` shows each run's model and pipeline version."""

from __future__ import annotations

from pathlib import Path

import pytest

from .procs import Project, make_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return make_project(tmp_path / "project")


def test_another_model_runs_the_document_again(project: Project) -> None:
    project.edit_flow("ACCEPT = 0.9", "ACCEPT = 0.5")  # refund.txt completes
    first = project.run("refund.txt", "--model", "fake")
    second = project.run("refund.txt", "--model", "fake/alpha")
    assert second["run_id"] != first["run_id"]
    assert project.step_models(second["run_id"]) == {
        "category": "fake/alpha",
        "reply": "fake/alpha",
    }
    again = project.run("refund.txt", "--model", "fake/alpha")
    assert again["run_id"] == second["run_id"]


def test_a_changed_prompt_runs_the_document_again(project: Project) -> None:
    first = project.run("refund.txt")
    prompt = project.folder / "prompts" / "reply.md"
    prompt.write_text(prompt.read_text().replace("short, polite", "short, warm"))
    second = project.run("refund.txt")
    assert second["run_id"] != first["run_id"]
    assert (
        project.show(second["run_id"])["pipeline_version"]
        != (project.show(first["run_id"])["pipeline_version"])
    )


def test_a_changed_gate_runs_the_document_again(project: Project) -> None:
    first = project.run("bug.txt")
    assert first["status"] == "needs_review"
    project.edit_flow("ACCEPT = 0.9", "ACCEPT = 0.1")
    second = project.run("bug.txt")
    assert second["run_id"] != first["run_id"]
    assert second["status"] == "completed"


def test_the_summary_counts_results_reused_from_earlier_runs(project: Project) -> None:
    first = project.handrail("run", project.target, "refund.txt", "bug.txt")
    assert first.code == 0, first.stderr
    assert "reused" not in first.stdout + first.stderr
    second = project.handrail("run", project.target, "refund.txt", "bug.txt")
    assert second.code == 0, second.stderr
    assert "2 reused from earlier runs" in second.stdout, second.stdout
    project.handrail("run", project.target, "refund.txt", "--model", "fake/alpha")
    third = project.handrail(
        "run", project.target, "refund.txt", "bug.txt", "--model", "fake/alpha"
    )
    assert "1 reused from earlier runs" in third.stdout, third.stdout


def test_json_lines_say_which_results_were_reused(project: Project) -> None:
    first = project.run("refund.txt")
    assert first["reused"] is False
    assert project.run("refund.txt")["reused"] is True


def test_rerun_forces_new_runs(project: Project) -> None:
    project.edit_flow("ACCEPT = 0.9", "ACCEPT = 0.5")  # refund.txt completes
    first = project.run("refund.txt")
    again = project.run("refund.txt", "--rerun")
    assert again["run_id"] != first["run_id"] and again["reused"] is False
    assert again["status"] == "completed"
    summary = project.handrail("run", project.target, "refund.txt", "--rerun")
    assert "reused" not in summary.stdout


def test_runs_list_shows_the_model_and_the_pipeline_version(project: Project) -> None:
    fake = project.run("refund.txt")
    alpha = project.run("refund.txt", "--model", "fake/alpha")
    listed = project.handrail("runs", "list", "--json")
    assert listed.code == 0, listed.stderr
    by_id = {line["run_id"]: line for line in listed.json_lines()}
    assert by_id[fake["run_id"]]["model"] == "fake"
    assert by_id[alpha["run_id"]]["model"] == "fake/alpha"
    version = by_id[fake["run_id"]]["pipeline_version"]
    assert version and version == by_id[alpha["run_id"]]["pipeline_version"]
    shown = project.handrail("runs", "list", COLUMNS="250")
    assert "fake/alpha" in shown.stdout and version in shown.stdout, shown.stdout


def test_submitted_runs_of_another_model_are_runs_of_their_own(project: Project) -> None:
    first = project.handrail(
        "run", project.target, "refund.txt", "--submit", "--no-wait", "--model", "fake"
    )
    second = project.handrail(
        "run", project.target, "refund.txt", "--submit", "--no-wait", "--model", "fake/alpha"
    )
    assert first.code == second.code == 0, first.stderr + second.stderr
    assert first.stdout.split()[0] != second.stdout.split()[0]
