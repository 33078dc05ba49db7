"""Finding the pipeline a TARGET names: `path/to/file.py:attr` or `package.module:attr`.

A file is loaded the way `python path/to/file.py` would run it (its folder becomes importable,
relative imports do not work); a module is imported with the current folder importable, the way
`python -m` does. `attr` defaults to `pipeline` and must be a built `Pipeline` or a function
taking no arguments that returns one. Every problem raises `InputError` saying how to fix it.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import inspect
import os
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from handrail._utils import derived_id
from handrail.core.pipeline import Pipeline, PipelineBuilder
from handrail.exceptions import GraphSetupError, InputError

DEFAULT_ATTR = "pipeline"
_FORMS = "TARGET is path/to/file.py:pipeline or package.module:pipeline"


def load_pipeline(target: str) -> Pipeline:
    """The `Pipeline` a TARGET names; raises `InputError` naming the problem and the fix."""
    where, _, attr = target.rpartition(":") if ":" in target else (target, "", DEFAULT_ATTR)
    if not where or not attr:
        raise InputError(f"target {target!r} is incomplete; {_FORMS}")
    module = _import(where)
    if not hasattr(module, attr):
        raise InputError(f"`{where}` has no attribute `{attr}`; {_suggest(module, where)}")
    return _as_pipeline(getattr(module, attr), f"{where}:{attr}")


def beside(target: str, attr: str) -> Any:
    """The module attribute `attr` beside the pipeline a TARGET names (e.g. `triggers` in the
    same file), or None when the module has none."""
    where, _, _attr = target.rpartition(":") if ":" in target else (target, "", DEFAULT_ATTR)
    if not where:
        raise InputError(f"target {target!r} is incomplete; {_FORMS}")
    return getattr(_import(where), attr, None)


def absolute_target(target: str) -> str:
    """The same TARGET, usable from any folder: a file path made absolute, `attr` spelled out.
    (A module target stays as given: it is found from the folder a command runs in.)"""
    where, _, attr = target.rpartition(":") if ":" in target else (target, "", DEFAULT_ATTR)
    if _is_file(where):
        where = str(Path(where).expanduser().resolve())
    return f"{where}:{attr}"


def project_target(recorded: str, *, pipeline: str, folder: str | None = None) -> str:
    """A TARGET read from the database, if it is code the user could have run from `folder`
    (default: the current folder, the project): a `.py` file inside it (symlinks resolved), or a
    module whose top-level package is found there. Anything else (a file elsewhere, a module
    found only on `sys.path`) raises `InputError` naming it, without importing anything:
    whoever can write the database must not choose which code handrail imports."""
    project = Path(folder or os.getcwd()).resolve()
    where, _, attr = recorded.rpartition(":") if ":" in recorded else (recorded, "", DEFAULT_ATTR)
    refused = (
        f"pipeline `{pipeline}`'s code is recorded in the database as `{recorded}`, which is not "
        f"{{why}} the current folder ({project.as_posix()}); handrail imports code named in the "
        "database only from the folder it runs in: run the command from the project folder or "
        "pass --target path/to/file.py:pipeline"
    )
    if not where or not attr:
        raise InputError(refused.format(why="a target (path/to/file.py:pipeline) in"))
    if _is_file(where):
        path = Path(where).expanduser()
        resolved = (path if path.is_absolute() else project / path).resolve()
        if resolved.suffix != ".py" or not resolved.is_relative_to(project):
            raise InputError(refused.format(why="a .py file inside"))
        if not resolved.is_file():
            raise InputError(
                f"pipeline `{pipeline}`'s code was recorded as `{recorded}`, which no longer "
                "exists; pass --target path/to/file.py:pipeline"
            )
        return f"{resolved}:{attr}"
    top = where.split(".")[0]
    try:
        found = importlib.machinery.PathFinder.find_spec(top, [str(project)])
    except (ImportError, ValueError):
        found = None
    origin = None
    if found is not None:
        origin = found.origin if found.has_location else None
        locations = list(found.submodule_search_locations or [])
        origin = origin or (locations[0] if locations else None)
    if origin is None or not Path(origin).resolve().is_relative_to(project):
        raise InputError(refused.format(why="a module inside"))
    return f"{where}:{attr}"


def _is_file(where: str) -> bool:
    return where.endswith(".py") or "/" in where or os.sep in where


def _import(where: str) -> ModuleType:
    try:
        return _import_file(Path(where)) if _is_file(where) else _import_module(where)
    except InputError:
        raise
    except GraphSetupError as e:
        raise InputError(
            f"the pipeline in `{where}` fails to build: {_one_line(e)}; fix its definition"
        ) from e
    except ModuleNotFoundError as e:
        raise InputError(
            f"importing `{where}` failed: {e}; install the missing package or fix the import"
        ) from e
    except Exception as e:
        raise InputError(
            f"importing `{where}` raised {type(e).__name__}: {_one_line(e)}; fix the module "
            "(run `python` on it to see the traceback)"
        ) from e


_IMPORTING = threading.RLock()
"""Held while a target file is imported (a target may import another: reentrant)."""


def _import_file(path: Path) -> ModuleType:
    if path.is_dir():
        raise InputError(
            f"target `{path.as_posix()}` is a folder; name the .py file that defines the "
            f"pipeline ({_FORMS})"
        )
    if not path.is_file():
        raise InputError(
            f"target file `{path.as_posix()}` does not exist; check the path ({_FORMS})"
        )
    path = path.resolve()
    # A name unique to the file, so two files both called `intake.py` never collide.
    name = f"_handrail_target_{path.stem}_{derived_id('m', str(path))[2:10]}"
    # One import at a time: the module is in sys.modules while it runs, and another thread
    # (the web app's first requests at once) must not take it half-executed.
    with _IMPORTING:
        return _exec_file(path, name)


def _exec_file(path: Path, name: str) -> ModuleType:
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise InputError(f"`{path.as_posix()}` cannot be loaded as Python; {_FORMS}")
    module = importlib.util.module_from_spec(spec)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    sys.modules[name] = module  # pydantic and dataclasses look their module up while it runs
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _import_module(name: str) -> ModuleType:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    importlib.invalidate_caches()
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is None or not (name == e.name or name.startswith(e.name + ".")):
            raise  # the module exists but something it imports does not
        raise InputError(
            f"no module named `{name}`; check the name and run from the folder that holds the "
            f"package, or give the file path ({_FORMS})"
        ) from e


def _as_pipeline(value: Any, target: str) -> Pipeline:
    if isinstance(value, Pipeline):
        return value
    if isinstance(value, PipelineBuilder):
        raise InputError(f"`{target}` is a PipelineBuilder that was not built; add `.build()`")
    if callable(value) and not isinstance(value, type):
        try:
            inspect.signature(value).bind()
        except TypeError:
            raise InputError(
                f"`{target}` is a function that needs arguments; name a built Pipeline or a "
                "function taking none that returns one"
            ) from None
        except ValueError:  # no signature to inspect (a builtin): just try calling it
            pass
        try:
            built = value()
        except GraphSetupError as e:
            raise InputError(
                f"the pipeline that `{target}` returns fails to build: {_one_line(e)}; "
                "fix its definition"
            ) from e
        except Exception as e:
            raise InputError(
                f"calling `{target}` raised {type(e).__name__}: {_one_line(e)}; fix the function"
            ) from e
        if isinstance(built, Pipeline):
            return built
        if isinstance(built, PipelineBuilder):
            raise InputError(
                f"`{target}` returned a PipelineBuilder that was not built; return it with "
                "`.build()`"
            )
        raise InputError(
            f"`{target}` returned {_describe(built)}, not a handrail Pipeline; "
            "return PipelineBuilder(...).build()"
        )
    raise InputError(
        f"`{target}` is {_describe(value)}, not a handrail Pipeline; "
        "name a built pipeline (PipelineBuilder(...).build()) or a function returning one"
    )


def _suggest(module: ModuleType, where: str) -> str:
    found = sorted(k for k, v in vars(module).items() if isinstance(v, Pipeline))
    if not found:
        return f"define `pipeline = PipelineBuilder(...).build()` there ({_FORMS})"
    return "pipelines there: " + ", ".join(f"`{where}:{k}`" for k in found)


def _describe(value: Any) -> str:
    if isinstance(value, type):
        return f"the class {value.__name__}"
    if inspect.isroutine(value):
        return f"the function {getattr(value, '__name__', '?')}"
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _one_line(error: BaseException) -> str:
    """A message listing problems ("has 2 problems:\n  - x\n  - y") as "...: (1) x (2) y"."""
    lines = [line.strip().removeprefix("- ") for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    head, rest = lines[0], lines[1:]
    if head.endswith(":") and rest:
        return head + "".join(f" ({n}) {line}" for n, line in enumerate(rest, 1))
    return " ".join(lines)


__all__ = ["DEFAULT_ATTR", "absolute_target", "beside", "load_pipeline", "project_target"]
