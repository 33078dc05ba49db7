"""Reviewers' decisions as new eval cases (`handrail review export --suite DIR`).

Every decided review becomes one case appended to the suite's cases file, its document written
to `DIR/documents/<case id>.txt` (the text the run saw, so the case reads it back as it was):

- an **edit**: the corrected output is the expected output of the node it corrects;
- a **rejection**: `route: "reject"` and no expected output (a person refused the document);
- an **approval**: the approved output is the expected output. An approval confirms the model,
  and the case keeps it right: a later change that breaks it shows up as a regression.

Approvals and edits set no `route`: whether the corrected output should have gone to review
depends on the pipeline's own rules (a refund's amount, a gate's threshold), not on the decision.
Each case carries `metadata` `{"source": "review", "review_id", "run_id", "pipeline", "node",
"decision", "reviewer", "decided_at", "reason", "document_id"}` and the tags `review` and
`edited`, `rejected` or `approved`. A review already in the cases file (same `review_id`) is
skipped, so exporting again adds only what was decided since.

A folder without `suite.yaml` gets a minimal one: the pipeline's TARGET (where `handrail run`
recorded its code, relative to the folder) and a scoring entry for each node the new cases
expect an output of.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python

from handrail.core.records import DecisionAction, ReviewDecision, ReviewRequest, RunRecord
from handrail.core.store import RunStore
from handrail.evals.suite import (
    SUITE_FILE,
    SuiteError,
    inside,
    read_json_lines,
    read_suite_file,
)
from handrail.exceptions import InputError

DOCUMENTS = "documents"
_TAGS: Mapping[DecisionAction, str] = {
    "approve": "approved",
    "edit": "edited",
    "reject": "rejected",
}
_SCORING = {"classify": "classification", "extract": "extraction"} | dict.fromkeys(
    ("summarize", "draft"), "text"
)
"""The scoring a new suite.yaml gives a node, by the kind its steps recorded."""


@dataclass(frozen=True, kw_only=True, slots=True)
class DecidedReview:
    """A review, the decision on it, and its run (for the document and the node kinds)."""

    request: ReviewRequest
    decision: ReviewDecision
    run: RunRecord


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportedCase:
    """A case an export appended."""

    id: str
    review_id: str
    decision: DecisionAction
    line: Mapping[str, Any]
    """The JSON object written to the cases file."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ExportResult:
    """What an export did."""

    folder: Path
    cases_file: Path
    pipeline: str | None
    """The pipeline whose reviews were exported (None when there were none)."""
    added: tuple[ExportedCase, ...] = ()
    skipped: tuple[str, ...] = ()
    """Review ids already in the cases file."""
    no_document: tuple[str, ...] = ()
    """Review ids whose run kept no document text (nothing to write)."""
    created_suite: bool = False
    scoring: Mapping[str, str] | None = None
    """The scoring a created suite.yaml gives (node: type)."""
    unscored: tuple[str, ...] = ()
    """Nodes the new cases expect outputs of that suite.yaml does not score."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "suite": self.folder.as_posix(),
            "cases_file": self.cases_file.as_posix(),
            "pipeline": self.pipeline,
            "added": [
                {
                    "id": c.id,
                    "review_id": c.review_id,
                    "decision": c.decision,
                    "path": c.line["path"],
                }
                for c in self.added
            ],
            "skipped": list(self.skipped),
            "no_document": list(self.no_document),
            "created_suite": self.created_suite,
            "unscored": list(self.unscored),
        }


def decided_reviews(store: RunStore, *, since: datetime | None = None) -> list[DecidedReview]:
    """Every decided review in `store` (decided at or after `since`), oldest decision first."""
    found = []
    for request in store.list_reviews(pending_only=False):
        if request.status != "decided":
            continue
        decision = store.get_decision(request.review_id)
        run = store.get_run(request.run_id)
        if decision is None or run is None:
            continue
        if since is not None and (decision.decided_at is None or decision.decided_at < since):
            continue
        found.append(DecidedReview(request=request, decision=decision, run=run))
    return sorted(found, key=_decided_order)


def _decided_order(item: DecidedReview) -> tuple[bool, str, str]:
    at = item.decision.decided_at
    return (at is None, at.isoformat() if at else "", item.request.review_id)


def export_cases(
    folder: str | os.PathLike[str],
    decided: Sequence[DecidedReview],
    *,
    pipeline: str | None = None,
    targets: Mapping[str, str | None] | None = None,
) -> ExportResult:
    """Append `decided` reviews of one pipeline to the suite in `folder` as new cases.

    `pipeline` chooses whose reviews (default: the pipeline of the cases exported before, else
    the only one with decided reviews); `targets` gives each pipeline's TARGET, needed only to
    create a missing suite.yaml. Raises `InputError` (a `SuiteError` for a malformed suite)
    before writing anything.
    """
    folder = Path(folder)
    settings = read_suite_file(folder) if (folder / SUITE_FILE).is_file() else None
    cases_file = folder / (settings.cases if settings is not None else "cases.jsonl")
    existing, problems = read_json_lines(cases_file) if cases_file.is_file() else ([], [])
    if problems:
        raise SuiteError(
            [*problems, f"fix {cases_file.as_posix()} before exporting into it"],
            suite=folder.as_posix(),
        )
    earlier = [line.get("metadata") or {} for _, line in existing]
    exported = {m.get("review_id") for m in earlier if m.get("source") == "review"}
    name = pipeline or _pipeline(decided, earlier)
    chosen = [d for d in decided if d.request.pipeline == name]
    ids = {str(line["id"]) for _, line in existing if isinstance(line.get("id"), str)}
    added, skipped, no_document = [], [], []
    texts: dict[str, str] = {}
    for item in chosen:
        review_id = item.request.review_id
        if review_id in exported:
            skipped.append(review_id)
        elif item.run.document is None:
            no_document.append(review_id)
        else:
            case = _case(item, _unique(_case_id(item), ids))
            ids.add(case.id)
            texts[case.id] = item.run.document.text
            added.append(case)
    result = ExportResult(
        folder=folder,
        cases_file=cases_file,
        pipeline=name,
        skipped=tuple(skipped),
        no_document=tuple(no_document),
    )
    if not added:
        return result
    _check_inside(
        folder,
        [cases_file.relative_to(folder).as_posix(), DOCUMENTS]
        + [str(c.line["path"]) for c in added],
    )
    expected_nodes = list(dict.fromkeys(n for c in added for n in c.line["expected"]))
    scoring: dict[str, str] | None = None
    if settings is None:
        target = (targets or {}).get(name or "")
        if target is None:
            raise InputError(
                f"`{folder.as_posix()}` has no {SUITE_FILE} and where pipeline `{name}`'s code "
                "is was never recorded; name it with --target path/to/file.py:pipeline"
            )
        kinds = {s.node: s.kind for d in chosen for s in d.run.steps}
        scoring = {n: _SCORING[kinds[n]] for n in expected_nodes if kinds.get(n) in _SCORING}
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SUITE_FILE).write_text(_suite_yaml(name or "", target, folder, scoring))
    scored = scoring if scoring is not None else settings.scoring if settings else {}
    _write(folder, cases_file, added, texts)
    return ExportResult(
        folder=folder,
        cases_file=cases_file,
        pipeline=name,
        added=tuple(added),
        skipped=result.skipped,
        no_document=result.no_document,
        created_suite=scoring is not None,
        scoring=scoring,
        unscored=tuple(n for n in expected_nodes if n not in scored),
    )


def _check_inside(folder: Path, paths: Sequence[str]) -> None:
    """Refuse (before writing anything) to write any file outside the suite folder."""
    outside = [p for p in paths if inside(folder, p) is None]
    if outside:
        raise SuiteError(
            [
                f"`{folder.as_posix()}`: {json.dumps(p)} is outside the suite folder; an export "
                "writes only inside it (check `cases:` in suite.yaml and that `documents` is "
                "not a link out of the folder)"
                for p in outside
            ],
            suite=folder.as_posix(),
        )


def _pipeline(decided: Sequence[DecidedReview], earlier: Sequence[Mapping[str, Any]]) -> str | None:
    """The pipeline to export: the one earlier exports came from, else the only one decided."""
    before = {m.get("pipeline") for m in earlier if m.get("source") == "review"} - {None}
    if len(before) == 1:
        return str(before.pop())
    names = sorted({d.request.pipeline for d in decided})
    if len(names) > 1:
        raise InputError(
            f"there are decided reviews of {len(names)} pipelines ({', '.join(names)}); "
            "choose whose with --pipeline NAME"
        )
    return names[0] if names else None


def _case(item: DecidedReview, case_id: str) -> ExportedCase:
    request, decision = item.request, item.decision
    expected: dict[str, Any] = {}
    if decision.action == "edit":
        expected[request.target] = to_jsonable_python(decision.output)
    elif decision.action == "approve":
        expected[request.target] = to_jsonable_python(request.output)
    line: dict[str, Any] = {
        "id": case_id,
        "path": f"{DOCUMENTS}/{case_id}.txt",
        "expected": expected,
    }
    if decision.action == "reject":
        line["route"] = "reject"
    line["tags"] = ["review", _TAGS[decision.action]]
    line["metadata"] = {
        "source": "review",
        "review_id": request.review_id,
        "run_id": request.run_id,
        "pipeline": request.pipeline,
        "node": request.node,
        "decision": decision.action,
        "reviewer": decision.reviewer,
        "decided_at": decision.decided_at.isoformat() if decision.decided_at else None,
        "reason": decision.reason,
        "document_id": request.document_id,
    }
    return ExportedCase(
        id=case_id, review_id=request.review_id, decision=decision.action, line=line
    )


def _case_id(item: DecidedReview) -> str:
    """`<document file stem>-<review id>`, in characters safe for a file name."""
    stem = Path(item.request.document_id).stem
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-.")[:60]
    review = re.sub(r"[^A-Za-z0-9._-]+", "-", item.request.review_id)
    return f"{slug}-{review}" if slug else review


def _unique(case_id: str, taken: set[str]) -> str:
    found, n = case_id, 1
    while found in taken:
        n += 1
        found = f"{case_id}-{n}"
    return found


def _write(
    folder: Path, cases_file: Path, added: Sequence[ExportedCase], texts: Mapping[str, str]
) -> None:
    """Documents first, then the case lines: an interrupted export leaves no case without its
    document, and the next export writes what is missing."""
    (folder / DOCUMENTS).mkdir(parents=True, exist_ok=True)
    for case in added:
        (folder / case.line["path"]).write_text(texts[case.id], encoding="utf-8", newline="")
    needs_newline = cases_file.is_file() and not cases_file.read_bytes().endswith(b"\n")
    with cases_file.open("a", encoding="utf-8") as out:
        if needs_newline and cases_file.stat().st_size:
            out.write("\n")
        for case in added:
            out.write(json.dumps(case.line, ensure_ascii=False) + "\n")


def _suite_yaml(name: str, target: str, folder: Path, scoring: Mapping[str, str]) -> str:
    lines = [
        f"# An eval suite for pipeline `{name}`, started by `handrail review export` from "
        "reviewers'",
        "# decisions. The schema: docs/evals.md, Suite files.",
        f"pipeline: {json.dumps(_relative_target(target, folder))}",
    ]
    if scoring:
        lines.append("scoring:")
        lines += [f"  {_yaml_key(node)}: {{type: {kind}}}" for node, kind in scoring.items()]
    return "\n".join(lines) + "\n"


def _relative_target(target: str, folder: Path) -> str:
    """A file TARGET relative to the suite folder, so the suite moves with its repository
    (kept absolute when the two share no folder but the root)."""
    where, colon, attr = target.rpartition(":") if ":" in target else (target, "", "")
    home = folder.resolve()
    if not Path(where).is_absolute() or Path(os.path.commonpath([where, home])) == Path(
        home.anchor
    ):
        return target
    relative = Path(os.path.relpath(where, home)).as_posix()
    return f"{relative}{colon}{attr}"


def _yaml_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name) else json.dumps(name)


__all__ = [
    "DOCUMENTS",
    "DecidedReview",
    "ExportResult",
    "ExportedCase",
    "decided_reviews",
    "export_cases",
]
