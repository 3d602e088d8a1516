"""The tool's own options: command line > INFRAGEN_* variables > [tool.infragen] in pyproject.toml > defaults.

pydantic-settings reads the two sources. Importing it costs about as much as loading and rendering the
shipped environments, so it is imported only when there is something for it to read: an INFRAGEN_*
variable, or a [tool.infragen] table in ./pyproject.toml. Without either, the defaults need no framework.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, get_type_hints

from .errors import InputError, Location, Problem

ENV_PREFIX = "INFRAGEN_"
PYPROJECT = "pyproject.toml"  # in the project root, like every other default path


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
PATHS = ("environments", "output")


def _has_table(pyproject: Path, malformed: bool = True) -> bool:
    """Whether the file exists and has a [tool.infragen] table; for a file that cannot be read, `malformed` (the
    error then comes from pydantic-settings)."""
    if not pyproject.is_file():
        return False
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        with open(pyproject, "rb") as fh:
            tool = tomllib.load(fh).get("tool", {})
    except (OSError, ValueError):
        return malformed
    return isinstance(tool, dict) and "infragen" in tool


def find_root(start: Path | None = None) -> Path:
    """The project root, found as git finds its work tree: the working directory (or start) or the nearest
    directory above it that holds an `environments/` directory or a pyproject.toml with [tool.infragen]; the
    working directory itself when none does (its missing environments/ is then the error). Default paths and
    pyproject.toml are read from the root, so every command works from any subdirectory of the project."""
    here = Path.cwd() if start is None else start
    for directory in (here, *here.parents):
        # a broken pyproject.toml is reported where infragen runs, never one of an unrelated project above
        if (directory / "environments").is_dir() or _has_table(directory / PYPROJECT, malformed=directory == here):
            return directory
    return here


def _env_vars(*names: str) -> set[str]:
    """Which of these settings an INFRAGEN_* variable sets."""
    given = {key.upper() for key in os.environ}
    return {name for name in names if ENV_PREFIX + name.upper() in given}


@lru_cache(maxsize=4)
def _sourced_settings(pyproject: Path) -> type:
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
            return (init_settings, env_settings, PyprojectTomlConfigSettingsSource(settings_cls, pyproject))

    hints = get_type_hints(ToolSettings)
    defaults = ToolSettings()
    spec: dict[str, Any] = {name: (hints[name], getattr(defaults, name)) for name in FIELDS}
    return create_model("ToolSettingsSources", __base__=Sources, **spec)


def load_settings(root: Path | None = None, **overrides: Any) -> ToolSettings:
    """The settings for a run in root (default: find_root()). Paths given as options or INFRAGEN_* variables
    are relative to the working directory, as typed; defaults and [tool.infragen] values to the root."""
    given = {k: v for k, v in overrides.items() if v is not None}
    unknown = sorted(set(given) - set(FIELDS))
    if unknown:
        raise TypeError(f"unknown tool settings: {', '.join(unknown)}")
    root = find_root() if root is None else root
    pyproject = root / PYPROJECT
    explicit = set(given) | _env_vars(*PATHS)  # as typed: relative to the working directory
    try:
        if _env_vars(*FIELDS) or _has_table(pyproject):
            given = _sourced_settings(pyproject)(**given).model_dump()
        typed: dict[str, Any] = {k: Path(v) if k in PATHS else bool(v) for k, v in given.items()}
        settings = ToolSettings(**typed)
        rooted: dict[str, Any] = {k: _under(root, getattr(settings, k)) for k in PATHS if k not in explicit}
        settings = replace(settings, **rooted)
    except InputError:
        raise
    except Exception as exc:
        from pydantic import ValidationError  # only the pydantic-settings path can raise it

        if not isinstance(exc, ValidationError):  # malformed or unreadable pyproject.toml
            from .fsutil import display_path

            raise InputError.single(f"cannot read settings: {exc}", Location(display_path(pyproject))) from None
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


def _under(root: Path, path: Path) -> Path:
    """path as seen from the working directory, for a path relative to root: unchanged when root is the working
    directory, so messages keep showing `environments/...`."""
    if path.is_absolute() or root == Path.cwd():
        return path
    return root / path
