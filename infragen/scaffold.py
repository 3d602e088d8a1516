"""`infragen new`: a minimal environment file that validates, passes the policy rules and builds.

The file names its tier (whose defaults fill in replicas, pool and budget), optionally a partial and the service,
the upstream servers (nothing can default those) and `database.max_connections`. A file relying on the tier
defaults alone would fail the fleet rule: PostgreSQL's default of 100 leaves 90 usable, and staging's defaults
open (5 + 2 surge) x (10 + 5) = 105 at peak. So the scaffold writes the smallest max_connections that fits, found
with the environment's own derived values (peak connections, usable connections after the reserve), and says it
must match what the database allows.

The candidate file is loaded from a temporary copy of the environments folder (its partials beside it), so nothing
is written unless it loads and passes; the real file is then created exclusively: an existing one is never
overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .discover import ENV_NAME_RE, PARTIAL_RE, SUFFIX, did_you_mean
from .errors import InputError, Location, Problem, failing
from .fsutil import display_path
from .load import Loader
from .models.environment import Environment
from .models.settings import TIERS
from .policy import check_environment


@dataclass
class Scaffold:
    path: Path  # the file written
    text: str
    environment: Environment  # as loaded from it
    max_connections: int
    next_command: str  # what to run next


@dataclass(frozen=True)
class Options:
    """What `infragen new` was told beyond the name, tier and servers."""

    extends: str | None = None
    service: str | None = None
    strategy: str | None = None
    prometheus_url: str | None = None
    monitoring_labels: tuple[tuple[str, str], ...] = ()


def design_acknowledgements(env: Environment) -> list[tuple[str, list[str]]]:
    """(rule, reason lines) for each warning the tier's design defaults necessarily give: the file then says so,
    as the shipped staging does, instead of failing `validate --strict` from its first day."""
    found = {f.rule for f in check_environment(env) if f.level == "warning"}
    # A list replaces the one a partial gives: keep the partial's acknowledgements beside the new ones.
    acks = [(rule, [f"{rule}: acknowledged by the partial this file extends (a list here replaces its list)."])
            for rule in env.spec.policy.acknowledge]
    if "canary-step-share" in found:
        replicas = env.spec.autoscaling.min_replicas
        weight, low, _high = next(step for step in env.rollout.canary_steps if not step[1].faithful(step[0]))
        acks.append(("canary-step-share", [
            f"The canary steps {env.spec.rollout.canary.steps} at {replicas} replicas: Argo Rollouts without a traffic",
            f"router splits pods, not requests, so {weight}% is {low.canary} pod of {low.canary + low.stable} "
            f"({low.share:.0%}). Enough to",
            "exercise the gates; raise autoscaling.min_replicas or use larger steps for a faithful canary."]))
    return acks if len(acks) > len(env.spec.policy.acknowledge) else []


def _text(name: str, tier: str, servers: list[str], options: Options, max_connections: int | None, peak: int | None,
          acknowledge: list[tuple[str, list[str]]] | None = None) -> str:
    extends, service, strategy, prometheus_url = (options.extends, options.service, options.strategy,
                                                  options.prometheus_url)
    lines = [f"# {name}: a {tier}-tier environment, written by `infragen new`. The tier's defaults supply replicas,",
             f"# pool sizes and the disruption budget; `infragen explain {name}` shows every value and where it comes from."]
    if extends:
        lines.append(f"extends: {extends}")
    lines.append(f"tier: {tier}")
    if service:
        lines += ["service:", f"  name: {service}"]
    lines += ["load_balancing:", "  servers:"] + [f"    - {json.dumps(server)}" for server in servers]
    if strategy or prometheus_url:
        lines.append("rollout:")
        if strategy:
            lines.append(f"  strategy: {strategy}")
        if prometheus_url:
            lines.append(f"  prometheus_url: {json.dumps(prometheus_url)}  # the Prometheus the rollout's analysis queries")
    if max_connections is not None:
        lines += ["database:",
                  f"  # must match what your database allows. {max_connections} is the smallest that fits this fleet's",
                  f"  # peak of {peak} connections (every pod of a rollout's peak, every pool and overflow full) after",
                  "  # the reserve; `infragen explain " + name + " database` shows the arithmetic.",
                  f"  max_connections: {max_connections}"]
    if options.monitoring_labels:
        lines += ["monitoring:", "  labels:  # what the cluster's Prometheus selects the operator resources by"]
        lines += [f"    {json.dumps(key)}: {json.dumps(value)}" for key, value in options.monitoring_labels]
    if acknowledge:
        lines.append("policy:")
        for _rule, reason in acknowledge:
            lines += [f"  # {line}" for line in reason]
        lines.append(f"  acknowledge: [{', '.join(rule for rule, _ in acknowledge)}]")
    return "\n".join(lines) + "\n"


def _check_arguments(directory: Path, name: str, tier: str, servers: list[str], extends: str | None) -> Path:
    problems = []
    if not ENV_NAME_RE.fullmatch(name):
        problems.append(f"{name!r} is not an environment name: a DNS label (lower-case letters, digits, '-')")
    if tier not in TIERS:
        problems.append(f"{tier!r} is not a tier; use development, staging or production{did_you_mean(tier, TIERS)}")
    if not servers:
        problems.append("give the upstream servers: --server HOST:PORT (repeat it for each)")
    if extends is not None:
        if not PARTIAL_RE.fullmatch(extends):
            problems.append(f"{extends!r} is not a partial name: partials are `_<name>` (a file _<name>.yaml)")
        elif not (directory / f"{extends}{SUFFIX}").is_file():
            known = sorted(p.stem for p in directory.glob(f"_*{SUFFIX}")) if directory.is_dir() else []
            problems.append(f"partial {extends!r} not found: no file {display_path(directory / (extends + SUFFIX))}"
                            + (did_you_mean(extends, known) or (f" (partials: {', '.join(known)})" if known else "")))
    if not directory.is_dir():
        problems.append(f"environments directory {display_path(directory)} not found (set --environments)")
    if problems:
        raise InputError([Problem(None, None, p) for p in problems])
    path = directory / f"{name}{SUFFIX}"
    if os.path.lexists(path):
        raise InputError.single("already exists; `infragen new` never overwrites a file (edit it, or pick another name)",
                                Location(display_path(path)))
    return path


def _trial(directory: Path, name: str, text: str) -> Environment:
    """Load `text` as environment `name` beside copies of the folder's partials; problems name the real folder."""
    with tempfile.TemporaryDirectory(prefix="infragen-new-") as tmp:
        trial = Path(tmp) / (directory.resolve().name or "environments")
        trial.mkdir()
        for partial in directory.glob(f"_*{SUFFIX}"):
            if partial.is_file():
                shutil.copyfile(partial, trial / partial.name)
        (trial / f"{name}{SUFFIX}").write_text(text, encoding="utf-8")
        try:
            return Loader(trial).load(name)
        except InputError as exc:
            prefix, real = display_path(trial), display_path(directory)
            raise InputError([Problem(Location(real + loc.file[len(prefix):], loc.line, loc.column, loc.origin)
                                      if (loc := p.location) is not None and loc.file and loc.file.startswith(prefix)
                                      else loc, p.field, p.message, p.level, p.rule, p.environment)
                              for p in exc.problems]) from None


