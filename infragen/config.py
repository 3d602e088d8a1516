"""The tool's own options: command line > INFRAGEN_* variables > [tool.infragen] in pyproject.toml > defaults.

The three sources are read here by hand into one plain pydantic model: pydantic-settings would do the
same, but importing it costs more than loading and rendering the shipped environments, and every command
(including a pre-commit `check`) pays it.
"""

from __future__ import annotations

import json
import os
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError, Location, Problem

ENV_PREFIX = "INFRAGEN_"
PYPROJECT = "pyproject.toml"  # in the working directory, like every other default path


class ToolSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a typo in [tool.infragen] is an error, not a silent default

    environments: Path = Path("environments")
    output: Path = Path("output")
    strict: bool = False  # warnings fail like errors


def _from_pyproject() -> dict[str, Any]:
    if not os.path.isfile(PYPROJECT):
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(PYPROJECT, "rb") as fh:
        table = tomllib.load(fh).get("tool", {}).get("infragen", {})
    if not isinstance(table, dict):
        raise InputError.single("[tool.infragen] must be a table of settings", Location(PYPROJECT))
    return table


def _from_environment() -> dict[str, Any]:
    """INFRAGEN_<FIELD> variables (any case); list and dict fields are written as JSON."""
    fields = {name.upper(): name for name in ToolSettings.model_fields}
    found: dict[str, Any] = {}
    for key, value in os.environ.items():
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper[len(ENV_PREFIX):] not in fields:
            continue
        name = fields[upper[len(ENV_PREFIX):]]
        annotation = ToolSettings.model_fields[name].annotation
        if typing.get_origin(annotation) in (list, dict, set, tuple):
            try:
                value = json.loads(value)
            except ValueError:
                raise InputError.single(f"{key}: expected JSON, got {value!r}", Location("environment")) from None
        found[name] = value
    return found


def load_settings(**overrides: Any) -> ToolSettings:
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        data = {**_from_pyproject(), **_from_environment(), **given}
        settings = ToolSettings.model_validate(data)
    except ValidationError as exc:
        problems = [Problem(Location("pyproject.toml [tool.infragen] / INFRAGEN_*"), ".".join(str(p) for p in e["loc"]),
                            e["msg"]) for e in exc.errors(include_url=False)]
        raise InputError(problems) from None
    except InputError:
        raise
    except Exception as exc:  # malformed or unreadable pyproject.toml
        raise InputError.single(f"cannot read settings: {exc}", Location("pyproject.toml")) from None
    # Everything generated below the output directory that a build no longer produces is deleted: an output
    # directory holding the environments (`--output .`) would put a whole repository in that scope.
    out, envs = settings.output.resolve(), settings.environments.resolve()
    if out == envs or out in envs.parents:
        raise InputError.single(f"output directory {str(settings.output)!r} contains the environments directory "
                                f"{str(settings.environments)!r}; set --output (or INFRAGEN_OUTPUT, [tool.infragen] output) "
                                "to a directory of its own, such as output/")
    return settings
