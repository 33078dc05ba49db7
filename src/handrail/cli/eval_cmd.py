"""`handrail eval SUITE`: run a suite's cases, score them, print the report, gate on a baseline.

Exit codes: 0 when the eval ran (and passed its baseline, if given), 1 when it regressed beyond
the suite's tolerances, 2 for a mistake in the command or a malformed suite.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from handrail.cli import calibrate_cmd
from handrail.cli.options import errors
from handrail.cli.progress import progress_bar, wants_progress
from handrail.core.model import Model
from handrail.providers.specs import DEFAULT_MODEL, choose_model
from handrail.targets import load_pipeline

if TYPE_CHECKING:
    from handrail.core.pipeline import Pipeline
    from handrail.evals.calibrate import Calibration
    from handrail.evals.run import EvalRun
    from handrail.evals.suite import Suite

# `handrail.evals` (YAML, rapidfuzz, the scorers) is imported when `handrail eval` runs, so other
# commands and `--help` do not pay for it.

REGRESSED = 1


def eval_(
    suite: Annotated[
        str,
        typer.Argument(metavar="SUITE", help="The suite folder (evals/NAME) or its suite.yaml."),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="The model (default: the suite's `model`, else fake). Answers come from the "
            "suite's recordings where it has them.",
            show_default=False,
        ),
    ] = None,
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            metavar="FILE",
            help="Compare with this saved report; exit 1 on a regression beyond the suite's "
            "tolerances.",
            show_default=False,
        ),
    ] = None,
    save_to: Annotated[
        str | None,
        typer.Option(
            "--save-baseline",
            metavar="FILE",
            help="Save this report as the baseline.",
            show_default=False,
        ),
    ] = None,
    html: Annotated[
        str | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Write the report as one self-contained HTML page.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="The report as JSON on stdout.")] = (
        False
    ),
    concurrency: Annotated[
        int | None,
        typer.Option("--concurrency", "-c", min=1, help="Cases run at the same time."),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Only the first N cases.")
    ] = None,
    target_accuracy: Annotated[
        float | None,
        typer.Option(
            "--target-accuracy",
            min=0.0,
            max=1.0,
            help="Report the confidence threshold that reaches this accuracy on what is "
            "accepted (default: the suite's target_accuracy).",
            show_default=False,
        ),
    ] = None,
    target_review_rate: Annotated[
        float | None,
        typer.Option(
            "--target-review-rate",
            min=0.0,
            max=1.0,
            help="Also report the most accurate threshold that sends at most this share of "
            "answers to review.",
            show_default=False,
        ),
    ] = None,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Answer only from the suite's recordings: a case not recorded fails.",
        ),
    ] = False,
    run_actions: Annotated[
        bool,
        typer.Option(
            "--run-actions",
            help="Call the pipeline's Action nodes (default: an eval calls none; it records "
            "what each would have been called with and goes on as if it succeeded).",
        ),
    ] = False,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Write, per gated node and field, the lowest threshold that reaches the "
            "target accuracy into the calibration file (read by Gate.calibrated(...)).",
        ),
    ] = False,
    out: calibrate_cmd.Out = None,
    min_cases: calibrate_cmd.MinCases = None,
) -> None:
    """Run an eval suite: every case through the pipeline, scored against its expected outputs.

    Prints per-node scores (labels, fields, routing, calibration, the review-rate curve and the
    threshold that reaches the target accuracy), cost and latency per document. Action nodes are
    not called unless --run-actions is given. Exit code 1 when --baseline shows a regression
    beyond the suite's tolerances, 2 for a malformed suite; a case the eval cannot finish is
    reported with its error and does not change the exit code.
    """
    from handrail.evals.compare import compare, load_baseline, save_baseline
    from handrail.evals.html import render_html
    from handrail.evals.judge import judge_run
    from handrail.evals.report import build_report
    from handrail.evals.run import run_cases
    from handrail.evals.suite import load_suite

    with errors():
        loaded = load_suite(suite, load=load_pipeline)
        pipeline = loaded.pipeline or load_pipeline(loaded.pipeline_target)
        chosen = _model(loaded, model, offline=offline)
        cases = loaded.cases[:limit] if limit else loaded.cases
        show_bar = wants_progress(sys.stderr, json_output=json_output)
        with progress_bar(len(cases), enabled=show_bar) as on_result:
            ran = asyncio.run(
                run_cases(
                    pipeline,
                    cases,
                    model=chosen,
                    concurrency=concurrency or loaded.concurrency,
                    on_result=on_result,
                    run_actions=run_actions,
                )
            )
        # the LLM judge of text nodes that ask for one: the judge's model, else the eval's
        judged = asyncio.run(
            judge_run(
                loaded,
                ran,
                model_for=lambda name: (
                    chosen if name is None else _model(loaded, name, offline=offline)
                ),
                concurrency=concurrency or loaded.concurrency,
            )
        )
        report = build_report(
            loaded,
            ran,
            model=chosen.name,
            target_accuracy=target_accuracy,
            target_review_rate=target_review_rate,
            judged=judged,
        )
        if baseline is not None:
            report["comparison"] = compare(
                report,
                load_baseline(baseline),
                tolerances=loaded.tolerances,
                alpha=loaded.alpha,
                min_sample=loaded.min_sample,
                baseline_path=baseline,
            )
        calibrated = None
        if calibrate:
            calibrated = _calibrate(
                loaded, pipeline, ran, target_accuracy, out=out, min_cases=min_cases
            )
            report["calibrate"] = {**calibrated[0].to_dict(), "path": str(calibrated[1])}
    if save_to is not None:
        save_baseline(report, save_to)
    if html is not None:
        Path(html).parent.mkdir(parents=True, exist_ok=True)
        Path(html).write_text(render_html(report), encoding="utf-8")
    if json_output:
        typer.echo(json.dumps(report, default=str))  # one line: for machines
    else:
        print_report(report, Console(width=max(100, Console().width)))
        if save_to is not None:
            typer.echo(f"baseline saved to {save_to}")
        if html is not None:
            typer.echo(f"HTML report written to {html}")
        if calibrated is not None:
            calibrate_cmd.print_calibration(*calibrated, Console(width=max(100, Console().width)))
    comparison = report.get("comparison")
    if comparison is not None and not comparison["passed"]:
        raise typer.Exit(REGRESSED)


def _calibrate(
    suite: Suite,
    pipeline: Pipeline,
    ran: EvalRun,
    target_accuracy: float | None,
    *,
    out: str | None,
    min_cases: int | None,
) -> tuple[Calibration, Path]:
    """The thresholds the suite's answers give, written to the calibration file."""
    from handrail.core.calibration import calibration_path
    from handrail.evals.calibrate import (
        DEFAULT_TARGET,
        MIN_CASES,
        answers_from_eval,
        calibrate,
        save_calibration,
    )

    target = target_accuracy or suite.target_accuracy or DEFAULT_TARGET
    found = calibrate(
        pipeline,
        answers_from_eval(pipeline, suite, ran),
        target_accuracy=target,
        source="eval",
        suite=suite.name,
        min_cases=min_cases or MIN_CASES,
    )
    return found, save_calibration(calibration_path(out), found.entry)


