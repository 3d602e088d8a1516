"""`infragen explain`: every effective setting of an environment and where it came from.

A value comes from the environment's own file, a partial it extends, its tier's defaults, the model's
default, or is derived from other values (then the formula is shown with the numbers put in). The same
`origin_of` tells `infragen.policy` where to point.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Iterator, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .errors import InputError, Location
from .load import did_you_mean
from .models.environment import Environment
from .models.types import format_duration, format_number, parse_duration

PathKey = tuple[Any, ...]
Kind = Literal["environment", "partial", "tier", "default", "derived"]

DEFAULT = Location(origin="default")


@dataclass(frozen=True)
class Setting:
    path: str  # dotted, as written in the file (`alerts.error_rate.for`)
    value: str  # as it would be written in the file
    kind: Kind
    source: str  # "environments/production.yaml:14:20", "tier default (production)", "derived: ..."
    location: Location | None = None  # set when the value was written in a file

    def as_dict(self) -> dict[str, Any]:
        loc = self.location or Location()
        return {"setting": self.path, "value": self.value, "kind": self.kind, "source": self.source,
                "file": loc.file, "line": loc.line, "column": loc.column}


def own_file(env: Environment, location: Location) -> bool:
    """Is `location` in the environment's own file (not a partial)? Partials start with `_`, environments never do."""
    # String operations, not PurePosixPath: the policy check asks this of every located value of every environment.
    return location.file is not None and location.file.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] == f"{env.name}.yaml"


def origin_of(env: Environment, path: PathKey) -> Location:
    """Where the value at `path` was set: a file location, a tier-default origin, or `DEFAULT` (the model's default)."""
    path = tuple(path)
    found = env.locations.get(path)
    if found is not None:
        return found
    # A server written as a plain "host:port" string sets its address there.
    if path[-1:] == ("address",) and path[-3:-2] == ("servers",) and path[:-1] in env.locations:
        return env.locations[path[:-1]]
    return DEFAULT


def describe(env: Environment, location: Location) -> tuple[Kind, str]:
    if location.file is not None:
        return ("environment", str(location)) if own_file(env, location) else ("partial", f"{location} (partial)")
    origin = location.origin or "default"
    return ("tier", origin) if origin.startswith("tier default") else ("default", origin)


# --- values ------------------------------------------------------------------------------------------

def _is_duration(info: FieldInfo | None) -> bool:
    if info is None:
        return False

    def has(metadata: Any) -> bool:
        return any(getattr(m, "func", None) is parse_duration for m in metadata)

    if has(info.metadata):
        return True
    return any(has(getattr(arg, "__metadata__", ())) for arg in typing.get_args(info.annotation))


