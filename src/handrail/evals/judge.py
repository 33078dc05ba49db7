"""The opt-in LLM judge for free text (a `Summarize` or `Draft` node's output).

Checks (`contains`, `not_contains`, `max_words`) catch what a phrase can show; whether a reply
answers the customer, or a summary leaves out what matters, takes a reader. `judge_texts` asks a
model, one call per text, whether the text meets a rubric. The call is a `classify` request with
the labels `pass` and `fail`, so every provider answers in the same shape: a label and, where the
provider has one, a probability (the embedded model scores both labels; an API model gives its
logprobs or agreement; `FakeModel` scripts them).

A judge is a model too: its verdicts are evidence, not ground truth, and its confidence says how
sure it was. An error on one text (a timeout, an answer that is neither label, a recording
missing offline) leaves that text unjudged (`None`), with the reason in `JudgeScores.errors`; it
never fails the eval.

`judge_run` judges every text node of a suite whose scoring has a `judge`, over an eval's
results; `handrail eval` runs it before `build_report(..., judged=...)`, which is synchronous.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from handrail.core.model import Message, Model, ModelRequest
from handrail.evals.report import model_step
from handrail.evals.run import EvalRun
from handrail.evals.suite import Suite, TextScoring

LABELS = ("pass", "fail")
"""The judge's two answers."""
MAX_DOCUMENT_CHARS = 4000
"""The document is cut to this many characters in the judge's prompt (the text judged and the
reference are shown whole)."""
JUDGE_NODE = "judge"
"""The request's `node` when none is given (a `FakeModel` script keys on it)."""

SYSTEM = (
    "You judge the output of an automated step in a document-intake pipeline. Read the rubric, "
    "the document the step read, the reference answer if there is one, and the output. Answer "
    "with one word: pass if the output meets every point of the rubric, fail if it does not."
)


@dataclass(frozen=True, kw_only=True, slots=True)
class JudgeItem:
    """One text to judge."""

    case_id: str
    document: str
    """The document the node read (cut to `MAX_DOCUMENT_CHARS` in the prompt)."""
    output: str
    """The node's output: the text judged."""
    reference: str | None = None
    """The case's expected text for the node, if it has one: a reference, not a required
    wording."""


@dataclass(frozen=True, kw_only=True, slots=True)
class JudgeVerdict:
    """The judge's answer on one text."""

    passed: bool
    confidence: float | None
    """The judge's probability for its answer, where the model gives one (0 to 1)."""

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "confidence": self.confidence}


@dataclass(frozen=True, kw_only=True, slots=True)
class JudgeScores:
    """The judge's verdicts on a node's texts, by case id, in the order they were given."""

    rubric: str
    model: str
    """The judge's model."""
    verdicts: Mapping[str, JudgeVerdict | None] = field(default_factory=dict)
    """Per case; None when the text could not be judged (see `errors`)."""
    errors: Mapping[str, str] = field(default_factory=dict)
    """Why each unjudged case was not judged."""

    @property
    def judged(self) -> int:
        return sum(v is not None for v in self.verdicts.values())

    @property
    def passed(self) -> int:
        return sum(v is not None and v.passed for v in self.verdicts.values())

    @property
    def failed(self) -> int:
        return self.judged - self.passed

    @property
    def unjudged(self) -> int:
        return len(self.verdicts) - self.judged

    @property
    def pass_rate(self) -> float | None:
        """Passed over judged; None when nothing was judged (never 0 for unknown)."""
        return self.passed / self.judged if self.judged else None

    def to_dict(self) -> dict[str, Any]:
        """The report's `judge` section: JSON values only."""
        return {
            "rubric": self.rubric,
            "model": self.model,
            "n": len(self.verdicts),
            "judged": self.judged,
            "passed": self.passed,
            "failed": self.failed,
            "unjudged": self.unjudged,
            "pass_rate": self.pass_rate,
            "verdicts": {
                case: None if v is None else v.to_dict() for case, v in self.verdicts.items()
            },
            "errors": dict(self.errors),
        }


