"""Thresholds from data: the threshold an eval's answers give, the calibration file, and a
pipeline gated with `Gate.calibrated(...)` reading it (floor, fallback, fingerprint)."""

from __future__ import annotations

import json
import random
import warnings
from pathlib import Path

import pytest
from pydantic import BaseModel

from handrail import Classify, Extract, FakeModel, Gate, PipelineBuilder, Reply
from handrail.core.calibration import CalibrationWarning
from handrail.core.fingerprint import _value
from handrail.core.model import ModelRequest
from handrail.core.nodes import CalibratedGate
from handrail.core.pipeline import Pipeline
from handrail.core.records import ReviewDecision
from handrail.core.runner import Runner
from handrail.evals.calibrate import (
    Answers,
    answers_from_eval,
    answers_from_reviews,
    calibrate,
    save_calibration,
)
from handrail.evals.run import run_cases
from handrail.evals.suite import load_suite
from handrail.exceptions import GraphSetupError
from handrail.targets import load_pipeline

from .test_eval_run import write_suite

# building a calibrated pipeline before its file is written warns; the tests that look for the
# warning catch it themselves
pytestmark = pytest.mark.filterwarnings("ignore::handrail.core.calibration.CalibrationWarning")


class Order(BaseModel):
    order_id: str
    amount: float


def classifier(gate: Gate) -> Pipeline:
    return PipelineBuilder("triage").add(Classify("category", labels=["a", "b"], gate=gate)).build()


def extractor(gate: Gate) -> Pipeline:
    return PipelineBuilder("orders").add(Extract("details", Order, gate=gate)).build()


def calibrated_file(tmp_path: Path, pipeline: Pipeline, answers: dict[str, Answers]) -> Path:
    found = calibrate(pipeline, answers, target_accuracy=0.9, source="eval", min_cases=3)
    return save_calibration(tmp_path / "handrail.calibration.json", found.entry)


def graded(pairs: list[tuple[float, bool]], node: str = "category") -> dict[str, Answers]:
    return {node: Answers(node=node, kind="classify", pairs=pairs)}


# --- the threshold -----------------------------------------------------------------------------


async def test_the_suites_threshold_reaches_the_target_and_says_what_it_costs(
    tmp_path: Path,
) -> None:
    from tests.evals.fixtures import orders

    suite = load_suite(write_suite(tmp_path / "orders"), load=load_pipeline)
    assert suite.pipeline is not None
    ran = await run_cases(suite.pipeline, suite.cases, model=orders.model())
    answers = answers_from_eval(suite.pipeline, suite, ran)
    assert set(answers) == {"category"}  # `details` has no gate: nothing to calibrate
    found = calibrate(
        suite.pipeline, answers, target_accuracy=0.95, source="eval", suite="orders", min_cases=3
    )
    # sorted: 0.5 wrong, 0.6 right, 0.85 wrong, 0.9, 0.95, 0.99 right; at 0.85 3/4 are right
    (row,) = found.rows
    assert (row.old, row.new, row.cases) == (0.8, 0.9, 6)
    assert (row.straight_before, row.straight_after) == (pytest.approx(4 / 6), 0.5)
    assert (row.accuracy_before, row.accuracy_after) == (0.75, 1.0)
    entry = found.entry.nodes["category"].node
    assert entry.threshold == 0.9 and entry.accepted_accuracy == 1.0
    assert found.entry.fingerprint == suite.pipeline.fingerprint
    assert found.entry.suite == "orders" and found.entry.source == "eval"


def test_on_a_larger_synthetic_suite_the_lowest_threshold_reaching_the_target() -> None:
    rng = random.Random(7)
    pairs = [(c, rng.random() < c) for c in (rng.random() for _ in range(2000))]
    found = calibrate(classifier(Gate()), graded(pairs), target_accuracy=0.9, source="eval")
    threshold = found.entry.nodes["category"].node.threshold
    assert threshold is not None

    def accuracy(at: float) -> float:
        kept = [r for c, r in pairs if c >= at]
        return sum(kept) / len(kept)

    assert accuracy(threshold) >= 0.9
    below = max(c for c, _ in pairs if c < threshold)
    assert accuracy(below) < 0.9  # one step lower misses it: the lowest that reaches it


