"""Text, Markdown and JSON through `load_bytes`: the text rules (byte-order marks, NUL, UTF-8,
empty, JSON that parses), now in `handrail.documents.text`, each naming the file and the fix."""

from __future__ import annotations

import codecs

import pytest

from handrail import InputError
from handrail.documents import LoadOptions, load_bytes


def test_text_markdown_and_json_keep_their_text_and_say_what_they_are() -> None:
    options = LoadOptions()
    text = load_bytes(b"Order A-17\n", name="a.txt", options=options)
    markdown = load_bytes(b"# Order\n", name="b.md", options=options)
    data = load_bytes(b'{"order": "A-17"}', name="c.json", options=options)
    assert (text.text, text.media_type, text.id, text.source) == (
        "Order A-17\n",
        "text/plain",
        "a.txt",
        "a.txt",
    )
    assert (markdown.text, markdown.media_type) == ("# Order\n", "text/markdown")
    assert (data.data, data.media_type) == ({"order": "A-17"}, "application/json")
    assert text.pages == text.parts == text.warnings == ()


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (codecs.BOM_UTF8 + "Café".encode(), "Café"),
        (codecs.BOM_UTF16_LE + "Café".encode("utf-16-le"), "Café"),
        (codecs.BOM_UTF32_BE + "Café".encode("utf-32-be"), "Café"),
    ],
)
def test_byte_order_marks_are_read_and_dropped(data: bytes, text: str) -> None:
    assert load_bytes(data, name="a.txt").text == text


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        (
            "a.txt",
            b"ab\x00cd",
            "`a.txt` looks binary (it contains NUL bytes); convert it to text (.txt, .md, .eml, "
            ".json) first",
        ),
        (
            "a.md",
            "café".encode("latin-1"),
            "`a.md` is not UTF-8 text (byte 0xe9 at offset 3); re-save it as UTF-8",
        ),
        (
            "a.txt",
            b"  \n\t",
            "`a.txt` is empty; there is nothing to process (check the file, or leave it out of "
            "the batch)",
        ),
        (
            "a.json",
            b"{",
            "`a.json` is not valid JSON (Expecting property name enclosed in double quotes: line 1 "
            "column 2 (char 1)); fix it, or rename it to .txt to read it as plain text",
        ),
        (
            "a.txt",
            codecs.BOM_UTF32_LE + b"\xff\xff\xff\xff",
            "`a.txt` starts with a UTF-32 byte-order mark but is not valid UTF-32 (at offset 4); "
            "re-save it as UTF-8",
        ),
    ],
)
def test_each_text_rule_fails_the_document_naming_the_fix(
    name: str, data: bytes, message: str
) -> None:
    with pytest.raises(InputError) as info:
        load_bytes(data, name=name)
    assert str(info.value) == message


def test_too_much_text_fails_naming_the_limit() -> None:
    with pytest.raises(InputError) as info:
        load_bytes(b"x" * 101, name="a.txt", options=LoadOptions(max_chars=100))
    assert str(info.value) == (
        "`a.txt` holds 101 characters of text, over the 100 limit; split it, or raise "
        "LoadOptions.max_chars"
    )


def test_an_unsupported_type_names_the_types_handrail_reads() -> None:
    with pytest.raises(InputError, match=r"^`a\.heic` has an unsupported file type `\.heic`"):
        load_bytes(b"....", name="a.heic")
