"""Load, render and policy-check many environments, on every core when there are enough of them to pay.

Orchestration only: each worker runs the same load -> render -> policy code on a chunk of environment
names and sends back its input problems, {path: text} and policy findings (policy rules are per
environment). Results are merged in name order, so output and findings are identical whether one
process did the work or several. Workers are forked after the imports, so they start in a few
milliseconds and share the parent's compiled models and templates.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Callable, Iterable

from .errors import InputError, Problem
from .load import Loader

# A worker costs ~30 ms of CPU (fork, copy-on-write faults, pickling its files back) and an environment
# 1.5-3 ms, so below this many environments one process is about as fast: too little work to share.
PARALLEL_MIN = 64
# Reading the existing output (a file per artifact) costs about a tenth of making it.
PARENT_SHARE = 0.9

Result = tuple[list[Problem], dict[str, str], list[Problem]]  # input problems, files, policy findings


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


def _work(environments_dir: Path, names: list[str]) -> Result:
    with _no_cycle_collection():
        return _load_and_render(environments_dir, names)


def _load_and_render(environments_dir: Path, names: list[str]) -> Result:
    """Load_many's loop, rendering and checking each environment as soon as it loads: only its files stay
    in memory, not a thousand environments with their cached alert rules and tests."""
    from .policy import check_environment
    from .render import render_environment

    loader = Loader(environments_dir)
    problems: list[Problem] = []
    files: dict[str, str] = {}
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
        files.update(rendered)
        findings.extend(check_environment(environment, rendered))
    return (problems, {}, []) if problems else ([], files, findings)


def _fork_worker(environments_dir: Path, names: list[str]) -> tuple[int, int]:
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
        result = _work(environments_dir, names)
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
            parallel_min: int = PARALLEL_MIN,
            meanwhile: Callable[[list[str]], object] | None = None) -> tuple[list[str], dict[str, str], list[Problem]]:
    """The names of the environments selected, their artifacts as {path: text}, and their policy findings.

    `meanwhile(names)` is called once in this process, while any workers run: reading the output directory
    there overlaps their work instead of following it. Raises InputError listing the problems of every
    environment (in name order), as Loader.load_many does.
    """
    names = Loader(environments_dir).select(requested)
    workers = default_workers() if workers is None else max(1, workers)
    can_fork = hasattr(os, "fork") and sys.platform != "darwin"  # macOS frameworks are not fork-safe
    if workers == 1 or len(names) < max(parallel_min, 2) or not can_fork:
        if meanwhile is not None:
            meanwhile(names)
        problems, files, findings = _work(environments_dir, names)
    else:
        from .render import _templates

        _templates()  # compiled once here, inherited by every worker
        # This process also runs `meanwhile` and merges the results: it takes a smaller share.
        chunks = _chunks(names, min(workers, len(names)), PARENT_SHARE if meanwhile is not None else 1.0)
        sys.stdout.flush()
        sys.stderr.flush()
        children: list[tuple[int, int | None]] = [_fork_worker(environments_dir, chunk) for chunk in chunks[1:]]
        try:
            if meanwhile is not None:
                meanwhile(names)
            results = [_work(environments_dir, chunks[0])]
            while children:
                pid, read_fd = children.pop(0)
                try:
                    result = _collect(pid, read_fd)  # closes read_fd whatever happens
                except BaseException:
                    _stop([(pid, None)])
                    raise
                results.append(result if result is not None else _work(environments_dir, chunks[len(results)]))
        finally:
            _stop(children)  # only when this process failed (Ctrl-C, a bug): leave no worker behind
        problems, files, findings = [], {}, []
        for chunk_problems, chunk_files, chunk_findings in results:
            problems.extend(p for p in chunk_problems if p not in problems)
            files.update(chunk_files)
            findings.extend(chunk_findings)
    if problems:
        raise InputError(problems)
    return names, dict(sorted(files.items())), findings
