"""HTML (`.html`, `.htm`): the readable text of a page, with BeautifulSoup.

What a browser would show as text, line by line. Left out: scripts, styles, `<head>`,
comments, and elements hidden from a reader (`hidden`, `display: none`, `visibility: hidden`:
text a person reviewing the page would not see must not steer a model). Each block (paragraph,
heading, list item, `<br>`...) starts a new line; a table row is one line with its cells
separated by ` | `; runs of white space are one space, and blank lines are dropped. The
`<title>` goes into `metadata["title"]`. The encoding is the one the file declares
(`<meta charset>`), else its byte-order mark, else UTF-8 or what the bytes suggest.

E-mails with an HTML body use the same reading (`html_text`).
"""

from __future__ import annotations

import re
from typing import Any

from handrail.core.state import Document
from handrail.documents.options import LoadOptions
from handrail.documents.text import not_empty, shown
from handrail.exceptions import InputError

_DROPPED = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "center", "dd",
        "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer",
        "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "html", "li", "main", "nav",
        "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "ul",
    }
)  # fmt: skip
_CELLS = ("td", "th")
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


def html_text(markup: str | bytes) -> tuple[str, str]:
    """(the readable text of `markup`, its title or "")."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(markup, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in [*soup.find_all(_DROPPED), *soup.find_all(_hidden)]:
        if not tag.decomposed:
            tag.decompose()
    chunks: list[str] = []
    _render(soup, chunks)
    lines = (" ".join(line.split()) for line in "".join(chunks).splitlines())
    return "\n".join(line for line in lines if line), title


def _hidden(tag: Any) -> bool:
    style = tag.get("style") or ""
    return tag.has_attr("hidden") or _HIDDEN_STYLE.search(style) is not None


def _render(node: Any, out: list[str]) -> None:
    from bs4.element import NavigableString, PreformattedString, Tag

    for child in node.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, PreformattedString):  # comments, doctypes, CDATA
                out.append(str(child).replace("\n", " "))
            continue
        if not isinstance(child, Tag):
            continue
        if child.name == "tr":
            cells = [_one_line(cell) for cell in child.find_all(_CELLS, recursive=False)]
            out.append("\n" + " | ".join(cells) + "\n")
        elif child.name in _BLOCKS:
            out.append("\n")
            _render(child, out)
            out.append("\n")
        else:
            _render(child, out)


def _one_line(cell: Any) -> str:
    chunks: list[str] = []
    _render(cell, chunks)
    return " ".join("".join(chunks).split())


def load_html(data: bytes, *, name: str, options: LoadOptions) -> Document:
    """An HTML file as its readable text (see the module's docstring)."""
    try:
        text, title = html_text(data)
    except Exception as e:  # html.parser is lenient; what still fails is a file, not a page
        raise InputError(
            f"{shown(name)} could not be read as HTML ({type(e).__name__}: {e}); check the file"
        ) from e
    metadata = {"title": title} if title else {}
    return Document(
        text=not_empty(text, name=name),
        id=name,
        source=name,
        metadata=metadata,
        media_type="text/html",
    )


__all__ = ["html_text", "load_html"]
