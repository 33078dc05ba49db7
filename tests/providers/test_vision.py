"""Page images through `LiteLLMModel`: a real PDF's pages rendered and sent as image content parts
beside the text, recorded on the step; a source file gone degrades to text with a warning; a
model that cannot see (by litellm's map, or the embedded one) is refused before any call."""

from __future__ import annotations

import base64
import dataclasses
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from handrail import Document, Extract, PipelineBuilder, Runner, RunStatus
from handrail.core.model import Message, ModelRequest
from handrail.documents import DEFAULT_OPTIONS, LoadOptions
from handrail.exceptions import PermanentProviderError
from handrail.inputs import load_document
from handrail.providers import FakeModel, RecordingModel, ReplayModel
from handrail.providers import litellm as adapter
from handrail.providers.litellm import LiteLLMModel
from handrail.providers.replay import keyed_request

pytest.importorskip("pypdfium2", reason="rendering pages needs handrail's `documents` extra")
pytest.importorskip("reportlab", reason="the test PDF is made with reportlab (the `test` extra)")

ANSWER = '{"supplier": "ACME", "total": 12.5}'
PNG = b"\x89PNG\r\n\x1a\n"


class Invoice(BaseModel):
    supplier: str
    total: float


def make_pdf(path: Path, pages: int = 3) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), pagesize=A4)
    for number in range(1, pages + 1):
        pdf.drawString(72, 760, f"Invoice INV-{number} page {number}")
        pdf.drawString(72, 740, "Supplier: ACME")
        pdf.drawString(72, 720, "Total: 12.50")
        pdf.showPage()
    pdf.save()
    return path


def load(path: Path, options: LoadOptions = DEFAULT_OPTIONS) -> Document:
    """The document as `handrail run` reads it: source = the path, metadata["file_sha256"]."""
    document = load_document(path, document_id=path.name, options=options)
    assert isinstance(document, Document), document
    return document


