"""Finding the real validators for the tests, and building every test environment's artifacts.

A missing promtool / amtool / nginx skips its tests with the install command, except under
INFRAGEN_REQUIRE_TOOLS=1 (CI), where it fails them: CI must never pass by skipping.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest
from conftest import FIXTURES, REPO, SHIPPED_ENVIRONMENTS

from infragen.consumers import INSTALL_HINT, TOOL_PACKAGES, find_tool
from infragen.load import Loader
from infragen.models.environment import Environment
from infragen.render import render_environment

REQUIRE_TOOLS = os.environ.get("INFRAGEN_REQUIRE_TOOLS") == "1"
VERIFY_ENVIRONMENTS = FIXTURES / "verify-environments"  # this module's own edge cases
EDGE_ENVIRONMENTS = FIXTURES / "environments"  # the shared edge-case fixtures (when present)


def missing(message: str) -> NoReturn:
    """Skip the test saying what is missing and how to get it; under INFRAGEN_REQUIRE_TOOLS=1 (CI), fail it."""
    if REQUIRE_TOOLS:
        pytest.fail(f"{message} [INFRAGEN_REQUIRE_TOOLS=1: missing validators fail]", pytrace=False)
    pytest.skip(message)


def require(tool: str) -> str:
    """The tool's path; otherwise skip (fail under INFRAGEN_REQUIRE_TOOLS=1) saying how to install it."""
    path = find_tool(tool)
    if path:
        return path
    missing(f"{tool} not installed: run `{INSTALL_HINT}` (package {TOOL_PACKAGES[tool]}), "
            "or scripts/test.sh as root, which installs it")


@dataclass(frozen=True)
class Built:
    """One environment rendered by the current templates into a directory of its own."""
    env: Environment
    directory: Path  # output/<env>/ equivalent

    @property
    def name(self) -> str:
        return self.env.name

    def path(self, artifact: str) -> Path:
        return self.directory / artifact


def environment_sources() -> list[tuple[str, Path]]:
    """(label, environments directory) of every environment set the validator tests cover."""
    sources = [("shipped", SHIPPED_ENVIRONMENTS), ("verify", VERIFY_ENVIRONMENTS)]
    if EDGE_ENVIRONMENTS.is_dir():
        sources.append(("fixture", EDGE_ENVIRONMENTS))
    return sources


def environment_ids() -> list[str]:
    return [f"{label}:{name}" for label, directory in environment_sources() for name in Loader(directory).select(None)]


def build_all(root: Path) -> dict[str, Built]:
    """Render every test environment with the current code into root/<label>/<env>/."""
    built = {}
    for label, directory in environment_sources():
        for env in Loader(directory).load_many(None):
            out = root / label
            for rel, text in render_environment(env).items():
                target = out / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
            built[f"{label}:{env.name}"] = Built(env, out / env.name)
    return built


SCHEMAS = Path(os.environ.get("INFRAGEN_TEST_SCHEMAS") or REPO.parent / "shared" / "schemas")


def require_schemas() -> Path:
    """The third-party schemas (CRDs in {group}/{kind}_{version}.json, Grafana's dashboard and panel schemas) the
    tests validate against; they are not part of the project. Skip, or fail under INFRAGEN_REQUIRE_TOOLS=1."""
    if (SCHEMAS / "crds").is_dir() and (SCHEMAS / "grafana").is_dir():
        return SCHEMAS
    missing(f"no schemas at {SCHEMAS}: set INFRAGEN_TEST_SCHEMAS to a directory with crds/ "
            "({group}/{kind}_{version}.json) and grafana/dashboard.jsonschema.json, timeseries.jsonschema.json "
            "(README.md, Testing, says where to get them)")
