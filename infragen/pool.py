"""Run one function over chunks of work on every core: a fork-context process pool, and nothing else.

The function is handed to the workers when they start (forked, so it is inherited, never pickled: a closure
is fine, and every module the parent imported is already loaded); only each chunk and its result travel
through the pool's pipes. This process does the first chunk itself while the workers do the rest. A chunk
whose worker failed (a crash, a signal, an exception) is done again here, so the caller sees either every
result or this process's own exception.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

Chunk = TypeVar("Chunk")
Result = TypeVar("Result")

_installed: Callable[[Any], Any] | None = None  # the function, in a worker


def _install(func: Callable[[Any], Any]) -> None:
    global _installed
    _installed = func


def _run_installed(chunk: Any) -> Any:
    assert _installed is not None
    return _installed(chunk)


def can_fork() -> bool:
    return hasattr(os, "fork") and sys.platform != "darwin"  # macOS frameworks are not fork-safe


def default_workers() -> int:
    """Processes to use, this one included: the cores this process may run on, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def map_chunks(func: Callable[[Chunk], Result], chunks: Sequence[Chunk]) -> list[Result]:
    """[func(chunk) for chunk in chunks], the first chunk in this process and each other in a worker of its own."""
    if len(chunks) < 2 or not can_fork():
        return [func(chunk) for chunk in chunks]
    import multiprocessing  # here: a run that stays in one process never pays for importing them
    from concurrent.futures import ProcessPoolExecutor

    sys.stdout.flush()  # a forked worker must not flush this process's buffered output a second time
    sys.stderr.flush()
    pool = ProcessPoolExecutor(max_workers=len(chunks) - 1, mp_context=multiprocessing.get_context("fork"),
                               initializer=_install, initargs=(func,))
    try:
        futures = [pool.submit(_run_installed, chunk) for chunk in chunks[1:]]
        results = [func(chunks[0])]
        for chunk, future in zip(chunks[1:], futures):
            try:
                results.append(future.result())
            except Exception:  # noqa: BLE001 - the worker failed: do its chunk here, where an error is reported
                results.append(func(chunk))
        return results
    finally:
        # Normally every worker is idle by now. After a failure here (Ctrl-C, a bug), drop the chunks not started
        # and wait for the running ones, so no worker outlives the call.
        pool.shutdown(wait=True, cancel_futures=True)
