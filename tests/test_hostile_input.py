"""Hostile and broken input (issue 5): every case in hostile_cases.CASES ends in the promised exit code with
one line per problem (file:line:column where there is a file), never a traceback, and leaves output/ as it
was. docs/bad-input.md is generated from these runs; regenerate it with INFRAGEN_UPDATE_DOCS=1.
"""

from __future__ import annotations

import html
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import MINIMAL, REPO, chdir
from hostile_cases import CASES, LAUGHS, Case

from infragen.cli import cli

DOC = REPO / "docs" / "bad-input.md"
SUMMARY = re.compile(r"^infragen: (\d+) problems?(; nothing was written)?$")  # said by the commands that write
LOCATED = re.compile(r"^(environments|output)/[^:]+:\d+(:\d+)?: ")
FILE_ONLY = re.compile(r"^(environments|output)(/[^:]*)?: ")
NEEDS_LINE = {"YAML", "YAML 1.1", "Injection", "Edge limits", "SLO"}
NO_LINE = {"directory", "fifo"}  # about the file itself, not a place in it

_results: dict[str, tuple[int, str, str]] = {}


def tree(root: Path) -> dict[str, object]:
    """Everything below root without following links: file bytes, link targets, directories."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path))
            elif path.is_file():
                out[rel] = path.read_bytes()
            else:
                out[rel] = "dir" if path.is_dir() else "special"
    return out


def run_case(case: Case, root: Path) -> tuple[int, str, str]:
    """Good build first, then the bad input; returns (exit code, stdout, stderr) and checks output/ kept."""
    (root / "environments").mkdir(parents=True)
    (root / "environments/production.yaml").write_text(MINIMAL, encoding="utf-8")
    runner = CliRunner()
    with chdir(root):
        assert runner.invoke(cli, ["build"]).exit_code == 0
        for rel, content in case.files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        if case.setup:
            case.setup(root)
        before = tree(root)
        started = time.monotonic()
        result = runner.invoke(cli, list(case.args))
        elapsed = time.monotonic() - started
        after = tree(root)
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{case.id}: traceback\n{result.output}")
    assert elapsed < 5, f"{case.id} took {elapsed:.1f}s"
    if result.exit_code != 0:
        assert after == before, f"{case.id}: a failed run changed files"
    return result.exit_code, result.stdout, result.stderr


def result_of(case: Case, tmp: Path) -> tuple[int, str, str]:
    if case.id not in _results:
        _results[case.id] = run_case(case, tmp / case.id)
    return _results[case.id]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    code, out, err = result_of(case, tmp_path)
    assert code == case.exit, f"exit {code}\n{out}{err}"
    assert case.expect in out + err, out + err
    assert "Traceback" not in out + err
    if code == 2:
        lines = err.rstrip("\n").split("\n")
        summary = SUMMARY.match(lines[-1])
        assert summary, lines[-1]
        assert bool(summary.group(2)) == (case.args[0] in ("build", "new")), lines[-1]
        problems = lines[:-1]
        assert len(problems) == int(summary.group(1)) >= 1, err  # one line per problem
        for line in problems:
            if case.group in NEEDS_LINE and case.id not in NO_LINE:
                assert LOCATED.match(line), f"no file:line in {line!r}"
            elif case.args == ("build",):
                assert LOCATED.match(line) or FILE_ONLY.match(line), f"no file in {line!r}"


@pytest.mark.slow  # a child interpreter
def test_billion_laughs_is_fast_with_bounded_memory(tmp_path: Path) -> None:
    """In a subprocess limited to 300 MB of address space and 10 s: the 387M-value document fails cleanly."""
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments/production.yaml").write_bytes(LAUGHS)
    limit = 300 * 1024 * 1024

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "infragen", "validate"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=10, preexec_fn=cap, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert time.monotonic() - started < 10
    assert proc.returncode == 2, proc.stderr
    assert "expands to more than 20000 values" in proc.stderr


@pytest.mark.slow  # a child interpreter per depth
def test_deep_nesting_does_not_crash_the_interpreter(tmp_path: Path) -> None:
    """PyYAML's C composer segfaults (-11) on deep flow nesting; in a subprocess we see a clean exit 2."""
    (tmp_path / "environments").mkdir()
    (tmp_path / "environments/production.yaml").write_bytes(b"a: " + b"{a: " * 50000 + b"}" * 50000)
    proc = subprocess.run([sys.executable, "-m", "infragen", "validate"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-500:])
    assert "nesting deeper than 32 levels" in proc.stderr


