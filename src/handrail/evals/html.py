"""The eval report as one self-contained HTML page: tables and hand-written SVG plots.

`render_html(report)` turns the JSON-able report dict of an eval run into an HTML5 document that
needs nothing else to be viewed: inline CSS, inline SVG, no JavaScript, no fonts, images or
scripts fetched from anywhere. Every string taken from the report is escaped: case ids, labels,
expected and produced values come from documents and model outputs, which are untrusted text.

The report may lack any key (an older report, a suite without routing, a text-only pipeline):
what is there is rendered, what is not is skipped. What the page shows: docs/evals-html.md.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_CASE_ROWS = 200
"""Rows of the cases table (and of the changed cases): the page stays light on large suites."""

MODES = ("exact", "normalised", "fuzzy")
"""The field-match modes of an extraction node, in the order of the per-field table."""

USAGE = (("tokens", "tokens"), ("cost", "cost"), ("latency_s", "latency (s)"))

_CHOSEN = {
    "threshold": "chosen threshold",
    "review_rate": "review rate at it",
    "accepted": "cases accepted at it",
    "accepted_accuracy": "accuracy of those accepted",
}
"""Names of the chosen threshold's figures in a node's table."""

_BLUE = (43, 108, 176)
_RED = (197, 48, 48)
_WHITE = ' fill="#fff"'

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a202c;
 margin:0;background:#fff}
main{max-width:1100px;margin:0 auto;padding:16px 24px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #cbd5e0}
h3{font-size:15px;margin:16px 0 6px}
table{border-collapse:collapse;margin:6px 0 12px}
th,td{border:1px solid #e2e8f0;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f7fafc}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.regressed td,tr.bad td,td.wrong{background:#fde8e8}
td.missed-review{background:#fbd5d5;font-weight:600}
tr.good td{background:#e6f4ea}td.ok{color:#276749}
th.gate-mode{background:#ebf4ff}
.banner{padding:10px 14px;border-radius:6px;font-weight:600;font-size:16px;margin:12px 0}
.banner.passed{background:#e6f4ea;border:2px solid #276749;color:#22543d}
.banner.failed{background:#fde8e8;border:2px solid #c53030;color:#742a2a}
.banner.unknown{background:#f7fafc;border:2px solid #a0aec0}
.status{display:inline-block;padding:1px 8px;margin-right:6px;border-radius:10px;background:#edf2f7}
.plots{display:flex;flex-wrap:wrap;gap:16px}
figure{margin:0;display:table}
figcaption{display:table-caption;caption-side:bottom;font-size:12px;color:#4a5568}
svg text{font:11px system-ui,sans-serif;fill:#1a202c}svg .title{font-size:13px;font-weight:600}
.note{color:#4a5568;font-size:13px}dl{display:grid;grid-template-columns:max-content auto;
 gap:2px 12px;margin:0}dt{color:#4a5568}dd{margin:0}
@media print{main{max-width:none}.node,.plots figure,table{break-inside:avoid}}
"""


# --- reading an untrusted report ----------------------------------------------------------------


