"""A pipeline for the escaping test: the document and the model's answer both carry markup,
and the answer is unsure of its title, so the run waits for review."""

from __future__ import annotations

from pydantic import BaseModel

from handrail import Extract, FakeModel, Gate, PipelineBuilder, Reply

DOCUMENT = (
    'Subject line: <script>alert("document")</script>\n'
    "Note: please <b>pay</b> the <img src=x onerror=alert(1)> invoice\n"
)
TITLE = '<script>alert("model")</script>'
BODY = "\nplease pay the invoice\nby Friday"
"""Several lines (a textarea), the first one empty."""


class Note(BaseModel):
    title: str
    body: str
    urgent: bool
    amount: float | None = None


model = FakeModel(
    {
        "note": Reply(
            {"title": TITLE, "body": BODY, "urgent": True, "amount": None},
            field_confidence={"title": 0.3, "body": 0.9, "urgent": 0.95, "amount": 0.95},
        )
    },
    heuristic=False,
)

pipeline = (
    PipelineBuilder("notes")
    .add(Extract("note", schema=Note, model=model, gate=Gate(accept=0.8)))
    .build()
)