def test_accepted_values_mean_what_was_written(project: Path, write_env) -> None:
    """`for: 5m` and `for: "5m"` are the same five minutes; "1.30" is nginx 1.30 (sticky cookie), not 1.3."""
    runner = CliRunner()
    write_env("production", MINIMAL + "alerts: {error_rate: {for: 5m}, latency_p95: {for: \"5m\"}}\n")
    assert runner.invoke(cli, ["build"]).exit_code == 0
    rules = (project / "output/production/prometheus/alerts.yaml").read_text()
    assert rules.count("for: 5m") >= 3  # error_rate, latency_p95 and the default slow_queries
    write_env("production", MINIMAL.replace("load_balancing:\n", 'load_balancing:\n  nginx_version: "1.30"\n'))
    assert runner.invoke(cli, ["build"]).exit_code == 0
    assert "sticky cookie route" in (project / "output/production/nginx/upstream.conf").read_text()


# --- the document -------------------------------------------------------------------------------------

def _cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "&#124;").replace("\n", "<br>")


def render_doc(tmp: Path) -> str:
    lines = [
        "# Bad input and what infragen says",
        "",
        "Every row is a case in `tests/hostile_cases.py`; the right-hand column is the program's actual output,",
        "copied by `tests/test_hostile_input.py` (which fails when this file is out of date; regenerate with",
        "`INFRAGEN_UPDATE_DOCS=1 python -m pytest tests/test_hostile_input.py`). Each case starts from a good build",
        "of a minimal production environment; a run that fails leaves `output/` exactly as it was.",
        "Exit codes: 0 ok, 2 invalid input.",
        "",
        "Beyond this table: every string setting gets some 30 hostile payloads (`tests/test_injection.py`), and",
        "hypothesis mutates valid files at random (`tests/test_properties.py`). Accepted values are checked by",
        "parsing the artifacts back and by the real consumers (nginx -t, promtool, amtool, kubernetes-validate).",
        "`tests/test_output_safety.py` SIGKILLs builds mid-write (each file stays old or new), runs builds",
        "concurrently and under a held lock; `tests/test_determinism.py` checks byte-identical output across hash",
        "seeds, locales (C, POSIX, C.UTF-8, tr_TR.UTF-8), time zones, listing order and Python 3.10-3.13.",
        "`build` loads and checks every environment, and every file in its way, before its first write, then renders",
        "and writes one environment at a time in each process (docs/benchmarks.md); `tests/test_scale.py` checks that",
        "a failure in the last environment of a parallel build writes nothing, and that an environment edited between",
        "the two rounds is not written.",
    ]
    group = None
    for case in CASES:
        if case.group != group:
            group = case.group
            lines += ["", f"## {group}", "", "| Input | Command | Exit | What the user sees |", "|---|---|---|---|"]
        code, out, err = result_of(case, tmp)
        shown = err.rstrip("\n") if code else (err + out).rstrip("\n")
        if code == 0 and case.args == ("build",):
            shown = out.rstrip("\n").split("\n")[-1]
        lines.append(f"| {case.shown.replace('|', '&#124;')} | `infragen {' '.join(case.args)}` | {code} | "
                     f"<code>{_cell(shown)}</code> |")
    return "\n".join(lines) + "\n"


def test_doc_matches_actual_output(tmp_path: Path) -> None:
    text = render_doc(tmp_path)
    if os.environ.get("INFRAGEN_UPDATE_DOCS") == "1":
        DOC.parent.mkdir(exist_ok=True)
        DOC.write_text(text, encoding="utf-8")
    assert DOC.exists() and DOC.read_text(encoding="utf-8") == text, (
        "docs/bad-input.md is out of date: INFRAGEN_UPDATE_DOCS=1 python -m pytest tests/test_hostile_input.py")
