"""Load, render and policy-check many environments, on every core when there are enough of them to pay.

Orchestration only. The result cache is consulted here, once, before any work is shared out: an environment
whose inputs are unchanged since a cached run is offered to the caller's `reuse` first. Every other one goes
through load -> render -> policy in a chunk of names (infragen.workers spreads the chunks over the cores), and
its {path: bytes} goes to the caller's `each` in the process that rendered it (build and check plan that
environment's directory there, so only the differences travel back). Chunks are contiguous runs of names
and are merged in order, so output and findings are identical whether one process did the work or several.

`process` does that in one round (check, diff, validate). `stream` (build) does it in two, so that memory does
not grow with the fleet and still nothing is written unless every environment passes: round 1 loads and
policy-checks every environment and asks `targets` whether its files may be written, keeping only findings;
round 2, once the caller allowed it (`between`: the output lock), loads each environment again, renders it and
hands its files to `each`, which writes them there and then. Each process holds one environment at a time.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from . import workers as forked
from .cache import Entry, ResultCache, digest
from .discover import Discovery
from .errors import ChangedDuringBuild, InputError, Location, Problem
from .fsutil import display_path

if TYPE_CHECKING:
    from .load import Loader
    from .models.environment import Environment

# A worker costs ~30 ms of CPU (fork, copy-on-write faults, pickling its results back) and an environment
# 1-2 ms, so below this many environments one process is about as fast: too little work to share.
PARALLEL_MIN = 64
# This process also merges what the workers send back: it takes a slightly smaller share.
PARENT_SHARE = 0.9
# A worker sends back what it found after this many environments, rather than holding it to the end of its share.
PIECE = 50

# What to keep of one environment's files: each(name, {path: bytes}), in whichever process rendered them;
# its result must pickle.
Each = Callable[[str, dict[str, bytes]], Any]
# reuse(name, {path: digest}) for an environment the cache vouches for: what `each` would have returned, or
# MISS to have the environment loaded and rendered after all (its output no longer matches, say).
Reuse = Callable[[str, dict[str, bytes]], Any]
# targets(name, [path]): why the files of environment `name` must not be written (a hand-written file in the
# way, a link), as problems; [] when they may.
Targets = Callable[[str, list[str]], list[Problem]]
# between(names, findings, refusals, writing): called once every environment passed round 1 (`writing`: some
# will be written); raises to stop, else returns what to hold while round 2 writes (the output lock).
Between = Callable[[list[str], list[Problem], list[Problem], bool], AbstractContextManager[Any]]
MISS = object()


class Processed(NamedTuple):
    """What a run over some environments found, in name order."""

    problems: list[Problem]  # input problems (then nothing else is kept: nothing will be written)
    kept: list[Any]  # each() (or reuse()) of every environment
    findings: list[Problem]  # policy findings
    new_entries: dict[str, Entry]  # results to add to the cache


class Validated(NamedTuple):
    """Round 1 of `stream` over some environments, in name order."""

    problems: list[Problem]
    findings: list[Problem]
    reused: dict[str, Any]  # reuse() of the environments the cache vouches for (nothing to write)
    todo: list[tuple[str, tuple[tuple[str, bytes], ...]]]  # the others, with the digests of their input files
    own_findings: dict[str, list[Problem]]  # findings of each one in `todo` newly checked, for its cache entry
    refusals: list[Problem]  # targets() of every environment in `todo`


class Written(NamedTuple):
    """Round 2 of `stream` over some environments."""

    kept: dict[str, Any]  # each() of every environment
    digests: dict[str, dict[str, bytes]]  # {path: digest} of each one's files, for its cache entry


def keep_files(name: str, files: dict[str, bytes]) -> dict[str, str]:
    return {path: data.decode("utf-8") for path, data in files.items()}


def _encoded(files: dict[str, str]) -> dict[str, bytes]:
    """Each text encoded once: the digest, the comparison and the write all use these bytes."""
    return {path: text.encode("utf-8") for path, text in files.items()}


@dataclass
class Job:
    environments_dir: Path
    each: Each = keep_files
    reuse: Reuse | None = None
    cache: ResultCache | None = None
    hits: dict[str, Entry] = field(default_factory=dict)  # names the cache vouches for
    targets: Targets | None = None  # stream's round 1
    _loader: Loader | None = field(default=None, repr=False)

    def loader(self) -> Loader:
        """Imported at the first environment not reused: the models and the policy rules (and the renderer)."""
        if self._loader is None:
            from .load import Loader
            from .policy import check_environment  # noqa: F401
            from .render import render_environment  # noqa: F401

            self._loader = Loader(self.environments_dir)
            gc.freeze()  # the modules just imported are old objects too: out of the round's collections
        return self._loader

    def dispatch(self, task: tuple[str, Any]) -> Any:
        """The function the workers run: one round's work on one chunk."""
        round_, work = task
        with _no_cycle_collection():
            return self._validate(work) if round_ == "validate" else self._write(work)

    def run(self, names: list[str]) -> Processed:
        with _no_cycle_collection():
            return self._run(names)

    def _run(self, names: list[str]) -> Processed:
        """Each environment is rendered, checked and handed over as soon as it loads: only what `each` keeps
        stays in memory, not a thousand environments with their alert rules and tests."""
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
            environment = self._load(name, out.problems)
            if environment is None:
                continue  # a problem; or nothing will be written: keep loading only to report every problem
            from .policy import check_environment as check  # here: not imported when every environment is reused
            from .render import render_environment as render

            files = _encoded(render(environment))
            findings = check(environment)
            out.findings.extend(findings)
            if self.cache is not None and self.cache.writable:
                out.new_entries[name] = Entry(self.loader().inputs(name), _digests(files), list(findings))
            self.loader().forget(name)
            out.kept.append(self.each(name, files))
        return Processed(out.problems, [], [], {}) if out.problems else out

    def _load(self, name: str, problems: list[Problem]) -> Environment | None:
        """The environment, or None after adding its problems (or when there are problems already)."""
        loader = self.loader()
        try:
            environment = loader.load(name)
        except InputError as exc:
            problems.extend(p for p in exc.problems if p not in problems)
            loader.forget(name)
            return None
        if problems:
            loader.forget(name)
            return None
        return environment

    def _validate(self, names: list[str]) -> Validated:
        """Round 1: load and check, keep findings and the digests of the inputs; render nothing."""
        out = Validated([], [], {}, [], {}, [])
        assert self.targets is not None
        for name in names:
            entry = self.hits.get(name)
            if entry is not None and not out.problems:
                assert self.reuse is not None
                outcome = self.reuse(name, entry.artifacts)
                out.findings.extend(entry.findings)
                if outcome is not MISS:
                    out.reused[name] = outcome
                else:  # valid as cached, but its output differs: written in round 2
                    out.refusals.extend(self.targets(name, sorted(entry.artifacts)))
                    out.todo.append((name, entry.inputs))
                continue
            environment = self._load(name, out.problems)
            if environment is None:
                continue
            from .artifacts import for_environment
            from .policy import check_environment as check

            findings: list[Problem] = list(check(environment))
            out.findings.extend(findings)
            out.own_findings[name] = findings
            out.refusals.extend(self.targets(name, [f"{name}/{a.path}" for a in for_environment(environment)]))
            out.todo.append((name, self.loader().inputs(name)))
            self.loader().forget(name)
        return Validated(out.problems, [], {}, [], {}, []) if out.problems else out

    def _write(self, todo: list[tuple[str, tuple[tuple[str, bytes], ...]]]) -> Written:
        """Round 2: load each environment again (the same files, or stop), render it, hand it to `each`."""
        from .render import render_environment as render

        loader = self.loader()
        out = Written({}, {})
        for name, inputs in todo:
            try:
                environment = loader.load(name)
                unchanged = loader.inputs(name) == inputs
            except InputError:
                unchanged = False
            if not unchanged:
                path = self.environments_dir / f"{name}.yaml"
                raise ChangedDuringBuild.single("changed during the build (or a partial it extends did); build again",
                                                Location(display_path(path)))
            files = _encoded(render(environment))
            loader.forget(name)
            if self.cache is not None and self.cache.writable:
                out.digests[name] = _digests(files)
            out.kept[name] = self.each(name, files)
        return out


