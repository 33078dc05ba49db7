"""Settling a valid output: its checks' verdict and the confidence gate decide the step."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from numbers import Real
from typing import TYPE_CHECKING, Any

from handrail._utils import unit_hash
from handrail.core.model import ModelResponse
from handrail.core.nodes import Check, Extract, LLMNode, Node
from handrail.core.outcome import Exhausted, Outcome, StepContext, replace_outcome
from handrail.core.records import (
    Attempt,
    CheckResult,
    Confidence,
    ExampleSignals,
    ReviewReason,
    StepStatus,
    Usage,
)
from handrail.exceptions import CheckFailed, LowConfidence

if TYPE_CHECKING:
    from handrail.core.examples import Examples
    from handrail.core.state import State


@dataclass(kw_only=True, slots=True)
class Verdict:
    results: tuple[CheckResult, ...] = ()
    retry: CheckResult | None = None
    action: str | None = None
    """The strongest failed on_fail: fail > fallback > retry (exhausted) > review > warn."""
    failed: tuple[CheckResult, ...] = ()


_ORDER = {"fail": 0, "fallback": 1, "retry": 2, "review": 3, "warn": 4}


# --- numbers the gate can read ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Unreadable:
    """A confidence a model reported that is not a finite number in [0, 1]: dropped, so the gate
    treats it as no confidence, and named in the review reason (or the attempt's warnings)."""

    field: str | None
    """The `Extract` field it was given for; None for the node's confidence or a label score."""
    message: str


def readable(value: object) -> float | None:
    """`value` as a float when it is a finite number in [0, 1], else None (NaN, inf, -0.1, 1.5,
    a string, a bool)."""
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    number = float(value)
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None


def _shown(value: object) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, Real) and not isinstance(value, bool):
        return repr(float(value)) if math.isinf(float(value)) else f"{value}"
    return repr(value)


def _unreadable(what: str, value: object, field: str | None = None) -> Unreadable:
    return Unreadable(
        field=field,
        message=f"{what} was {_shown(value)}: not a number in [0, 1]; treated as no confidence",
    )


def screen(node: Node, response: ModelResponse) -> tuple[ModelResponse, tuple[Unreadable, ...]]:
    """The response with only confidences the gate can read, and what was dropped.

    Every number a model reports enters handrail here (node confidence, per-field confidence,
    label scores), whichever `Model` sent it: one that is not a finite number in [0, 1] is
    dropped, never compared, so NaN can never pass a threshold (`NaN < 0.9` is False).
    """
    notes: list[Unreadable] = []
    changed = False

    def kept(score: Any, what: str, field: str | None = None) -> Confidence | None:
        nonlocal changed
        value = getattr(score, "value", score)
        number = readable(value)
        if number is None:
            notes.append(_unreadable(what, value, field))
            return None
        if isinstance(score, Confidence) and type(score.value) is float:
            return score
        changed = True  # an int, a Decimal or a bare number: kept as a float Confidence
        source = score.source if isinstance(score, Confidence) else "none"
        return Confidence(value=number, source=source)

    confidence = response.confidence
    if confidence is not None:
        confidence = kept(confidence, f"confidence of `{node.name}`")
    fields: dict[str, Confidence] = {}
    for name, score in response.field_confidence.items():
        field = kept(score, f"confidence of field `{name}` of `{node.name}`", name)
        if field is not None:
            fields[name] = field
    labels: dict[str, float] = {}
    for label, value in response.label_scores.items():
        number = readable(value)
        if number is None:
            notes.append(_unreadable(f"label score of `{label}` on `{node.name}`", value))
        else:
            changed = changed or type(value) is not float
            labels[label] = number
    if not notes and not changed:
        return response, ()
    screened = replace(
        response, confidence=confidence, field_confidence=fields, label_scores=labels
    )
    return screened, tuple(notes)


