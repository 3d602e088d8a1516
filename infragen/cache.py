"""Results of earlier runs, so an unchanged environment is not loaded, rendered and checked again.

An entry says: environment E, built from these input files with these digests (its file and every partial
it extends), rendered to artifacts with these digests and produced these policy findings. It is used only
when every one of those input files still has its digest, under the same infragen code (every module and
template of the package), the same Python and the same versions of the libraries in DEPENDENCIES; and even
then only to say "output/E is exactly what a build would write": if
anything in output/E differs, E is loaded and rendered as without a cache, so diffs and writes always come
from a real render. Environments with input problems are never stored.

One file per environments directory (and working directory, which the paths in messages depend on),
rewritten atomically by the parent process when entries change: a cold run of 1000 environments makes one
file, not 1000. Like the compiled templates, it lives in $XDG_CACHE_HOME/infragen (default ~/.cache), and is
skipped entirely with --no-cache (INFRAGEN_CACHE=0, `cache = false`). A cache that cannot be read is
ignored; one that cannot be written is not an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from .discover import MAX_FILE_BYTES, read_settings_bytes
from .errors import Finding, Location, Problem
from .fsutil import atomic_write, cache_home, open_regular

FORMAT = 2  # bump when what an entry holds, or how it is keyed, changes
PACKAGE = Path(__file__).resolve().parent
# What shapes the output or the findings besides infragen itself (validation included): distribution
# names as in their .dist-info directories, normalised.
DEPENDENCIES = ("pydantic", "pydantic_core", "annotated_types", "typing_extensions", "typing_inspection",
                "jinja2", "markupsafe", "pyyaml")


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=20).digest()


def code_fingerprint(*, again: bool = False) -> str | None:
    """Everything besides the input files that decides what a build writes and finds: infragen's own files,
    the interpreter, and the installed version of each library that shapes the output (from its .dist-info
    directory, so a CI job that reinstalls the same versions keeps its cache). Found without importing
    those libraries. None when infragen's source cannot be read (a zipped or bytecode-only install): then
    nothing is cached."""
    if again:
        _fingerprint.cache_clear()
    return _fingerprint()


@lru_cache(maxsize=1)
def _fingerprint() -> str | None:
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{FORMAT}|{sys.implementation.name}|{sys.version}|{sys.maxunicode}".encode())
    if not Path(__file__).is_file():  # a zipped or bytecode-only install: the code cannot be fingerprinted
        return None
    sources = sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".j2") and p.is_file())
    for path in sources:
        h.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for line in _installed(DEPENDENCIES):
        h.update(line.encode() + b"\0")
    return h.hexdigest()


def _installed(distributions: tuple[str, ...]) -> list[str]:
    """`name-version` of each distribution as the import system would find it (the first sys.path entry that
    has its .dist-info), without importlib.metadata (tens of milliseconds to import)."""
    wanted = {name: "" for name in distributions}
    for entry in sys.path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:
            continue
        for dirname in names:
            if dirname.endswith(".dist-info"):
                dist, _, version = dirname[: -len(".dist-info")].partition("-")
                key = dist.lower().replace("-", "_").replace(".", "_")
                if key in wanted and not wanted[key]:
                    wanted[key] = f"{key}-{version}"
    lines = []
    for name, found in wanted.items():
        if not found:  # no metadata (a source checkout on the path): where its code is, and when it was written
            module = {"pyyaml": "yaml"}.get(name, name)
            spec = find_spec(module)
            origin = getattr(spec, "origin", None) if spec is not None else None
            st = os.stat(origin) if origin and os.path.exists(origin) else None
            found = f"{name}|{origin}|{st.st_size}|{st.st_mtime_ns}" if st else f"{name}|missing"
        lines.append(found)
    return lines


@dataclass
class Entry:
    inputs: tuple[tuple[str, bytes], ...]  # (file name in the environments directory, digest of its bytes)
    artifacts: dict[str, bytes]  # path below output/ -> digest of the bytes a build writes
    findings: list[Problem]  # policy findings, as the checker returned them

    @classmethod
    def of(cls, inputs: tuple[tuple[str, bytes], ...], files: dict[str, str], findings: list) -> Entry:
        return cls(inputs, {path: digest(text.encode("utf-8")) for path, text in files.items()}, list(findings))


# --- the file: JSON, so a damaged or planted file is data that fails validation, never code -------------

def _location(data: Any) -> Location | None:
    if data is None:
        return None
    file, line, column, origin = data
    for value, kind in ((file, str), (origin, str), (line, int), (column, int)):
        if value is not None and type(value) is not kind:
            raise ValueError("bad location")
    return Location(file, line, column, origin)


def _location_json(loc: Location | None) -> list | None:
    return None if loc is None else [loc.file, loc.line, loc.column, loc.origin]


def _text(value: Any) -> str | None:
    return None if value is None else _required_text(value)


def _required_text(value: Any) -> str:
    if type(value) is str:
        return value
    raise ValueError("bad text")


def _related(data: Any) -> Location:
    location = _location(data)
    if location is None:
        raise ValueError("bad related location")
    return location


def _finding(data: dict) -> Problem:
    level = data["level"]
    if level not in ("error", "warning", "info"):
        raise ValueError("bad level")
    return Finding(_location(data["location"]), _text(data["field"]), _required_text(data["message"]), level,
                   _text(data["rule"]), _text(data["environment"]), tuple(_related(r) for r in data["related"]),
                   _text(data["hint"]))


def _finding_json(p: Problem) -> dict:
    return {"location": _location_json(p.location), "field": p.field, "message": p.message, "level": p.level,
            "rule": p.rule, "environment": p.environment, "related": [_location_json(r) for r in p.related],
            "hint": getattr(p, "hint", None)}


def _entry(data: dict) -> Entry:
    inputs = tuple((_required_text(name), bytes.fromhex(d)) for name, d in data["inputs"])
    if not inputs or any(os.sep in name or "/" in name or not name.endswith(".yaml") for name, _ in inputs):
        raise ValueError("bad inputs")
    artifacts = {_required_text(path): bytes.fromhex(d) for path, d in data["artifacts"].items()}
    return Entry(inputs, artifacts, [_finding(f) for f in data["findings"]])


def _entry_json(entry: Entry) -> dict:
    return {"inputs": [[name, d.hex()] for name, d in entry.inputs],
            "artifacts": {path: d.hex() for path, d in sorted(entry.artifacts.items())},
            "findings": [_finding_json(p) for p in entry.findings]}


@dataclass
class ResultCache:
    path: Path | None  # None: read nothing, write nothing
    environments_dir: Path
    writable: bool
    fingerprint: str | None = None
    entries: dict[str, Entry] = field(default_factory=dict)
    added: dict[str, Entry] = field(default_factory=dict)
    looked_up: dict[str, Entry | None] = field(default_factory=dict)  # per run: inputs are read once
    forgotten: bool = False  # entries of environments that are gone were dropped: save even with none added

    @classmethod
    def open(cls, environments_dir: Path, enabled: bool = True) -> ResultCache:
        home = cache_home() if enabled else None
        fingerprint = code_fingerprint() if home is not None else None
        if home is None or fingerprint is None:
            return cls(None, environments_dir, False)
        # Messages and generated headers name files by the directory as given (relative to the working
        # directory) and by its real name (after links): all of that picks the file.
        where = "\0".join([str(environments_dir), os.path.abspath(environments_dir), os.path.realpath(environments_dir),
                            os.getcwd()])
        path = home / "results" / f"{hashlib.blake2b(where.encode(), digest_size=12).hexdigest()}.json"
        cache = cls(path, environments_dir, True, fingerprint)
        try:
            cache.entries = cls._read(path, fingerprint)
        except Exception:  # noqa: BLE001 - missing, damaged, foreign or from another version: start empty
            cache.entries = {}
        return cache

    @staticmethod
    def _read(path: Path, fingerprint: str) -> dict[str, Entry]:
        with open_regular(path, follow_links=False) as fh:
            st = os.fstat(fh.fileno())
            # Only a file of ours that no one else can write: it decides what counts as up to date.
            if st.st_mode & 0o022 or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
                return {}
            data = json.loads(fh.read())
        if data.get("format") != FORMAT or data.get("fingerprint") != fingerprint:
            return {}
        return {_required_text(name): _entry(entry) for name, entry in data["entries"].items()}

    def lookup(self, name: str) -> Entry | None:
        """The entry for `name` if every input file it was built from is unchanged."""
        if name not in self.looked_up:
            self.looked_up[name] = self._fresh(self.entries.get(name))
        return self.looked_up[name]

    def _fresh(self, entry: Entry | None) -> Entry | None:
        if entry is None:
            return None
        for file_name, expected in entry.inputs:
            data = _read_input(self.environments_dir / file_name)
            if data is None or digest(data) != expected:
                return None
        return entry

    def keep_only(self, names: list[str]) -> None:
        """Forget environments that no longer exist (all of them are `names`), so renames do not pile up."""
        wanted = set(names)
        kept = {name: entry for name, entry in self.entries.items() if name in wanted}
        self.forgotten = self.forgotten or len(kept) != len(self.entries)
        self.entries = kept

    def save(self) -> None:
        """Write the entries added (the parent calls this once, with every worker's entries merged in)."""
        if self.path is None or not self.writable or not (self.added or self.forgotten):
            return
        if code_fingerprint(again=True) != self.fingerprint:
            return  # infragen changed on disk during this run: these results may come from either version
        self.entries.update(self.added)
        self.added, self.forgotten = {}, False
        document = {"format": FORMAT, "fingerprint": self.fingerprint,
                    "entries": {name: _entry_json(e) for name, e in sorted(self.entries.items())}}
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            atomic_write(self.path, json.dumps(document, separators=(",", ":")).encode("utf-8"), mode=0o600)
        except OSError:
            pass  # an unwritable cache only means no reuse next time


def _read_input(path: Path) -> bytes | None:
    """An input file's bytes, read as the loader reads it (never blocking on a FIFO or device, never a huge
    file whole). None, a miss, when that fails: the loader will then say what is wrong."""
    try:
        data = read_settings_bytes(path)
    except OSError:
        return None
    return None if len(data) > MAX_FILE_BYTES else data
