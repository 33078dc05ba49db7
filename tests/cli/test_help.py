"""Every command's `--help` names values in words (`--db URL`, `--concurrency N`), never with
typer's type labels (`--json <bool>`, `TARGET <str>`), and its usage line has no braces."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from handrail.cli.main import app

TYPE_LABEL = re.compile(r"<[a-z][a-z_ \[\],|]*>")
"""`<bool>`, `<str>`, `<int range>`, `<list[str]>`..."""


def commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        if not getattr(sub, "hidden", False):
            yield from commands(sub, (*path, name))


EVERY_COMMAND = list(commands(typer.main.get_command(app)))


def test_every_command_is_checked() -> None:
    assert {("run",), ("review", "approve"), ("runs", "show"), ("worker",)} <= set(EVERY_COMMAND)


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=lambda p: " ".join(p) or "handrail")
def test_help_has_no_type_labels(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert TYPE_LABEL.findall(text) == [], text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage


def test_values_are_named_in_words() -> None:
    text = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).stdout
    assert "Usage: handrail run [OPTIONS] TARGET INPUT..." in text
    rows = {line.split()[1]: line for line in text.splitlines() if line.startswith("│ --")}
    assert re.search(r"│ --concurrency\s+-c\s+N \[x>=1\]", rows["--concurrency"])
    assert re.search(r"--db\s+URL\s", rows["--db"])
    assert re.search(r"--model\s+-m\s+MODEL\s", rows["--model"])
    assert rows["--json"].split()[:3] == ["│", "--json", "JSON"]  # no label: a flag
    approve = CliRunner().invoke(app, ["review", "approve", "--help"], env={"COLUMNS": "200"})
    assert "Usage: handrail review approve [OPTIONS] REVIEW_ID" in approve.stdout
