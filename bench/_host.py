"""What every benchmark records about where it ran: the machine, the versions of the packages
it names, and which handrail source was measured. Imported by the bench scripts, which run
from this folder (`python bench/engine.py`)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def machine_facts() -> dict[str, Any]:
    """CPUs (all, and the ones this process may use), Python and the platform."""
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(affinity(0)) if affinity else os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def package_versions(packages: Iterable[str]) -> dict[str, str | None]:
    """Each package's installed version, None when it is not installed."""
    versions: dict[str, str | None] = {}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def handrail_source() -> dict[str, Any]:
    """Which handrail was measured: its folder, and for this checkout the commit and whether
    `src/` had uncommitted changes (call it once, before anything is measured)."""
    import handrail

    path = Path(handrail.__file__).resolve().parent
    info: dict[str, Any] = {"path": str(path), "git_commit": None, "src_modified": None}
    if ROOT in path.parents:

        def git(*args: str) -> str:
            try:
                out = subprocess.run(
                    ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10
                )
            except (OSError, subprocess.SubprocessError):
                return ""
            return out.stdout.strip() if out.returncode == 0 else ""

        info["git_commit"] = git("rev-parse", "--short", "HEAD") or None
        if info["git_commit"]:
            info["src_modified"] = bool(git("status", "--porcelain", "--", str(path)))
    return info
