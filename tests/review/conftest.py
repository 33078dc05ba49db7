"""Real reviews for the review service's tests: the `inbox_invoice` fixture pipeline run
durably (`handrail run`) on its documents into a SQLite file, once; each test gets its own
copy of that file."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.pipelines.inbox_invoice import SOURCES, write_documents
from typer.testing import CliRunner

from handrail.cli.main import app
from handrail.durable import SqlStore
from handrail.review import ReviewService

ROOT = Path(__file__).parents[2]
TARGET = f"{ROOT / 'tests' / 'pipelines' / 'inbox_invoice.py'}:pipeline"


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding a run per document of the fixture, each waiting for review (made
    once per session)."""
    folder = tmp_path_factory.mktemp("inbox")
    write_documents(folder / "documents")
    db = folder / "db" / "handrail.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("HANDRAIL_MODEL", raising=False)
        result = CliRunner().invoke(
            app, ["run", TARGET, str(folder / "documents"), "--db", f"sqlite:///{db}", "--json"]
        )
    assert result.exit_code == 0, result.output
    statuses = [json.loads(line)["status"] for line in result.stdout.splitlines()]
    assert statuses == ["needs_review"] * len(SOURCES), statuses
    return db


@pytest.fixture
def db(template: Path, tmp_path: Path) -> str:
    """A copy of the template database, this test's own."""
    folder = tmp_path / "db"
    shutil.copytree(template.parent, folder)
    return f"sqlite:///{folder / template.name}"


@pytest.fixture
def service(db: str) -> Iterator[ReviewService]:
    """A writing service on the test's database, the pipeline's code found where `handrail
    run` recorded it (inside the repository)."""
    with ReviewService(db, folder=ROOT) as opened:
        yield opened


@pytest.fixture
def reviews(db: str) -> dict[str, str]:
    """Review ids by document number: HF-2291, AP-10734, KL-55012 (invoices), CN-0412 (e-mail)."""
    with SqlStore(db, read_only=True) as store:
        found = store.list_reviews()
        return {r.output["number"]: r.review_id for r in found}
