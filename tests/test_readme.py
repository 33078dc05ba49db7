"""The README's Python blocks run as written, and its first two commands are the ones CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_python_blocks_run(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "readme"}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "Invoices over 1,000 need a second look" in printed
    assert "('book', 'completed')" in printed


def test_readme_opens_with_the_two_commands_and_ci_runs_the_test_one():
    commands = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    main_job, tests = commands[0], commands[1]
    assert "handrail run examples/" in main_job
    assert tests.endswith("pytest")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    install = re.search(r'pip install (-e "[^"]+")', tests)
    assert install is not None
    assert install.group(1) in ci and "\npytest\n" in ci
    # the main job: installs the embedded model and runs an example on it, as CI does
    assert 'pip install -e ".[local]"' in main_job and "--model local" in main_job
    run = main_job[main_job.index("handrail run") :]
    assert f"\n{run}\n" in ci
