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

from .errors import InputError, Problem
from .load import Loader

# A worker costs ~30 ms of CPU (fork, copy-on-write faults, pickling its results back) and an environment
# 1-2 ms, so below this many environments one process is about as fast: too little work to share.
PARALLEL_MIN = 64
# This process also merges what the workers send back: it takes a slightly smaller share.
PARENT_SHARE = 0.9

# What to keep of one environment's files: called as each(name, {path: text}), in whichever process
# rendered them; its result must pickle.
Each = Callable[[str, dict[str, str]], Any]
Result = tuple[list[Problem], list[Any], list[Problem]]  # input problems, each() per environment, policy findings


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


def _work(environments_dir: Path, names: list[str], each: Each) -> Result:
    with _no_cycle_collection():
        return _load_and_render(environments_dir, names, each)


def _load_and_render(environments_dir: Path, names: list[str], each: Each) -> Result:
    """Load_many's loop, rendering, checking and handing over each environment as soon as it loads: only
    what `each` keeps stays in memory, not a thousand environments with their alert rules and tests."""
    from .policy import check_environment
    from .render import render_environment

    loader = Loader(environments_dir)
    problems: list[Problem] = []
    kept: list[Any] = []
    findings: list[Problem] = []
    for name in names:
        try:
            environment = loader.load(name)
        except InputError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
            continue
        if problems:
            continue  # nothing will be written: keep loading only to report every problem
        rendered = render_environment(environment)
        findings.extend(check_environment(environment, rendered))
        kept.append(each(name, rendered))
    return (problems, [], []) if problems else ([], kept, findings)


def _fork_worker(environments_dir: Path, names: list[str], each: Each) -> tuple[int, int]:
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
        result = _work(environments_dir, names, each)
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
            parallel_min: int = PARALLEL_MIN, each: Each = _files) -> tuple[list[str], list[Any], list[Problem]]:
    """The names of the environments selected, each(name, {path: text}) for every one of them (by default
    the files themselves), in name order, and their policy findings. Raises InputError listing the
    problems of every environment (in name order), as Loader.load_many does.
    """
    names = Loader(environments_dir).select(requested)
    workers = default_workers() if workers is None else max(1, workers)
    can_fork = hasattr(os, "fork") and sys.platform != "darwin"  # macOS frameworks are not fork-safe
    if workers == 1 or len(names) < max(parallel_min, 2) or not can_fork:
        problems, kept, findings = _work(environments_dir, names, each)
    else:
        from .render import _templates

        _templates()  # compiled once here, inherited by every worker
        chunks = _chunks(names, min(workers, len(names)), PARENT_SHARE)
        sys.stdout.flush()
        sys.stderr.flush()
        children: list[tuple[int, int | None]] = [_fork_worker(environments_dir, chunk, each) for chunk in chunks[1:]]
        try:
            results = [_work(environments_dir, chunks[0], each)]
            while children:
                pid, read_fd = children.pop(0)
                try:
                    result = _collect(pid, read_fd)  # closes read_fd whatever happens
                except BaseException:
                    _stop([(pid, None)])
                    raise
                results.append(result if result is not None else _work(environments_dir, chunks[len(results)], each))
        finally:
            _stop(children)  # only when this process failed (Ctrl-C, a bug): leave no worker behind
        problems, kept, findings = [], [], []
        for chunk_problems, chunk_kept, chunk_findings in results:
            problems.extend(p for p in chunk_problems if p not in problems)
            kept.extend(chunk_kept)
            findings.extend(chunk_findings)
    if problems:
        raise InputError(problems)
    return names, kept, findings
