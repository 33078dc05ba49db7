"""An eval suite's files and their loader: `load_suite("evals/support_triage")`.

A suite is a folder `evals/<suite>/` holding `suite.yaml`, `cases.jsonl` and the documents the
cases name (docs/evals.md, "Suite files"):

```yaml
name: support_triage          # optional; default: the folder's name
pipeline: ../../examples/support_triage/pipeline.py:pipeline
                              # a TARGET as `handrail run` takes it; a file path is relative
                              # to the suite folder
model: fake                   # optional default model; `handrail eval --model` overrides it
recordings: recordings        # optional folder of record/replay files (relative to the folder)
cases: cases.jsonl            # default
concurrency: 8                # default
target_accuracy: 0.95         # optional: the accuracy the review-rate curve looks for
scoring:                      # how each scored node is scored; nodes not named are not scored
  category: {type: classification}                # optional labels: [...]
  details: {type: extraction, match: normalised, fields: [order_id, amount]}
                              # match: exact | normalised | fuzzy; fuzzy_threshold (0.9)
  reply: {type: text, contains: [...], not_contains: [...], max_words: 120,
          judge: {rubric: "...", model: ...}}
tolerances:                   # how far a metric may drop below the baseline: "default", or
  default: 0.02               # "<node>.<metric>", "routing.<metric>", "cost.<metric>", ...
  category.accuracy: 0.05
alpha: 0.05                   # the baseline gate's significance level (default)
min_sample: 20                # fewer cases scored by both runs: gate on the tolerance alone
```

`cases`, `recordings` and each case's `path` stay inside the suite folder (no absolute path, no
`..` or symlink out of it): a suite reads and writes only its own files.

`cases.jsonl` holds one JSON object per line (blank lines are skipped; JSON Lines has no
comments, so neither does this file):

    {"id": "refund-1", "path": "documents/01.eml",
     "expected": {"category": "refund", "details": {"order_id": "A-1", "amount": 12.5}},
     "route": "accept", "tags": ["refund"], "metadata": {"source": "team"}}

Exactly one of `document` (the text, or a JSON object) and `path` (a `.txt`, `.md`, `.eml` or
`.json` file, relative to the folder, read as `handrail run` reads it: a file that exists but
cannot be used, such as an empty one, stays a case whose run fails). `id` defaults to the
path's stem, else `case-<line>`; ids are unique. `expected` may name any subset of nodes, and of
an extraction's fields (null: the field should be empty). `route` is what the run should come
to: `accept` (completed), `review`, `reject` or `fail`.

Every problem raises a `SuiteError` naming the file, the line, the field and the fix; the
problems of `cases.jsonl` are reported together. With `load=` (a TARGET loader, such as the
CLI's `load_pipeline`), the suite is also checked against its pipeline: scored nodes exist and
are of the right kind, labels and field names exist, expected values fit the schema.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from handrail.core.nodes import Classify, Draft, Extract, Node, Summarize
from handrail.core.pipeline import Pipeline
from handrail.core.state import Document
from handrail.evals.compare import ALPHA, MIN_SAMPLE
from handrail.exceptions import InputError
from handrail.inputs import load_document

SUITE_FILE = "suite.yaml"
DEFAULT_CONCURRENCY = 8
TOLERANCE_GROUPS = ("routing", "cost", "tokens", "latency")
"""Tolerance keys that are not `<node>.<metric>`: `routing.accuracy`, `cost.median`, ..."""
MAX_SHOWN = 20
"""Problems a `SuiteError` message lists (all of them are in `.problems`)."""


class SuiteError(InputError):
    """A suite's files are malformed or do not fit its pipeline; `problems` lists them all."""

    def __init__(self, problems: list[str], *, suite: str) -> None:
        self.problems = tuple(problems)
        self.suite = suite
        if len(problems) == 1:
            message = problems[0]
        else:
            shown = [f"  {p}" for p in problems[:MAX_SHOWN]]
            if len(problems) > MAX_SHOWN:
                shown.append(f"  ... and {len(problems) - MAX_SHOWN} more")
            message = f"suite `{suite}` has {len(problems)} problems:\n" + "\n".join(shown)
        super().__init__(message)


