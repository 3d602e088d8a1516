"""infragen.github: workflow-command escaping, annotation lines, log groups and the step summary file."""

from __future__ import annotations

from pathlib import Path

import pytest

from infragen import github
from infragen.github import (
    SUMMARY_LIMIT,
    annotation,
    append_step_summary,
    endgroup,
    escape_data,
    escape_property,
    group,
    in_github_actions,
)

# --- escaping ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("raw", "escaped"), [
    ("100%", "100%25"),
    ("a\rb", "a%0Db"),
    ("a\nb", "a%0Ab"),
    ("a\r\nb", "a%0D%0Ab"),
    ("%0A", "%250A"),  # an escape already in the text stays literal: % is escaped first
    ("plain text", "plain text"),
    ("", ""),
])
def test_escape_data(raw: str, escaped: str) -> None:
    assert escape_data(raw) == escaped


@pytest.mark.parametrize(("raw", "escaped"), [
    ("100%", "100%25"),
    ("a\rb", "a%0Db"),
    ("a\nb", "a%0Ab"),
    ("a:b", "a%3Ab"),
    ("a,b", "a%2Cb"),
    ("%3A", "%253A"),
    ("C:\\x,y\n", "C%3A\\x%2Cy%0A"),
])
def test_escape_property(raw: str, escaped: str) -> None:
    assert escape_property(raw) == escaped


@pytest.mark.parametrize("char", [":", ","])
def test_message_keeps_what_a_property_escapes(char: str) -> None:
    assert escape_data(f"a{char}b") == f"a{char}b"
    assert escape_property(f"a{char}b") != f"a{char}b"


def test_escaping_accepts_numbers() -> None:
    assert escape_data(12) == "12"
    assert escape_property(3.5) == "3.5"
    assert escape_data(None) == ""


# --- annotations ------------------------------------------------------------------------------------

def test_annotation_all_properties_in_order() -> None:
    line = annotation("error", "max_connections too low", file="environments/production.yaml", line=14,
                      col=3, end_line=15, end_column=9, title="infragen: policy")
    assert line == ("::error file=environments/production.yaml,line=14,col=3,endLine=15,endColumn=9,"
                    "title=infragen%3A policy::max_connections too low")


def test_annotation_without_properties() -> None:
    assert annotation("warning", "stale") == "::warning::stale"
    assert annotation("notice", "") == "::notice::"


def test_annotation_omits_none_properties() -> None:
    assert annotation("error", "m", file="a.yaml", col=2) == "::error file=a.yaml,col=2::m"
    assert annotation("error", "m", line=1, title="t") == "::error line=1,title=t::m"
    assert annotation("notice", "m", end_column=4) == "::notice endColumn=4::m"


def test_annotation_keeps_zero() -> None:
    assert annotation("error", "m", line=0) == "::error line=0::m"


def test_annotation_escapes_properties_and_message_differently() -> None:
    out = annotation("warning", "a: b, c\n::error::injected", file="dir,x/a:b.yaml", title="50%\r\n")
    assert out == ("::warning file=dir%2Cx/a%3Ab.yaml,title=50%25%0D%0A::"
                   "a: b, c%0A::error::injected")
    assert "\n" not in out and "\r" not in out  # one line: nothing after it can start a command


def test_annotation_rejects_unknown_level() -> None:
    with pytest.raises(ValueError, match="error, warning, notice"):
        annotation("debug", "m")  # type: ignore[arg-type]


# --- groups and detection ---------------------------------------------------------------------------

def test_group_lines() -> None:
    assert group("production") == "::group::production"
    assert group("a\nb: 100%") == "::group::a%0Ab: 100%25"
    assert endgroup() == "::endgroup::"


@pytest.mark.parametrize(("environ", "expected"), [
    ({"GITHUB_ACTIONS": "true"}, True),
    ({"GITHUB_ACTIONS": "false"}, False),
    ({"GITHUB_ACTIONS": "True"}, False),
    ({"GITHUB_ACTIONS": ""}, False),
    ({}, False),
])
def test_in_github_actions(environ: dict, expected: bool) -> None:
    assert in_github_actions(environ) is expected


def test_in_github_actions_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    assert in_github_actions() is True
    monkeypatch.delenv("GITHUB_ACTIONS")
    assert in_github_actions() is False


