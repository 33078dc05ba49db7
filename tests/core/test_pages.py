"""Pages, words and parts: offsets stay right when pages are joined and parts included, values are
found with their page and boxes, and documents with pages survive the store's JSON."""

from __future__ import annotations

from pydantic import TypeAdapter

from handrail import Document, Page, Part, Place, RunRecord, RunStatus, Word
from handrail.documents import Builder, PageContent
from handrail.documents.build import PAGE_BREAK, union, words_in


def _page(text: str, boxes: dict[str, tuple[float, float, float, float]]) -> PageContent:
    words = []
    for word, box in boxes.items():
        words.append(Word(text=word, box=box, start=text.index(word)))
    return PageContent(text=text, words=tuple(words), width=612, height=792)


def _invoice() -> Document:
    builder = Builder()
    builder.page(_page("Invoice INV-7\nSupplier Northgate", {"INV-7": (80, 10, 120, 20)}))
    builder.page(
        _page(
            "Total due 1,234.50\nThank you",
            {"Total": (10, 700, 40, 712), "1,234.50": (300, 700, 360, 712)},
        )
    )
    return builder.build(id="a.pdf", source="a.pdf", media_type="application/pdf")


def test_pages_are_joined_with_offsets_moved_into_the_document_text() -> None:
    doc = _invoice()
    first, second = doc.pages
    assert (
        doc.text
        == "Invoice INV-7\nSupplier Northgate" + PAGE_BREAK + "Total due 1,234.50\nThank you"
    )
    assert (first.number, second.number) == (1, 2)
    assert doc.text[second.start : second.end] == "Total due 1,234.50\nThank you"
    for page in doc.pages:
        for word in page.words:
            assert doc.text[word.start : word.start + len(word.text)] == word.text


def test_find_gives_the_page_and_the_boxes_of_the_words_a_value_covers() -> None:
    doc = _invoice()
    assert doc.find("1,234.50") == (
        Place(
            start=doc.text.index("1,234.50"),
            end=doc.text.index("1,234.50") + 8,
            page=2,
            boxes=((300, 700, 360, 712),),
        ),
    )
    assert doc.find("inv-7")[0].page == 1  # case does not matter
    assert doc.find("Total due 1,234.50")[0].boxes == ((10, 700, 40, 712), (300, 700, 360, 712))
    assert doc.find("not there") == ()
    assert doc.find("   ") == ()


def test_find_matches_a_value_split_over_lines_and_plain_text_has_no_page() -> None:
    doc = Document(text="Northgate Office\nSupplies Ltd\nTotal 12.00")
    (place,) = doc.find("Office Supplies")
    assert doc.text[place.start : place.end] == "Office\nSupplies"
    assert place.page is None and place.boxes == ()
    assert doc.page_at(0) is None


def test_page_at_names_the_page_holding_an_offset_and_none_between_pages() -> None:
    doc = _invoice()
    assert doc.page_at(0) == doc.pages[0]
    assert doc.page_at(doc.pages[1].start) == doc.pages[1]
    assert doc.page_at(doc.pages[0].end) is None  # the break between pages
    assert doc.page_at(len(doc.text) + 5) is None


def test_include_renumbers_an_attachments_pages_and_keeps_its_warnings() -> None:
    attachment = _invoice()
    attachment = Document(
        text=attachment.text,
        pages=attachment.pages,
        media_type="application/pdf",
        warnings=("page 2 has no text layer",),
    )
    builder = Builder()
    start, end = builder.text("Subject: invoice\n\nPlease find it attached.")
    builder.part(Part(name="body", media_type="text/plain", start=start, end=end))
    part = builder.include(attachment, name="inv.pdf")
    doc = builder.build(id="mail.eml", source="mail.eml", media_type="message/rfc822")
    assert [p.name for p in doc.parts] == ["body", "inv.pdf"]
    assert part.pages == (1, 2) and doc.pages[1].part == 1
    assert doc.pages[1].label == "inv.pdf, page 2"
    assert doc.text[part.start : part.end] == attachment.text
    assert doc.find("1,234.50")[0].page == 2
    assert doc.warnings == ("inv.pdf: page 2 has no text layer",)


def test_words_in_boxes_each_word_by_its_characters_and_skips_boxless_words() -> None:
    text = "ab cd\nef"
    boxes = [(0, 0, 5, 10), (5, 0, 10, 12), None, (20, 1, 25, 9), (25, 0, 30, 10), None, None, None]
    assert words_in(text, boxes) == (
        Word(text="ab", box=(0, 0, 10, 12), start=0),
        Word(text="cd", box=(20, 0, 30, 10), start=3),
    )
    assert union([None, None]) is None


def test_a_document_with_pages_and_parts_survives_the_stores_json() -> None:
    doc = _invoice()
    record = RunRecord(
        run_id="r1",
        pipeline="p",
        document_id=doc.id,
        document_hash=doc.hash,
        status=RunStatus.COMPLETED,
        document=doc,
    )
    adapter = TypeAdapter(RunRecord)
    back = adapter.validate_python(adapter.dump_python(record, mode="json"))
    assert back.document == doc
    assert isinstance(back.document.pages[0], Page)
    assert back.document.find("1,234.50") == doc.find("1,234.50")


async def test_document_warnings_become_the_runs_warnings() -> None:
    from handrail import PipelineBuilder, Rule, Runner

    pipeline = PipelineBuilder("p").add(Rule("echo", lambda state: state.text[:5])).build()
    doc = Document(text="hello world", warnings=("page 2 has no text layer and OCR is off",))
    record = await Runner(pipeline).run(doc)
    assert record.warnings == ("document: page 2 has no text layer and OCR is off",)
