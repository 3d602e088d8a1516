"""Compare rendered files with the output directory, and apply the difference safely.

Only this module touches `output/`. Ownership: a file is ours when it carries the generated-file marker
the way its format does (the registry says how: infragen.artifacts.format_of); anything else (a README, a hand-written override, a symlink) is never read through, overwritten
or deleted. Every write goes to a temporary file beside the target and is renamed into place, so an
interrupted build leaves each file either old or new.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import os
import stat
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .artifacts import BY_PATH, format_of
from .discover import ENV_NAME_RE
from .errors import Location, OutputError, WriteInterrupted
from .fsutil import TMP_TAG, atomic_write, display_path, open_regular

LOCK_NAME = ".infragen.lock"

ChangeKind = Literal["create", "update", "delete"]


@dataclass(frozen=True)
class Change:
    path: str  # relative to the output directory, '/'-separated
    kind: ChangeKind
    old: bytes | None
    new: bytes | None


@dataclass
class Plan:
    output_dir: Path
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    unowned: list[str] = field(default_factory=list)  # files in our directories that we did not generate
    conflicts: list[str] = field(default_factory=list)  # hand-written files where a build would write one

    @property
    def up_to_date(self) -> bool:
        return not self.changes

    def of_kind(self, kind: ChangeKind) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]


def _scan(output_dir: Path, subdirs: list[str] | None,
          exclude: Collection[str] = ()) -> tuple[dict[str, bytes], list[str]]:
    """Generated files (path -> their bytes) and other files below output_dir (or only below `subdirs`; or all
    but the directories named in `exclude`, which others scan). Builds and checks plan one environment's
    directory at a time (cli._plan), so this holds one environment's files (~50 KB), not a fleet's."""
    owned: dict[str, bytes] = {}
    unowned: list[str] = []
    if not output_dir.is_dir():
        return owned, unowned
    roots = [output_dir] if subdirs is None else [output_dir / d for d in subdirs]
    for root in roots:
        if root.is_symlink() or not root.is_dir():
            if root.is_symlink():
                unowned.append(root.relative_to(output_dir).as_posix())
            continue
        rel = "" if root == output_dir else root.relative_to(output_dir).as_posix() + "/"
        _scan_dir(str(root), rel, owned, unowned, exclude if root == output_dir else ())
    return owned, sorted(unowned)


def _scan_dir(directory: str, rel: str, owned: dict[str, bytes], unowned: list[str],
              exclude: Collection[str] = ()) -> None:
    # os.scandir with plain strings: its entries know file types without a stat() each, and this runs
    # over every file of every environment on each build and check.
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError:
        return
    subdirs = []
    for entry in entries:
        name = entry.name
        if name in exclude and (entry.is_dir() or entry.is_symlink()):
            continue  # an environment's directory (or a link in its place), scanned with that environment
        if entry.is_dir():
            if entry.is_symlink():  # never followed: not ours, whatever it points at
                unowned.append(rel + name)
            else:
                subdirs.append(entry)
            continue
        if name == LOCK_NAME or TMP_TAG in name:
            continue
        data = _read_owned(entry.path, rel + name)
        if data is None:
            unowned.append(rel + name)
        else:
            owned[rel + name] = data
    for entry in subdirs:
        _scan_dir(entry.path, f"{rel}{entry.name}/", owned, unowned)


def _read_owned(path: Path | str, rel: str) -> bytes | None:
    """The file's bytes if it is a regular file infragen generated (as its format marks one), else None. Never
    follows a symlink, never opens a FIFO or device (open() would block), never reads a large foreign file whole."""
    fmt = format_of(rel.partition("/")[2])
    try:
        fh = open_regular(path, follow_links=False)
    except OSError:  # a symlink (ELOOP), not a regular file, unreadable, vanished
        return None
    with fh:
        head = fh.read(fmt.head_bytes)
        return head + fh.read() if fmt.is_generated(head) else None


def _generatable(rel: str) -> bool:
    """Is `rel` a path some build writes (`<environment>/<artifact>`)? Only those are ever deleted."""
    env, _, artifact = rel.partition("/")
    return bool(ENV_NAME_RE.fullmatch(env)) and artifact in BY_PATH


def scan_output(output_dir: Path, environments: list[str] | None) -> tuple[dict[str, bytes], list[str]]:
    """What make_plan reads from the output directory (benchmarks/stages.py times it on its own)."""
    return _scan(Path(output_dir), environments)


def make_plan(files: dict[str, str], output_dir: Path, environments: list[str] | None, *, consume: bool = False,
              exclude: Collection[str] = (), defer_conflicts: bool = False) -> Plan:
    """What build would do. `environments` limits orphan detection to those environments' directories;
    None means the whole output directory belongs to the environments rendered (but the directories named
    in `exclude`, planned separately: see merge_plans). `consume`: empty `files` as each text is encoded, so a
    first build never holds every file twice (text and bytes). A hand-written file where a build writes one
    is an OutputError, or with `defer_conflicts` a line in plan.conflicts (raised by merge_plans)."""
    output_dir = Path(output_dir)
    existing, unowned = _scan(output_dir, environments, exclude)
    plan = Plan(output_dir=output_dir, unowned=[])
    unowned_set = set(unowned)
    rendered = set(files)
    for rel in sorted(files):
        new = (files.pop(rel) if consume else files[rel]).encode("utf-8")
        old = existing.get(rel)
        if old is None:
            if rel in unowned_set:  # a hand-written file sits where we generate one: never overwrite it
                plan.conflicts.append(rel)
                continue
            plan.changes.append(Change(rel, "create", None, new))
        elif old != new:
            plan.changes.append(Change(rel, "update", old, new))
        else:
            plan.unchanged.append(rel)
    for rel in sorted(set(existing) - rendered):
        if _generatable(rel):
            plan.changes.append(Change(rel, "delete", existing[rel], None))
        else:  # marked, but not where a build writes (`--output output/production`): never ours to delete
            unowned.append(rel)
    plan.unowned = sorted(unowned)
    if not defer_conflicts:
        _raise_conflicts(plan)
    return plan


def unchanged_plan(output_dir: Path, name: str, expected: dict[str, bytes]) -> Plan | None:
    """Environment `name`'s plan when its directory holds exactly the generated files whose digests are
    `expected` (hand-written files beside them aside): everything unchanged. None if anything differs."""
    from .cache import digest

    output_dir = Path(output_dir)
    existing, unowned = _scan(output_dir, [name])
    if existing.keys() != expected.keys() or any(rel in expected for rel in unowned):
        return None
    if any(digest(data) != expected[rel] for rel, data in existing.items()):
        return None
    return Plan(output_dir=output_dir, unchanged=sorted(expected), unowned=unowned)


def merge_plans(output_dir: Path, plans: Iterable[Plan]) -> Plan:
    """One plan of several made over disjoint parts of output_dir (an environment each, and the rest), in
    make_plan's order: writes by path, then deletions by path."""
    merged = Plan(output_dir=Path(output_dir))
    for plan in plans:
        merged.changes.extend(plan.changes)
        merged.unchanged.extend(plan.unchanged)
        merged.unowned.extend(plan.unowned)
        merged.conflicts.extend(plan.conflicts)
    merged.changes.sort(key=lambda c: (c.kind == "delete", c.path))
    for paths in (merged.unchanged, merged.unowned, merged.conflicts):
        paths.sort()
    _raise_conflicts(merged)
    return merged