def _model(suite: Suite, model: str | None, *, offline: bool) -> Model:
    """The model with the suite's recordings: replayed where recorded, recorded where not (only
    replayed with `offline`)."""
    name = model or suite.model or DEFAULT_MODEL
    recordings = suite.recordings
    if recordings is None:
        return choose_model(name)
    if offline:
        return choose_model(name, replay=recordings)
    if not recordings.exists() or not any(recordings.iterdir()):
        return choose_model(name, record=recordings)
    return choose_model(name, record=recordings, replay=recordings)


# --- the terminal report -----------------------------------------------------------------------


def print_report(report: Mapping[str, Any], console: Console) -> None:
    statuses = ", ".join(
        f"{n} {s.replace('_', ' ')}" for s, n in report["runs"]["by_status"].items()
    )
    console.print(
        f"[bold]eval {report['suite']}[/bold]: pipeline {report['pipeline']}, model "
        f"{report['model']}, {report['cases']} cases ({statuses})"
    )
    nodes = report.get("nodes", {})
    if nodes:
        console.print(_node_table(nodes))
    for node, section in nodes.items():
        if section.get("type") == "extraction":
            console.print(_field_table(node, section))
        elif section.get("type") == "text" and section.get("checks"):
            console.print(_checks_table(node, section))
    routing = report.get("routing")
    if routing:
        console.print(
            f"routing: {_pct(routing.get('accuracy'))} right; "
            f"{routing.get('missed_reviews', 0)} should have gone to a person but did not, "
            f"{routing.get('unneeded_reviews', 0)} went to a person needlessly"
        )
    console.print(_usage_line(report.get("usage", {})), highlight=False)
    actions = report.get("actions")
    if actions:
        console.print(_actions_line(actions), highlight=False)
    errors = report.get("errors") or []
    if errors:
        console.print(
            f"[yellow]{len(errors)} case{'s' if len(errors) != 1 else ''} the eval could not "
            "finish (scored as far as they ran):[/yellow]"
        )
        for item in errors[:20]:
            console.print(f"  {item['id']}: {item['error']}", markup=False, highlight=False)
        if len(errors) > 20:
            console.print(f"  ... and {len(errors) - 20} more (all in --json `errors`)")
    comparison = report.get("comparison")
    if comparison is not None:
        console.print(_comparison_table(comparison))
        changed = comparison.get("changed_cases", [])
        for change in changed[:20]:
            console.print(
                f"  {change['id']}: {change['node']} {change['before']} -> {change['after']}",
                markup=False,
                highlight=False,
            )
        if len(changed) > 20:
            console.print(f"  ... and {len(changed) - 20} more changed cases")
        for row in comparison.get("metrics", []):
            if row.get("gate") == "tolerance" and row.get("test") and row["delta"] < 0:
                console.print(f"  {row['name']}: {row['why']}", highlight=False)
        if not comparison["passed"]:
            verdict = "[red]REGRESSED[/red]"
        elif comparison.get("right_to_wrong"):
            verdict = "[yellow]passed, within noise or tolerance[/yellow]"
        else:
            verdict = "[green]passed[/green]"
        console.print(f"baseline {comparison.get('baseline')}: {verdict}")
        summary = comparison.get("summary")
        if summary:
            console.print(f"  {summary}", markup=False, highlight=False)
    timing = report.get("timing")
    if timing:
        console.print(
            f"[dim]runs {timing['run_s']:.2f} s, scoring {timing['scoring_s']:.3f} s[/dim]"
        )


