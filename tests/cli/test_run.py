"""`handrail run`: JSON Lines, the summary table, inputs, the model option and exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from inline_snapshot import snapshot

from handrail.cli.main import main

from .conftest import BUG, HAPPY, PIPELINES, REFUND, Invoke


def test_json_lines_one_object_per_document_in_input_order(cli: Invoke, tickets: Path) -> None:
    result = cli("run", HAPPY, "tickets", "--json")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.json_lines() == snapshot(
        [
            {
                "run_id": "run-13740347675aade5",
                "document": "tickets/binary.txt",
                "status": "failed",
                "outputs": {},
                "review": None,
                "error": {
                    "type": "InputError",
                    "message": "`tickets/binary.txt` looks binary (it contains NUL bytes); "
                    "convert it to text (.txt, .md, .eml, .json) first",
                },
                "steps": [],
                "reused": False,
            },
            {
                "run_id": "run-a7a476078ed8a776",
                "document": "tickets/empty.txt",
                "status": "failed",
                "outputs": {},
                "review": None,
                "error": {
                    "type": "InputError",
                    "message": "`tickets/empty.txt` is empty; there is nothing to process "
                    "(check the file, or leave it out of the batch)",
                },
                "steps": [],
                "reused": False,
            },
            {
                "run_id": "run-a083918684de03c2",
                "document": "tickets/refund.txt",
                "status": "completed",
                "outputs": {
                    "category": "refund",
                    "order": {"order_id": "A-17", "amount": 100.0},
                    "with_tax": 120.0,
                    "reply": """\
Hello,

Thank you for your message. We have received it and a member of our team will follow up shortly.

