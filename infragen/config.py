"""The tool's own options: command line > INFRAGEN_* variables > [tool.infragen] in pyproject.toml > defaults.

pydantic-settings reads the two sources. Importing it costs about as much as loading and rendering the
shipped environments, so it is imported only when there is something for it to read: an INFRAGEN_*
variable, or a [tool.infragen] table in ./pyproject.toml. Without either, the defaults need no framework.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, get_type_hints

from .errors import InputError, Location, Problem

ENV_PREFIX = "INFRAGEN_"
PYPROJECT = "pyproject.toml"  # in the working directory, like every other default path


@dataclass(frozen=True)
class ToolSettings:
    """The options. A dataclass, not a pydantic model: command-line values arrive typed by click, and a run
    that finds every environment in the result cache never needs pydantic at all. Values from INFRAGEN_*
    and [tool.infragen] are validated by the pydantic-settings class made from these fields."""

    environments: Path = Path("environments")
    output: Path = Path("output")
    strict: bool = False  # warnings fail like errors
    cache: bool = True  # reuse results of earlier runs for unchanged environments (infragen.cache)


FIELDS = tuple(f.name for f in fields(ToolSettings))


def _has_sources() -> bool:
    ours = {ENV_PREFIX + name.upper() for name in FIELDS}  # not e.g. INFRAGEN_REQUIRE_TOOLS
    if any(key.upper() in ours for key in os.environ):
        return True
    if not os.path.isfile(PYPROJECT):
        return False
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(PYPROJECT, "rb") as fh:
        tool = tomllib.load(fh).get("tool", {})
    return isinstance(tool, dict) and "infragen" in tool


@lru_cache(maxsize=1)
def _sourced_settings() -> type:
    """ToolSettings as a pydantic-settings class reading INFRAGEN_* and [tool.infragen]."""
    from pydantic import create_model
    from pydantic_settings import (
        BaseSettings,
        PydanticBaseSettingsSource,
        PyprojectTomlConfigSettingsSource,
        SettingsConfigDict,
    )

    class Sources(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, pyproject_toml_table_header=("tool", "infragen"),
                                          extra="forbid", case_sensitive=False)

        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                       file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, PyprojectTomlConfigSettingsSource(settings_cls))

    hints = get_type_hints(ToolSettings)
    defaults = ToolSettings()
    spec: dict[str, Any] = {name: (hints[name], getattr(defaults, name)) for name in FIELDS}
    return create_model("ToolSettingsSources", __base__=Sources, **spec)


def load_settings(**overrides: Any) -> ToolSettings:
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown tool settings: {', '.join(unknown)}")
    try:
        if _has_sources():
            given = _sourced_settings()(**given).model_dump()
        settings = ToolSettings(**{k: Path(v) if k in ("environments", "output") else bool(v) for k, v in given.items()})
    except InputError:
        raise
    except Exception as exc:
        from pydantic import ValidationError  # only the pydantic-settings path can raise it

        if not isinstance(exc, ValidationError):  # malformed or unreadable pyproject.toml
            raise InputError.single(f"cannot read settings: {exc}", Location("pyproject.toml")) from None
        problems = [Problem(Location("pyproject.toml [tool.infragen] / INFRAGEN_*"), ".".join(str(p) for p in e["loc"]),
                            e["msg"]) for e in exc.errors(include_url=False)]
        raise InputError(problems) from None
    # Everything generated below the output directory that a build no longer produces is deleted: an output
    # directory holding the environments (`--output .`) would put a whole repository in that scope.
    out, envs = settings.output.resolve(), settings.environments.resolve()
    if out == envs or out in envs.parents:
        raise InputError.single(f"output directory {str(settings.output)!r} contains the environments directory "
                                f"{str(settings.environments)!r}; set --output (or INFRAGEN_OUTPUT, [tool.infragen] output) "
                                "to a directory of its own, such as output/")
    return settings
