"""Results of earlier runs, so an unchanged environment is not loaded, rendered and checked again.

An entry says: environment E, built from these input files with these digests (its file and every partial
it extends), rendered to artifacts with these digests and produced these policy findings. It is used only
when every one of those input files still has its digest, under the same infragen code (every module and
template of the package), the same Python and the same installed pydantic, pydantic-core, Jinja2,
MarkupSafe and PyYAML; and even then only to say "output/E is exactly what a build would write": if
anything in output/E differs, E is loaded and rendered as without a cache, so diffs and writes always come
from a real render. Environments with input problems are never stored.

One file per environments directory (and working directory, which the paths in messages depend on),
rewritten atomically by the parent process when entries change: a cold run of 1000 environments makes one
file, not 1000. Like the compiled templates, it lives in $XDG_CACHE_HOME/infragen (default ~/.cache), is
not written when PYTHONDONTWRITEBYTECODE is set, and is skipped entirely with --no-cache. A cache that
cannot be read is ignored; one that cannot be written is not an error.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

FORMAT = 1  # bump when what an entry holds, or how it is keyed, changes
PACKAGE = Path(__file__).resolve().parent
DEPENDENCIES = ("pydantic", "pydantic_core", "jinja2", "markupsafe", "yaml", "_yaml")


def cache_home() -> Path | None:
    """$XDG_CACHE_HOME/infragen (default ~/.cache/infragen), or None without a usable home directory."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "infragen") if os.path.isabs(base) else None


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=20).digest()


@lru_cache(maxsize=1)
def code_fingerprint() -> bytes:
    """Everything besides the input files that decides what a build writes: infragen's own files, the
    interpreter, and where and when each library that shapes the output was installed (an upgrade rewrites
    its files). Found without importing those libraries."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{FORMAT}|{sys.implementation.name}|{sys.version}|{sys.maxunicode}".encode())
    for path in sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".j2") and p.is_file()):
        h.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for name in DEPENDENCIES:
        spec = find_spec(name)
        origin = getattr(spec, "origin", None) if spec is not None else None
        if origin and os.path.exists(origin):
            st = os.stat(origin)
            h.update(f"{name}|{origin}|{st.st_size}|{st.st_mtime_ns}".encode())
        else:
            h.update(f"{name}|missing".encode())
    return h.digest()


@dataclass
class Entry:
    inputs: tuple[tuple[str, bytes], ...]  # (file name in the environments directory, digest of its bytes)
    artifacts: dict[str, bytes]  # path below output/ -> digest of the bytes a build writes
    findings: list  # policy findings (errors.Problem), as the checker returned them


@dataclass
class ResultCache:
    path: Path | None  # None: read nothing, write nothing
    environments_dir: Path
    writable: bool
    entries: dict[str, Entry] = field(default_factory=dict)
    added: dict[str, Entry] = field(default_factory=dict)
    looked_up: dict[str, Entry | None] = field(default_factory=dict)  # per run: inputs are read once
    forgotten: bool = False  # entries of environments that are gone were dropped: save even with none added

    @classmethod
    def open(cls, environments_dir: Path, enabled: bool = True) -> "ResultCache":
        home = cache_home() if enabled else None
        if home is None:
            return cls(None, environments_dir, False)
        where = f"{os.path.abspath(environments_dir)}\0{os.getcwd()}".encode()
        path = home / "results" / f"{hashlib.blake2b(where, digest_size=12).hexdigest()}.pickle"
        cache = cls(path, environments_dir, not sys.dont_write_bytecode)
        try:
            with open(path, "rb") as fh:
                fingerprint, entries = pickle.load(fh)
            if fingerprint == code_fingerprint() and isinstance(entries, dict):
                cache.entries = entries
        except Exception:  # noqa: BLE001 - missing, damaged or from another version: start empty
            pass
        return cache

    def lookup(self, name: str) -> Entry | None:
        """The entry for `name` if every input file it was built from is unchanged."""
        if name not in self.looked_up:
            self.looked_up[name] = self._fresh(self.entries.get(name))
        return self.looked_up[name]

    def _fresh(self, entry: Entry | None) -> Entry | None:
        if entry is None:
            return None
        for file_name, expected in entry.inputs:
            try:
                with open(self.environments_dir / file_name, "rb") as fh:
                    if digest(fh.read()) != expected:
                        return None
            except OSError:
                return None
        return entry

    def add(self, name: str, inputs: tuple[tuple[str, bytes], ...], files: dict[str, str], findings: list) -> None:
        if self.path is None or not self.writable:
            return
        self.added[name] = Entry(inputs, {path: digest(text.encode("utf-8")) for path, text in files.items()}, list(findings))

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
        self.entries.update(self.added)
        self.added, self.forgotten = {}, False
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                pickle.dump((code_fingerprint(), self.entries), fh, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, self.path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
