"""A project's environment files and committed output as a git commit holds them, without a checkout.

`infragen review` compares the working tree with a base commit. The base side is read with git plumbing
(`git rev-parse`, `git ls-tree`, `git cat-file --batch`): the working tree, the index and HEAD are never
touched. The files are copied into a temporary directory (removed when the `with` block ends) whose
environments folder carries the real folder's name, so the loader labels them `environments/x.yaml` exactly as
it labels the working tree's files, and the generated headers of both sides agree.

Errors are `GitError`s (infragen.errors) with one clear line: not a git repository, git not installed, an unknown ref, a
shallow clone that does not have the base commit.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .errors import GitError
from .fsutil import display_path

REGULAR_MODES = {b"100644", b"100755"}  # blobs that are files (not links, not submodules)


@dataclass
class Snapshot:
    """The base side, on disk in a temporary directory."""

    ref: str  # as the user wrote it: `HEAD`, `origin/main`, a commit
    commit: str
    environments: Path  # folder named like the real environments folder (may be empty: the ref has none)
    output: Path
    environments_in_repo: str  # the environments folder's path inside the repository, '/'-separated ("" = root)
    output_in_repo: str
    files: dict[str, bytes] = field(default_factory=dict)  # environments folder's files by name

    def label(self, path_in_environments: str) -> str:
        """How a base file is named in messages: `REF:path/in/repo`."""
        inside = f"{self.environments_in_repo}/{path_in_environments}" if self.environments_in_repo else path_in_environments
        return f"{self.ref}:{inside}"


def _environ() -> dict[str, str]:
    return {**os.environ, "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0", "GIT_OPTIONAL_LOCKS": "0"}


def _git(cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, env=_environ(),
                              stdin=None if stdin is not None else subprocess.DEVNULL)
    except FileNotFoundError:
        raise GitError.single("git is not installed: `infragen review` reads the base side with git") from None
    except OSError as exc:
        raise GitError.single(f"cannot run git: {exc.strerror or exc}") from None


def _first_line(data: bytes) -> str:
    lines = data.decode("utf-8", "replace").strip().splitlines()
    return lines[0] if lines else ""


def _inside(path: Path, top: Path, what: str) -> str:
    try:
        rel = path.resolve().relative_to(top)
    except ValueError:
        raise GitError.single(f"the {what} directory {path} is outside the git repository at {top}") from None
    return rel.as_posix() if rel.parts else ""


def _safe(rel: str) -> bool:
    """A tree path that stays below the folder it is written into."""
    parts = PurePosixPath(rel).parts
    return bool(parts) and not PurePosixPath(rel).is_absolute() and all(p not in ("", ".", "..") for p in parts)


def resolve(ref: str, cwd: Path) -> tuple[Path, str]:
    """(repository top level, commit of `ref`), or a GitError saying why not."""
    if not ref or ref.startswith("-"):
        raise GitError.single(f"--base must be a git ref or commit, not {ref!r}")
    proc = _git(cwd, "rev-parse", "--show-toplevel")
    if proc.returncode != 0:
        raise GitError.single(f"{display_path(cwd)}: not in a git repository; `infragen review` compares with a git ref "
                              "(use `infragen diff` to compare with output/ without git)")
    top = Path(proc.stdout.decode("utf-8", "surrogateescape").strip()).resolve()
    proc = _git(cwd, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if proc.returncode == 0:
        return top, proc.stdout.decode("ascii").strip()
    shallow = _git(cwd, "rev-parse", "--is-shallow-repository").stdout.strip() == b"true"
    if shallow:
        raise GitError.single(f"{ref!r} is not in this shallow clone: fetch it first "
                              f"(`git fetch --depth=1 origin {ref}`), or check out with fetch-depth: 0")
    empty = _git(cwd, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").returncode != 0
    raise GitError.single(f"unknown git ref {ref!r}" + (": the repository has no commit yet" if empty else
                                                          " (a branch, tag or commit of this repository)"))


def _ls_tree(top: Path, commit: str, prefix: str) -> list[tuple[str, str]]:
    """(path below prefix, blob id) of every regular file below `prefix` at `commit`."""
    args = ["ls-tree", "-r", "-z", "--full-tree", commit]
    if prefix:
        args += ["--", prefix]
    proc = _git(top, *args)
    if proc.returncode != 0:
        raise GitError.single(f"git ls-tree {commit} failed: {_first_line(proc.stderr)}")
    found = []
    for record in proc.stdout.split(b"\0"):
        if not record:
            continue
        meta, _, raw_path = record.partition(b"\t")
        mode, kind, oid = meta.split(b" ")
        if kind != b"blob" or mode not in REGULAR_MODES:
            continue
        path = raw_path.decode("utf-8", "surrogateescape")
        rel = path[len(prefix) + 1:] if prefix else path
        if prefix and not path.startswith(prefix + "/"):
            continue
        if _safe(rel):
            found.append((rel, oid.decode("ascii")))
    return found


def _cat(top: Path, oids: list[str]) -> dict[str, bytes]:
    """Blob contents by id, in one `git cat-file --batch`."""
    unique = sorted(set(oids))
    if not unique:
        return {}
    proc = _git(top, "cat-file", "--batch", stdin="".join(f"{oid}\n" for oid in unique).encode("ascii"))
    if proc.returncode != 0:
        raise GitError.single(f"git cat-file failed: {_first_line(proc.stderr)}")
    data, pos, blobs = proc.stdout, 0, {}
    for oid in unique:
        end = data.index(b"\n", pos)
        header = data[pos:end].split(b" ")
        if len(header) != 3:  # "<oid> missing": a partial clone without the blob
            raise GitError.single(f"git object {oid} is missing (a partial or shallow clone?): fetch the base commit")
        size = int(header[2])
        blobs[oid] = data[end + 1:end + 1 + size]
        pos = end + 1 + size + 1
    return blobs


@contextlib.contextmanager
def snapshot(ref: str, environments_dir: Path, output_dir: Path) -> Iterator[Snapshot]:
    """The environment files and committed output of `ref`, in a temporary directory for the `with` block."""
    environments_dir, output_dir = Path(environments_dir), Path(output_dir)
    cwd = next((p for p in (environments_dir, environments_dir.parent) if p.is_dir()), Path.cwd())
    top, commit = resolve(ref, cwd)
    env_rel = _inside(environments_dir, top, "environments")
    out_rel = _inside(output_dir, top, "output")
    env_files = [(rel, oid) for rel, oid in _ls_tree(top, commit, env_rel) if "/" not in rel]
    out_files = _ls_tree(top, commit, out_rel)
    blobs = _cat(top, [oid for _, oid in env_files + out_files])
    label = environments_dir.resolve().name or "environments"
    with tempfile.TemporaryDirectory(prefix="infragen-review-") as tmp:
        root = Path(tmp)
        base_envs, base_out = root / "base" / label, root / "base-output"
        base_envs.mkdir(parents=True)
        base_out.mkdir()
        for rel, oid in env_files:
            (base_envs / rel).write_bytes(blobs[oid])
        for rel, oid in out_files:
            target = base_out.joinpath(*rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(blobs[oid])
        yield Snapshot(ref, commit, base_envs, base_out, env_rel, out_rel,
                       {rel: blobs[oid] for rel, oid in env_files})
