"""The JSON API: bearer tokens only (a session cookie is not enough), the same permissions as
the pages, decisions exactly once (409 with who and when), edits validated (422 by field),
and its OpenAPI document."""

from __future__ import annotations

from fastapi.testclient import TestClient

from .conftest import Inbox, client_for


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_api_needs_a_bearer_token_and_ignores_cookies(ana: TestClient, inbox: Inbox) -> None:
    # ana's browser has a live session cookie: the API does not take it
    response = ana.get("/api/v1/reviews")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["error"]
    review_id = inbox.pending()[0]
    posted = ana.post(f"/api/v1/reviews/{review_id}/decision", json={"action": "approve"})
    assert posted.status_code == 401
    wrong = ana.get("/api/v1/reviews", headers=bearer("hr_wrong"))
    assert wrong.status_code == 401 and "unknown or withdrawn" in wrong.json()["error"]
    assert inbox.actions("decide") == []


def test_the_inbox_and_a_review_through_the_api(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    listed = client.get("/api/v1/reviews", headers=bearer(inbox.tokens["ana"]))
    assert listed.status_code == 200
    body = listed.json()
    assert body["total"] == len(inbox.pending()) and body["queues"] == {"payables": body["total"]}
    item = body["items"][0]
    assert item["queue"] == "payables" and item["lowest_confidence"] is not None
    shown = client.get(f"/api/v1/reviews/{item['review_id']}", headers=bearer(inbox.tokens["ana"]))
    detail = shown.json()
    assert detail["status"] == "pending" and detail["run_status"] == "needs_review"
    assert {f["path"] for f in detail["fields"]} >= {"vendor", "address.city", "lines.0.amount"}
    assert detail["document"]["kind"] in ("text", "email")
    nobody = client.get(f"/api/v1/reviews/{item['review_id']}", headers=bearer(inbox.tokens["bob"]))
    assert nobody.status_code == 403 and "does not review queue" in nobody.json()["error"]
    assert client.get("/api/v1/reviews", headers=bearer(inbox.tokens["bob"])).json()["total"] == 0
    missing = client.get("/api/v1/reviews/rv-nope", headers=bearer(inbox.tokens["ana"]))
    assert missing.status_code == 404


def test_a_decision_through_the_api_exactly_once(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    review_id = inbox.pending()[0]
    output = inbox.service.review(review_id).request.output
    bad = dict(output) | {"po_number": "7781", "lines": [dict(output["lines"][0], quantity=0)]}
    invalid = client.post(
        f"/api/v1/reviews/{review_id}/decision",
        json={"action": "edit", "output": bad},
        headers=bearer(inbox.tokens["ana"]),
    )
    assert invalid.status_code == 422
    fields = {e["field"] for e in invalid.json()["errors"]}
    assert fields == {"po_number", "lines.0.quantity"}
    assert inbox.actions("decide") == []
    no_reason = client.post(
        f"/api/v1/reviews/{review_id}/decision",
        json={"action": "reject"},
        headers=bearer(inbox.tokens["ana"]),
    )
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["field"] == "reason"
    good = dict(output) | {"total": 1420.0}
    done = client.post(
        f"/api/v1/reviews/{review_id}/decision",
        json={"action": "edit", "output": good, "reviewer": "mallory"},
        headers=bearer(inbox.tokens["ana"]),
    )
    assert done.status_code == 200
    assert done.json()["decision"]["reviewer"] == "ana"  # from the token, never the body
    again = client.post(
        f"/api/v1/reviews/{review_id}/decision",
        json={"action": "approve"},
        headers=bearer(inbox.tokens["carol"]),
    )
    assert again.status_code == 409
    conflict = again.json()
    assert (conflict["by"], conflict["action"]) == ("ana", "edit") and conflict["at"]
    assert len(inbox.actions("decide")) == 1


def test_claims_runs_and_audit_through_the_api(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    review_id = inbox.pending()[0]
    claimed = client.post(f"/api/v1/reviews/{review_id}/claim", headers=bearer(inbox.tokens["ana"]))
    assert claimed.status_code == 200 and claimed.json()["reviewer"] == "ana"
    taken = client.post(f"/api/v1/reviews/{review_id}/claim", headers=bearer(inbox.tokens["carol"]))
    assert taken.status_code == 409 and taken.json()["by"] == "ana"
    released = client.post(
        f"/api/v1/reviews/{review_id}/release", headers=bearer(inbox.tokens["ana"])
    )
    assert released.json() == {"released": True}
    assert client.get("/api/v1/runs", headers=bearer(inbox.tokens["ana"])).status_code == 403
    runs = client.get("/api/v1/runs", headers=bearer(inbox.tokens["lena"]))
    assert runs.status_code == 200 and len(runs.json()) == len(inbox.pending())
    run = client.get(
        f"/api/v1/runs/{runs.json()[0]['run_id']}", headers=bearer(inbox.tokens["lena"])
    )
    assert run.json()["status"] == "needs_review" and run.json()["steps"]
    audit = client.get("/api/v1/audit?action=claim", headers=bearer(inbox.tokens["lena"])).json()
    assert [(e["actor"], e["review_id"]) for e in audit] == [("ana", review_id)]


def test_a_browser_page_elsewhere_cannot_post_to_the_api(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    review_id = inbox.pending()[0]
    response = client.post(
        f"/api/v1/reviews/{review_id}/decision",
        json={"action": "approve"},
        headers=bearer(inbox.tokens["ana"]) | {"Origin": "http://evil.example"},
    )
    assert response.status_code == 403
    assert inbox.actions("decide") == []


def test_the_openapi_document_describes_the_api_and_its_bearer_auth(inbox: Inbox) -> None:
    client = client_for(inbox.service)
    spec = client.get("/api/v1/openapi.json")
    assert spec.status_code == 200
    document = spec.json()
    assert set(document["paths"]) >= {
        "/reviews",
        "/reviews/{review_id}",
        "/reviews/{review_id}/decision",
        "/reviews/{review_id}/claim",
        "/reviews/{review_id}/release",
        "/runs",
        "/runs/{run_id}",
        "/audit",
    }
    schemes = document["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    decision = document["paths"]["/reviews/{review_id}/decision"]["post"]
    assert {"200", "409", "422"} <= set(decision["responses"])
    assert client.get("/openapi.json").status_code == 404
    assert client.get("/api/v1/docs").status_code == 404
