"""Labelled examples: chosen per document (BM25, stable, per-label coverage), read from lists,
JSONL files and eval suites with clear errors, shown in the prompt, voting as a second
confidence signal (the agreement rule, "unlike anything seen"), recorded on the step and in the
pipeline's fingerprint."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from handrail import (
    Classify,
    Confidence,
    Example,
    Examples,
    ExampleSignals,
    Extract,
    Fail,
    FakeModel,
    Gate,
    GraphSetupError,
    InputError,
    PipelineBuilder,
    Reply,
    ReviewDecision,
    ReviewReason,
    Runner,
    RunStatus,
)
from handrail.core.examples import tokens

from ._helpers import FAST, step

ROOT = Path(__file__).resolve().parents[2]
LABELS = ["card_lost", "card_arrival", "refund"]
POOL = [
    Example("I lost my card yesterday", "card_lost", id="lost-1"),
    Example("my card was stolen on the train", "card_lost", id="lost-2"),
    Example("when will my new card arrive", "card_arrival", id="arrival-1"),
    Example("the card has not arrived in the post yet", "card_arrival", id="arrival-2"),
    Example("I want a refund for this purchase", "refund", id="refund-1"),
    Example("please refund the double charge", "refund", id="refund-2"),
]


def classify(examples: Examples | Any, *, gate: Gate | None = None, **kw: Any) -> Any:
    return (
        PipelineBuilder("intents")
        .add(Classify("intent", labels=LABELS, gate=gate or Gate(accept=0.5), examples=examples))
        .build()
    )


def shown(examples: Examples, text: str, labels: Sequence[str] = LABELS) -> tuple[str, ...]:
    return examples.pick(text, node="intent", labels=labels).signals.shown


# --- choosing -----------------------------------------------------------------------------------


def test_the_closest_examples_are_shown_most_similar_last() -> None:
    examples = Examples(POOL, k=3)
    assert shown(examples, "Someone stole my card on the train!") == (
        "arrival-2",  # shares "card", "on", "the"
        "lost-1",  # "my", "card"
        "lost-2",  # "my", "card", "stolen", "on", "the", "train"
    )
    assert shown(examples, "Can I get a refund? There is a double charge.") == (
        "lost-1",
        "refund-1",
        "refund-2",
    )


def test_ties_go_to_the_earlier_example_so_the_order_is_stable() -> None:
    twins = [Example("same words", label, id=label) for label in LABELS]
    examples = Examples(twins, k=2)
    assert shown(examples, "same words here") == ("card_arrival", "card_lost")
    assert shown(examples, "nothing in common") == ("card_arrival", "card_lost")
    reordered = Examples(list(reversed(twins)), k=2)
    assert shown(reordered, "same words here") == ("card_arrival", "refund")


def test_per_label_shows_the_closest_of_each_label_even_past_k() -> None:
    examples = Examples(POOL, k=2, per_label=1)
    picked = shown(examples, "my card was stolen on the train")
    assert picked == ("refund-2", "arrival-2", "lost-2")  # the closest of each label
    assert len(shown(Examples(POOL, k=5, per_label=1), "my card")) == 5


def test_words_are_lower_cased_word_tokens() -> None:
    assert tokens("My CARD, lost: 2x déjà-vu!") == ["my", "card", "lost", "2x", "déjà", "vu"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"k": -1}, "Examples k=-1: use the number of examples to show, e.g. 10"),
        ({"retriever": "bm52"}, "Examples retriever='bm52': use one of bm25, tfidf, or a "),
        ({"k": 0, "vote": True}, "Examples with k=0 and a vote: give k_vote, the neighbours"),
        ({"unlike_below": 2}, "Examples unlike_below=2 is outside 0..1; use e.g. 0.5"),
    ],
)
def test_settings_that_cannot_work_are_refused(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as info:
        Examples(POOL, **settings)
    assert str(info.value).startswith(message)


# --- reading ------------------------------------------------------------------------------------


def test_a_jsonl_file_gives_labelled_examples(tmp_path: Path) -> None:
    path = tmp_path / "intents.jsonl"
    path.write_text(
        '{"text": "I lost my card", "label": "card_lost", "id": "a"}\n'
        "\n"
        '{"text": "refund please", "label": "refund"}\n',
        encoding="utf-8",
    )
    pool = Examples(path).pool("intent")
    assert [(e.id, e.text, e.output, e.source) for e in pool] == [
        ("a", "I lost my card", "card_lost", f"{path}, line 1"),
        (pool[1].id, "refund please", "refund", f"{path}, line 3"),
    ]
    assert pool[1].id.startswith("ex-")  # a hash of its text and label: stable
    assert Examples(path).pool("intent")[1].id == pool[1].id


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (
            "{not json",
            "not JSON (Expecting property name enclosed in double quotes: line 1 "
            'column 2 (char 1)); write one JSON object per line, such as {"text": "...", '
            '"label": "..."}',
        ),
        (
            '["a"]',
            "a list, not an object; write one JSON object per line, such as "
            '{"text": "...", "label": "..."}',
        ),
        ('{"label": "refund"}', '`text` is missing or empty; add "text": "<the document\'s text>"'),
        (
            '{"text": "x", "label": "refund", "output": {}}',
            'give exactly one of "label" (a '
            'label, for Classify) and "output" (an object of fields, for Extract)',
        ),
        (
            '{"text": "x", "lable": "refund"}',
            "unknown key `lable`; an example holds `text`, "
            "`label` (Classify) or `output` (Extract), and optionally `id`",
        ),
        (
            '{"path": "a.txt", "expected": {"intent": "refund"}}',
            "this is an eval suite's "
            "case; pass the loaded suite instead: Examples(handrail.evals.suite.load_suite("
            "'evals/<suite>'))",
        ),
    ],
    ids=["not-json", "not-an-object", "no-text", "label-and-output", "typo", "suite-case"],
)
def test_a_bad_line_names_the_file_the_line_and_the_fix(
    tmp_path: Path, line: str, problem: str
) -> None:
    path = tmp_path / "intents.jsonl"
    path.write_text('{"text": "fine", "label": "refund"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        Examples(path)
    assert str(info.value) == f"{path}, line 2: {problem}"


def test_a_missing_file_or_a_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not found \(relative paths are read from the"):
        Examples(tmp_path / "nope.jsonl")
    with pytest.raises(InputError, match=r"is a folder; for an eval suite, pass the loaded"):
        Examples(tmp_path)


def test_two_examples_with_one_id_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text(
        '{"text": "a", "label": "refund", "id": "one"}\n'
        '{"text": "b", "label": "refund", "id": "one"}\n',
        encoding="utf-8",
    )
    with pytest.raises(GraphSetupError) as info:
        classify(Examples(path))
    assert f"two examples have the id `one` ({path}, line 1 and {path}, line 2)" in str(info.value)


def test_a_label_the_node_does_not_have_is_a_setup_error(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"text": "a", "label": "card_lots"}\n', encoding="utf-8")
    with pytest.raises(GraphSetupError) as info:
        classify(path)
    assert str(info.value) == (
        f"pipeline `intents`: node `intent`: {path}, line 1: label 'card_lots' is not one of "
        "the node's labels (card_lost, card_arrival, refund); fix the example or the labels"
    )


def test_an_eval_suite_gives_its_cases_with_an_expected_output() -> None:
    from handrail.evals.suite import load_suite

    suite = load_suite(ROOT / "evals" / "support_triage")
    labels = ["refund", "billing", "bug", "account", "other"]
    pipeline = (
        PipelineBuilder("triage")
        .add(Classify("category", labels=labels, examples=Examples(suite, k=3)))
        .build()
    )
    node = pipeline.nodes["category"]
    assert isinstance(node, Classify) and node.examples is not None
    pool = node.examples.pool("category")
    expecting = [c for c in suite.cases if c.expected.get("category") is not None]
    assert [e.id for e in pool] == [c.id for c in expecting]
    assert "blank-upload" not in [e.id for e in pool]  # expects nothing of the node
    assert (pool[0].output, pool[0].source) == (
        "refund",
        "suite `support_triage`, case `kettle-refund`",
    )
    assert "kettle" in pool[0].text.lower()

    details = Examples(suite, node="details").pool("anything")
    assert details[0].output == {
        "email": "marta.kowalczyk@example.org",
        "order_id": "LH-48213",
        "amount": 89.9,
    }


def test_a_source_gives_the_examples_of_the_node_it_is_asked_for() -> None:
    asked: list[str] = []

    def from_reviews(node: str) -> list[dict[str, str]]:
        asked.append(node)
        return [{"text": "lost my card", "label": "card_lost", "id": "review-7"}]

    pipeline = classify(Examples(from_reviews))
    assert asked == ["intent"]  # read once, when the pipeline is built
    node = pipeline.nodes["intent"]
    assert isinstance(node, Classify) and node.examples is not None
    assert node.examples.pool("intent")[0].id == "review-7"
    assert asked == ["intent"]


# --- the prompt ---------------------------------------------------------------------------------


async def test_the_default_prompt_shows_the_chosen_examples() -> None:
    model = FakeModel({"intent": Reply("card_lost", confidence=0.9)})
    record = await Runner(classify(Examples(POOL, k=2)), model=model).run(
        "Someone stole my card on the train"
    )
    assert record.status is RunStatus.COMPLETED
    [call] = model.calls_for("intent")
    system, user = call.messages
    assert system.content == (
        "You classify documents. Answer with exactly one of the labels.\n\n"
        "Labelled examples:\n\n"
        "Example 1:\nI lost my card yesterday\nLabel: card_lost\n\n"
        "Example 2:\nmy card was stolen on the train\nLabel: card_lost"
    )
    # the user message is what it is without examples
    assert user.content == (
        "Labels: card_lost, card_arrival, refund\n\nDocument:\n"
        "Someone stole my card on the train\n\nLabel:"
    )
    assert step(record, "intent").examples == ExampleSignals(
        shown=("lost-1", "lost-2"),
        similarity=pytest.approx(0.554, abs=1e-3),
        model_confidence=Confidence(value=0.9, source="scripted"),
    )


async def test_a_custom_prompt_reads_the_examples(tmp_path: Path) -> None:
    (tmp_path / "intent.md").write_text(
        "{% for e in examples %}{{ e.id }}={{ e.output }};{% endfor %}\n{{ text }}",
        encoding="utf-8",
    )
    pipeline = (
        PipelineBuilder("p", prompts=tmp_path)
        .add(Classify("intent", labels=LABELS, prompt="intent.md", examples=Examples(POOL, k=2)))
        .build()
    )
    model = FakeModel({"intent": Reply("refund", confidence=0.9)})
    await Runner(pipeline, model=model).run("refund the double charge")
    assert model.calls[0].messages[0].content == (
        "refund-1=refund;refund-2=refund;\nrefund the double charge"
    )


def test_a_custom_prompt_that_never_shows_the_examples_is_a_setup_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "intent.md").write_text("{{ text }}", encoding="utf-8")

    def build(examples: Examples) -> Any:
        return (
            PipelineBuilder("p", prompts=tmp_path)
            .add(Classify("intent", labels=LABELS, prompt="intent.md", examples=examples))
            .build()
        )

    with pytest.raises(GraphSetupError, match=r"has examples to show \(k=10\), but its prompt "):
        build(Examples(POOL))
    assert build(Examples(POOL, k=0, vote=True, k_vote=3))  # the vote alone


class Order(BaseModel):
    order_id: str | None = None
    amount: float | None = None


async def test_extract_shows_its_examples_as_fields() -> None:
    examples = [
        Example("Order A-1, 12.50 EUR", {"order_id": "A-1", "amount": 12.5}, id="o1"),
        Example("Nothing here", Order(), id="o2"),
    ]
    pipeline = PipelineBuilder("p").add(Extract("order", Order, examples=examples)).build()
    model = FakeModel({"order": Reply({"order_id": "B-2"}, field_confidence={"order_id": 0.9})})
    record = await Runner(pipeline, model=model).run("Order B-2 please")
    system = model.calls[0].messages[0].content
    assert system.endswith(
        "Examples of documents and their fields:\n\n"
        "Example 1:\nNothing here\nFields: {\n"
        '  "order_id": null,\n  "amount": null\n}\n\n'
        "Example 2:\nOrder A-1, 12.50 EUR\nFields: {\n"
        '  "order_id": "A-1",\n  "amount": 12.5\n}'
    )
    assert model.calls[0].messages[1].content == "Order B-2 please"
    assert step(record, "order").examples is not None


def test_extract_examples_are_checked_and_do_not_vote() -> None:
    with pytest.raises(GraphSetupError, match="is not a field of the schema"):
        PipelineBuilder("p").add(
            Extract("order", Order, examples=[{"text": "x", "output": {"total": 1}}])
        ).build()
    with pytest.raises(GraphSetupError, match=r"vote \(vote=, agree=\) and per_label= are for"):
        Extract("order", Order, examples=Examples(POOL, vote=True))


# --- the vote -----------------------------------------------------------------------------------


def fixed(values: Sequence[float]) -> Any:
    def similarity(document: str, texts: Sequence[str]) -> list[float]:
        return list(values)

    return similarity


def test_the_vote_weighs_the_nearest_labels_by_similarity() -> None:
    pool = [Example(f"e{i}", label, id=f"e{i}") for i, label in enumerate(LABELS * 2)]
    # e0 card_lost 0.9, e1 card_arrival 0.6, e2 refund 0.0, e3 card_lost 0.3, e4 ..., e5 ...
    examples = Examples(pool, k=4, vote=True, retriever=fixed([0.9, 0.6, 0.0, 0.3, 0.1, 0.2]))
    picked = examples.pick("doc", node="intent", labels=LABELS)
    # the 4 nearest: e0 (0.9), e1 (0.6), e3 (0.3), e5 (0.2, refund)
    assert picked.signals.shown == ("e5", "e3", "e1", "e0")
    assert picked.signals.vote == pytest.approx(
        {"card_lost": 0.6, "card_arrival": 0.3, "refund": 0.1}
    )
    assert list(picked.signals.vote) == ["card_lost", "card_arrival", "refund"]
    assert (picked.signals.label, picked.signals.similarity) == ("card_lost", 0.9)

    confidence, signals = picked.judge("card_arrival", Confidence(value=0.8, source="logprobs"))
    assert confidence == Confidence(value=pytest.approx(0.55), source="combined")
    assert signals.confidence == Confidence(value=pytest.approx(0.3), source="examples")
    assert signals.model_confidence == Confidence(value=0.8, source="logprobs")
    # a model without a number of its own: the vote alone
    assert picked.judge("card_lost", None)[0] == Confidence(
        value=pytest.approx(0.6), source="examples"
    )


def test_no_neighbour_sharing_a_word_casts_no_vote() -> None:
    picked = Examples(POOL, vote=True).pick("zzz", node="intent", labels=LABELS)
    assert (picked.signals.vote, picked.signals.label, picked.signals.similarity) == ({}, None, 0)
    model = Confidence(value=0.7, source="logprobs")
    assert picked.judge("refund", model)[0] == model  # the model's number, unchanged


def agreeing() -> Examples:
    # the 3 nearest: lost-1 (0.8), lost-2 (0.8), arrival-1 (0.4): card_lost has 0.8 of the vote
    near = fixed([0.8, 0.8, 0.4, 0.0, 0.0, 0.0])
    return Examples(POOL, k=3, agree=True, model_floor=0.5, retriever=near)


async def test_agreement_accepts_when_the_examples_and_the_model_agree() -> None:
    model = FakeModel({"intent": Reply("card_lost", confidence=0.6)})
    record = await Runner(classify(agreeing()), model=model).run("my card was stolen")
    assert record.status is RunStatus.COMPLETED
    signals = step(record, "intent").examples
    assert signals == ExampleSignals(
        shown=("arrival-1", "lost-2", "lost-1"),
        similarity=0.8,
        vote={"card_lost": pytest.approx(0.8), "card_arrival": pytest.approx(0.2)},
        label="card_lost",
        confidence=Confidence(value=pytest.approx(0.8), source="examples"),
        model_confidence=Confidence(value=0.6, source="scripted"),
    )
    assert step(record, "intent").confidence == Confidence(
        value=pytest.approx(0.7), source="combined"
    )


async def test_agreement_reviews_when_the_examples_vote_for_another_label() -> None:
    model = FakeModel({"intent": Reply("card_arrival", confidence=0.95)})
    record = await Runner(classify(agreeing()), model=model).run("my card was stolen")
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="examples_disagree",
            value=pytest.approx(0.2),
            message="the examples vote for `card_lost` (0.80), the model said `card_arrival` "
            "(which has 0.20 of the vote)",
        ),
    )


async def test_agreement_reviews_a_model_under_its_floor() -> None:
    model = FakeModel({"intent": Reply("card_lost", confidence=0.4)})
    record = await Runner(classify(agreeing()), model=model).run("my card was stolen")
    assert record.status is RunStatus.NEEDS_REVIEW
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="low_confidence",
            value=0.4,
            threshold=0.5,
            message="the model's own confidence 0.40 < its floor 0.5 (scripted)",
        ),
    )


async def test_agreement_still_needs_the_combined_confidence_to_clear_the_gate() -> None:
    model = FakeModel({"intent": Reply("card_lost", confidence=0.6)})
    record = await Runner(classify(agreeing(), gate=Gate(accept=0.9)), model=model).run(
        "my card was stolen"
    )
    assert record.review is not None
    assert [r.message for r in record.review.reasons] == ["confidence 0.70 < 0.9 (combined)"]


async def test_a_document_unlike_every_example_goes_to_review() -> None:
    model = FakeModel({"intent": Reply("refund", confidence=0.99)})
    pipeline = classify(Examples(POOL, unlike_below=0.2))
    record = await Runner(pipeline, model=model).run("Quarterly tax filing deadline")
    assert record.review is not None
    [reason] = record.review.reasons
    assert (reason.kind, reason.value, reason.threshold) == ("unlike_examples", 0.0, 0.2)
    assert reason.message == "unlike anything seen: the closest example's similarity is 0.00 < 0.2"

    near = await Runner(pipeline, model=model).run("please refund the double charge")
    assert near.status is RunStatus.COMPLETED


async def test_with_an_empty_pool_every_document_is_unlike() -> None:
    model = FakeModel({"intent": Reply("refund", confidence=0.99)})
    record = await Runner(classify(Examples([], unlike_below=0.1)), model=model).run("refund")
    assert record.review is not None
    assert record.review.reasons == (
        ReviewReason(
            kind="unlike_examples",
            threshold=0.1,
            message="unlike anything seen: the node has no examples yet",
        ),
    )
    assert step(record, "intent").examples == ExampleSignals(
        model_confidence=Confidence(value=0.99, source="scripted")
    )


async def test_examples_that_can_review_make_a_gateless_node_pausable() -> None:
    node = Classify("intent", labels=LABELS, gate=None, examples=Examples(POOL, unlike_below=0.1))
    assert node.can_pause()
    with pytest.raises(GraphSetupError, match="has examples that can send a run to review"):
        PipelineBuilder("p", pausable=False).add(node).build()


# --- records ------------------------------------------------------------------------------------


async def test_the_signals_survive_the_durable_store_and_a_review() -> None:
    from handrail.durable.serialize import CHECKPOINTS, dump_step, load_step

    model = FakeModel({"intent": Reply("card_arrival", confidence=0.9)})
    runner = Runner(classify(agreeing()), model=model)
    paused = await runner.run("my card was stolen")
    first = step(paused, "intent")
    assert first.examples is not None
    assert first.examples.shown == ("arrival-1", "lost-2", "lost-1")
    assert load_step(json.loads(json.dumps(dump_step(first)))) == first
    stored = dump_step(first)
    del stored["examples"]  # a step stored before examples existed
    assert load_step(stored).examples is None

    done = await runner.resume(paused.run_id, ReviewDecision.approve(reviewer="ann"))
    assert step(done, "intent").examples == first.examples

    # a durable runner checkpoints the step's outcome: the signals come back from it
    from handrail.core.outcome import Outcome
    from handrail.core.records import StepStatus

    outcome = Outcome(status=StepStatus.COMPLETED, output="x", examples=first.examples)
    back = CHECKPOINTS.deserialize(CHECKPOINTS.serialize(outcome))
    assert back.examples == first.examples


async def test_a_failed_step_still_says_which_examples_it_showed() -> None:
    model = FakeModel({"intent": Fail("auth")})
    pipeline = (
        PipelineBuilder("p")
        .add(Classify("intent", labels=LABELS, retry=FAST, examples=Examples(POOL, k=1)))
        .build()
    )
    record = await Runner(pipeline, model=model).run("please refund the double charge")
    assert record.status is RunStatus.FAILED
    signals = step(record, "intent").examples
    assert signals is not None and signals.shown == ("refund-2",)


def test_the_fingerprint_changes_with_the_pool_and_the_settings() -> None:
    base = classify(Examples(POOL)).fingerprint
    assert classify(Examples(POOL)).fingerprint == base
    assert classify(Examples(POOL[:-1])).fingerprint != base
    relabelled = [*POOL[:-1], Example(POOL[-1].text, "card_lost", id=POOL[-1].id)]
    assert classify(Examples(relabelled)).fingerprint != base
    assert classify(Examples(POOL, k=3)).fingerprint != base
    assert classify(Examples(POOL, agree=True)).fingerprint != base
    assert classify(None).fingerprint != base


def test_a_pipeline_without_examples_keeps_its_fingerprint() -> None:
    # the fingerprints these had before examples existed: their run ids stay the same
    pipeline = PipelineBuilder("p").add(Classify("c", labels=["a", "b"])).build()
    assert pipeline.fingerprint == "a50680603412"
    pipeline = PipelineBuilder("p").add(Extract("o", Order, gate=Gate(accept=0.7))).build()
    assert pipeline.fingerprint == "a0e9662a0643"
