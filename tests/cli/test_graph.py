"""`handrail graph`: the pipeline drawn as Mermaid or DOT."""

from __future__ import annotations

from inline_snapshot import snapshot

from handrail.targets import load_pipeline

from .conftest import HAPPY, PIPELINES, Invoke


def test_mermaid_is_the_default(cli: Invoke) -> None:
    result = cli("graph", HAPPY)
    assert result.exit_code == 0
    assert result.stdout == snapshot("""\
flowchart TD
    __start__([start])
    category("classify: category · gate 0.8")
    order("extract: order · gate 0.8")
    with_tax{{"rule: with_tax"}}
    reply("draft: reply")
    __start__ --> category
    category --> order
    order --> with_tax
    with_tax --> reply
""")


def test_dot_draws_loops_dashed(cli: Invoke) -> None:
    result = cli("graph", f"{PIPELINES / 'cyclic.py'}:pipeline", "--format", "dot")
    assert result.exit_code == 0
    assert result.stdout == snapshot("""\
digraph "cyclic" {
    rankdir=TB;
    __start__ [shape=circle, label="start"];
    "invoice" [shape=box, label="extract: invoice"];
    "totals_match" [shape=diamond, label="rule: totals_match"];
    "done" [shape=diamond, label="rule: done"];
    __start__ -> "invoice";
    "invoice" -> "totals_match";
    "totals_match" -> "done" [label="ok"];
    "totals_match" -> "invoice" [label="retry, at most 2x", style=dashed];
}
""")


def test_the_output_is_what_the_pipeline_draws(cli: Invoke) -> None:
    target = f"{PIPELINES / 'branches.py'}:concurrent"
    concurrent = load_pipeline(target)
    assert concurrent.name == "concurrent"
    assert cli("graph", target, "-f", "mermaid").stdout == concurrent.to_mermaid()
    assert cli("graph", target, "-f", "dot").stdout == concurrent.to_dot()


def test_an_unknown_format_is_a_usage_error(cli: Invoke) -> None:
    result = cli("graph", HAPPY, "--format", "svg")
    assert result.exit_code == 2
    assert "'svg' is not one of 'mermaid', 'dot'" in result.stderr
    assert result.stdout == ""


def test_a_bad_target_is_a_usage_error(cli: Invoke) -> None:
    result = cli("graph", "nothere.py")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: target file `nothere.py` does not exist; check the path "
        "(TARGET is path/to/file.py:pipeline or package.module:pipeline)\n",
    )
