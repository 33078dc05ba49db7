"""docs/triggers.md's signing examples sign as the server checks: the Python snippet, and the
openssl line of the curl example run in bash."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from handrail.triggers.http import Sources, sign

DOC = (Path(__file__).parents[2] / "docs" / "triggers.md").read_text(encoding="utf-8")
SECRET = "docs-secret-0123456789abcdef"
BODY = "Refund please. Order: A-17, amount 100.0"


def test_the_python_snippet_signs_as_the_server_checks() -> None:
    [code] = [c for c in re.findall(r"```python\n(.*?)```", DOC, re.S) if "def signed_headers" in c]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    headers = namespace["signed_headers"]("crm", SECRET, BODY.encode())
    sources = Sources.from_env(["crm"], {"HANDRAIL_SOURCE_CRM_SECRET": SECRET})

    assert sources.verify(
        source=headers["X-Handrail-Source"],
        timestamp=headers["X-Handrail-Timestamp"],
        signature=headers["X-Handrail-Signature"],
        body=BODY.encode(),
        at=time.time(),
    )


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_curl_example_signs_as_the_server_checks() -> None:
    [script] = re.findall(r"```bash\n(.*?)```", DOC, re.S)
    lines = [ln for ln in script.splitlines() if ln.startswith(("body=", "ts=", "sig="))]
    assert [ln.split("=", 1)[0] for ln in lines] == ["body", "ts", "sig"]
    done = subprocess.run(
        ["bash", "-c", "\n".join([*lines, 'printf "%s %s" "$ts" "$sig"'])],
        env={"HANDRAIL_SOURCE_CRM_SECRET": SECRET, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    stamp, hexdigest = done.stdout.split()
    assert f"body='{BODY}'" == lines[0]
    assert f"sha256={hexdigest}" == sign(SECRET, stamp, BODY.encode())


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_curl_status_line_signs_as_the_server_checks() -> None:
    from handrail.triggers.http import sign_status

    [line] = re.findall(r"`(sig=\$\(printf 'GET .*?)`, then", DOC, re.S)
    path = "/api/v1/pipelines/support/documents/run-3f2a"
    done = subprocess.run(
        ["bash", "-c", f"ts=1718000000\npath={path}\n{line.replace(chr(10), ' ')}\necho $sig"],
        env={"HANDRAIL_SOURCE_CRM_SECRET": SECRET, "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert f"sha256={done.stdout.strip()}" == sign_status(SECRET, "1718000000", path)