def _node_table(nodes: Mapping[str, Any]) -> Table:
    table = Table(title="nodes", title_justify="left")
    budget = any("target_review_rate" in section for section in nodes.values())
    columns = ["node", "type", "score", "ECE", "threshold at target"]
    if budget:
        columns.append("threshold within review budget")
    for column in columns:
        table.add_column(column, overflow="fold")
    for node, section in nodes.items():
        kind = section.get("type", "")
        scores = section.get("scores") or {}
        if kind == "classification":
            score = (
                f"accuracy {_pct(scores.get('accuracy'))}, macro-F1 "
                f"{_num(scores.get('macro_f1'))} (n={scores.get('n')})"
            )
        elif kind == "extraction":
            match = section.get("match", "normalised")
            micro = (scores.get("micro") or {}).get(match) or {}
            right = (scores.get("all_fields_right") or {}).get(match)
            score = f"F1 {_num(micro.get('f1'))} ({match}), all fields right {_pct(right)}"
        else:
            checks = section.get("checks") or {}
            passed = sum(c.get("passed", 0) for c in checks.values())
            total = passed + sum(c.get("failed", 0) for c in checks.values())
            score = f"checks {passed}/{total} passed" if total else "no checks"
            judge = section.get("judge")
            if judge:
                score += (
                    f"; judge ({judge.get('model')}): {_pct(judge.get('pass_rate'))} pass "
                    f"({judge.get('judged', 0)} judged, {judge.get('unjudged', 0)} not)"
                )
        ece = (section.get("calibration") or {}).get("ece")
        row = [node, kind, score, _num(ece), _threshold(section)]
        if budget:
            row.append(_budget(section))
        table.add_row(*row)
    return table


