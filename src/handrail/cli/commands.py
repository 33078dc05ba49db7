"""What the commands do, as library calls; `main.py` only parses arguments and prints."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

from handrail.cli.targets import load_pipeline
from handrail.core.records import RunRecord
from handrail.core.runner import Runner
from handrail.core.state import Document
from handrail.exceptions import InputError
from handrail.inputs import DEFAULT_MAX_BYTES, SUPPORTED_SUFFIXES, load_documents
from handrail.providers import get_model

DEFAULT_MODEL = "fake"
GraphFormat = Literal["mermaid", "dot"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Batch:
    """Documents loaded and a runner ready to run them; unusable documents are `InputError`s."""

    runner: Runner
    items: tuple[Document | InputError, ...]

    @property
    def document_ids(self) -> list[str]:
        """The id of each item, in order (a failed run reports the id of the file it names)."""
        return [
            item.id if isinstance(item, Document) else str(getattr(item, "document_id", "?"))
            for item in self.items
        ]

    def run(
        self, *, concurrency: int = 8, on_result: Callable[[RunRecord], None] | None = None
    ) -> list[RunRecord]:
        """Run every item; records in input order. A broken document fails only its own run."""
        return asyncio.run(
            self.runner.run_many(self.items, concurrency=concurrency, on_result=on_result)
        )


def prepare_run(
    target: str,
    inputs: Sequence[str | os.PathLike[str]],
    *,
    model: str = DEFAULT_MODEL,
    max_bytes: int = DEFAULT_MAX_BYTES,
    stdin: BinaryIO | None = None,
) -> Batch:
    """Load the pipeline, the model and the documents; `InputError` for a mistake in the command
    (bad target, unknown model, missing path, nothing to run)."""
    runner = Runner(load_pipeline(target), model=get_model(model))
    items = load_documents(inputs, max_bytes=max_bytes, stdin=stdin)
    if not items:
        named = ", ".join(f"`{os.fspath(p)}`" for p in inputs) or "the command"
        raise InputError(
            f"no documents to run: nothing in {named} is a {', '.join(SUPPORTED_SUFFIXES)} "
            "file (hidden files are skipped); name files or folders that hold some"
        )
    return Batch(runner=runner, items=tuple(items))


def draw(target: str, format: GraphFormat = "mermaid") -> str:
    """The pipeline a TARGET names, drawn as Mermaid or Graphviz DOT text."""
    pipeline = load_pipeline(target)
    return pipeline.to_dot() if format == "dot" else pipeline.to_mermaid()


__all__ = ["DEFAULT_MODEL", "Batch", "GraphFormat", "draw", "prepare_run"]
