"""The tool's own options: command line > INFRAGEN_* variables > [tool.infragen] in pyproject.toml > defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, PyprojectTomlConfigSettingsSource, SettingsConfigDict

from .errors import InputError, Location, Problem


class ToolSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INFRAGEN_",
        pyproject_toml_table_header=("tool", "infragen"),
        extra="forbid",
    )

    environments: Path = Path("environments")
    output: Path = Path("output")
    strict: bool = False  # warnings fail like errors

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, PyprojectTomlConfigSettingsSource(settings_cls))


def load_settings(**overrides: Any) -> ToolSettings:
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = ToolSettings(**given)
    except ValidationError as exc:
        problems = [Problem(Location("pyproject.toml [tool.infragen] / INFRAGEN_*"), ".".join(str(p) for p in e["loc"]),
                            e["msg"]) for e in exc.errors(include_url=False)]
        raise InputError(problems) from None
    except Exception as exc:  # malformed pyproject.toml
        raise InputError.single(f"cannot read settings: {exc}", Location("pyproject.toml")) from None
    # Everything generated below the output directory that a build no longer produces is deleted: an output
    # directory holding the environments (`--output .`) would put a whole repository in that scope.
    out, envs = settings.output.resolve(), settings.environments.resolve()
    if out == envs or out in envs.parents:
        raise InputError.single(f"output directory {str(settings.output)!r} contains the environments directory "
                                f"{str(settings.environments)!r}; set --output (or INFRAGEN_OUTPUT, [tool.infragen] output) "
                                "to a directory of its own, such as output/")
    return settings
