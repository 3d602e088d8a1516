"""Load, render and policy-check many environments, on every core when there are enough of them to pay.

Orchestration only. The result cache is consulted here, once, before any work is shared out: an environment
whose inputs are unchanged since a cached run is offered to the caller's `reuse` first. Every other one goes
through load -> render -> policy in a chunk of names (infragen.workers spreads the chunks over the cores), and
its {path: text} goes to the caller's `each` in the process that rendered it (build and check plan that
environment's directory there, so only the differences travel back). Chunks are contiguous runs of names
and are merged in order, so output and findings are identical whether one process did the work or several.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from . import workers as forked
from .cache import Entry, ResultCache
from .discover import Discovery
from .errors import InputError, Problem

# A worker costs ~30 ms of CPU (fork, copy-on-write faults, pickling its results back) and an environment
# 1-2 ms, so below this many environments one process is about as fast: too little work to share.
PARALLEL_MIN = 64
# This process also merges what the workers send back: it takes a slightly smaller share.
PARENT_SHARE = 0.9

# What to keep of one environment's files: each(name, {path: text}), in whichever process rendered them;
# its result must pickle.
Each = Callable[[str, dict[str, str]], Any]
# reuse(name, {path: digest}) for an environment the cache vouches for: what `each` would have returned, or
# MISS to have the environment loaded and rendered after all (its output no longer matches, say).
Reuse = Callable[[str, dict[str, bytes]], Any]
MISS = object()


class Processed(NamedTuple):
    """What a run over some environments found, in name order."""

    problems: list[Problem]  # input problems (then nothing else is kept: nothing will be written)
    kept: list[Any]  # each() (or reuse()) of every environment
    findings: list[Problem]  # policy findings
    new_entries: dict[str, Entry]  # results to add to the cache


def keep_files(name: str, files: dict[str, str]) -> dict[str, str]:
    return files


@dataclass
class Job:
    environments_dir: Path
    each: Each = keep_files
    reuse: Reuse | None = None
    cache: ResultCache | None = None
    hits: dict[str, Entry] = field(default_factory=dict)  # names the cache vouches for

    def run(self, names: list[str]) -> Processed:
        with _no_cycle_collection():
            return self._run(names)

    def _run(self, names: list[str]) -> Processed:
        """Each environment is rendered, checked and handed over as soon as it loads: only what `each` keeps
        stays in memory, not a thousand environments with their alert rules and tests."""
        loader = render = check = None  # imported at the first environment not reused: the models, Jinja2
        out = Processed([], [], [], {})
        for name in names:
            entry = self.hits.get(name)
            if entry is not None and not out.problems:
                assert self.reuse is not None
                outcome = self.reuse(name, entry.artifacts)
                if outcome is not MISS:
                    out.findings.extend(entry.findings)
                    out.kept.append(outcome)
                    continue
            if loader is None:
                from .load import Loader
                from .policy import check_environment as check
                from .render import render_environment as render

                loader = Loader(self.environments_dir)
            try:
                environment = loader.load(name)
            except InputError as exc:
                out.problems.extend(p for p in exc.problems if p not in out.problems)
                continue
            if out.problems:
                continue  # nothing will be written: keep loading only to report every problem
            rendered = render(environment)
            findings = check(environment)
            out.findings.extend(findings)
            if self.cache is not None and self.cache.writable:
                out.new_entries[name] = Entry.of(loader.inputs(name), rendered, findings)
            out.kept.append(self.each(name, rendered))
        return Processed(out.problems, [], [], {}) if out.problems else out


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


def chunks_of(names: list[str], count: int, first_share: float = 1.0) -> list[list[str]]:
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
            parallel_min: int | None = None, each: Each = keep_files, reuse: Reuse | None = None,
            cache: ResultCache | None = None) -> tuple[list[str], list[Any], list[Problem]]:
    """The names of the environments selected, each(name, {path: text}) for every one of them (by default the
    files themselves), in name order, and their policy findings. Raises InputError listing the problems of
    every environment (in name order), as Loader.load_many does.

    With a `cache` and `reuse`, an environment whose input files are unchanged since a cached run is handed
    to reuse(name, {path: digest}) instead. New results are added to the cache, saved once all are in."""
    names = Discovery(environments_dir).select(requested)
    job = Job(Path(environments_dir), each, reuse, cache)
    if cache is not None:
        if not requested:
            cache.keep_only(names)
        if reuse is not None:
            job.hits = {name: entry for name in names if (entry := cache.lookup(name)) is not None}
    workers = forked.default_workers() if workers is None else max(1, workers)
    parallel_min = PARALLEL_MIN if parallel_min is None else parallel_min
    if workers == 1 or len(names) < max(parallel_min, 2) or not forked.can_fork():
        results = [job.run(names)]
    else:
        if len(job.hits) < len(names):
            from .render import compile_all

            compile_all()  # imported and compiled once here, inherited by every worker
        results = forked.map_chunks(job.run, chunks_of(names, min(workers, len(names)), PARENT_SHARE))
    problems: list[Problem] = []
    kept: list[Any] = []
    findings: list[Problem] = []
    for result in results:
        problems.extend(p for p in result.problems if p not in problems)
        kept.extend(result.kept)
        findings.extend(result.findings)
        if cache is not None:
            cache.added.update(result.new_entries)
    if cache is not None:
        cache.save()
    if problems:
        raise InputError(problems)
    return names, kept, findings
