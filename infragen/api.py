"""What each command does, as functions that return data: infragen's public API.

The CLI (infragen.cli) parses arguments, calls one of these, prints what it returns and picks the exit code.
Every function takes the tool settings (infragen.config.load_settings) and raises `InputError` for input that
cannot be used (its problems name file, line and field), `PolicyFailed` when a policy rule stops the command,
`OutputError` when the output cannot be written safely (`WriteInterrupted` when writing failed part-way) and
`GitError` when a review's base cannot be read: all `InfragenError`s (infragen.errors).

    settings = load_settings(environments=Path("environments"), output=Path("output"))
    outcome = check(settings)          # outcome.plan.up_to_date, outcome.findings
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ToolSettings
from .errors import InfragenError, InputError, Location, OutputError, PolicyFailed, Problem, WriteInterrupted, failing
from .plan import (
    CONFLICT,
    Plan,
    apply_locked,
    make_plan,
    merge_plans,
    prepare_output,
    refusals,
    unchanged_plan,
    write_environment,
)

if TYPE_CHECKING:
    from .explain import Setting
    from .models.environment import Environment
    from .review import Review
    from .scaffold import Scaffold
    from .verify import Result

__all__ = ["Outcome", "InfragenError", "PolicyFailed", "OutputError", "WriteInterrupted", "InputError", "validate", "plan", "check", "diff", "build",
           "environments", "explain", "verify", "review", "new"]


@dataclass
class Outcome:
    environments: list[str]  # the environments selected, in name order
    findings: list[Problem]  # policy findings that did not stop the command (warnings)
    strict: bool
    plan: Plan | None = None  # what build writes or wrote (None for validate)


@dataclass
class Planner:
    """Plans one environment's directory in the process that rendered it, so only differences travel back."""

    output_dir: Path

    def each(self, name: str, files: dict[str, bytes]) -> Plan:
        return make_plan(files, self.output_dir, [name], consume=True, defer_conflicts=True)

    def write(self, name: str, files: dict[str, bytes]) -> Plan:
        return write_environment(self.output_dir, name, files)

    def refusals(self, name: str, paths: list[str]) -> list[Problem]:
        return refusals(self.output_dir, paths)

    def reuse(self, name: str, digests: dict[str, bytes]) -> Any:
        # A cached result counts only if output/<name> is exactly what it says; else render (for the diff).
        from .pipeline import MISS

        plan = unchanged_plan(self.output_dir, name, digests)
        return MISS if plan is None else plan


def _process(settings: ToolSettings, names: Iterable[str], planner: Planner | None) -> tuple[list[str], list[Any], list[Problem]]:
    """Load, render and check every selected environment; stop before anything is written when policy fails."""
    from .cache import ResultCache
    from .pipeline import process

    cache = ResultCache.open(settings.environments, enabled=settings.cache)
    if planner is None:  # validate: the findings are the result, no file is kept
        selected, kept, findings = process(settings.environments, list(names) or None, each=_nothing,
                                           reuse=_nothing, cache=cache)
    else:
        selected, kept, findings = process(settings.environments, list(names) or None, each=planner.each,
                                           reuse=planner.reuse, cache=cache)
    if failing(findings, settings.strict):
        raise PolicyFailed(findings, strict=settings.strict)
    return selected, kept, findings


def _nothing(name: str, files: Mapping[str, Any]) -> None:
    return None


def validate(settings: ToolSettings, names: Iterable[str] = ()) -> Outcome:
    """Load and validate environment files and check every policy rule; write nothing."""
    selected, _kept, findings = _process(settings, names, None)
    return Outcome(selected, findings, settings.strict)


def plan(settings: ToolSettings, names: Iterable[str] = ()) -> Outcome:
    """What build would do to the output directory. Reads it, never writes it."""
    names = list(names)
    planner = Planner(settings.output)
    selected, plans, findings = _process(settings, names, planner)
    with _after(findings):
        if not names:  # the rest of the output directory: environments that are gone, files at the top
            plans.append(make_plan({}, settings.output, None, exclude=frozenset(selected), defer_conflicts=True))
        return Outcome(selected, findings, settings.strict, merge_plans(settings.output, plans))


check = plan  # `check` and `diff` differ only in what the CLI prints and the exit code
diff = plan


