"""Reviews become examples: approve, edit and reject each write the right row (and only for
nodes with `learn_from_reviews=True`), in the decision's own transaction; a later decision on
the same document replaces the example; a removed example is no longer shown; the store's
source feeds a node's prompt. On SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import insert
from tests.pipelines import learning

from handrail import (
    Examples,
    InMemoryStore,
    ReviewAlreadyDecided,
    ReviewDecision,
    Runner,
    RunStatus,
)
from handrail.core.pipeline import Pipeline
from handrail.durable import SqlStore, StoreError, chain, review_examples
from handrail.durable import schema as tables

LOST = "I lost my card yesterday"
ARRIVAL = "when will my new card arrive"
REFUND = "please refund the double charge"


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "fresh_postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def store(url: str) -> Iterator[SqlStore]:
    with SqlStore(url) as opened:
        yield opened


async def paused(runner: Runner, text: str) -> str:
    """Run `text`; the gate sends it to review. Returns the review's id."""
    record = await runner.run(text)
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    return record.review.review_id


def runner_for(pipeline: Pipeline, store: object, label: str = "card_lost") -> Runner:
    return Runner(pipeline, model=learning.model(label), store=store)  # type: ignore[arg-type]


async def test_approve_edit_and_reject_each_make_their_example(store: SqlStore) -> None:
    runner = runner_for(learning.intents(), store)
    approved, edited, rejected = [await paused(runner, t) for t in (LOST, ARRIVAL, REFUND)]
    await runner.decide(approved, ReviewDecision.approve(reviewer="ann"))
    await runner.decide(edited, ReviewDecision.edit("card_arrival", reviewer="bob"))
    await runner.decide(rejected, ReviewDecision.reject("not a card at all", reviewer="cy"))

    found = store.list_examples()
    assert [(e.example_id, e.text, e.output, e.verdict, e.reviewer) for e in found] == [
        (approved, LOST, "card_lost", "approved", "ann"),
        (edited, ARRIVAL, "card_arrival", "edited", "bob"),
        (rejected, REFUND, "card_lost", "rejected", "cy"),  # the answer said to be wrong
    ]
    version = runner.pipeline.fingerprint
    assert {(e.pipeline, e.pipeline_version, e.node) for e in found} == {
        ("intents", version, "intent")
    }
    assert all(e.removed_at is None and e.decided_at.tzinfo is not None for e in found)
    # a node is shown the approved and edited ones; a reject does not say the right label
    pool = review_examples(store)("intent")
    assert [(e.id, e.text, e.output) for e in pool] == [
        (approved, LOST, "card_lost"),
        (edited, ARRIVAL, "card_arrival"),
    ]
    assert review_examples(store, pipeline="other")("intent") == []
    assert review_examples(store)("other") == []


async def test_a_node_that_does_not_learn_makes_no_example(store: SqlStore) -> None:
    runner = runner_for(learning.intents(learn=False), store)
    await runner.decide(await paused(runner, LOST), ReviewDecision.approve())
    await runner.decide(await paused(runner, ARRIVAL), ReviewDecision.edit("card_arrival"))
    assert store.list_examples(removed=True) == []


async def test_an_extract_learns_the_edited_fields(store: SqlStore) -> None:
    runner = runner_for(learning.orders, store)
    review = await paused(runner, "Order A-1, 12.50 EUR, no: A-2")
    record = await runner.decide(
        review, ReviewDecision.edit({"order_id": "A-2", "amount": 12.5}, reviewer="ann")
    )
    assert record.status is RunStatus.COMPLETED
    [example] = store.list_examples(node="order")
    assert (example.verdict, example.output) == ("edited", {"order_id": "A-2", "amount": 12.5})
    # and it reads back as an example the Extract accepts
    pool = Examples(review_examples(store)).pool("order")
    assert pool[0].output == {"order_id": "A-2", "amount": 12.5}


async def test_the_example_commits_with_the_decision_and_only_with_it(
    store: SqlStore, url: str
) -> None:
    runner = runner_for(learning.intents(), store)
    review = await paused(runner, LOST)
    # a row already holding the example's id makes the example's insert fail: the decision,
    # its audit row and the example roll back together
    blocker = {
        "example_id": review,
        "review_id": "rv-other",
        "run_id": "run-other",
        "pipeline": "intents",
        "pipeline_version": "v",
        "node": "elsewhere",
        "document_hash": "h",
        "text": "t",
        "output": "refund",
        "verdict": "approved",
        "decided_at": store.get_review(review).created_at,  # type: ignore[union-attr]
    }
    with store.transaction() as conn:
        conn.execute(insert(tables.examples).values(blocker))
    with pytest.raises(StoreError):
        await runner.decide(review, ReviewDecision.approve(reviewer="ann"))
    assert store.get_review(review).status == "pending"  # type: ignore[union-attr]
    assert store.get_decision(review) is None
    assert [e.action for e in store.audit_entries(review_id=review)] == []

    with store.transaction() as conn:
        conn.execute(tables.examples.delete())
    await runner.decide(review, ReviewDecision.approve(reviewer="ann"))
    # a second decision is refused, and so is its example
    with pytest.raises(ReviewAlreadyDecided):
        store.record_decision(review, ReviewDecision.reject(reviewer="bob"))
    [example] = store.list_examples(removed=True)
    assert (example.verdict, example.reviewer) == ("approved", "ann")


