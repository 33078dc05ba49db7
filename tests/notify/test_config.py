"""`[tool.handrail.notify]` in pyproject.toml: channels, and secrets only by the name of an
environment variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from handrail.exceptions import InputError
from handrail.notify import Email, Notifications, Slack, Webhook, load_notifications

CONFIG = """
[tool.handrail.notify]
base_url = "https://inbox.example.com"
retry_first_seconds = 10

[[tool.handrail.notify.channels]]
name = "ops"
kind = "slack"
url_env = "SLACK_WEBHOOK_URL"
events = ["review.waiting", "review.escalated"]
queues = ["default"]
digest_seconds = 300

[[tool.handrail.notify.channels]]
name = "crm"
kind = "webhook"
url = "https://crm.example.com/hooks/handrail"
secret_env = "CRM_HOOK_SECRET"

[[tool.handrail.notify.channels]]
name = "leads"
kind = "email"
host = "smtp.example.com"
port = 465
security = "ssl"
sender = "handrail@example.com"
to = ["leads@example.com"]
username_env = "SMTP_USER"
password_env = "SMTP_PASSWORD"
ca_file = "certs/smtp-ca.pem"
events = ["review.due_soon", "run.failed", "trigger.failed"]
remind_before_seconds = 1800
"""


def test_channels_are_read_from_pyproject(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(CONFIG)
    notify = load_notifications(path)
    assert notify is not None
    assert notify.base_url == "https://inbox.example.com"
    assert notify.retry.first == timedelta(seconds=10)
    ops, crm, leads = notify.channels
    assert isinstance(ops, Slack) and ops.url_env == "SLACK_WEBHOOK_URL"
    assert ops.digest == timedelta(minutes=5) and ops.queues == ("default",)
    assert isinstance(crm, Webhook) and crm.secret_env == "CRM_HOOK_SECRET"
    assert isinstance(leads, Email) and leads.security == "ssl"
    assert leads.ca_file == "certs/smtp-ca.pem"
    assert leads.remind_before == timedelta(minutes=30)
    assert [r.channel for r in notify.routes] == ["ops", "crm", "leads"]
    assert notify.routes[0].events == frozenset({"review.waiting", "review.escalated"})


def test_no_file_or_no_table_means_no_notifications(tmp_path: Path) -> None:
    assert load_notifications(tmp_path / "pyproject.toml") is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_notifications(tmp_path / "pyproject.toml") is None


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ('kind = "webhook"\nurl = "https://x"\nsecret = "abc123"', "secret would put a secret"),
        ('kind = "slack"\nurl = "https://hooks.slack.com/T/B/X"', "url would put a secret"),
        ('kind = "email"\nhost = "h"\nsender = "a@b"\nto = ["c@d"]\npassword = "pw"', "password"),
        ('kind = "webhook"\nurl = "https://x"\nretries = 3', "unknown keys retries"),
        ('kind = "pager"', "kind must be webhook, slack or email"),
        (
            'kind = "email"\nhost = "h"\nsender = "a@b"\nto = ["c@d"]\nsecurity = "none"\n'
            'ca_file = "ca.pem"',
            "ca_file is for a TLS server; use security starttls or ssl",
        ),
        ('kind = "webhook"\nurl = "https://x"\nevents = ["review.lost"]', "unknown events"),
    ],
)
def test_a_wrong_channel_is_refused_with_the_fix(tmp_path: Path, entry: str, message: str) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(f'[[tool.handrail.notify.channels]]\nname = "c"\n{entry}\n')
    with pytest.raises(InputError, match=message) as caught:
        load_notifications(path)
    assert "abc123" not in str(caught.value) and 'pw"' not in str(caught.value)


def test_channel_names_are_unique_and_the_lease_outlasts_a_send() -> None:
    with pytest.raises(ValueError, match="given twice: a"):
        Notifications(
            channels=[Webhook(name="a", url="http://x"), Webhook(name="a", url="http://y")]
        )
    with pytest.raises(ValueError, match="lease"):
        Notifications(
            channels=[Webhook(name="a", url="http://x", timeout=60)], lease=timedelta(minutes=1)
        )
