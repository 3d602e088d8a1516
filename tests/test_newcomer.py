"""What a new user meets first: running infragen from anywhere in the project, the help, and the messages of
the first mistakes (a required key missing under a partial, a read-only command that fails)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import REPO, chdir, files_under

from infragen.cli import EXIT_CODES, cli

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_infragen_finds_the_project_root_upward_and_says_which(shipped_project: Path, runner) -> None:
    deep = shipped_project / "environments" / "notes" / "old"
    deep.mkdir(parents=True)
    with chdir(deep):
        result = runner.invoke(cli, ["check"])
    assert result.exit_code == 0, result.output
    assert f"infragen: project root {shipped_project}" in result.stderr
    assert f"up to date: {len(files_under(shipped_project / 'output'))} files in {shipped_project / 'output'}" in result.output
    with chdir(shipped_project):  # at the root itself: nothing to say
        assert "project root" not in runner.invoke(cli, ["check"]).stderr


def test_from_a_subdirectory_build_writes_below_the_root_and_new_adds_there(shipped_project: Path, runner) -> None:
    sub = shipped_project / "docs"
    sub.mkdir()
    with chdir(sub):
        created = runner.invoke(cli, ["new", "qa", "--tier", "development", "--server", "10.0.0.1:8080", "--extends", "_base"])
        assert created.exit_code == 0, created.output
        built = runner.invoke(cli, ["build", "qa"])
    assert built.exit_code == 0, built.output
    assert (shipped_project / "environments" / "qa.yaml").is_file()
    assert (shipped_project / "output" / "qa" / "app.env").is_file()
    assert not (sub / "environments").exists() and not (sub / "output").exists()


def test_a_pyproject_table_marks_the_root_and_its_paths_are_relative_to_it(tmp_path: Path, runner, monkeypatch,
                                                                           shipped_project: Path) -> None:
    root = tmp_path / "repo"
    (root / "deploy").mkdir(parents=True)
    (shipped_project / "environments").rename(root / "deploy" / "environments")  # the name headers carry
    (shipped_project / "output").rename(root / "deploy" / "out")
    (root / "pyproject.toml").write_text('[tool.infragen]\nenvironments = "deploy/environments"\noutput = "deploy/out"\n')
    (root / "src" / "app").mkdir(parents=True)
    with chdir(root / "src" / "app"):
        result = runner.invoke(cli, ["check"])
        assert result.exit_code == 0, result.output
        assert f"infragen: project root {root}" in result.stderr
        # a path given on the command line (or in INFRAGEN_*) is relative to where it was typed
        monkeypatch.setenv("INFRAGEN_OUTPUT", "../../deploy/out")
        assert runner.invoke(cli, ["check"]).exit_code == 0


def test_an_unrelated_broken_pyproject_above_the_project_is_not_read(tmp_path: Path, runner, shipped_project: Path) -> None:
    outer = tmp_path / "home"
    (outer / "work").mkdir(parents=True)
    (outer / "pyproject.toml").write_text("[tool.infragen\n")  # not TOML: would stop every run if it were read
    (shipped_project / "environments").rename(outer / "work" / "environments")
    (shipped_project / "output").rename(outer / "work" / "output")
    (outer / "work" / "src").mkdir()
    with chdir(outer / "work" / "src"):
        result = runner.invoke(cli, ["check"])
    assert result.exit_code == 0, result.output
    assert f"project root {outer / 'work'}" in result.stderr


def test_outside_any_project_the_error_names_the_directory_and_the_fix(tmp_path: Path, runner, monkeypatch) -> None:
    monkeypatch.delenv("INFRAGEN_ENVIRONMENTS", raising=False)
    with chdir(tmp_path):
        result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 2
    assert "environments directory not found" in result.stderr and "--environments" in result.stderr


def test_a_required_key_missing_under_a_partial_is_reported_in_the_environment_file(shipped_project: Path,
                                                                                    runner) -> None:
    production = shipped_project / "environments" / "production.yaml"
    text = production.read_text()
    servers = re.search(r"^load_balancing:\n(  .*\n)+", text, flags=re.M)
    assert servers is not None
    production.write_text(text.replace(servers[0], ""))
    result = runner.invoke(cli, ["validate", "production"])
    assert result.exit_code == 2
    [line, summary] = result.stderr.splitlines()
    base_line = (shipped_project / "environments" / "_base.yaml").read_text().splitlines().index("load_balancing:") + 1
    assert line == ("environments/production.yaml:2:10: load_balancing.servers: required: load_balancing comes from "
                    f"environments/_base.yaml:{base_line}:1, which this file extends, and it does not set servers: set "
                    "load_balancing.servers in this file")  # at `extends: _base`, naming production's own file
    assert summary == "infragen: 1 problem"  # validate writes nothing, so it does not say so
    production.write_text(text.replace(servers[0], "load_balancing:\n  keepalive: 16\n"))
    line = runner.invoke(cli, ["validate", "production"]).stderr.splitlines()[0]
    assert re.fullmatch(r"environments/production\.yaml:\d+:1: load_balancing\.servers: required", line), line


@pytest.mark.parametrize(("command", "says"), [
    (["build"], True), (["check"], False), (["diff"], False), (["validate"], False), (["explain", "production"], False),
    (["list"], False),
])
def test_only_commands_that_write_say_nothing_was_written(shipped_project: Path, runner, command, says) -> None:
    (shipped_project / "environments" / "production.yaml").write_text("tier: production\n")
    result = runner.invoke(cli, command)
    assert result.exit_code == 2, result.output
    assert ("nothing was written" in result.stderr) is says, result.stderr


def test_the_help_lists_every_commands_exit_codes_as_the_readme_does(runner) -> None:
    assert set(EXIT_CODES) == set(cli.commands)
    help_text = runner.invoke(cli, ["--help"]).output
    readme_codes = {}
    for row in re.findall(r"^\| `infragen (\w+)[^|]*\|.*\| ([^|]*) \|$", README, flags=re.M):
        readme_codes[row[0]] = row[1]
    for name, codes in EXIT_CODES.items():
        assert re.search(rf"^ +{name} +{re.escape(codes)}$", help_text, flags=re.M), (name, help_text)
        numbers = sorted(set(re.findall(r"\b[0-2]\b", codes)))
        assert sorted(set(re.findall(r"\b[0-2]\b", readme_codes[name]))) == numbers, (name, readme_codes[name])


@pytest.mark.parametrize("command", ["build", "check", "diff", "validate", "review", "list", "verify", "explain", "new"])
def test_environments_option_help_names_its_variable(runner, command) -> None:
    help_text = " ".join(runner.invoke(cli, [command, "--help"]).output.split())
    assert "$INFRAGEN_ENVIRONMENTS" in help_text


def test_the_explain_canary_split_cannot_be_read_as_a_fraction(shipped_project: Path, runner) -> None:
    output = runner.invoke(cli, ["explain", "staging", "rollout.canary"]).output
    steps = re.findall(r"^rollout\.canary\.step_\d+\s+(.*?)\s+derived:", output, flags=re.M)
    assert steps and all(re.fullmatch(r"\d+%: \d+ canary \+ \d+ stable \(\d+%\) at \d+ replicas, "
                                      r"\d+ canary \+ \d+ stable \(\d+%\) at \d+", s) for s in steps), steps
    assert not any("/" in s for s in steps)
