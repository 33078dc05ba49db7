"""Starting a pipeline's configured triggers in a process (`handrail serve`, `handrail worker`).

```python
running = start_triggers(intake, triggers)       # folder and mailbox pollers, on threads
DurableRunner(..., schedules=running.schedules)  # schedules are fired by DBOS in the worker
running.stop()
```

HTTP sources are not started here: they are routes of `handrail serve`'s app.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from handrail.durable.schedules import Scheduled
from handrail.triggers.config import Mailbox, Triggers
from handrail.triggers.folder import FolderTrigger, FolderWatch
from handrail.triggers.intake import Intake

if TYPE_CHECKING:
    from handrail.triggers.mailbox import MailboxWatch


@dataclass(kw_only=True)
class Running:
    """The triggers started for one pipeline."""

    intake: Intake
    folders: list[FolderWatch] = field(default_factory=list)
    mailboxes: list[MailboxWatch] = field(default_factory=list)
    schedules: list[Scheduled] = field(default_factory=list)

    def lines(self) -> list[str]:
        """One line per trigger, for the command's start-up output."""
        said = [f"takes documents from the folder {w.trigger.folder}" for w in self.folders]
        said += [f"takes documents from the mailbox {w.trigger.source}" for w in self.mailboxes]
        said += [f"runs on the schedule {s.name} ({s.cron})" for s in self.schedules]
        return said

    def stop(self) -> None:
        for folder in self.folders:
            folder.stop()
        for mailbox in self.mailboxes:
            mailbox.stop()


def start_triggers(intake: Intake, triggers: Triggers) -> Running:
    """Start `triggers`' folder and mailbox pollers for `intake`'s pipeline, and make its
    schedules (for the worker's `DurableRunner`). A mailbox whose password is not in the
    environment is refused before anything starts."""
    mailboxes = []
    for box in triggers.mailboxes:
        from handrail.triggers.mailbox import MailboxTrigger, MailboxWatch

        username, password = box.login()
        reader = MailboxTrigger(
            intake,
            host=box.host,
            username=username,
            password=password,
            port=box.port,
            folder=box.folder,
            security=box.security,
            ssl_context=_context(box),
            name=box.name,
            move_to=box.move_to,
        )
        mailboxes.append(MailboxWatch(trigger=reader, interval=box.interval_seconds))
    running = Running(intake=intake, schedules=[s.scheduled(intake) for s in triggers.schedules])
    try:
        for folder in triggers.folders:
            trigger = FolderTrigger(
                intake,
                folder.path,
                name=folder.name,
                settle=folder.settle_seconds,
                recursive=folder.recursive,
            )
            watch = FolderWatch(trigger=trigger, interval=folder.interval_seconds)
            running.folders.append(watch.start())
        for mailbox in mailboxes:
            running.mailboxes.append(mailbox.start())
    except BaseException:
        running.stop()
        raise
    return running


def _context(box: Mailbox) -> ssl.SSLContext | None:
    if box.ca_file is None:
        return None
    return ssl.create_default_context(cafile=box.ca_file)


__all__ = ["Running", "start_triggers"]
