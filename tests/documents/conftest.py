"""Shared by the documents tests: where the real files live (`../shared/data`, beside the
checkout) and `need_data`, which skips a test on a machine without them but fails it in CI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
"""`../shared/data` next to the checkout: third-party files the repository does not copy."""


def need_data(*parts: str) -> Path:
    """`DATA / parts...`, or skip the test (fail it in CI, where the data must be present)."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        message = f"{path} is absent (the real files beside the checkout, ../shared/data)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must have them")
        pytest.skip(message)
    return path
