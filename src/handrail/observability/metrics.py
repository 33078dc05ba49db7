"""Metrics per run, step, review and model call, following the OpenTelemetry GenAI conventions.

The model-call instruments are the GenAI client metrics (`gen_ai.client.token.usage`,
`gen_ai.client.operation.duration`); what only handrail knows is `handrail.*`. Every attribute is
low-cardinality (pipeline, node, kind, status, model, error class): never a run, document or
review id. `docs/metrics.md` lists the instruments and the queries they answer.

Run segments. A run paused for review and resumed later reports `run_finished` twice: once as
`needs_review`, once with its final status. `RunRecord.duration_s` is cumulative, so a resumed
segment records its own duration (measured from its `run_started`), never the total again:
`handrail.run.duration` sums to the processing time of all runs, and its count is the number of
segments. `handrail.runs` counts each run once, at its terminal status, and each pause apart as
`needs_review`.

Steps settled by a review decision (the record a resumed run writes for the paused node) are not
recorded: they did no work, and the node's execution was already recorded as `needs_review`;
`handrail.review.wait` measures the person's part.

The hooks hold no lock: the per-run map and the attribute cache are plain dicts whose single
`get`/`pop`/assignment is atomic, and a race only builds the same attribute dict twice.
"""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from opentelemetry import metrics
from opentelemetry.metrics import Counter, Histogram, MeterProvider
from opentelemetry.util.types import AttributeValue

from handrail._version import __version__
from handrail.core.hooks import Hooks
from handrail.core.records import RunStatus, StepStatus
from handrail.observability.spans import provider_name

if TYPE_CHECKING:  # annotations only
    from handrail.core.model import ModelResponse
    from handrail.core.records import ReviewDecision, ReviewRequest, RunRecord, StepRecord
    from handrail.core.state import Document

Attributes = dict[str, AttributeValue]

TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.REJECTED})
"""Run statuses counted as a finished run; `needs_review` is counted as a pause."""

# Bucket advice (`explicit_bucket_boundaries_advisory`), overridable with an SDK View.
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip
"""GenAI semconv boundaries for `gen_ai.client.token.usage`."""
CALL_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
"""GenAI semconv boundaries for `gen_ai.client.operation.duration`."""
STEP_DURATION_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
)  # fmt: skip
"""Rules take microseconds, LLM steps seconds, a step with retries minutes."""
RUN_DURATION_BUCKETS = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip
"""A rule-only pipeline runs in milliseconds, an LLM pipeline in seconds to minutes."""
REVIEW_WAIT_BUCKETS = (
    1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400, 172800, 345600, 604800,
)  # fmt: skip
"""A person decides in minutes to days (up to a week)."""

INSTRUMENTS: dict[str, tuple[str, tuple[float, ...] | None, str]] = {
    # name: (unit, bucket advice, description)
    "handrail.run.duration": ("s", RUN_DURATION_BUCKETS, "Processing time of a run segment."),
    "handrail.runs": ("{run}", None, "Runs at a terminal status, and pauses for review."),
    "handrail.step.duration": ("s", STEP_DURATION_BUCKETS, "Execution time of a node in a run."),
    "handrail.reviews": ("{review}", None, "Reviews requested from a person."),
    "handrail.review.wait": ("s", REVIEW_WAIT_BUCKETS, "Time from a review to its decision."),
    "gen_ai.client.token.usage": (
        "{token}",
        TOKEN_BUCKETS,
        "Number of input and output tokens used.",
    ),
    "gen_ai.client.operation.duration": ("s", CALL_DURATION_BUCKETS, "GenAI operation duration."),
    "handrail.cost": ("USD", None, "Cost of model calls whose cost is known."),
    "handrail.cost.unknown": ("{call}", None, "Model calls whose cost is unknown."),
}

# Attribute names per instrument; a value of None leaves its attribute out.
_RUN = ("gen_ai.workflow.name", "handrail.run.status")
_RUN_COUNT = (*_RUN, "handrail.run.reviewed")
_STEP = (
    "gen_ai.workflow.name",
    "handrail.node.name",
    "handrail.node.kind",
    "handrail.step.status",
    "error.type",
)
_NODE = ("gen_ai.workflow.name", "handrail.node.name")
_REVIEW_WAIT = (*_NODE, "handrail.review.decision")
_MODEL = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model")
_CALL = (*_MODEL, "gen_ai.response.model", "error.type")
_TOKENS = (*_MODEL, "gen_ai.response.model", "gen_ai.token.type")
_COST = (*_NODE, *_MODEL[1:])

_provider = functools.lru_cache(maxsize=256)(provider_name)


