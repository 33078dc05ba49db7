"""The review service on PostgreSQL: the fixture pipeline's runs kept there by `handrail run`,
then the inbox, sign-in, a decision through the conditional write, a second one refused, and
the audit chain intact.

Starts a throwaway cluster (`tests/_postgres.py`) when the server binaries are installed;
skipped without them, except in CI (`CI` set), where that fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests import _postgres
from tests.pipelines.inbox_invoice import QUEUE, SOURCES, write_documents
from typer.testing import CliRunner

from handrail import InvalidDecision, ReviewAlreadyDecided, ReviewDecision
from handrail.cli.main import app
from handrail.review import ReviewService

from .conftest import ROOT, TARGET


@pytest.fixture(scope="module")
def postgres_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this module's own on a cluster of its own, holding the fixture's runs."""
    try:
        server = _postgres.start()
    except _postgres.PostgresNotFound as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e}; CI must run the Postgres tests", pytrace=False)
        pytest.skip(str(e))
    try:
        db = server.create_database("handrail_review")
        documents = tmp_path_factory.mktemp("pg-inbox")
        write_documents(documents)
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("HANDRAIL_MODEL", raising=False)
            result = CliRunner().invoke(app, ["run", TARGET, str(documents), "--db", db])
        assert result.exit_code == 0, result.output
        yield db
    finally:
        server.stop()


def test_the_review_service_on_postgres(postgres_db: str, tmp_path: Path) -> None:
    with ReviewService(postgres_db, folder=ROOT) as service:
        assert service.url.startswith("postgresql")
        _, token = service.add_reviewer("ana", queues=[QUEUE])
        ana, session = service.sign_in(token)
        assert service.session(session.session_id)[0].name == "ana"
        page = service.inbox(ana, sort="deadline", per_page=2)
        assert (page.total, len(page.items), page.queues) == (
            len(SOURCES),
            2,
            {QUEUE: len(SOURCES)},
        )
        review_id = page.items[0].review_id
        detail = service.review(review_id, ana)
        assert detail.document is not None and detail.document.highlights

        bad = dict(detail.request.output) | {"lines": [{"description": "x", "quantity": 0}]}
        with pytest.raises(InvalidDecision) as raised:
            service.decide(review_id, ReviewDecision.edit(bad), viewer=ana)
        assert {path for path, _ in raised.value.errors} == {"lines.0.quantity", "lines.0.amount"}

        service.decide(review_id, ReviewDecision.approve(), viewer=ana)
        with pytest.raises(ReviewAlreadyDecided) as again:
            service.decide(review_id, ReviewDecision.reject("no", reviewer="bob"))
        assert again.value.by == "ana" and again.value.at is not None
        assert service.inbox(ana).total == len(SOURCES) - 1
        assert [e.action for e in service.audit_entries()] == [
            "reviewer_added",
            "sign_in",
            "decide",
        ]
        assert service.verify_audit().ok
        finished = service.finish(detail.request.run_id)
        assert finished.record.status.value == "completed"
