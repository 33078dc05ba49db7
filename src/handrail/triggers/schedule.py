"""The schedule trigger: a pipeline run on a cron schedule (docs/triggers.md#schedules).

```python
daily = Schedule(name="daily", cron="0 6 * * 1-5", text="Open tickets as of {scheduled_at}")
scheduled = daily.scheduled(intake)      # for DurableRunner(..., schedules=[...])
```

Each tick makes one document: `text` with `{scheduled_at}` (the tick, ISO 8601) and
`{schedule}` filled in, or the file at `file` as it is at the tick (read with its format's
loader and size limit, as `handrail run` reads it). It goes through the one intake path under
the source `schedule:<name>` and the key of the tick, with a run id of its own per tick (the
same text at two ticks is two runs), so a tick fired twice (a worker that died while firing, a
backfill) answers with the run the first queued. A file that is missing or unreadable at a tick
gets the tick's failed run and the trigger's last error, never a silent skip.

DBOS fires the ticks (`handrail.durable.schedules`): once per tick however many workers run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from handrail._utils import derived_id
from handrail.core.state import Document
from handrail.durable.schedules import Scheduled, check_cron
from handrail.exceptions import InputError
from handrail.triggers.intake import Accepted, Intake, read_document

DEFAULT_TEXT = "Scheduled run `{schedule}` for {scheduled_at}."


@dataclass(frozen=True, kw_only=True, slots=True)
class Schedule:
    """A cron schedule that starts a run of the pipeline at each tick."""

    name: str
    cron: str
    """Five fields (minute hour day month weekday), or six with seconds first."""
    text: str | None = None
    """Each tick's document: `{scheduled_at}` and `{schedule}` are filled in."""
    file: str | None = None
    """Or a file, read at each tick (relative to the working directory)."""
    timezone: str | None = None
    """The IANA zone the cron is read in (default UTC)."""
    catch_up: bool = False
    """Fire the ticks missed while no worker ran, when a worker starts."""

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "-_." for c in self.name):
            raise InputError(
                f"schedule name `{self.name}`: use letters, digits, `-`, `_` and `.` only"
            )
        if self.text is not None and self.file is not None:
            raise InputError(f"schedule `{self.name}`: give `text` or `file`, not both")
        check_cron(self.name, self.cron, self.timezone)
        if self.text is not None:
            try:
                self.text.format(scheduled_at="", schedule="")
            except (KeyError, IndexError, ValueError) as e:
                raise InputError(
                    f"schedule `{self.name}`: `text` may only use {{scheduled_at}} and "
                    f"{{schedule}} (double other braces: {{{{ }}}}); {type(e).__name__}: {e}"
                ) from e

    @property
    def source(self) -> str:
        return f"schedule:{self.name}"

    def document(self, at: datetime) -> Document | InputError:
        """The document of the tick at `at`, or why it cannot be made."""
        document_id = f"{self.name}@{at.isoformat()}"
        if self.file is None:
            template = DEFAULT_TEXT if self.text is None else self.text
            text = template.format(scheduled_at=at.isoformat(), schedule=self.name)
            return Document(
                text=text,
                id=document_id,
                source=self.source,
                metadata={"scheduled_at": at.isoformat(), "schedule": self.name},
            )
        path = Path(self.file)
        try:
            data = path.read_bytes()
        except OSError as e:
            return InputError(
                f"schedule `{self.name}`: cannot read `{self.file}` at {at.isoformat()} "
                f"({e.strerror or type(e).__name__}); check the path (relative to where the "
                "worker runs) and its permissions",
                document_id=document_id,
            )
        return read_document(
            data, name=path.name, media_type=None, document_id=document_id, source=self.source
        )

    def fire(self, intake: Intake, at: datetime) -> Accepted:
        """Take the tick at `at` in: its receipt and its run, once however often it fires."""
        key = at.isoformat()
        run_id = derived_id("run", intake.pipeline.name, self.source, key)
        detail = {"scheduled_at": key, "cron": self.cron, "file": self.file}
        return intake.accept(self.source, key, self.document(at), detail=detail, run_id=run_id)

    def scheduled(self, intake: Intake) -> Scheduled:
        """This schedule for `DurableRunner(schedules=...)`, firing through `intake`."""

        def fire(at: datetime) -> None:
            self.fire(intake, at)

        return Scheduled(
            name=self.name,
            cron=self.cron,
            fire=fire,
            timezone=self.timezone,
            catch_up=self.catch_up,
        )


__all__ = ["DEFAULT_TEXT", "Schedule"]
