"""The people around the review queue, in the store: reviewers, their sessions, claims on
reviews, the inbox query, and the audit trail (`ReviewTables`, mixed into `SqlStore`).

Secrets never reach the database: a reviewer's token and a session's cookie are kept as their
sha256 (the caller hashes them), and neither appears in the audit trail.

Claims are leases: a live claim (`until` in the future) stops another reviewer claiming the
review, never a decision (the exactly-once guard is `record_decision`'s conditional write). An
expired claim counts for nothing and is replaced by the next claim. Renewing one's own live
claim extends it without an audit row (a page that keeps a claim alive would otherwise fill the
trail); taking a claim, and releasing a live one, each write one.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError

from handrail._utils import now
from handrail.core.records import ReviewDecision, ReviewRequest
from handrail.durable import audit, schema
from handrail.durable.audit import AuditCheck, AuditEntry, AuditTrail
from handrail.durable.serialize import load_decision, load_review
from handrail.exceptions import (
    InputError,
    ReviewAlreadyDecided,
    ReviewClaimed,
    ReviewNotFound,
    SignInFailed,
)

EVERY_QUEUE = "*"
"""In a reviewer's queues: every queue."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Reviewer:
    """A person who may decide reviews."""

    name: str
    queues: tuple[str, ...]
    """The queues they see and decide; `("*",)`: every queue."""
    lead: bool
    """Leads also see and decide escalated reviews, whatever their queue."""
    created_at: datetime
    disabled: bool = False
    """A disabled reviewer cannot sign in."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Claim:
    """A reviewer working on a pending review, until `until` (a lease)."""

    review_id: str
    reviewer: str
    claimed_at: datetime
    """When this reviewer took it (renewals keep it)."""
    until: datetime
    """When the claim lapses unless renewed."""


@dataclass(frozen=True, kw_only=True, slots=True)
class InboxRow:
    """A pending review in the inbox, with its live claim if any."""

    request: ReviewRequest
    claim: Claim | None


def already_decided(
    review_id: str, earlier: ReviewDecision, decided_at: datetime | None
) -> ReviewAlreadyDecided:
    """The error for a review that has a decision, naming who made it and when."""
    return ReviewAlreadyDecided(
        f"review `{review_id}` was already decided ({earlier.action}"
        f"{' by ' + earlier.reviewer if earlier.reviewer else ''}); "
        "a decision is applied exactly once (if its run did not finish, because the command "
        "that decided it was cut off, `handrail runs resume RUN_ID` finishes it)",
        by=earlier.reviewer,
        at=earlier.decided_at or decided_at,
        action=earlier.action,
    )


def _reviewer(row: Any) -> Reviewer:
    return Reviewer(
        name=row.name,
        queues=tuple(row.queues),
        lead=bool(row.lead),
        created_at=row.created_at,
        disabled=row.disabled_at is not None,
    )


def _visible(queues: Collection[str] | None, escalated_too: bool) -> ColumnElement[bool] | None:
    """Which pending reviews a reviewer with these queues sees (None: every one)."""
    reviews = schema.reviews
    if queues is None or EVERY_QUEUE in queues:
        return None
    parts: list[ColumnElement[bool]] = []
    if queues:
        parts.append(reviews.c.queue.in_(sorted(queues)))
    if escalated_too:
        parts.append(reviews.c.escalated == true())
    return or_(*parts) if parts else false()


class ReviewTables(AuditTrail):
    """Reviewers, sessions, claims and the inbox, and the audit trail's methods (`AuditTrail`):
    mixed into `SqlStore`."""

    # --- reviewers -----------------------------------------------------------------------------

    def add_reviewer(
        self, name: str, *, queues: Sequence[str], lead: bool, token_hash: str, actor: str
    ) -> Reviewer:
        """Add a reviewer (`token_hash`: the sha256 hex of their token). `InputError` if the
        name is taken."""
        stamp = now()
        row = {
            "name": name,
            "queues": list(queues),
            "lead": lead,
            "token_hash": token_hash,
            "created_at": stamp,
        }
        table = schema.reviewers

        def work() -> Reviewer:
            try:
                with self._writer.begin() as conn:
                    if conn.execute(select(table.c.name).where(table.c.name == name)).first():
                        raise _taken(name)
                    conn.execute(insert(table).values(row))
                    audit.append(
                        conn,
                        at=stamp,
                        actor=actor,
                        action="reviewer_added",
                        detail={"reviewer": name, "queues": list(queues), "lead": lead},
                    )
            except IntegrityError as e:  # the same name added at the same moment elsewhere
                if self.get_reviewer(name) is not None:
                    raise _taken(name) from e
                raise InputError(
                    f"cannot add reviewer `{name}`: another reviewer has the same token; "
                    "generate a new token"
                ) from e
            return Reviewer(name=name, queues=tuple(queues), lead=lead, created_at=stamp)

        return self._call(work)

    def remove_reviewer(self, name: str, *, actor: str) -> bool:
        """Remove a reviewer, ending their sessions and releasing their claims. False if there
        was no such reviewer."""
        stamp = now()

        def work() -> bool:
            with self._writer.begin() as conn:
                ended = conn.execute(
                    delete(schema.sessions).where(schema.sessions.c.reviewer == name)
                ).rowcount
                released = conn.execute(
                    delete(schema.claims).where(schema.claims.c.reviewer == name)
                ).rowcount
                table = schema.reviewers
                if not conn.execute(delete(table).where(table.c.name == name)).rowcount:
                    return False
                audit.append(
                    conn,
                    at=stamp,
                    actor=actor,
                    action="reviewer_removed",
                    detail={"reviewer": name, "sessions_ended": ended, "claims_dropped": released},
                )
                return True

        return self._call(work)

    def get_reviewer(self, name: str) -> Reviewer | None:
        table = schema.reviewers
        query = select(table).where(table.c.name == name)
        row = self._call(lambda: self._read(lambda conn: conn.execute(query).first()))
        return None if row is None else _reviewer(row)

    def reviewer_by_token(self, token_hash: str) -> Reviewer | None:
        """The reviewer whose token has this sha256 hex; None if unknown or disabled."""
        table = schema.reviewers
        query = select(table).where(table.c.token_hash == token_hash, table.c.disabled_at.is_(None))
        row = self._call(lambda: self._read(lambda conn: conn.execute(query).first()))
        return None if row is None else _reviewer(row)

    def list_reviewers(self) -> list[Reviewer]:
        """Every reviewer, by name."""
        table = schema.reviewers
        query = select(table).order_by(table.c.name)
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).all()))
        return [_reviewer(row) for row in rows]

    # --- sessions ------------------------------------------------------------------------------

    def create_session(
        self, session_hash: str, *, reviewer: str, csrf: str, expires_at: datetime
    ) -> None:
        """Record a signed-in session (`session_hash`: sha256 hex of the cookie's value), and
        forget the sessions that have expired."""
        stamp = now()
        table = schema.sessions
        row = {
            "session_hash": session_hash,
            "reviewer": reviewer,
            "csrf": csrf,
            "created_at": stamp,
            "expires_at": expires_at,
        }

        def work() -> None:
            try:
                with self._writer.begin() as conn:
                    conn.execute(delete(table).where(table.c.expires_at <= stamp))
                    conn.execute(insert(table).values(row))
                    audit.append(
                        conn,
                        at=stamp,
                        actor=reviewer,
                        action="sign_in",
                        detail={"expires_at": audit.iso(expires_at)},
                    )
            except IntegrityError as e:  # no such reviewer (removed meanwhile)
                if self.get_reviewer(reviewer) is not None:
                    raise
                raise SignInFailed(
                    f"reviewer `{reviewer}` does not exist (removed?); sign in with the token "
                    "of a current reviewer (`handrail reviewers list`)"
                ) from e

        self._call(work)

    def get_session(
        self, session_hash: str, *, at: datetime | None = None
    ) -> tuple[Reviewer, str] | None:
        """(reviewer, csrf token) of a live session; None if unknown, expired, or its reviewer
        is gone or disabled."""
        sessions, reviewers = schema.sessions, schema.reviewers
        query = (
            select(reviewers, sessions.c.csrf)
            .join(sessions, sessions.c.reviewer == reviewers.c.name)
            .where(
                sessions.c.session_hash == session_hash,
                sessions.c.expires_at > (at or now()),
                reviewers.c.disabled_at.is_(None),
            )
        )
        row = self._call(lambda: self._read(lambda conn: conn.execute(query).first()))
        return None if row is None else (_reviewer(row), row.csrf)

    def delete_session(self, session_hash: str) -> None:
        """Sign out: forget the session (nothing happens if it is unknown)."""
        table = schema.sessions
        stamp = now()

        def work() -> None:
            with self._writer.begin() as conn:
                who = conn.execute(
                    delete(table)
                    .where(table.c.session_hash == session_hash)
                    .returning(table.c.reviewer)
                ).scalar()
                if who is not None:
                    audit.append(conn, at=stamp, actor=who, action="sign_out")

        self._call(work)

    # --- claims --------------------------------------------------------------------------------

    def claim(
        self, review_id: str, reviewer: str, *, lease: timedelta, at: datetime | None = None
    ) -> Claim:
        """Claim a pending review for `lease` (renewing one's own live claim extends it).
        `ReviewNotFound`, `ReviewAlreadyDecided`, or `ReviewClaimed` when another reviewer's
        claim is live."""
        stamp = at or now()
        until = stamp + lease
        reviews, claims = schema.reviews, schema.claims

        def work() -> Claim:
            with self._writer.begin() as conn:
                review = conn.execute(
                    select(
                        reviews.c.status,
                        reviews.c.decision,
                        reviews.c.decided_at,
                        reviews.c.run_id,
                        reviews.c.queue,
                    )
                    .where(reviews.c.review_id == review_id)
                    # Postgres: claims of one review, and its decision, wait for each other here
                    .with_for_update()
                ).first()
                if review is None:
                    raise _not_found(review_id)
                if review.status != "pending":
                    earlier = load_decision(review.decision)
                    raise already_decided(review_id, earlier, review.decided_at)
                held = conn.execute(select(claims).where(claims.c.review_id == review_id)).first()
                if held is not None and held.until > stamp:
                    if held.reviewer != reviewer:
                        raise ReviewClaimed(
                            f"review `{review_id}` is claimed by {held.reviewer} until "
                            f"{held.until:%Y-%m-%d %H:%M:%S} UTC; pick another review, or ask "
                            f"{held.reviewer} to release it",
                            by=held.reviewer,
                            until=held.until,
                        )
                    conn.execute(
                        update(claims).where(claims.c.review_id == review_id).values(until=until)
                    )
                    return Claim(
                        review_id=review_id,
                        reviewer=reviewer,
                        claimed_at=held.claimed_at,
                        until=until,
                    )
                if held is not None:  # lapsed: whoever held it let it go
                    conn.execute(delete(claims).where(claims.c.review_id == review_id))
                conn.execute(
                    insert(claims).values(
                        review_id=review_id, reviewer=reviewer, claimed_at=stamp, until=until
                    )
                )
                detail: dict[str, Any] = {"until": audit.iso(until)}
                if held is not None:
                    detail["lapsed_claim_of"] = held.reviewer
                audit.append(
                    conn,
                    at=stamp,
                    actor=reviewer,
                    action="claim",
                    review_id=review_id,
                    run_id=review.run_id,
                    queue=review.queue,
                    detail=detail,
                )
                return Claim(review_id=review_id, reviewer=reviewer, claimed_at=stamp, until=until)

        return self._call(work)

    def release(self, review_id: str, reviewer: str, *, force: bool = False) -> bool:
        """Release `reviewer`'s claim on a review (anyone's with `force`, for a lead). True
        when a live claim was released."""
        stamp = now()
        reviews, claims = schema.reviews, schema.claims

        def work() -> bool:
            with self._writer.begin() as conn:
                held = conn.execute(
                    select(claims, reviews.c.run_id, reviews.c.queue)
                    .join(reviews, reviews.c.review_id == claims.c.review_id)
                    .where(claims.c.review_id == review_id)
                ).first()
                if held is None or (held.reviewer != reviewer and not force):
                    return False
                conn.execute(delete(claims).where(claims.c.review_id == review_id))
                if held.until <= stamp:
                    return False  # it had lapsed already
                detail: dict[str, Any] = {"claimed_by": held.reviewer}
                if held.reviewer != reviewer:
                    detail["forced"] = True
                audit.append(
                    conn,
                    at=stamp,
                    actor=reviewer,
                    action="release",
                    review_id=review_id,
                    run_id=held.run_id,
                    queue=held.queue,
                    detail=detail,
                )
                return True

        return self._call(work)

    def get_claim(self, review_id: str, *, at: datetime | None = None) -> Claim | None:
        """The live claim on a review, if any."""
        claims = schema.claims
        query = select(claims).where(
            claims.c.review_id == review_id, claims.c.until > (at or now())
        )
        row = self._call(lambda: self._read(lambda conn: conn.execute(query).first()))
        return None if row is None else _claim(row.review_id, row)

    # --- the inbox -----------------------------------------------------------------------------

    def inbox(
        self,
        *,
        queues: Collection[str] | None = None,
        escalated_too: bool = False,
        claimed_by: str | None = None,
        overdue_at: datetime | None = None,
        sort: Literal["age", "deadline"] = "age",
        offset: int = 0,
        limit: int = 50,
        at: datetime | None = None,
        count: bool = True,
    ) -> tuple[list[InboxRow], int]:
        """A page of pending reviews and how many match in all (-1 with `count=False`, for a
        caller that knows the total otherwise, e.g. from `queue_counts`).

        Visible: those in `queues` (None or `"*"` among them: every queue), and escalated ones
        too with `escalated_too`. `claimed_by`: only those that reviewer has a live claim on;
        `overdue_at`: only those whose deadline is at or before it. Sorted by age (oldest
        first) or by deadline (soonest first, none last, then oldest)."""
        reviews, claims = schema.reviews, schema.claims
        stamp = at or now()
        joined = reviews.outerjoin(
            claims, and_(claims.c.review_id == reviews.c.review_id, claims.c.until > stamp)
        )
        where: list[ColumnElement[bool]] = [reviews.c.status == "pending"]
        visible = _visible(queues, escalated_too)
        if visible is not None:
            where.append(visible)
        if overdue_at is not None:
            where.append(reviews.c.deadline <= overdue_at)
        if claimed_by is not None:
            where.append(claims.c.reviewer == claimed_by)
        order: list[ColumnElement[Any]] = [reviews.c.created_at, reviews.c.review_id]
        if sort == "deadline":
            order.insert(0, reviews.c.deadline.asc().nulls_last())
        # The page's ids first (sorting narrow rows, on the indexes), then their requests.
        ids = (
            select(reviews.c.review_id)
            .select_from(joined)
            .where(*where)
            .order_by(*order)
            .offset(max(offset, 0))
            .limit(max(limit, 0))
        )
        page = (
            select(
                reviews.c.review_id,
                reviews.c.request,
                claims.c.reviewer,
                claims.c.claimed_at,
                claims.c.until,
            )
            .select_from(joined)
            .where(reviews.c.review_id.in_(ids.scalar_subquery()))
            .order_by(*order)
        )
        counted = (
            select(func.count())
            .select_from(joined if claimed_by is not None else reviews)
            .where(*where)
        )

        def read(conn: Connection) -> tuple[list[Any], int]:
            rows = list(conn.execute(page).all())
            return rows, int(conn.execute(counted).scalar_one()) if count else -1

        rows, total = self._call(lambda: self._read(read))
        found = []
        for row in rows:
            request = load_review(row.request)
            if request.status != "pending":
                request = replace(request, status="pending")
            held = None if row.reviewer is None else _claim(row.review_id, row)
            found.append(InboxRow(request=request, claim=held))
        return found, total

    def queue_counts(
        self, *, queues: Collection[str] | None = None, escalated_too: bool = False
    ) -> dict[str, int]:
        """Pending reviews per queue (those visible with `queues` and `escalated_too`)."""
        reviews = schema.reviews
        query = (
            select(reviews.c.queue, func.count())
            .where(reviews.c.status == "pending")
            .group_by(reviews.c.queue)
            .order_by(reviews.c.queue)
        )
        visible = _visible(queues, escalated_too)
        if visible is not None:
            query = query.where(visible)
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).all()))
        return {row[0]: int(row[1]) for row in rows}


def _claim(review_id: str, row: Any) -> Claim:
    return Claim(
        review_id=review_id, reviewer=row.reviewer, claimed_at=row.claimed_at, until=row.until
    )


def _not_found(review_id: str) -> ReviewNotFound:
    return ReviewNotFound(
        f"no review `{review_id}`; list pending reviews with `handrail review list`"
    )


def _taken(name: str) -> InputError:
    return InputError(
        f"reviewer `{name}` already exists; to replace them (new queues or a new token), "
        f"remove them first: `handrail reviewers remove {name}`"
    )


__all__ = ["AuditCheck", "AuditEntry", "Claim", "InboxRow", "Reviewer", "ReviewTables"]