def _digests(files: dict[str, bytes]) -> dict[str, bytes]:
    return {path: digest(data) for path, data in files.items()}


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Let the cyclic GC see only the objects made from here on. Everything alive already (the modules, pydantic's
    validators, the compiled templates: a few hundred thousand objects) is frozen out of its sight, so a collection
    walks about one environment's worth of objects instead of all of those again (a third of load time at N=1000
    when it did). The collector still runs: loading an environment leaves a few dozen cycles (recursive closures),
    and pausing it instead kept those of every environment to the end (memory growing with the fleet).
    Before the old objects come back into its sight, one full collection, over this round's objects only, frees
    the cycles the round left: unfrozen, they would join the old objects, which the collector walks only once
    those grow by a quarter (CPython's rule for the oldest generation), so a worker kept every round's last
    cycles (with the environment they hold) and grew with the fleet."""
    gc.freeze()
    try:
        yield
    finally:
        gc.collect()
        gc.unfreeze()


def chunks_of(names: list[Any], count: int, first_share: float = 1.0) -> list[list[Any]]:
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


def pieces_of(names: list[Any], processes: int) -> list[list[Any]]:
    """This process's share (chunks_of), then the workers' shares cut into pieces of at most PIECE, in order."""
    chunks = chunks_of(names, processes, PARENT_SHARE)
    return chunks[:1] + [chunk[i:i + PIECE] for chunk in chunks[1:] for i in range(0, len(chunk), PIECE)]


def _prepare(job: Job, requested: Iterable[str] | None, workers: int | None,
             parallel_min: int | None) -> tuple[list[str], int]:
    """The names selected, and how many processes to use (1: stay in this one)."""
    names = Discovery(job.environments_dir).select(requested)
    cache = job.cache
    if cache is not None:
        if not requested:
            cache.keep_only(names)
        if job.reuse is not None:
            job.hits = {name: entry for name in names if (entry := cache.lookup(name)) is not None}
    workers = forked.default_workers() if workers is None else max(1, workers)
    parallel_min = PARALLEL_MIN if parallel_min is None else parallel_min
    if workers == 1 or len(names) < max(parallel_min, 2) or not forked.can_fork():
        return names, 1
    if len(job.hits) < len(names):
        from .render import compile_all

        compile_all()  # imported and compiled once here, inherited by every worker
    return names, min(workers, len(names))


def process(environments_dir: Path, requested: Iterable[str] | None, *, workers: int | None = None,
            parallel_min: int | None = None, each: Each = keep_files, reuse: Reuse | None = None,
            cache: ResultCache | None = None) -> tuple[list[str], list[Any], list[Problem]]:
    """The names of the environments selected, each(name, {path: bytes}) for every one of them (by default the
    files themselves, as text), in name order, and their policy findings. Raises InputError listing the
    problems of every environment (in name order), as Loader.load_many does.

    With a `cache` and `reuse`, an environment whose input files are unchanged since a cached run is handed
    to reuse(name, {path: digest}) instead. New results are added to the cache, saved once all are in."""
    job = Job(Path(environments_dir), each, reuse, cache)
    names, processes = _prepare(job, requested, workers, parallel_min)
    if processes == 1:
        results = [job.run(names)]
    else:
        with forked.forked(job.run, processes) as run:
            results = run(pieces_of(names, processes))
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


def stream(environments_dir: Path, requested: Iterable[str] | None, *, each: Each, targets: Targets, between: Between,
           reuse: Reuse | None = None, cache: ResultCache | None = None, workers: int | None = None,
           parallel_min: int | None = None) -> tuple[list[str], list[Any], list[Problem]]:
    """As `process`, in the two rounds the module describes: `each` runs only once every environment loaded,
    passed `targets` and `between` let it. Raises InputError (round 1: nothing was handed to `each`) or
    ChangedDuringBuild (round 2: an input file changed since round 1)."""
    job = Job(Path(environments_dir), each, reuse, cache, targets=targets)
    names, processes = _prepare(job, requested, workers, parallel_min)
    with forked.forked(job.dispatch, processes) as run:
        checked = run([("validate", chunk) for chunk in pieces_of(names, processes)])
        problems: list[Problem] = []
        for result in checked:
            problems.extend(p for p in result.problems if p not in problems)
        if problems:
            raise InputError(problems)
        findings = [p for result in checked for p in result.findings]
        kept = {name: outcome for result in checked for name, outcome in result.reused.items()}
        todo = [item for result in checked for item in result.todo]
        with between(names, findings, [p for result in checked for p in result.refusals], bool(todo)):
            written = run([("write", chunk) for chunk in pieces_of(todo, min(processes, max(len(todo), 1)))])
    for result in written:
        kept.update(result.kept)
    if cache is not None:
        own = {name: found for result in checked for name, found in result.own_findings.items()}
        inputs = dict(todo)
        for result in written:
            for name, digests in result.digests.items():
                if name in own:  # reused entries whose output was rewritten stay as they are
                    cache.added[name] = Entry(inputs[name], digests, list(own[name]))
        cache.save()
    return names, [kept[name] for name in names], findings