def test_too_few_cases_give_no_threshold_and_say_how_many_more() -> None:
    found = calibrate(
        classifier(Gate()), graded([(0.9, True)] * 4), target_accuracy=0.9, source="eval"
    )
    (row,) = found.rows
    assert row.new is None and found.entry.nodes["category"].node.threshold is None
    assert row.reason == (
        "`category` has 4 answers with a confidence; a threshold needs at least 30 (26 more)"
    )


def test_an_unreachable_target_gives_no_threshold() -> None:
    found = calibrate(
        classifier(Gate()),
        graded([(0.9, True), (0.95, False)] * 3),
        target_accuracy=0.99,
        source="eval",
        min_cases=3,
    )
    reason = found.rows[0].reason
    assert reason is not None and "no threshold reaches 99.0%" in reason


def test_a_current_threshold_accepting_the_same_answers_is_kept() -> None:
    # nothing lies between 0.8 and 0.95: raising the gate to 0.95 would change nothing
    found = calibrate(
        classifier(Gate(accept=0.8)),
        graded([(0.5, False), (0.95, True), (0.97, True)]),
        target_accuracy=0.9,
        source="eval",
        min_cases=3,
    )
    assert found.rows[0].new == 0.8


# --- the pipeline reading it --------------------------------------------------------------------


def test_a_calibrated_gate_reads_its_threshold_and_the_fingerprint_follows(
    tmp_path: Path,
) -> None:
    gate = Gate.calibrated(floor=0.5, calibration=str(tmp_path / "handrail.calibration.json"))
    answers = graded([(0.3, False), (0.6, True), (0.7, True), (0.9, True)])
    calibrated_file(tmp_path, classifier(gate), answers)
    built = classifier(gate)
    assert built["category"].gate == CalibratedGate(
        accept=0.6, floor=0.5, fallback=0.8, calibration=gate.calibration
    )
    assert built.plans["category"].node is built["category"]
    assert built.graph.nodes["category"]["node"] is built["category"]
    calibrated_file(tmp_path, classifier(gate), graded([(0.6, False), (0.7, True)] * 2))
    other = classifier(gate)
    assert other["category"].gate.accept == 0.7  # type: ignore[union-attr]
    assert other.fingerprint != built.fingerprint  # another threshold: another version


def test_a_plain_gate_keeps_its_fields_and_fingerprints() -> None:
    assert set(_value(Gate())) == {"accept", "reject", "fields", "audit"}
    assert classifier(Gate()).fingerprint == classifier(Gate(accept=0.8)).fingerprint


def test_the_floor_is_never_undercut(tmp_path: Path) -> None:
    gate = Gate.calibrated(floor=0.75, calibration=str(tmp_path / "handrail.calibration.json"))
    answers = graded([(0.3, False), (0.6, True), (0.7, True), (0.9, True)])
    found = calibrate(classifier(gate), answers, target_accuracy=0.9, source="eval", min_cases=3)
    assert found.entry.nodes["category"].node.threshold == 0.6  # what the data says
    assert found.rows[0].new == 0.75  # what the pipeline will use
    save_calibration(tmp_path / "handrail.calibration.json", found.entry)
    assert classifier(gate)["category"].gate.accept == 0.75  # type: ignore[union-attr]


def test_an_extract_gets_a_threshold_per_field_above_its_floor(tmp_path: Path) -> None:
    gate = Gate.calibrated(floor=0.5, calibration=str(tmp_path / "handrail.calibration.json"))
    answers = {
        "details": Answers(
            node="details",
            kind="extract",
            pairs=[(0.4, False), (0.6, True), (0.95, True)],
            fields={
                "order_id": [(0.4, True), (0.6, True), (0.99, True)],
                "amount": [(0.4, False), (0.6, False), (0.85, False), (0.95, True)],
            },
        )
    }
    calibrated_file(tmp_path, extractor(gate), answers)
    read = extractor(gate)["details"].gate
    assert read is not None
    assert read.accept == 0.6
    assert dict(read.fields) == {"order_id": 0.5, "amount": 0.95}  # 0.4 raised to the floor


