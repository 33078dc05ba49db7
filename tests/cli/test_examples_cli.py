"""`handrail examples list|export|remove`: the examples reviews made, listed (read-only),
exported as JSONL that `Examples` reads back, and removed."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from tests.pipelines import learning

from handrail import Examples, ReviewDecision, Runner
from handrail.durable import SqlStore

from .conftest import Invoke
from .test_database_files import handrail

LOST = "I lost my card yesterday"
ARRIVAL = "when will my new card arrive"
REFUND = "please refund the double charge"


def decided(url: str) -> list[str]:
    """Three reviews of `intent`, approved, edited and rejected; their ids."""

    async def go() -> list[str]:
        with SqlStore(url) as store:
            runner = Runner(learning.intents(), model=learning.model(), store=store)
            ids = []
            for text in (LOST, ARRIVAL, REFUND):
                record = await runner.run(text)
                assert record.review is not None
                ids.append(record.review.review_id)
            await runner.decide(ids[0], ReviewDecision.approve(reviewer="ann"))
            await runner.decide(ids[1], ReviewDecision.edit("card_arrival", reviewer="ann"))
            await runner.decide(ids[2], ReviewDecision.reject(reviewer="bob"))
            return ids

    return asyncio.run(go())


def test_list_export_and_remove(cli: Invoke, tmp_path: Path) -> None:
    url = os.environ["HANDRAIL_DATABASE_URL"]
    approved, edited, rejected = decided(url)

    listed = cli("examples", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    rows = listed.json_lines()
    assert [(r["id"], r["node"], r["verdict"], r["output"]) for r in rows] == [
        (approved, "intent", "approved", "card_lost"),
        (edited, "intent", "edited", "card_arrival"),
        (rejected, "intent", "rejected", "card_lost"),
    ]
    assert rows[0]["text"] == LOST and rows[0]["removed_at"] is None
    table = cli("examples", "list", "--node", "intent")
    assert table.exit_code == 0 and approved in table.stdout and "rejected" in table.stdout
    assert cli("examples", "list", "--node", "other", "--json").stdout == ""

    out = tmp_path / "intent.jsonl"
    exported = cli("examples", "export", "--node", "intent", "--out", str(out))
    assert exported.exit_code == 0, exported.stderr
    assert "wrote 2 example(s) of node intent" in exported.stderr
    pool = Examples(out).pool("intent")
    assert [(e.id, e.text, e.output) for e in pool] == [
        (approved, LOST, "card_lost"),
        (edited, ARRIVAL, "card_arrival"),
    ]
    assert cli("examples", "export", "--node", "intent").stdout == out.read_text()

    removed = cli("examples", "remove", approved, "--json")
    assert removed.exit_code == 0, removed.stderr
    assert removed.json_lines() == [{"id": approved, "removed": True}]
    assert [r["id"] for r in cli("examples", "list", "--json").json_lines()] == [edited, rejected]
    everything = cli("examples", "list", "--removed", "--json").json_lines()
    assert everything[0]["removed_reason"] == "removed by hand"

    again = cli("examples", "remove", approved)
    assert again.exit_code == 1
    assert f"no live example `{approved}`" in again.stderr
    assert "it was removed at" in again.stderr
    unknown = cli("examples", "remove", "rv-nope")
    assert unknown.exit_code == 1 and "handrail examples list" in unknown.stderr


def test_reading_a_database_not_made_yet_creates_nothing(cli: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "none" / "handrail.db"
    listed = cli("examples", "list", "--db", str(db))
    assert listed.exit_code == 0 and "no examples" in listed.stdout
    assert cli("examples", "export", "--node", "intent", "--db", str(db)).stdout == ""
    assert not db.parent.exists()


def test_read_only_commands_work_on_a_read_only_database(tmp_path: Path) -> None:
    db = tmp_path / "state" / "handrail.db"
    decided(f"sqlite:///{db}")
    out = tmp_path / "out.jsonl"
    listed = handrail(
        tmp_path, "examples", "list", "--db", str(db), "--json", read_only=(db.parent,)
    )
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["verdict"] for line in listed.stdout.splitlines()] == [
        "approved",
        "edited",
        "rejected",
    ]
    exported = handrail(
        tmp_path,
        "examples",
        "export",
        "-n",
        "intent",
        "--db",
        str(db),
        "-o",
        str(out),
        read_only=(db.parent,),
    )
    assert exported.returncode == 0, exported.stderr
    assert len(Examples(out).pool("intent")) == 2