def _m(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: object) -> Sequence[Any]:
    return value if isinstance(value, list | tuple) else ()


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: object) -> str:
    """A value as table text (not yet escaped): numbers short, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    number = _num(value)
    if number is None:
        return str(value)
    if number.is_integer() and abs(number) < 1e15:
        return f"{int(number):,}"
    if abs(number) >= 100:
        return f"{number:,.1f}"
    return f"{number:.3g}" if abs(number) >= 0.001 else f"{number:.2e}"


def _pct(value: object) -> str:
    number = _num(value)
    return "–" if number is None else f"{number:.0%}"


def _short(value: object, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "node"


# --- HTML pieces --------------------------------------------------------------------------------


class _Raw(str):
    """HTML built here, put into a table cell as it is."""


def _td(value: object, cls: str = "") -> str:
    classes = " ".join(c for c in (cls, "num" if _num(value) is not None else "") if c)
    text = value if isinstance(value, _Raw) else _e(_fmt(value))
    return f'<td class="{classes}">{text}</td>' if classes else f"<td>{text}</td>"


def _tr(cells: Iterable[object], cls: str = "") -> str:
    row = "".join(_td(cell) for cell in cells)
    return f'<tr class="{cls}">{row}</tr>' if cls else f"<tr>{row}</tr>"


def _table(head: Sequence[str], rows: Iterable[str], cls: str = "") -> str:
    header = "".join(f"<th>{_e(name)}</th>" for name in head)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _kv_table(pairs: Iterable[tuple[str, object]], cls: str = "summary") -> str:
    """A two-column table of the pairs whose value is a scalar (None, lists and dicts skipped)."""
    rows = [
        _tr((name, value))
        for name, value in pairs
        if value is not None and not isinstance(value, Mapping | list | tuple)
    ]
    return _table(("metric", "value"), rows, cls) if rows else ""


def _svg(body: Iterable[str], *, width: float, height: float, label: str, attrs: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(label)}" '
        f'{attrs} width="{width:.0f}" height="{height:.0f}" font-size="11" '
        'font-family="system-ui, sans-serif" '
        f'viewBox="0 0 {width:.0f} {height:.0f}"><title>{_e(label)}</title>{"".join(body)}</svg>'
    )


def _plot_attrs(kind: str, node: str) -> str:
    """A node's plot: found by id `KIND-NODE` or by class `plot KIND` and `data-node`."""
    return f'id="{kind}-{_slug(node)}" class="plot {kind}" data-node="{_e(node)}"'


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def _mix(rgb: tuple[int, int, int], share: float) -> str:
    r, g, b = (round(255 + (c - 255) * share) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


# --- plots --------------------------------------------------------------------------------------


def _confusion_svg(
    labels: Sequence[object],
    matrix: Sequence[Any],
    *,
    attrs: str,
    title: str,
    axes: tuple[str, str],
) -> str:
    """A heatmap of counts: rows are the expected labels, columns the predicted ones.

    Right answers (the diagonal) shade blue, mistakes red, darker for more cases (by the square
    root of the count, so a single mistake still shows next to a full diagonal). On a small
    matrix every cell is drawn with its count; on a large one (banking77 has 77 labels) the
    cells are too small for text and the empty ones are left out to keep the page light.
    """
    n = len(labels)
    counts = [[_num(v) for v in _seq(row)] for row in matrix]
    top = max((v for row in counts for v in row if v is not None and v > 0), default=1.0)
    cell = max(8, min(40, 520 // max(n, 1)))
    show_text = cell >= 20
    names = [_short(label, 18) for label in labels]
    font = f' font-size="{cell - 1}"' if cell < 12 else ""
    margin = 26 + min(6.5, cell * 0.6) * max((len(name) for name in names), default=1)
    body = [
        f'<text x="{margin + n * cell / 2:.1f}" y="14" text-anchor="middle">{_e(axes[1])}</text>',
        f'<text x="12" y="{margin + n * cell / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {margin + n * cell / 2:.1f})">{_e(axes[0])}</text>',
        f'<rect x="{margin}" y="{margin}" width="{n * cell}" height="{n * cell}" fill="#fafafa" '
        'stroke="#cbd5e0"/>',
    ]
    for i, name in enumerate(names):
        middle = margin + i * cell + cell / 2
        body.append(
            f'<text class="label" x="{margin - 5:.1f}" y="{middle:.1f}" text-anchor="end" '
            f'dominant-baseline="middle"{font}>{_e(name)}</text>'
            f'<text class="label" x="{middle:.1f}" y="{margin - 5:.1f}"{font} '
            f'transform="rotate(-90 {middle:.1f} {margin - 5:.1f})">{_e(name)}</text>'
        )
    for i, row in enumerate(counts[:n]):
        for j, count in enumerate(row[:n]):
            if count is None or not (show_text or count):
                continue
            share = math.sqrt(max(count, 0.0) / top)
            x, y = margin + j * cell, margin + i * cell
            tip = f"expected {labels[i]}, predicted {labels[j]}: {_fmt(count)}"
            body.append(
                f'<rect class="cell" x="{x:.1f}" y="{y:.1f}" width="{cell}" height="{cell}" '
                f'fill="{_mix(_BLUE if i == j else _RED, share)}" stroke="#fff" '
                f'data-count="{_fmt(count)}"><title>{_e(tip)}</title></rect>'
            )
            if show_text:
                body.append(
                    f'<text class="count" x="{x + cell / 2:.1f}" y="{y + cell / 2:.1f}" '
                    'text-anchor="middle" dominant-baseline="middle"'
                    f"{_WHITE if share > 0.55 else ''}>{_fmt(count)}</text>"
                )
    side = margin + n * cell + 10
    return _svg(body, width=side, height=side, label=title, attrs=attrs)


@dataclass(frozen=True, kw_only=True)
class _Frame:
    """A plot area: x from 0 to 1 and y from y_lo to y_hi, mapped onto pixels (y grows down)."""

    y_lo: float = 0.0
    y_hi: float = 1.0
    left: float = 52
    top: float = 30
    width: float = 300
    height: float = 210

    def x(self, value: float) -> float:
        return self.left + value * self.width

    def y(self, value: float) -> float:
        return self.top + (self.y_hi - value) / (self.y_hi - self.y_lo) * self.height

    def size(self) -> tuple[float, float]:
        return self.left + self.width + 16, self.top + self.height + 42


def _axes(frame: _Frame, title: str, xlabel: str, ylabel: str) -> list[str]:
    """The frame, grid lines with their tick values, the axis names and the visible title."""
    span = frame.y_hi - frame.y_lo
    step = 0.05 if span <= 0.3 else 0.1 if span <= 0.6 else 0.2
    y_ticks = [frame.y_lo + k * step for k in range(int(span / step + 1e-9) + 1)]
    bottom, right = frame.y(frame.y_lo), frame.x(1)
    parts = [f'<text class="title" x="8" y="18">{_e(_short(title, 50))}</text>']
    for k in range(6):
        x = frame.x(k / 5)
        parts.append(
            f'<line x1="{x:.1f}" y1="{frame.top}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#edf2f7"/>'
            f'<text x="{x:.1f}" y="{bottom + 14:.1f}" text-anchor="middle">{k / 5:.1f}</text>'
        )
    for tick in y_ticks:
        y = frame.y(tick)
        parts.append(
            f'<line x1="{frame.left}" y1="{y:.1f}" x2="{right:.1f}" y2="{y:.1f}" stroke="#edf2f7"/>'
            f'<text x="{frame.left - 5}" y="{y:.1f}" text-anchor="end" '
            f'dominant-baseline="middle">{tick:.2f}</text>'
        )
    middle = frame.top + frame.height / 2
    parts.append(
        f'<rect x="{frame.left}" y="{frame.top}" width="{frame.width}" height="{frame.height}" '
        'fill="none" stroke="#a0aec0"/>'
        f'<text x="{frame.x(0.5):.1f}" y="{bottom + 32:.1f}" '
        f'text-anchor="middle">{_e(xlabel)}</text>'
        f'<text x="12" y="{middle:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {middle:.1f})">{_e(ylabel)}</text>'
    )
    return parts


def _reliability_svg(node: str, calibration: Mapping[str, Any]) -> str:
    """Accuracy per confidence bin (bars, a point at the bin's mean confidence) and the diagonal."""
    frame = _Frame()
    ece = _num(calibration.get("ece"))
    title = f"Reliability: {node}" + (f" (ECE {ece:.3f})" if ece is not None else "")
    body = _axes(frame, title, "confidence", "accuracy")
    body.append(
        f'<line class="diagonal" x1="{frame.x(0):.1f}" y1="{frame.y(0):.1f}" '
        f'x2="{frame.x(1):.1f}" y2="{frame.y(1):.1f}" stroke="#718096" stroke-dasharray="4 3"/>'
    )
    bins = _seq(calibration.get("bins"))
    for k, item in enumerate(bins):
        b = _m(item)
        lo, hi = _num(b.get("lo")), _num(b.get("hi"))
        lo = k / len(bins) if lo is None else lo
        hi = (k + 1) / len(bins) if hi is None else hi
        accuracy, confidence = _num(b.get("accuracy")), _num(b.get("mean_confidence"))
        if accuracy is None or not _num(b.get("count")):
            continue
        tip = (
            f"confidence {lo:.2f}–{hi:.2f}: {_fmt(b.get('count'))} cases, "
            f"mean confidence {_fmt(confidence)}, accuracy {_fmt(accuracy)}"
        )
        x0, x1 = frame.x(max(0.0, min(1.0, lo))), frame.x(max(0.0, min(1.0, hi)))
        y = frame.y(max(0.0, min(1.0, accuracy)))
        body.append(
            f'<rect class="bin" x="{x0 + 1:.1f}" y="{y:.1f}" width="{max(x1 - x0 - 2, 1):.1f}" '
            f'height="{frame.y(0) - y:.1f}" fill="#90cdf4"><title>{_e(tip)}</title></rect>'
        )
        if confidence is not None:
            body.append(
                f'<circle class="point" cx="{frame.x(max(0.0, min(1.0, confidence))):.1f}" '
                f'cy="{y:.1f}" r="3.5" fill="#2b6cb0"><title>{_e(tip)}</title></circle>'
            )
    width, height = frame.size()
    return _svg(
        body, width=width, height=height, label=title, attrs=_plot_attrs("reliability", node)
    )


def _review_curve_svg(
    node: str, curve: Sequence[Any], chosen: Mapping[str, Any], target: float | None
) -> str:
    """Accuracy of what is accepted against the share sent to review, one point per threshold.

    Entries without an accepted accuracy (every case sent to review) have no point. The y axis
    starts at the lowest accuracy or target, rounded down to a tenth, so the curve is not squashed
    against the top of a 0..1 axis.
    """
    entries = [_m(e) for e in curve]
    points = sorted(
        (
            (rate, acc, _num(e.get("threshold")))
            for e in entries
            if (rate := _num(e.get("review_rate"))) is not None
            and (acc := _num(e.get("accepted_accuracy"))) is not None
        ),
        key=lambda point: point[0],
    )
    extra = (target, _num(chosen.get("accepted_accuracy")))
    lows = [acc for _, acc, _ in points] + [v for v in extra if v is not None]
    y_lo = max(0.0, math.floor(min(lows, default=0.0) * 10) / 10)
    frame = _Frame(y_lo=min(y_lo, 0.9), y_hi=max(1.0, *lows) if lows else 1.0)
    title = f"Review rate vs accuracy: {node}"
    body = _axes(frame, title, "review rate", "accuracy of accepted")
    if target is not None:
        y = frame.y(target)
        body.append(
            f'<line class="target" x1="{frame.x(0):.1f}" y1="{y:.1f}" x2="{frame.x(1):.1f}" '
            f'y2="{y:.1f}" stroke="#c53030" stroke-dasharray="6 4"/>'
            f'<text x="{frame.x(1) - 4:.1f}" y="{y - 4:.1f}" text-anchor="end" fill="#c53030">'
            f"target {_fmt(target)}</text>"
        )
    xy = [(frame.x(rate), frame.y(acc)) for rate, acc, _ in points]
    if xy:
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
        body.append(f'<polyline class="curve" points="{line}" fill="none" stroke="#2b6cb0"/>')
    for (rate, acc, threshold), (x, y) in zip(points, xy, strict=True):
        tip = f"threshold {_fmt(threshold)}: review {_pct(rate)}, accepted accuracy {_fmt(acc)}"
        body.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#2b6cb0">'
            f"<title>{_e(tip)}</title></circle>"
        )
    rate, acc = _num(chosen.get("review_rate")), _num(chosen.get("accepted_accuracy"))
    if rate is not None and acc is not None:
        # The label sits at the foot of a dotted drop line: the curve rarely passes there
        # (a low review rate has the lowest accuracy, at the left).
        x, y, bottom = frame.x(rate), frame.y(acc), frame.y(frame.y_lo)
        text = f"threshold {_fmt(chosen.get('threshold'))}: review {_pct(rate)}, acc. {_fmt(acc)}"
        anchor, dx = ("end", -5) if rate > 0.5 else ("start", 5)
        body.append(
            f'<g class="threshold"><line x1="{x:.1f}" y1="{y:.1f}" x2="{x:.1f}" y2="{bottom:.1f}" '
            'stroke="#dd6b20" stroke-dasharray="2 2"/>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#dd6b20" stroke="#fff"/>'
            f'<text x="{x + dx:.1f}" y="{bottom - 8:.1f}" text-anchor="{anchor}" '
            f'fill="#9c4221">{_e(text)}</text></g>'
        )
    width, height = frame.size()
    return _svg(
        body, width=width, height=height, label=title, attrs=_plot_attrs("review-curve", node)
    )


# --- sections -----------------------------------------------------------------------------------


def _title(report: Mapping[str, Any]) -> str:
    suite = report.get("suite")
    return f"Eval report: {suite}" if suite is not None else "Eval report"


def _header(report: Mapping[str, Any]) -> str:
    facts = [
        (name, report.get(key))
        for name, key in (
            ("suite", "suite"),
            ("pipeline", "pipeline"),
            ("model", "model"),
            ("generated", "generated_at"),
            ("cases", "cases"),
        )
        if report.get(key) is not None
    ]
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(_fmt(value))}</dd>" for name, value in facts)
    statuses = _m(_m(report.get("runs")).get("by_status"))
    if statuses:
        badges = "".join(
            f'<span class="status" data-status="{_e(s)}">{_e(s)} {_e(_fmt(n))}</span>'
            for s, n in statuses.items()
        )
        items += f"<dt>runs</dt><dd>{badges}</dd>"
    return f"<header><h1>{_e(_title(report))}</h1><dl>{items}</dl></header>"


def _comparison(comparison: Mapping[str, Any]) -> str:
    passed = comparison.get("passed")
    metrics = [_m(m) for m in _seq(comparison.get("metrics"))]
    regressed = sum(1 for m in metrics if m.get("regressed") is True)
    against = (
        f" against the baseline {comparison['baseline']}" if comparison.get("baseline") else ""
    )
    worse = sum(1 for c in _seq(comparison.get("changed_cases")) if _m(c).get("after") == "wrong")
    if passed is True and worse:
        # never "Passed" above cases that got worse without saying why they do not count
        why = comparison.get("why_passed") or "within noise or the tolerance"
        cases = f"{worse} case{'s' if worse != 1 else ''}"
        state, text = "passed", f"Passed{against}, but {cases} went right → wrong: {why}."
    elif passed is True:
        state, text = "passed", f"Passed: no metric regressed{against}."
    elif passed is False:
        state, text = "failed", f"Failed: {regressed} metric(s) regressed{against}."
    else:
        state, text = "unknown", f"Compared{against}."
    parts = [
        f'<h2>Baseline comparison</h2><div id="comparison-banner" class="banner {state}">'
        f"{_e(text)}</div>"
    ]
    rows = [
        _tr(
            (
                m.get("name"),
                m.get("baseline"),
                m.get("current"),
                _Raw(_e(f"{d:+.3g}")) if (d := _num(m.get("delta"))) is not None else None,
                m.get("tolerance"),
                m.get("p_value"),
                m.get("test"),
                "regressed" if m.get("regressed") else "within noise" if m.get("noise") else "ok",
            ),
            "regressed" if m.get("regressed") else "",
        )
        for m in metrics
    ]
    if rows:
        head = ("metric", "baseline", "current", "delta", "tolerance", "p-value", "test", "")
        parts.append(_table(head, rows, "comparison-metrics"))
    changed = [_m(c) for c in _seq(comparison.get("changed_cases"))]
    if changed:
        rows = [
            _tr(
                (c.get("id"), c.get("node"), c.get("before"), c.get("after")),
                "bad" if c.get("after") == "wrong" else "good" if c.get("after") == "right" else "",
            )
            for c in changed[:MAX_CASE_ROWS]
        ]
        parts.append(f"<h3>Changed cases ({len(changed)})</h3>")
        parts.append(_table(("case", "node", "before", "after"), rows, "changed-cases"))
        parts.append(_left_out(len(changed), MAX_CASE_ROWS, "changed cases"))
    return f'<section id="comparison">{"".join(parts)}</section>'


def _left_out(total: int, shown: int, what: str) -> str:
    if total <= shown:
        return ""
    return f'<p class="note left-out">{total - shown:,} more {what} left out ({shown} shown).</p>'


def _classification(scores: Mapping[str, Any], node: str) -> tuple[str, str]:
    """The per-label table and the confusion matrix figure (each empty without its data)."""
    table = figure = ""
    per_label = _m(scores.get("per_label"))
    if per_label:
        keys = ("precision", "recall", "f1", "support")
        rows = [_tr((label, *(_m(s).get(k) for k in keys))) for label, s in per_label.items()]
        head = ("label", "precision", "recall", "F1", "support")
        table = "<h3>Per label</h3>" + _table(head, rows, "per-label")
    labels, matrix = _seq(scores.get("labels")), _seq(scores.get("confusion"))
    if labels and matrix:
        title = f"Confusion matrix: {node}"
        svg = _confusion_svg(
            labels,
            matrix,
            attrs=_plot_attrs("confusion", node),
            title=title,
            axes=("expected", "predicted"),
        )
        figure = _figure(svg, "Rows: expected label; columns: predicted label.")
    return table, figure


def _extraction(scores: Mapping[str, Any], match: object) -> str:
    fields = _m(scores.get("per_field") or scores.get("fields"))
    micro = _m(scores.get("micro"))
    if not fields and not micro:
        return ""
    head = "".join(
        f'<th colspan="3" class="{"gate-mode" if mode == match else ""}">{mode}</th>'
        for mode in MODES
    )
    sub = "<th>P</th><th>R</th><th>F1</th>" * len(MODES)

    def row(name: object, stats: Mapping[str, Any], cls: str = "") -> str:
        cells = [name] + [
            _m(stats.get(mode)).get(key) for mode in MODES for key in ("precision", "recall", "f1")
        ]
        return _tr(cells, cls)

    rows = [row(name, _m(stats)) for name, stats in fields.items()]
    if micro:
        rows.append(row("all fields (micro)", micro, "micro"))
    right = _m(scores.get("all_fields_right"))
    if right:
        cells = "".join(f'<td colspan="3" class="num">{_e(_fmt(right.get(m)))}</td>' for m in MODES)
        rows.append(f'<tr class="all-right"><td>documents with all fields right</td>{cells}</tr>')
    return (
        '<h3>Per field</h3><table class="per-field"><thead>'
        f'<tr><th rowspan="2">field</th>{head}</tr><tr>{sub}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _text(node: Mapping[str, Any]) -> str:
    checks = _m(node.get("checks"))
    rows = []
    for name, value in checks.items():
        passed, failed = _num(_m(value).get("passed")), _num(_m(value).get("failed"))
        total = (passed or 0.0) + (failed or 0.0)
        rows.append(
            _tr((name, passed, failed, _Raw(_pct((passed or 0.0) / total if total else None))))
        )
    parts = [_table(("check", "passed", "failed", "pass rate"), rows, "checks")] if rows else []
    judge = node.get("judge")
    if isinstance(judge, Mapping):
        parts.append("<h3>Judge</h3>" + _kv_table(judge.items(), "judge"))
    return "".join(parts)


def _node(name: str, node: Mapping[str, Any]) -> str:
    kind, scores = node.get("type"), _m(node.get("scores"))
    calibration, curve = _m(node.get("calibration")), _seq(node.get("review_curve"))
    chosen, target = _m(node.get("threshold")), _num(node.get("target_accuracy"))
    summary: list[tuple[str, object]] = [("type", kind)]
    if kind == "extraction":
        match = node.get("match")
        micro = _m(_m(scores.get("micro")).get(match)) if isinstance(match, str) else {}
        right = _m(scores.get("all_fields_right"))
        summary += [
            ("match", match),
            ("micro F1", micro.get("f1")),
            ("all fields right", right.get(match) if isinstance(match, str) else None),
        ]
    else:
        summary += list(scores.items())
    summary.append(("ECE", calibration.get("ece")))
    if target is not None:
        summary.append(("target accuracy", target))
        if node.get("threshold") is None and curve:
            summary.append(("threshold", "none reaches the target"))
    summary += [(_CHOSEN.get(k, f"threshold: {k}"), v) for k, v in chosen.items()]
    parts = [f"<h2>Node <code>{_e(name)}</code></h2>", _kv_table(summary)]
    plots: list[str] = []
    if kind == "classification":
        tables, figure = _classification(scores, name)
        parts.append(tables)
        plots.append(figure)
    if calibration.get("bins"):
        plots.append(
            _figure(
                _reliability_svg(name, calibration),
                "Bars: accuracy per confidence bin; dots at the bin's mean "
                "confidence; dashed: perfect calibration.",
            )
        )
    if curve:
        plots.append(
            _figure(
                _review_curve_svg(name, curve, chosen, target),
                "Each point a confidence threshold: below it a case goes to review. "
                "Dashed: the target accuracy; orange: the chosen threshold.",
            )
        )
    if plots:
        parts.append(f'<div class="plots">{"".join(plots)}</div>')
    if kind == "extraction":
        parts.append(_extraction(scores, node.get("match")))
    elif kind == "text":
        parts.append(_text(node))
    attrs = f'class="node" id="node-{_e(_slug(name))}" data-node="{_e(name)}"'
    return f"<section {attrs}>{''.join(parts)}</section>"


def _routing(routing: Mapping[str, Any]) -> str:
    names = (
        ("accuracy", "accuracy"),
        ("review_recall", "review recall"),
        ("review_precision", "review precision"),
        ("missed_reviews", "missed reviews"),
        ("unneeded_reviews", "unneeded reviews"),
    )
    rows = [
        _tr((name, routing[key]), "bad missed" if key == "missed_reviews" and routing[key] else "")
        for key, name in names
        if _num(routing.get(key)) is not None
    ]
    parts = ["<h2>Routing</h2>", _table(("metric", "value"), rows, "routing") if rows else ""]
    labels, matrix = _seq(routing.get("labels")), _seq(routing.get("confusion"))
    if labels and matrix:
        svg = _confusion_svg(
            labels,
            matrix,
            attrs='id="confusion-routing" class="plot confusion routing"',
            title="Routes: expected vs taken",
            axes=("expected route", "route taken"),
        )
        parts.append(_figure(svg, "Rows: expected route; columns: the route the run took."))
    return f'<section id="routing">{"".join(parts)}</section>'


def _usage(usage: Mapping[str, Any]) -> str:
    rows = []
    for key, name in USAGE:
        stats = _m(usage.get(key))
        if stats:
            known = f"{_fmt(stats.get('known'))} of {_fmt(stats.get('count'))}"
            cells = [stats.get(k) for k in ("median", "p90", "mean", "min", "max", "total")]
            rows.append(_tr([name, known, *cells]))
    if not rows:
        return ""
    head = ("per document", "known", "median", "p90", "mean", "min", "max", "total")
    return f'<section id="usage"><h2>Usage</h2>{_table(head, rows, "usage")}</section>'


def _actions(actions: Mapping[str, Any], cases: Sequence[Any]) -> str:
    """Whether the eval called the pipeline's actions; the calls it did not make, per case."""
    if actions.get("called") is True:
        return '<section id="actions"><h2>Actions</h2><p>Called (--run-actions).</p></section>'
    calls = [
        (case.get("id"), _m(call))
        for case in (_m(c) for c in cases)
        for call in _seq(case.get("actions_not_called"))
    ]
    intro = (
        f'<p class="note">Not called: an eval calls no action unless --run-actions is given. '
        f"{len(calls):,} call(s) not made; what each would have been called with:</p>"
    )
    rows = [
        _tr((case, call.get("node"), call.get("idempotency_key"), _short(call.get("inputs"), 120)))
        for case, call in calls[:MAX_CASE_ROWS]
    ]
    table = _table(("case", "action", "idempotency key", "inputs"), rows, "actions") if rows else ""
    return (
        f'<section id="actions"><h2>Actions</h2>{intro}{table}'
        f"{_left_out(len(calls), MAX_CASE_ROWS, 'calls')}</section>"
    )


def _errors(errors: Sequence[Any]) -> str:
    """The cases the eval could not finish, with their errors."""
    rows = [_tr((_m(e).get("id"), _m(e).get("error")), "bad") for e in errors[:MAX_CASE_ROWS]]
    return (
        '<section id="errors"><h2>Cases the eval could not finish</h2><p class="note">Scored as '
        f"far as they ran.</p>{_table(('case', 'error'), rows, 'errors')}"
        f"{_left_out(len(errors), MAX_CASE_ROWS, 'cases')}</section>"
    )


def _is_wrong(case: Mapping[str, Any]) -> bool:
    route, expected = case.get("route"), case.get("expected_route")
    if route is not None and expected is not None and route != expected:
        return True
    return any(_m(n).get("correct") is False for n in _m(case.get("nodes")).values())


def _outcome(result: Mapping[str, Any]) -> str:
    """One node of one case: a tick, or a cross with what differed, and the confidence."""
    confidence = _num(result.get("confidence"))
    suffix = f" ({confidence:.2f})" if confidence is not None else ""
    correct = result.get("correct")
    if correct is True:
        return f'<td class="ok">✓{suffix}</td>'
    if correct is not False:
        return f"<td>–{suffix}</td>"
    expected, got = result.get("expected"), result.get("got")
    if isinstance(expected, Mapping) and isinstance(got, Mapping):
        diffs = [
            f"{key}: {_short(expected.get(key), 30)} → {_short(got.get(key), 30)}"
            for key in dict.fromkeys([*expected, *got])
            if expected.get(key) != got.get(key)
        ]
        more = f"; +{len(diffs) - 3} more" if len(diffs) > 3 else ""
        text = "; ".join(diffs[:3]) + more
    elif expected is None:  # free text: no expected value, a check failed on what came out
        text = f"got {_short(got)}"
    else:
        text = f"{_short(expected)} → {_short(got)}"
    return f'<td class="wrong">✗ {_e(text)}{suffix}</td>'


def _cases(cases: Sequence[Any], node_names: Sequence[str]) -> str:
    rows_in = sorted((_m(c) for c in cases), key=lambda c: not _is_wrong(c))
    wrong = sum(1 for c in rows_in if _is_wrong(c))
    names = list(dict.fromkeys([*node_names, *(k for c in rows_in for k in _m(c.get("nodes")))]))
    rows = []
    for case in rows_in[:MAX_CASE_ROWS]:
        route, expected = case.get("route"), case.get("expected_route")
        route_text = _fmt(route) if expected in (None, route) else f"{route} (expected {expected})"
        cls = "wrong" if expected not in (None, route) else ""
        if expected == "review" and route not in (None, "review"):
            cls = "missed-review"
        nodes = "".join(_outcome(_m(_m(case.get("nodes")).get(name))) for name in names)
        rows.append(
            f'<tr class="case{" wrong-case" if _is_wrong(case) else ""}">{_td(case.get("id"))}'
            f"{_td(case.get('status'))}{_td(route_text, cls)}{nodes}</tr>"
        )
    head = ("case", "status", "route", *names)
    intro = (
        f'<p class="note">{wrong:,} of {len(rows_in):,} cases have a wrong node or route; '
        "they come first.</p>"
    )
    return (
        f'<section id="cases"><h2>Cases</h2>{intro}{_table(head, rows, "cases")}'
        f"{_left_out(len(rows_in), MAX_CASE_ROWS, 'cases')}</section>"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML5 page (inline CSS and SVG, no script, no network).

    Keys missing or None in `report` are skipped; strings from it are escaped.
    """
    nodes = {str(name): _m(node) for name, node in _m(report.get("nodes")).items()}
    body = [_header(report)]
    comparison = report.get("comparison")
    if isinstance(comparison, Mapping):
        body.append(_comparison(comparison))
    body += [_node(name, node) for name, node in nodes.items()]
    routing = report.get("routing")
    if isinstance(routing, Mapping):
        body.append(_routing(routing))
    body.append(_usage(_m(report.get("usage"))))
    cases = _seq(report.get("cases_detail"))
    errors = _seq(report.get("errors"))
    if errors:
        body.append(_errors(errors))
    actions = report.get("actions")
    if isinstance(actions, Mapping):
        body.append(_actions(actions, cases))
    if cases:
        body.append(_cases(cases, list(nodes)))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(_title(report))}</title><style>{_CSS}</style></head>"
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