@pytest.fixture
def invoice(tmp_path: Path) -> Document:
    document = load(make_pdf(tmp_path / "invoice.pdf"))
    assert [page.number for page in document.pages] == [1, 2, 3]
    return document


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """The keyword arguments of every litellm call, answered by litellm's `mock_response`."""
    calls: list[dict[str, Any]] = []
    real = adapter.litellm.acompletion

    async def recording(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return await real(**kwargs)

    monkeypatch.setattr(adapter.litellm, "acompletion", recording)
    yield calls


def request(document: Document | None, images: tuple[int, ...] = (1, 2)) -> ModelRequest:
    return ModelRequest(
        node="fields",
        kind="extract",
        messages=(
            Message(role="system", content="Extract the fields."),
            Message(role="user", content=document.text if document else "Supplier: ACME"),
        ),
        output_schema=Invoice.model_json_schema(),
        output_type=Invoice,
        images=images,
        document=document,
    )


def image_parts(call: dict[str, Any]) -> list[dict[str, Any]]:
    user = next(m for m in call["messages"] if m["role"] == "user")
    content = user["content"]
    if not isinstance(content, list):
        return []
    return [part for part in content if part["type"] == "image_url"]


def decoded(part: dict[str, Any]) -> bytes:
    url = part["image_url"]["url"]
    prefix = "data:image/png;base64,"
    assert url.startswith(prefix)
    return base64.b64decode(url[len(prefix) :])


def model(name: str = "openai/gpt-4o-mini", **options: Any) -> LiteLLMModel:
    return LiteLLMModel(name, confidence="none", mock_response=ANSWER, **options)


def pipeline(images: bool | int = 2) -> Any:
    node = Extract("fields", Invoice, gate=None, images=images)
    return PipelineBuilder("vision").add(node).build()


# --- the request ----------------------------------------------------------------------------


async def test_the_pages_go_as_png_images_after_the_document_text(
    invoice: Document, sent: list[dict[str, Any]]
) -> None:
    from PIL import Image

    response = await model(image_side=800).generate(request(invoice))
    assert response.images_sent == (1, 2)
    assert response.warnings == ()
    [call] = sent
    system, user = call["messages"]
    assert system["content"].startswith("Extract the fields.")  # the system message stays text
    first, *rest = user["content"]
    assert first == {"type": "text", "text": invoice.text}
    assert [part["type"] for part in rest] == ["text", "image_url", "text", "image_url"]
    labels = [part["text"] for part in rest if part["type"] == "text"]
    assert labels == ["invoice.pdf, page 1:", "invoice.pdf, page 2:"]
    for part, page in zip(image_parts(call), invoice.pages[:2], strict=True):
        data = decoded(part)
        assert data.startswith(PNG)
        with Image.open(io.BytesIO(data)) as image:
            assert max(image.size) <= 800
            # the page's shape, not a blank square: an A4 page is taller than wide
            assert image.height / image.width == pytest.approx(page.height / page.width, rel=0.02)


async def test_an_extract_with_images_sends_two_pages_and_records_them_on_its_step(
    invoice: Document, sent: list[dict[str, Any]]
) -> None:
    record = await Runner(pipeline(images=2), model=model()).run(invoice)
    assert record.status == RunStatus.COMPLETED, record.error
    assert record.outputs["fields"] == Invoice(supplier="ACME", total=12.5)
    [step] = record.steps
    assert [a.images for a in step.attempts] == [(1, 2)]
    assert [len(image_parts(call)) for call in sent] == [2]


async def test_a_text_only_request_is_sent_as_before(sent: list[dict[str, Any]]) -> None:
    response = await model().generate(request(None, images=()))
    assert response.images_sent == ()
    [call] = sent
    assert all(isinstance(m["content"], str) for m in call["messages"])
    assert not [key for key in call if key.startswith("_handrail")]


async def test_samples_and_reasks_render_the_pages_once(
    invoice: Document, sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from handrail.documents import render

    rendered: list[tuple[int, ...]] = []
    real = render.render_pages

    def counting(document: Document, pages: Any, **options: Any) -> Any:
        rendered.append(tuple(pages))
        return real(document, pages, **options)

    monkeypatch.setattr(render, "render_pages", counting)
    sampling = LiteLLMModel(
        "openai/gpt-4o-mini", confidence="agreement", samples=3, mock_response=ANSWER
    )
    first = await sampling.generate(request(invoice))
    again = await sampling.generate(dataclasses.replace(request(invoice), attempt=2))
    assert rendered == [(1, 2)]
    assert first.images_sent == again.images_sent == (1, 2)
    assert sent and all(len(image_parts(call)) == 2 for call in sent)


async def test_rendered_pages_kept_are_bounded_by_size(
    invoice: Document, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handrail.documents import render
    from handrail.providers import _images

    rendered: list[tuple[int, ...]] = []
    real = render.render_pages

    def counting(document: Document, pages: Any, **options: Any) -> Any:
        rendered.append(tuple(pages))
        return real(document, pages, **options)

    monkeypatch.setattr(render, "render_pages", counting)
    monkeypatch.setattr(_images, "_CACHE_BYTES", 1)  # room for the last set only
    images = _images.PageImages(max_side=200)
    for pages in [(1,), (2,), (2,), (1,)]:
        seen = await images.look(request(invoice, images=pages))
        assert seen.pages == pages
    assert rendered == [(1,), (2,), (1,)]


# --- degrading and refusing ------------------------------------------------------------------


async def test_a_source_file_gone_degrades_to_text_with_a_warning(
    invoice: Document, sent: list[dict[str, Any]]
) -> None:
    assert invoice.source is not None
    Path(invoice.source).unlink()
    record = await Runner(pipeline(images=2), model=model()).run(invoice)
    assert record.status == RunStatus.COMPLETED, record.error
    [attempt] = record.steps[0].attempts
    assert attempt.images == ()
    [warning] = attempt.warnings
    assert warning.startswith("pages 1, 2 of `invoice.pdf` could not be rendered as images for ")
    assert warning.endswith("the model read the text only")
    [call] = sent
    assert all(isinstance(m["content"], str) for m in call["messages"])


async def test_a_source_file_changed_since_it_was_read_is_not_shown(
    invoice: Document, sent: list[dict[str, Any]]
) -> None:
    assert invoice.source is not None
    make_pdf(Path(invoice.source), pages=4)  # another file under the same name
    response = await model().generate(request(invoice))
    assert response.images_sent == ()
    [warning] = response.warnings
    assert "changed since it was read" in warning
    assert image_parts(sent[0]) == []


async def test_an_image_file_is_one_page_sent_as_it_is(
    tmp_path: Path, sent: list[dict[str, Any]]
) -> None:
    from PIL import Image, ImageDraw, ImageFont

    path = tmp_path / "receipt.png"
    picture = Image.new("RGB", (300, 500), "white")
    font = ImageFont.load_default(size=28)
    ImageDraw.Draw(picture).text((20, 20), "Supplier: ACME", fill="black", font=font)
    picture.save(path)
    document = load(path)  # read by OCR
    assert "ACME" in document.text
    record = await Runner(pipeline(images=True), model=model()).run(document)
    assert [a.images for a in record.steps[0].attempts] == [(1,)]
    [part] = image_parts(sent[0])
    with Image.open(io.BytesIO(decoded(part))) as shown:
        assert shown.size == (300, 500)  # smaller than image_side: not enlarged


async def test_a_model_litellm_says_cannot_see_is_refused_before_any_call(
    invoice: Document, sent: list[dict[str, Any]]
) -> None:
    adapter.litellm.register_model(
        {
            "openai/handrail-blind-test": {
                "litellm_provider": "openai",
                "mode": "chat",
                "supports_vision": False,
                "input_cost_per_token": 0.0,
                "output_cost_per_token": 0.0,
            }
        }
    )
    with pytest.raises(PermanentProviderError) as e:
        await model("openai/handrail-blind-test").generate(request(invoice))
    assert str(e.value) == (
        "`fields` asks for page images (pages 1, 2), but litellm's model map says "
        "'openai/handrail-blind-test' cannot take images; use a model that can see (e.g. "
        "openai/gpt-4o-mini), drop images= from the node, or pass "
        "LiteLLMModel(..., vision=True) if the map is wrong about it"
    )
    assert sent == []
    # vision=True overrides the map; vision=False refuses a model the map says can see
    seeing = await model("openai/handrail-blind-test", vision=True).generate(request(invoice))
    assert seeing.images_sent == (1, 2)
    with pytest.raises(PermanentProviderError):
        await model(vision=False).generate(request(invoice))


async def test_a_model_the_map_does_not_know_is_sent_the_images(
    invoice: Document, sent: list[dict[str, Any]]
) -> None:
    unknown = model("openai/handrail-unmapped-test", api_base="http://127.0.0.1:9/v1")
    response = await unknown.generate(request(invoice))
    assert response.images_sent == (1, 2)
    assert len(image_parts(sent[0])) == 2


async def test_a_step_refused_for_a_blind_model_fails_saying_why(invoice: Document) -> None:
    record = await Runner(pipeline(images=1), model=model(vision=False)).run(invoice)
    assert record.status == RunStatus.FAILED
    assert record.error is not None
    assert "asks for page images (pages 1)" in record.error.message
    assert "cannot take images" in record.error.message


async def test_the_embedded_model_says_it_reads_text_only(invoice: Document) -> None:
    pytest.importorskip("llama_cpp", reason="the embedded model needs handrail's `local` extra")
    local = LiteLLMModel("local/gemma3-270m")
    with pytest.raises(PermanentProviderError) as e:
        await local.generate(request(invoice, images=(1,)))
    assert str(e.value) == (
        "`fields` asks for page images (pages 1), but the embedded model 'local/gemma3-270m' "
        "reads text only; drop images= from the node, or run it with a hosted model that can "
        "see (e.g. --model openai/gpt-4o-mini)"
    )


# --- the fake and recordings ------------------------------------------------------------------


async def test_the_fake_model_records_the_pages_it_was_asked_to_see(invoice: Document) -> None:
    fake = FakeModel()
    record = await Runner(pipeline(images=2), model=fake).run(invoice)
    assert [call.images for call in fake.calls_for("fields")] == [(1, 2)]
    assert record.steps[0].attempts[0].images == (1, 2)
    assert record.outputs["fields"] == Invoice(supplier="ACME", total=12.5)


async def test_recordings_key_the_pages_and_replay_what_was_shown(
    invoice: Document, tmp_path: Path
) -> None:
    text_only = keyed_request("m", request(invoice, images=()))
    assert "images" not in text_only  # recordings made before page images keep their keys
    assert keyed_request("m", request(invoice))["images"] == [1, 2]
    recording = RecordingModel(FakeModel(), tmp_path / "recordings")
    shown = await recording.generate(request(invoice))
    replayed = await ReplayModel(tmp_path / "recordings").generate(request(invoice))
    assert shown.images_sent == replayed.images_sent == (1, 2)
