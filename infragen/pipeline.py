"""Load, render and policy-check many environments, on every core when there are enough of them to pay.

Orchestration only: each worker runs the same load -> render -> policy code on a chunk of environment
names, hands each environment's {path: text} to the caller's `each` (which, for build and check, plans
that environment's directory against the output: see cli) and sends back its input problems, what `each`
returned and the policy findings (policy rules are per environment). Results are merged in name order,
so output and findings are identical whether one process did the work or several. Workers are forked
after the imports, so they start in a few milliseconds and share the parent's compiled models and
templates. Comparing with the output in the workers, not after them, spreads the reading of every
existing file over the cores, and sends back only what differs instead of every file's text.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Any, Callable, Iterable

from .cache import ResultCache
from .errors import InputError, Problem
from .discover import Discovery

# A worker costs ~30 ms of CPU (fork, copy-on-write faults, pickling its results back) and an environment
# 1-2 ms, so below this many environments one process is about as fast: too little work to share.
PARALLEL_MIN = 64
# This process also merges what the workers send back: it takes a slightly smaller share.
PARENT_SHARE = 0.9

# What to keep of one environment's files: called as each(name, {path: text}), in whichever process
# rendered them; its result must pickle.
Each = Callable[[str, dict[str, str]], Any]
# With a result cache: called as reuse(name, {path: digest}) for an environment whose inputs are unchanged
# since the cached run; returns what `each` would have, or MISS to have the environment loaded and rendered.
Reuse = Callable[[str, dict[str, bytes]], Any]
MISS = object()
# input problems, each() per environment, policy findings, new cache entries
Result = tuple[list[Problem], list[Any], list[Problem], dict[str, Any]]


def _files(name: str, files: dict[str, str]) -> dict[str, str]:
    return files


def default_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


@contextlib.contextmanager
def _no_cycle_collection():
    """Pause the cyclic GC: thousands of long-lived models make each full collection walk them all again
    (a third of load time at N=1000); the few cycles made meanwhile are collected when it resumes."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _work(environments_dir: Path, names: list[str], each: Each, cache: ResultCache | None = None,
          reuse: Reuse | None = None) -> Result:
    with _no_cycle_collection():
        return _load_and_render(environments_dir, names, each, cache, reuse)


def _load_and_render(environments_dir: Path, names: list[str], each: Each, cache: ResultCache | None = None,
                     reuse: Reuse | None = None) -> Result:
    """Load_many's loop, rendering, checking and handing over each environment as soon as it loads: only
    what `each` keeps stays in memory, not a thousand environments with their alert rules and tests."""
    loader = None  # the models, Jinja2 and the loader are imported at the first environment not in the cache
    problems: list[Problem] = []
    kept: list[Any] = []
    findings: list[Problem] = []
    for name in names:
        if cache is not None and reuse is not None and not problems:
            entry = cache.lookup(name)
            if entry is not None:
                outcome = reuse(name, entry.artifacts)
                if outcome is not MISS:
                    findings.extend(entry.findings)
                    kept.append(outcome)
                    continue
        if loader is None:
            from .load import Loader
            from .policy import check_environment
            from .render import render_environment

            loader = Loader(environments_dir)
        try:
            environment = loader.load(name)
        except InputError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
            continue
        if problems:
            continue  # nothing will be written: keep loading only to report every problem
        rendered = render_environment(environment)
        env_findings = check_environment(environment, rendered)
        findings.extend(env_findings)
        if cache is not None:
            cache.add(name, loader.inputs(name), rendered, env_findings)
        kept.append(each(name, rendered))
    added = cache.added if cache is not None else {}
    return (problems, [], [], {}) if problems else ([], kept, findings, added)


