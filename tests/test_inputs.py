"""`handrail.inputs`: files, folders and stdin become Documents, or InputErrors naming the fix."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from handrail import Document, InputError
from handrail.inputs import find_documents, load_document, load_documents

EMAIL = b"""\
From: Ann Lee <ann@example.com>
To: support@example.com
Subject: Refund for order A-17
Date: Mon, 01 Jan 2024 10:00:00 +0000
Message-ID: <1@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b"

--b
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: quoted-printable

Please refund me.=0AOrder ID: A-17

--b
Content-Type: text/html; charset="utf-8"

<p>Please <b>refund</b> me.</p>
--b--
"""


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def only(items: list[Document | InputError]) -> Document | InputError:
    assert len(items) == 1
    return items[0]


def error_of(item: Document | InputError) -> tuple[str, str]:
    assert isinstance(item, InputError), item
    return getattr(item, "document_id", None), str(item)


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_text_file_is_a_document_named_by_its_path_as_given(in_tmp: Path) -> None:
    write(in_tmp / "inbox" / "a.txt", "Order ID: A-17\n")
    doc = only(load_documents(["inbox/a.txt"]))
    assert doc == Document(text="Order ID: A-17\n", id="inbox/a.txt", source="inbox/a.txt")


def test_a_utf8_bom_is_dropped(in_tmp: Path) -> None:
    write(in_tmp / "bom.md", b"\xef\xbb\xbf# Title\n")
    doc = only(load_documents(["bom.md"]))
    assert isinstance(doc, Document) and doc.text == "# Title\n"


def test_a_folder_is_read_recursively_in_sorted_order_skipping_hidden_and_other_files(
    in_tmp: Path,
) -> None:
    for name in [
        "b.txt",
        "a/z.md",
        "a/b/c.json",
        "a.txt",
        "A.txt",
        "notes.pdf",
        ".secret.txt",
        ".git/config.txt",
        "a/.cache/x.txt",
        "upper.TXT",
    ]:
        write(in_tmp / "docs" / name, '{"x": 1}' if name.endswith(".json") else "text")
    ids = [item.id for item in load_documents(["docs"]) if isinstance(item, Document)]
    assert ids == [
        "docs/A.txt",
        "docs/a/b/c.json",
        "docs/a/z.md",
        "docs/a.txt",
        "docs/b.txt",
        "docs/upper.TXT",
    ]


def test_documents_keep_the_order_of_the_arguments(in_tmp: Path) -> None:
    write(in_tmp / "z.txt", "z")
    write(in_tmp / "dir" / "m.txt", "m")
    write(in_tmp / "a.txt", "a")
    found = find_documents(["z.txt", "dir", "a.txt", "-"])
    assert [doc_id for _, doc_id in found] == ["z.txt", "dir/m.txt", "a.txt", "-"]
    assert found[-1][0] is None


def test_a_folder_given_as_dot_names_files_relative_to_it(in_tmp: Path) -> None:
    write(in_tmp / "x.txt", "x")
    assert [doc_id for _, doc_id in find_documents(["."])] == ["x.txt"]


def test_stdin_is_the_document_dash() -> None:
    doc = only(load_documents(["-"], stdin=io.BytesIO(b"Amount: 100\n")))
    assert doc == Document(text="Amount: 100\n", id="-", source="-")


def test_empty_stdin_is_named_as_stdin() -> None:
    assert error_of(only(load_documents(["-"], stdin=io.BytesIO(b"  \n")))) == (
        "-",
        "stdin (`-`) is empty; there is nothing to process (check the file, or leave it out of "
        "the batch)",
    )


def test_stdin_over_the_limit_is_an_error() -> None:
    item = only(load_documents(["-"], stdin=io.BytesIO(b"x" * 11), max_bytes=10))
    assert error_of(item) == (
        "-",
        "stdin (`-`) is over the 10 bytes limit; trim or split it, or raise the limit "
        "(--max-bytes)",
    )


def test_a_missing_path_raises_because_the_command_is_wrong(in_tmp: Path) -> None:
    with pytest.raises(InputError) as info:
        load_documents(["nothere.txt"])
    assert str(info.value) == (
        "input `nothere.txt` does not exist; check the path "
        "(inputs are .txt, .md, .eml, .json files, folders, or `-` for stdin)"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "empty.txt",
            b"",
            "`empty.txt` is empty; there is nothing to process "
            "(check the file, or leave it out of the batch)",
        ),
        (
            "blank.md",
            b" \n\t\n",
            "`blank.md` is empty; there is nothing to process "
            "(check the file, or leave it out of the batch)",
        ),
        (
            "image.txt",
            b"\x89PNG\x00\x00",
            "`image.txt` looks binary (it contains NUL bytes); "
            "convert it to text (.txt, .md, .eml, .json) first",
        ),
        (
            "latin1.txt",
            "café".encode("latin-1"),
            "`latin1.txt` is not UTF-8 text (byte 0xe9 at offset 3); re-save it as UTF-8",
        ),
        (
            "report.pdf",
            b"%PDF-1.4",
            "`report.pdf` has an unsupported file type `.pdf`; handrail reads .txt, .md, .eml, "
            ".json (convert it to text, or leave it out)",
        ),
        (
            "README",
            b"hello",
            "`README` has an unsupported file type (no extension); handrail reads .txt, .md, "
            ".eml, .json (convert it to text, or leave it out)",
        ),
        (
            "bad.json",
            b'{"a": ',
            "`bad.json` is not valid JSON (Expecting value: line 1 column 7 (char 6)); fix it, "
            "or rename it to .txt to read it as plain text",
        ),
        (
            "big.txt",
            b"x" * 2048,
            "`big.txt` is 2048 bytes, over the 1024 bytes limit; trim or split it, "
            "or raise the limit (--max-bytes)",
        ),
    ],
)
def test_a_bad_document_becomes_an_input_error_naming_the_file_and_the_fix(
    in_tmp: Path, name: str, content: bytes, message: str
) -> None:
    write(in_tmp / name, content)
    assert error_of(only(load_documents([name], max_bytes=1024))) == (name, message)


def test_a_bad_document_does_not_stop_the_others(in_tmp: Path) -> None:
    write(in_tmp / "docs" / "a.txt", "fine")
    write(in_tmp / "docs" / "b.txt", b"")
    write(in_tmp / "docs" / "c.txt", "fine too")
    items = load_documents(["docs"])
    assert [type(item).__name__ for item in items] == ["Document", "InputError", "Document"]


def test_the_size_limit_in_megabytes_reads_as_such(in_tmp: Path) -> None:
    write(in_tmp / "huge.txt", b"x" * (6 * 1024 * 1024))
    _, message = error_of(only(load_documents(["huge.txt"])))
    assert message.startswith("`huge.txt` is 6 MB, over the 5 MB limit;")


def test_an_unreadable_file_is_an_error(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(in_tmp / "locked.txt", "secret")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", os.fspath(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert error_of(load_document("locked.txt")) == (
        "locked.txt",
        "`locked.txt` cannot be read (Permission denied); check that it is a readable file",
    )


def test_json_keeps_its_raw_text(in_tmp: Path) -> None:
    write(in_tmp / "order.json", '{"order_id": "A-17",\n "amount": 100}')
    doc = only(load_documents(["order.json"]))
    assert isinstance(doc, Document)
    assert doc.text == '{"order_id": "A-17",\n "amount": 100}'
    assert doc.data == {"order_id": "A-17", "amount": 100}


def test_an_email_becomes_its_headers_and_plain_text_body(in_tmp: Path) -> None:
    write(in_tmp / "mail.eml", EMAIL)
    doc = only(load_documents(["mail.eml"]))
    assert isinstance(doc, Document)
    assert doc.text == (
        "Subject: Refund for order A-17\n"
        "From: Ann Lee <ann@example.com>\n"
        "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
        "\n"
        "Please refund me.\n"
        "Order ID: A-17\n"
    )
    assert doc.metadata == {
        "subject": "Refund for order A-17",
        "from": "Ann Lee <ann@example.com>",
        "date": "Mon, 01 Jan 2024 10:00:00 +0000",
        "to": "support@example.com",
        "message_id": "<1@example.com>",
    }


def test_an_html_only_email_is_read_as_text(in_tmp: Path) -> None:
    write(
        in_tmp / "html.eml",
        b"Subject: Hi\nContent-Type: text/html; charset=utf-8\n\n"
        b"<p>Order&nbsp;ID: A-17</p><p>Thanks</p>",
    )
    doc = only(load_documents(["html.eml"]))
    assert isinstance(doc, Document)
    assert doc.text == "Subject: Hi\n\nOrder ID: A-17\nThanks\n"


def test_an_email_without_subject_or_body_is_empty(in_tmp: Path) -> None:
    write(in_tmp / "bare.eml", b"From: a@example.com\n\n\n")
    assert error_of(only(load_documents(["bare.eml"])))[1].startswith("`bare.eml` is empty;")
