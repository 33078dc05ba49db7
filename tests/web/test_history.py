"""The lead's pages: runs, a run, the report with its charts, the audit trail and its
exports (CSV safe for spreadsheets, JSON Lines with the hash chain)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re

from fastapi.testclient import TestClient

from .conftest import ORIGIN, Inbox, element_text, form_values, signed_in


def test_runs_and_a_run(inbox: Inbox) -> None:
    lena = signed_in(inbox, "lena")
    page = lena.get("/runs").text
    run_ids = re.findall(r'<tr data-run-id="([^"]+)"', page)
    assert len(run_ids) == len(inbox.pending())
    assert lena.get("/runs?status=completed").text.count("data-run-id") == 0
    run = lena.get(f"/runs/{run_ids[0]}")
    assert run.status_code == 200
    assert element_text(run.text, "run-status") == "needs_review"
    assert 'id="steps"' in run.text and "/reviews/rv-" in run.text
    assert lena.get("/runs/run-nope").status_code == 404
    assert lena.get("/runs?status=bogus").status_code == 400


def test_the_report_draws_its_charts_inline(inbox: Inbox) -> None:
    lena = signed_in(inbox, "lena")
    page = lena.get("/report").text
    assert 'id="charts"' in page
    charts = re.findall(r"<svg[^>]*role=\"img\" aria-label=\"([^\"]+)\"", page)
    assert "Runs by status" in charts
    assert "Time documents waited for a person, per queue" in charts
    assert re.search(r'<g class="bar status-needs_review">\s*<text[^>]*>needs_review</text>', page)
    assert "Bottleneck:" in element_text(page, "bottleneck")
    assert lena.get("/report?since=7d").status_code == 200
    assert lena.get("/report?since=yesterday-ish").status_code == 400


def test_the_audit_trail_filters_verifies_and_exports(inbox: Inbox, ana: TestClient) -> None:
    review_id = inbox.pending()[0]
    form = form_values(ana.get(f"/reviews/{review_id}").text)
    decided = ana.post(
        f"/reviews/{review_id}/decide",
        data=form | {"action": "approve"},
        headers={"Origin": ORIGIN},
    )
    assert decided.status_code == 303
    lena = signed_in(inbox, "lena")
    page = lena.get("/audit?action=decide&verify=1").text
    rows = re.findall(r'<tr data-seq="(\d+)" class="action-(\w+)">', page)
    assert [action for _, action in rows] == ["decide"]
    assert "The chain holds" in element_text(page, "audit-check")
    every = lena.get("/audit").text
    assert {"reviewer_added", "sign_in", "decide"} <= set(
        re.findall(r'class="action-(\w+)"', every)
    )
    exported = lena.get("/audit.csv?action=decide")
    assert exported.headers["content-type"].startswith("text/csv")
    assert "attachment" in exported.headers["content-disposition"]
    [row] = list(csv.DictReader(io.StringIO(exported.text)))
    assert (row["actor"], row["action"], row["review_id"]) == ("ana", "decide", review_id)
    assert json.loads(row["detail"])["action"] == "approve" and len(row["hash"]) == 64
    lines = [json.loads(line) for line in lena.get("/audit.jsonl").text.splitlines()]
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(lines))


def test_csv_cells_that_a_spreadsheet_would_run_are_defused(inbox: Inbox) -> None:
    inbox.service.remove_reviewer("bob", actor='=HYPERLINK("http://x")')
    lena = signed_in(inbox, "lena")
    rows = list(csv.DictReader(io.StringIO(lena.get("/audit.csv?action=reviewer_removed").text)))
    assert [row["actor"] for row in rows] == ['\'=HYPERLINK("http://x")']
