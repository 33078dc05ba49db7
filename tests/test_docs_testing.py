"""docs/testing.md's example runs as written: its files are written to a folder of their own and
pytest runs them there, in a new process, as a user would."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")


def test_the_testing_guide_runs_under_pytest(tmp_path: Path) -> None:
    files = re.findall(r"```python\n# file: (\S+)\n(.*?)```", DOC, re.S)
    assert [name for name, _ in files] == ["claims.py", "test_claims.py"]
    for name, code in files:
        (tmp_path / name).write_text(code, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    tests = len(re.findall(r"^def test_", files[1][1], re.M))

    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{tests} passed" in out.stdout, out.stdout
