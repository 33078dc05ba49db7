#!/usr/bin/env python
"""CPU cost of `LiteLLMModel` per call, above a bare `litellm.acompletion(mock_response=...)`.

    python bench/litellm_overhead.py            # readable table
    python bench/litellm_overhead.py --quick    # fewer calls (CI smoke run)
    python bench/litellm_overhead.py --json     # one JSON object on stdout

Both sides make the same litellm call: the bare side sends exactly the keyword arguments
`LiteLLMModel` builds for the request (same messages, same structured-output parameters), so the
difference is handrail's own work: building the request, reading the response, usage and cost,
exception translation. Two requests: a `Classify` (plain answer) and an `Extract` (a pydantic
schema, provider-enforced JSON schema mode). Calls alternate between the two sides in rounds;
the figure is the median over rounds of CPU time (process time) per call. No network: litellm
answers from `mock_response`. `bench/models.py` reports the same figure as
`litellm_overhead_ms_per_call` (the larger of the two requests).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
try:
    import handrail  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(ROOT / "src"))

from pydantic import BaseModel, Field  # noqa: E402

from handrail.core.model import Message, ModelRequest  # noqa: E402
from handrail.providers._litellm import litellm  # noqa: E402
from handrail.providers.litellm import LiteLLMModel  # noqa: E402

MODEL = "openai/gpt-4o-mini"
TARGET_MS = 0.3


class Receipt(BaseModel):
    company: str = Field(description="The seller's name")
    date: str | None = Field(None, description="The receipt date as printed")
    address: str | None = None
    total: float | None = None


def _requests() -> dict[str, tuple[ModelRequest, str]]:
    messages = (
        Message(role="system", content="You triage customer messages for an online bank."),
        Message(role="user", content="I was charged twice for the same card payment yesterday."),
    )
    return {
        "classify": (
            ModelRequest(
                node="intent",
                kind="classify",
                messages=messages,
                labels=("card_payment_fee_charged", "transaction_charged_twice", "refund"),
            ),
            "transaction_charged_twice",
        ),
        "extract": (
            ModelRequest(
                node="receipt",
                kind="extract",
                messages=messages,
                output_type=Receipt,
                output_schema=Receipt.model_json_schema(),
            ),
            json.dumps({"company": "ACME", "date": "01/02/2019", "address": None, "total": 9.5}),
        ),
    }


async def _measure(calls: int, rounds: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, (request, answer) in _requests().items():
        model = LiteLLMModel(MODEL, confidence="none", api_key="sk-bench", mock_response=answer)
        kwargs = model._kwargs(request)
        bare_kwargs = {k: v for k, v in kwargs.items() if not k.startswith("_handrail")}
        for _ in range(20):  # warm both paths (imports, caches)
            await litellm.acompletion(**bare_kwargs)
            await model.generate(request)
        bare: list[float] = []
        ours: list[float] = []
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(calls):
                await litellm.acompletion(**bare_kwargs)
            bare.append((time.process_time() - start) / calls * 1000)
            start = time.process_time()
            for _ in range(calls):
                await model.generate(request)
            ours.append((time.process_time() - start) / calls * 1000)
        bare_ms = statistics.median(bare)
        ours_ms = statistics.median(ours)
        results[name] = {
            "bare_litellm_ms": round(bare_ms, 4),
            "litellm_model_ms": round(ours_ms, 4),
            "overhead_ms": round(ours_ms - bare_ms, 4),
        }
    return results


def measure(quick: bool = False) -> dict[str, Any]:
    """The per-call figures; `litellm_overhead_ms_per_call` is the larger of the two requests."""
    calls, rounds = (100, 3) if quick else (300, 7)
    per_request = asyncio.run(_measure(calls, rounds))
    return {
        "litellm_overhead_ms_per_call": max(r["overhead_ms"] for r in per_request.values()),
        "requests": per_request,
        "calls_per_round": calls,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (CI smoke run)")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    figures = measure(quick=args.quick)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{'request':<10} {'bare litellm ms':>16} {'LiteLLMModel ms':>16} {'overhead ms':>12}")
    for name, row in figures["requests"].items():
        print(
            f"{name:<10} {row['bare_litellm_ms']:>16.3f} {row['litellm_model_ms']:>16.3f} "
            f"{row['overhead_ms']:>12.3f}"
        )
    verdict = "meets" if figures["litellm_overhead_ms_per_call"] <= TARGET_MS else "misses"
    print(
        f"litellm_overhead_ms_per_call {figures['litellm_overhead_ms_per_call']:.3f} "
        f"({verdict} the target of <= {TARGET_MS} ms CPU per call)"
    )


if __name__ == "__main__":
    main()
