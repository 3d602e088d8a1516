"""Run one function over chunks of work on every core: forked worker processes, and nothing else.

(Named `workers`, not `pool`: in this domain a pool is the database connection pool.)

The function is handed to the workers when they start (forked, so it is inherited, never pickled: a closure
is fine, and every module the parent imported is already loaded); only each chunk and its result travel
through the executor's pipes. This process does the first chunk itself while the workers do the rest. A chunk
whose worker failed (a crash, a signal, an exception) is done again here, so the caller sees either every
result or this process's own exception.

`forked` keeps the same workers for several rounds (a build validates every environment, then writes them):
the function takes the round's own argument inside each chunk.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
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
    with forked(func, len(chunks)) as run:
        return run(chunks)


def _submit(executor: Any, chunk: Any) -> Any:
    try:
        return executor.submit(_run_installed, chunk)
    except Exception:  # noqa: BLE001 - a worker died in an earlier round (the executor is broken): done here
        return None


@contextlib.contextmanager
def forked(func: Callable[[Chunk], Result], processes: int) -> Iterator[Callable[[Sequence[Chunk]], list[Result]]]:
    """A map of `func` over up to `processes` chunks at a time, this process included, as map_chunks does, whose
    workers are forked at the first map with more than one chunk and kept until the block ends."""
    if processes < 2 or not can_fork():
        yield lambda chunks: [func(chunk) for chunk in chunks]
        return
    import multiprocessing  # here: a run that stays in one process never pays for importing them
    from concurrent.futures import ProcessPoolExecutor

    executor: ProcessPoolExecutor | None = None

    def run(chunks: Sequence[Chunk]) -> list[Result]:
        nonlocal executor
        if len(chunks) < 2:
            return [func(chunk) for chunk in chunks]
        if executor is None:
            sys.stdout.flush()  # a forked worker must not flush this process's buffered output a second time
            sys.stderr.flush()
            executor = ProcessPoolExecutor(max_workers=processes - 1, mp_context=multiprocessing.get_context("fork"),
                                           initializer=_install, initargs=(func,))
        futures = [_submit(executor, chunk) for chunk in chunks[1:]]
        results = [func(chunks[0])]
        for chunk, future in zip(chunks[1:], futures, strict=True):
            try:
                if future is None:
                    raise RuntimeError("not submitted")
                results.append(future.result())
            except Exception:  # noqa: BLE001 - the worker failed: do its chunk here, where an error is reported
                results.append(func(chunk))
        return results

    try:
        yield run
    finally:
        # Normally every worker is idle by now. After a failure here (Ctrl-C, a bug), drop the chunks not started
        # and wait for the running ones, so no worker outlives the block.
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