def _raise_conflicts(plan: Plan) -> None:
    if plan.conflicts:
        raise OutputError.single("exists and was not generated by infragen; move it away or delete it, then build again",
                                 Location(display_path(plan.output_dir / plan.conflicts[0])))


def unified_diff(plan: Plan, label: str | None = None) -> str:
    """The diff build would apply, `git diff` style, with paths as the user sees them."""
    # Relative-looking labels even for an absolute --output: `a//tmp/x` would confuse `git apply`.
    prefix = (label if label is not None else display_path(plan.output_dir)).strip("/")
    chunks = []
    for change in plan.changes:
        old = (change.old or b"").decode("utf-8", "replace").splitlines(keepends=True)
        new = (change.new or b"").decode("utf-8", "replace").splitlines(keepends=True)
        path = f"{prefix}/{change.path}"
        fromfile = "/dev/null" if change.kind == "create" else f"a/{path}"
        tofile = "/dev/null" if change.kind == "delete" else f"b/{path}"
        lines = list(difflib.unified_diff(old, new, fromfile, tofile))
        for i, line in enumerate(lines):
            if not line.endswith("\n"):
                lines[i] = line + "\n\\ No newline at end of file\n"
        chunks.append("".join(lines))
    return "".join(chunks)


# --- applying ---------------------------------------------------------------------------------------

