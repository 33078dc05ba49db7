"""The folder trigger: files dropped in a folder start runs (docs/triggers.md#the-folder-trigger).

```python
trigger = FolderTrigger(intake, "inbox/")
trigger.poll_once()        # one look; a file is taken on the look that finds it unchanged
watch = FolderWatch(trigger).start()   # polls every 2 s, nudged early by watchfiles
```

A poll lists the folder's top-level entries (with `recursive=True`, its subfolders' too, except
`processed/`, `failed/` and hidden folders; symlinked folders are not followed) and ignores
hidden files and files still being written by convention (`*.part`, `*.tmp`, `*~`). A file in a
subfolder is named by its path in the folder (`acme/march.pdf`) and keeps it when moved
(`processed/acme/march.pdf`). Every other entry is looked at twice: it is taken only when its size
and mtime have not changed for `settle` seconds across two polls. Then:

- a file of a format handrail reads is read with its format's size limit (`max_bytes_for`) and
  handed to `Intake.accept_bytes` under the key `<name>#<sha256 of what was read>`; only after
  that returns is it moved to `processed/`, or, when it could not be read (its run is a failed
  one), to `failed/` beside a `<file>.error.txt` note saying why;
- a file of a format handrail does not read, a FIFO, socket or device (never opened), a symlink
  that leaves the folder and a broken symlink are moved to `failed/` with a note, never
  silently skipped; a symlink inside the folder is read as its target, and the link is moved.

A move never overwrites: a name already taken gets `-2`, `-3`... before its suffix. Should the
process die between the commit and the move, the next poll finds the file again, computes the
same key, gets `repeat=True` and only moves it: no second run, no file lost. Two pollers on one
folder are safe the same way: the receipt's primary key lets one commit, the other gets the
repeat; a move that finds the file gone means the other poller moved it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import stat
import threading
import time
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

from handrail._utils import one_line
from handrail.triggers.intake import Intake, size_limit, supported
from handrail.triggers.state import report_error

log = logging.getLogger(__name__)

PROCESSED = "processed"
"""Where a file goes once its run is queued (a subfolder of the watched folder)."""
FAILED = "failed"
"""Where a file goes that was refused or could not be read, beside its `.error.txt` note."""
PARTIAL_SUFFIXES = (".part", ".tmp", "~")
"""Files still being written by convention: write `x.pdf.part`, then rename it to `x.pdf`."""

_Look = tuple[int, int]  # (size, mtime_ns)


@dataclass(frozen=True, kw_only=True, slots=True)
class Moved:
    """What one poll did with one file."""

    name: str
    """The file's name in the watched folder."""
    to: str | None
    """Where it went, relative to the folder (`processed/a.txt`, `failed/b.xyz`); None when
    another poller moved it first."""
    run_id: str | None = None
    """The run it was taken in for; None for a file refused without a run."""
    new: bool = False
    """True when this poll queued its run."""
    error: str | None = None
    """Why it went to `failed/`, else None."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Poll:
    """What one look at the folder did."""

    moved: tuple[Moved, ...] = ()
    waiting: tuple[str, ...] = ()
    """Files seen but not yet unchanged across two looks (or changed while being read)."""
    errors: tuple[str, ...] = ()
    """Files left in place because something went wrong (read, database, move): tried again
    on the next poll."""


class FolderTrigger:
    """Takes the files dropped in `folder` in through `intake`, each once (see the module).

    - `name`: the trigger's name; its receipts are under `folder:<name>` (default: the folder's
      absolute path);
    - `settle`: how many seconds a file's size and mtime must stay the same, across two looks,
      before it is taken;
    - `recursive`: take the files of its subfolders too (not `processed/`, `failed/`, hidden
      ones, nor symlinked folders).

    `poll_once` is synchronous (file system and database): call it from a thread in async code.
    """

    def __init__(
        self,
        intake: Intake,
        folder: str | PathLike[str],
        *,
        name: str | None = None,
        settle: float = 1.0,
        recursive: bool = False,
    ) -> None:
        self.intake = intake
        self.folder = Path(folder).absolute()
        self.source = f"folder:{name or self.folder.as_posix()}"
        self.settle = settle
        self.recursive = recursive
        self._looks: dict[str, tuple[_Look, float]] = {}
        self._reported: set[tuple[str, _Look]] = set()

    def poll_once(self, *, now: float | None = None) -> Poll:
        """Look at the folder once (at `now`, `time.monotonic()` by default) and take, move or
        refuse each file that has not changed since the previous look at least `settle`
        seconds before."""
        at = time.monotonic() if now is None else now
        looks: dict[str, tuple[_Look, float]] = {}
        moved: list[Moved] = []
        waiting: list[str] = []
        errors: list[str] = []
        for name in self._names():
            path = self.folder / name
            try:
                info = _look_at(path)
            except FileNotFoundError:  # taken by another poller, or renamed by its writer
                continue
            if stat.S_ISDIR(info.st_mode):
                continue
            look = (info.st_size, info.st_mtime_ns)
            seen = self._looks.get(name)
            first = seen[1] if seen is not None and seen[0] == look else at
            looks[name] = (look, first)
            if seen is None or seen[0] != look or at - first < self.settle:
                waiting.append(name)
                continue
            try:
                done = self._take(name, info)
            except Exception as e:
                self._report(name, look, f"`{name}` was left in the folder: {one_line(e)}")
                errors.append(name)
                continue
            if done is None:  # it changed while being read: look again
                del looks[name]
                waiting.append(name)
            else:
                moved.append(done)
        self._looks = looks
        self._reported = {seen for seen in self._reported if seen[0] in looks}
        return Poll(moved=tuple(moved), waiting=tuple(waiting), errors=tuple(errors))

    def _names(self) -> list[str]:
        """The entries to look at, as paths relative to the folder (`/`-separated)."""
        if not self.recursive:
            return [n for n in sorted(os.listdir(self.folder)) if not _ignored(n)]
        found: list[str] = []
        for top, dirs, files in os.walk(self.folder, followlinks=False):
            here = Path(top).relative_to(self.folder)
            dirs[:] = sorted(
                d
                for d in dirs
                if not d.startswith(".") and not (here == Path(".") and d in (PROCESSED, FAILED))
            )
            found += [(here / f).as_posix() for f in files if not _ignored(f)]
        return sorted(found)

    def _take(self, name: str, info: os.stat_result) -> Moved | None:
        path = self.folder / name
        look = (info.st_size, info.st_mtime_ns)
        refused = self._refusal(path, info)
        if refused is not None:
            done = self._move(name, FAILED, note=refused)
            self._report(name, look, refused)
            return done
        limit = size_limit(name, None)
        data = _read(path, limit, look)
        if data is None:
            return None
        sha256 = hashlib.sha256(data).hexdigest()
        accepted = self.intake.accept_bytes(
            self.source,
            f"{name}#{sha256}",
            data,
            name=Path(name).name,
            detail={"path": name, "size": info.st_size},
        )
        # committed: from here on a crash leaves the file, and the next poll only moves it
        if accepted.error is not None:
            done = self._move(name, FAILED, note=accepted.error)
        else:
            done = self._move(name, PROCESSED)
        return Moved(
            name=name,
            to=done.to,
            run_id=accepted.run_id,
            new=accepted.new,
            error=accepted.error,
        )

    def _refusal(self, path: Path, info: os.stat_result) -> str | None:
        """Why `path` is not taken (it goes to failed/), or None if it is read."""
        name = path.relative_to(self.folder).as_posix()
        if path.is_symlink():
            real = os.path.realpath(path)
            boundary = os.path.realpath(self.folder)
            if os.path.commonpath([real, boundary]) != boundary:
                return f"`{name}` is a symlink to `{real}`, outside the watched folder"
            if stat.S_ISLNK(info.st_mode):
                return f"`{name}` is a broken symlink (`{os.readlink(path)}` does not exist)"
        if not stat.S_ISREG(info.st_mode):
            return f"`{name}` is not a regular file (a FIFO, socket or device): it was not opened"
        if not supported(name, None):
            return (
                f"`{name}` is of a type handrail does not read (by its suffix); the formats are "
                "in docs/documents.md"
            )
        return None

    def _move(self, name: str, to: str, *, note: str | None = None) -> Moved:
        """Move `name` into the subfolder `to` under a name not taken there (never
        overwriting), and write `note` beside it."""
        where = Path(name).parent
        target = self.folder / to / where
        target.mkdir(parents=True, exist_ok=True)
        dest = _place(self.folder / name, target)
        if dest is None:
            return Moved(name=name, to=None)  # another poller moved it
        if note is not None:
            (target / f"{dest.name}.error.txt").write_text(note + "\n", encoding="utf-8")
        return Moved(name=name, to=(Path(to) / where / dest.name).as_posix(), error=note)

    def _report(self, name: str, look: _Look, error: str) -> None:
        """Record `error` as the trigger's last error (and announce it as `trigger.failed`),
        once per file and look, not on every poll."""
        if (name, look) in self._reported:
            return
        self._reported.add((name, look))
        report_error(
            self.intake.store,
            name=self.source,
            kind="folder",
            pipeline=self.intake.pipeline.name,
            error=error,
            key=f"{name}@{look[0]}:{look[1]}",
            log=log,
        )


@dataclass(kw_only=True)
class FolderWatch:
    """Runs `trigger.poll_once` on a thread of its own every `interval` seconds (every
    `trigger.settle` seconds while a file is waiting to settle), and sooner when watchfiles
    sees the folder change."""

    trigger: FolderTrigger
    interval: float = 2.0
    nudge: bool = True
    """Watch the folder with watchfiles to poll early (the poll is the source of truth)."""
    error: str | None = None
    """The last poll's failure (listing the folder), else None."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> FolderWatch:
        self.trigger.folder.mkdir(parents=True, exist_ok=True)
        self._threads.append(threading.Thread(target=self._poll, name="handrail-folder"))
        if self.nudge:
            self._threads.append(threading.Thread(target=self._watch, name="handrail-folder-nudge"))
        for thread in self._threads:
            thread.daemon = True
            thread.start()
        return self

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                done = self.trigger.poll_once()
                self.error = None
            except Exception as e:  # the folder is gone or unreadable: say so, keep polling
                done = Poll()
                if self.error != one_line(e):
                    log.warning("%s: %s", self.trigger.source, one_line(e))
                self.error = one_line(e)
            pause = self.trigger.settle if done.waiting else self.interval
            self._wake.wait(max(pause, 0.05))

    def _watch(self) -> None:
        try:
            from watchfiles import watch
        except ImportError:  # polling alone is enough: the nudge only makes it sooner
            return
        try:
            for _ in watch(
                self.trigger.folder,
                stop_event=self._stop,
                recursive=self.trigger.recursive,
                debounce=200,
                rust_timeout=1000,
                raise_interrupt=False,
            ):
                self._wake.set()
        except Exception as e:  # no inotify (a network share...): the poll goes on
            log.info("%s: not watching for changes (%s)", self.trigger.source, one_line(e))


