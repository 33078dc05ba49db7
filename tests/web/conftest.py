"""Real reviews for the web app's endpoint tests: the inbox fixture pipeline
(tests/pipelines/inbox_invoice.py) run durably on a SQLite file, reviewers with tokens, and a
TestClient signed in as one of them."""

from __future__ import annotations

import asyncio
import html
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.pipelines import inbox_invoice

from handrail import Document, FakeModel
from handrail.durable import DurableRunner
from handrail.review import ReviewService
from handrail.web import create_app

ROOT = Path(__file__).parents[2]
INVOICES = str(ROOT / "tests" / "pipelines" / "inbox_invoice.py")
NOTES = str(Path(__file__).parent / "notes.py")
ORIGIN = "http://testserver"


def run_documents(db: str, pipeline: Any, documents: list[Document]) -> list[Any]:
    async def go() -> list[Any]:
        async with DurableRunner(pipeline, db=db, model=FakeModel()) as runner:
            return await runner.run_many(documents)

    return asyncio.run(go())


@pytest.fixture(scope="session")
def invoices_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file where every inbox_invoice document waits for review (made once)."""
    folder = tmp_path_factory.mktemp("invoices")
    db = f"sqlite:///{folder / 'handrail.db'}"
    documents = [Document(text=s.text, id=s.filename) for s in inbox_invoice.SOURCES]
    records = run_documents(db, inbox_invoice.pipeline, documents)
    assert {r.status.value for r in records} == {"needs_review"}
    return folder / "handrail.db"


@dataclass
class Inbox:
    """A copy of the invoices database, its service and its reviewers' tokens."""

    db: str
    service: ReviewService
    tokens: dict[str, str]

    def pending(self) -> list[str]:
        return [view.request.review_id for view in self.service.reviews()]

    def actions(self, action: str) -> list[Any]:
        return self.service.audit_entries(action=action)


@pytest.fixture
def inbox(invoices_db: Path, tmp_path: Path) -> Iterator[Inbox]:
    for suffix in ("", "-wal", "-shm"):
        source = invoices_db.with_name(invoices_db.name + suffix)
        if source.exists():
            shutil.copy2(source, tmp_path / source.name)
    db = f"sqlite:///{tmp_path / invoices_db.name}"
    service = ReviewService(db, target=INVOICES)
    tokens = {}
    for name, queues, lead in (
        ("ana", ["payables"], False),
        ("carol", ["payables"], False),
        ("bob", ["sales"], False),
        ("lena", ["payables-leads"], True),
    ):
        _, tokens[name] = service.add_reviewer(name, queues=queues, lead=lead)
    yield Inbox(db=db, service=service, tokens=tokens)
    service.close()


def client_for(service: ReviewService, **options: Any) -> TestClient:
    app = create_app(service, allowed_hosts=["testserver"], **options)
    return TestClient(app, base_url=ORIGIN, follow_redirects=False)


def sign_in(client: TestClient, token: str) -> httpx.Response:
    page = client.get("/signin")
    response = client.post(
        "/signin", data={"token": token, "csrf": csrf_of(page.text)}, headers={"Origin": ORIGIN}
    )
    return response


@pytest.fixture
def ana(inbox: Inbox) -> TestClient:
    """A browser signed in as ana (queue payables)."""
    client = client_for(inbox.service)
    assert sign_in(client, inbox.tokens["ana"]).status_code == 303
    return client


def signed_in(inbox: Inbox, name: str) -> TestClient:
    client = client_for(inbox.service)
    assert sign_in(client, inbox.tokens[name]).status_code == 303
    return client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "no csrf token in the page"
    return found.group(1)


def form_values(page: str, form_id: str = "decision") -> dict[str, str]:
    """What a browser would submit from form `form_id` as the page shows it (no checkboxes)."""
    start = page.index(f'<form id="{form_id}"')
    body = page[start : page.index("</form>", start)]
    values: dict[str, str] = {}
    for tag in re.finditer(r"<(input|select|textarea)([^>]*)>", body):
        attrs = {k: html.unescape(v) for k, v in re.findall(r'([\w-]+)="([^"]*)"', tag.group(2))}
        name = attrs.get("name")
        if not name or attrs.get("type") == "checkbox":
            continue
        if tag.group(1) == "input":
            values[name] = attrs.get("value", "")
        elif tag.group(1) == "select":
            options = body[tag.end() : body.index("</select>", tag.end())]
            chosen = re.search(r'<option value="([^"]*)" selected', options)
            values[name] = html.unescape(chosen.group(1)) if chosen else ""
        else:
            text = body[tag.end() : body.index("</textarea>", tag.end())]
            text = text[1:] if text.startswith("\n") else text  # as an HTML parser reads it
            values[name] = html.unescape(text)
    return values


def element_text(page: str, element_id: str) -> str:
    """The text of the element with `element_id` (tags stripped, entities decoded)."""
    found = re.search(rf'<(\w+)[^>]* id="{re.escape(element_id)}"[^>]*>(.*?)</\1>', page, re.S)
    assert found is not None, f"no #{element_id} in the page"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(2))).split())


def review_ids(page: str) -> list[str]:
    return re.findall(r'<tr data-review-id="([^"]+)"', page)
