"""The inbox on Postgres: sign-in, a decision recorded once with its audit row, the second
answered 409, an invalid edit 422 with nothing recorded (a throwaway server of our own; skipped
without the PostgreSQL binaries, except in CI, where it must run)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from tests import _postgres
from tests.pipelines import inbox_invoice

from handrail import Document
from handrail.review import ReviewService

from .conftest import (
    INVOICES,
    ORIGIN,
    client_for,
    element_text,
    form_values,
    run_documents,
    sign_in,
)


@pytest.fixture(scope="module")
def postgres_db() -> Iterator[str]:
    try:
        server = _postgres.start()
    except _postgres.PostgresNotFound as e:
        if os.environ.get("CI"):
            pytest.fail(f"{e}; CI must run the Postgres tests", pytrace=False)
        pytest.skip(str(e))
    try:
        yield server.create_database("handrail_web")
    finally:
        server.stop()


def test_deciding_in_the_inbox_on_postgres(postgres_db: str) -> None:
    documents = [Document(text=s.text, id=s.filename) for s in inbox_invoice.SOURCES[:2]]
    run_documents(postgres_db, inbox_invoice.pipeline, documents)
    service = ReviewService(postgres_db, target=INVOICES)
    try:
        tokens = {n: service.add_reviewer(n, queues=["payables"])[1] for n in ("ana", "carol")}
        ana, carol = client_for(service), client_for(service)
        assert sign_in(ana, tokens["ana"]).status_code == 303
        assert sign_in(carol, tokens["carol"]).status_code == 303
        review_id = service.reviews()[0].request.review_id
        form = form_values(ana.get(f"/reviews/{review_id}").text)
        invalid = ana.post(
            f"/reviews/{review_id}/decide",
            headers={"Origin": ORIGIN},
            data=form | {"action": "edit", "out.lines.0.quantity": "0"},
        )
        assert invalid.status_code == 422
        assert "greater than or equal to 1" in element_text(invalid.text, "error-lines-0-quantity")
        assert service.audit_entries(action="decide") == []
        first = ana.post(
            f"/reviews/{review_id}/decide",
            headers={"Origin": ORIGIN},
            data=form | {"action": "approve"},
        )
        assert first.status_code == 303
        carols = form_values(carol.get(f"/reviews/{review_id}").text, "signout")
        second = carol.post(
            f"/reviews/{review_id}/decide",
            headers={"Origin": ORIGIN},
            data=form | carols | {"action": "approve"},
        )
        assert second.status_code == 409
        assert "Already decided by ana" in element_text(second.text, "already-decided")
        assert [e.actor for e in service.audit_entries(action="decide")] == ["ana"]
    finally:
        service.close()
