"""The tool's own options: command line > INFRAGEN_* variables > [tool.infragen] in pyproject.toml > defaults.

pydantic-settings reads the two sources. Importing it costs about as much as loading and rendering the
shipped environments, so it is imported only when there is something for it to read: an INFRAGEN_*
variable, or a [tool.infragen] table in ./pyproject.toml. Without either, the defaults need no framework.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
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


def _has_sources() -> bool:
    ours = {ENV_PREFIX + name.upper() for name in ToolSettings.model_fields}  # not e.g. INFRAGEN_REQUIRE_TOOLS
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
    from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, PyprojectTomlConfigSettingsSource, SettingsConfigDict

    class Sources(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, pyproject_toml_table_header=("tool", "infragen"),
                                          extra="forbid", case_sensitive=False)

        @classmethod
        def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                       env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                       file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, PyprojectTomlConfigSettingsSource(settings_cls))

    fields: dict[str, Any] = {name: (info.annotation, info.default) for name, info in ToolSettings.model_fields.items()}
    return create_model("ToolSettingsSources", __base__=Sources, **fields)


def load_settings(**overrides: Any) -> ToolSettings:
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        if _has_sources():
            settings = ToolSettings.model_validate(_sourced_settings()(**given).model_dump())
        else:
            settings = ToolSettings.model_validate(given)
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
