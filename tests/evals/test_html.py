"""The HTML eval report: one self-contained page, its plots present and right, text escaped.

The page is parsed back (stdlib `html.parser` into a small tree; each SVG also with
`xml.etree`) and checked for what a reader sees, not for how the markup is spelled.
"""

from __future__ import annotations

import math
import random
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import pytest

from handrail.evals.html import MAX_CASE_ROWS, render_html

SVG = "{http://www.w3.org/2000/svg}"
VOID = {"meta", "link", "br", "hr", "img", "input", "col", "area", "base", "source", "wbr"}
SVG_EMPTY = {"rect", "line", "circle", "polyline", "path"}
XSS = "<script>alert(1)</script>"

# --- the report ---------------------------------------------------------------------------------


def _bins(filled: dict[int, tuple[int, float, float]]) -> list[dict[str, Any]]:
    bins = []
    for k in range(10):
        count, confidence, accuracy = filled.get(k, (0, None, None))
        bins.append(
            {
                "lo": k / 10,
                "hi": (k + 1) / 10,
                "count": count,
                "mean_confidence": confidence,
                "accuracy": accuracy,
            }
        )
    return bins


CURVE = [
    (0.0, 0.0, 12, 0.83),
    (0.3, 0.083, 11, 0.82),
    (0.5, 0.167, 10, 0.9),
    (0.7, 0.25, 9, 0.96),
    (0.9, 0.5, 6, 1.0),
    (1.01, 1.0, 0, None),
]


def _curve() -> list[dict[str, Any]]:
    return [
        {"threshold": t, "review_rate": r, "accepted": n, "accepted_accuracy": a}
        for t, r, n, a in CURVE
    ]


def _mode(p: float, r: float, f1: float) -> dict[str, float]:
    return {
        "tp": 5,
        "fp": 1,
        "fn": 1,
        "tn": 5,
        "precision": p,
        "recall": r,
        "f1": f1,
        "accuracy": 0.8,
    }


def _case(case_id: str, *, wrong: bool = False, route: str = "accept") -> dict[str, Any]:
    return {
        "id": case_id,
        "status": "completed",
        "route": route,
        "expected_route": "accept",
        "nodes": {
            "category": {
                "correct": not wrong,
                "expected": "refund",
                "got": "bug" if wrong else "refund",
                "confidence": 0.9,
            }
        },
    }


