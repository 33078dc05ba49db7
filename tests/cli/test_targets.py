"""TARGET forms, and the one-line error (exit code 2, no traceback) for each way one is wrong."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from handrail import Pipeline
from handrail.targets import load_pipeline

from .conftest import PIPELINES, ROOT, Invoke

FORMS = "(TARGET is path/to/file.py:pipeline or package.module:pipeline)"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "doc.txt").write_text("hello")
    return tmp_path


def write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def usage_error(cli: Invoke, target: str) -> str:
    """The stderr of `handrail run TARGET doc.txt`, checking it is one line and exit code 2."""
    result = cli("run", target, "doc.txt")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    return result.stderr.rstrip("\n")


def test_a_file_target_defaults_to_the_pipeline_attribute() -> None:
    pipeline = load_pipeline(str(PIPELINES / "happy.py"))
    assert isinstance(pipeline, Pipeline) and pipeline.name == "happy"
    assert load_pipeline(f"{PIPELINES / 'branches.py'}:concurrent").name == "concurrent"


def test_a_module_target_is_imported_from_the_current_folder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    assert load_pipeline("tests.pipelines.low_confidence:pipeline").name == "low_confidence"
    assert load_pipeline("tests.pipelines.flaky").name == "flaky"


def test_a_function_without_arguments_returning_a_pipeline_is_called(here: Path) -> None:
    write(
        here / "factory.py",
        """
        from handrail import PipelineBuilder, Rule

        def make():
            return PipelineBuilder("made").add(Rule("a", lambda s: 1)).build()
        """,
    )
    assert load_pipeline("factory.py:make").name == "made"


def test_a_file_can_import_its_neighbours(here: Path) -> None:
    write(here / "app" / "nodes.py", "from handrail import Rule\nfirst = Rule('a', lambda s: 1)\n")
    write(
        here / "app" / "flow.py",
        """
        from handrail import PipelineBuilder
        from nodes import first

        pipeline = PipelineBuilder("neighbours").add(first).build()
        """,
    )
    assert load_pipeline("app/flow.py").name == "neighbours"


def test_two_files_with_the_same_name_are_different_targets(here: Path) -> None:
    for name in ("one", "two"):
        write(
            here / name / "intake.py",
            f"""
            from handrail import PipelineBuilder, Rule
            pipeline = PipelineBuilder("{name}").add(Rule("a", lambda s: 1)).build()
            """,
        )
    assert load_pipeline("one/intake.py").name == "one"
    assert load_pipeline("two/intake.py").name == "two"


def test_missing_file(cli: Invoke, here: Path) -> None:
    assert usage_error(cli, "flows/intake.py:pipeline") == (
        f"error: target file `flows/intake.py` does not exist; check the path {FORMS}"
    )


def test_a_folder_is_not_a_target(cli: Invoke, here: Path) -> None:
    (here / "flows").mkdir()
    assert usage_error(cli, "flows/:pipeline") == (
        f"error: target `flows` is a folder; name the .py file that defines the pipeline {FORMS}"
    )


def test_incomplete_target(cli: Invoke, here: Path) -> None:
    assert (
        usage_error(cli, "intake.py:") == f"error: target 'intake.py:' is incomplete; {FORMS[1:-1]}"
    )


def test_missing_module(cli: Invoke, here: Path) -> None:
    assert usage_error(cli, "no_such_pkg.flows:pipeline") == (
        "error: no module named `no_such_pkg.flows`; check the name and run from the folder that "
        f"holds the package, or give the file path {FORMS}"
    )


def test_a_module_whose_import_fails(cli: Invoke, here: Path) -> None:
    write(here / "needs.py", "import not_installed_anywhere_xyz\n")
    assert usage_error(cli, "needs.py") == (
        "error: importing `needs.py` failed: No module named 'not_installed_anywhere_xyz'; "
        "install the missing package or fix the import"
    )
    assert usage_error(cli, "needs") == (
        "error: importing `needs` failed: No module named 'not_installed_anywhere_xyz'; "
        "install the missing package or fix the import"
    )


def test_a_module_that_raises(cli: Invoke, here: Path) -> None:
    write(here / "boom.py", "raise RuntimeError('no config found')\n")
    assert usage_error(cli, "boom.py:pipeline") == (
        "error: importing `boom.py` raised RuntimeError: no config found; fix the module "
        "(run `python` on it to see the traceback)"
    )


def test_a_pipeline_that_fails_to_build_at_import(cli: Invoke, here: Path) -> None:
    write(
        here / "broken.py",
        """
        from handrail import PipelineBuilder, Rule

        pipeline = (
            PipelineBuilder("broken")
            .add(Rule("a", lambda s: 1))
            .add(Rule("orphan", lambda s: 2))
            .build()
        )
        """,
    )
    assert usage_error(cli, "broken.py") == (
        "error: the pipeline in `broken.py` fails to build: pipeline `broken`: node `orphan` is "
        "unreachable: no edge leads to it from the start (`a`); add it with after=... or an edge "
        "to it; fix its definition"
    )


def test_several_build_problems_stay_on_one_line(cli: Invoke, here: Path) -> None:
    write(
        here / "worse.py",
        """
        from handrail import PipelineBuilder, Rule

        pipeline = (
            PipelineBuilder("worse")
            .add(Rule("a", lambda s: 1))
            .add(Rule("a", lambda s: 1))
            .add(Rule("orphan", lambda s: 2))
            .build()
        )
        """,
    )
    assert usage_error(cli, "worse.py") == (
        "error: the pipeline in `worse.py` fails to build: pipeline `worse` has 2 problems: "
        "(1) two nodes are named `a`; give each node its own name "
        "(2) node `orphan` is unreachable: no edge leads to it from the start (`a`); add it with "
        "after=... or an edge to it; fix its definition"
    )


def test_a_missing_attribute_lists_the_pipelines_there(cli: Invoke) -> None:
    target = f"{PIPELINES / 'branches.py'}:pipelin"
    assert usage_error(cli, target) == (
        f"error: `{PIPELINES / 'branches.py'}` has no attribute `pipelin`; pipelines there: "
        f"`{PIPELINES / 'branches.py'}:concurrent`, `{PIPELINES / 'branches.py'}:pipeline`"
    )


def test_a_missing_attribute_in_a_module_without_pipelines(cli: Invoke, here: Path) -> None:
    write(here / "empty.py", "x = 1\n")
    assert usage_error(cli, "empty.py") == (
        "error: `empty.py` has no attribute `pipeline`; define "
        f"`pipeline = PipelineBuilder(...).build()` there {FORMS}"
    )


@pytest.mark.parametrize(
    ("attr", "message"),
    [
        (
            "x",
            "`objects.py:x` is an int, not a handrail Pipeline; name a built pipeline "
            "(PipelineBuilder(...).build()) or a function returning one",
        ),
        (
            "Thing",
            "`objects.py:Thing` is the class Thing, not a handrail Pipeline; name a built "
            "pipeline (PipelineBuilder(...).build()) or a function returning one",
        ),
        ("builder", "`objects.py:builder` is a PipelineBuilder that was not built; add `.build()`"),
        (
            "make_builder",
            "`objects.py:make_builder` returned a PipelineBuilder that was not built; return it "
            "with `.build()`",
        ),
        (
            "make_model",
            "`objects.py:make_model` returned a FakeModel, not a handrail Pipeline; "
            "return PipelineBuilder(...).build()",
        ),
        (
            "needs_args",
            "`objects.py:needs_args` is a function that needs arguments; name a built Pipeline "
            "or a function taking none that returns one",
        ),
        (
            "raises",
            "calling `objects.py:raises` raised ValueError: bad settings; fix the function",
        ),
        (
            "builds_badly",
            "the pipeline that `objects.py:builds_badly` returns fails to build: pipeline `late`: "
            "node `orphan` is unreachable: no edge leads to it from the start (`a`); add it with "
            "after=... or an edge to it; fix its definition",
        ),
    ],
)
def test_an_attribute_that_is_not_a_pipeline(
    cli: Invoke, here: Path, attr: str, message: str
) -> None:
    write(
        here / "objects.py",
        """
        from handrail import FakeModel, PipelineBuilder, Rule

        x = 1
        class Thing: ...
        builder = PipelineBuilder("b").add(Rule("a", lambda s: 1))
        def make_builder():
            return builder
        def make_model():
            return FakeModel()
        def needs_args(name):
            return name
        def raises():
            raise ValueError("bad settings")
        def builds_badly():
            return (PipelineBuilder("late").add(Rule("a", lambda s: 1))
                    .add(Rule("orphan", lambda s: 2)).build())
        """,
    )
    assert usage_error(cli, f"objects.py:{attr}") == f"error: {message}"


def test_the_same_pipeline_file_in_two_folders_has_one_version(tmp_path: Path) -> None:
    """A file target's module name comes from where the file lies; the pipeline's version (and
    so its run ids) must not: a clone of the project elsewhere reuses nothing less."""
    source = (PIPELINES / "happy.py").read_text()
    versions = set()
    for folder in ("one", "elsewhere/two"):
        write(tmp_path / folder / "intake.py", source)
        shutil.copytree(PIPELINES / "prompts", tmp_path / folder / "prompts")
        versions.add(load_pipeline(str(tmp_path / folder / "intake.py")).fingerprint)
    assert versions == {load_pipeline(str(PIPELINES / "happy.py")).fingerprint}


def test_threads_loading_one_new_file_at_once_all_get_the_whole_module(tmp_path: Path) -> None:
    # The web app's first requests load a pipeline file from several threads at once: none may
    # see the module half-executed (it is in sys.modules while it runs).
    import threading

    write(
        tmp_path / "slow_intake.py",
        """
        import time
        from handrail import PipelineBuilder, Rule
        time.sleep(0.3)  # a module that takes a while to import
        b = PipelineBuilder("slow_intake")
        b.add(Rule("r", lambda state: 1))
        pipeline = b.build()
        """,
    )
    target = f"{tmp_path / 'slow_intake.py'}:pipeline"
    results: list[object] = []
    barrier = threading.Barrier(8)

    def load() -> None:
        barrier.wait()
        try:
            results.append(load_pipeline(target).name)
        except Exception as e:  # what a half-executed module gave: "has no attribute"
            results.append(e)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["slow_intake"] * 8
