"""`infragen review`: what a change does in effect, environment by environment, as data.

The "before" side is what a git ref holds: its environment files and its committed output/ (read by
infragen.gitref, no checkout). The "after" side is the working tree's environment files and what `build` would
write from them now. For each environment this finds the settings that changed (with where each new value comes
from: the environment file, a partial, a tier default), the artifact changes by path (infragen.artifact_diff),
the margins that moved (the environment's own derived values, `peak_connections` against `usable_connections`,
`evictions_allowed_at_min_replicas`), the policy findings of the new side and the unified diff.

infragen.markdown turns a `Review` into the pull-request comment; nothing here formats for a reader.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .artifact_diff import Entry, entries
from .artifacts import ARTIFACTS, BY_PATH, format_of
from .discover import Discovery
from .errors import InputError, Location, Problem, failing
from .explain import Setting, effective_settings
from .fsutil import display_path
from .gitref import Snapshot, snapshot
from .load import Loader
from .models.environment import Environment
from .plan import Change, Plan, unified_diff
from .policy import check_environment
from .render import render_environment

ARTIFACT_ORDER = [artifact.path for artifact in ARTIFACTS]
Status = Literal["changed", "unchanged", "added", "deleted", "failing"]


@dataclass(frozen=True)
class SettingChange:
    path: str  # dotted, as written in a file
    old: str | None  # None: not set on that side (an added environment, a removed receiver)
    new: str | None
    kind: str  # where the new value comes from: environment, partial, tier, default (explain's kinds)
    source: str  # `environments/production.yaml:7`, `environments/_base.yaml:12 (partial)`, `tier default (production)`


@dataclass(frozen=True)
class FileChange:
    path: str  # below output/<env>/
    kind: str  # create, update, delete
    entries: tuple[Entry, ...]  # by path inside the file; empty when only comments changed


@dataclass(frozen=True)
class Margin:
    name: str  # what is measured
    before: str | None  # None: the environment is not on that side
    after: str | None
    warning: str | None = None  # what is wrong with the new side ("nothing to spare"), shown beside it


@dataclass
class EnvironmentReview:
    name: str
    status: Status
    settings: list[SettingChange] = field(default_factory=list)
    files: list[FileChange] = field(default_factory=list)
    margins: list[Margin] = field(default_factory=list)
    findings: list[Problem] = field(default_factory=list)  # policy findings of the new side
    problems: list[Problem] = field(default_factory=list)  # the new side does not load
    base_problems: list[Problem] = field(default_factory=list)  # the base side does not load
    inputs_changed: bool = False  # its environment file or a partial differs from the base
    diff: str = ""  # unified diff of the committed output at the base and what build writes now

    @property
    def effective(self) -> bool:
        """Does the change do anything: a setting or an artifact differs."""
        return bool(self.settings or self.files)


@dataclass
class Review:
    base: str  # the ref as given
    environments: list[EnvironmentReview]  # every environment on either side, in name order
    strict: bool = False
    base_problems: list[Problem] = field(default_factory=list)  # the base's environments folder does not list

    def having(self, *statuses: Status) -> list[EnvironmentReview]:
        return [e for e in self.environments if e.status in statuses]

    @property
    def changed(self) -> bool:
        return any(e.status != "unchanged" for e in self.environments)

    @property
    def failing(self) -> bool:
        return bool(self.having("failing"))

    def file_counts(self) -> dict[str, int]:
        counts = {"create": 0, "update": 0, "delete": 0}
        for env in self.environments:
            for change in env.files:
                counts[change.kind] += 1
        return counts


def _located(location: Location | None) -> str:
    """`file:line` (the column is in `infragen explain`)."""
    if location is None or location.file is None:
        return str(location) if location else "default"
    return f"{location.file}:{location.line}" if location.line is not None else location.file


def _source(setting: Setting) -> str:
    if setting.kind == "environment":
        return _located(setting.location)
    if setting.kind == "partial":
        return f"{_located(setting.location)} (partial)"
    return setting.source  # `tier default (production)`, `default`


def setting_changes(base: Environment, head: Environment) -> list[SettingChange]:
    """Settings whose effective value differs, in the order `infragen explain` lists them. Derived values are
    left out: the margins and artifact changes show what they did."""
    old = {s.path: s for s in effective_settings(base) if s.kind != "derived"}
    new = {s.path: s for s in effective_settings(head) if s.kind != "derived"}
    changes = []
    for path, setting in new.items():
        before = old.get(path)
        if before is None or before.value != setting.value:
            changes.append(SettingChange(path, None if before is None else before.value, setting.value, setting.kind,
                                         _source(setting)))
    for path, setting in old.items():
        if path not in new:
            changes.append(SettingChange(path, setting.value, None, setting.kind, f"was {_source(setting)}"))
    return changes


def margins(base: Environment | None, head: Environment | None) -> list[Margin]:
    """The cross-artifact margins on each side, each kept when it moved (all of them for an added environment)."""

    def fleet(env: Environment | None) -> str | None:
        if env is None:
            return None
        spare = env.capacity.usable_connections - env.capacity.peak_connections
        pods = env.capacity.peak_pods
        return (f"{pods} pods: {env.capacity.peak_connections} of {env.capacity.usable_connections} usable "
                + (f"({spare} spare)" if spare >= 0 else f"({-spare} over)"))

    def evictions(env: Environment | None) -> str | None:
        if env is None:
            return None
        replicas = env.spec.autoscaling.min_replicas
        return f"{env.capacity.evictions_allowed_at_min_replicas} at {replicas} replica{'' if replicas == 1 else 's'}"

    def steps(env: Environment | None) -> str | None:
        """Each canary step as Argo really runs it: canary and stable pods and share at min and max replicas."""
        if env is None or env.rollout.strategy != "canary":
            return None
        return "; ".join(f"{weight}%: {low} to {high}" for weight, low, high in env.rollout.canary_steps)

    def edge(env: Environment | None) -> str | None:
        return None if env is None else env.edge.rate.margin()

    found = [
        Margin("database connections at peak (the rollout's peak pods, pools full)", fleet(base), fleet(head),
               "nothing to spare" if head is not None and head.capacity.peak_connections >= head.capacity.usable_connections else None),
        Margin("PDB evictions allowed at min replicas", evictions(base), evictions(head),
               "nothing to spare" if head is not None and head.capacity.evictions_allowed_at_min_replicas < 1 else None),
        Margin("canary pods per step, at min to max replicas", steps(base), steps(head),
               "a step's real share is over twice its weight" if head is not None and head.rollout.strategy == "canary"
               and not all(low.faithful(weight) for weight, low, _high in head.rollout.canary_steps) else None),
        Margin("rate limit per client, nginx against the app's token bucket", edge(base), edge(head),
               "nginx is stricter than the app" if head is not None and head.edge.rate.stricter else None),
    ]
    for slo in ("availability", "latency"):
        def budget(env: Environment | None, slo: str = slo) -> str | None:
            if env is None:
                return None
            objective = next((o for o in env.monitoring.objectives if o.slo == slo), None)
            return objective.budget_summary if objective is not None else "off"

        before, after = budget(base), budget(head)
        if {before, after} - {None, "off"}:  # on at least on one side
            found.append(Margin(f"{slo} objective: its error budget (time at 100% errors)", before, after))
    return [m for m in found if m.before != m.after]


def _generated(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files a build owns (they carry the generated-file marker), by path below the environment's folder."""
    kept = {}
    for rel, data in files.items():
        fmt = format_of(rel)
        if fmt.is_generated(data[:fmt.head_bytes]):
            kept[rel] = data
    return kept


