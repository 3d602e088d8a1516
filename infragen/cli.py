"""Command line: parse arguments, call the library, print, choose the exit code. Nothing else."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, NoReturn

import click

from . import __version__
from .errors import InputError

EXIT_OK, EXIT_STALE, EXIT_INVALID = 0, 1, 2


def _common(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--output", "output", type=click.Path(path_type=Path, file_okay=False), default=None,
                        help="Output directory [default: output/, or [tool.infragen] output, or $INFRAGEN_OUTPUT].")(func)
    func = click.option("--environments", "environments", type=click.Path(path_type=Path, file_okay=False), default=None,
                        help="Directory of environment files [default: environments/].")(func)
    return func


def _envs_arg(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("names", nargs=-1, metavar="[ENV]...")(func)


def _format_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                        help="json: print findings as one JSON document on stdout (for CI annotations); "
                             "everything else goes to stderr.")(func)


def _remember_cache(ctx: click.Context, _param: click.Parameter, value: bool | None) -> None:
    ctx.meta["infragen.cache"] = value


def _policy_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = _format_option(func)
    func = click.option("--cache/--no-cache", default=None, expose_value=False, callback=_remember_cache,
                        help="Reuse results of earlier runs for environments whose files are unchanged (docs/cache.md) "
                             "[default: on; [tool.infragen] cache, or $INFRAGEN_CACHE].")(func)
    return click.option("--strict/--no-strict", "strict", default=None,
                        help="Fail on policy warnings too [default: [tool.infragen] strict, or $INFRAGEN_STRICT].")(func)


def _print_json(fmt: str, problems: list, failed: bool, strict: bool = False) -> None:
    if fmt == "json":
        from .policy import as_dict

        click.echo(json.dumps({"ok": not failed, "strict": strict, "findings": [as_dict(p) for p in problems]},
                              indent=2, sort_keys=True))


def _print_problems(problems: list, fmt: str) -> None:
    """Text: one line per problem on stderr, ending with the fix for rule findings. JSON: printed at the end."""
    if fmt == "json" or not problems:
        return
    from .policy import hint_for  # the models with it: not needed when every result came from the cache

    for problem in problems:
        hint = hint_for(problem) if problem.rule else None
        click.echo(problem.format() + (f"; fix: {hint}" if hint else ""), err=True)


def _fail(error: InputError, fmt: str = "text") -> NoReturn:
    """Print what stopped the command (after any warnings found before it) and exit 2."""
    from .plan import WriteInterrupted

    problems = error.findings + error.problems
    _print_problems(problems, fmt)
    _print_json(fmt, problems, failed=True, strict=getattr(error, "strict", False))
    count = len(problems)  # one line each above, warnings printed before the failure included
    outcome = ("the build stopped part-way: every file is either its old or its new version; fix it and build again"
               if isinstance(error, WriteInterrupted) else "nothing was written")
    click.echo(f"infragen: {count} problem{'s' if count != 1 else ''}; {outcome}", err=True)
    sys.exit(EXIT_INVALID)


def _settings(environments: Path | None, output: Path | None, strict: bool | None = None):
    from .config import load_settings

    cache = click.get_current_context().meta.get("infragen.cache")
    return load_settings(environments=environments, output=output, strict=strict, cache=cache)


def _run(use_case: Callable[..., Any], environments: Path | None, output: Path | None, strict: bool | None, fmt: str,
         names: tuple[str, ...]) -> Any:
    """Settings, then the use case; input and policy failures exit 2. Warnings are printed here."""
    try:
        settings = _settings(environments, output, strict)
        outcome = use_case(settings, names)
    except InputError as exc:
        _fail(exc, fmt)
    _print_problems(outcome.findings, fmt)
    return outcome


def _displayer(output_dir: Path) -> Callable[[str], str]:
    """display_path for many files below output_dir, without a getcwd() and relpath() per file."""
    from .discover import display_path

    prefix = display_path(output_dir)
    if Path(prefix).is_absolute():
        return lambda rel: display_path(output_dir / rel)
    return lambda rel: rel if prefix == "." else f"{prefix}/{rel}"


def _fix_command(environments: Path | None, output: Path | None, names: tuple[str, ...]) -> str:
    parts = ["infragen", "build"]
    if environments is not None:
        parts += ["--environments", str(environments)]
    if output is not None:
        parts += ["--output", str(output)]
    return " ".join(parts + list(names))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="infragen")
def cli() -> None:
    """Generate and check a service's deployment artifacts from typed environment files.

    Exit codes: 0 ok, 1 output out of date (check), 2 invalid input or usage.
    """


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
    from .discover import display_path

    outcome = _run(api.build, environments, output, strict, fmt, names)
    plan = outcome.plan
    verbs = {"create": "created", "update": "updated", "delete": "deleted"}
    shown = _displayer(plan.output_dir)
    if plan.changes:  # one write: a first build prints a line per file, 7000 at 1000 environments
        click.echo("\n".join(f"{verbs[change.kind]:8} {shown(change.path)}" for change in plan.changes), err=fmt == "json")
    click.echo(f"{len(plan.changes)} changed, {len(plan.unchanged)} unchanged in {display_path(plan.output_dir)}", err=fmt == "json")
    _print_json(fmt, outcome.findings, failed=False, strict=outcome.strict)


@cli.command()
@_common
@_policy_options
@_envs_arg
def check(environments: Path | None, output: Path | None, strict: bool | None, fmt: str, names: tuple[str, ...]) -> None:
    """Exit 1 if the output directory differs from what build would write (for CI). Never writes to it."""
    from . import api
    from .discover import display_path
    from .plan import unified_diff

    outcome = _run(api.check, environments, output, strict, fmt, names)
    plan = outcome.plan
    for rel in plan.unowned:
        click.echo(f"note: {display_path(plan.output_dir / rel)} was not generated by infragen; left alone", err=True)
    if plan.up_to_date:
        click.echo(f"up to date: {len(plan.unchanged)} files in {display_path(plan.output_dir)}", err=fmt == "json")
        _print_json(fmt, outcome.findings, failed=False, strict=outcome.strict)
        return
    click.echo(unified_diff(plan), nl=False, err=fmt == "json")
    labels = {"update": "stale", "create": "missing", "delete": "orphaned"}
    shown = _displayer(plan.output_dir)
    click.echo("\n".join(f"{labels[change.kind]:9} {shown(change.path)}" for change in plan.changes), err=True)
    counts = ", ".join(f"{len(plan.of_kind(kind))} {label}" for kind, label in labels.items())
    click.echo(f"output is out of date ({counts}); run: {_fix_command(environments, output, names)}", err=True)
    _print_json(fmt, outcome.findings, failed=False, strict=outcome.strict)  # the findings passed; staleness is the exit code
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
    click.echo(unified_diff(outcome.plan), nl=False, err=fmt == "json")
    _print_json(fmt, outcome.findings, failed=False, strict=outcome.strict)


@cli.command()
@_common
@_policy_options
@_envs_arg
def validate(environments: Path | None, output: Path | None, strict: bool | None, fmt: str, names: tuple[str, ...]) -> None:
    """Load and validate environment files and check every policy rule (docs/policy.md); write no artifact."""
    from . import api

    outcome = _run(api.validate, environments, output, strict, fmt, names)
    click.echo(f"valid: {', '.join(outcome.environments)}" if outcome.environments else "no environments found",
               err=fmt == "json")
    _print_json(fmt, outcome.findings, failed=False, strict=outcome.strict)


@cli.command("list")
@_common
def list_(environments: Path | None, output: Path | None) -> None:
    """List environments with their tier, source file and partials."""
    from . import api

    try:
        envs = api.environments(_settings(environments, output))
    except InputError as exc:
        _fail(exc)
    rows = [(e.name, e.spec.tier, e.namespace, e.source + (f" (extends {', '.join(e.partials)})" if e.partials else ""))
            for e in envs]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(("ENVIRONMENT", "TIER", "NAMESPACE"))]
    click.echo(f"{'ENVIRONMENT':{widths[0]}}  {'TIER':{widths[1]}}  {'NAMESPACE':{widths[2]}}  SOURCE")
    for row in rows:
        click.echo(f"{row[0]:{widths[0]}}  {row[1]:{widths[1]}}  {row[2]:{widths[2]}}  {row[3]}")


@cli.command("explain")
@click.option("--environments", "environments", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Directory of environment files [default: environments/].")
@_format_option
@click.argument("name", metavar="ENV")
@click.argument("field", required=False, metavar="[FIELD]")
def explain_(environments: Path | None, fmt: str, name: str, field: str | None) -> None:
    """Print each effective setting of ENV (or those under FIELD) and where it came from: the environment file,
    a partial, a tier default, a model default, or derived (with the formula)."""
    from . import api

    try:
        explanation = api.explain(_settings(environments, None), name, field)
    except InputError as exc:
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
@_envs_arg
def verify(environments: Path | None, output: Path | None, require_all: bool, crd_schemas: Path | None,
           dashboard_schema: Path | None, names: tuple[str, ...]) -> None:
    """Check the built artifacts with their real consumers (kubernetes-validate, promtool, amtool, nginx, sh).

    One line per artifact: ok, failed (with the tool's message) or skipped (tool not installed).
    Exit 0 when every check that ran passed, 1 when one failed (or, with --require-all, was skipped).
    """
    from . import api
    from .consumers import INSTALL_HINT
    from .discover import display_path

    try:
        settings = _settings(environments, output)
        verification = api.verify(settings, names, crd_schemas, dashboard_schema)
    except InputError as exc:
        _fail(exc)
    results = verification.results
    width = max((len(display_path(settings.output / r.environment / r.artifact)) for r in results), default=0)
    for r in results:
        click.echo(f"{display_path(settings.output / r.environment / r.artifact):{width}}  {r.status:7}  {r.summary}")
        if r.status == "failed" and r.details:
            for line in r.details.splitlines()[:40]:
                click.echo(f"    {line}")
    counts = {status: verification.count(status) for status in ("ok", "failed", "skipped")}
    click.echo(f"verify: {counts['ok']} ok, {counts['failed']} failed, {counts['skipped']} skipped")
    if counts["skipped"] and any(not path for path in verification.tools.values()):
        click.echo(f"install the missing validators with: {INSTALL_HINT}", err=True)
    if counts["failed"] or (require_all and counts["skipped"]):
        sys.exit(EXIT_STALE)


@cli.command()
def schema() -> None:
    """Print the JSON Schema of an environment file."""
    from .schema import environment_schema

    click.echo(json.dumps(environment_schema(), indent=2, sort_keys=True))


def main() -> None:
    cli(prog_name="infragen")


if __name__ == "__main__":  # pragma: no cover
    main()
