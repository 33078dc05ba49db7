"""The baseline gate: is this eval worse than the stored one, beyond noise and tolerance?

A baseline is a report saved with `handrail eval --save-baseline FILE` (the same JSON as
`--json`). For each headline metric both reports have, the drop (`current - baseline`) is
compared with the suite's tolerance for it (`tolerances: {"<node>.<metric>": 0.05, default:
0.02}`). A drop beyond the tolerance is a regression unless a paired test over the cases both
runs share says it could be chance:

- accuracy-like metrics built from one right/wrong verdict per case (a label's accuracy, an
  extraction's all-fields-right rate, text checks, routing accuracy): an exact one-sided sign
  test (McNemar's test) on the cases that flipped: p = P(X >= worse), X ~ Binomial(worse +
  better, 1/2);
- an extraction's field F1: the same test on the cases whose number of right fields went down
  vs up;
- the LLM judge's pass rate of a text node: the same test on the judge's per-case verdicts.

With `p >= alpha` (0.05) the drop is reported as noise, not a regression: seven cases of thirty
flipping the wrong way and three the right way (p = 0.17) pass; ten the wrong way and none the
right way (p < 0.001) fail.

The test is used only where the sample can show significance. With n cases flipped, the smallest
p the sign test can give is 0.5^n (every flip the wrong way): with fewer than 5 flips it cannot
reach p < 0.05, so a drop beyond the tolerance is a regression, whatever p says, and the row says
why (`gate: "tolerance"`, `why`). The same holds below `min_sample` cases scored by both runs
(default 20): a sign test on a handful of cases is no evidence either way. A suite sets both
(`alpha:`, `min_sample:` in suite.yaml). A metric with no paired verdicts (macro-F1) is gated on
the tolerance alone.

The report lists every case whose verdict changed, and `summary` says in one sentence whether the
eval passed and, when cases went right to wrong, why that still passed (within the tolerance, or
within noise with its p-value): a pass never hides a case that got worse.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from handrail.exceptions import InputError

ALPHA = 0.05
MIN_SAMPLE = 20
"""Below this many cases scored by both runs, drops are gated on the tolerance alone."""
DEFAULT_TOLERANCE = 0.0

Verdicts = Callable[[Mapping[str, Any]], dict[str, float]]
"""Per-case values (case id -> number, larger is better) of a metric, from a report."""


def save_baseline(report: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `report` as the baseline at `path` (folders created)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    body = {k: v for k, v in report.items() if k not in ("comparison", "timing")}
    target.write_text(json.dumps(body, indent=1, sort_keys=True, default=str) + "\n")
    return target


def load_baseline(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A saved baseline; `InputError` naming the file and the fix when it is missing or not one."""
    source = Path(path)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            f"baseline `{source}` does not exist; write one with "
            f"`handrail eval SUITE --save-baseline {source}`"
        ) from None
    except (OSError, ValueError) as e:
        raise InputError(
            f"baseline `{source}` is not a saved eval report ({e}); write it again with "
            "--save-baseline"
        ) from None
    if not isinstance(data, dict) or "nodes" not in data or "cases_detail" not in data:
        raise InputError(
            f"baseline `{source}` is not a saved eval report (no `nodes`/`cases_detail`); "
            "write it again with --save-baseline"
        )
    return data