def _committed(output: Path, name: str) -> dict[str, bytes]:
    root = output / name
    if not root.is_dir():
        return {}
    return _generated({p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()})


def _order(rel: str) -> tuple[int, str]:
    """Registry order (the README's), then files of no artifact by name."""
    artifact = BY_PATH.get(rel)
    return (ARTIFACT_ORDER.index(artifact.path) if artifact is not None else len(ARTIFACT_ORDER), rel)


def _file_changes(old: dict[str, bytes], new: dict[str, bytes]) -> list[Change]:
    changes = []
    for rel in sorted(new, key=_order):
        if rel not in old:
            changes.append(Change(rel, "create", None, new[rel]))
        elif old[rel] != new[rel]:
            changes.append(Change(rel, "update", old[rel], new[rel]))
    changes.extend(Change(rel, "delete", old[rel], None) for rel in sorted(set(old) - set(new), key=_order))
    return changes


def _structure(rel: str) -> str:
    artifact = BY_PATH.get(rel)
    return artifact.structure if artifact is not None else "lines"


class _Side:
    """One side's loader, each environment loaded once; problems kept, not raised."""

    def __init__(self, directory: Path | None, rename: tuple[str, str] | None = None) -> None:
        self.loader = Loader(directory) if directory is not None else None
        self.rename = rename  # (prefix as displayed, how to name it): temporary paths -> `REF:environments/...`
        self.names: list[str] = []
        self.problems: list[Problem] = []
        if self.loader is not None:
            try:
                self.names = self.loader.names()
            except InputError as exc:
                self.problems = self._renamed(exc.problems)

    def _renamed(self, problems: Iterable[Problem]) -> list[Problem]:
        if self.rename is None:
            return list(problems)
        prefix, label = self.rename
        out = []
        for p in problems:
            loc = p.location
            if loc is not None and loc.file is not None and loc.file.startswith(prefix):
                loc = Location(label + loc.file[len(prefix):], loc.line, loc.column, loc.origin)
            out.append(Problem(loc, p.field, p.message, p.level, p.rule, p.environment,
                               tuple(Location(label + r.file[len(prefix):], r.line, r.column, r.origin)
                                     if r.file and r.file.startswith(prefix) else r for r in p.related)))
        return out

    def load(self, name: str) -> tuple[Environment | None, list[Problem]]:
        if self.loader is None or name not in self.names:
            return None, []
        try:
            return self.loader.load(name), []
        except InputError as exc:
            return None, self._renamed(exc.problems)

    def inputs(self, name: str) -> tuple[tuple[str, bytes], ...] | None:
        try:
            return self.loader.inputs(name) if self.loader is not None else None
        except KeyError:
            return None