# --- the file schema ---------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class ClassificationScoring(_Strict):
    """Score a `Classify` node: accuracy, per-label precision/recall/F1, the confusion matrix."""

    type: Literal["classification"] = "classification"
    labels: list[str] | None = None
    """The labels the report lists (default: the labels the expected values and outputs use)."""


class ExtractionScoring(_Strict):
    """Score an `Extract` node field by field (exact, normalised and fuzzy are all computed)."""

    type: Literal["extraction"] = "extraction"
    match: Literal["exact", "normalised", "fuzzy"] = "normalised"
    """The headline match mode."""
    fields: list[str] | None = None
    """The fields scored (default: every field of the schema)."""
    fuzzy_threshold: float = Field(default=0.9, ge=0, le=1)
    """Similarity (0..1) at or above which a fuzzy match counts."""


class Judge(_Strict):
    """An LLM judge for free text (opt-in: it costs a model call per case)."""

    rubric: str = Field(min_length=1)
    """What a good answer does, for the judge."""
    model: str | None = None
    """The judge's model (default: the suite's)."""


class TextScoring(_Strict):
    """Score a `Summarize` or `Draft` node's free text with checks, and optionally a judge."""

    type: Literal["text"] = "text"
    contains: list[str] = Field(default_factory=list)
    """Phrases the text must contain (case-insensitive)."""
    not_contains: list[str] = Field(default_factory=list)
    """Phrases it must not contain."""
    max_words: int | None = Field(default=None, gt=0)
    judge: Judge | None = None


NodeScoring = ClassificationScoring | ExtractionScoring | TextScoring
_SCORING: dict[str, type[NodeScoring]] = {
    "classification": ClassificationScoring,
    "extraction": ExtractionScoring,
    "text": TextScoring,
}
_SCORED_KINDS: dict[str, tuple[type[Node], ...]] = {
    "classification": (Classify,),
    "extraction": (Extract,),
    "text": (Summarize, Draft),
}


class SuiteFile(_Strict):
    """`suite.yaml` as written (paths not yet resolved, scoring not yet checked)."""

    name: str | None = Field(default=None, min_length=1)
    pipeline: str = Field(min_length=1)
    model: str | None = None
    recordings: str | None = None
    cases: str = "cases.jsonl"
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1)
    target_accuracy: float | None = Field(default=None, gt=0, le=1)
    scoring: dict[str, Any] = Field(default_factory=dict)
    tolerances: dict[str, Annotated[float, Field(ge=0)]] = Field(default_factory=dict)
    alpha: float = Field(default=ALPHA, gt=0, lt=1)
    min_sample: int = Field(default=MIN_SAMPLE, ge=0)


class CaseLine(_Strict):
    """One line of `cases.jsonl` as written."""

    id: str | None = Field(default=None, min_length=1)
    document: Any = None
    path: str | None = Field(default=None, min_length=1)
    expected: dict[str, Any] = Field(default_factory=dict)
    route: Literal["accept", "review", "reject", "fail"] | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


# --- the loaded suite --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Case:
    """One document with its known answers."""

    id: str
    line: int
    """Its line in `cases.jsonl` (1-based)."""
    document: Document | InputError
    """The document; an `InputError` for a file that exists but cannot be used (empty, binary,
    not UTF-8...): as with `handrail run`, its run fails (expect `route: fail`)."""
    expected: Mapping[str, Any] = field(default_factory=dict)
    """Expected output per node (a label, an object of fields, a reference text)."""
    route: str | None = None
    """`accept`, `review`, `reject` or `fail`; None: not scored."""
    tags: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Suite:
    """A loaded suite: settings resolved, documents read, cases checked."""

    name: str
    folder: Path
    """The suite's folder (absolute)."""
    pipeline_target: str
    """The TARGET, a file path made absolute (module targets as written)."""
    model: str | None
    recordings: Path | None
    concurrency: int
    target_accuracy: float | None
    scoring: Mapping[str, NodeScoring]
    tolerances: Mapping[str, float]
    cases: tuple[Case, ...]
    pipeline: Pipeline | None = None
    """The pipeline, when `load_suite` was given a loader (and the suite checked against it)."""
    alpha: float = ALPHA
    """The baseline gate's significance level (`handrail.evals.compare`)."""
    min_sample: int = MIN_SAMPLE
    """Below this many cases scored by both runs, the gate uses the tolerance alone."""

    def tolerance(self, metric: str) -> float:
        """The allowed drop for `metric` (`"<node>.<metric>"`): its own, else `default`, else 0."""
        return self.tolerances.get(metric, self.tolerances.get("default", 0.0))


