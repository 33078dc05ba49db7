"""The HTTP trigger's endpoint (FastAPI's TestClient over the real app and a SQLite file):
signed documents are taken in and answered 202 with their run; unsigned, badly signed, stale
and unknown-source requests are refused (401) with nothing recorded; one Idempotency-Key is one
run; 413, 415, 404 and 400 are answered before anything is recorded. The status URL of the 202
answers the source that sent the document, signed as it posts, and no other (the same 404 for
another source's run as for a run that does not exist)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.pipelines import happy

from handrail.exceptions import InputError
from handrail.review import ReviewService
from handrail.triggers.http import Sources, secret_variable, sign, sign_status
from handrail.triggers.intake import Intake
from handrail.triggers.state import trigger_states
from handrail.web import create_app
from handrail.web.intake import intake_router

from .conftest import SPEC, receipts, workflows

SECRET = "s3cret-for-the-crm-0123456789abcdef"
FORMS_SECRET = "s3cret-for-the-forms-0123456789abcdef"
HAPPY = str(Path(__file__).parents[1] / "pipelines" / "happy.py") + ":pipeline"
URL = "/api/v1/pipelines/happy/documents"
TEXT = b"Refund please. Order: A-17, amount 100.0"


class Endpoint:
    def __init__(self, client: TestClient, intake: Intake) -> None:
        self.client = client
        self.intake = intake

    def post(
        self,
        body: bytes = TEXT,
        *,
        content_type: str = "text/plain",
        key: str | None = None,
        secret: str = SECRET,
        source: str = "crm",
        skew: float = 0,
        url: str = URL,
        headers: dict[str, str] | None = None,
    ) -> Any:
        stamp = str(int(time.time() + skew))
        sent = {
            "Content-Type": content_type,
            "X-Handrail-Source": source,
            "X-Handrail-Timestamp": stamp,
            "X-Handrail-Signature": sign(secret, stamp, body),
        }
        if key is not None:
            sent["Idempotency-Key"] = key
        return self.client.post(url, content=body, headers=sent | (headers or {}))

    def status(
        self,
        url: str,
        *,
        secret: str = SECRET,
        source: str = "crm",
        skew: float = 0,
        signed: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """GET `url`, signed over `GET <path>` (or over `signed` in its place)."""
        stamp = str(int(time.time() + skew))
        sent = {
            "X-Handrail-Source": source,
            "X-Handrail-Timestamp": stamp,
            "X-Handrail-Signature": sign_status(secret, stamp, signed or url),
        }
        return self.client.get(url, headers=sent | (headers or {}))


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[Endpoint]:
    db = f"sqlite:///{tmp_path / 'handrail.db'}"
    secrets = {secret_variable("crm"): SECRET, secret_variable("forms"): FORMS_SECRET}
    sources = Sources.from_env(["crm", "forms"], secrets)
    with Intake(happy.pipeline, db=db, model_spec=SPEC) as intake:
        service = ReviewService(db, target=HAPPY)
        router = intake_router({"happy": intake}, sources, max_bytes=1024 * 1024)
        app = create_app(service, allowed_hosts=["testserver"], intake=router)
        try:
            yield Endpoint(TestClient(app), intake)
        finally:
            service.close()


def test_a_signed_document_is_accepted_with_its_run_and_status_url(endpoint: Endpoint) -> None:
    answer = endpoint.post(key="order-17")

    assert answer.status_code == 202, answer.text
    body = answer.json()
    run_id = body["run_id"]
    assert body["new"] is True and body["status"] == "queued"
    assert body["status_url"] == f"{URL}/{run_id}" == answer.headers["location"]
    assert body["documents"] == [
        {
            "name": "document.txt",
            "run_id": run_id,
            "status_url": body["status_url"],
            "new": True,
            "status": "queued",
        }
    ]
    [receipt] = receipts(endpoint.intake)
    assert (receipt.source, receipt.key, receipt.run_id) == ("http:crm", "happy/order-17", run_id)
    assert workflows(endpoint.intake, run_id) == 1


def test_the_same_idempotency_key_twice_is_one_run_and_one_receipt(endpoint: Endpoint) -> None:
    first = endpoint.post(key="order-17").json()
    again = endpoint.post(key="order-17")

    assert again.status_code == 202
    assert again.json()["run_id"] == first["run_id"] and again.json()["new"] is False
    assert len(receipts(endpoint.intake)) == 1 and workflows(endpoint.intake) == 1


def test_without_an_idempotency_key_an_exact_retry_is_the_same_delivery(endpoint: Endpoint) -> None:
    first = endpoint.post().json()
    again = endpoint.post().json()

    assert again["run_id"] == first["run_id"] and again["new"] is False
    [receipt] = receipts(endpoint.intake)
    assert receipt.key.startswith("happy/sha256:")


@pytest.mark.parametrize(
    "change",
    [
        {"secret": "another-secret-0123456789abcdef"},
        {"source": "erp"},
        {"skew": -302},
        {"skew": 302},
        {"headers": {"X-Handrail-Signature": "sha256=00"}},
        {"headers": {"X-Handrail-Timestamp": "yesterday"}},
    ],
    ids=["bad-signature", "unknown-source", "stale", "future", "garbled", "bad-timestamp"],
)
def test_a_request_not_signed_by_a_known_source_is_refused_with_nothing_recorded(
    endpoint: Endpoint, change: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = endpoint.post(key="order-17", **change)

    assert answer.status_code == 401
    assert "not signed by a source this server knows" in answer.json()["error"]
    assert "crm" not in answer.text and "erp" not in answer.text
    assert receipts(endpoint.intake) == [] and workflows(endpoint.intake) == 0
    assert trigger_states(endpoint.intake.store) == []
    assert SECRET not in caplog.text and "Refund" not in caplog.text


def test_unsigned_requests_are_refused(endpoint: Endpoint) -> None:
    answer = endpoint.client.post(URL, content=TEXT, headers={"Content-Type": "text/plain"})
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "HMAC-SHA256"


def test_an_unknown_pipeline_is_404_once_signed(endpoint: Endpoint) -> None:
    answer = endpoint.post(url="/api/v1/pipelines/other/documents")
    assert answer.status_code == 404 and "`other`" in answer.json()["error"]
    assert receipts(endpoint.intake) == []


def test_a_body_over_the_limit_is_413_with_nothing_recorded(endpoint: Endpoint) -> None:
    answer = endpoint.post(b"a" * (1024 * 1024 + 1))
    assert answer.status_code == 413 and "1 MB limit" in answer.json()["error"]
    assert receipts(endpoint.intake) == []


def test_an_unsupported_media_type_is_415(endpoint: Endpoint) -> None:
    answer = endpoint.post(b"GIF89a", content_type="image/gif")
    assert answer.status_code == 415
    multipart = _multipart([("logo.gif", "image/gif", b"GIF89a")])
    answer = endpoint.post(multipart[1], content_type=multipart[0])
    assert answer.status_code == 415 and "logo.gif" in answer.json()["error"]
    assert receipts(endpoint.intake) == []


def test_json_and_email_bodies_are_taken(endpoint: Endpoint) -> None:
    json_answer = endpoint.post(b'{"order": "A-17"}', content_type="application/json")
    mail = b"From: a@example.com\r\nSubject: refund\r\n\r\nOrder: A-17, amount 100.0\r\n"
    mail_answer = endpoint.post(mail, content_type="message/rfc822")

    assert json_answer.status_code == mail_answer.status_code == 202
    assert json_answer.json()["run_id"] != mail_answer.json()["run_id"]
    assert workflows(endpoint.intake) == 2


def test_multipart_files_are_one_document_and_one_receipt_each(endpoint: Endpoint) -> None:
    content_type, body = _multipart(
        [("a.txt", "text/plain", b"Order: A-1, amount 1"), ("b.txt", "text/plain", b"Order: B-2")]
    )
    answer = endpoint.post(body, content_type=content_type, key="batch-1")
    again = endpoint.post(body, content_type=content_type, key="batch-1")

    assert answer.status_code == 202
    documents = answer.json()["documents"]
    assert [d["name"] for d in documents] == ["a.txt", "b.txt"]
    assert "run_id" not in answer.json()
    assert [d["run_id"] for d in again.json()["documents"]] == [d["run_id"] for d in documents]
    assert [r.key for r in receipts(endpoint.intake)] == ["happy/batch-1#0", "happy/batch-1#1"]
    assert workflows(endpoint.intake) == 2


def test_a_body_that_splits_into_no_document_is_400(endpoint: Endpoint) -> None:
    assert endpoint.post(b"   ").status_code == 400
    content_type, body = _multipart([])
    assert endpoint.post(body, content_type=content_type).status_code == 400
    assert endpoint.post(key="two words").status_code == 400
    assert receipts(endpoint.intake) == []


def test_an_unreadable_document_is_accepted_as_a_failed_run(endpoint: Endpoint) -> None:
    answer = endpoint.post(b'{"order": ', content_type="application/json", key="bad")

    assert answer.status_code == 202
    body = answer.json()
    assert body["status"] == "failed" and "document.json" in body["error"]
    assert len(receipts(endpoint.intake)) == 1 and workflows(endpoint.intake) == 0


def test_a_source_without_a_secret_is_refused_naming_the_variable_only() -> None:
    with pytest.raises(InputError, match="set HANDRAIL_SOURCE_CRM_SECRET in the environment"):
        Sources.from_env(["crm"], {})
    with pytest.raises(InputError, match="shorter than 16") as short:
        Sources.from_env(["crm"], {"HANDRAIL_SOURCE_CRM_SECRET": "tiny-secret"})
    assert "tiny-secret" not in str(short.value)
    with pytest.raises(InputError, match="not a source name"):
        Sources.from_env(["CRM!"], {})
    sources = Sources.from_env(["my-crm"], {"HANDRAIL_SOURCE_MY_CRM_SECRET": SECRET})
    assert sources.names == ["my-crm"] and SECRET not in repr(sources)


def _multipart(files: list[tuple[str, str, bytes]]) -> tuple[str, bytes]:
    boundary = "handrail-test-boundary"
    chunks = []
    for name, media_type, data in files:
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="{name}"\r\nContent-Type: {media_type}\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    chunks.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}", b"".join(chunks)


def test_serve_refuses_a_source_without_its_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from handrail.cli.main import app

    monkeypatch.delenv("HANDRAIL_SOURCE_CRM_SECRET", raising=False)
    args = ["serve", "--source", "crm", "--target", HAPPY, "--db", str(tmp_path / "h.db")]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 2
    assert "source `crm` has no secret: set HANDRAIL_SOURCE_CRM_SECRET" in result.stderr
    assert not (tmp_path / "h.db").exists()


# --- the status URL ---------------------------------------------------------------------------


def test_the_status_url_answers_the_source_signed_as_it_posts(endpoint: Endpoint) -> None:
    posted = endpoint.post(key="order-17").json()

    answer = endpoint.status(posted["status_url"])

    assert answer.status_code == 200, answer.text
    body = answer.json()
    [receipt] = receipts(endpoint.intake)
    assert body == {
        "run_id": posted["run_id"],
        "pipeline": "happy",
        "received_at": receipt.received_at.isoformat(),
        "status": "queued",
        "review": None,
    }
    assert "Refund" not in answer.text


def test_an_unreadable_documents_status_is_failed(endpoint: Endpoint) -> None:
    posted = endpoint.post(b'{"order": ', content_type="application/json").json()

    body = endpoint.status(posted["status_url"]).json()

    assert (body["run_id"], body["status"]) == (posted["run_id"], "failed")
    assert "error" not in body  # what went wrong is the POST's answer, not the status's


@pytest.mark.parametrize(
    "change",
    [
        {"secret": "another-secret-0123456789abcdef"},
        {"secret": FORMS_SECRET},
        {"skew": -302},
        {"skew": 302},
        {"signed": "/api/v1/pipelines/happy/documents/run-another"},
        {"headers": {"X-Handrail-Signature": "sha256=00"}},
        {"headers": {"X-Handrail-Timestamp": "yesterday"}},
    ],
    ids=[
        "bad-signature",
        "another-sources-secret",
        "stale",
        "future",
        "other-path",
        "garbled",
        "bad-timestamp",
    ],
)
def test_a_status_request_not_signed_by_the_source_is_refused(
    endpoint: Endpoint, change: dict[str, Any]
) -> None:
    posted = endpoint.post(key="order-17").json()

    answer = endpoint.status(posted["status_url"], **change)

    assert answer.status_code == 401, answer.text
    assert answer.headers["www-authenticate"] == "HMAC-SHA256"
    assert "not signed by a source this server knows" in answer.json()["error"]
    assert posted["run_id"] not in answer.text


def test_a_status_request_signed_as_a_post_of_an_empty_body_is_refused(
    endpoint: Endpoint,
) -> None:
    url = endpoint.post(key="order-17").json()["status_url"]
    stamp = str(int(time.time()))
    headers = {
        "X-Handrail-Source": "crm",
        "X-Handrail-Timestamp": stamp,
        "X-Handrail-Signature": sign(SECRET, stamp, b""),
    }
    assert endpoint.client.get(url, headers=headers).status_code == 401
    assert endpoint.client.get(url).status_code == 401


def test_an_overheard_status_request_cannot_be_replayed_as_a_document(
    endpoint: Endpoint,
) -> None:
    """Its headers, sent with a POST of any body (`GET <path>` and the timestamp included),
    are refused: a status signature never signs a document."""
    url = endpoint.post(key="order-17").json()["status_url"]
    stamp = str(int(time.time()))
    overheard = {
        "X-Handrail-Source": "crm",
        "X-Handrail-Timestamp": stamp,
        "X-Handrail-Signature": sign_status(SECRET, stamp, url),
    }
    for body in (f"GET {url}".encode(), f"GET {url}\n{stamp}".encode(), b""):
        replayed = endpoint.client.post(
            URL, content=body, headers=overheard | {"Content-Type": "text/plain"}
        )
        assert replayed.status_code == 401, body
    assert len(receipts(endpoint.intake)) == 1


def test_another_sources_run_and_an_unknown_run_are_the_same_404(endpoint: Endpoint) -> None:
    theirs = endpoint.post(key="form-1", source="forms", secret=FORMS_SECRET).json()
    unknown = f"{URL}/run-0123456789abcdef"

    other = endpoint.status(theirs["status_url"])
    missing = endpoint.status(unknown)

    assert other.status_code == missing.status_code == 404
    assert other.json() == missing.json()
    assert theirs["run_id"] not in other.text
    assert (
        endpoint.status(theirs["status_url"], source="forms", secret=FORMS_SECRET).json()["status"]
        == "queued"
    )


def test_the_same_document_sent_by_two_sources_is_each_ones_to_read(endpoint: Endpoint) -> None:
    mine = endpoint.post(key="a").json()
    theirs = endpoint.post(key="b", source="forms", secret=FORMS_SECRET).json()

    assert mine["run_id"] == theirs["run_id"]  # one run: its content decides
    assert endpoint.status(mine["status_url"]).status_code == 200
    assert (
        endpoint.status(theirs["status_url"], source="forms", secret=FORMS_SECRET).json()["status"]
        == "queued"
    )


def test_a_status_of_a_pipeline_this_server_does_not_serve_is_404(endpoint: Endpoint) -> None:
    posted = endpoint.post(key="order-17").json()
    url = f"/api/v1/pipelines/other/documents/{posted['run_id']}"
    answer = endpoint.status(url)
    assert answer.status_code == 404 and "`other`" in answer.json()["error"]


def test_the_docs_status_snippet_signs_as_the_server_checks(endpoint: Endpoint) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "triggers.md").read_text(encoding="utf-8")
    [code] = [
        c for c in re.findall(r"```python\n(.*?)```", doc, re.S) if "def signed_status_headers" in c
    ]
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    url = endpoint.post(key="order-17").json()["status_url"]

    headers = namespace["signed_status_headers"]("crm", SECRET, url)

    answer = endpoint.client.get(url, headers=headers)
    assert answer.status_code == 200 and answer.json()["status"] == "queued"
