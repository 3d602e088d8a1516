"""Output is byte-identical whatever the hash seed, locale, time zone, directory listing order and Python
version (issue 5). Each run builds the shipped environments and is compared with the committed output/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, SHIPPED_ENVIRONMENTS, SHIPPED_OUTPUT
from conftest import files_under as tree

from infragen.cli import cli

PYENV = Path(os.environ.get("PYENV_ROOT", "/root/.pyenv")) / "versions"
DEPS = "import click, jinja2, pydantic, pydantic_settings, yaml, jsonschema"


def _locales() -> set[str]:
    try:
        out = subprocess.run(["locale", "-a"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return set()
    return {line.strip().lower().replace("utf-8", "utf8") for line in out.splitlines()}


def build_in_subprocess(root: Path, python: str = sys.executable, **env: str) -> dict[str, bytes]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("LC_", "LANG", "PYTHONHASHSEED", "TZ"))}
    proc = subprocess.run([python, "-m", "infragen", "build"], cwd=root, capture_output=True, text=True, timeout=120,
                          env={**base, "PYTHONPATH": str(REPO), **env})
    assert proc.returncode == 0, proc.stderr
    return tree(root / "output")


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    import shutil

    shutil.copytree(SHIPPED_ENVIRONMENTS, tmp_path / "environments")
    return tmp_path


EXPECTED = tree(SHIPPED_OUTPUT)

TR = "tr_TR.UTF-8"
CONDITIONS = [
    pytest.param({"PYTHONHASHSEED": "0", "LANG": "C", "LC_ALL": "C", "TZ": "UTC"}, id="seed0-C-UTC"),
    pytest.param({"PYTHONHASHSEED": "1", "LANG": TR, "LC_ALL": TR, "TZ": "Asia/Kathmandu"}, id="seed1-tr_TR-Kathmandu",
                 marks=pytest.mark.skipif("tr_tr.utf8" not in _locales(),
                                          reason="tr_TR.UTF-8 not generated (localedef -i tr_TR -f UTF-8 tr_TR.UTF-8)")),
    pytest.param({"PYTHONHASHSEED": "random", "LANG": "C.UTF-8", "TZ": "America/St_Johns"}, id="random-seed-CUTF8-StJohns"),
    pytest.param({"PYTHONHASHSEED": "4294967295", "LC_ALL": "POSIX", "TZ": "Pacific/Chatham"}, id="maxseed-POSIX-Chatham"),
]


@pytest.mark.slow  # a real build per condition
@pytest.mark.parametrize("env", CONDITIONS)
def test_same_bytes_under_seed_locale_and_time_zone(shipped_copy: Path, env: dict[str, str]) -> None:
    assert build_in_subprocess(shipped_copy, **env) == EXPECTED


def test_tr_locale_is_really_active_in_the_subprocess(shipped_copy: Path) -> None:
    """Guard for the test above: the generated tr_TR locale really loads (else that run proves nothing new)."""
    if "tr_tr.utf8" not in _locales():
        pytest.skip("tr_TR.UTF-8 not generated")
    code = "import locale; locale.setlocale(locale.LC_ALL, ''); print(locale.getlocale()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "LC_ALL": TR})
    assert out.stdout.strip() == "tr_TR"


class _Reversed:
    """os.scandir stand-in listing entries in reverse order (a file system with another listing order)."""

    def __init__(self, it):
        self._entries = iter(sorted(it, key=lambda e: e.name, reverse=True))
        it.close()

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._entries)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def close(self):
        pass


@pytest.mark.parametrize("order", ["reversed", "sorted"])
def test_same_bytes_whatever_the_directory_listing_order(shipped_copy: Path, monkeypatch, order: str) -> None:
    real_listdir, real_scandir = os.listdir, os.scandir
    key = (lambda names: sorted(names, reverse=True)) if order == "reversed" else sorted
    monkeypatch.setattr(os, "listdir", lambda path=".": key(real_listdir(path)))
    if order == "reversed":
        monkeypatch.setattr(os, "scandir", lambda path=".": _Reversed(real_scandir(path)))
    monkeypatch.chdir(shipped_copy)
    result = CliRunner().invoke(cli, ["build"])
    assert result.exit_code == 0, result.output
    monkeypatch.undo()
    assert tree(shipped_copy / "output") == EXPECTED
    # The report lists files in the same order too.
    assert result.stdout.splitlines() == sorted(result.stdout.splitlines()[:-1]) + [result.stdout.splitlines()[-1]]


def _pythons() -> list:
    params = []
    for version in ("3.10", "3.11", "3.12", "3.13"):
        candidates = sorted(PYENV.glob(f"{version}.*/bin/python")) if PYENV.is_dir() else []
        params.append(pytest.param(str(candidates[-1]) if candidates else None, id=f"python{version}"))
    return params


@pytest.mark.slow  # a real build per Python
@pytest.mark.parametrize("python", _pythons())
def test_same_bytes_on_every_python_version(shipped_copy: Path, python: str | None) -> None:
    if python is None:
        pytest.skip("not installed under pyenv")
    if subprocess.run([python, "-c", DEPS], capture_output=True).returncode != 0:
        pytest.skip(f"{python} lacks the dependencies (pip install click jinja2 pydantic pydantic-settings pyyaml jsonschema)")
    assert build_in_subprocess(shipped_copy, python=python) == EXPECTED
