"""The people side of `ReviewService`: reviewers and their tokens, sign-in and sessions, who
may see which reviews, and claims (`People`, mixed into `ReviewService`).

Secrets never reach the database: a token and a session id are kept as their sha256.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from handrail._utils import now
from handrail.core.records import ReviewRequest
from handrail.exceptions import InputError, NotAllowed, SignInFailed
from handrail.review.views import Session

if TYPE_CHECKING:
    from handrail.durable import Claim, Reviewer, SqlStore

EVERY_QUEUE = "*"
"""In a reviewer's queues: every queue."""
TOKEN_PREFIX = "hr_"
"""Reviewer tokens start with it (so a leaked one is recognisable)."""
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,100}$")
_QUEUE = re.compile(r"^[A-Za-z0-9_.@:/-]{1,200}$")


def token_hash(secret: str) -> str:
    """The sha256 (hex) the store keeps of a token or session id, never the secret itself."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class People:
    """Reviewers, sessions, permissions and claims, on the service's store."""

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

        def _store(self) -> SqlStore | None: ...

        def _writer(self) -> SqlStore: ...

        def _request(self, review_id: str) -> ReviewRequest: ...

    # --- reviewers -------------------------------------------------------------------------------

    def add_reviewer(
        self, name: str, *, queues: Sequence[str], lead: bool = False, actor: str = "cli"
    ) -> tuple[Reviewer, str]:
        """Add a reviewer who sees and decides `queues` (`*`: every queue; a lead also sees
        escalated reviews); returns them and their token, shown this once (the store keeps
        only its sha256). `InputError` for a bad name or queue, or a name taken."""
        if not _NAME.match(name):
            raise InputError(
                f"reviewer name {name!r} is not 1-100 letters, digits or _ . @ -; "
                "choose another (e.g. ana or ana.lopez@example.com)"
            )
        chosen = [q.strip() for q in queues if q.strip()]
        if not chosen:
            raise InputError(
                f"say which queues {name} reviews: --queues a,b (or --queues '*' for every queue)"
            )
        for queue in chosen:
            if queue != EVERY_QUEUE and not _QUEUE.match(queue):
                raise InputError(
                    f"queue name {queue!r} is not 1-200 letters, digits or _ . @ : / -; "
                    "check --queues"
                )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        reviewer = self._writer().add_reviewer(
            name,
            queues=list(dict.fromkeys(chosen)),
            lead=lead,
            token_hash=token_hash(token),
            actor=actor,
        )
        return reviewer, token

    def remove_reviewer(self, name: str, *, actor: str = "cli") -> bool:
        """Remove a reviewer (their sessions end); False if there was none of that name."""
        return self._writer().remove_reviewer(name, actor=actor)

    def list_reviewers(self) -> list[Reviewer]:
        store = self._store()
        return store.list_reviewers() if store is not None else []

    def authenticate(self, token: str) -> Reviewer:
        """The reviewer a token belongs to (the API's bearer token); `SignInFailed` for an
        unknown token or a removed or disabled reviewer."""
        store = self._store()
        found = store.reviewer_by_token(token_hash(token)) if store and token else None
        if found is None or found.disabled:
            raise SignInFailed(
                "unknown or withdrawn reviewer token; ask whoever runs handrail for a new one "
                "(`handrail reviewers add NAME --queues ...`)"
            )
        return found

    def sign_in(
        self, token: str, *, ttl: timedelta = timedelta(hours=12)
    ) -> tuple[Reviewer, Session]:
        """Exchange a reviewer's token for a session of `ttl` (the web app's cookie)."""
        reviewer = self.authenticate(token)
        session = Session(
            session_id=secrets.token_urlsafe(32),
            csrf=secrets.token_urlsafe(32),
            expires_at=now() + ttl,
        )
        self._writer().create_session(
            token_hash(session.session_id),
            reviewer=reviewer.name,
            csrf=session.csrf,
            expires_at=session.expires_at,
        )
        return reviewer, session

    def session(self, session_id: str) -> tuple[Reviewer, str]:
        """The reviewer signed in with `session_id` and the session's CSRF token;
        `SignInFailed` when it is unknown, expired or signed out, or the reviewer was
        removed."""
        store = self._store()
        found = (
            store.get_session(token_hash(session_id), at=now()) if store and session_id else None
        )
        if found is None or found[0].disabled:
            raise SignInFailed("your session has ended (expired or signed out); sign in again")
        return found

    def sign_out(self, session_id: str) -> None:
        self._writer().delete_session(token_hash(session_id))

    def may_see(self, reviewer: Reviewer, request: ReviewRequest) -> bool:
        """Whether `reviewer` sees and decides `request`: its queue is theirs (or they have
        every queue), or they are a lead and it was escalated."""
        queues = reviewer.queues
        if EVERY_QUEUE in queues or request.queue in queues:
            return True
        return reviewer.lead and request.escalated_at is not None

    def _check(self, viewer: Reviewer | None, request: ReviewRequest) -> None:
        if viewer is not None and not self.may_see(viewer, request):
            raise NotAllowed(
                f"{viewer.name} does not review queue `{request.queue}`; ask a lead to add it "
                "(`handrail reviewers remove`, then `add` with the queue)"
            )

    def claim(
        self, review_id: str, viewer: Reviewer, *, lease: timedelta = timedelta(minutes=15)
    ) -> Claim:
        """`viewer` works on `review_id` for `lease` (renewing their own claim extends it);
        `ReviewClaimed` while another's claim is live. A claim never replaces the
        exactly-once guard: anyone allowed can still decide."""
        request = self._request(review_id)
        self._check(viewer, request)
        return self._writer().claim(review_id, viewer.name, lease=lease, at=now())

    def release(self, review_id: str, viewer: Reviewer) -> bool:
        """Drop `viewer`'s claim on `review_id` (a lead may drop anyone's); False if they held
        none."""
        request = self._request(review_id)
        self._check(viewer, request)
        return self._writer().release(review_id, viewer.name, force=viewer.lead)


def sees_queue(viewer: Reviewer, queue: str) -> bool:
    return EVERY_QUEUE in viewer.queues or queue in viewer.queues


__all__ = ["EVERY_QUEUE", "TOKEN_PREFIX", "People", "sees_queue", "token_hash"]
