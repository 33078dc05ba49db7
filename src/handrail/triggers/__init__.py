"""Triggers: documents start runs when they arrive (HTTP, a watched folder, a mailbox, a
schedule), each taken in exactly once (docs/triggers.md).

Every trigger calls the one intake path, `handrail.triggers.intake.Intake`: the receipt keyed at
the source and the queued durable run commit in one transaction. `triggers.http`: the HTTP
trigger's sources and signatures (its route is `handrail.web.intake`); `triggers.state`: each
trigger's last pick-up and last error."""
