"""Triggers: documents start runs when they arrive (HTTP, a watched folder, a mailbox, a
schedule), each taken in exactly once (docs/triggers.md)."""