def _threshold(section: Mapping[str, Any]) -> str:
    target = section.get("target_accuracy")
    if target is None or "review_curve" not in section:
        return "—"
    point = section.get("threshold")
    return f"{_pct(target)} not reachable" if point is None else _gate(point)


def _budget(section: Mapping[str, Any]) -> str:
    rate = section.get("target_review_rate")
    point = section.get("threshold_at_review_rate")
    if rate is None or point is None:
        return "—"
    return f"{_gate(point)} (budget {_pct(rate)})"


def _gate(point: Mapping[str, Any]) -> str:
    """A threshold and what it gives: `≥ 0.58: 95.2% right, 37.5% to review`."""
    return (
        f"≥ {point['threshold']:.2f}: {_pct(point.get('accepted_accuracy'))} right, "
        f"{_pct(point.get('review_rate'))} to review"
    )


def _field_table(node: str, section: Mapping[str, Any]) -> Table:
    table = Table(title=f"{node}: fields (F1; accuracy)", title_justify="left")
    for column in ("field", "exact", "normalised", "fuzzy"):
        table.add_column(column)
    fields = (section.get("scores") or {}).get("per_field") or {}
    for name, modes in fields.items():
        table.add_row(
            name,
            *(_f1_and_accuracy(modes.get(m) or {}) for m in ("exact", "normalised", "fuzzy")),
        )
    return table


def _f1_and_accuracy(counts: Mapping[str, Any]) -> str:
    return f"{_num(counts.get('f1'))}; {_pct(counts.get('accuracy'))}"


def _checks_table(node: str, section: Mapping[str, Any]) -> Table:
    table = Table(title=f"{node}: text checks", title_justify="left")
    for column in ("check", "passed", "failed"):
        table.add_column(column)
    for name, counts in section["checks"].items():
        table.add_row(name, str(counts.get("passed", 0)), str(counts.get("failed", 0)))
    return table


def _usage_line(usage: Mapping[str, Any]) -> str:
    """Per document, median / p90 / mean of tokens, cost and latency, on one line."""
    parts = []
    for name, label in (("tokens", "tokens"), ("cost", "cost USD"), ("latency_s", "latency s")):
        dist = usage.get(name) or {}
        parts.append(
            f"{label} {' / '.join(_amount(dist.get(k)) for k in ('median', 'p90', 'mean'))}"
        )
    return "per document (median / p90 / mean): " + "; ".join(parts)


def _actions_line(actions: Mapping[str, Any]) -> str:
    """Whether the eval called the pipeline's actions, and which it did not call."""
    if actions.get("called"):
        return "actions: called (--run-actions)"
    by_node = actions.get("not_called_by_node") or {}
    if not by_node:
        return "actions: none reached (an eval calls none unless --run-actions is given)"
    calls = ", ".join(f"{node} ×{n}" for node, n in by_node.items())
    return (
        f"actions: not called ({calls}); what each would have been called with is in --json "
        "`cases_detail[].actions_not_called`; --run-actions calls them"
    )


def _comparison_table(comparison: Mapping[str, Any]) -> Table:
    table = Table(title="against the baseline", title_justify="left")
    for column in ("metric", "baseline", "now", "change", "tolerance", "p", "gate", "verdict"):
        table.add_column(column)
    for row in comparison.get("metrics", []):
        verdict = (
            "[red]regressed[/red]"
            if row["regressed"]
            else ("within noise" if row.get("noise") else "ok")
        )
        table.add_row(
            row["name"],
            _num(row["baseline"]),
            _num(row["current"]),
            f"{row['delta']:+.3f}",
            f"{row['tolerance']:.3f}",
            _num(row.get("p_value")),
            str(row.get("gate") or "—"),
            verdict,
        )
    return table


def _pct(value: Any) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"


def _amount(value: Any) -> str:
    """A count or an amount: whole numbers without decimals (token counts are medians)."""
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return _num(value)


__all__ = ["eval_", "print_report"]
