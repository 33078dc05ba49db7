"""Plain text, Markdown and JSON: bytes become text under one set of rules.

Text must be UTF-8, UTF-16 or UTF-32. A UTF-8 byte-order mark is dropped; UTF-16 and UTF-32 are
recognised by their byte-order mark and decoded. A NUL byte means the file is binary, whatever
its name says. Anything else that is not UTF-8 fails with the byte and its offset. Text that is
only white space is empty: there is nothing to process. JSON must parse (its raw text is the
document). Each rule fails the one document, with an `InputError` naming the fix.

The e-mail, CSV and HTML loaders use the same rules (`decode`, `unbom`, `not_empty`).
"""

from __future__ import annotations

import codecs
import json

from handrail.core.state import Document
from handrail.documents.options import LoadOptions
from handrail.exceptions import InputError

STDIN = "-"
"""The name of standard input (`handrail run T -`): messages call it `stdin (`-`)`."""

TEXT_SUFFIXES = (".txt", ".md", ".eml", ".json")
"""The text formats a binary file named `.txt` should be converted to (the message says so)."""

_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)


def shown(name: str) -> str:
    """How messages name a document: `` `inbox/a.txt` ``, or `stdin (`-`)`."""
    return "stdin (`-`)" if name == STDIN else f"`{name}`"


def unbom(data: bytes, *, name: str) -> bytes:
    """`data` as UTF-8 if it starts with a UTF-16 or UTF-32 byte-order mark (so what follows,
    the e-mail parser too, reads one encoding), else unchanged; refuses binary data (NUL)."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                data = data.decode(codec).encode("utf-8")
            except UnicodeDecodeError as e:
                raise InputError(
                    f"{shown(name)} starts with a {label} byte-order mark but is not valid "
                    f"{label} (at offset {e.start}); re-save it as UTF-8"
                ) from None
            break
    if b"\x00" in data:
        raise InputError(
            f"{shown(name)} looks binary (it contains NUL bytes); convert it to text "
            f"({', '.join(TEXT_SUFFIXES)}) first"
        )
    return data


def decode(data: bytes, *, name: str) -> str:
    """The text of `data` by the rules above (BOMs, NUL, UTF-8); not yet checked for emptiness."""
    data = unbom(data, name=name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(
            f"{shown(name)} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset "
            f"{e.start}); re-save it as UTF-8"
        ) from None


def not_empty(text: str, *, name: str) -> str:
    """`text`, unless it is only white space (`InputError`: nothing to process)."""
    if not text.strip():
        raise InputError(
            f"{shown(name)} is empty; there is nothing to process "
            "(check the file, or leave it out of the batch)"
        )
    return text


def load_text(data: bytes, *, name: str, options: LoadOptions) -> Document:
    """A `.txt` or `.md` file (or stdin) as its text."""
    text = not_empty(decode(data, name=name), name=name)
    return Document(text=text, id=name, source=name)


def load_json(data: bytes, *, name: str, options: LoadOptions) -> Document:
    """A `.json` file as its raw text, once it parses (`Document.data` gives the value)."""
    text = not_empty(decode(data, name=name), name=name)
    try:
        json.loads(text)
    except ValueError as e:
        raise InputError(
            f"{shown(name)} is not valid JSON ({e}); fix it, or rename it to .txt to read it "
            "as plain text"
        ) from None
    return Document(text=text, id=name, source=name, media_type="application/json")


__all__ = ["STDIN", "decode", "load_json", "load_text", "not_empty", "shown", "unbom"]