def build(settings: ToolSettings, names: Iterable[str] = ()) -> Outcome:
    """Write what changed: each file atomically, generated files no longer produced removed, others untouched.

    Nothing is written unless every environment loads and passes the policy and no file is in the way
    (pipeline.stream's first round); then each environment is rendered and written in turn, so no process holds
    more than one environment's files."""
    from .cache import ResultCache
    from .pipeline import stream

    names = list(names)
    output = settings.output
    planner = Planner(output)
    rest: list[Plan] = []  # the output directory but the environments' own: those gone, files at the top
    temporaries: list[str] = []  # left there by an interrupted build

    @contextlib.contextmanager
    def between(selected: list[str], findings: list[Problem], refused: list[Problem], writing: bool) -> Iterator[None]:
        if failing(findings, settings.strict):
            raise PolicyFailed(findings, strict=settings.strict)
        with _after(findings):
            if not names:
                rest.append(make_plan({}, output, None, exclude=frozenset(selected), temporaries=temporaries))
            if not writing and not (rest and rest[0].changes):
                yield  # nothing to write: no lock taken, no output directory made
                return
            conflicts = [p for p in refused if p.message == CONFLICT]
            if conflicts:  # the first by path, as merge_plans reports it
                raise OutputError([min(conflicts, key=lambda p: (p.location.file or "") if p.location else "")])
            prepare_output(output, rest[0] if rest else None)
            if refused:
                raise OutputError(refused[:1])
            from .plan import output_lock  # looked up now: tests stand in for it

            with output_lock(output):
                try:
                    yield
                    if rest:
                        apply_locked(rest[0], temporaries)
                except WriteInterrupted:
                    raise
                except (InputError, OutputError) as exc:  # under the lock: other environments may have been written
                    raise WriteInterrupted(exc.problems) from None

    cache = ResultCache.open(settings.environments, enabled=settings.cache)
    chosen, plans, findings = stream(settings.environments, names or None, each=planner.write,
                                     targets=planner.refusals, between=between, reuse=planner.reuse, cache=cache)
    return Outcome(chosen, findings, settings.strict, merge_plans(output, plans + rest))


@contextlib.contextmanager
def _after(findings: list[Problem]) -> Iterator[None]:
    """An error raised once the policy passed (a hand-written file in the way, a failed write) carries the
    warnings found before it, so the report shows everything in order."""
    try:
        yield
    except InfragenError as exc:
        exc.findings = findings + exc.findings
        raise


def environments(settings: ToolSettings, names: Iterable[str] = ()) -> list[Environment]:
    """The selected environments, loaded (InputError lists the problems of all of them)."""
    from .load import Loader

    return Loader(settings.environments).load_many(list(names) or None)


@dataclass
class Explanation:
    environment: Environment
    settings: list[Setting]


def explain(settings: ToolSettings, name: str, field_path: str | None = None) -> Explanation:
    """Every effective setting of environment `name` (or those under `field_path`) and where it came from."""
    from .explain import explain as explain_settings

    env = environments(settings, [name])[0]
    return Explanation(env, explain_settings(env, field_path))


@dataclass
class Verification:
    results: list[Result]
    tools: dict[str, str | None] = field(default_factory=dict)  # program -> path, None when not installed

    def count(self, status: str) -> int:
        return sum(r.status == status for r in self.results)


def verify(settings: ToolSettings, names: Iterable[str] = (), crd_schemas: Path | None = None,
           dashboard_schema: Path | None = None) -> Verification:
    """Each built artifact of the selected environments through its real consumer. Custom resources are checked
    against the CRD schemas in `crd_schemas` ({group}/{kind}_{version}.json), the dashboard against Grafana's
    schema `dashboard_schema`; without them those checks are reported as skipped."""
    from .consumers import Schemas
    from .verify import available_tools, verify_environment

    for given, what in ((crd_schemas, "CRD schema directory"), (dashboard_schema, "dashboard schema")):
        if given is not None and not given.exists():
            raise InputError.single(f"{what} not found", Location(str(given)))
    envs = environments(settings, names)
    tools = available_tools()
    schemas = Schemas(crd_schemas, dashboard_schema)
    return Verification([r for env in envs for r in verify_environment(env, settings.output / env.name, tools, schemas)],
                        tools)


def verify_app(settings: ToolSettings, app: Path, names: Iterable[str] = ()) -> Verification:
    """The application's kustomization in `app` rendered with each selected environment's Component
    (infragen.application): the patch must merge into the container it targets, never add one."""
    from .application import kustomization_of, verify_application
    from .consumers import find_tool
    from .verify import Result

    if not app.is_dir():
        raise InputError.single("application directory not found", Location(str(app)))
    kustomization_of(app)
    kubectl = find_tool("kubectl")
    results = []
    for env in environments(settings, names):
        status, summary, details = verify_application(env, settings.output / env.name / "kubernetes", app, kubectl)
        results.append(Result(env.name, "kubernetes/kustomization.yaml", status, summary, details,
                              label=f"--app {app} ({env.name})"))
    return Verification(results, {"kubectl": kubectl})


def review(settings: ToolSettings, base: str = "HEAD", names: Iterable[str] = ()) -> Review:
    """What the working tree changes in effect against git ref `base`: settings, artifacts by path, margins,
    policy findings and the unified diff of each environment (infragen.review). Reads the base with git, never
    writes to the working tree. GitError: a missing ref, a shallow clone without it, no git repository."""
    from .review import review as compare

    return compare(settings.environments, settings.output, base, names, settings.strict)


def new(settings: ToolSettings, name: str, tier: str, servers: Iterable[str], extends: str | None = None,
        service: str | None = None, strategy: str | None = None, prometheus_url: str | None = None,
        monitoring_labels: Iterable[tuple[str, str]] = ()) -> Scaffold:
    """Write a minimal environments/<name>.yaml that validates and builds (infragen.scaffold); never overwrites."""
    from .scaffold import Options, create

    return create(settings.environments, name, tier, list(servers), Options(
        extends=extends, service=service, strategy=strategy, prometheus_url=prometheus_url,
        monitoring_labels=tuple(monitoring_labels)))
