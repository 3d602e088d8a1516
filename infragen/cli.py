"""Command line: parse arguments, call the library, print, choose the exit code. Nothing else."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from . import __version__
from .errors import InfragenError, InputError, WriteInterrupted

if TYPE_CHECKING:
    from .config import ToolSettings  # imported where it is used: a run answered from the cache stays light

ENVIRONMENTS_HELP = ("Directory of environment files [default: environments/ in the project root, or "
                     "[tool.infragen] environments, or $INFRAGEN_ENVIRONMENTS].")
WRITING_COMMANDS = ("build", "new")  # the others never write, so never say "nothing was written"

# Exit codes are a contract (README, "Commands"). 1 is the command's own "no": a different word per command.
EXIT_OK = 0
EXIT_STALE = 1  # check: output/ differs from what build would write
EXIT_CHANGED = 1  # review: the working tree changes settings or output against the base
EXIT_UNVERIFIED = 1  # verify: an artifact failed its consumer (or, with --require-all, was skipped)
EXIT_INVALID = 2  # the command could not run: invalid input or usage, output not writable safely, git failing


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--output", "output", type=click.Path(path_type=Path, file_okay=False), default=None,
                        help="Output directory [default: output/ in the project root, or [tool.infragen] output, or $INFRAGEN_OUTPUT].")(func)
    func = click.option("--environments", "environments", type=click.Path(path_type=Path, file_okay=False), default=None,
                        help=ENVIRONMENTS_HELP)(func)
    return func


def _envs_arg(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("names", nargs=-1, metavar="[ENV]...")(func)


def _format_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--format", "fmt", type=click.Choice(["text", "json", "github"]), default=None,
                        help="text (default): human output. json: the findings as one JSON document on stdout. github: "
                             "GitHub Actions annotations (::error file=...,line=...::) on stdout. With json or github "
                             "everything else goes to stderr. Under GitHub Actions (GITHUB_ACTIONS=true) without "
                             "--format, annotations are printed as well as the text.")(func)


def _quiet(fmt: str | None) -> bool:
    """Does the human output go to stderr (stdout carries a machine format)?"""
    return fmt in ("json", "github")


def _annotating(fmt: str | None) -> bool:
    from .github import in_github_actions

    return fmt == "github" or (fmt is None and in_github_actions())


def _annotate(fmt: str | None, problems: list, extra: Sequence[str] = ()) -> None:
    """GitHub annotations of problems (and of `extra` lines already made), when the format asks for them.
    Acknowledged warnings are left out, as in the text output."""
    problems = [p for p in problems if p.level != "info"]
    if not _annotating(fmt) or not (problems or extra):
        return
    from .github import problem_annotation

    hint_for = _hint_function(problems)
    click.echo("\n".join([problem_annotation(p, hint_for(p) if hint_for else None) for p in problems] + list(extra)))


def _hint_function(problems: list) -> Callable[[Any], str | None] | None:
    if not any(p.rule for p in problems):
        return None
    from .policy import hint_for  # the models with it: not needed when every result came from the cache

    return lambda p: hint_for(p) if p.rule else None


def _summary(markdown: str) -> None:
    """Append to the file GITHUB_STEP_SUMMARY names, when it names one."""
    from .github import append_step_summary

    append_step_summary(markdown)


def _remember_cache(ctx: click.Context, _param: click.Parameter, value: bool | None) -> None:
    ctx.meta["infragen.cache"] = value


def _policy_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = _format_option(func)
    func = click.option("--cache/--no-cache", default=None, expose_value=False, callback=_remember_cache,
                        help="Reuse results of earlier runs for environments whose files are unchanged (docs/cache.md) "
                             "[default: on; [tool.infragen] cache, or $INFRAGEN_CACHE].")(func)
    return click.option("--strict/--no-strict", "strict", default=None,
                        help="Fail on policy warnings too [default: [tool.infragen] strict, or $INFRAGEN_STRICT].")(func)


def _print_json(fmt: str | None, problems: list, failed: bool, strict: bool = False) -> None:
    if fmt == "json":
        from .policy import as_dict

        click.echo(json.dumps({"ok": not failed, "strict": strict, "findings": [as_dict(p) for p in problems]},
                              indent=2, sort_keys=True))


def _print_problems(problems: list, fmt: str | None, notes: bool = False) -> None:
    """Text: one line per problem on stderr, ending with the fix for rule findings. JSON: printed at the end.
    Acknowledged warnings (level info) are printed by `validate` only (`notes`): the environment keeps them
    knowingly, so every build and check would only repeat them."""
    if not notes:
        problems = [p for p in problems if p.level != "info"]
    if fmt == "json" or not problems:
        return
    hint_for = _hint_function(problems)
    for problem in problems:
        hint = hint_for(problem) if hint_for else None
        click.echo(problem.format() + (f"; fix: {hint}" if hint else ""), err=True)


def _fail(error: InfragenError, fmt: str | None = None, summary: str | None = None) -> NoReturn:
    """Print what stopped the command (after any warnings found before it) and exit 2. `summary`: the command's
    name, to append the failure to the GitHub step summary (check, review)."""
    problems = [p for p in error.findings + error.problems if p.level != "info"]  # acknowledged: not repeated
    _print_problems(problems, fmt)
    _print_json(fmt, problems, failed=True, strict=getattr(error, "strict", False))
    _annotate(fmt, problems)
    count = len(problems)  # one line each above, warnings printed before the failure included
    if isinstance(error, WriteInterrupted):
        outcome = "the build stopped part-way: every file is either its old or its new version; fix it and build again"
    else:  # only a command that writes says it did not: for check or validate it would be noise
        outcome = "nothing was written" if click.get_current_context().info_name in WRITING_COMMANDS else ""
    click.echo(f"infragen: {count} problem{'s' if count != 1 else ''}" + (f"; {outcome}" if outcome else ""), err=True)
    if summary:
        from .markdown import failure_markdown

        _summary(failure_markdown(summary, problems, outcome, _hint_function(problems)))
    sys.exit(EXIT_INVALID)


def _settings(environments: Path | None, output: Path | None, strict: bool | None = None) -> ToolSettings:
    """The tool settings, in the project root found upward from the working directory (said when it is not the
    working directory: the paths in every message are then relative to somewhere else)."""
    from .config import find_root, load_settings

    cache = click.get_current_context().meta.get("infragen.cache")
    root = find_root()
    if root != Path.cwd():
        click.echo(f"infragen: project root {root} (the nearest directory above the working directory with "
                   "environments/ or [tool.infragen])", err=True)
    return load_settings(root, environments=environments, output=output, strict=strict, cache=cache)


def _run(use_case: Callable[..., Any], environments: Path | None, output: Path | None, strict: bool | None,
         fmt: str | None, names: tuple[str, ...], summary: str | None = None, notes: bool = False) -> Any:
    """Settings, then the use case; input and policy failures exit 2. Warnings are printed here (annotations are
    the caller's: check adds stale files to them)."""
    try:
        settings = _settings(environments, output, strict)
        click.get_current_context().meta["infragen.settings"] = settings
        outcome = use_case(settings, names)
    except InfragenError as exc:
        _fail(exc, fmt, summary)
    _print_problems(outcome.findings, fmt, notes)
    return outcome


def _displayer(output_dir: Path) -> Callable[[str], str]:
    """display_path for many files below output_dir, without a getcwd() and relpath() per file."""
    from .fsutil import display_path

    prefix = display_path(output_dir)
    if Path(prefix).is_absolute():
        return lambda rel: display_path(output_dir / rel)
    return lambda rel: rel if prefix == "." else f"{prefix}/{rel}"


def _stale_annotations(plan: Any, stale: list[tuple[str, str]], fix: str) -> list[str]:
    """One error annotation per file build would change, on the settings file that produces it (line 1: the file
    as a whole); a file of no environment (an orphan) is annotated itself."""
    from .fsutil import display_path
    from .github import annotation

    env_dir = click.get_current_context().meta["infragen.settings"].environments
    lines = []
    for change, (label, shown) in zip(plan.changes, stale, strict=True):
        name = change.path.split("/", 1)[0]
        source = env_dir / f"{name}.yaml"
        what = {"stale": "is stale: it is not what this file builds", "missing": "is missing: this file builds it",
                "orphaned": "is no longer generated from this file"}[label]
        if source.is_file():
            lines.append(annotation("error", f"{shown} {what}; run: {fix}",
                                    file=display_path(source), line=1, title="stale-output"))
        else:
            lines.append(annotation("error", f"{shown} {what}; run: {fix}", file=shown, title="stale-output"))
    return lines


def _fix_command(environments: Path | None, output: Path | None, names: tuple[str, ...]) -> str:
    parts = ["infragen", "build"]
    if environments is not None:
        parts += ["--environments", str(environments)]
    if output is not None:
        parts += ["--output", str(output)]
    return " ".join(parts + list(names))


# Every command's exit codes, for the top-level help (tests/test_cli.py checks them against the README's table).
EXIT_CODES = {
    "build": "0 written (or already up to date), 2",
    "check": "0 up to date, 1 output out of date, 2",
    "diff": "0 (whether or not there is a diff), 2",
    "validate": "0 valid, 2",
    "explain": "0, 2",
    "verify": "0 every check that ran passed, 1 a check failed (or was skipped, with --require-all), 2",
    "review": "0 nothing changed, 1 changes, 2",
    "new": "0 written, 2",
    "list": "0, 2",
    "schema": "0",
}


def _group_help() -> str:
    width = max(map(len, EXIT_CODES))
    rows = "\n".join(f"  {name:{width}}  {codes}" for name, codes in EXIT_CODES.items())
    return ("Generate and check a service's deployment artifacts from typed environment files.\n\n"
            "Run it anywhere in the project: the project root is the nearest directory, from the working directory "
            "up, that holds environments/ (or a pyproject.toml with [tool.infragen]).\n\n"
            f"\b\nExit codes (2: the command could not run: invalid input or usage, or output it cannot write safely;\none file:line:col line per problem):\n{rows}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, help=_group_help())
@click.version_option(__version__, prog_name="infragen")
def cli() -> None:
    pass


@cli.command()
@_common
@_policy_options
@_envs_arg
def build(environments: Path | None, output: Path | None, strict: bool | None, fmt: str, names: tuple[str, ...]) -> None:
    """Write the artifacts of all (or the named) environments.

    Only files that change are written; generated files no longer produced are removed; files infragen
    did not generate are never touched.
    """
    from . import api
    from .fsutil import display_path

    outcome = _run(api.build, environments, output, strict, fmt, names)
    plan = outcome.plan
    verbs = {"create": "created", "update": "updated", "delete": "deleted"}
    shown = _displayer(plan.output_dir)
    if plan.changes:  # one write: a first build prints a line per file, 7000 at 1000 environments
        click.echo("\n".join(f"{verbs[change.kind]:8} {shown(change.path)}" for change in plan.changes), err=_quiet(fmt))
    click.echo(f"{len(plan.changes)} changed, {len(plan.unchanged)} unchanged in {display_path(plan.output_dir)}", err=_quiet(fmt))
    _print_json(fmt, outcome.findings, failed=False, strict=outcome.strict)
    _annotate(fmt, outcome.findings)


@cli.command()
@_common
@_policy_options
@_envs_arg
def check(environments: Path | None, output: Path | None, strict: bool | None, fmt: str, names: tuple[str, ...]) -> None:
    """Exit 1 if the output directory differs from what build would write (for CI). Never writes to it."""
    from . import api
    from .fsutil import display_path
    from .plan import unified_diff

    outcome = _run(api.check, environments, output, strict, fmt, names, summary="check")
    plan = outcome.plan
    fix = _fix_command(environments, output, names)
    for rel in plan.unowned:
        click.echo(f"note: {display_path(plan.output_dir / rel)} was not generated by infragen; left alone", err=True)
    labels = {"update": "stale", "create": "missing", "delete": "orphaned"}
    shown = _displayer(plan.output_dir)
    stale = [(labels[change.kind], shown(change.path)) for change in plan.changes]
    if plan.up_to_date:
        click.echo(f"up to date: {len(plan.unchanged)} files in {display_path(plan.output_dir)}", err=_quiet(fmt))
    else:
        click.echo(unified_diff(plan), nl=False, err=_quiet(fmt))
        click.echo("\n".join(f"{label:9} {path}" for label, path in stale), err=True)
        counts = ", ".join(f"{len(plan.of_kind(kind))} {label}" for kind, label in labels.items())
        click.echo(f"output is out of date ({counts}); run: {fix}", err=True)
    _print_json(fmt, outcome.findings, failed=False, strict=outcome.strict)  # the findings passed; staleness is the exit code
    if _annotating(fmt):
        _annotate(fmt, outcome.findings, _stale_annotations(plan, stale, fix))
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        from .markdown import check_markdown

        _summary(check_markdown(stale, len(plan.unchanged), outcome.findings, fix, _hint_function(outcome.findings)))
    if not plan.up_to_date:
        sys.exit(EXIT_STALE)


@cli.command()
@_common
@_policy_options
@_envs_arg
def diff(environments: Path | None, output: Path | None, strict: bool | None, fmt: str, names: tuple[str, ...]) -> None:
    """Print the unified diff build would apply. Never writes to the output directory; exit 0 either way (2 when build
    would refuse)."""
    from . import api
    from .plan import unified_diff

    outcome = _run(api.diff, environments, output, strict, fmt, names)
    click.echo(unified_diff(outcome.plan), nl=False, err=_quiet(fmt))
    _print_json(fmt, outcome.findings, failed=False, strict=outcome.strict)
    _annotate(fmt, outcome.findings)


@cli.command()
@_common
@_policy_options
@_envs_arg
def validate(environments: Path | None, output: Path | None, strict: bool | None, fmt: str, names: tuple[str, ...]) -> None:
    """Load and validate environment files and check every policy rule (docs/policy.md); write no artifact."""
    from . import api

    outcome = _run(api.validate, environments, output, strict, fmt, names, notes=True)
    click.echo(f"valid: {', '.join(outcome.environments)}" if outcome.environments else "no environments found",
               err=_quiet(fmt))
    _print_json(fmt, outcome.findings, failed=False, strict=outcome.strict)
    _annotate(fmt, outcome.findings)


@cli.command()
@_common
@click.option("--base", default="HEAD", show_default=True, metavar="REF",
              help="Git ref or commit to compare with: its environment files and its committed output/ (read with git, "
                   "no checkout). HEAD shows what the uncommitted edits do.")
@click.option("--strict/--no-strict", "strict", default=None,
              help="Count policy warnings of the new side as failing [default: [tool.infragen] strict, or $INFRAGEN_STRICT].")
@click.option("--format", "fmt", type=click.Choice(["markdown", "github"]), default=None,
              help="markdown (default): the review on stdout. github: GitHub Actions annotations of the new side's "
                   "findings on stdout, the Markdown on stderr. Under GitHub Actions (GITHUB_ACTIONS=true) without "
                   "--format, annotations are printed after the Markdown.")
@_envs_arg
def review(environments: Path | None, output: Path | None, base: str, strict: bool | None, fmt: str | None,
           names: tuple[str, ...]) -> None:
    """Print, as GitHub-flavoured Markdown, what the working tree changes in effect against git ref REF: per changed
    environment the settings (old -> new, file:line, partial or tier default), the artifact changes by file and path,
    the margins that moved, the policy findings and the folded unified diff. Appended to $GITHUB_STEP_SUMMARY when set.

    Exit codes: 0 nothing changed, 1 changes, 2 an environment fails (does not load, or a policy error) or the base
    cannot be read (unknown ref, shallow clone without it, not a git repository).
    """
    from . import api
    from .markdown import review_markdown

    try:
        settings = _settings(environments, output, strict)
        result = api.review(settings, base, names)
    except InfragenError as exc:
        _fail(exc, None if fmt == "markdown" else fmt, summary="review")
    problems = [p for env in result.environments for p in env.problems + env.findings]
    text = review_markdown(result, _hint_function(problems))
    click.echo(text, nl=False, err=fmt == "github")
    _annotate(None if fmt == "markdown" else fmt, problems)
    _summary(text)
    if result.failing:
        sys.exit(EXIT_INVALID)
    if result.changed:
        sys.exit(EXIT_CHANGED)


@cli.command()
@click.option("--environments", "environments", type=click.Path(path_type=Path, file_okay=False), default=None,
              help=ENVIRONMENTS_HELP)
@click.option("--tier", required=True, type=click.Choice(["development", "staging", "production"]),
              help="The tier whose defaults the environment starts from.")
@click.option("--server", "servers", multiple=True, required=True, metavar="HOST:PORT",
              help="An upstream server nginx balances over; repeat for each (required).")
@click.option("--extends", "extends", default=None, metavar="PARTIAL",
              help="A partial to extend (`_base`: the file environments/_base.yaml).")
@click.option("--service", default=None, metavar="NAME",
              help="service.name (the Deployment and the Prometheus job); required unless the partial sets it.")
@click.option("--strategy", type=click.Choice(["rolling", "canary", "blue-green"]), default=None,
              help="rollout.strategy [default: the tier's: development rolling, staging canary, production blue-green].")
@click.option("--prometheus-url", default=None, metavar="URL",
              help="rollout.prometheus_url, the Prometheus a canary or blue-green analysis queries; required for them "
                   "unless the partial sets it (or give --strategy rolling).")
@click.option("--monitoring-label", "monitoring_labels", multiple=True, metavar="KEY=VALUE",
              help="monitoring.labels: a label the cluster's Prometheus selects ServiceMonitors and PrometheusRules by "
                   "(kube-prometheus-stack: release=<its release name>); repeat for each.")
@click.argument("name", metavar="ENV")
def new(environments: Path | None, tier: str, servers: tuple[str, ...], extends: str | None, service: str | None,
        strategy: str | None, prometheus_url: str | None, monitoring_labels: tuple[str, ...], name: str) -> None:
    """Write environments/ENV.yaml: the smallest file that validates, passes the policy rules and builds, with the
    smallest database.max_connections that fits the fleet (set it to what your database allows). Never overwrites."""
    from . import api
    from .fsutil import display_path

    try:
        labels = [label.partition("=")[::2] for label in monitoring_labels]
        if any("=" not in label for label in monitoring_labels):
            raise InputError.single("--monitoring-label takes KEY=VALUE, e.g. release=kube-prometheus-stack")
        scaffold = api.new(_settings(environments, None), name, tier, servers, extends=extends, service=service,
                           strategy=strategy, prometheus_url=prometheus_url, monitoring_labels=labels)
    except InfragenError as exc:
        _fail(exc)
    command = scaffold.next_command + (f" --environments {environments}" if environments is not None else "")
    click.echo(f"wrote {display_path(scaffold.path)} (tier {tier}"
               + (f", extends {extends}" if extends else "")
               + f", database.max_connections {scaffold.max_connections}: set it to what your database allows)")
    click.echo(f"next: {command}")


@cli.command("list")
@_common
def list_(environments: Path | None, output: Path | None) -> None:
    """List environments with their tier, source file and partials."""
    from . import api

    try:
        envs = api.environments(_settings(environments, output))
    except InfragenError as exc:
        _fail(exc)
    rows = [(e.name, e.spec.tier, e.namespace, e.source + (f" (extends {', '.join(e.partials)})" if e.partials else ""))
            for e in envs]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("ENVIRONMENT", "TIER", "NAMESPACE"))]
    click.echo(f"{'ENVIRONMENT':{widths[0]}}  {'TIER':{widths[1]}}  {'NAMESPACE':{widths[2]}}  SOURCE")
    for row in rows:
        click.echo(f"{row[0]:{widths[0]}}  {row[1]:{widths[1]}}  {row[2]:{widths[2]}}  {row[3]}")


