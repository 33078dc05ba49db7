"""`handrail.inputs`: files, folders and stdin become Documents, or InputErrors naming the fix."""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from handrail import Document, InputError
from handrail.documents import SUFFIXES
from handrail.inputs import Skipped, find_documents, load_documents, read_inputs

SUPPORTED = ", ".join(SUFFIXES)
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
    sha256 = hashlib.sha256(b"Order ID: A-17\n").hexdigest()
    assert doc == Document(
        text="Order ID: A-17\n",
        id="inbox/a.txt",
        source="inbox/a.txt",
        metadata={"file_sha256": sha256},
    )


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
        "(inputs are files, folders, or `-` for stdin)"
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
            "photo.heic",
            b"\x00\x00\x00\x18ftypheic",
            f"`photo.heic` has an unsupported file type `.heic`; handrail reads {SUPPORTED} "
            "(convert it to one of these, or leave it out)",
        ),
        (
            "README",
            b"hello",
            f"`README` has an unsupported file type (no extension); handrail reads {SUPPORTED} "
            "(convert it to one of these, or leave it out)",
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
        "file_sha256": hashlib.sha256(EMAIL).hexdigest(),
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


# --- files that are not documents: special files, symlinks, unreadable folders, encodings -----

# A child process loads the inputs, so a regression that blocks (a FIFO) or reads without end
# (/dev/zero) fails the test by its timeout and memory limit instead of hanging the suite.
CHILD = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
from handrail.inputs import Document, read_inputs
loaded = read_inputs(**json.loads(sys.argv[1]))
print(json.dumps({
    "items": [
        [item.id, "document", item.text] if isinstance(item, Document)
        else [item.document_id, "error", str(item)]
        for item in loaded.items
    ],
    "skipped": [[entry.path, entry.reason] for entry in loaded.skipped],
}))
"""


def load_in_child(
    cwd: Path,
    paths: list[str],
    *,
    max_bytes: int = 1024,
    follow_symlinks: bool = False,
    without_root_powers: bool = False,
) -> dict[str, list[list[str]]]:
    """`read_inputs(paths)` in a child process with a 20 s timeout and 1 GB of memory, as
    {"items": [[id, "document", text] or [id, "error", message]], "skipped": [[path, reason]]}.
    With `without_root_powers` root loses the power to read what permissions forbid: setpriv
    drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, so a chmod-000 folder really fails for root."""
    spec = {"paths": paths, "max_bytes": max_bytes, "follow_symlinks": follow_symlinks}
    command = [sys.executable, "-c", CHILD, json.dumps(spec)]
    if without_root_powers and os.geteuid() == 0:
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_fifo_is_refused_without_being_opened(in_tmp: Path) -> None:
    os.mkfifo(in_tmp / "pipe.txt")
    assert load_in_child(in_tmp, ["pipe.txt"])["items"] == [
        [
            "pipe.txt",
            "error",
            "`pipe.txt` is a named pipe (FIFO), not a regular file; handrail reads regular "
            "files only (copy its content into a file, or pipe it into `-`)",
        ]
    ]


def test_a_fifo_in_a_folder_is_skipped_and_listed_and_the_batch_goes_on(in_tmp: Path) -> None:
    write(in_tmp / "inbox" / "a.txt", "fine")
    os.mkfifo(in_tmp / "inbox" / "pipe.txt")
    assert load_in_child(in_tmp, ["inbox"]) == {
        "items": [["inbox/a.txt", "document", "fine"]],
        "skipped": [["inbox/pipe.txt", "a named pipe (FIFO), not a regular file"]],
    }


def test_a_symlink_to_dev_zero_is_a_device_not_an_endless_read(in_tmp: Path) -> None:
    (in_tmp / "zero.txt").symlink_to("/dev/zero")
    loaded = load_in_child(in_tmp, ["zero.txt"], max_bytes=100, follow_symlinks=True)
    assert loaded["items"] == [
        [
            "zero.txt",
            "error",
            "`zero.txt` is a character device, not a regular file; handrail reads regular "
            "files only (copy its content into a file, or pipe it into `-`)",
        ]
    ]


def test_a_file_that_says_it_is_empty_is_still_read_only_up_to_the_limit(in_tmp: Path) -> None:
    # /proc files are regular files whose st_size is 0 however much they hold: only a bounded
    # read can tell that one is over the limit.
    assert os.stat("/proc/self/status").st_size == 0
    (in_tmp / "status.txt").symlink_to("/proc/self/status")
    loaded = load_in_child(in_tmp, ["status.txt"], max_bytes=10, follow_symlinks=True)
    assert loaded["items"] == [
        [
            "status.txt",
            "error",
            "`status.txt` is over the 10 bytes limit; trim or split it, or raise the limit "
            "(--max-bytes)",
        ]
    ]


def test_a_symlink_leaving_the_folder_is_skipped_unless_allowed(in_tmp: Path) -> None:
    write(in_tmp / "keys" / "id.txt", "SECRET KEY")
    write(in_tmp / "inbox" / "real.txt", "a ticket")
    (in_tmp / "inbox" / "note.txt").symlink_to("../keys/id.txt")
    (in_tmp / "inbox" / "alias.txt").symlink_to("real.txt")  # stays inside: read
    loaded = read_inputs(["inbox"])
    assert [(i.id, i.text) for i in loaded.items if isinstance(i, Document)] == [
        ("inbox/alias.txt", "a ticket"),
        ("inbox/real.txt", "a ticket"),
    ]
    assert loaded.skipped == (
        Skipped(
            path="inbox/note.txt",
            reason=f"a symlink to `{in_tmp / 'keys' / 'id.txt'}`, outside `inbox`; pass "
            "--follow-symlinks to read it",
        ),
    )
    allowed = read_inputs(["inbox"], follow_symlinks=True)
    assert [i.id for i in allowed.items if isinstance(i, Document)] == [
        "inbox/alias.txt",
        "inbox/note.txt",
        "inbox/real.txt",
    ]
    assert allowed.skipped == ()


def test_a_symlink_named_directly_must_stay_in_its_own_folder(in_tmp: Path) -> None:
    write(in_tmp / "keys" / "id.txt", "SECRET KEY")
    (in_tmp / "inbox").mkdir()
    (in_tmp / "inbox" / "note.txt").symlink_to("../keys/id.txt")
    assert error_of(only(load_documents(["inbox/note.txt"]))) == (
        "inbox/note.txt",
        f"`inbox/note.txt` is a symlink to `{in_tmp / 'keys' / 'id.txt'}`, outside its folder "
        "`inbox`; name that file itself, or pass --follow-symlinks",
    )


def test_a_symlink_loop_is_called_a_loop(in_tmp: Path) -> None:
    (in_tmp / "inbox" / "sub").mkdir(parents=True)
    (in_tmp / "inbox" / "a.txt").symlink_to("b.txt")
    (in_tmp / "inbox" / "b.txt").symlink_to("a.txt")
    (in_tmp / "inbox" / "sub" / "up").symlink_to("..")
    write(in_tmp / "inbox" / "sub" / "ok.txt", "fine")
    loop = "a symlink loop (following its links never reaches a file)"
    loaded = read_inputs(["inbox"])
    assert [i.id for i in loaded.items if isinstance(i, Document)] == ["inbox/sub/ok.txt"]
    assert loaded.skipped == (
        Skipped(path="inbox/a.txt", reason=loop),
        Skipped(path="inbox/b.txt", reason=loop),
        Skipped(path="inbox/sub/up/", reason="a symlink loop (it leads back to `inbox/`)"),
    )
    assert error_of(only(load_documents(["inbox/a.txt"]))) == (
        "inbox/a.txt",
        "`inbox/a.txt` is a symlink loop (following its links never reaches a file); fix or "
        "remove the link",
    )


def test_an_unreadable_subfolder_is_reported(in_tmp: Path) -> None:
    # Root lists a chmod-000 folder anyway: the child runs without root's power to do so.
    write(in_tmp / "inbox" / "a.txt", "fine")
    write(in_tmp / "inbox" / "locked" / "never_seen.txt", "never seen")
    (in_tmp / "inbox" / "locked").chmod(0)
    try:
        loaded = load_in_child(in_tmp, ["inbox"], without_root_powers=True)
    finally:
        (in_tmp / "inbox" / "locked").chmod(0o755)
    assert loaded == {
        "items": [["inbox/a.txt", "document", "fine"]],
        "skipped": [
            [
                "inbox/locked/",
                "a folder that cannot be read (Permission denied); check its permissions",
            ]
        ],
    }


def test_an_unreadable_file_is_an_error(in_tmp: Path) -> None:
    write(in_tmp / "locked.txt", "secret")
    (in_tmp / "locked.txt").chmod(0)
    assert load_in_child(in_tmp, ["locked.txt"], without_root_powers=True)["items"] == [
        [
            "locked.txt",
            "error",
            "`locked.txt` cannot be read (Permission denied); check that it is a readable file",
        ]
    ]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_decoded(in_tmp: Path, encoding: str) -> None:
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(encoding, b"")
    write(in_tmp / "u.txt", bom + "Café order A-17\n".encode(encoding))
    doc = only(load_documents(["u.txt"]))
    assert isinstance(doc, Document) and doc.text == "Café order A-17\n"


def test_utf16_without_a_byte_order_mark_is_still_binary(in_tmp: Path) -> None:
    write(in_tmp / "u.txt", "order".encode("utf-16-le"))
    assert "looks binary" in error_of(only(load_documents(["u.txt"])))[1]


def test_a_broken_byte_order_mark_names_the_encoding(in_tmp: Path) -> None:
    write(in_tmp / "u.txt", codecs.BOM_UTF16_LE + b"a\x00\x00\xdc")
    assert error_of(only(load_documents(["u.txt"]))) == (
        "u.txt",
        "`u.txt` starts with a UTF-16 byte-order mark but is not valid UTF-16 "
        "(at offset 4); re-save it as UTF-8",
    )


def test_a_closed_stdin_is_a_failed_document_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", None)  # what Python makes of `<&-`
    assert error_of(only(load_documents(["-"]))) == (
        "-",
        "stdin (`-`) is closed; pipe a document into `-` (`... - < file.txt`), or name files "
        "instead",
    )


def test_a_folder_lists_every_file_it_skips_and_why(in_tmp: Path) -> None:
    for name in ["a.txt", "photo.heic", "data.zip", "README", ".DS_Store", ".git/config"]:
        write(in_tmp / "docs" / name, "text")
    loaded = read_inputs(["docs"])
    assert [i.id for i in loaded.items] == ["docs/a.txt"]
    supported = f"handrail reads {SUPPORTED}"
    assert loaded.skipped == (
        Skipped(path="docs/.DS_Store", reason="hidden (names starting with `.` are not read)"),
        Skipped(path="docs/.git/", reason="hidden (names starting with `.` are not read)"),
        Skipped(path="docs/README", reason=f"no file extension ({supported})"),
        Skipped(path="docs/data.zip", reason=f"unsupported file type `.zip` ({supported})"),
        Skipped(path="docs/photo.heic", reason=f"unsupported file type `.heic` ({supported})"),
    )