def run_checks(
    node: Node,
    output: Any,
    state: State,
    retries: dict[str, int],
    attempts: list[Attempt],
    usage: Usage,
) -> Verdict:
    if not node.checks:
        return Verdict()
    results = []
    for check in node.checks:
        try:
            results.append(check.evaluate(output, state))
        except Exception as e:
            results.append(
                CheckResult(
                    passed=False,
                    name=check.name,
                    on_fail=check.on_fail,
                    message=f"check raised {type(e).__name__}: {e}",
                )
            )
    failed = tuple(r for r in results if not r.passed)
    verdict = Verdict(results=tuple(results), failed=failed)
    if not failed:
        return verdict
    by_name = {c.name: c for c in node.checks}
    for result in failed:
        declared: Check = by_name[result.name]
        if declared.on_fail == "retry" and retries.get(declared.name, 0) < declared.max_retries:
            retries[declared.name] = retries.get(declared.name, 0) + 1
            if attempts:
                attempts[-1] = replace_outcome(
                    attempts[-1], "check_failed", result.message or result.name
                )
            verdict.retry = result
            return verdict
    verdict.action = min((r.on_fail for r in failed), key=_ORDER.__getitem__)
    return verdict


def settle(
    node: Node,
    ctx: StepContext,
    verdict: Verdict,
    output: Any,
    route: str | None,
    confidence: Confidence | None,
    field_confidence: Mapping[str, Confidence],
    attempts: list[Attempt],
    usage: Usage,
    model: str | None,
    unreadable: Sequence[Unreadable] = (),
    *,
    examples: ExampleSignals | None = None,
) -> Outcome:
    """Turn a valid output plus its check verdict and gate into the step's outcome.

    Failed checks with a `cap` lower the confidence first (`_apply_caps`), so the gate and the
    step record see the capped numbers. `unreadable`: the numbers `screen` dropped; they are
    recorded on the last attempt, and a gated node goes to review for them. `examples`: what
    the node's examples said (`Picked.judge`); with `agree=` or `unlike_below=` they may send
    the output to review too (`_examples_reasons`).
    """
    if unreadable and attempts:
        last = attempts[-1]
        attempts[-1] = replace(last, warnings=(*last.warnings, *(u.message for u in unreadable)))
    confidence, field_confidence, judged = _apply_caps(node, verdict, confidence, field_confidence)
    checks = verdict.results
    action = verdict.action
    failed = [r for r in verdict.failed if r.on_fail == action]
    first = failed[0] if failed else None
    outcome = Outcome(
        status=StepStatus.COMPLETED,
        output=output,
        route=route,
        confidence=confidence,
        field_confidence=field_confidence,
        checks=checks,
        attempts=attempts,
        usage=usage,
        model=model,
        examples=examples,
    )
    if action == "fail" and first is not None:
        # Returned, not raised, so the step keeps its attempts, usage and check results.
        outcome.status = StepStatus.FAILED
        outcome.error = CheckFailed(
            f"check `{first.name}` on `{node.name}` failed: {first.message or 'no message'}",
            node=node.name,
        )
        return outcome
    if action in ("fallback", "retry") and first is not None:
        what = "after its retries" if action == "retry" else "and asks for the fallback"
        if attempts:  # the last answer failed the check too
            attempts[-1] = replace_outcome(
                attempts[-1], "check_failed", first.message or first.name
            )
        raise _with(
            examples,
            CheckFailed(
                f"check `{first.name}` on `{node.name}` failed {what}: "
                f"{first.message or 'no message'}",
                node=node.name,
            ),
            attempts,
            usage,
            checks,
            output,
            confidence,
        )
    reasons: list[ReviewReason] = [
        ReviewReason(kind="check", check=r.name, message=r.message or f"check {r.name} failed")
        for r in verdict.failed
        if r.on_fail == "review"
    ]
    rule = node.examples if isinstance(node, LLMNode) else None
    if rule is not None and examples is not None:
        reasons.extend(_examples_reasons(rule, examples, route))
    gate = node.gate if isinstance(node, LLMNode) else None
    if gate is not None:
        if confidence is not None and gate.reject is not None and confidence.value < gate.reject:
            raise _with(
                examples,
                LowConfidence(
                    f"`{node.name}` confidence {confidence.value:.2f} is below its reject band "
                    f"({gate.reject:g}, {confidence.source})",
                    node=node.name,
                    value=confidence.value,
                    threshold=gate.reject,
                ),
                attempts,
                usage,
                checks,
                output,
                confidence,
            )
        assert isinstance(node, LLMNode)
        reasons.extend(_gate_reasons(node, gate, confidence, field_confidence, judged, unreadable))
        if (
            not reasons
            and gate.audit
            and unit_hash(ctx.state.document.hash, node.name) < gate.audit
        ):
            reasons.append(
                ReviewReason(
                    kind="audit",
                    value=gate.audit,
                    message=(f"picked for a quality audit ({gate.audit:.0%} of accepted outputs)"),
                )
            )
    outcome.reasons = tuple(reasons)
    if reasons:
        outcome.status = StepStatus.NEEDS_REVIEW
    return outcome