def make_report() -> dict[str, Any]:
    """A report as the report builder writes it, with untrusted text in the places it can be."""
    return {
        "suite": "support_triage",
        "pipeline": "support_triage",
        "model": "fake",
        "generated_at": "2026-11-24T09:30:00+00:00",
        "cases": 12,
        "runs": {"by_status": {"completed": 7, "needs_review": 3, "failed": 1, "rejected": 1}},
        "nodes": {
            "category": {
                "type": "classification",
                "scores": {
                    "accuracy": 0.83,
                    "n": 12,
                    "macro_f1": 0.8,
                    "labels": ["refund", "bug", "question", "(none)"],
                    "confusion": [[4, 1, 0, 0], [0, 3, 0, 0], [1, 0, 2, 1], [0, 0, 0, 0]],
                    "per_label": {
                        "refund": {"precision": 0.8, "recall": 0.8, "f1": 0.8, "support": 5},
                        "bug": {"precision": 0.75, "recall": 1.0, "f1": 0.857, "support": 3},
                        "question": {"precision": 1.0, "recall": 0.5, "f1": 0.667, "support": 4},
                    },
                },
                "calibration": {
                    "ece": 0.07,
                    "bins": _bins({5: (2, 0.55, 0.5), 7: (3, 0.74, 0.67), 9: (7, 0.95, 1.0)}),
                },
                "review_curve": _curve(),
                "threshold": {
                    "threshold": 0.7,
                    "review_rate": 0.25,
                    "accepted": 9,
                    "accepted_accuracy": 0.96,
                },
                "target_accuracy": 0.95,
            },
            "details": {
                "type": "extraction",
                "match": "normalised",
                "scores": {
                    "fields": {
                        "order_id": {
                            "exact": _mode(1.0, 0.9, 0.947),
                            "normalised": _mode(1.0, 1.0, 1.0),
                            "fuzzy": _mode(1.0, 1.0, 1.0),
                        },
                        "amount": {
                            "exact": _mode(0.5, 0.5, 0.5),
                            "normalised": _mode(0.8, 0.8, 0.8),
                            "fuzzy": _mode(0.9, 0.8, 0.847),
                        },
                    },
                    "micro": {
                        "exact": _mode(0.7, 0.7, 0.7),
                        "normalised": _mode(0.9, 0.9, 0.9),
                        "fuzzy": _mode(0.95, 0.9, 0.924),
                    },
                    "all_fields_right": {"exact": 0.5, "normalised": 0.66, "fuzzy": 0.75},
                },
                "calibration": {
                    "ece": 0.12,
                    "bins": _bins({6: (4, 0.65, 0.5), 9: (8, 0.97, 0.875)}),
                },
                "review_curve": _curve(),
                "threshold": None,
                "target_accuracy": 0.99,
            },
            "reply": {
                "type": "text",
                "checks": {
                    "contains": {"passed": 10, "failed": 2},
                    "max_length": {"passed": 12, "failed": 0},
                },
                "judge": None,
            },
        },
        "routing": {
            "labels": ["accept", "review", "reject", "fail"],
            "confusion": [[6, 0, 0, 0], [1, 3, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
            "accuracy": 0.9,
            "missed_reviews": 1,
            "unneeded_reviews": 0,
            "review_recall": 0.75,
            "review_precision": 1.0,
        },
        "usage": {
            "tokens": {
                "count": 12,
                "known": 12,
                "total": 8000,
                "mean": 666.7,
                "median": 650,
                "p90": 900,
                "min": 400,
                "max": 1000,
            },
            "cost": dict.fromkeys(("known", "total", "mean", "median", "p90", "min", "max"))
            | {"count": 12, "known": 0},
            "latency_s": {"count": 12, "known": 12, "median": 0.28, "p90": 0.51},
        },
        "cases_detail": [
            _case("ok-1"),
            {
                "id": XSS,
                "status": "needs_review",
                "route": "accept",
                "expected_route": "review",
                "nodes": {
                    "category": {
                        "correct": False,
                        "expected": "bug",
                        "got": "<b>refund</b>",
                        "confidence": 0.51,
                    }
                },
            },
            {
                "id": "refund-1",
                "status": "completed",
                "route": "accept",
                "expected_route": "accept",
                "nodes": {
                    "category": {"correct": True, "expected": "refund", "got": "refund"},
                    "details": {
                        "correct": False,
                        "expected": {"order_id": "A-1", "amount": 12.5},
                        "got": {"order_id": "A-1", "amount": 15},
                        "confidence": 0.6,
                    },
                },
            },
        ],
        "comparison": {
            "baseline": "evals/support_triage/baseline.json",
            "passed": False,
            "metrics": [
                {
                    "name": "category.accuracy",
                    "baseline": 0.9,
                    "current": 0.8,
                    "delta": -0.1,
                    "tolerance": 0.05,
                    "p_value": 0.03,
                    "test": "mcnemar",
                    "regressed": True,
                },
                {
                    "name": "details.micro_f1",
                    "baseline": 0.88,
                    "current": 0.9,
                    "delta": 0.02,
                    "tolerance": 0.05,
                    "p_value": None,
                    "test": None,
                    "regressed": False,
                },
            ],
            "changed_cases": [
                {"id": "refund-3", "node": "category", "before": "right", "after": "wrong"}
            ],
        },
    }


# --- reading the page back ----------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    def all_text(self) -> str:
        return "".join(self.text) + "".join(c.all_text() for c in self.children)

    def iter(self) -> list[Element]:
        return [self, *(e for c in self.children for e in c.iter())]

    def find_all(self, tag: str, cls: str | None = None, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.iter()
            if e.tag == tag
            and (cls is None or cls in e.attrs.get("class", "").split())
            and all(e.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    def one(self, tag: str, cls: str | None = None, **attrs: str) -> Element:
        found = self.find_all(tag, cls, **attrs)
        assert len(found) == 1, (tag, cls, attrs, len(found))
        return found[0]


class TreeBuilder(HTMLParser):
    """The page as a tree; an end tag that closes anything but the open element fails."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]
        self.doctypes: list[str] = []

    def handle_decl(self, decl: str) -> None:
        self.doctypes.append(decl)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(element)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].text.append(data)


def parse(page: str) -> Element:
    builder = TreeBuilder()
    builder.feed(page)
    builder.close()
    assert builder.stack == [builder.root], "unclosed elements"
    assert builder.doctypes == ["DOCTYPE html"]
    return builder.root


def svgs(page: str) -> dict[str, ET.Element]:
    """Every SVG of the page by its id, parsed as XML on its own."""
    found = {}
    for fragment in re.findall(r"<svg\b.*?</svg>", page, flags=re.S):
        svg = ET.fromstring(fragment)
        found[svg.get("id", "")] = svg
    return found


def row_texts(table: Element) -> list[list[str]]:
    return [[c.all_text() for c in tr.children] for tr in table.find_all("tr")]


def classes(element: ET.Element | Element) -> list[str]:
    attrs = element.attrs if isinstance(element, Element) else element.attrib
    return (attrs.get("class") or "").split()


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(make_report())


@pytest.fixture(scope="module")
def doc(page: str) -> Element:
    return parse(page)


# --- the page -----------------------------------------------------------------------------------


def test_one_self_contained_document(page: str, doc: Element) -> None:
    assert page.startswith("<!DOCTYPE html>")
    (html,) = doc.children
    assert [c.tag for c in html.children] == ["head", "body"]
    assert html.attrs["lang"] == "en"
    head = html.children[0]
    assert head.one("title").all_text() == "Eval report: support_triage"
    assert head.one("style").all_text().strip()
    tags = {e.tag for e in doc.iter()}
    assert not tags & {"script", "link", "img", "iframe", "object", "embed", "image", "use"}
    for element in doc.iter():
        for name in ("src", "href", "xlink:href", "srcset", "action"):
            assert name not in element.attrs, (element.tag, name)
    assert not re.search(r"url\(|@import", doc.one("style").all_text())
    # The only URI on the page is the SVG namespace, which names and fetches nothing.
    without_namespace = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "http://" not in without_namespace
    assert "https://" not in without_namespace
    assert "//" not in re.sub(r"<!DOCTYPE html>", "", without_namespace).replace("://", "")


def test_header_names_the_run(doc: Element) -> None:
    header = doc.one("header")
    assert header.one("h1").all_text() == "Eval report: support_triage"
    facts = dict(
        zip(
            [dt.all_text() for dt in header.find_all("dt")],
            [dd.all_text() for dd in header.find_all("dd")],
            strict=True,
        )
    )
    assert facts["model"] == "fake"
    assert facts["cases"] == "12"
    assert facts["generated"] == "2026-11-24T09:30:00+00:00"
    statuses = {s.attrs["data-status"]: s.all_text() for s in header.find_all("span", "status")}
    assert statuses == {
        "completed": "completed 7",
        "needs_review": "needs_review 3",
        "failed": "failed 1",
        "rejected": "rejected 1",
    }


def test_every_plot_is_accessible_svg(page: str) -> None:
    plots = svgs(page)
    assert set(plots) == {
        "confusion-category",
        "reliability-category",
        "review-curve-category",
        "reliability-details",
        "review-curve-details",
        "confusion-routing",
    }
    for svg in plots.values():
        assert svg.get("role") == "img"
        assert svg.get("aria-label")
        assert svg[0].tag == f"{SVG}title"
        assert svg[0].text == svg.get("aria-label")
        assert "plot" in classes(svg)


def test_confusion_matrix_has_a_cell_per_pair_with_its_count(page: str) -> None:
    svg = svgs(page)["confusion-category"]
    assert classes(svg) == ["plot", "confusion"]
    assert svg.get("data-node") == "category"
    cells = svg.findall(f".//{SVG}rect[@class='cell']")
    counts = [t.text for t in svg.findall(f".//{SVG}text[@class='count']")]
    assert len(cells) == 16
    assert counts == [
        "4",
        "1",
        "0",
        "0",
        "0",
        "3",
        "0",
        "0",
        "1",
        "0",
        "2",
        "1",
        "0",
        "0",
        "0",
        "0",
    ]
    assert [c.get("data-count") for c in cells] == counts
    assert cells[2].find(f"{SVG}title").text == "expected refund, predicted question: 0"
    labels = [t.text for t in svg.findall(f".//{SVG}text[@class='label']")]
    for label in ("refund", "bug", "question", "(none)"):
        assert labels.count(label) == 2  # once as a row, once as a column
    texts = {t.text for t in svg.iter(f"{SVG}text")}
    assert {"expected", "predicted"} <= texts
    # right answers and mistakes are told apart by hue; more cases, darker
    fills = [c.get("fill") for c in cells]
    assert fills[0] != fills[1]
    assert fills[2] == fills[3]  # zero counts: both white


def test_large_confusion_matrix_stays_light() -> None:
    n = 77
    matrix = [[10 if i == j else int(j == (i + 1) % n) for j in range(n)] for i in range(n)]
    report = {
        "nodes": {
            "intent": {
                "type": "classification",
                "scores": {"labels": [f"intent_{i}" for i in range(n)], "confusion": matrix},
            }
        }
    }
    svg = svgs(render_html(report))["confusion-intent"]
    cells = svg.findall(f".//{SVG}rect[@class='cell']")
    assert len(cells) == 2 * n  # the empty cells are left out, the filled ones all drawn
    assert sorted(c.get("data-count") for c in cells) == ["1"] * n + ["10"] * n
    assert svg.findall(f".//{SVG}text[@class='count']") == []  # too small for text


def test_reliability_diagram_has_a_bar_and_point_per_filled_bin(page: str) -> None:
    svg = svgs(page)["reliability-category"]
    assert svg.get("data-node") == "category"
    assert "ECE 0.070" in svg.get("aria-label", "")
    bars = svg.findall(f".//{SVG}rect[@class='bin']")
    points = svg.findall(f".//{SVG}circle[@class='point']")
    assert len(bars) == len(points) == 3
    assert svg.find(f".//{SVG}line[@class='diagonal']") is not None
    # the bin of accuracy 1.0 reaches the top of the frame; 0.5 reaches halfway
    heights = [float(b.get("height", "")) for b in bars]
    assert heights[2] == pytest.approx(2 * heights[0], abs=0.2)
    assert svg.findall(f".//{SVG}rect[@class='bin']/{SVG}title")[1].text == (
        "confidence 0.70–0.80: 3 cases, mean confidence 0.74, accuracy 0.67"
    )
    assert len(svgs(page)["reliability-details"].findall(f".//{SVG}rect[@class='bin']")) == 2


def test_review_curve_has_a_point_per_entry_the_threshold_and_the_target(page: str) -> None:
    svg = svgs(page)["review-curve-category"]
    assert svg.get("data-node") == "category"
    points = svg.findall(f".//{SVG}circle[@class='point']")
    plotted = [entry for entry in CURVE if entry[3] is not None]  # all-reviewed: no accuracy
    assert len(points) == len(plotted) == 5
    xs = [float(p.get("cx", "")) for p in points]
    ys = [float(p.get("cy", "")) for p in points]
    assert xs == sorted(xs)  # along the review rate
    # a higher accepted accuracy is drawn higher (a smaller y)
    by_accuracy = sorted(zip([e[3] for e in plotted], ys, strict=True))
    assert [y for _, y in by_accuracy] == sorted(ys, reverse=True)
    polyline = svg.find(f".//{SVG}polyline[@class='curve']")
    assert polyline is not None and len(polyline.get("points", "").split()) == 5

    marker = svg.find(f".//{SVG}g[@class='threshold']")
    assert marker is not None
    circle = marker.find(f"{SVG}circle")
    assert circle is not None
    assert (float(circle.get("cx", "")), float(circle.get("cy", ""))) == (xs[3], ys[3])
    label = marker.find(f"{SVG}text")
    assert label is not None and label.text == "threshold 0.7: review 25%, acc. 0.96"

    target = svg.find(f".//{SVG}line[@class='target']")
    assert target is not None and target.get("stroke-dasharray")
    assert target.get("y1") == target.get("y2")
    # 0.95 lies between the points of accuracy 0.9 and 0.96
    assert ys[3] < float(target.get("y1", "")) < ys[2]


def test_node_without_a_threshold_says_none_reaches_the_target(page: str, doc: Element) -> None:
    svg = svgs(page)["review-curve-details"]
    assert svg.find(f".//{SVG}g[@class='threshold']") is None
    assert svg.find(f".//{SVG}line[@class='target']") is not None
    summary = doc.one("section", data_node="details").one("table", "summary")
    assert ["threshold", "none reaches the target"] in row_texts(summary)


def test_classification_tables(doc: Element) -> None:
    section = doc.one("section", "node", data_node="category")
    assert section.attrs["id"] == "node-category"
    summary = dict(r for r in row_texts(section.one("table", "summary")) if len(r) == 2)
    assert summary["accuracy"] == "0.83"
    assert summary["macro_f1"] == "0.8"
    assert summary["ECE"] == "0.07"
    assert summary["chosen threshold"] == "0.7"
    assert summary["review rate at it"] == "0.25"
    assert summary["accuracy of those accepted"] == "0.96"
    per_label = row_texts(section.one("table", "per-label"))
    assert per_label[0] == ["label", "precision", "recall", "F1", "support"]
    assert ["bug", "0.75", "1", "0.857", "3"] in per_label


def test_extraction_per_field_table_shows_the_three_modes(doc: Element) -> None:
    section = doc.one("section", "node", data_node="details")
    table = section.one("table", "per-field")
    headers = table.find_all("th", colspan="3")
    assert [h.all_text() for h in headers] == ["exact", "normalised", "fuzzy"]
    assert [h.all_text() for h in table.find_all("th", "gate-mode")] == ["normalised"]
    rows = {r[0]: r[1:] for r in row_texts(table)[2:]}
    assert rows["order_id"] == ["1", "0.9", "0.947", "1", "1", "1", "1", "1", "1"]
    assert rows["amount"] == ["0.5", "0.5", "0.5", "0.8", "0.8", "0.8", "0.9", "0.8", "0.847"]
    assert rows["all fields (micro)"][2::3] == ["0.7", "0.9", "0.924"]
    assert rows["documents with all fields right"] == ["0.5", "0.66", "0.75"]
    summary = dict(r for r in row_texts(section.one("table", "summary")) if len(r) == 2)
    assert summary["micro F1"] == "0.9"  # the gating mode's
    assert summary["all fields right"] == "0.66"


def test_text_node_has_its_checks_and_no_plot(page: str, doc: Element) -> None:
    section = doc.one("section", "node", data_node="reply")
    assert row_texts(section.one("table", "checks"))[1:] == [
        ["contains", "10", "2", "83%"],
        ["max_length", "12", "0", "100%"],
    ]
    assert section.find_all("svg") == []


def test_untrusted_strings_are_escaped(page: str, doc: Element) -> None:
    assert XSS not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page
    assert doc.find_all("script") == [] and doc.find_all("b") == []
    cells = [td.all_text() for td in doc.one("table", "cases").find_all("td")]
    assert XSS in cells  # shown to the reader as the text it is
    assert any("<b>refund</b>" in c for c in cells)


def test_hostile_names_stay_text_in_tables_plots_and_attributes() -> None:
    node = 'cat"><img src=x onerror=alert(1)>'
    label = "</text><script>alert(2)</script>"
    report = {
        "suite": "<i>suite</i>",
        "nodes": {
            node: {
                "type": "classification",
                "scores": {"labels": [label, "b"], "confusion": [[1, 0], [0, 1]]},
                "review_curve": _curve(),
                "threshold": {"threshold": "<u>", "review_rate": 0.5, "accepted_accuracy": 1.0},
            }
        },
    }
    page = render_html(report)
    doc = parse(page)
    assert not {"img", "script", "i", "u"} & {e.tag for e in doc.iter()}
    assert doc.one("h1").all_text() == "Eval report: <i>suite</i>"
    section = doc.one("section", "node")
    assert section.attrs["data-node"] == node
    assert re.fullmatch(r"node-[A-Za-z0-9_-]+", section.attrs["id"])
    plots = svgs(page)  # each fragment still parses as XML on its own
    (confusion,) = (s for s in plots.values() if "confusion" in classes(s))
    assert confusion.get("data-node") == node
    labels = [t.text for t in confusion.findall(f".//{SVG}text[@class='label']")]
    assert labels.count(label[:17] + "…") == 2  # long labels are shortened in the plot
    cell_titles = [t.text for t in confusion.findall(f".//{SVG}rect/{SVG}title")]
    assert f"expected {label}, predicted b: 0" in cell_titles  # and whole in the tooltip


def test_failed_comparison_banner_and_regressions(doc: Element) -> None:
    section = doc.one("section", id="comparison")
    banner = section.one("div", id="comparison-banner")
    assert classes(banner) == ["banner", "failed"]
    assert banner.all_text() == (
        "Failed: 1 metric(s) regressed against the baseline evals/support_triage/baseline.json."
    )
    metrics = section.one("table", "comparison-metrics")
    regressed = metrics.find_all("tr", "regressed")
    assert [r.children[0].all_text() for r in regressed] == ["category.accuracy"]
    assert [c.all_text() for c in regressed[0].children] == [
        "category.accuracy",
        "0.9",
        "0.8",
        "-0.1",
        "0.05",
        "0.03",
        "mcnemar",
        "regressed",
    ]
    changed = section.one("table", "changed-cases")
    assert row_texts(changed)[1:] == [["refund-3", "category", "right", "wrong"]]
    assert changed.find_all("tr", "bad")


def test_passed_comparison_banner() -> None:
    report = make_report()
    report["comparison"] = {"baseline": "b.json", "passed": True, "metrics": []}
    banner = parse(render_html(report)).one("div", id="comparison-banner")
    assert classes(banner) == ["banner", "passed"]
    assert banner.all_text().startswith("Passed")


def test_a_pass_with_cases_gone_wrong_says_why_they_do_not_count() -> None:
    # issue 12, E20: never a bare "Passed" above cases that went right -> wrong
    report = make_report()
    report["comparison"] = {
        "baseline": "b.json",
        "passed": True,
        "metrics": [],
        "changed_cases": [
            {"id": "c1", "node": "category", "before": "right", "after": "wrong"},
            {"id": "c2", "node": "category", "before": "wrong", "after": "right"},
        ],
        "why_passed": "category.accuracy within noise (p = 0.172 ≥ 0.05)",
    }
    banner = parse(render_html(report)).one("div", id="comparison-banner")
    assert banner.all_text() == (
        "Passed against the baseline b.json, but 1 case went right → wrong: category.accuracy "
        "within noise (p = 0.172 ≥ 0.05)."
    )


def test_actions_not_called_and_unfinished_cases_are_shown() -> None:
    # issue 12, A4 and E18: the page says which actions the eval did not call, with what, and
    # which cases it could not finish
    report = make_report()
    report["cases_detail"][0]["actions_not_called"] = [
        {"node": "file", "idempotency_key": "eval-a:file", "inputs": {"category": "<b>refund"}}
    ]
    report["actions"] = {"called": False, "not_called": 1, "not_called_by_node": {"file": 1}}
    report["errors"] = [{"id": "stuck", "error": "InvalidDecision: no output to approve"}]
    page = render_html(report)
    doc = parse(page)
    actions = doc.one("section", id="actions")
    assert "Not called: an eval calls no action unless --run-actions is given" in (
        actions.all_text()
    )
    case = report["cases_detail"][0]["id"]
    assert row_texts(actions.one("table", "actions"))[1:] == [
        [case, "file", "eval-a:file", '{"category": "<b>refund"}']
    ]
    assert "<b>refund" not in page  # escaped
    errors = doc.one("section", id="errors")
    assert row_texts(errors.one("table", "errors"))[1:] == [
        ["stuck", "InvalidDecision: no output to approve"]
    ]
    report["actions"] = {"called": True, "not_called": 0, "not_called_by_node": {}}
    called = parse(render_html(report)).one("section", id="actions")
    assert called.all_text() == "ActionsCalled (--run-actions)."


def test_no_comparison_no_banner() -> None:
    report = make_report()
    report["comparison"] = None
    doc = parse(render_html(report))
    assert doc.find_all("div", "banner") == []
    assert doc.find_all("section", id="comparison") == []


def test_routing_highlights_missed_reviews(page: str, doc: Element) -> None:
    section = doc.one("section", id="routing")
    table = section.one("table", "routing")
    missed = table.one("tr", "missed")
    assert [c.all_text() for c in missed.children] == ["missed reviews", "1"]
    assert "bad" in classes(missed)
    assert ["unneeded reviews", "0"] in row_texts(table)
    svg = svgs(page)["confusion-routing"]
    assert classes(svg) == ["plot", "confusion", "routing"]
    assert len(svg.findall(f".//{SVG}rect[@class='cell']")) == 16
    # the case that should have gone to review and was accepted is marked in the cases table
    cell = doc.one("table", "cases").one("td", "missed-review")
    assert cell.all_text() == "accept (expected review)"


def test_usage_table(doc: Element) -> None:
    rows = row_texts(doc.one("table", "usage"))
    assert rows[0][:4] == ["per document", "known", "median", "p90"]
    by_name = {r[0]: r[1:] for r in rows[1:]}
    assert by_name["tokens"][:3] == ["12 of 12", "650", "900"]
    assert by_name["cost"][:3] == ["0 of 12", "–", "–"]  # unknown cost: dashes, not zeros
    assert by_name["latency (s)"][:3] == ["12 of 12", "0.28", "0.51"]


def test_cases_table_puts_wrong_cases_first_and_shows_what_differed(doc: Element) -> None:
    table = doc.one("table", "cases")
    rows = row_texts(table)
    assert rows[0] == ["case", "status", "route", "category", "details", "reply"]
    assert [r[0] for r in rows[1:]] == [XSS, "refund-1", "ok-1"]
    assert rows[1][3] == "✗ bug → <b>refund</b> (0.51)"
    assert rows[2][4] == "✗ amount: 12.5 → 15 (0.60)"
    assert rows[3][3] == "✓ (0.90)"
    assert len(table.find_all("tr", "wrong-case")) == 2


def test_cases_table_is_capped_and_says_how_many_were_left_out() -> None:
    report = make_report()
    cases = [_case(f"ok-{i}") for i in range(990)] + [
        _case(f"bad-{i}", wrong=True) for i in range(10)
    ]
    report["cases_detail"] = cases
    page = render_html(report)
    doc = parse(page)
    table = doc.one("table", "cases")
    body_rows = table.find_all("tr", "case")
    assert len(body_rows) == MAX_CASE_ROWS
    assert [r.children[0].all_text() for r in body_rows[:11]] == [
        *(f"bad-{i}" for i in range(10)),
        "ok-0",
    ]
    assert doc.one("p", "left-out").all_text() == "800 more cases left out (200 shown)."
    assert (
        "10 of 1,000 cases have a wrong node or route" in doc.one("section", id="cases").all_text()
    )
    assert len(page.encode()) < 300_000


MINIMAL_REPORTS = [
    pytest.param({}, id="empty"),
    pytest.param(
        dict.fromkeys(("suite", "nodes", "routing", "usage", "cases_detail", "comparison", "runs")),
        id="all-none",
    ),
    pytest.param({"suite": "s", "nodes": {"n": {}}, "cases_detail": [{}]}, id="bare-node"),
    pytest.param(
        {
            "nodes": {
                "a": {"type": "classification", "scores": None, "calibration": None},
                "b": {"type": "extraction", "scores": {"fields": {"f": None}}, "match": None},
                "c": {"type": "text", "checks": {"x": None}, "judge": {"score": 0.5}},
                "d": {
                    "type": "classification",
                    "scores": {"labels": ["x", "y"], "confusion": [[1], None]},
                    "calibration": {"ece": None, "bins": [None, {"count": 3, "accuracy": 0.5}]},
                    "review_curve": [None, {"review_rate": None}, {"review_rate": 0.1}],
                    "threshold": {"threshold": 0.5},
                },
                "e": None,
            },
            "runs": {"by_status": None},
            "routing": {"labels": None},
            "usage": {"tokens": None, "cost": {}},
            "cases_detail": [None, {"id": 1, "nodes": {"a": None}}],
            "comparison": {"metrics": [None], "changed_cases": [None]},
        },
        id="odd-values",
    ),
]


@pytest.mark.parametrize("report", MINIMAL_REPORTS)
def test_reports_with_missing_keys_render(report: dict[str, Any]) -> None:
    page = render_html(report)
    doc = parse(page)
    svgs(page)  # whatever SVG there is parses
    assert doc.one("h1").all_text().startswith("Eval report")


def test_missing_parts_are_skipped_not_drawn_empty() -> None:
    doc = parse(render_html({"suite": "s", "cases": 3}))
    assert doc.find_all("svg") == []
    assert doc.find_all("section") == []
    assert doc.find_all("div", "banner") == []
    assert [dt.all_text() for dt in doc.find_all("dt")] == ["suite", "cases"]


def test_odd_values_draw_only_what_they_can() -> None:
    (report,) = (p.values[0] for p in MINIMAL_REPORTS if p.id == "odd-values")
    page = render_html(report)
    plots = svgs(page)
    confusion = plots["confusion-d"]
    assert [c.get("data-count") for c in confusion.findall(f".//{SVG}rect[@class='cell']")] == ["1"]
    # a bin without its lo/hi is placed by its index; one without a mean confidence has no dot
    assert len(plots["reliability-d"].findall(f".//{SVG}rect[@class='bin']")) == 1
    assert plots["reliability-d"].findall(f".//{SVG}circle[@class='point']") == []
    assert plots["review-curve-d"].findall(f".//{SVG}circle[@class='point']") == []
    assert plots["review-curve-d"].find(f".//{SVG}g[@class='threshold']") is None
    doc = parse(page)
    assert row_texts(doc.one("table", "judge")) == [["metric", "value"], ["score", "0.5"]]


def test_curve_entries_with_equal_review_rates_all_get_a_point() -> None:
    curve = [
        {"threshold": None, "review_rate": 0.2, "accepted_accuracy": 0.9},
        {"threshold": 0.5, "review_rate": 0.2, "accepted_accuracy": 0.9},
    ]
    page = render_html({"nodes": {"n": {"review_curve": curve}}})
    assert len(svgs(page)["review-curve-n"].findall(f".//{SVG}circle[@class='point']")) == 2


ODD = [None, 0, -1, 1.5, math.nan, math.inf, True, "", "<x>", [], [None], {}, {"a": None}]


def _scramble(value: Any, rng: random.Random) -> Any:
    """The value with some of its parts, at any depth, swapped for a value of another type."""
    if rng.random() < 0.12:
        return rng.choice(ODD)
    if isinstance(value, dict):
        return {k: _scramble(v, rng) for k, v in value.items() if rng.random() > 0.05}
    if isinstance(value, list):
        return [_scramble(v, rng) for v in value]
    return value


@pytest.mark.parametrize("seed", range(150))
def test_scrambled_reports_render_without_error(seed: int) -> None:
    rng = random.Random(seed)
    page = render_html({key: _scramble(value, rng) for key, value in make_report().items()})
    parse(page)
    for svg in svgs(page).values():
        assert svg.get("role") == "img"
