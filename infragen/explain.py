"""`infragen explain`: every effective setting of an environment and where it came from.

A value comes from the environment's own file, a partial it extends, its tier's defaults, the model's
default, or is derived from other values (then the formula is shown with the numbers put in, as the
environment gives it: the arithmetic lives there, once). The same `origin_of` tells `infragen.policy` where
to point.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .discover import did_you_mean
from .errors import InputError, Location, PathKey
from .models.environment import Environment
from .models.explained import derivations, unset_default
from .models.types import format_number, format_period, parse_duration

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

def is_duration(info: FieldInfo | None) -> bool:
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
        return format_period(value)  # 30d as written, not Prometheus' 4w2d
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


def effective_settings(env: Environment) -> list[Setting]:
    settings = []
    for path, value, info in _leaves(env.spec, (), None):
        if path == ("extends",):
            continue  # consumed by the loader; the header names the partials
        dotted = ".".join(str(p) for p in path)
        duration = is_duration(info) or path[-1] in ("fail_timeout",)
        location = origin_of(env, path)
        if value is None and location.file is None:
            derivation = unset_default(env, path)
            if derivation is not None:
                settings.append(Setting(dotted, format_value(derivation.value), "derived", f"derived: {derivation.formula}"))
                continue
        kind, source = describe(env, location)
        settings.append(Setting(dotted, format_value(value, duration), kind, source,
                                location if location.file is not None else None))
    for derivation in derivations(env):
        settings.append(Setting(derivation.setting, format_value(derivation.value), "derived",
                                f"derived: {derivation.formula}"))
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