async def test_a_later_decision_on_the_same_document_replaces_the_example(
    store: SqlStore,
) -> None:
    first = runner_for(learning.intents(), store)
    earlier = await paused(first, LOST)
    await first.decide(earlier, ReviewDecision.approve())
    # the same document again (a rerun), decided the other way: the first answer is reversed
    record = await first.run(LOST, rerun=True)
    assert record.review is not None
    later = record.review.review_id
    await first.decide(later, ReviewDecision.edit("card_arrival"))
    assert [(e.example_id, e.output) for e in store.list_examples()] == [(later, "card_arrival")]
    [replaced] = [e for e in store.list_examples(removed=True) if e.example_id == earlier]
    assert replaced.removed_reason == f"replaced by review `{later}`"
    assert [e.id for e in review_examples(store)("intent")] == [later]


async def test_removed_examples_are_no_longer_shown(store: SqlStore) -> None:
    runner = runner_for(learning.intents(), store)
    lost, arrival = await paused(runner, LOST), await paused(runner, ARRIVAL)
    await runner.decide(lost, ReviewDecision.approve())
    await runner.decide(arrival, ReviewDecision.edit("card_arrival"))

    assert store.remove_example(lost)
    assert not store.remove_example(lost)  # already removed
    assert not store.remove_example("rv-nope")
    assert [e.id for e in review_examples(store)("intent")] == [arrival]
    gone = store.get_example(lost)
    assert gone is not None and gone.removed_reason == "removed by hand"
    # what a reversal of a decision would call
    assert store.drop_examples_of_review(arrival) == 1
    assert store.drop_examples_of_review(arrival) == 0
    assert review_examples(store)("intent") == []
    assert store.get_example(arrival).removed_reason == f"review `{arrival}` reversed"  # type: ignore[union-attr]


async def test_the_reviews_examples_feed_the_next_pipelines_prompt(
    store: SqlStore, url: str
) -> None:
    runner = runner_for(learning.intents(), store)
    await runner.decide(await paused(runner, LOST), ReviewDecision.approve())
    await runner.decide(await paused(runner, REFUND), ReviewDecision.edit("refund"))
    await runner.decide(await paused(runner, ARRIVAL), ReviewDecision.reject())

    # built again, from the database's URL, with a file's example chained before them
    static = [{"text": "my card was stolen on the train", "label": "card_lost", "id": "s-1"}]
    rebuilt = learning.intents(examples=Examples(chain(static, review_examples(url)), k=5))
    model = learning.model("card_lost", confidence=0.95)
    record = await Runner(rebuilt, model=model).run("I lost my card on the train")
    assert record.status is RunStatus.COMPLETED
    system = model.calls_for("intent")[0].messages[0].content
    assert "I lost my card yesterday\nLabel: card_lost" in system
    assert "please refund the double charge\nLabel: refund" in system
    assert "when will my new card arrive" not in system  # rejected: never shown
    assert "my card was stolen on the train\nLabel: card_lost" in system
    assert rebuilt.nodes["intent"].examples.pool("intent")[0].id == "s-1"  # type: ignore[attr-defined]
    # a pool that changed is another pipeline version
    assert rebuilt.fingerprint != runner.pipeline.fingerprint


def test_a_database_not_made_yet_gives_no_examples(tmp_path: object) -> None:
    missing = f"sqlite:///{tmp_path}/nothing/handrail.db"
    assert review_examples(missing)("intent") == []
    assert not (tmp_path / "nothing").exists()  # type: ignore[operator]


async def test_the_in_memory_store_keeps_them_too() -> None:
    store = InMemoryStore()
    runner = runner_for(learning.intents(), store)
    review = await paused(runner, LOST)
    await runner.decide(review, ReviewDecision.approve(reviewer="ann"))
    assert store.examples[review].output == "card_lost"


def test_learning_from_reviews_leaves_the_pipeline_version_alone() -> None:
    assert learning.intents(learn=True).fingerprint == learning.intents(learn=False).fingerprint


def test_the_source_names_its_database_without_the_password() -> None:
    source = review_examples("postgresql://ann:s3cret@db.example/handrail")
    assert "s3cret" not in source.__qualname__
    assert source.__qualname__.startswith("review_examples(postgresql://ann:")


async def test_a_deadlines_automatic_decision_teaches_nothing(store: SqlStore) -> None:
    runner = runner_for(learning.intents(), store)
    review = await paused(runner, LOST)
    await runner.decide(review, ReviewDecision.edit("refund", reviewer="handrail (deadline)"))
    assert store.get_decision(review) is not None
    assert store.list_examples(removed=True) == []
