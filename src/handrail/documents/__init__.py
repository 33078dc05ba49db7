"""Documents as they arrive: text, Markdown, JSON, CSV, e-mails with attachments, HTML, PDFs
(text layer), scans and images (OCR), Word documents and Excel workbooks become a `Document`
with its text and, for paged formats, pages with word positions. Nothing is downloaded at run
time. See docs/documents.md.

    from handrail.documents import LoadOptions, load_bytes
    document = load_bytes(data, name="invoice.pdf", options=LoadOptions(ocr="never"))
    document.pages[0].words[0].box

The PDF, image, Word, Excel and HTML loaders need `pip install 'handrail[documents]'`; OCR needs
`pip install 'handrail[ocr]'`.
"""

from handrail.documents.build import Builder, PageContent
from handrail.documents.load import FORMATS, SUFFIXES, Format, format_for, load_bytes
from handrail.documents.options import DEFAULT_OPTIONS, LoadOptions
from handrail.documents.render import PageImage, render_pages

__all__ = [
    "DEFAULT_OPTIONS",
    "FORMATS",
    "SUFFIXES",
    "Builder",
    "Format",
    "LoadOptions",
    "PageContent",
    "PageImage",
    "format_for",
    "load_bytes",
    "render_pages",
]
