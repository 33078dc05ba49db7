"""The LLM judge for free text: verdicts, confidence and the pass rate from a scripted judge, an
erroring or off-label answer left unjudged, the prompt it sends, and the judge's results in the
report and in `handrail eval --json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from handrail import Fail, FakeModel, Reply
from handrail.cli.main import main
from handrail.core.model import ModelRequest
from handrail.evals.judge import (
    MAX_DOCUMENT_CHARS,
    JudgeItem,
    JudgeScores,
    JudgeVerdict,
    judge_run,
    judge_texts,
)
from handrail.evals.report import build_report
from handrail.evals.run import run_cases
from handrail.evals.suite import load_suite
from handrail.targets import load_pipeline

ROOT = Path(__file__).parents[2]
HAPPY = ROOT / "tests" / "pipelines" / "happy.py"
RUBRIC = "The reply names the order number and promises nothing the document does not."

ITEMS = [
    JudgeItem(
        case_id="kettle",
        document="My kettle LH-1 arrived cracked. Refund please.",
        output="Sorry about kettle LH-1: your refund is on its way.",
        reference="We are refunding order LH-1.",
    ),
    JudgeItem(
        case_id="sofa",
        document="The sofa LH-2 faded.",
        output="We guarantee a new sofa tomorrow.",
    ),
    JudgeItem(case_id="mug", document="Mug LH-3 chipped.", output="Refund for LH-3 sent."),
]


def case_of(request: ModelRequest) -> str:
    text = request.messages[-1].content
    return next(item.case_id for item in ITEMS if item.output in text)


@pytest.fixture(autouse=True)
def _sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a file target makes its folder importable: undo it after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


async def test_verdicts_confidence_and_pass_rate() -> None:
    answers = {
        "kettle": Reply("pass", label_scores={"pass": 0.9, "fail": 0.1}),
        "sofa": Reply("fail", label_scores={"pass": 0.2, "fail": 0.8}),
        "mug": Reply("pass", confidence=0.6),  # no label scores: the reply's own confidence
    }
    judge = FakeModel({"judge": lambda request: answers[case_of(request)]}, name="judge-model")

    scores = await judge_texts(ITEMS, model=judge, rubric=RUBRIC)

    assert scores.verdicts == {
        "kettle": JudgeVerdict(passed=True, confidence=0.9),
        "sofa": JudgeVerdict(passed=False, confidence=0.8),
        "mug": JudgeVerdict(passed=True, confidence=0.6),
    }
    assert (scores.judged, scores.passed, scores.failed, scores.unjudged) == (3, 2, 1, 0)
    assert scores.pass_rate == pytest.approx(2 / 3)
    assert scores.model == "judge-model" and scores.rubric == RUBRIC
    assert scores.errors == {}
    assert len(judge.calls) == 3


async def test_an_erroring_item_is_unjudged_and_the_rest_are_scored() -> None:
    def answer(request: ModelRequest) -> Reply | Fail:
        case = case_of(request)
        if case == "sofa":
            return Fail("exception", "judge fell over")
        if case == "mug":
            return Reply("maybe", confidence=0.5)  # neither label
        return Reply(" Pass.", label_scores={"pass": 0.7, "fail": 0.3})

    scores = await judge_texts(ITEMS, model=FakeModel({"judge": answer}), rubric=RUBRIC)

    assert scores.verdicts == {
        "kettle": JudgeVerdict(passed=True, confidence=0.7),
        "sofa": None,
        "mug": None,
    }
    assert scores.errors == {
        "sofa": "RuntimeError: judge fell over",
        "mug": "the judge answered 'maybe', not pass or fail",
    }
    assert (scores.judged, scores.passed, scores.failed, scores.unjudged) == (1, 1, 0, 2)
    assert scores.pass_rate == 1.0  # over what was judged: the unjudged are not failures


async def test_nothing_judged_has_no_pass_rate() -> None:
    scores = await judge_texts(ITEMS[:1], model=FakeModel({"judge": Fail("auth")}), rubric=RUBRIC)
    assert scores.pass_rate is None
    assert scores.to_dict() == {
        "rubric": RUBRIC,
        "model": "fake",
        "n": 1,
        "judged": 0,
        "passed": 0,
        "failed": 0,
        "unjudged": 1,
        "pass_rate": None,
        "verdicts": {"kettle": None},
        "errors": {"kettle": "AuthenticationError: scripted auth for `judge`"},
    }


async def test_the_prompt_shows_rubric_document_reference_and_output() -> None:
    long_document = "Order LH-9. " + "x" * (MAX_DOCUMENT_CHARS + 500) + " TAIL-MARKER"
    items = [
        ITEMS[0],
        JudgeItem(case_id="long", document=long_document, output="Refund for LH-9 sent."),
    ]
    judge = FakeModel({"reply.judge": Reply("pass")}, heuristic=False)

    await judge_texts(items, model=judge, rubric=RUBRIC, node="reply.judge")

    first, second = sorted(judge.calls, key=lambda c: c.document_id)
    assert (first.document_id, second.document_id) == ("kettle", "long")
    assert first.kind == "classify" and list(first.labels) == ["pass", "fail"]
    assert first.node == "reply.judge"
    system, user = first.messages
    assert system.role == "system" and "pass" in system.content and "fail" in system.content
    assert user.role == "user"
    prompt = user.content
    assert f"Rubric:\n{RUBRIC}" in prompt
    assert "Document:\nMy kettle LH-1 arrived cracked. Refund please." in prompt
    assert "Reference answer (other wordings may pass):\nWe are refunding order LH-1." in prompt
    assert "Output to judge:\nSorry about kettle LH-1: your refund is on its way." in prompt
    # the order a reader needs: rubric, document, reference, output
    assert (
        prompt.index("Rubric:")
        < prompt.index("Document:")
        < prompt.index("Reference answer")
        < prompt.index("Output to judge:")
    )
    long_prompt = second.messages[1].content
    assert "Reference answer" not in long_prompt  # no reference, no empty section
    assert "TAIL-MARKER" not in long_prompt
    assert "[... 524 more characters not shown]" in long_prompt
    assert "Output to judge:\nRefund for LH-9 sent." in long_prompt


def happy_suite(tmp_path: Path, judge: str) -> Path:
    """A suite over the `happy` fixture pipeline scoring its `reply` Draft with a judge."""
    folder = tmp_path / "happy"
    folder.mkdir()
    (folder / "suite.yaml").write_text(
        f"pipeline: {HAPPY}:pipeline\n"
        "scoring:\n"
        f"  reply: {{type: text, contains: [A-17], judge: {judge}}}\n"
    )
    cases = [
        {"id": "a", "document": "Please refund me.\nOrder ID: A-17\nAmount: 100\n"},
        {
            "id": "b",
            "document": "Refund please, it broke.\nOrder ID: A-17\nAmount: 50\n",
            "expected": {"reply": "ok"},
        },
    ]
    (folder / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    return folder


async def test_the_report_carries_the_judges_results(tmp_path: Path) -> None:
    from tests.pipelines import happy

    suite = load_suite(
        happy_suite(tmp_path, f"{{rubric: {json.dumps(RUBRIC)}}}"), load=load_pipeline
    )
    model = happy.model()
    model.script["reply.judge"] = lambda request: (
        Reply("pass", label_scores={"pass": 0.75, "fail": 0.25})
        if "Reference answer" not in request.messages[-1].content
        else Reply("fail", label_scores={"pass": 0.4, "fail": 0.6})
    )
    assert suite.pipeline is not None
    ran = await run_cases(suite.pipeline, suite.cases, model=model)
    asked: list[str | None] = []

    def model_for(name: str | None) -> FakeModel:
        asked.append(name)
        return model

    judged = await judge_run(suite, ran, model_for=model_for)

    assert asked == [None]  # no judge model given: the eval's own
    assert set(judged) == {"reply"}
    report = build_report(suite, ran, model="fake", judged=judged)
    section = report["nodes"]["reply"]
    assert section["checks"] == {"contains": {"passed": 2, "failed": 0}}
    judge = section["judge"]
    assert (judge["n"], judge["passed"], judge["failed"], judge["pass_rate"]) == (2, 1, 1, 0.5)
    assert judge["verdicts"] == {
        "a": {"passed": True, "confidence": 0.75},
        "b": {"passed": False, "confidence": 0.6},
    }
    details = {c["id"]: c["nodes"]["reply"] for c in report["cases_detail"]}
    assert details["a"]["judge"] == {"passed": True, "confidence": 0.75}
    assert details["b"]["judge"] == {"passed": False, "confidence": 0.6}
    assert details["a"]["correct"] is True  # the checks' verdict, the judge's beside it
    # the reference shown to the judge is the case's expected text
    (with_reference,) = [
        c for c in model.calls_for("reply.judge") if "Reference answer" in c.messages[-1].content
    ]
    assert "Reference answer (other wordings may pass):\nok" in with_reference.messages[-1].content
    assert "Refund please, it broke." in with_reference.messages[-1].content

    # without `judged`, the report is as before: no judge
    assert build_report(suite, ran, model="fake")["nodes"]["reply"]["judge"] is None


def test_handrail_eval_runs_the_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = happy_suite(tmp_path, "{rubric: 'Polite, and about the order.', model: fake}")

    code = main(["eval", str(folder), "--model", "fake", "--json"])

    report = json.loads(capsys.readouterr().out)
    assert code == 0
    judge = report["nodes"]["reply"]["judge"]
    assert judge["rubric"] == "Polite, and about the order." and judge["model"] == "fake"
    # the heuristic fake answers every text with a label: both drafts are judged
    assert judge["n"] == judge["judged"] == 2 and judge["unjudged"] == 0
    assert judge["passed"] + judge["failed"] == 2
    for case in report["cases_detail"]:
        verdict = case["nodes"]["reply"]["judge"]
        assert verdict is not None and isinstance(verdict["passed"], bool)


def test_judge_scores_to_dict_is_json() -> None:
    scores = JudgeScores(
        rubric="r",
        model="m",
        verdicts={"a": JudgeVerdict(passed=True, confidence=None), "b": None},
        errors={"b": "ProviderTimeout: slow"},
    )
    assert json.loads(json.dumps(scores.to_dict()))["verdicts"] == {
        "a": {"passed": True, "confidence": None},
        "b": None,
    }