def test_a_node_the_file_lacks_falls_back_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "handrail.calibration.json"
    gate = Gate.calibrated(floor=0.5, fallback=0.85, calibration=str(path))
    with pytest.warns(CalibrationWarning, match=r"`category`: no calibration file .* 0\.85"):
        assert classifier(gate)["category"].gate.accept == 0.85  # type: ignore[union-attr]
    calibrated_file(tmp_path, extractor(Gate()), {})  # a file, for another pipeline
    with pytest.warns(CalibrationWarning, match="holds no thresholds for pipeline `triage`"):
        classifier(gate)
    calibrated_file(tmp_path, classifier(gate), graded([(0.9, True)]))  # one case: too few
    with pytest.warns(CalibrationWarning, match="no threshold from data .*needs at least 3"):
        assert classifier(gate)["category"].gate.accept == 0.85  # type: ignore[union-attr]


def test_the_environment_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gate = Gate.calibrated(floor=0.5)
    calibrated_file(tmp_path, classifier(gate), graded([(0.55, False), (0.7, True)] * 2))
    monkeypatch.setenv("HANDRAIL_CALIBRATION", str(tmp_path / "handrail.calibration.json"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert classifier(gate)["category"].gate.accept == 0.7  # type: ignore[union-attr]


def test_a_file_handrail_did_not_write_is_a_setup_error(tmp_path: Path) -> None:
    path = tmp_path / "handrail.calibration.json"
    path.write_text(json.dumps({"version": 7}))
    with pytest.raises(GraphSetupError, match="is not one handrail wrote"):
        classifier(Gate.calibrated(floor=0.5, calibration=str(path)))


def test_a_calibrated_gate_checks_its_bands() -> None:
    with pytest.raises(ValueError, match=r"fallback=0\.5 is below floor=0\.6"):
        Gate.calibrated(floor=0.6, fallback=0.5)
    with pytest.raises(ValueError, match=r"reject=0\.7 is above floor=0\.6"):
        Gate.calibrated(floor=0.6, reject=0.7)


def test_saving_keeps_the_other_pipelines(tmp_path: Path) -> None:
    calibrated_file(tmp_path, extractor(Gate()), {})
    calibrated_file(tmp_path, classifier(Gate()), {})
    data = json.loads((tmp_path / "handrail.calibration.json").read_text())
    assert sorted(data["pipelines"]) == ["orders", "triage"]


# --- from decided reviews -----------------------------------------------------------------------


async def test_decided_reviews_are_answers_right_when_approved() -> None:
    pipeline = classifier(Gate(accept=0.99))

    def answer(request: ModelRequest) -> Reply:
        text = " ".join(m.content for m in request.messages)
        return Reply("a", confidence=float(text.split("conf=")[1].split()[0]))

    runner = Runner(pipeline, model=FakeModel({"category": answer}))
    for i, (confidence, verdict) in enumerate(
        [(0.5, "reject"), (0.6, "edit"), (0.7, "approve"), (0.8, "approve"), (0.9, "approve")]
    ):
        record = await runner.run(f"ticket {i} conf={confidence} ")
        decision = {
            "approve": ReviewDecision.approve(),
            "edit": ReviewDecision.edit("b"),
            "reject": ReviewDecision.reject("not a ticket"),
        }[verdict]
        await runner.resume(record.run_id, decision)
    await runner.run("still waiting conf=0.1 ")  # pending: not an answer yet
    answers, decided = answers_from_reviews(pipeline, runner.store)
    assert decided == 5
    assert sorted(answers["category"].pairs) == [
        (0.5, False),
        (0.6, False),
        (0.7, True),
        (0.8, True),
        (0.9, True),
    ]
    found = calibrate(pipeline, answers, target_accuracy=0.9, source="reviews", min_cases=5)
    assert found.rows[0].new == 0.7 and found.entry.source == "reviews"