def _check_inside(output_dir: Path, target: Path | str, checked: set[str] | None = None) -> None:
    """Refuse to write through a symlink anywhere between output_dir and target.

    `checked`: directories already found fine in this pass, so 7000 files in 1000 environment directories
    cost one check per directory, not one per file and level."""
    parts = Path(target).relative_to(output_dir).parts
    current = os.fspath(output_dir)
    for i, part in enumerate(parts):
        current = os.path.join(current, part)
        last = i == len(parts) - 1
        if not last and checked is not None and current in checked:
            continue
        try:
            mode = os.lstat(current).st_mode
        except (FileNotFoundError, NotADirectoryError):
            mode = None
        if mode is not None and stat.S_ISLNK(mode):
            raise OutputError.single("is a symlink; infragen never writes through links in the output directory",
                                     Location(display_path(Path(current))))
        if mode is not None and not last and not stat.S_ISDIR(mode):
            raise OutputError.single("is a file where infragen needs a directory", Location(display_path(Path(current))))
        if not last and checked is not None:
            checked.add(current)


@contextlib.contextmanager
def output_lock(output_dir: Path) -> Iterator[None]:
    """Serialise builds sharing an output directory (a second build waits for the first)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks; builds are still per-file atomic
        yield
        return
    output_dir.mkdir(parents=True, exist_ok=True)
    # Lock the directory itself: no lock file is left behind in output/ for git to see.
    fd = os.open(output_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _check_still_ours(output_dir: Path, target: Path) -> None:
    """Re-check ownership under the lock: a hand-written file may have appeared since the plan was made."""
    if os.path.lexists(target) and _read_owned(target, target.relative_to(output_dir).as_posix()) is None:
        raise OutputError.single("exists and was not generated by infragen; move it away or delete it, then build again",
                                 Location(display_path(target)))


def _remove_stale_temporaries(output_dir: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(output_dir, followlinks=False):
        for name in filenames:
            if TMP_TAG in name and name.startswith("."):
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(dirpath, name))


def apply(plan: Plan) -> None:
    """Write creates and updates, then delete orphans. Each file is replaced atomically."""
    output_dir = plan.output_dir
    if not plan.changes:
        return
    if os.path.lexists(output_dir) and not output_dir.is_dir():
        raise OutputError.single("is not a directory (a file, or a link to nothing); artifacts are written into a directory",
                                 Location(display_path(output_dir)))
    checked: set[str] = set()
    for change in plan.changes:  # before the lock's mkdir: refuse a symlinked path without creating anything
        _check_inside(output_dir, output_dir / change.path, checked)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a parent is a file, permissions
        raise OutputError.single(f"cannot create: {exc.strerror or exc}", Location(display_path(output_dir))) from None
    with output_lock(output_dir):
        # Re-check everything under the lock and before the first write, so a refusal leaves nothing half-applied.
        checked.clear()
        for change in plan.changes:
            _check_inside(output_dir, output_dir / change.path, checked)
            _check_still_ours(output_dir, output_dir / change.path)
        _remove_stale_temporaries(output_dir)
        made: set[str] = set()  # directories created in this pass: one makedirs per directory, not per file
        root = os.fspath(output_dir)
        for change in plan.changes:
            target = os.path.join(root, *change.path.split("/"))
            try:
                _apply_one(output_dir, target, change, made)
            except OSError as exc:  # disk full, read-only, permissions: an error line, not a traceback
                raise WriteInterrupted.single(f"cannot write: {exc.strerror or exc}", Location(display_path(target))) from None


def _apply_one(output_dir: Path, target: str, change: Change, made: set[str]) -> None:
    if change.kind == "delete":
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        _prune_empty_dirs(output_dir, Path(target).parent)
        made.clear()  # pruning may have removed directories
        return
    assert change.new is not None
    directory = os.path.dirname(target)
    if directory not in made:
        os.makedirs(directory, exist_ok=True)
        made.add(directory)
    atomic_write(target, change.new)


def _prune_empty_dirs(output_dir: Path, directory: Path) -> None:
    while directory != output_dir and output_dir in directory.parents:
        try:
            directory.rmdir()
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                return
            raise
        directory = directory.parent
