"""A pending review as the inbox lists it: why in a few words, the lowest confidence, age and
deadline."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from handrail.core.records import ReviewReason
from handrail.review.views import InboxItem

if TYPE_CHECKING:
    from handrail.durable import InboxRow


def reasons_brief(reasons: Sequence[ReviewReason]) -> str:
    """Why a review waits, in a few words: "`total` 0.41 < 0.80; check totals_match"."""
    scored = sorted(
        (r for r in reasons if r.value is not None and r.threshold is not None),
        key=lambda r: r.value or 0.0,
    )
    parts = []
    for reason in scored:  # the least sure first, then the checks and the rest
        what = f"`{reason.field}`" if reason.field else "confidence"
        parts.append(f"{what} {reason.value:.2f} < {reason.threshold:.2f}")
    for reason in reasons:
        if reason.value is not None and reason.threshold is not None:
            continue
        if reason.check:
            parts.append(f"check {reason.check}")
        elif reason.field:
            parts.append(f"`{reason.field}`: {reason.message}")
        else:
            parts.append(reason.message)
    return "; ".join(dict.fromkeys(parts))


def inbox_item(row: InboxRow, moment: datetime) -> InboxItem:
    request = row.request
    lowest: tuple[float, str | None] | None = None
    for name, confidence in request.field_confidence.items():
        if lowest is None or confidence.value < lowest[0]:
            lowest = (confidence.value, name)
    if lowest is None and request.confidence is not None:
        lowest = (request.confidence.value, None)
    return InboxItem(
        review_id=request.review_id,
        run_id=request.run_id,
        pipeline=request.pipeline,
        node=request.node,
        queue=request.queue,
        reasons=reasons_brief(request.reasons),
        lowest_confidence=lowest[0] if lowest is not None else None,
        lowest_field=lowest[1] if lowest is not None else None,
        created_at=request.created_at,
        age_s=max(0.0, (moment - request.created_at).total_seconds()),
        deadline=request.deadline,
        overdue=request.deadline is not None and request.deadline <= moment,
        escalation=request.escalation,
        claim=row.claim,
    )


__all__ = ["inbox_item", "reasons_brief"]