def _with(examples: ExampleSignals | None, *args: Any) -> Exhausted:
    """`Exhausted(*args)` carrying what the node's examples said, for the failed step."""
    exhausted = Exhausted(*args)
    exhausted.examples = examples
    return exhausted


def _examples_reasons(
    rule: Examples, signals: ExampleSignals, label: str | None
) -> list[ReviewReason]:
    """Why the examples send an output to review: a document unlike every example
    (`unlike_below`); with `agree`, a vote for another label (or none), or a model less sure
    than its floor. The combined confidence is gated with the node's other numbers."""
    reasons = []
    best = signals.similarity
    if rule.unlike_below is not None and (best is None or best < rule.unlike_below):
        reasons.append(
            ReviewReason(
                kind="unlike_examples",
                value=best,
                threshold=rule.unlike_below,
                message=(
                    "unlike anything seen: the node has no examples yet"
                    if best is None
                    else f"unlike anything seen: the closest example's similarity is "
                    f"{best:.2f} < {rule.unlike_below:g}"
                ),
            )
        )
    if not rule.agree:
        return reasons
    said = f"the model said `{label}`"
    share = signals.confidence.value if signals.confidence is not None else None
    if signals.label is None:
        reasons.append(
            ReviewReason(
                kind="examples_disagree",
                message=f"the examples cast no vote (no near example shares a word with the "
                f"document); {said}, and agree=True needs both",
            )
        )
    elif signals.label != label:
        top = signals.vote[signals.label]
        reasons.append(
            ReviewReason(
                kind="examples_disagree",
                value=share,
                message=f"the examples vote for `{signals.label}` ({top:.2f}), {said} "
                + (f"(which has {share:.2f} of the vote)" if share else "(which has no vote)"),
            )
        )
    model = signals.model_confidence
    if model is None:
        reasons.append(
            ReviewReason(
                kind="low_confidence",
                threshold=rule.model_floor,
                message="the model gave no confidence of its own; agree=True needs one "
                f"of at least {rule.model_floor:g}",
            )
        )
    elif model.value < rule.model_floor:
        reasons.append(
            ReviewReason(
                kind="low_confidence",
                value=model.value,
                threshold=rule.model_floor,
                message=f"the model's own confidence {model.value:.2f} < its floor "
                f"{rule.model_floor:g} ({model.source})",
            )
        )
    return reasons


_NODE = ""
"""The key `_apply_caps` uses for the node's own confidence."""


@dataclass(frozen=True, slots=True)
class _Cap:
    check: str
    """The failed check with the lowest cap on this field (or the node)."""
    lowered: bool
    """Whether the cap lowered the number (False: it was already at or below, or missing)."""

    def note(self, source: str) -> str:
        if self.lowered:
            return f"capped by check `{self.check}`"
        return f"{source}; check `{self.check}` failed on it"