@cli.command("explain")
@click.option("--environments", "environments", type=click.Path(path_type=Path, file_okay=False), default=None,
              help=ENVIRONMENTS_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: the settings as one JSON document.")
@click.argument("name", metavar="ENV")
@click.argument("field", required=False, metavar="[FIELD]")
def explain_(environments: Path | None, fmt: str, name: str, field: str | None) -> None:
    """Print each effective setting of ENV (or those under FIELD) and where it came from: the environment file,
    a partial, a tier default, a model default, or derived (with the formula)."""
    from . import api

    try:
        explanation = api.explain(_settings(environments, None), name, field)
    except InfragenError as exc:
        _fail(exc, fmt)
    env, rows = explanation.environment, explanation.settings
    if fmt == "json":
        click.echo(json.dumps({"environment": env.name, "settings": [r.as_dict() for r in rows]}, indent=2, sort_keys=True))
        return
    extends = f", extends {', '.join(env.partials)}" if env.partials else ""
    click.echo(f"{env.name}: tier {env.spec.tier}, {env.source}{extends}")
    width = max(len("SETTING"), *(len(r.path) for r in rows))
    value_width = min(40, max(len("VALUE"), *(len(r.value) for r in rows)))
    click.echo(f"{'SETTING':{width}}  {'VALUE':{value_width}}  FROM")
    for row in rows:
        click.echo(f"{row.path:{width}}  {row.value:{value_width}}  {row.source}")


@cli.command()
@_common
@click.option("--require-all", is_flag=True, help="Fail when a validator is not installed instead of skipping it.")
@click.option("--crd-schemas", type=click.Path(path_type=Path, file_okay=False), envvar="INFRAGEN_CRD_SCHEMAS",
              help="Directory of custom resource schemas, {group}/{kind}_{version}.json (kubeconform's layout) "
                   "[$INFRAGEN_CRD_SCHEMAS]; without it custom resources are reported as skipped.")
@click.option("--dashboard-schema", type=click.Path(path_type=Path, dir_okay=False), envvar="INFRAGEN_DASHBOARD_SCHEMA",
              help="Grafana's dashboard JSON Schema [$INFRAGEN_DASHBOARD_SCHEMA]; without it the dashboard is "
                   "reported as skipped after its queries are checked.")
@click.option("--app", type=click.Path(path_type=Path), default=None, metavar="DIR",
              help="Instead: render the application's kustomization in DIR with each environment's Component "
                   "(kubectl kustomize) and fail, naming the container, when the patch would add one instead of "
                   "merging into it.")
@_envs_arg
def verify(environments: Path | None, output: Path | None, require_all: bool, crd_schemas: Path | None,
           dashboard_schema: Path | None, app: Path | None, names: tuple[str, ...]) -> None:
    """Check the built artifacts with their real consumers (kubernetes-validate, promtool, amtool, nginx, sh).

    One line per artifact: ok, failed (with the tool's message) or skipped (tool not installed).
    Exit 0 when every check that ran passed, 1 when one failed (or, with --require-all, was skipped).
    """
    from . import api
    from .consumers import INSTALL_HINT
    from .fsutil import display_path

    try:
        settings = _settings(environments, output)
        verification = (api.verify_app(settings, app, names) if app is not None
                        else api.verify(settings, names, crd_schemas, dashboard_schema))
    except InfragenError as exc:
        _fail(exc)
    results = verification.results
    shown = [r.label or display_path(settings.output / r.environment / r.artifact) for r in results]
    width = max((len(label) for label in shown), default=0)
    for label, r in zip(shown, results, strict=True):
        click.echo(f"{label:{width}}  {r.status:7}  {r.summary}")
        if r.status == "failed" and r.details:
            for line in r.details.splitlines()[:40]:
                click.echo(f"    {line}")
    counts = {status: verification.count(status) for status in ("ok", "failed", "skipped")}
    click.echo(f"verify: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped")
    if counts["skipped"] and any(not path for path in verification.tools.values()):
        click.echo(f"install the missing validators with: {INSTALL_HINT}", err=True)
    if counts["failed"] or (require_all and counts["skipped"]):
        sys.exit(EXIT_UNVERIFIED)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of an environment file."""
    from .schema import environment_schema

    click.echo(json.dumps(environment_schema(), indent=2, sort_keys=True))


def _without_plugin_search() -> None:
    """With every plugin disabled, pydantic's plugin loader answers "none" without looking; importing it still
    costs ~20 ms of start-up (importlib.metadata, which imports email, zipfile, csv and socket), a tenth of a
    cold `check`. Register that answer as the loader (pydantic.plugin._loader.get_plugins, the one name pydantic
    imports from it) before pydantic first imports it. Should pydantic move it, the stub is never read."""
    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") not in ("__all__", "1", "true"):
        return
    name = "pydantic.plugin._loader"
    if name not in sys.modules:
        import types

        loader = types.ModuleType(name, "infragen: pydantic plugins disabled (PYDANTIC_DISABLE_PLUGINS)")
        loader.get_plugins = lambda: ()  # type: ignore[attr-defined]
        sys.modules[name] = loader


def main() -> None:
    # infragen uses no pydantic plugin, and none may change what it accepts; unless told not to, pydantic reads
    # the entry points of every installed distribution, at the first model, to look for them.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    _without_plugin_search()
    cli(prog_name="infragen")


if __name__ == "__main__":  # pragma: no cover
    main()
