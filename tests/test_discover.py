"""infragen.discover on its own: which files of a directory are environments, how a requested name is checked,
and how a path is shown in messages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import chdir

from infragen.discover import MAX_FILE_BYTES, Discovery, did_you_mean, read_settings_bytes
from infragen.errors import InputError
from infragen.fsutil import display_path


def directory(tmp_path: Path, *names: str) -> Path:
    envs = tmp_path / "environments"
    envs.mkdir()
    for name in names:
        (envs / name).write_text("tier: production\n")
    return envs


def messages(error: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [p.format() for p in error.value.problems]


def test_environments_are_the_yaml_files_not_partials_hidden_files_or_others(tmp_path: Path) -> None:
    envs = directory(tmp_path, "staging.yaml", "production.yaml", "_base.yaml", ".hidden.yaml", "notes.txt",
                     "production.yaml~", "a1.yaml")
    (envs / "sub.yaml").mkdir()  # a directory is listed like a file: the loader then says it is one
    assert Discovery(envs).names() == ["a1", "production", "staging", "sub"]  # sorted: never the listing order


def test_a_yml_file_is_refused_with_its_new_name_not_skipped(tmp_path: Path) -> None:
    envs = directory(tmp_path, "production.yaml", "staging.yml")
    with pytest.raises(InputError) as info:
        Discovery(envs).names()
    assert messages(info) == [f"{display_path(envs / 'staging.yml')}: settings files end in .yaml: rename it to "
                              "staging.yaml"]


@pytest.mark.parametrize(("name", "words"), [
    ("Production.yaml", "an environment's file name must be a DNS label"),
    ("prod_eu.yaml", "an environment's file name must be a DNS label"),
    ("-x.yaml", "an environment's file name must be a DNS label"),
    ("_Base.yaml", "a partial's name must be _ followed by a DNS label"),
])
def test_file_names_that_cannot_become_kubernetes_names_are_refused(tmp_path: Path, name: str, words: str) -> None:
    envs = directory(tmp_path, name)
    with pytest.raises(InputError) as info:
        Discovery(envs).names()
    [message] = messages(info)
    assert f"{name}: {words}" in message


def test_a_missing_directory_says_how_to_point_at_one(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        Discovery(tmp_path / "nowhere").names()
    [message] = messages(info)
    assert "environments directory not found" in message and "--environments" in message


def test_select_keeps_known_names_once_in_order_and_everything_when_none_is_named(tmp_path: Path) -> None:
    found = Discovery(directory(tmp_path, "staging.yaml", "production.yaml", "development.yaml"))
    assert found.select(None) == found.select([]) == ["development", "production", "staging"]
    assert found.select(["staging", "development", "staging"]) == ["development", "staging"]


@pytest.mark.parametrize(("requested", "words"), [
    ("prod", "unknown environment 'prod'; did you mean 'production'?"),  # an abbreviation
    ("prodution", "unknown environment 'prodution'; did you mean 'production'?"),  # a typo
    ("qa", "unknown environment 'qa' (known: production, staging)"),
    ("_base", "'_base' is a partial, not an environment"),
    ("../production", "is not an environment name"),  # never a path: a name cannot leave the directory
    ("/etc/passwd", "is not an environment name"),
    (".", "is not an environment name"),
])
def test_a_name_that_is_not_an_environment_is_refused_with_the_likely_one(tmp_path: Path, requested: str,
                                                                           words: str) -> None:
    found = Discovery(directory(tmp_path, "production.yaml", "staging.yaml", "_base.yaml"))
    with pytest.raises(InputError) as info:
        found.select(["production", requested])
    assert messages(info) == [words] if words.startswith("unknown") else words in messages(info)[0]


def test_every_bad_name_is_reported_at_once(tmp_path: Path) -> None:
    found = Discovery(directory(tmp_path, "production.yaml"))
    with pytest.raises(InputError) as info:
        found.select(["qa", "_base", "x/y"])
    assert len(info.value.problems) == 3


def test_did_you_mean_only_suggests_a_close_or_prefixed_name() -> None:
    assert did_you_mean("stagin", ["staging", "production"]) == "; did you mean 'staging'?"
    assert did_you_mean("zz", ["staging", "production"]) == ""
    assert did_you_mean("pr", ["production"]) == ""  # two letters are not an abbreviation of anything


def test_paths_are_shown_relative_below_the_working_directory_and_absolute_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "project" / "environments").mkdir(parents=True)
    with chdir(tmp_path / "project"):
        assert display_path(Path("environments/production.yaml")) == "environments/production.yaml"
        assert display_path(tmp_path / "project" / "environments" / "x.yaml") == "environments/x.yaml"
        assert display_path(tmp_path / "other.yaml") == str(tmp_path / "other.yaml")  # never ../../


def test_settings_bytes_are_read_up_to_one_byte_over_the_limit_and_never_block(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES * 2))
    assert len(read_settings_bytes(big)) == MAX_FILE_BYTES + 1  # enough to say "over the limit", no more
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(OSError):  # a FIFO with no writer would block a plain open() forever
        read_settings_bytes(fifo)