def compare(
    report: Mapping[str, Any],
    baseline: Mapping[str, Any],
    *,
    tolerances: Mapping[str, float] | None = None,
    alpha: float = ALPHA,
    min_sample: int = MIN_SAMPLE,
    baseline_path: str | None = None,
) -> dict[str, Any]:
    """The `comparison` section: every headline metric both reports have, whether each
    regressed (and, per row, what it was gated on and why), whether the eval passes, the cases
    whose verdict changed, and a one-sentence `summary`."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1 (exclusive), got {alpha}")
    tolerances = dict(tolerances or {})
    default = tolerances.get("default", DEFAULT_TOLERANCE)
    rows: list[dict[str, Any]] = []
    for name, (get, verdicts) in _metrics(report).items():
        current = get(report)
        before = get(baseline)
        if current is None or before is None:
            continue
        tolerance = tolerances.get(name, default)
        delta = current - before
        beyond = delta < -tolerance - 1e-12
        row: dict[str, Any] = {
            "name": name,
            "baseline": before,
            "current": current,
            "delta": delta,
            "tolerance": tolerance,
            "p_value": None,
            "test": None,
            "worse": None,
            "better": None,
            "gate": "tolerance",
            "why": "no per-case verdicts to test",
        }
        if verdicts is not None:
            then, now = verdicts(baseline), verdicts(report)
            down, up = _flips(then, now)
            row |= {"p_value": sign_test(down, up), "test": "sign", "worse": down, "better": up}
            row["why"] = _untestable(down + up, len(then.keys() & now.keys()), alpha, min_sample)
            if row["why"] is None:
                row["gate"] = "sign test"
        regressed = beyond and (row["gate"] == "tolerance" or row["p_value"] < alpha)
        row |= {"regressed": regressed, "noise": beyond and not regressed}
        rows.append(row)
    changed = changed_cases(baseline, report)
    passed = not any(row["regressed"] for row in rows)
    worse = sum(1 for c in changed if c["after"] == "wrong")
    why = _why_passed(rows, alpha)
    if not passed:
        names = [r["name"] for r in rows if r["regressed"]]
        summary = f"regressed: {', '.join(names)} dropped beyond the tolerance"
    elif worse:
        summary = f"passed, but {worse} case{'s' if worse != 1 else ''} went right → wrong: {why}"
    else:
        summary = "passed: no metric dropped beyond its tolerance and no case went right → wrong"
    return {
        "baseline": baseline_path,
        "passed": passed,
        "alpha": alpha,
        "min_sample": min_sample,
        "metrics": rows,
        "changed_cases": changed,
        "right_to_wrong": worse,
        "why_passed": why if passed and worse else None,
        "summary": summary,
    }


def flips_needed(alpha: float) -> int:
    """The fewest changed cases with which the one-sided sign test can reach p < `alpha` (all of
    them the wrong way: p = 0.5^n): 5 for 0.05, 7 for 0.01."""
    n = 1
    while 0.5**n >= alpha:
        n += 1
    return n


def _untestable(flips: int, paired: int, alpha: float, min_sample: int) -> str | None:
    """Why the sign test cannot tell noise from a drop here; None when it can."""
    if paired < min_sample:
        return (
            f"{paired} cases scored by both runs, fewer than min_sample ({min_sample}): too few "
            "for a paired test; gated on the tolerance"
        )
    needed = flips_needed(alpha)
    if flips < needed:
        return (
            f"{flips} case{'s' if flips != 1 else ''} changed; the sign test cannot reach "
            f"p < {alpha:g} with fewer than {needed}: gated on the tolerance"
        )
    return None


def _why_passed(rows: list[dict[str, Any]], alpha: float) -> str:
    """Why each metric that dropped still passes: within noise (its p-value) or its tolerance."""
    reasons = []
    for row in rows:
        if row["regressed"] or row["delta"] >= 0:
            continue
        if row["noise"]:
            reasons.append(f"{row['name']} within noise (p = {row['p_value']:.3g} ≥ {alpha:g})")
        else:
            reasons.append(
                f"{row['name']} within its tolerance ({row['delta']:+.3f}, allowed "
                f"-{row['tolerance']:.3f})"
            )
    return "; ".join(reasons) if reasons else "no headline metric dropped"


def sign_test(worse: int, better: int) -> float:
    """One-sided exact sign test: the chance of at least `worse` of `worse + better` flips going
    the wrong way if each way were equally likely. 1.0 when nothing flipped."""
    n = worse + better
    if n == 0:
        return 1.0
    tail: int = sum(math.comb(n, k) for k in range(worse, n + 1))
    return tail / float(2**n)


def changed_cases(baseline: Mapping[str, Any], report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Cases present in both whose verdict for a node (or the route) changed."""
    before = {c["id"]: c for c in baseline.get("cases_detail", [])}
    changes: list[dict[str, Any]] = []
    for case in report.get("cases_detail", []):
        old = before.get(case["id"])
        if old is None:
            continue
        pairs = [
            (node, old.get("nodes", {}).get(node, {}).get("correct"), now.get("correct"))
            for node, now in case.get("nodes", {}).items()
        ]
        pairs.append(("route", old.get("route_correct"), case.get("route_correct")))
        for node, was, now in pairs:
            if was is None or now is None or was == now:
                continue
            changes.append(
                {
                    "id": case["id"],
                    "node": node,
                    "before": "right" if was else "wrong",
                    "after": "right" if now else "wrong",
                }
            )
    return changes