Kind regards,
Support\
""",
                },
                "review": None,
                "error": None,
                "steps": [
                    {
                        "node": "category",
                        "status": "completed",
                        "route": "refund",
                        "confidence": 0.8181818181818182,
                    },
                    {"node": "order", "status": "completed", "route": None, "confidence": 0.95},
                    {"node": "with_tax", "status": "completed", "route": None, "confidence": 1.0},
                    {"node": "reply", "status": "completed", "route": None, "confidence": None},
                ],
                "reused": False,
            },
            {
                "run_id": "run-e5ad944967c0b4d2",
                "document": "tickets/sub/bug.md",
                "status": "needs_review",
                "outputs": {},
                "review": {
                    "review_id": "rv-f1e2b237a1e67e76",
                    "node": "category",
                    "reasons": [
                        {
                            "kind": "low_confidence",
                            "message": "confidence 0.71 < 0.8 (heuristic)",
                            "field": None,
                            "value": 0.7142857142857143,
                            "threshold": 0.8,
                            "check": None,
                        }
                    ],
                    "output": "bug",
                },
                "error": None,
                "steps": [
                    {
                        "node": "category",
                        "status": "needs_review",
                        "route": "bug",
                        "confidence": 0.7142857142857143,
                    }
                ],
                "reused": False,
            },
        ]
    )


def test_the_table_shows_each_document_and_the_totals(cli: Invoke, tickets: Path) -> None:
    result = cli("run", HAPPY, "tickets")
    assert result.exit_code == 0, "documents that fail or need review do not fail the batch"
    rows = {
        line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    }
    assert rows == snapshot(
        {
            "tickets/binary.txt": [
                "failed",
                "",
                "InputError: `tickets/binary.txt` looks binary (it contains NUL bytes); "
                "convert it to text (.txt, .md, .eml, .json) first",
            ],
            "tickets/empty.txt": [
                "failed",
                "",
                "InputError: `tickets/empty.txt` is empty; there is nothing to process "
                "(check the file, or leave it out of the batch)",
            ],
            "tickets/refund.txt": [
                "completed",
                "category=refund, reply: Hello, Thank you for your message. We h…",
                "",
            ],
            "tickets/sub/bug.md": [
                "needs_review",
                "",
                "category: confidence 0.71 < 0.8 (heuristic)",
            ],
        }
    )
    assert result.stdout.splitlines()[-1] == (
        "4 documents: 1 completed, 1 needs review, 2 failed, 0 rejected"
    )


def test_a_step_that_fails_fails_only_its_document(cli: Invoke, tickets: Path) -> None:
    (tickets / "no_order.txt").write_text("refund refund\nAmount: 5\n")
    lines = cli("run", HAPPY, "tickets/no_order.txt", "tickets/refund.txt", "--json").json_lines()
    assert [(line["document"], line["status"]) for line in lines] == [
        ("tickets/no_order.txt", "failed"),
        ("tickets/refund.txt", "completed"),
    ]
    assert lines[0]["outputs"] == {"category": "refund"}
    assert lines[0]["error"]["type"] == "OutputInvalid"
    assert lines[0]["error"]["message"].startswith("`order` returned output that does not fit")


def test_stdin_is_read_for_dash(cli: Invoke, tmp_path: Path) -> None:
    result = cli("run", HAPPY, "-", "--json", input=REFUND)
    [line] = result.json_lines()
    assert (line["document"], line["status"]) == ("-", "completed")
    assert line["outputs"]["order"] == {"order_id": "A-17", "amount": 100.0}


def test_stdin_and_files_mix(cli: Invoke, tickets: Path) -> None:
    result = cli("run", HAPPY, "tickets/sub", "-", "--json", input=REFUND)
    assert [(line["document"], line["status"]) for line in result.json_lines()] == [
        ("tickets/sub/bug.md", "needs_review"),
        ("-", "completed"),
    ]


def test_a_folder_is_run_recursively_in_sorted_order(cli: Invoke, tmp_path: Path) -> None:
    for name in ["b/2.txt", "b/1.md", "a.txt", "c/.hidden.txt", ".skip/x.txt", "c/d/e.txt"]:
        path = tmp_path / "in" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{BUG}{name}\n")
    (tmp_path / "in" / "ignored.heic").write_text("not read")  # no reader for it
    result = cli("run", HAPPY, str(tmp_path / "in"), "--json", "--concurrency", "3")
    ids = [
        (Path(line["document"]).relative_to(tmp_path / "in").as_posix(), line["status"])
        for line in result.json_lines()
    ]
    assert [name for name, status in ids if status != "skipped"] == [
        "a.txt",
        "b/1.md",
        "b/2.txt",
        "c/d/e.txt",
    ]
    assert [name for name, status in ids if status == "skipped"] == [
        ".skip",  # a hidden folder is one entry
        "c/.hidden.txt",
        "ignored.heic",
    ]


def test_results_keep_input_order_whatever_the_concurrency(cli: Invoke, tickets: Path) -> None:
    one = cli("run", HAPPY, "tickets", "--json", "-c", "1").json_lines()
    many = cli("run", HAPPY, "tickets", "--json", "-c", "16").json_lines()
    assert [line["document"] for line in one] == [line["document"] for line in many]
    assert [line["status"] for line in one] == [line["status"] for line in many]


def test_rule_only_pipelines_show_their_routes(cli: Invoke, tickets: Path) -> None:
    result = cli("run", f"{PIPELINES / 'branches.py'}:pipeline", "tickets/sub/bug.md")
    assert '│ tickets/sub/bug.md │ completed │ size=small, join: ["small"]' in result.stdout


def test_the_model_comes_from_the_environment_unless_given(cli: Invoke, tickets: Path) -> None:
    bad = cli("run", HAPPY, "tickets", env={"HANDRAIL_MODEL": "gpt-9"})
    assert bad.exit_code == 2
    assert bad.stderr == (
        "error: unknown model 'gpt-9': litellm cannot tell its provider; "
        "write it as provider/model, e.g. "
        "openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3.2, "
        "local/gemma3-270m, or openai/NAME with api_base= for an OpenAI-compatible server\n"
    )
    assert bad.stdout == ""
    ok = cli("run", HAPPY, "tickets", "--json", "--model", "fake", env={"HANDRAIL_MODEL": "gpt-9"})
    assert ok.exit_code == 0
    assert len(ok.json_lines()) == 4


def test_unknown_model_option_is_a_usage_error(cli: Invoke, tickets: Path) -> None:
    result = cli("run", HAPPY, "tickets", "-m", "nope")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: unknown model 'nope': litellm cannot tell its provider; "
        "write it as provider/model, e.g. "
        "openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3.2, "
        "local/gemma3-270m, or openai/NAME with api_base= for an OpenAI-compatible server\n",
    )


def test_a_missing_input_path_is_a_usage_error(cli: Invoke, tickets: Path) -> None:
    result = cli("run", HAPPY, "tickets/refund.txt", "nothere")
    assert (result.exit_code, result.stdout, result.stderr) == (
        2,
        "",
        "error: input `nothere` does not exist; check the path "
        "(inputs are files, folders, or `-` for stdin)\n",
    )


def test_a_folder_with_nothing_to_read_is_a_usage_error(cli: Invoke, tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    result = cli("run", HAPPY, str(tmp_path / "photos"))
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: no documents to run: nothing in `{tmp_path / 'photos'}` is a file handrail "
        "reads (hidden files are skipped); name files or folders that hold some (skipped "
        f"`{tmp_path / 'photos' / 'cat.heic'}`: unsupported file type `.heic` (handrail reads "
        ".txt, .md, .json, .csv, .eml, .html, .htm, .pdf, .png, .jpg, .jpeg, .tif, .tiff, "
        ".docx, .xlsx))\n"
    )


def test_no_inputs_is_a_usage_error(cli: Invoke) -> None:
    result = cli("run", HAPPY)
    assert result.exit_code == 2
    assert "Missing argument 'INPUT'." in result.stderr


def test_concurrency_must_be_positive(cli: Invoke, tickets: Path) -> None:
    result = cli("run", HAPPY, "tickets", "--concurrency", "0")
    assert result.exit_code == 2
    assert "--concurrency" in result.stderr


def test_max_bytes_turns_big_documents_into_failures(cli: Invoke, tickets: Path) -> None:
    lines = cli("run", HAPPY, "tickets/refund.txt", "--json", "--max-bytes", "10").json_lines()
    assert lines[0]["status"] == "failed"
    assert lines[0]["error"] == {
        "type": "InputError",
        "message": "`tickets/refund.txt` is 62 bytes, over the 10 bytes limit; trim or split it, "
        "or raise the limit (--max-bytes)",
    }


def test_main_returns_the_exit_code(tickets: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", HAPPY, "tickets/refund.txt", "--json"]) == 0
    out, err = capsys.readouterr()
    assert '"status": "completed"' in out
    assert err == ""
    assert main(["run", HAPPY, "nothere.txt"]) == 2
    assert capsys.readouterr().err.startswith("error: input `nothere.txt` does not exist;")