def judge_prompt(item: JudgeItem, rubric: str) -> list[Message]:
    """The judge's messages: the instructions, then the rubric, the (cut) document, the
    reference if any and the output."""
    document = item.document
    if len(document) > MAX_DOCUMENT_CHARS:
        cut = len(document) - MAX_DOCUMENT_CHARS
        document = f"{document[:MAX_DOCUMENT_CHARS]}\n[... {cut} more characters not shown]"
    parts = [f"Rubric:\n{rubric.strip()}", f"Document:\n{document}"]
    if item.reference is not None:
        parts.append(f"Reference answer (other wordings may pass):\n{item.reference}")
    parts.append(f"Output to judge:\n{item.output}")
    parts.append("Does the output meet the rubric? Answer pass or fail.")
    return [
        Message(role="system", content=SYSTEM),
        Message(role="user", content="\n\n".join(parts)),
    ]


async def judge_texts(
    items: Sequence[JudgeItem],
    *,
    model: Model,
    rubric: str,
    concurrency: int = 4,
    node: str = JUDGE_NODE,
) -> JudgeScores:
    """Ask `model` whether each item's output meets `rubric`, `concurrency` at a time."""
    limit = asyncio.Semaphore(max(1, concurrency))

    async def one(item: JudgeItem) -> JudgeVerdict | str:
        request = ModelRequest(
            node=node,
            kind="classify",
            messages=judge_prompt(item, rubric),
            labels=LABELS,
            document_id=item.case_id,
        )
        async with limit:
            try:
                response = await model.generate(request)
            except Exception as e:  # a judge's failure leaves the text unjudged, never the eval
                return f"{type(e).__name__}: {e}"
        label = _label(response.output)
        if label is None:
            return f"the judge answered {str(response.output)[:80]!r}, not pass or fail"
        confidence = response.label_scores.get(label)
        if confidence is None and response.confidence is not None:
            confidence = response.confidence.value
        return JudgeVerdict(
            passed=label == "pass",
            confidence=None if confidence is None else float(confidence),
        )

    answers = await asyncio.gather(*(one(item) for item in items))
    verdicts: dict[str, JudgeVerdict | None] = {}
    errors: dict[str, str] = {}
    for item, answer in zip(items, answers, strict=True):
        if isinstance(answer, str):
            verdicts[item.case_id] = None
            errors[item.case_id] = answer
        else:
            verdicts[item.case_id] = answer
    return JudgeScores(rubric=rubric, model=model.name, verdicts=verdicts, errors=errors)


async def judge_run(
    suite: Suite,
    run: EvalRun,
    *,
    model_for: Callable[[str | None], Model],
    concurrency: int = 4,
) -> dict[str, JudgeScores]:
    """Judge every text node whose scoring has a `judge`, over `run`'s results: per node, the
    scores of the texts it produced. `model_for(judge.model)` gives the judge's model (None: the
    eval's own)."""
    judged: dict[str, JudgeScores] = {}
    models: dict[str | None, Model] = {}
    for name, scoring in suite.scoring.items():
        if not isinstance(scoring, TextScoring) or scoring.judge is None:
            continue
        items = []
        for result in run.results:
            step = model_step(result.record, name)
            document = result.case.document
            if step is None or step.output is None or isinstance(document, BaseException):
                continue
            reference = result.case.expected.get(name)
            items.append(
                JudgeItem(
                    case_id=result.case.id,
                    document=document.text,
                    output=_text(step.output),
                    reference=None if reference is None else _text(reference),
                )
            )
        wanted = scoring.judge.model
        if wanted not in models:
            models[wanted] = model_for(wanted)
        judged[name] = await judge_texts(
            items,
            model=models[wanted],
            rubric=scoring.judge.rubric,
            concurrency=concurrency,
            node=f"{name}.judge",
        )
    return judged


def _label(output: Any) -> str | None:
    """`pass` or `fail` from an answer such as "pass", " Fail.", '"PASS"'; else None."""
    words = str(output).strip().split()
    word = words[0].strip("\"'.,:;!*`").casefold() if words else ""
    return word if word in LABELS else None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else str(value)


__all__ = [
    "LABELS",
    "MAX_DOCUMENT_CHARS",
    "JudgeItem",
    "JudgeScores",
    "JudgeVerdict",
    "judge_prompt",
    "judge_run",
    "judge_texts",
]
