"""Notifications: an outbox row per event and channel, written with the event it announces,
and one durable send per row (docs/notifications.md)."""