def _apply_caps(
    node: Node,
    verdict: Verdict,
    confidence: Confidence | None,
    field_confidence: Mapping[str, Confidence],
) -> tuple[Confidence | None, Mapping[str, Confidence], dict[str, _Cap]]:
    """Lower confidence where a failed check with a `cap` says so (DESIGN §4, checks).

    A failed check caps the node's confidence, and for `Extract` the fields its result names
    (every field when it names none), at `cap`, with source `checks`. Capping only ever lowers a
    number: a passing check leaves the model's number as it is, because agreeing with one rule is
    weak evidence that the rest of the output is right; and a number the model never gave is not
    invented (a gated field without one goes to review anyway). Returns the new confidences and,
    per field the caps judged (`_NODE` for the node), which check did it.
    """
    if not verdict.failed:
        return confidence, field_confidence, {}
    declared = {c.name: c.cap for c in node.checks if c.cap is not None}
    caps: dict[str, tuple[float, str]] = {}
    for result in verdict.failed:
        cap = declared.get(result.name)
        if cap is None:
            continue
        targets = [_NODE]
        if isinstance(node, Extract):
            targets += result.fields or list(field_confidence)
        for target in targets:
            if target not in caps or cap < caps[target][0]:
                caps[target] = (cap, result.name)
    if not caps:
        return confidence, field_confidence, {}

    judged: dict[str, _Cap] = {}

    def lower(target: str, score: Confidence | None) -> Confidence | None:
        if target not in caps:
            return score
        cap, check = caps[target]
        lowered = score is not None and score.value > cap
        judged[target] = _Cap(check, lowered)
        return Confidence(value=cap, source="checks") if lowered else score

    fields = {name: lower(name, score) or score for name, score in field_confidence.items()}
    for name in caps.keys() - fields.keys() - {_NODE}:
        lower(name, None)
    return lower(_NODE, confidence), fields, judged


def _gate_reasons(
    node: LLMNode,
    gate: Any,
    confidence: Confidence | None,
    field_confidence: Mapping[str, Confidence],
    judged: Mapping[str, _Cap],
    unreadable: Sequence[Unreadable] = (),
) -> list[ReviewReason]:
    # A number the gate cannot read always asks for a person, gated field or not: the model
    # that sent it is not to be trusted on this output.
    bad_fields = {u.field: u.message for u in unreadable if u.field is not None}
    reasons = [
        ReviewReason(kind="low_confidence", threshold=gate.accept, message=u.message)
        for u in unreadable
        if u.field is None
    ]
    if isinstance(node, Extract) and (field_confidence or bad_fields):
        required = {f for f, info in node.schema.model_fields.items() if info.is_required()}
        for name in [
            *node.schema.model_fields,
            *(f for f in bad_fields if f not in node.schema.model_fields),
        ]:
            cap = judged.get(name)
            threshold = gate.fields.get(name, gate.accept)
            if name in bad_fields:
                reasons.append(
                    ReviewReason(
                        kind="field_low_confidence",
                        field=name,
                        threshold=threshold,
                        check=cap.check if cap else None,
                        message=bad_fields[name],
                    )
                )
                continue
            # A field a failed check with a cap names is gated like a required one.
            if name not in required and name not in gate.fields and cap is None:
                continue
            score = field_confidence.get(name)
            if score is None:  # never a silent accept: a gated field needs a number
                reasons.append(
                    ReviewReason(
                        kind="field_low_confidence",
                        field=name,
                        threshold=threshold,
                        check=cap.check if cap else None,
                        message=f"the model gave no confidence for field `{name}`; a gated "
                        "field needs one" + (f" (check `{cap.check}` failed on it)" if cap else ""),
                    )
                )
            elif score.value < threshold:
                reasons.append(
                    ReviewReason(
                        kind="field_low_confidence",
                        field=name,
                        value=score.value,
                        threshold=threshold,
                        check=cap.check if cap else None,
                        message=(
                            f"field `{name}` confidence {score.value:.2f} < {threshold:g} "
                            f"({cap.note(score.source) if cap else score.source})"
                        ),
                    )
                )
        return reasons
    if confidence is None:
        if reasons:  # the number it gave could not be read: the reason already says so
            return reasons
        return [
            ReviewReason(
                kind="low_confidence",
                threshold=gate.accept,
                message=("the model gave no confidence for this output; a gated node needs one"),
            )
        ]
    if confidence.value < gate.accept:
        cap = judged.get(_NODE)
        return [
            *reasons,
            ReviewReason(
                kind="low_confidence",
                value=confidence.value,
                threshold=gate.accept,
                check=cap.check if cap else None,
                message=(
                    f"confidence {confidence.value:.2f} < {gate.accept:g} "
                    f"({cap.note(confidence.source) if cap else confidence.source})"
                ),
            ),
        ]
    return reasons
