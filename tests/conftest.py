"""Shared fixtures. Issue-specific helpers live in their own test modules."""

from __future__ import annotations

import contextlib
import os
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parent.parent
SHIPPED_ENVIRONMENTS = REPO / "environments"
SHIPPED_OUTPUT = REPO / "output"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

MINIMAL = """\
tier: production
service: {name: fraud-api, namespace: fraud-prod}
load_balancing:
  servers: ["10.0.0.1:8080", "10.0.0.2:8080"]
database: {max_connections: 500}
monitoring: {labels: {release: prometheus}}
rollout: {strategy: rolling}
"""


def files_under(root: Path) -> dict[str, bytes]:
    """Every regular file below root (relative '/' path -> bytes): compare before and after a command."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def artifact_paths(environments_dir: Path, *names: str) -> list[str]:
    """What a build writes for these environments (all when none is named), from the artifact registry:
    `<env>/<artifact path>`, in name and registry order."""
    from infragen.artifacts import for_environment
    from infragen.load import Loader

    return [f"{env.name}/{artifact.path}" for env in Loader(environments_dir).load_many(names or None)
            for artifact in for_environment(env)]


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    """contextlib.chdir, which Python 3.10 lacks."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@pytest.fixture(autouse=True)
def _hermetic_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's ~/.cache, and none uses the result cache unless it says so
    (tests/test_cache.py): a result cached by one command must not answer for a later one in the same test
    that monkeypatched the code (the cache keys on the code's files, not on what a test patched in)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("INFRAGEN_CACHE", "0")
    # Run under GitHub Actions, the CLI would add annotations and write the job summary: tests that want
    # that set these themselves.
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project directory (cwd) with environments/ and output/."""
    (tmp_path / "environments").mkdir()
    (tmp_path / "output").mkdir()
    monkeypatch.chdir(tmp_path)
    for var in ("INFRAGEN_ENVIRONMENTS", "INFRAGEN_OUTPUT", "INFRAGEN_STRICT"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.fixture
def write_env(project: Path):
    """write_env("production", "yaml text") -> path; dedents the text."""

    def write(name: str, text: str) -> Path:
        path = project / "environments" / f"{name}.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def shipped_project(project: Path) -> Path:
    """A copy of the repository's environments/ and output/ in a temporary project."""
    shutil.rmtree(project / "environments")
    shutil.rmtree(project / "output")
    shutil.copytree(SHIPPED_ENVIRONMENTS, project / "environments")
    shutil.copytree(SHIPPED_OUTPUT, project / "output")
    return project


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
