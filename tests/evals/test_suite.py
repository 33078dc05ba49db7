"""`load_suite`: suite.yaml and cases.jsonl read, documents loaded as `handrail run` loads them,
and every malformed file reported with its file, line, field and fix (several at once)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from handrail import Document, InputError
from handrail.evals.suite import (
    ClassificationScoring,
    ExtractionScoring,
    Judge,
    SuiteError,
    TextScoring,
    load_suite,
)
from handrail.inputs import load_document
from handrail.targets import load_pipeline

ROOT = Path(__file__).parents[2]
HAPPY = ROOT / "tests" / "pipelines" / "happy.py"
EMAIL = (
    b"From: Ann Lee <ann@example.com>\nSubject: Refund for order A-17\n"
    b"Date: Mon, 01 Jan 2024 10:00:00 +0000\n\nPlease refund me.\nOrder ID: A-17\n"
)
HAPPY_NODES = "category, order, with_tax, reply"


@pytest.fixture(autouse=True)
def _sys_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading a file target makes its folder importable: undo it after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))


def suite_yaml(folder: Path, extra: str = "") -> str:
    """A suite.yaml for the `happy` fixture pipeline, its target relative to `folder`."""
    target = Path(os.path.relpath(HAPPY, folder)).as_posix()
    return f"pipeline: {target}:pipeline\n{extra}"


def make_suite(
    tmp_path: Path,
    cases: list[Any] | str,
    *,
    yaml_text: str | None = None,
    files: dict[str, str | bytes] | None = None,
) -> Path:
    """`tmp_path/evals/s` with suite.yaml, cases.jsonl (objects dumped one a line, strings as
    written) and `files` beside them."""
    folder = tmp_path / "evals" / "s"
    folder.mkdir(parents=True)
    (folder / "suite.yaml").write_text(yaml_text if yaml_text is not None else suite_yaml(folder))
    lines = cases if isinstance(cases, str) else "\n".join(_line(c) for c in cases) + "\n"
    (folder / "cases.jsonl").write_text(lines)
    for name, content in (files or {}).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def _line(case: Any) -> str:
    return case if isinstance(case, str) else json.dumps(case)


def problems(folder: Path, **kwargs: Any) -> list[str]:
    """The problems `load_suite` reports, checked against the pipeline, paths shown relative."""
    with pytest.raises(SuiteError) as raised:
        load_suite(folder, load=load_pipeline, **kwargs)
    assert isinstance(raised.value, InputError)
    return [p.replace(f"{folder.parent.parent.as_posix()}/", "") for p in raised.value.problems]


GOOD_YAML = """\
name: happy_eval
model: fake
recordings: recordings
cases: cases.jsonl
concurrency: 3
target_accuracy: 0.95
scoring:
  category: {type: classification, labels: [refund, bug]}
  order: {type: extraction, match: fuzzy, fields: [order_id], fuzzy_threshold: 0.8}
  reply: {type: text, contains: [refund], not_contains: [sorry], max_words: 80,
          judge: {rubric: "Polite, names the order", model: fake}}
tolerances:
  default: 0.02
  category.accuracy: 0.05
  routing.accuracy: 0