def load_suite(
    path: str | os.PathLike[str], *, load: Callable[[str], Pipeline] | None = None
) -> Suite:
    """The suite in folder `path` (or named by its `suite.yaml`); `SuiteError` if malformed.

    `load` turns the suite's TARGET into its `Pipeline` (the CLI passes its `load_pipeline`);
    given, the suite is checked against the pipeline, which `Suite.pipeline` then holds.
    """
    given = Path(path)
    folder = given.parent if given.is_file() else given
    settings = read_suite_file(folder)
    where = f"{folder.as_posix()}/{SUITE_FILE}:"
    target = resolve_target(settings.pipeline, folder)
    problems: list[str] = []
    pipeline = None
    if load is not None:
        try:
            pipeline = load(target)
        except InputError as e:
            problems.append(f'{where} field "pipeline": {e}')
    scoring = _scoring(settings.scoring, pipeline, where, problems)
    problems += _tolerance_problems(settings.tolerances, scoring, where)
    if problems:
        raise SuiteError(problems, suite=folder.as_posix())
    cases = read_cases(folder / settings.cases, folder=folder, pipeline=pipeline)
    return Suite(
        name=settings.name or folder.resolve().name,
        folder=folder.resolve(),
        pipeline_target=target,
        model=settings.model,
        recordings=(folder / settings.recordings).resolve() if settings.recordings else None,
        concurrency=settings.concurrency,
        target_accuracy=settings.target_accuracy,
        scoring=scoring,
        tolerances=dict(settings.tolerances),
        cases=cases,
        pipeline=pipeline,
        alpha=settings.alpha,
        min_sample=settings.min_sample,
    )


def read_suite_file(folder: Path) -> SuiteFile:
    """`folder/suite.yaml`, validated on its own (not against the pipeline)."""
    file = folder / SUITE_FILE
    shown = file.as_posix()
    if not folder.is_dir():
        raise SuiteError(
            [f"suite folder `{folder.as_posix()}` does not exist; check the path"],
            suite=folder.as_posix(),
        )
    if not file.is_file():
        raise SuiteError(
            [
                f"`{folder.as_posix()}` has no {SUITE_FILE}; create `{shown}` naming at least the "
                "pipeline (docs/evals.md, Suite files)"
            ],
            suite=folder.as_posix(),
        )
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError(
            [f"{shown}: cannot be read ({e}); check the file"], suite=folder.as_posix()
        ) from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise SuiteError(
            [f"{shown} is not valid YAML ({at}{problem}); fix its syntax"],
            suite=folder.as_posix(),
        ) from e
    if not isinstance(data, dict):
        raise SuiteError(
            [f"{shown} must be a mapping of keys (pipeline:, scoring:, ...); got {_kind(data)}"],
            suite=folder.as_posix(),
        )
    try:
        settings = SuiteFile.model_validate(data)
    except ValidationError as e:
        raise SuiteError(_problems(e, SuiteFile, f"{shown}:"), suite=folder.as_posix()) from e
    problems = [
        _outside(folder, value, f'{shown}: field "{key}"')
        for key, value in (("cases", settings.cases), ("recordings", settings.recordings))
        if value is not None and inside(folder, value) is None
    ]
    if problems:
        raise SuiteError(problems, suite=folder.as_posix())
    return settings


