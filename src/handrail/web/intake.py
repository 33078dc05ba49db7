"""The HTTP trigger: `POST /api/v1/pipelines/{name}/documents`, and the status of what a source
sent at `GET /api/v1/pipelines/{name}/documents/{run_id}` (docs/triggers.md).

A request is checked in this order, and nothing is recorded until every check passed:
signature headers present and the timestamp fresh (401), a media type handrail takes (415),
the body within the limit, read in a bounded way (413), the signature over the raw body (401,
before the body is parsed), a pipeline this server serves (404), a body that splits into
documents (400), each document of a format handrail reads (415) and within its size limit
(413). Then each document goes through the one intake path (`handrail.triggers.Intake`) and the
answer is 202 with its run. Secrets and document text are never logged nor echoed.

A status request is signed as a POST is, over `GET <path>` in place of a body
(`http.sign_status`), and answered only for runs the source's own receipts point at: another
source's run and a run that does not exist are the same 404.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from handrail.exceptions import StoreError
from handrail.triggers.http import (
    SIGNATURE_HEADER,
    SOURCE_HEADER,
    TIMESTAMP_HEADER,
    TOLERANCE_S,
    Sources,
    fresh,
)
from handrail.triggers.intake import (
    FILE_LIMIT,
    Delivered,
    Intake,
    size_limit,
    supported,
)
from handrail.web.security import API_PREFIX

BODIES = {
    "text/plain": "document.txt",
    "application/json": "document.json",
    "message/rfc822": "message.eml",
}
"""The media types a body may have, and the file name each is read as."""
MULTIPART = "multipart/form-data"
MAX_FILES = 100
"""Files one multipart request may carry."""
MAX_KEY = 200
"""The longest `Idempotency-Key` accepted (printable ASCII)."""


@dataclass(frozen=True, slots=True)
class _Part:
    name: str
    media_type: str | None
    data: bytes


class Refused(Exception):
    """A request answered with an error, before anything was recorded."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def intake_router(
    intakes: Mapping[str, Intake],
    sources: Sources,
    *,
    max_bytes: int = FILE_LIMIT,
    clock: Callable[[], float] = time.time,
) -> APIRouter:
    """The route, taking documents for the pipelines in `intakes` (by name) from `sources`,
    bodies of at most `max_bytes`; `clock` is the server's (unix seconds)."""
    router = APIRouter()

    @router.post(f"{API_PREFIX}/pipelines/{{name}}/documents", status_code=202)
    async def take(request: Request, name: str) -> JSONResponse:
        try:
            return await _take(request, name)
        except Refused as e:
            headers = {"WWW-Authenticate": "HMAC-SHA256"} if e.status == 401 else None
            return JSONResponse({"error": str(e)}, status_code=e.status, headers=headers)
        except StoreError as e:
            return JSONResponse({"error": f"{e}; try again in a moment"}, status_code=503)

    async def _take(request: Request, name: str) -> JSONResponse:
        headers = request.headers
        source = headers.get(SOURCE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if not source or not signature or not fresh(timestamp, clock()):
            raise Refused(401, _UNSIGNED)
        media_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type not in BODIES and media_type != MULTIPART:
            raise Refused(415, _UNSUPPORTED)
        body = await _read(request, max_bytes)
        if not sources.verify(
            source=source, timestamp=timestamp, signature=signature, body=body, at=clock()
        ):
            raise Refused(401, _UNSIGNED)
        intake = intakes.get(name)
        if intake is None:
            raise Refused(404, f"this server takes no documents for a pipeline `{name}`")
        base = _key(headers.get("idempotency-key"), body)
        if media_type == MULTIPART:
            parts = await _files(headers, body)
            keyed = [(f"{name}/{base}#{i}", p, p.name) for i, p in enumerate(parts)]
        else:
            if not body.strip():
                raise Refused(400, "the body is empty: send the document as the request body")
            part = _Part(name=BODIES[media_type], media_type=media_type, data=body)
            keyed = [(f"{name}/{base}", part, f"http:{source}/{base[:40]}")]
        for _, part, _ in keyed:
            if not supported(part.name, part.media_type):
                raise Refused(415, f"`{part.name}` is not of a type handrail reads")
            limit = size_limit(part.name, part.media_type)
            if len(part.data) > limit:
                raise Refused(413, f"`{part.name}` is over the {limit // 2**20} MB limit")
        answers = []
        for key, part, document_id in keyed:  # one thread hop each: taken in, then answered
            answer = await run_in_threadpool(
                _accept, intake, f"http:{source}", key, part, document_id, name
            )
            answers.append(answer)
        body_out: dict[str, Any] = {"documents": answers}
        if len(answers) == 1:
            body_out |= {k: v for k, v in answers[0].items() if k != "name"}
        location = {"Location": answers[0]["status_url"]}
        return JSONResponse(body_out, status_code=202, headers=location)

    @router.get(f"{API_PREFIX}/pipelines/{{name}}/documents/{{run_id}}")
    async def status(request: Request, name: str, run_id: str) -> JSONResponse:
        try:
            return await _status(request, name, run_id)
        except Refused as e:
            headers = {"WWW-Authenticate": "HMAC-SHA256"} if e.status == 401 else None
            return JSONResponse({"error": str(e)}, status_code=e.status, headers=headers)
        except StoreError as e:
            return JSONResponse({"error": f"{e}; try again in a moment"}, status_code=503)

    async def _status(request: Request, name: str, run_id: str) -> JSONResponse:
        headers = request.headers
        source = headers.get(SOURCE_HEADER)
        timestamp = headers.get(TIMESTAMP_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        path = request.scope.get("raw_path") or request.url.path.encode()
        if not source or not signature or not fresh(timestamp, clock()):
            raise Refused(401, _UNSIGNED_STATUS)
        if not sources.verify(
            source=source,
            timestamp=timestamp,
            signature=signature,
            path=path,
            at=clock(),
        ):
            raise Refused(401, _UNSIGNED_STATUS)
        intake = intakes.get(name)
        if intake is None:
            raise Refused(404, f"this server takes no documents for a pipeline `{name}`")
        found = await run_in_threadpool(intake.delivered, f"http:{source}", run_id)
        if found is None:  # another source's run, or none: the same answer
            raise Refused(404, f"no document this source sent to `{name}` has this run")
        return JSONResponse(_delivered(found))

    return router


_UNSIGNED = (
    "refused: this request is not signed by a source this server knows (headers "
    f"{SOURCE_HEADER}, {TIMESTAMP_HEADER} within {TOLERANCE_S // 60} minutes, and "
    f"{SIGNATURE_HEADER}: sha256=HMAC of the timestamp, a dot and the body; docs/triggers.md)"
)
_UNSIGNED_STATUS = (
    "refused: this request is not signed by a source this server knows (headers "
    f"{SOURCE_HEADER}, {TIMESTAMP_HEADER} within {TOLERANCE_S // 60} minutes, and "
    f"{SIGNATURE_HEADER}: sha256=HMAC of the timestamp, a dot, `GET ` and the path; "
    "docs/triggers.md)"
)
_UNSUPPORTED = (
    "send the document as text/plain, application/json, message/rfc822 or multipart/form-data "
    "file uploads"
)


async def _read(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it is known to be over `limit`: by its Content-Length,
    else once one byte more than `limit` has come in."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise Refused(413, f"the body is over the {limit // 2**20} MB limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, f"the body is over the {limit // 2**20} MB limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _key(given: str | None, body: bytes) -> str:
    """The receipt key: the `Idempotency-Key`, else the body's SHA-256 (an exact retry is the
    same delivery)."""
    if given is None:
        return f"sha256:{hashlib.sha256(body).hexdigest()}"
    key = given.strip()
    if not key or len(key) > MAX_KEY or not all(" " < c <= "~" for c in key):
        raise Refused(400, f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters")
    return key


async def _files(headers: Headers, body: bytes) -> list[_Part]:
    """The files of a multipart body (fields that are not files are ignored)."""

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(headers, stream(), max_files=MAX_FILES, max_fields=MAX_FILES)
    try:
        form = await parser.parse()
    except MultiPartException as e:
        raise Refused(400, f"the multipart body cannot be read ({e.message})") from e
    parts = []
    try:
        for _, value in form.multi_items():
            if isinstance(value, UploadFile):
                name = PurePath((value.filename or "").replace("\\", "/")).name or "upload"
                parts.append(
                    _Part(name=name, media_type=value.content_type, data=await value.read())
                )
    finally:
        await form.close()
    if not parts:
        raise Refused(400, "the multipart body holds no file: send each document as a file part")
    return parts


def _accept(
    intake: Intake, source: str, key: str, part: _Part, document_id: str, pipeline: str
) -> dict[str, Any]:
    """One document taken in, and its answer (run in a worker thread: it waits for the
    database)."""
    accepted = intake.accept_bytes(
        source, key, part.data, name=part.name, media_type=part.media_type, document_id=document_id
    )
    status = "queued"  # queued just now: no need to ask
    if not accepted.new or accepted.error is not None:  # where its run is now
        found = intake.delivered(source, accepted.run_id)
        status = "queued" if found is None else found.status
    answer: dict[str, Any] = {
        "run_id": accepted.run_id,
        "status_url": status_url(pipeline, accepted.run_id),
        "new": accepted.new,
        "status": status,
    }
    if accepted.error is not None:
        answer["error"] = accepted.error
    return answer | {"name": part.name}


def status_url(pipeline: str, run_id: str) -> str:
    """Where the source that sent a document reads its run's status (signed, as it sent it)."""
    return f"{API_PREFIX}/pipelines/{pipeline}/documents/{run_id}"


def _delivered(found: Delivered) -> dict[str, Any]:
    return {
        "run_id": found.run_id,
        "pipeline": found.pipeline,
        "received_at": found.received_at.isoformat(),
        "status": found.status,
        "review": found.review,
    }


__all__ = ["BODIES", "MAX_FILES", "Refused", "intake_router", "status_url"]