"""


def test_a_good_suite_loads(tmp_path: Path) -> None:
    folder = make_suite(
        tmp_path,
        [
            {
                "id": "refund-1",
                "document": "Please refund me.\nOrder ID: A-17\nAmount: 100\n",
                "expected": {"category": "refund", "order": {"order_id": "A-17", "amount": 100}},
                "route": "accept",
                "tags": ["refund"],
                "metadata": {"from": "team"},
            },
            "",
            {"path": "documents/mail.eml", "expected": {"order": {"amount": None}}},
            {"path": "documents/form.json", "expected": {"reply": "Your refund is on its way."}},
            {"document": {"subject": "bug", "message": "It crashes"}, "route": "review"},
        ],
        yaml_text=suite_yaml(tmp_path / "evals" / "s", GOOD_YAML),
        files={"documents/mail.eml": EMAIL, "documents/form.json": '{"subject": "hi"}\n'},
    )
    suite = load_suite(folder, load=load_pipeline)

    assert (suite.name, suite.folder, suite.model) == ("happy_eval", folder.resolve(), "fake")
    assert suite.pipeline_target == f"{HAPPY.resolve().as_posix()}:pipeline"
    assert suite.pipeline is not None and suite.pipeline.name == "happy"
    assert suite.recordings == folder.resolve() / "recordings"
    assert (suite.concurrency, suite.target_accuracy) == (3, 0.95)
    assert suite.scoring == {
        "category": ClassificationScoring(labels=["refund", "bug"]),
        "order": ExtractionScoring(match="fuzzy", fields=["order_id"], fuzzy_threshold=0.8),
        "reply": TextScoring(
            contains=["refund"],
            not_contains=["sorry"],
            max_words=80,
            judge=Judge(rubric="Polite, names the order", model="fake"),
        ),
    }
    assert suite.tolerances == {"default": 0.02, "category.accuracy": 0.05, "routing.accuracy": 0}
    assert suite.tolerance("category.accuracy") == 0.05
    assert suite.tolerance("order.f1") == 0.02

    first, mail, form, inline = suite.cases
    assert [c.id for c in suite.cases] == ["refund-1", "mail", "form", "case-5"]
    assert [c.line for c in suite.cases] == [1, 3, 4, 5], "the blank line 2 is skipped"
    assert first.document == Document(
        text="Please refund me.\nOrder ID: A-17\nAmount: 100\n", id="refund-1"
    )
    assert (first.route, first.tags, first.metadata) == ("accept", ("refund",), {"from": "team"})
    assert first.expected == {"category": "refund", "order": {"order_id": "A-17", "amount": 100}}
    # read as `handrail run` reads the file: the same text and metadata; the id is the path
    # as the case gives it
    assert mail.document == load_document(
        folder / "documents/mail.eml", document_id="documents/mail.eml"
    )
    assert isinstance(mail.document, Document)
    assert mail.document.text.startswith("Subject: Refund for order A-17\nFrom: Ann Lee")
    assert (mail.expected, mail.route, mail.tags) == ({"order": {"amount": None}}, None, ())
    assert isinstance(form.document, Document) and form.document.text == '{"subject": "hi"}\n'
    assert inline.document == Document(
        text='{"message": "It crashes", "subject": "bug"}', id="case-5"
    )


def test_defaults_and_the_suite_yaml_path(tmp_path: Path) -> None:
    folder = make_suite(tmp_path, [{"document": "refund please"}])
    suite = load_suite(folder / "suite.yaml")
    assert suite.name == "s", "the folder's name"
    assert (suite.model, suite.recordings, suite.target_accuracy) == (None, None, None)
    assert (suite.concurrency, dict(suite.scoring), dict(suite.tolerances)) == (8, {}, {})
    assert suite.tolerance("category.accuracy") == 0.0
    assert suite.pipeline is None, "no loader: not checked against the pipeline"


def test_without_a_loader_nodes_are_not_checked(tmp_path: Path) -> None:
    folder = make_suite(tmp_path, [{"document": "x", "expected": {"nope": 1}}])
    assert load_suite(folder).cases[0].expected == {"nope": 1}
    assert problems(folder) == [
        'evals/s/cases.jsonl line 1: field "expected.nope": pipeline "happy" has no node "nope" '
        f"(nodes: {HAPPY_NODES})"
    ]


def test_a_module_target_is_kept_as_written(tmp_path: Path) -> None:
    folder = make_suite(
        tmp_path, [{"document": "x"}], yaml_text="pipeline: tests.pipelines.happy:pipeline\n"
    )
    assert load_suite(folder).pipeline_target == "tests.pipelines.happy:pipeline"


def test_an_unusable_document_is_a_case_whose_run_fails(tmp_path: Path) -> None:
    folder = make_suite(
        tmp_path,
        [{"path": "documents/blank.txt", "route": "fail"}],
        files={"documents/blank.txt": ""},
    )
    [case] = load_suite(folder, load=load_pipeline).cases
    assert isinstance(case.document, InputError)
    assert case.document.document_id == "documents/blank.txt"
    assert str(case.document).startswith("`documents/blank.txt` is empty")


# --- suite.yaml --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            "toleranse: {default: 0.1}\n",
            'evals/s/suite.yaml: unknown key "toleranse" (keys: name, pipeline, model, '
            "recordings, cases, concurrency, target_accuracy, scoring, tolerances, alpha, "
            "min_sample)",
        ),
        (
            'concurrency: "8"\n',
            'evals/s/suite.yaml: field "concurrency": Input should be a valid integer (got "8")',
        ),
        (
            "target_accuracy: 1.5\n",
            'evals/s/suite.yaml: field "target_accuracy": Input should be less than or equal to 1 '
            "(got 1.5)",
        ),
        (
            "tolerances: {category.accuracy: -0.1}\n",
            'evals/s/suite.yaml: field "tolerances.category.accuracy": Input should be greater '
            "than or equal to 0 (got -0.1)",
        ),
        (
            "scoring: {category: {type: clasification}}\n",
            'evals/s/suite.yaml: field "scoring.category.type": "clasification" is not a scoring '
            "type; give one of classification, extraction, text",
        ),
        (
            "scoring: {category: {labels: [refund]}}\n",
            'evals/s/suite.yaml: field "scoring.category.type": is missing; give one of '
            "classification, extraction, text",
        ),
        (
            "scoring: {category: classification}\n",
            'evals/s/suite.yaml: field "scoring.category": give a mapping such as '
            "{type: extraction}",
        ),
        (
            "scoring: {order: {type: extraction, match: fuzzzy}}\n",
            "evals/s/suite.yaml: field \"scoring.order.match\": Input should be 'exact', "
            "'normalised' or 'fuzzy' (got \"fuzzzy\")",
        ),
        (
            "scoring: {reply: {type: text, judge: {rubric: ok, modle: x}}}\n",
            'evals/s/suite.yaml: unknown key "scoring.reply.judge.modle" (keys: rubric, model)',
        ),
        (
            "scoring: {orders: {type: extraction}}\n",
            'evals/s/suite.yaml: field "scoring.orders": pipeline "happy" has no node "orders" '
            f"(nodes: {HAPPY_NODES})",
        ),
        (
            "scoring: {order: {type: classification}}\n",
            'evals/s/suite.yaml: field "scoring.order.type": node "order" is an Extract node; '
            "classification scores Classify nodes (give type: extraction)",
        ),
        (
            "scoring: {with_tax: {type: text}}\n",
            'evals/s/suite.yaml: field "scoring.with_tax.type": node "with_tax" is a Rule node; '
            "text scores Summarize or Draft nodes (score an LLM node, or remove it)",
        ),
        (
            "scoring: {category: {type: classification, labels: [refund, refnd]}}\n",
            'evals/s/suite.yaml: field "scoring.category.labels": "refnd" is not a label of node '
            '"category" (labels: refund, bug, question)',
        ),
        (
            "scoring: {order: {type: extraction, fields: [order_id, amout]}}\n",
            'evals/s/suite.yaml: field "scoring.order.fields": node "order" has no field "amout" '
            "(fields: order_id, amount)",
        ),
        (
            "tolerances: {categry.accuracy: 0.1}\n",
            'evals/s/suite.yaml: field "tolerances.categry.accuracy": give "default" or '
            '"<group>.<metric>" where the group is a scored node or one of routing, cost, tokens, '
            "latency (groups here: routing, cost, tokens, latency)",
        ),
    ],
)
def test_suite_yaml_problems(tmp_path: Path, extra: str, message: str) -> None:
    folder = tmp_path / "evals" / "s"
    folder = make_suite(tmp_path, [{"document": "x"}], yaml_text=suite_yaml(folder, extra))
    assert problems(folder) == [message]


def test_suite_yaml_problems_come_together(tmp_path: Path) -> None:
    folder = tmp_path / "evals" / "s"
    folder = make_suite(
        tmp_path,
        [{"document": "x"}],
        yaml_text=suite_yaml(folder, "concurrency: 0\nrecording: r\n"),
    )
    with pytest.raises(SuiteError) as raised:
        load_suite(folder)
    assert str(raised.value) == (
        f"suite `{folder.as_posix()}` has 2 problems:\n"
        f'  {folder.as_posix()}/suite.yaml: field "concurrency": Input should be greater than or '
        "equal to 1 (got 0)\n"
        f'  {folder.as_posix()}/suite.yaml: unknown key "recording" (keys: name, pipeline, model, '
        "recordings, cases, concurrency, target_accuracy, scoring, tolerances, alpha, "
        "min_sample)"
    )


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("name: x\n", 'evals/s/suite.yaml: key "pipeline" is missing; add it'),
        (
            "pipeline: [a\n",
            "evals/s/suite.yaml is not valid YAML (line 2, column 1: expected ',' or ']', but got "
            "'<stream end>'); fix its syntax",
        ),
        (
            "- pipeline: x\n",
            "evals/s/suite.yaml must be a mapping of keys (pipeline:, scoring:, ...); got a list",
        ),
        (
            "pipeline: missing.py:pipeline\n",
            'evals/s/suite.yaml: field "pipeline": target file `evals/s/missing.py` does not '
            "exist; check the path (TARGET is path/to/file.py:pipeline or "
            "package.module:pipeline)",
        ),
    ],
)
def test_suite_yaml_that_cannot_be_used(tmp_path: Path, yaml_text: str, message: str) -> None:
    folder = make_suite(tmp_path, [{"document": "x"}], yaml_text=yaml_text)
    assert problems(folder) == [message]


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(SuiteError) as raised:
        load_suite(tmp_path / "nowhere")
    assert str(raised.value) == (
        f"suite folder `{(tmp_path / 'nowhere').as_posix()}` does not exist; check the path"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(SuiteError) as raised:
        load_suite(tmp_path / "empty")
    shown = (tmp_path / "empty").as_posix()
    assert str(raised.value) == (
        f"`{shown}` has no suite.yaml; create `{shown}/suite.yaml` naming at least the pipeline "
        "(docs/evals.md, Suite files)"
    )
    folder = make_suite(
        tmp_path, [], yaml_text=suite_yaml(tmp_path / "evals" / "s", "cases: c.jsonl\n")
    )
    assert problems(folder) == [
        "`evals/s/c.jsonl` does not exist; create it (one case per line), or name the cases file "
        "with `cases:` in suite.yaml"
    ]


def test_an_empty_cases_file(tmp_path: Path) -> None:
    assert problems(make_suite(tmp_path, "\n\n")) == [
        "evals/s/cases.jsonl has no cases; add one JSON object per line"
    ]


# --- cases.jsonl -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            '{"document": "x" "route": "accept"}',
            "line 1 is not JSON (Expecting ',' delimiter: column 18); write one JSON object per "
            "line",
        ),
        (
            '["x"]',
            'line 1 is a list, not a JSON object; write one case object per line ({"path": ..., '
            '"expected": {...}})',
        ),
        (
            {"document": "x", "path": "documents/a.txt"},
            'line 1: give "document" or "path", not both',
        ),
        (
            {"expected": {}},
            'line 1: give "document" (the text) or "path" (a file beside suite.yaml)',
        ),
        (
            {"document": "x", "expectd": {}},
            'line 1: unknown key "expectd" (keys: id, document, path, expected, route, tags, '
            "metadata)",
        ),
        (
            {"document": "x", "route": "accepted"},
            "line 1: field \"route\": Input should be 'accept', 'review', 'reject' or 'fail' (got "
            '"accepted")',
        ),
        (
            {"document": "x", "tags": "a"},
            'line 1: field "tags": Input should be a valid list (got "a")',
        ),
        (
            {"document": "x", "id": ""},
            'line 1: field "id": String should have at least 1 character (got "")',
        ),
        (
            {"document": 3},
            'line 1: field "document": give the document\'s text (a non-empty string) or a JSON '
            "object; got a number",
        ),
        (
            {"path": "documents/nope.txt"},
            'line 1: field "path": `evals/s/documents/nope.txt` does not exist; a path is relative '
            "to the suite folder `evals/s`",
        ),
        (
            {"document": "x", "expected": {"categry": "refund"}},
            'line 1: field "expected.categry": pipeline "happy" has no node "categry" (nodes: '
            f"{HAPPY_NODES})",
        ),
        (
            {"document": "x", "expected": {"category": "refnd"}},
            'line 1: field "expected.category": "refnd" is not a label of node "category" (labels: '
            "refund, bug, question)",
        ),
        (
            {"document": "x", "expected": {"order": {"order_id": "A-1", "amout": 12.5}}},
            'line 1: field "expected.order.amout": node "order" has no field "amout" (fields: '
            "order_id, amount)",
        ),
        (
            {"document": "x", "expected": {"order": {"amount": "twelve"}}},
            'line 1: field "expected.order.amount": Input should be a valid number, unable to '
            'parse string as a number (got "twelve"); fix the value',
        ),
        (
            {"document": "x", "expected": {"order": "A-1"}},
            'line 1: field "expected.order": give an object of fields, such as {"field": value}; '
            "got a string",
        ),
        (
            {"document": "x", "expected": {"reply": {"text": "hi"}}},
            'line 1: field "expected.reply": give the reference text as a string; got an object',
        ),
    ],
)
def test_case_problems(tmp_path: Path, line: Any, message: str) -> None:
    folder = make_suite(tmp_path, [line])
    assert problems(folder) == [f"evals/s/cases.jsonl {message}"]


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    folder = make_suite(
        tmp_path,
        [
            {"id": "refund-1", "document": "x"},
            {"path": "a/refund-1.txt"},
            {"path": "b/refund-1.txt"},
        ],
        files={"a/refund-1.txt": "one", "b/refund-1.txt": "two"},
    )
    assert problems(folder) == [
        'evals/s/cases.jsonl line 2: id "refund-1" is already used on line 1; give each case its '
        'own "id"',
        'evals/s/cases.jsonl line 3: id "refund-1" is already used on line 1; give each case its '
        'own "id"',
    ]


def test_every_case_problem_is_reported_together(tmp_path: Path) -> None:
    folder = make_suite(
        tmp_path,
        [
            {"document": "fine", "expected": {"category": "refund"}},
            '{"document": "x",}',
            {"document": "x", "path": "y.txt", "route": "maybe"},
            "",
            {"document": "x", "expected": {"order": {"amout": 1}}},
        ],
    )
    with pytest.raises(SuiteError) as raised:
        load_suite(folder, load=load_pipeline)
    cases = f"{folder.as_posix()}/cases.jsonl"
    assert str(raised.value) == (
        f"suite `{folder.as_posix()}` has 3 problems:\n"
        f"  {cases} line 2 is not JSON (Expecting property name enclosed in double quotes: column "
        "18); write one JSON object per line\n"
        f"  {cases} line 3: field \"route\": Input should be 'accept', 'review', 'reject' or "
        "'fail' (got \"maybe\")\n"
        f'  {cases} line 5: field "expected.order.amout": node "order" has no field "amout" '
        "(fields: order_id, amount)"
    )


def test_a_long_list_of_problems_is_capped(tmp_path: Path) -> None:
    folder = make_suite(tmp_path, ["not json"] * 25)
    with pytest.raises(SuiteError) as raised:
        load_suite(folder)
    lines = str(raised.value).splitlines()
    assert lines[0] == f"suite `{folder.as_posix()}` has 25 problems:"
    assert len(lines) == 1 + 20 + 1
    assert lines[20].startswith(f"  {folder.as_posix()}/cases.jsonl line 20 is not JSON")
    assert lines[-1] == "  ... and 5 more"
    assert len(raised.value.problems) == 25


# --- paths stay inside the suite folder (issue 12, D17) -------------------------------------------


def outside(folder: Path) -> str:
    return (
        f"is outside the suite folder `{folder.as_posix()}`; a suite's cases, documents and "
        "recordings stay inside its folder: give a path relative to it (no absolute path, no "
        "`..` or symlink out of it)"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cases", "../../../OUTSIDE_cases.jsonl"),
        ("cases", "/tmp/cases.jsonl"),
        ("recordings", "../recordings"),
        ("recordings", "sub/../../elsewhere"),
    ],
)
def test_suite_yaml_paths_stay_inside_the_folder(tmp_path: Path, key: str, value: str) -> None:
    folder = tmp_path / "evals" / "s"
    make_suite(tmp_path, [{"document": "x"}], yaml_text=suite_yaml(folder, f"{key}: {value}\n"))
    with pytest.raises(SuiteError) as raised:
        load_suite(folder)
    assert raised.value.problems == (
        f'{folder.as_posix()}/suite.yaml: field "{key}": {json.dumps(value)} {outside(folder)}',
    )


def test_a_case_path_stays_inside_the_folder(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("the key")
    (tmp_path / "evals" / "s").mkdir(parents=True)
    (tmp_path / "evals" / "s" / "link.txt").symlink_to(tmp_path / "secret.txt")
    folder = tmp_path / "evals" / "s"
    (folder / "suite.yaml").write_text(suite_yaml(folder))
    (folder / "cases.jsonl").write_text(
        json.dumps({"path": "../../secret.txt"}) + "\n" + json.dumps({"path": "link.txt"}) + "\n"
    )
    shown = outside(Path("evals/s"))  # `problems` shows paths relative to tmp_path
    assert problems(folder) == [
        f'evals/s/cases.jsonl line 1: field "path": "../../secret.txt" {shown}',
        f'evals/s/cases.jsonl line 2: field "path": "link.txt" {shown}',
    ]


def test_paths_inside_the_folder_still_load(tmp_path: Path) -> None:
    folder = make_suite(
        tmp_path,
        [{"path": "docs/../docs/a.txt"}],
        yaml_text=suite_yaml(tmp_path / "evals" / "s", "recordings: rec/./inner\n"),
        files={"docs/a.txt": "Refund please"},
    )
    suite = load_suite(folder)
    assert [c.id for c in suite.cases] == ["a"]
    assert suite.recordings == (folder / "rec" / "inner").resolve()