def create(directory: Path, name: str, tier: str, servers: list[str], options: Options | None = None) -> Scaffold:
    directory, options = Path(directory), options or Options()
    path = _check_arguments(directory, name, tier, servers, options.extends)
    try:
        draft = _trial(directory, name, _text(name, tier, servers, options, None, None))
    except InputError as exc:
        if any(p.field in ("service", "service.name") and p.message == "required" for p in exc.problems) \
                and not options.service:
            raise InputError.single("give --service NAME: no partial sets service.name") from None
        raise
    if draft.rollout.argo and draft.spec.rollout.prometheus_url is None:
        raise InputError.single(f"a {draft.rollout.strategy} rollout (the {tier} tier's) gates on Prometheus queries: give "
                                "--prometheus-url URL, or --strategy rolling to keep the previous output")
    max_connections = draft.capacity.smallest_fitting_max_connections
    peak = draft.capacity.peak_connections
    sized = _trial(directory, name, _text(name, tier, servers, options, max_connections, peak))
    text = _text(name, tier, servers, options, max_connections, peak, design_acknowledgements(sized))
    env = _trial(directory, name, text)
    errors = failing(check_environment(env), strict=False)
    if errors:  # a partial that breaks a rule by itself: say so rather than write a file that cannot build
        raise InputError(errors)
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError:
        raise InputError.single("already exists; `infragen new` never overwrites a file",
                                Location(display_path(path))) from None
    except OSError as exc:
        raise InputError.single(f"cannot write: {exc.strerror or exc}", Location(display_path(path))) from None
    return Scaffold(path, text, env, max_connections, f"infragen build {name}")
