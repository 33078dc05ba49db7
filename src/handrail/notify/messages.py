"""Rendering outbox rows into a `Message`: what happened, why, and a link to the inbox.

A message is built from the rows' payloads only, and a payload never holds document text (the
store writes ids, queue, reasons, confidence and deadline; the output under review or a run's
error message only for a channel that opted in with `include_content`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from handrail.durable.outbox import OutboxRow
from handrail.notify.channels import Message


def render(rows: Sequence[OutboxRow], base_url: str) -> Message:
    """One message for `rows`: one event, or a digest of `review.waiting` rows of one queue."""
    base = base_url.rstrip("/")
    first = rows[0]
    items = tuple(dict(r.payload) for r in rows)
    if len(rows) > 1:
        subject, text, link = _digest(items, base)
    else:
        subject, text, link = _one(first.event, items[0], base)
    return Message(
        event=first.event,
        event_id=first.event_id,
        event_ids=tuple(r.event_id for r in rows),
        subject=subject,
        text=text,
        link=link,
        items=items,
    )


def _one(event: str, p: Mapping[str, Any], base: str) -> tuple[str, str, str]:
    if event == "run.failed":
        link = f"{base}/runs/{p.get('run_id')}"
        lines = [
            f"Run {p.get('run_id')} of pipeline `{p.get('pipeline')}` failed "
            f"({p.get('error_type') or 'error'}); document {p.get('document_id')}.",
        ]
        if p.get("error"):
            lines.append(f"Error: {p['error']}")
        lines.append(f"Open: {link}")
        return f"Run failed: {p.get('pipeline')}", "\n".join(lines), link
    if event == "trigger.failed":
        lines = [f"Trigger `{p.get('trigger')}` failed: {p.get('error') or 'no detail'}"]
        if p.get("pipeline"):
            lines.append(f"Pipeline: {p['pipeline']}")
        lines.append(f"Check it with `handrail triggers list`; inbox: {base}/")
        return f"Trigger failed: {p.get('trigger')}", "\n".join(lines), f"{base}/"
    link = f"{base}/reviews/{p.get('review_id')}"
    where = f"pipeline `{p.get('pipeline')}`, node `{p.get('node')}`"
    queue = p.get("queue")
    if event == "review.due_soon":
        head = f"A review in queue `{queue}` is due at {_when(p.get('deadline'))} ({where})."
        subject = f"Review due soon in queue {queue}"
    elif event == "review.escalated":
        head = (
            f"A review escalated from queue `{p.get('from_queue')}` to `{queue}` ({where}): "
            f"{p.get('escalation') or 'its deadline passed'}."
        )
        subject = f"Review escalated to queue {queue}"
    else:
        head = f"A review waits in queue `{queue}` ({where})."
        subject = f"Review waiting in queue {queue}"
    lines = [head, *_details(p), f"Open: {link}"]
    return subject, "\n".join(lines), link


def _digest(items: Sequence[Mapping[str, Any]], base: str) -> tuple[str, str, str]:
    queue = items[0].get("queue")
    link = f"{base}/?queue={queue}"
    lines = [f"{len(items)} reviews wait in queue `{queue}`:"]
    for p in items:
        reasons = "; ".join(p.get("reasons") or []) or "no reason given"
        where = f"{p.get('pipeline')} / {p.get('node')}"
        lines.append(f"- {where}: {reasons} - {base}/reviews/{p.get('review_id')}")
    lines.append(f"Inbox: {link}")
    return f"{len(items)} reviews waiting in queue {queue}", "\n".join(lines), link


def _details(p: Mapping[str, Any]) -> list[str]:
    lines = []
    reasons = p.get("reasons") or []
    if reasons:
        lines.append("Why: " + "; ".join(str(r) for r in reasons))
    if p.get("confidence") is not None:
        lines.append(f"Confidence: {p['confidence']:.2f}")
    if p.get("deadline"):
        lines.append(f"Deadline: {_when(p['deadline'])}")
    lines.append(f"Document: {p.get('document_id')} (run {p.get('run_id')})")
    if "output" in p:
        lines.append("Output: " + json.dumps(p["output"], ensure_ascii=False))
    return lines


def _when(stamp: Any) -> str:
    text = str(stamp or "")
    return text.replace("T", " ")[:19] + " UTC" if text else "no deadline"