class MetricsHooks(Hooks):
    """Records run, step, review and model-call metrics with the OpenTelemetry metrics API.

    `meter_provider` defaults to the global one (`opentelemetry.metrics.get_meter_provider()`),
    which is a no-op until an SDK is configured. Instruments are created once, here.
    """

    def __init__(self, *, meter_provider: MeterProvider | None = None) -> None:
        meter = metrics.get_meter("handrail", __version__, meter_provider=meter_provider)

        def histogram(name: str) -> Histogram:
            unit, buckets, description = INSTRUMENTS[name]
            return meter.create_histogram(
                name, unit, description, explicit_bucket_boundaries_advisory=buckets
            )

        def counter(name: str) -> Counter:
            unit, _, description = INSTRUMENTS[name]
            return meter.create_counter(name, unit, description)

        self._run_duration = histogram("handrail.run.duration")
        self._runs_count = counter("handrail.runs")
        self._step_duration = histogram("handrail.step.duration")
        self._reviews = counter("handrail.reviews")
        self._review_wait = histogram("handrail.review.wait")
        self._tokens = histogram("gen_ai.client.token.usage")
        self._call_duration = histogram("gen_ai.client.operation.duration")
        self._cost = counter("handrail.cost")
        self._cost_unknown = counter("handrail.cost.unknown")
        self._runs: dict[str, tuple[str, float | None]] = {}
        """Run id -> (pipeline, perf_counter at a resume or None), from run_started to
        run_finished: steps and calls do not carry the pipeline."""
        self._cache: dict[tuple[tuple[str, ...], tuple[AttributeValue | None, ...]], Attributes]
        self._cache = {}

    def _attributes(self, names: tuple[str, ...], *values: AttributeValue | None) -> Attributes:
        """The attribute dict for these values, built once (the values are low-cardinality)."""
        key = (names, values)
        attributes = self._cache.get(key)
        if attributes is None:
            attributes = {n: v for n, v in zip(names, values, strict=True) if v is not None}
            self._cache[key] = attributes
        return attributes

    def _pipeline(self, run_id: str) -> str | None:
        entry = self._runs.get(run_id)
        return entry[0] if entry is not None else None

    # --- runs ----------------------------------------------------------------------------------

    def run_started(
        self, *, run_id: str, pipeline: str, document: Document, resumed: bool, **_: Any
    ) -> None:
        self._runs[run_id] = (pipeline, time.perf_counter() if resumed else None)

    def run_finished(self, *, run: RunRecord, **_: Any) -> None:
        entry = self._runs.pop(run.run_id, None)
        resumed_at = entry[1] if entry is not None else None
        # RunRecord.duration_s of a resumed run includes the segments before the pause.
        duration = time.perf_counter() - resumed_at if resumed_at is not None else run.duration_s
        status = run.status.value
        self._run_duration.record(duration, self._attributes(_RUN, run.pipeline, status))
        if run.status in TERMINAL:
            reviewed = bool(run.decisions)
            self._runs_count.add(1, self._attributes(_RUN_COUNT, run.pipeline, status, reviewed))
        elif run.status is RunStatus.NEEDS_REVIEW:
            self._runs_count.add(1, self._attributes(_RUN, run.pipeline, status))

    # --- steps and reviews ---------------------------------------------------------------------

    def step_finished(self, *, step: StepRecord, **_: Any) -> None:
        if step.review_id is not None and step.status is not StepStatus.NEEDS_REVIEW:
            return  # settled by a review decision: no work done, already recorded when it paused
        attributes = self._attributes(
            _STEP,
            self._pipeline(step.run_id),
            step.node,
            step.kind,
            step.status.value,
            step.error.type if step.error is not None else None,
        )
        self._step_duration.record(step.duration_s, attributes)

    def review_requested(self, *, request: ReviewRequest, **_: Any) -> None:
        self._reviews.add(1, self._attributes(_NODE, request.pipeline, request.node))

    def review_decided(self, *, request: ReviewRequest, decision: ReviewDecision, **_: Any) -> None:
        decided_at = decision.decided_at or datetime.now(UTC)
        try:
            wait = (decided_at - request.created_at).total_seconds()
        except TypeError:  # a naive decided_at against an aware created_at: no honest wait
            return
        attributes = self._attributes(_REVIEW_WAIT, request.pipeline, request.node, decision.action)
        self._review_wait.record(max(wait, 0.0), attributes)

    # --- model calls ---------------------------------------------------------------------------

    def model_call_finished(
        self,
        *,
        run_id: str,
        node: str,
        model: str,
        response: ModelResponse | None,
        error: BaseException | None,
        duration_s: float,
        **_: Any,
    ) -> None:
        provider = _provider(model)
        if response is None:
            error_type = type(error).__name__ if error is not None else "_OTHER"
            attributes = self._attributes(_CALL, "chat", provider, model, None, error_type)
            self._call_duration.record(duration_s, attributes)
            return
        answered = response.model or model
        self._call_duration.record(
            duration_s, self._attributes(_CALL, "chat", provider, model, answered, None)
        )
        usage = response.usage
        self._tokens.record(
            usage.input_tokens,
            self._attributes(_TOKENS, "chat", provider, model, answered, "input"),
        )
        self._tokens.record(
            usage.output_tokens,
            self._attributes(_TOKENS, "chat", provider, model, answered, "output"),
        )
        attributes = self._attributes(_COST, self._pipeline(run_id), node, provider, model)
        if usage.cost is None:
            self._cost_unknown.add(1, attributes)
        else:
            self._cost.add(usage.cost, attributes)