# --- the headline metrics ------------------------------------------------------------------------


def _metrics(report: Mapping[str, Any]) -> dict[str, tuple[Callable[..., Any], Verdicts | None]]:
    metrics: dict[str, tuple[Callable[..., Any], Verdicts | None]] = {}
    for node, section in report.get("nodes", {}).items():
        kind = section.get("type")
        if kind == "classification":
            metrics[f"{node}.accuracy"] = (
                _get(node, "scores", "accuracy"),
                _per_case("nodes", node, "correct"),
            )
            metrics[f"{node}.macro_f1"] = (_get(node, "scores", "macro_f1"), None)
        elif kind == "extraction":
            match = section.get("match", "normalised")
            metrics[f"{node}.all_fields_right"] = (
                _get(node, "scores", "all_fields_right", match),
                _per_case("nodes", node, "correct"),
            )
            metrics[f"{node}.f1"] = (
                _get(node, "scores", "micro", match, "f1"),
                _per_case("nodes", node, "fields_right"),
            )
        elif kind == "text":
            metrics[f"{node}.checks_passed"] = (
                _text_rate(node),
                _per_case("nodes", node, "correct"),
            )
            metrics[f"{node}.judge_pass_rate"] = (
                _get(node, "judge", "pass_rate"),
                _per_case("nodes", node, "judge", "passed"),
            )
    if report.get("routing"):
        metrics["routing.accuracy"] = (
            lambda report: _dig(report, ("routing", "accuracy")),
            _per_case("route_correct"),
        )
    return metrics


def _dig(value: Any, path: tuple[str, ...]) -> float | None:
    """The number at `path` inside nested mappings (booleans count as 0/1), else None."""
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) else None


def _get(*path: str) -> Callable[[Mapping[str, Any]], float | None]:
    """A headline metric: the number at `path` under the report's `nodes`."""
    return lambda report: _dig(report.get("nodes", {}), path)


def _text_rate(node: str) -> Callable[[Mapping[str, Any]], float | None]:
    def get(report: Mapping[str, Any]) -> float | None:
        checks = report.get("nodes", {}).get(node, {}).get("checks") or {}
        passed = sum(c.get("passed", 0) for c in checks.values())
        total = passed + sum(c.get("failed", 0) for c in checks.values())
        return passed / total if total else None

    return get


def _per_case(*path: str) -> Verdicts:
    """Per-case values: the number at `path` inside each of the report's `cases_detail`."""

    def per_case(report: Mapping[str, Any]) -> dict[str, float]:
        found: dict[str, float] = {}
        for case in report.get("cases_detail", []):
            value = _dig(case, path)
            if value is not None:
                found[case["id"]] = value
        return found

    return per_case


def _flips(before: Mapping[str, float], after: Mapping[str, float]) -> tuple[int, int]:
    """(cases that got worse, cases that got better) among those both runs scored."""
    worse = better = 0
    for case_id, old in before.items():
        new = after.get(case_id)
        if new is None or new == old:
            continue
        if new < old:
            worse += 1
        else:
            better += 1
    return worse, better


__all__ = [
    "ALPHA",
    "MIN_SAMPLE",
    "changed_cases",
    "compare",
    "flips_needed",
    "load_baseline",
    "save_baseline",
    "sign_test",
]