def inside(folder: Path, relative: str) -> Path | None:
    """`folder/relative`, resolved, when it stays inside `folder` (after `..` and symlinks are
    followed); None when it leaves it or is absolute. A suite reads and writes only its own
    files (cases, documents, recordings)."""
    if Path(relative).is_absolute():
        return None
    home = folder.resolve()
    target = (home / relative).resolve()
    return target if target.is_relative_to(home) else None


def _outside(folder: Path, value: str, at: str) -> str:
    return (
        f"{at}: {json.dumps(value)} is outside the suite folder `{folder.as_posix()}`; a suite's "
        "cases, documents and recordings stay inside its folder: give a path relative to it "
        "(no absolute path, no `..` or symlink out of it)"
    )


def resolve_target(target: str, folder: Path) -> str:
    """A TARGET with its file path taken relative to `folder` and made absolute; a module
    target (`package.module:attr`) is returned as written."""
    where, colon, attr = target.rpartition(":") if ":" in target else (target, "", "")
    if not (where.endswith(".py") or "/" in where or os.sep in where):
        return target
    return f"{(folder / where).resolve().as_posix()}{colon}{attr}"


# --- scoring and tolerances --------------------------------------------------------------------


def _scoring(
    raw: Mapping[str, Any], pipeline: Pipeline | None, where: str, problems: list[str]
) -> dict[str, NodeScoring]:
    scoring: dict[str, NodeScoring] = {}
    for node, spec in raw.items():
        at = f'{where} field "scoring.{node}'
        if not isinstance(spec, dict):
            problems.append(f'{at}": give a mapping such as {{type: extraction}}')
            continue
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in _SCORING:
            said = "is missing" if kind is None else f"{json.dumps(kind)} is not a scoring type"
            problems.append(f'{at}.type": {said}; give one of {", ".join(_SCORING)}')
            continue
        try:
            scored = _SCORING[kind].model_validate(spec)
        except ValidationError as e:
            problems += _problems(e, _SCORING[kind], where, prefix=("scoring", node))
            continue
        if pipeline is not None:
            problems += _scoring_fits(node, scored, pipeline, at)
        scoring[node] = scored
    return scoring


def _scoring_fits(node: str, scored: NodeScoring, pipeline: Pipeline, at: str) -> list[str]:
    found = pipeline.nodes.get(node)
    if found is None:
        return [f'{at}": {_no_node(pipeline, node)}']
    kinds = _SCORED_KINDS[scored.type]
    if not isinstance(found, kinds):
        fits = [k for k, classes in _SCORED_KINDS.items() if isinstance(found, classes)]
        fix = f"give type: {fits[0]}" if fits else "score an LLM node, or remove it"
        wants = " or ".join(c.__name__ for c in kinds)
        return [
            f'{at}.type": node "{node}" is {_a(type(found).__name__)} node; {scored.type} '
            f"scores {wants} nodes ({fix})"
        ]
    if isinstance(scored, ClassificationScoring) and isinstance(found, Classify):
        known = found.labels()
        return [
            f'{at}.labels": "{label}" is not a label of node "{node}" (labels: {", ".join(known)})'
            for label in scored.labels or ()
            if label not in known
        ]
    if isinstance(scored, ExtractionScoring) and isinstance(found, Extract):
        names = found.schema.model_fields
        return [
            f'{at}.fields": node "{node}" has no field "{name}" (fields: {", ".join(names)})'
            for name in scored.fields or ()
            if name not in names
        ]
    return []


def _tolerance_problems(
    tolerances: Mapping[str, float], scoring: Mapping[str, NodeScoring], where: str
) -> list[str]:
    problems = []
    groups = [*scoring, *TOLERANCE_GROUPS]
    for key in tolerances:
        group, dot, metric = key.partition(".")
        if key == "default" or (dot and metric and group in groups):
            continue
        problems.append(
            f'{where} field "tolerances.{key}": give "default" or "<group>.<metric>" where the '
            f"group is a scored node or one of {', '.join(TOLERANCE_GROUPS)} (groups here: "
            f"{', '.join(groups)})"
        )
    return problems


# --- cases -------------------------------------------------------------------------------------