def _fork_worker(environments_dir: Path, names: list[str], each: Each, cache: ResultCache | None,
                 reuse: Reuse | None) -> tuple[int, int]:
    """Start a child that does `_work` and pickles its result into a pipe. Returns (pid, read end)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid:
        os.close(write_fd)
        return pid, read_fd
    # Child: never return into the caller's stack (click, pytest...); leave through os._exit only.
    code = 0
    try:
        os.close(read_fd)
        result = _work(environments_dir, names, each, cache, reuse)
        with os.fdopen(write_fd, "wb") as pipe:
            pickle.dump(result, pipe, protocol=pickle.HIGHEST_PROTOCOL)
    except BaseException:  # noqa: BLE001 - the parent redoes this chunk itself and reports any error
        code = 1
    finally:
        os._exit(code)


def _collect(pid: int, read_fd: int) -> Result | None:
    """The child's result, or None when it failed (the caller then does the chunk itself)."""
    with os.fdopen(read_fd, "rb") as pipe:
        try:
            result = pickle.load(pipe)  # frame by frame: never the whole pickle and its result at once
        except Exception:  # noqa: BLE001 - cut short by a failed child
            result = None
    _, status = os.waitpid(pid, 0)
    return result if os.waitstatus_to_exitcode(status) == 0 else None


def _stop(children: list[tuple[int, int | None]]) -> None:
    for pid, read_fd in children:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        if read_fd is not None:
            with contextlib.suppress(OSError):
                os.close(read_fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _chunks(names: list[str], count: int, first_share: float = 1.0) -> list[list[str]]:
    """`count` contiguous chunks in name order; the first (this process's) weighted by `first_share`."""
    weights = [first_share] + [1.0] * (count - 1)
    total = sum(weights)
    chunks, start, acc = [], 0, 0.0
    for i, weight in enumerate(weights):
        acc += weight
        end = len(names) if i == count - 1 else round(len(names) * acc / total)
        chunks.append(names[start:end])
        start = end
    return chunks


def process(environments_dir: Path, requested: Iterable[str] | None, *, workers: int | None = None,
            parallel_min: int | None = None, each: Each = _files, reuse: Reuse | None = None,
            cache: ResultCache | None = None) -> tuple[list[str], list[Any], list[Problem]]:
    """The names of the environments selected, each(name, {path: text}) for every one of them (by default
    the files themselves), in name order, and their policy findings. Raises InputError listing the
    problems of every environment (in name order), as Loader.load_many does.

    With a `cache` (see infragen.cache) and `reuse`, an environment whose input files are unchanged since a
    cached run is handed to reuse(name, {path: digest}) instead, and is loaded and rendered only if that
    returns MISS; new results are added to the cache, and saved once all are in.
    """
    names = Discovery(environments_dir).select(requested)
    if cache is not None and not requested:
        cache.keep_only(names)
    workers = default_workers() if workers is None else max(1, workers)
    can_fork = hasattr(os, "fork") and sys.platform != "darwin"  # macOS frameworks are not fork-safe
    parallel_min = PARALLEL_MIN if parallel_min is None else parallel_min
    if workers == 1 or len(names) < max(parallel_min, 2) or not can_fork:
        problems, kept, findings, _added = _work(environments_dir, names, each, cache, reuse)
    else:
        if cache is None or reuse is None or any(cache.lookup(name) is None for name in names):
            from .render import _templates

            _templates()  # imported and compiled once here, inherited by every worker
        chunks = _chunks(names, min(workers, len(names)), PARENT_SHARE)
        sys.stdout.flush()
        sys.stderr.flush()
        children: list[tuple[int, int | None]] = [_fork_worker(environments_dir, chunk, each, cache, reuse)
                                                  for chunk in chunks[1:]]
        try:
            results = [_work(environments_dir, chunks[0], each, cache, reuse)]
            while children:
                pid, read_fd = children.pop(0)
                try:
                    result = _collect(pid, read_fd)  # closes read_fd whatever happens
                except BaseException:
                    _stop([(pid, None)])
                    raise
                results.append(result if result is not None
                               else _work(environments_dir, chunks[len(results)], each, cache, reuse))
        finally:
            _stop(children)  # only when this process failed (Ctrl-C, a bug): leave no worker behind
        problems, kept, findings = [], [], []
        for chunk_problems, chunk_kept, chunk_findings, chunk_added in results:
            problems.extend(p for p in chunk_problems if p not in problems)
            kept.extend(chunk_kept)
            findings.extend(chunk_findings)
            if cache is not None:
                cache.added.update(chunk_added)
    if cache is not None:
        cache.save()
    if problems:
        raise InputError(problems)
    return names, kept, findings
