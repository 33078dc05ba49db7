"""`[tool.handrail.triggers]` and `Triggers` declared beside a pipeline: what is read, what is
refused (secrets in the file, unknown keys, a bad cron, a name given twice), and
`handrail triggers list` showing each trigger with its last pick-up and last error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from handrail.cli.commands import configured_triggers
from handrail.cli.main import app
from handrail.durable import SqlStore
from handrail.exceptions import InputError
from handrail.triggers.config import Folder, Mailbox, Triggers, load_triggers
from handrail.triggers.schedule import Schedule
from handrail.triggers.state import record_error, record_pickup

ROOT = Path(__file__).resolve().parents[2]
HAPPY = str(ROOT / "tests" / "pipelines" / "happy.py") + ":pipeline"

FULL = """
[tool.handrail.triggers]
http = ["crm"]
[[tool.handrail.triggers.folders]]
path = "inbox"
recursive = true
settle_seconds = 0.5
[[tool.handrail.triggers.mailboxes]]
name = "support"
host = "imap.example.com"
username = "support@example.com"
password_env = "SUPPORT_IMAP_PASSWORD"
move_to = "Taken"
[[tool.handrail.triggers.schedules]]
name = "daily"
cron = "0 6 * * 1-5"
timezone = "Europe/Paris"
text = "Open tickets as of {scheduled_at}"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_kind_is_read_from_pyproject(tmp_path: Path) -> None:
    triggers = load_triggers(write(tmp_path, FULL))
    assert list(triggers.http) == ["crm"]
    assert triggers.folders == [Folder(path="inbox", recursive=True, settle_seconds=0.5)]
    (box,) = triggers.mailboxes
    assert (box.host, box.username, box.password_env, box.move_to) == (
        "imap.example.com",
        "support@example.com",
        "SUPPORT_IMAP_PASSWORD",
        "Taken",
    )
    (daily,) = triggers.schedules
    assert (daily.cron, daily.timezone) == ("0 6 * * 1-5", "Europe/Paris")
    assert [kind for _, kind in triggers.named()] == ["http", "folder", "mailbox", "schedule"]
    assert triggers.named()[0] == ("http:crm", "http")


def test_no_file_or_no_table_is_no_triggers(tmp_path: Path) -> None:
    assert not load_triggers(tmp_path / "missing.toml")
    assert not load_triggers(write(tmp_path, "[tool.other]\nx = 1\n"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[tool.handrail.triggers]\nfolder = "inbox"\n',
            "unknown keys folder",
        ),
        (
            '[[tool.handrail.triggers.mailboxes]]\nname = "m"\nhost = "h"\nusername = "u"\n'
            'password = "hunter2"\n',
            "password would put a secret in the config file",
        ),
        (
            '[[tool.handrail.triggers.folders]]\npath = "a"\ncolour = "red"\n',
            "unknown keys colour",
        ),
        (
            '[[tool.handrail.triggers.schedules]]\nname = "s"\ncron = "every day"\n',
            "`every day` is not a cron expression",
        ),
        (
            '[[tool.handrail.triggers.schedules]]\nname = "s"\ncron = "0 6 * * *"\n'
            'timezone = "Mars/Olympus"\n',
            "unknown time zone `Mars/Olympus`",
        ),
        (
            '[[tool.handrail.triggers.schedules]]\nname = "s"\ncron = "* * * * *"\n'
            '[[tool.handrail.triggers.schedules]]\nname = "s"\ncron = "0 * * * *"\n',
            "schedule given twice: s",
        ),
        (
            '[[tool.handrail.triggers.schedules]]\nname = "s"\ncron = "* * * * *"\n'
            'text = "at {when}"\n',
            "may only use {scheduled_at} and {schedule}",
        ),
        (
            '[[tool.handrail.triggers.folders]]\npath = "a"\ninterval_seconds = 0\n',
            "interval_seconds must be a number of seconds above 0",
        ),
        (
            '[[tool.handrail.triggers.mailboxes]]\nname = "m"\nhost = "h"\npassword_env = "P"\n',
            "give `username` or `username_env`",
        ),
    ],
)
def test_a_wrong_table_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError) as raised:
        load_triggers(write(tmp_path, text))
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)