def format_value(value: Any, duration: bool = False) -> str:
    """A value as it would be written in YAML flow style."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if duration and isinstance(value, int):
        return format_duration(value)
    if isinstance(value, (int, float)):
        return format_number(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def _leaves(value: Any, path: PathKey, info: FieldInfo | None) -> Iterator[tuple[PathKey, Any, FieldInfo | None]]:
    if isinstance(value, BaseModel):
        for name, field_info in type(value).model_fields.items():
            yield from _leaves(getattr(value, name), path + (field_info.alias or name,), field_info)
    elif value is None and info is not None and _models_in(info.annotation):
        return  # an optional sub-section left out (a receiver without slack): nothing to explain
    elif isinstance(value, dict) and value and all(isinstance(v, BaseModel) for v in value.values()):
        for key, child in value.items():
            yield from _leaves(child, path + (key,), None)
    elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
        for i, child in enumerate(value):
            yield from _leaves(child, path + (i,), None)
    else:
        yield path, value, info


def _models_in(annotation: Any) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_models_in(arg) for arg in typing.get_args(annotation))


def _unset_derivation(env: Environment, path: PathKey) -> tuple[Any, str] | None:
    """The value used for an optional setting left unset, and how it is derived."""
    db, lb = env.spec.database, env.spec.load_balancing
    if path == ("service", "namespace"):
        return env.namespace, "the environment name"
    if path == ("service", "selector"):
        return env.selector, "{app.kubernetes.io/name: service.name}"
    if path == ("database", "pool_size"):
        return env.pool_size, (f"ceil(database.base_pool_size {db.base_pool_size} x database.load_estimate "
                               f"{format_number(db.load_estimate)})")
    if path == ("database", "max_overflow"):
        return env.pool_overflow, f"database.pool_size {env.pool_size} // 2"
    if path == ("load_balancing", "method"):
        directive = " ".join(env.balancing_directive) or "round-robin (no directive)"
        if lb.affinity_mode == "hash":
            return directive, f"session affinity on nginx {lb.nginx_version} (< 1.29.6) hashes the session cookie"
        return directive, "least_conn unless session affinity hashes"
    if len(path) == 4 and path[:2] == ("load_balancing", "servers") and path[3] in ("max_fails", "fail_timeout"):
        value = getattr(lb, path[3])
        shown = format_duration(value) if path[3] == "fail_timeout" else value
        return shown, f"load_balancing.{path[3]}"
    return None


def _derived(env: Environment) -> list[tuple[str, Any, str]]:
    """Values infragen computes (setting-like name, value, formula with the numbers in)."""
    spec, db = env.spec, env.spec.database
    a = spec.autoscaling
    surge = spec.rollout.max_surge
    surge_formula = (f"rollout.max_surge {surge} of autoscaling.max_replicas {a.max_replicas}, rounded up"
                     if isinstance(surge, str) else f"rollout.max_surge {surge}")
    kind, value = env.pdb_field
    rounded = " (a percentage, rounded up)" if isinstance(value, str) else ""
    evictions = (f"autoscaling.min_replicas {a.min_replicas} - minAvailable {value}{rounded}" if kind == "minAvailable"
                 else f"maxUnavailable {value}{rounded}, at most autoscaling.min_replicas {a.min_replicas}")
    return [
        ("database.connections_per_pod", env.pool_capacity,
         f"database.pool_size {env.pool_size} + database.max_overflow {env.pool_overflow}"),
        ("database.usable_connections", db.usable_connections,
         f"database.max_connections {db.max_connections} x (100 - database.reserved_connections_percent "
         f"{db.reserved_connections_percent})%, rounded down"),
        ("rollout.surge_pods", env.surge_pods, surge_formula),
        ("database.peak_connections", env.peak_connections,
         f"(autoscaling.max_replicas {a.max_replicas} + rollout.surge_pods {env.surge_pods}) x "
         f"database.connections_per_pod {env.pool_capacity}"),
        ("disruption_budget.evictions_allowed_at_min_replicas", pdb_disruptions_allowed(env), evictions),
        ("rate_limit.nginx_rate", _nginx_rate(env),
         f"rate_limit.requests {spec.rate_limit.requests} per rate_limit.window_seconds {spec.rate_limit.window_seconds}, "
         "as whole requests per second or per minute"),
        ("load_balancing.affinity_mode", spec.load_balancing.affinity_mode,
         f"session_affinity.enabled {format_value(spec.load_balancing.session_affinity.enabled)} on nginx "
         f"{spec.load_balancing.nginx_version}: hash before 1.29.6, sticky from it"),
    ]


def _nginx_rate(env: Environment) -> str:
    try:
        return env.spec.rate_limit.nginx_rate
    except ValueError:  # pragma: no cover - the model rejects such rates
        return "not representable"


def pdb_disruptions_allowed(env: Environment) -> int:
    """Pods the PDB lets a drain evict when the HPA runs at min_replicas (Kubernetes rounds percentages up, both fields)."""
    from .models.types import percent_value

    replicas = env.spec.autoscaling.min_replicas
    budget = env.spec.disruption_budget
    if budget.min_available is not None:
        return max(0, replicas - percent_value(budget.min_available, replicas, round_up=True))
    assert budget.max_unavailable is not None
    return min(replicas, percent_value(budget.max_unavailable, replicas, round_up=True))


def effective_settings(env: Environment) -> list[Setting]:
    settings = []
    for path, value, info in _leaves(env.spec, (), None):
        if path == ("extends",):
            continue  # consumed by the loader; the header names the partials
        dotted = ".".join(str(p) for p in path)
        duration = _is_duration(info) or path[-1] in ("fail_timeout",)
        location = origin_of(env, path)
        if value is None and location.file is None:
            derivation = _unset_derivation(env, path)
            if derivation is not None:
                shown, formula = derivation
                settings.append(Setting(dotted, format_value(shown), "derived", f"derived: {formula}"))
                continue
        kind, source = describe(env, location)
        settings.append(Setting(dotted, format_value(value, duration), kind, source,
                                location if location.file is not None else None))
    for dotted, value, formula in _derived(env):
        settings.append(Setting(dotted, format_value(value), "derived", f"derived: {formula}"))
    return settings


def explain(env: Environment, field: str | None = None) -> list[Setting]:
    """The effective settings, or those at or below `field` (`database`, `database.pool_size`)."""
    settings = effective_settings(env)
    if not field:
        return settings
    field = field.strip(".")
    chosen = [s for s in settings if s.path == field or s.path.startswith(field + ".")]
    if not chosen:
        names = {s.path for s in settings} | {s.path.split(".")[0] for s in settings}
        raise InputError.single(f"no setting {field!r} in environment {env.name!r}{did_you_mean(field, sorted(names))}")
    return chosen