# --- step summary -----------------------------------------------------------------------------------

def test_summary_without_variable_writes_nothing(tmp_path: Path) -> None:
    assert append_step_summary("# hi", {}) is False
    assert append_step_summary("# hi", {"GITHUB_STEP_SUMMARY": ""}) is False
    assert list(tmp_path.iterdir()) == []


def test_summary_creates_file_with_trailing_newline(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    assert append_step_summary("# Review\n\nno changes", {"GITHUB_STEP_SUMMARY": str(summary)}) is True
    assert summary.read_bytes() == b"# Review\n\nno changes\n"


def test_summary_appends(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_bytes(b"earlier step\n")
    environ = {"GITHUB_STEP_SUMMARY": str(summary)}
    assert append_step_summary("one\n", environ) is True
    assert append_step_summary("two", environ) is True
    assert summary.read_bytes() == b"earlier step\none\ntwo\n"


def test_summary_closes_a_previous_unterminated_line(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_bytes(b"| a | b |")
    assert append_step_summary("next", {"GITHUB_STEP_SUMMARY": str(summary)}) is True
    assert summary.read_bytes() == b"| a | b |\nnext\n"


def test_summary_is_utf8(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    assert append_step_summary("replicas → 12 ✓", {"GITHUB_STEP_SUMMARY": str(summary)}) is True
    assert summary.read_bytes() == "replicas → 12 ✓\n".encode()


def test_summary_unwritable_returns_false(tmp_path: Path) -> None:
    directory = tmp_path / "a-directory"
    directory.mkdir()
    assert append_step_summary("x", {"GITHUB_STEP_SUMMARY": str(directory)}) is False
    missing_parent = tmp_path / "no" / "such" / "dir" / "summary.md"
    assert append_step_summary("x", {"GITHUB_STEP_SUMMARY": str(missing_parent)}) is False
    assert not missing_parent.parent.exists()
    assert append_step_summary("x", {"GITHUB_STEP_SUMMARY": "bad\0path"}) is False


def test_summary_open_refused_returns_false(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read-only file, as any user (root ignores permission bits, so open() is made to refuse)."""
    def refuse(*_args, **_kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("builtins.open", refuse)
    assert append_step_summary("x", {"GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md")}) is False


def test_summary_exactly_at_the_limit_is_not_cut(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_bytes(b"x" * (SUMMARY_LIMIT - 10) + b"\n")
    text = "y" * 8 + "\n"  # brings the file to exactly 1 MiB
    assert append_step_summary(text, {"GITHUB_STEP_SUMMARY": str(summary)}) is True
    data = summary.read_bytes()
    assert len(data) == SUMMARY_LIMIT
    assert data.endswith(b"yyyyyyyy\n")


def test_summary_over_the_limit_is_cut_with_a_notice(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    existing = b"# earlier step\n" * 1000
    summary.write_bytes(existing)
    rows = "".join(f"| row {i} | é |\n" for i in range(100_000))  # ~1.6 MB
    assert append_step_summary(rows, {"GITHUB_STEP_SUMMARY": str(summary)}) is True
    data = summary.read_bytes()
    assert len(data) <= SUMMARY_LIMIT
    assert data.startswith(existing)
    text = data.decode("utf-8")  # still valid UTF-8: nothing cut in the middle of a character
    assert text.endswith("\n")
    last_line = text.rstrip("\n").rsplit("\n", 1)[-1]
    assert "cut" in last_line and "1 MiB" in last_line
    kept = text[len(existing.decode()):].split("\n")
    body = [line for line in kept if line.startswith("| row")]
    assert body and all(line.endswith("| é |") for line in body)  # whole rows only
    assert len(data) > SUMMARY_LIMIT - 1000  # it used the room it had


def test_summary_single_huge_line_is_cut_too(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    assert append_step_summary("é" * SUMMARY_LIMIT, {"GITHUB_STEP_SUMMARY": str(summary)}) is True
    data = summary.read_bytes()
    assert len(data) <= SUMMARY_LIMIT
    text = data.decode("utf-8")
    assert text.startswith("éé") and text.endswith(github.TRUNCATED_NOTICE)


def test_summary_already_full_writes_nothing(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_bytes(b"x" * (SUMMARY_LIMIT - 5) + b"\n")
    assert append_step_summary("more than fits", {"GITHUB_STEP_SUMMARY": str(summary)}) is False
    assert len(summary.read_bytes()) == SUMMARY_LIMIT - 4


# --- the commands' --format github, GITHUB_ACTIONS and GITHUB_STEP_SUMMARY ---------------------------

from conftest import MINIMAL, artifact_paths  # noqa: E402

from infragen.cli import cli  # noqa: E402

WARNING_ENV = MINIMAL.replace('servers: ["10.0.0.1:8080", "10.0.0.2:8080"]', 'servers: ["10.0.0.1:8080"]')


@pytest.mark.parametrize("command", ["build", "check", "diff", "validate"])
def test_format_github_annotates_findings(project, write_env, runner, command: str) -> None:
    write_env("production", WARNING_ENV)  # one upstream server: the nginx-single-server warning
    if command == "check":
        runner.invoke(cli, ["build"])
    result = runner.invoke(cli, [command, "--format", "github"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("::") for line in lines), result.stdout  # the rest went to stderr
    assert lines[0].startswith("::warning file=environments/production.yaml,line=4,col=")
    assert ",title=nginx-single-server::load_balancing.servers.0: " in lines[0] and "; fix: " in lines[0]


def test_format_github_on_invalid_input_annotates_errors(project, write_env, runner) -> None:
    write_env("production", MINIMAL.replace("max_connections: 500", "max_connections: 0"))
    result = runner.invoke(cli, ["validate", "--format", "github"])
    assert result.exit_code == 2
    assert result.stdout.startswith("::error file=environments/production.yaml,line=5,col=")
    assert "title=infragen::database.max_connections: " in result.stdout


def test_check_annotates_stale_files_on_the_settings_file(shipped_project, runner) -> None:
    production = shipped_project / "environments" / "production.yaml"
    production.write_text(production.read_text().replace("max_replicas: 10", "max_replicas: 12"))
    result = runner.invoke(cli, ["check", "--format", "github"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "::error file=environments/production.yaml,line=1,title=stale-output::output/production/app.env is stale: "
        "it is not what this file builds; run: infragen build",
        "::error file=environments/production.yaml,line=1,title=stale-output::output/production/kubernetes/hpa.yaml "
        "is stale: it is not what this file builds; run: infragen build",
        # app.env's K8S_MAX_REPLICAS is also a literal of the Component's ConfigMap
        "::error file=environments/production.yaml,line=1,title=stale-output::output/production/kubernetes/"
        "kustomization.yaml is stale: it is not what this file builds; run: infragen build"]
    assert "+  maxReplicas: 12" in result.stderr  # the diff is still there, on stderr


def test_under_github_actions_annotations_come_after_the_normal_output(shipped_project, runner, monkeypatch,
                                                                      tmp_path) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    production = shipped_project / "environments" / "production.yaml"
    production.write_text(production.read_text().replace("max_replicas: 10", "max_replicas: 12"))
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 1
    diff, _, annotations = result.stdout.partition("::error ")
    assert diff.startswith("--- a/output/production/app.env")  # the diff, then the annotations: never instead
    assert "title=stale-output" in annotations
    text = summary.read_text()
    assert text.startswith("**infragen check**: output is out of date (3 stale, 0 missing, 0 orphaned); run `infragen build`.")
    assert "| `output/production/kubernetes/hpa.yaml` | stale |" in text

    result = runner.invoke(cli, ["check", "--format", "text"])  # an explicit format: no annotations
    assert "::error" not in result.stdout


def test_check_summary_when_up_to_date_and_when_invalid(shipped_project, runner, monkeypatch, tmp_path) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert runner.invoke(cli, ["check"]).exit_code == 0
    count = len(artifact_paths(shipped_project / "environments"))
    assert summary.read_text() == f"**infragen check**: output is up to date ({count} files).\n"
    production = shipped_project / "environments" / "production.yaml"
    production.write_text(production.read_text().replace("max_connections: 1200", "max_connections: 900"))
    assert runner.invoke(cli, ["check"]).exit_code == 2
    text = summary.read_text().split("\n", 1)[1]
    assert text.startswith("**infragen check**: 1 problem.\n")  # check never writes: nothing to reassure about
    assert "- **error** `fleet-exceeds-database` `environments/production.yaml:19:20`" in text
