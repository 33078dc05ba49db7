"""The review use-cases (queue, decide, claim, escalate, export, reviewers, audit) that the CLI
and the web app both call: `ReviewService` for one database, and the views it returns."""

from handrail.review.inbox import reasons_brief
from handrail.review.people import EVERY_QUEUE, token_hash
from handrail.review.service import ReviewService
from handrail.review.views import (
    DocumentView,
    FieldView,
    Highlight,
    InboxItem,
    InboxPage,
    PageView,
    ReviewDetail,
    ReviewView,
    Session,
    ValuePlace,
)

__all__ = [
    "EVERY_QUEUE",
    "DocumentView",
    "FieldView",
    "Highlight",
    "InboxItem",
    "InboxPage",
    "PageView",
    "ReviewDetail",
    "ReviewService",
    "ReviewView",
    "Session",
    "ValuePlace",
    "reasons_brief",
    "token_hash",
]