def read_cases(file: Path, *, folder: Path, pipeline: Pipeline | None = None) -> tuple[Case, ...]:
    """The cases in `file` (JSON Lines), documents read; every problem in one `SuiteError`."""
    shown = file.as_posix()
    lines, problems = read_json_lines(file)
    cases: list[Case] = []
    first_line: dict[str, int] = {}
    for number, data in lines:
        where = f"{shown} line {number}:"
        try:
            line = CaseLine.model_validate(data)
        except ValidationError as e:
            problems += _problems(e, CaseLine, where)
            continue
        case_id = line.id or (Path(line.path).stem if line.path else f"case-{number}")
        if case_id in first_line:
            problems.append(
                f'{where} id "{case_id}" is already used on line {first_line[case_id]}; give '
                'each case its own "id"'
            )
        first_line.setdefault(case_id, number)
        document = _document(line, case_id, folder, where, problems)
        if pipeline is not None:
            problems += _expected_problems(line.expected, pipeline, where)
        if document is not None:
            cases.append(
                Case(
                    id=case_id,
                    line=number,
                    document=document,
                    expected=line.expected,
                    route=line.route,
                    tags=tuple(line.tags),
                    metadata=line.metadata,
                )
            )
    if not problems and not lines:
        problems.append(f"{shown} has no cases; add one JSON object per line")
    if problems:
        raise SuiteError(problems, suite=folder.as_posix())
    return tuple(cases)