def _ignored(name: str) -> bool:
    return name.startswith(".") or name.endswith(PARTIAL_SUFFIXES)


def _look_at(path: Path) -> os.stat_result:
    """What `path` is: the file a symlink leads to (the link itself when broken)."""
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        try:
            return os.stat(path)
        except OSError:
            return info
    return info


def _read(path: Path, limit: int, look: _Look) -> bytes | None:
    """At most `limit` + 1 bytes of `path`, never opening a FIFO; None when it is no longer
    the regular file of size and mtime `look` (it changed since it was looked at)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode) or (info.st_size, info.st_mtime_ns) != look:
            return None
        return file.read(limit + 1)


def _place(source: Path, target: Path) -> Path | None:
    """Move `source` into the folder `target` under its name, else `stem-2.suffix`... (the
    first not taken: a hard link never overwrites), and answer where; None when `source` is
    gone (another poller moved it)."""
    for candidate in _names(source.name):
        dest = target / candidate
        try:
            os.link(source, dest, follow_symlinks=False)
        except FileExistsError:
            if not _same(source, dest):
                continue
            # linked there by a poller that died (or raced) before the unlink below
        except FileNotFoundError:
            return None
        except OSError as e:  # a file system without hard links: check, then rename
            if e.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            if os.path.lexists(dest):
                continue
            try:
                os.rename(source, dest)
            except FileNotFoundError:
                return None
            return dest
        # the other poller's unlink may come first: the file is in `dest` all the same
        with contextlib.suppress(FileNotFoundError):
            os.unlink(source)
        return dest
    raise OSError(f"no free name for `{source.name}` in `{target}`")


def _names(name: str) -> list[str]:
    """`name`, then `stem-2.suffix`, `stem-3.suffix`..."""
    path = Path(name)
    return [name, *(f"{path.stem}-{n}{path.suffix}" for n in range(2, 10_000))]


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samestat(os.lstat(a), os.lstat(b))
    except FileNotFoundError:
        return False


__all__ = [
    "FAILED",
    "PARTIAL_SUFFIXES",
    "PROCESSED",
    "FolderTrigger",
    "FolderWatch",
    "Moved",
    "Poll",
]