def test_a_mailbox_login_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    box = Mailbox(name="m", host="h", username_env="M_USER", password_env="M_PASSWORD")
    monkeypatch.delenv("M_USER", raising=False)
    with pytest.raises(InputError, match="set the environment variable M_USER"):
        box.login()
    monkeypatch.setenv("M_USER", "ana")
    monkeypatch.setenv("M_PASSWORD", "s3cret-value")
    assert box.login() == ("ana", "s3cret-value")
    assert "s3cret-value" not in repr(box)


def test_triggers_beside_the_pipeline_merge_with_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = tmp_path / "support.py"
    code.write_text(
        "from tests.pipelines.happy import pipeline\n"
        "from handrail.triggers.config import Folder, Triggers\n"
        "from handrail.triggers.schedule import Schedule\n"
        "triggers = Triggers(folders=[Folder(path='drop')],\n"
        "                    schedules=[Schedule(name='hourly', cron='0 * * * *')])\n",
        encoding="utf-8",
    )
    write(tmp_path, FULL)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(ROOT))
    merged = configured_triggers(f"{code}:pipeline")
    assert [f.path for f in merged.folders] == ["inbox", "drop"]
    assert [s.name for s in merged.schedules] == ["daily", "hourly"]
    clash = Triggers(schedules=[Schedule(name="daily", cron="* * * * *")], where="--x")
    with pytest.raises(InputError, match="schedule given twice: daily"):
        configured_triggers(f"{code}:pipeline", extra=clash)


def test_triggers_list_shows_configured_and_recorded_triggers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, FULL)
    db = f"sqlite:///{tmp_path / 'handrail.db'}"
    runner = CliRunner()
    empty = runner.invoke(app, ["triggers", "list", "--db", db, "--json"])
    assert empty.exit_code == 0, empty.output
    rows = [json.loads(line) for line in empty.output.splitlines()]
    assert [r["name"] for r in rows] == [
        "http:crm",
        f"folder:{(tmp_path / 'inbox').as_posix()}",
        "mailbox:support",
        "schedule:daily",
    ]
    assert all(r["last_pickup_at"] is None and r["configured"] for r in rows)
    assert not (tmp_path / "handrail.db").exists()  # listing creates no database

    with SqlStore(db) as store:
        with store.transaction() as conn:
            record_pickup(conn, name="http:crm", kind="http", pipeline="happy")
            record_pickup(conn, name="folder:/old/drop", kind="folder", pipeline="happy")
        record_error(
            store,
            name="mailbox:support",
            kind="mailbox",
            pipeline="happy",
            error="LOGIN failed: check SUPPORT_IMAP_PASSWORD",
            key="login",
        )
    listed = runner.invoke(app, ["triggers", "list", "--db", db, "--json"])
    rows = {r["name"]: r for r in map(json.loads, listed.output.splitlines())}
    assert rows["http:crm"]["last_pickup_at"] is not None
    assert rows["http:crm"]["pipeline"] == "happy"
    assert rows["mailbox:support"]["last_error"] == "LOGIN failed: check SUPPORT_IMAP_PASSWORD"
    assert rows["folder:/old/drop"]["configured"] is False
    table = runner.invoke(app, ["triggers", "list", "--db", db], env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    assert "folder:/old/drop (not configured here)" in table.output
    assert "LOGIN failed" in table.output
    assert "never" in table.output  # the schedule has not fired


def test_the_configuration_in_docs_triggers_md_is_read_as_written(tmp_path: Path) -> None:
    import re

    doc = (ROOT / "docs" / "triggers.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Configuration") : doc.index("## Trigger state")]
    [toml] = re.findall(r"```toml\n(.*?)```", section, re.S)
    triggers = load_triggers(write(tmp_path, toml))
    assert [kind for _, kind in triggers.named()] == ["http", "folder", "mailbox", "schedule"]
    [code] = re.findall(r"```python\n(.*?)```", section, re.S)
    namespace: dict[str, object] = {}
    exec(code, namespace)
    assert isinstance(namespace["triggers"], Triggers)
    schedules = doc[doc.index("## Schedules") : doc.index("## Configuration")]
    [daily] = re.findall(r"```toml\n(.*?)```", schedules, re.S)
    assert load_triggers(write(tmp_path, daily)).schedules[0].timezone == "Europe/Paris"
