"""Notifications: an outbox row per event and channel, written with the event it announces,
and one durable send per row (docs/notifications.md).

```python
from handrail.notify import Notifications, Slack, Webhook, Email

notify = Notifications(
    base_url="https://inbox.example.com",
    channels=[Slack(name="ops", url_env="SLACK_WEBHOOK_URL", events=["review.waiting"])],
)
async with DurableRunner(pipeline, notify=notify) as runner: ...   # writes the outbox rows
dispatch_due(runner.sql, notify)                                   # sends them (once)
```

- `channels.py`: `Webhook` (signed JSON), `Slack` (Mattermost too), `Email` (SMTP);
- `messages.py`: outbox rows rendered to a `Message` (reasons and inbox links, no document text);
- `config.py`: `Notifications`, `Backoff`, `load_notifications` (`[tool.handrail.notify]`);
- `dispatch.py`: `dispatch_due` (one round) and `Dispatcher` (rounds on a background thread).

The outbox rows themselves are written by the store (`handrail.durable.outbox`, a layer below).
"""

from handrail.durable.outbox import EVENTS, OutboxRow, Route
from handrail.notify.channels import (
    Channel,
    DeliveryFailed,
    Email,
    Message,
    Slack,
    Webhook,
    sign,
    verify,
)
from handrail.notify.config import Backoff, Notifications, load_notifications
from handrail.notify.dispatch import Dispatched, Dispatcher, dispatch_due

__all__ = [
    "EVENTS",
    "Backoff",
    "Channel",
    "DeliveryFailed",
    "Dispatched",
    "Dispatcher",
    "Email",
    "Message",
    "Notifications",
    "OutboxRow",
    "Route",
    "Slack",
    "Webhook",
    "dispatch_due",
    "load_notifications",
    "sign",
    "verify",
]
