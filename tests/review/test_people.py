"""Reviewers, signing in, sessions and claims through `ReviewService`, on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from tests.pipelines.inbox_invoice import QUEUE

from handrail import InputError, NotAllowed, ReviewClaimed, SignInFailed
from handrail._utils import now
from handrail.review import ReviewService, token_hash


def test_a_reviewers_token_is_given_once_and_only_its_hash_is_kept(
    service: ReviewService, db: str
) -> None:
    ana, token = service.add_reviewer("ana", queues=[QUEUE, "claims"], lead=True)
    assert token.startswith("hr_") and len(token) > 40
    assert (ana.name, ana.queues, ana.lead, ana.disabled) == ("ana", (QUEUE, "claims"), True, False)
    assert [r.name for r in service.list_reviewers()] == ["ana"]
    assert service.authenticate(token).name == "ana"
    service.close()
    stored = Path(db.removeprefix("sqlite:///")).read_bytes()
    assert token.encode() not in stored
    assert token_hash(token).encode() in stored
    added = service.audit_entries(action="reviewer_added")
    assert [e.actor for e in added] == ["cli"] and token not in str(added[0].detail)


@pytest.mark.parametrize(
    ("name", "queues", "problem"),
    [
        ("", [QUEUE], "is not 1-100 letters"),
        ("ana lopez", [QUEUE], "is not 1-100 letters"),
        ("<script>", [QUEUE], "is not 1-100 letters"),
        ("ana", [], "say which queues ana reviews"),
        ("ana", [" ", ""], "say which queues ana reviews"),
        ("ana", ["pay ables"], "queue name 'pay ables'"),
    ],
)
def test_a_bad_name_or_queue_is_refused(
    service: ReviewService, name: str, queues: list[str], problem: str
) -> None:
    with pytest.raises(InputError, match=problem):
        service.add_reviewer(name, queues=queues)
    assert service.list_reviewers() == []


def test_a_name_is_taken_once(service: ReviewService) -> None:
    service.add_reviewer("ana", queues=[QUEUE])
    with pytest.raises(InputError, match="ana"):
        service.add_reviewer("ana", queues=["claims"])
    assert service.list_reviewers()[0].queues == (QUEUE,)


def test_signing_in_gives_a_session_until_it_expires(
    service: ReviewService, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token = service.add_reviewer("ana", queues=[QUEUE])
    with pytest.raises(SignInFailed, match="unknown or withdrawn reviewer token"):
        service.sign_in("hr_not-a-token")
    with pytest.raises(SignInFailed):
        service.authenticate("")
    ana, session = service.sign_in(token, ttl=timedelta(hours=1))
    assert ana.name == "ana" and session.session_id != token and session.csrf
    assert session.expires_at - now() <= timedelta(hours=1)
    reviewer, csrf = service.session(session.session_id)
    assert (reviewer.name, csrf) == ("ana", session.csrf)
    with pytest.raises(SignInFailed):
        service.session("another")

    later = now() + timedelta(hours=1, minutes=1)
    monkeypatch.setattr("handrail.review.people.now", lambda: later)
    with pytest.raises(SignInFailed, match="sign in again"):
        service.session(session.session_id)


def test_signing_out_and_removing_a_reviewer_end_their_sessions(service: ReviewService) -> None:
    _, token = service.add_reviewer("ana", queues=[QUEUE])
    _, first = service.sign_in(token)
    _, second = service.sign_in(token)
    service.sign_out(first.session_id)
    with pytest.raises(SignInFailed):
        service.session(first.session_id)
    assert service.session(second.session_id)[0].name == "ana"
    assert service.remove_reviewer("ana")
    assert not service.remove_reviewer("ana")
    with pytest.raises(SignInFailed):
        service.session(second.session_id)
    with pytest.raises(SignInFailed):
        service.authenticate(token)
    actions = [e.action for e in service.audit_entries()]
    assert actions == [
        "reviewer_added",
        "sign_in",
        "sign_in",
        "sign_out",
        "reviewer_removed",
    ]


def test_claims_show_who_works_on_a_review(service: ReviewService, reviews: dict[str, str]) -> None:
    ana, _ = service.add_reviewer("ana", queues=[QUEUE])
    bob, _ = service.add_reviewer("bob", queues=[QUEUE])
    lee, _ = service.add_reviewer("lee", queues=[QUEUE], lead=True)
    eve, _ = service.add_reviewer("eve", queues=["claims"])
    review_id = reviews["HF-2291"]
    claim = service.claim(review_id, ana)
    assert (claim.reviewer, claim.review_id) == ("ana", review_id)
    assert claim.until - claim.claimed_at == timedelta(minutes=15)
    with pytest.raises(ReviewClaimed) as raised:
        service.claim(review_id, bob)
    assert raised.value.by == "ana" and raised.value.until == claim.until
    with pytest.raises(NotAllowed):
        service.claim(review_id, eve)

    shown = {i.review_id: i for i in service.inbox(bob).items}[review_id]
    assert shown.claim is not None and shown.claim.reviewer == "ana"
    assert [i.review_id for i in service.inbox(ana, mine=True).items] == [review_id]
    assert service.inbox(bob, mine=True).total == 0
    detail = service.review(review_id, bob)
    assert detail.claim is not None and detail.claim.reviewer == "ana"

    assert not service.release(review_id, bob)  # not theirs
    assert service.release(review_id, ana)
    assert service.claim(review_id, bob).reviewer == "bob"
    assert service.release(review_id, lee)  # a lead may drop anyone's
    assert service.review(review_id).claim is None


def test_mine_needs_a_reviewer(service: ReviewService) -> None:
    with pytest.raises(InputError, match="mine"):
        service.inbox(None, mine=True)