def read_json_lines(file: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """(line number, object) for every non-blank line of `file`, and the problems of the lines
    that are not JSON objects. A file that cannot be read raises `SuiteError`."""
    shown = file.as_posix()
    try:
        text = file.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SuiteError(
            [
                f"`{shown}` does not exist; create it (one case per line), or name the cases file "
                f"with `cases:` in {SUITE_FILE}"
            ],
            suite=file.parent.as_posix(),
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise SuiteError([f"`{shown}` cannot be read ({e}); check the file"], suite=shown) from e
    found: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as e:
            problems.append(
                f"{shown} line {number} is not JSON ({e.msg}: column {e.colno}); write one JSON "
                "object per line"
            )
            continue
        if not isinstance(data, dict):
            problems.append(
                f"{shown} line {number} is {_kind(data)}, not a JSON object; write one case "
                'object per line ({"path": ..., "expected": {...}})'
            )
            continue
        found.append((number, data))
    return found, problems


def _document(
    line: CaseLine, case_id: str, folder: Path, where: str, problems: list[str]
) -> Document | InputError | None:
    if (line.document is None) == (line.path is None):
        problems.append(
            f'{where} give "document" or "path", not both'
            if line.path is not None
            else f'{where} give "document" (the text) or "path" (a file beside {SUITE_FILE})'
        )
        return None
    if line.path is not None:
        file = folder / line.path
        if inside(folder, line.path) is None:
            problems.append(_outside(folder, line.path, f'{where} field "path"'))
            return None
        if not file.is_file():
            problems.append(
                f'{where} field "path": `{file.as_posix()}` does not exist; a path is relative '
                f"to the suite folder `{folder.as_posix()}`"
            )
            return None
        # A file that exists but cannot be used (empty, binary, ...) stays a case: like
        # `handrail run`, the runner turns its InputError into a failed run (route "fail").
        return load_document(file, document_id=Path(line.path).as_posix())
    if isinstance(line.document, dict):
        text = json.dumps(line.document, ensure_ascii=False, sort_keys=True)
    elif isinstance(line.document, str) and line.document.strip():
        text = line.document
    else:
        problems.append(
            f'{where} field "document": give the document\'s text (a non-empty string) or a '
            f"JSON object; got {_kind(line.document)}"
        )
        return None
    return Document(text=text, id=case_id)


def _expected_problems(expected: Mapping[str, Any], pipeline: Pipeline, where: str) -> list[str]:
    problems: list[str] = []
    for node, value in expected.items():
        at = f'{where} field "expected.{node}"'
        found = pipeline.nodes.get(node)
        if found is None:
            problems.append(f"{at}: {_no_node(pipeline, node)}")
        elif value is None:
            continue
        elif isinstance(found, Classify):
            labels = found.labels()
            if value not in labels:
                problems.append(
                    f'{at}: {json.dumps(value)} is not a label of node "{node}" '
                    f"(labels: {', '.join(labels)})"
                )
        elif isinstance(found, Extract):
            problems += _field_problems(found, value, at, where, node)
        elif (
            isinstance(found, Summarize | Draft)
            and found.schema is None
            and not isinstance(value, str)
        ):
            problems.append(f"{at}: give the reference text as a string; got {_kind(value)}")
    return problems


def _field_problems(node: Extract, value: Any, at: str, where: str, name: str) -> list[str]:
    if not isinstance(value, dict):
        return [f'{at}: give an object of fields, such as {{"field": value}}; got {_kind(value)}']
    fields = node.schema.model_fields
    problems = []
    for key, item in value.items():
        if key not in fields:
            problems.append(
                f'{where} field "expected.{name}.{key}": node "{name}" has no field "{key}" '
                f"(fields: {', '.join(fields)})"
            )
        elif item is not None:  # null: the field should be empty
            try:
                _field_adapter(node.schema, key).validate_python(item)
            except ValidationError as e:
                first = e.errors()[0]
                problems.append(
                    f'{where} field "expected.{name}.{key}": {first["msg"]} (got '
                    f"{json.dumps(item, ensure_ascii=False)}); fix the value"
                )
    return problems


_FIELD_ADAPTERS: dict[tuple[type[BaseModel], str], TypeAdapter[Any]] = {}


def _field_adapter(schema: type[BaseModel], name: str) -> TypeAdapter[Any]:
    adapter = _FIELD_ADAPTERS.get((schema, name))
    if adapter is None:
        adapter = TypeAdapter(schema.model_fields[name].rebuild_annotation())
        _FIELD_ADAPTERS[(schema, name)] = adapter
    return adapter


# --- messages ----------------------------------------------------------------------------------


def _no_node(pipeline: Pipeline, node: str) -> str:
    return f'pipeline "{pipeline.name}" has no node "{node}" (nodes: {", ".join(pipeline.nodes)})'


def _problems(
    error: ValidationError, model: type[BaseModel], where: str, *, prefix: tuple[str, ...] = ()
) -> list[str]:
    """pydantic's errors as `where field "a.b": message` lines, unknown keys with the keys."""
    problems = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"]]
        dotted = ".".join([*prefix, *loc])
        if item["type"] == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            keys = ", ".join(owner.model_fields)
            problems.append(f'{where} unknown key "{dotted}" (keys: {keys})')
        elif item["type"] == "missing":
            problems.append(f'{where} key "{dotted}" is missing; add it')
        else:
            got = item.get("input")
            shown = f" (got {json.dumps(got)})" if isinstance(got, str | int | float) else ""
            problems.append(f'{where} field "{dotted}": {item["msg"]}{shown}')
    return problems


def _model_at(model: type[BaseModel], loc: list[str]) -> type[BaseModel]:
    """The model that holds the key at `loc` (for nested models such as `judge`)."""
    for part in loc:
        info = model.model_fields.get(part)
        inner = [a for a in _types_in(info.annotation if info else None) if _is_model(a)]
        if not inner:
            break
        model = inner[0]
    return model


def _types_in(annotation: Any) -> tuple[Any, ...]:
    args = getattr(annotation, "__args__", None)
    return tuple(args) if args else (annotation,)


def _is_model(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    names |= {int: "a number", float: "a number"}
    if value is None:
        return "nothing (null)"
    return names.get(type(value), f"a {type(value).__name__}")


__all__ = [
    "DEFAULT_CONCURRENCY",
    "SUITE_FILE",
    "TOLERANCE_GROUPS",
    "Case",
    "CaseLine",
    "ClassificationScoring",
    "ExtractionScoring",
    "Judge",
    "NodeScoring",
    "Suite",
    "SuiteError",
    "SuiteFile",
    "TextScoring",
    "inside",
    "load_suite",
    "read_cases",
    "read_json_lines",
    "read_suite_file",
    "resolve_target",
]
