"""`infragen verify`: run each built artifact of an environment through the real consumer its registry entry
names (infragen.artifacts, infragen.consumers). A consumer whose program is not installed is reported as
skipped with the package to install, never as a pass. Reads output/, writes only to temporary directories.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .artifacts import CUSTOM_RESOURCES, for_environment
from .consumers import OTHER_TOOLS, TOOL_PACKAGES, CheckInput, Schemas, Status, find_tool, install_hint

if TYPE_CHECKING:
    from .models.environment import Environment


NO_SCHEMAS = Schemas()  # none given: the consumers that need one skip, saying which flag gives it


@dataclass(frozen=True)
class Result:
    environment: str
    artifact: str  # path below output/<env>/
    status: Status
    summary: str  # one line: what passed, why it was skipped, or the tool's first complaint
    details: str = ""  # the tool's full message when it failed
    label: str = ""  # what was checked, when not an artifact's file (`verify --app`)


def available_tools() -> dict[str, str | None]:
    """Every program a consumer may need -> its path, or None when it is not installed."""
    return {name: find_tool(name) for name in (*TOOL_PACKAGES, *OTHER_TOOLS)}


def verify_environment(env: Environment, directory: Path, tools: Mapping[str, str | None],
                       schemas: Schemas = NO_SCHEMAS) -> list[Result]:
    """One result per artifact the environment has, in registry order."""
    results = []
    for artifact in for_environment(env):
        path = directory / artifact.path
        if not path.is_file():
            results.append(Result(env.name, artifact.path, "failed", f"missing; run: infragen build {env.name}"))
            continue
        consumer = artifact.consumer
        tool = tools.get(consumer.tool) if consumer.tool else None
        if consumer.tool and not tool:
            results.append(Result(env.name, artifact.path, "skipped", install_hint(consumer.tool)))
            continue
        status, summary, details = consumer.run(CheckInput(path, directory, env, tool, CUSTOM_RESOURCES, schemas))
        results.append(Result(env.name, artifact.path, status, summary, details))
    return results
