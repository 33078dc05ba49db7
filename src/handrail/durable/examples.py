"""Reviews that became examples (`learn_from_reviews=True`, docs/learning.md): the store's
methods (`ExampleTables`, mixed into `SqlStore`), the row written in the decision's transaction
(`write`), and `review_examples`, the `ExampleSource` that reads a node's pool back.

One example per decided review, its id the review's. `approved` and `edited` examples are the
ones a node is shown; a `rejected` one is kept as a known wrong answer and never shown. A later
decision on the same document and node replaces the earlier example (marked removed, "replaced
by review X"): a decision that contradicts it reverses it, one that agrees would only show the
same document twice. Removing keeps the row, with when and why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Connection, Engine, insert, select, update

from handrail._utils import now
from handrail.core.examples import Example, ExampleSource, ReviewedExample
from handrail.durable import schema

if TYPE_CHECKING:
    from handrail.durable.store import SqlStore

T = TypeVar("T")

SHOWN = ("approved", "edited")
"""The verdicts whose examples a node is shown."""


def write(conn: Connection, example: ReviewedExample) -> None:
    """Insert `example` in `conn`'s transaction (the decision's), retiring the live example of
    the same document and node it replaces."""
    table = schema.examples
    stamp = example.decided_at
    conn.execute(
        update(table)
        .where(
            table.c.pipeline == example.pipeline,
            table.c.node == example.node,
            table.c.document_hash == example.document_hash,
            table.c.removed_at.is_(None),
        )
        .values(removed_at=stamp, removed_reason=f"replaced by review `{example.review_id}`")
    )
    conn.execute(
        insert(table).values(
            example_id=example.example_id,
            review_id=example.review_id,
            run_id=example.run_id,
            pipeline=example.pipeline,
            pipeline_version=example.pipeline_version,
            node=example.node,
            document_hash=example.document_hash,
            text=example.text,
            output=example.output,
            verdict=example.verdict,
            reviewer=example.reviewer,
            decided_at=stamp,
        )
    )


class ExampleTables:
    """Reading and removing the examples reviews made (mixed into `SqlStore`)."""

    _writer: Engine

    if TYPE_CHECKING:

        def _call(self, work: Callable[[], T]) -> T: ...

        def _read(self, query: Callable[[Connection], T]) -> T: ...

    def list_examples(
        self,
        *,
        pipeline: str | None = None,
        node: str | None = None,
        shown_only: bool = False,
        removed: bool = False,
    ) -> list[ReviewedExample]:
        """Examples, oldest decision first: of a pipeline, of a node; `shown_only`: only those a
        node is shown (approved or edited); `removed`: the removed ones too."""
        table = schema.examples
        query = select(table)
        if pipeline is not None:
            query = query.where(table.c.pipeline == pipeline)
        if node is not None:
            query = query.where(table.c.node == node)
        if shown_only:
            query = query.where(table.c.verdict.in_(SHOWN))
        if not removed:
            query = query.where(table.c.removed_at.is_(None))
        query = query.order_by(table.c.decided_at, table.c.example_id)
        rows = self._call(lambda: self._read(lambda conn: conn.execute(query).all()))
        return [_example(row._mapping) for row in rows]

    def get_example(self, example_id: str) -> ReviewedExample | None:
        """An example by its id (removed or not)."""
        table = schema.examples
        query = select(table).where(table.c.example_id == example_id)
        row = self._call(lambda: self._read(lambda conn: conn.execute(query).first()))
        return None if row is None else _example(row._mapping)

    def remove_example(self, example_id: str, *, reason: str = "removed by hand") -> bool:
        """Stop showing an example (its row stays, with when and why). False when there is no
        live example of that id."""
        table = schema.examples
        stmt = (
            update(table)
            .where(table.c.example_id == example_id, table.c.removed_at.is_(None))
            .values(removed_at=now(), removed_reason=reason)
        )

        def work() -> bool:
            with self._writer.begin() as conn:
                return bool(conn.execute(stmt).rowcount)

        return self._call(work)

    def drop_examples_of_review(self, review_id: str, *, reason: str | None = None) -> int:
        """Remove the live examples a review's decision made, for a decision that was reversed;
        how many. (handrail has no way to reverse a decision yet: this is what one would call.)
        """
        table = schema.examples
        stmt = (
            update(table)
            .where(table.c.review_id == review_id, table.c.removed_at.is_(None))
            .values(removed_at=now(), removed_reason=reason or f"review `{review_id}` reversed")
        )

        def work() -> int:
            with self._writer.begin() as conn:
                return int(conn.execute(stmt).rowcount)

        return self._call(work)


def _example(row: Any) -> ReviewedExample:
    return ReviewedExample(
        example_id=row["example_id"],
        review_id=row["review_id"],
        run_id=row["run_id"],
        pipeline=row["pipeline"],
        pipeline_version=row["pipeline_version"],
        node=row["node"],
        document_hash=row["document_hash"],
        text=row["text"],
        output=row["output"],
        verdict=row["verdict"],
        reviewer=row["reviewer"],
        decided_at=row["decided_at"],
        removed_at=row["removed_at"],
        removed_reason=row["removed_reason"],
    )


def review_examples(
    db: SqlStore | str | PathLike[str] | None = None, *, pipeline: str | None = None
) -> ExampleSource:
    """An `ExampleSource` of the examples reviews made: `source(node)` gives that node's live
    approved and edited examples (of `pipeline`, or of any pipeline with a node of that name),
    oldest first. `db` is a `SqlStore` or its URL (a path: a SQLite file; default as `--db`'s:
    `$HANDRAIL_DATABASE_URL`, else `.handrail/handrail.db`); a database that does not exist
    yet, or has no run records, gives none.

        Classify("intent", labels=[...], learn_from_reviews=True,
                 examples=Examples(review_examples(".handrail/handrail.db"), k=10))

    Read when the pipeline is built, like every source: build it again to take in new ones.
    """

    def source(node: str) -> list[Example]:
        if db is not None and not isinstance(db, str | PathLike):
            return _read(db, node, pipeline)
        from handrail.durable.engine import parse
        from handrail.durable.runner import database_url
        from handrail.durable.store import SqlStore

        url = database_url(db)
        parsed, _ = parse(url)
        if parsed.get_backend_name() == "sqlite" and not (
            parsed.database and Path(parsed.database).expanduser().is_file()
        ):
            return []  # nothing decided yet; reading must not create the file
        with SqlStore(url, read_only=True) as store:
            return [] if store.empty else _read(store, node, pipeline)

    if db is None or isinstance(db, str | PathLike):
        from handrail.durable.engine import parse
        from handrail.durable.runner import database_url

        shown = parse(database_url(db))[1]  # the password masked: it is shown in messages
    else:
        shown = db.url
    source.__qualname__ = f"review_examples({shown})"
    return source


def _read(store: SqlStore, node: str, pipeline: str | None) -> list[Example]:
    found = store.list_examples(pipeline=pipeline, node=node, shown_only=True)
    return [e.example() for e in found]


def chain(*sources: Iterable[Example | Mapping[str, Any]] | ExampleSource) -> ExampleSource:
    """One source of several: lists of examples (or mappings) as they are, and `ExampleSource`s
    called with the node's name, in order. `Examples(chain(read_jsonl(path),
    review_examples(db)))` shows a node both a file's examples and the reviews'."""

    def source(node: str) -> list[Example | Mapping[str, Any]]:
        items: list[Example | Mapping[str, Any]] = []
        for each in sources:
            items.extend(each(node) if callable(each) else each)
        return items

    return source


__all__ = ["ExampleTables", "chain", "review_examples", "write"]
