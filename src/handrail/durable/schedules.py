"""Cron schedules a pipeline's workers fire, on DBOS's database-stored schedules.

```python
tick = Scheduled(name="daily", cron="0 6 * * *", fire=lambda at: print(at))
async with DurableRunner(pipeline, kind="worker", schedules=[tick]) as runner:
    await runner.serve()          # applies the schedules, then DBOS fires each tick once
```

Each schedule is stored in DBOS's schedule table under `handrail:<pipeline>:<name>`. DBOS's
scheduler (in every launched process) enqueues one workflow per tick, its id derived from the
schedule and the tick (`sched-<schedule>-<time>`), so a tick is enqueued once however many
workers run; the workflow (`handrail.schedule:<pipeline>`) waits in the pipeline's queue, which
only that pipeline's workers take from, and calls the schedule's `fire` with the tick's time.
`fire` must be idempotent for a tick: a worker that dies while firing leaves the workflow
pending, and another worker runs it again (handrail's schedule trigger keys its receipt by the
tick, so the second call answers with the run the first queued).

Applying replaces this pipeline's stored schedules with the worker's own: a schedule removed from
the configuration stops firing once a worker with the new configuration starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from handrail.exceptions import InputError

PREFIX = "handrail:"


@dataclass(frozen=True, kw_only=True, slots=True)
class Scheduled:
    """One cron schedule of a pipeline: `fire(tick)` at each tick, once across workers."""

    name: str
    cron: str
    """Five fields (minute hour day month weekday), or six with seconds first."""
    fire: Callable[[datetime], object]
    timezone: str | None = None
    """The IANA zone the cron is read in (default UTC)."""
    catch_up: bool = False
    """Fire the ticks missed while no worker ran, when a worker starts (DBOS's backfill)."""

    def __post_init__(self) -> None:
        check_cron(self.name, self.cron, self.timezone)


def check_cron(name: str, cron: str, timezone: str | None = None) -> None:
    """Refuse a cron expression or zone DBOS would not take, naming the schedule."""
    from croniter import croniter  # DBOS's own cron reader

    if len(cron.split()) not in (5, 6) or not croniter.is_valid(cron, second_at_beginning=True):
        raise InputError(
            f"schedule `{name}`: `{cron}` is not a cron expression; use five fields "
            "(minute hour day month weekday, e.g. `0 6 * * 1-5`) or six with seconds first"
        )
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise InputError(
                f"schedule `{name}`: unknown time zone `{timezone}`; use an IANA name such as "
                "`Europe/Paris`"
            ) from e


def stored_name(pipeline: str, name: str) -> str:
    """The name of schedule `name` of `pipeline` in DBOS's schedule table."""
    return f"{PREFIX}{pipeline}:{name}"


def schedule_workflow(pipeline: str) -> str:
    """The DBOS workflow name of a tick of one of `pipeline`'s schedules."""
    return f"handrail.schedule:{pipeline}"


__all__ = ["PREFIX", "Scheduled", "check_cron", "schedule_workflow", "stored_name"]