def _relabel_settings(env: Environment, snap: Snapshot, prefix: str) -> Environment:
    """The base environment with its file locations named `REF:environments/x.yaml` instead of a temporary path."""
    locations = {path: (Location(snap.label(loc.file[len(prefix):].lstrip("/")), loc.line, loc.column, loc.origin)
                        if loc.file is not None and loc.file.startswith(prefix) else loc)
                 for path, loc in env.locations.items()}
    return Environment(env.name, env.source, env.partials, env.spec, locations)


def review(environments_dir: Path, output_dir: Path, base: str = "HEAD", names: Iterable[str] = (),
           strict: bool = False) -> Review:
    """Compare `base` (its environment files and committed output) with the working tree's environment files and
    what build would write now. Raises InputError for a missing ref, a shallow clone without the base, a folder
    outside git, and when the working tree's environments folder cannot be listed."""
    head = _Side(Path(environments_dir))
    if head.problems:
        raise InputError(head.problems)
    with snapshot(base, Path(environments_dir), Path(output_dir)) as snap:
        prefix = display_path(snap.environments)
        before = _Side(snap.environments, (prefix, snap.label("").rstrip("/")))
        known = sorted(set(head.names) | set(before.names))
        selected = _select(known, names, head)
        reviews = [_one(name, before, head, snap, prefix, Path(output_dir), strict) for name in selected]
        return Review(base, reviews, strict, before.problems)


def _select(known: list[str], names: Iterable[str], head: _Side) -> list[str]:
    requested = list(names)
    if not requested:
        return known
    missing = [n for n in requested if n not in known]
    if missing:  # the same messages as every other command (unknown name, a partial, a path)
        Discovery.select(_Fixed(known), missing)
    return sorted(set(requested))


class _Fixed(Discovery):
    def __init__(self, names: list[str]) -> None:
        self._names = names

    def names(self) -> list[str]:
        return self._names


def _one(name: str, before: _Side, head: _Side, snap: Snapshot, prefix: str, output: Path,
         strict: bool) -> EnvironmentReview:
    in_base, in_head = name in before.names, name in head.names
    base_env, base_problems = before.load(name)
    if base_env is not None:
        base_env = _relabel_settings(base_env, snap, prefix)
    head_env, problems = head.load(name)
    findings: list[Problem] = []
    changes: list[Change] = []
    if head_env is not None or not in_head:  # a new side that does not load has no artifacts to compare
        new_files: dict[str, bytes] = {}
        if head_env is not None:
            new_files = {rel.split("/", 1)[1]: text.encode("utf-8") for rel, text in render_environment(head_env).items()}
            findings = list(check_environment(head_env))
        changes = _file_changes(_committed(snap.output, name), new_files)
    files = [FileChange(c.path, c.kind, tuple(entries(_structure(c.path), c.old, c.new))) for c in changes]
    diff = unified_diff(Plan(output, [Change(f"{name}/{c.path}", c.kind, c.old, c.new) for c in changes]),
                        label=display_path(output)) if changes else ""
    settings = setting_changes(base_env, head_env) if base_env is not None and head_env is not None else []
    old_inputs, new_inputs = before.inputs(name), head.inputs(name)
    inputs_changed = in_base and in_head and (old_inputs is None or new_inputs is None or old_inputs != new_inputs)
    if problems or failing(findings, strict):
        status: Status = "failing"
    elif not in_base:
        status = "added"
    elif not in_head:
        status = "deleted"
    elif settings or files:
        status = "changed"
    else:
        status = "unchanged"
    moved = margins(base_env, head_env) if not problems else []
    return EnvironmentReview(name, status, settings, files, moved, findings, problems, base_problems, inputs_changed,
                             diff)
