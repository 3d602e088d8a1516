"""Behaviour that speed work must not change: parallel output is serial output, `build` with nothing to
do rewrites nothing, `check` writes nothing, commands import only what they need. No timings here:
speed is measured by benchmarks/run.py."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import MINIMAL, REPO, artifact_paths

from infragen import pipeline, policy
from infragen.cli import cli
from infragen.errors import InputError
from infragen.load import Loader
from infragen.render import render_all

_spec = importlib.util.spec_from_file_location("bench_fleet", REPO / "benchmarks" / "fleet.py")
fleet = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fleet)

needs_fork = pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin", reason="workers need fork()")


@pytest.fixture
def fleet_project(project: Path) -> list[str]:
    """60 varied environments (tiers, partials, receivers, affinity on/off) in the project."""
    return fleet.write_fleet(project, 60)


def tree_state(root: Path) -> dict[str, tuple]:
    """Every file and directory below root, with what a write would change (mtime, inode, size, bytes)."""
    state = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        state[path.relative_to(root).as_posix()] = (st.st_mtime_ns, st.st_ino, st.st_size, st.st_mode, content)
    return state


# --- parallel = serial --------------------------------------------------------------------------------

def processed(env_dir: Path, **options) -> tuple[list[str], dict[str, str], list]:
    """pipeline.process with its per-environment files merged into one {path: text}."""
    names, per_env, findings = pipeline.process(env_dir, None, **options)
    return names, {path: text for files in per_env for path, text in files.items()}, findings


@pytest.mark.slow  # forked workers
@needs_fork
def test_parallel_render_is_byte_identical_to_serial(fleet_project, project) -> None:
    env_dir = project / "environments"
    serial_names, serial, serial_findings = processed(env_dir, workers=1)
    parallel_names, parallel, parallel_findings = processed(env_dir, workers=3, parallel_min=2)
    assert parallel_names == serial_names == sorted(fleet_project)
    assert list(parallel.items()) == list(serial.items())  # same files, same bytes, same order
    assert parallel_findings == serial_findings
    environments = Loader(env_dir).load_many()
    assert serial == render_all(environments)
    assert serial_findings == policy.check(environments)
    assert list(serial) == artifact_paths(env_dir)


@pytest.mark.slow  # forked workers
@needs_fork
def test_parallel_policy_findings_match_serial(fleet_project, project) -> None:
    env_dir = project / "environments"
    edited = [fleet_project[i] for i in (5, 20, 40, 55)]
    for name in edited:  # one server only: a policy warning, in each worker's chunk
        path = env_dir / f"{name}.yaml"
        text = path.read_text()
        start = text.index("  servers:\n") + len("  servers:\n")
        lines = text[start:].splitlines(keepends=True)
        rest = [line for line in lines if not line.startswith("    - ")]
        path.write_text(text[:start] + lines[0] + "".join(rest))
    _, _, serial = pipeline.process(env_dir, None, workers=1)
    _, _, parallel = pipeline.process(env_dir, None, workers=2, parallel_min=2)
    assert parallel == serial
    flagged = {f.location.file for f in serial}
    assert any(edited[0] in f or edited[1] in f for f in flagged) and any(edited[2] in f or edited[3] in f for f in flagged)


@needs_fork
def test_parallel_reports_the_same_problems_in_the_same_order(fleet_project, project) -> None:
    env_dir = project / "environments"
    for name in (fleet_project[3], fleet_project[40], fleet_project[59]):  # in different workers' chunks
        path = env_dir / f"{name}.yaml"
        path.write_text(path.read_text().replace("tier: ", "tier: prod-", 1))
    with pytest.raises(InputError) as serial:
        pipeline.process(env_dir, None, workers=1)
    with pytest.raises(InputError) as parallel:
        pipeline.process(env_dir, None, workers=2, parallel_min=2)
    assert parallel.value.problems == serial.value.problems
    assert len(serial.value.problems) == 3


@pytest.mark.slow  # forked workers
@needs_fork
def test_a_failed_worker_is_redone_in_the_parent(fleet_project, project, monkeypatch) -> None:
    env_dir = project / "environments"
    expected = pipeline.process(env_dir, None, workers=1)
    parent = os.getpid()
    real = pipeline.Job._run

    def crash_in_child(*args):
        if os.getpid() != parent:
            raise MemoryError("simulated")
        return real(*args)

    monkeypatch.setattr(pipeline.Job, "_run", crash_in_child)
    assert pipeline.process(env_dir, None, workers=2, parallel_min=2) == expected


@pytest.mark.slow  # forked workers
@needs_fork
def test_plans_made_per_environment_in_workers_merge_into_the_whole_directory_plan(fleet_project, project, runner) -> None:
    from infragen.plan import make_plan, merge_plans

    assert runner.invoke(cli, ["build"]).exit_code == 0
    out = project / "output"
    first, middle, last = fleet_project[0], fleet_project[30], fleet_project[-1]
    (out / first / "app.env").unlink()  # missing
    stale = out / middle / "kubernetes" / "hpa.yaml"
    stale.write_text(stale.read_text().replace("minReplicas", "minReplicas: 99\n  x"))  # stale
    (out / last / "NOTES.md").write_text("hand-written\n")  # unowned, inside an environment's directory
    (out / "README.md").write_text("hand-written\n")  # unowned, at the top
    gone = out / "env-that-was-removed"
    gone.mkdir()
    (gone / "app.env").write_bytes((out / middle / "app.env").read_bytes())  # orphaned
    names, files, _ = processed(project / "environments", workers=1)
    whole = make_plan(dict(files), out, None)

    def per_env(name: str, files: dict[str, str]):
        return make_plan(files, out, [name], defer_conflicts=True)

    _, plans, _ = pipeline.process(project / "environments", None, workers=2, parallel_min=2, each=per_env)
    plans.append(make_plan({}, out, None, exclude=frozenset(names), defer_conflicts=True))
    merged = merge_plans(out, plans)
    assert merged == whole
    assert [(c.kind, c.path) for c in merged.changes] == [
        ("create", f"{first}/app.env"), ("update", f"{middle}/kubernetes/hpa.yaml"), ("delete", "env-that-was-removed/app.env")]
    assert merged.unowned == ["README.md", f"{last}/NOTES.md"]


@pytest.mark.parametrize("count,share", [(2, 1.0), (2, 0.9), (3, 0.9), (2, 0.1), (8, 1.0)])
@pytest.mark.parametrize("size", [2, 3, 64, 1000])
def test_chunks_cover_every_name_once_in_order(size, count, share) -> None:
    names = [f"env-{i:04d}" for i in range(size)]
    chunks = pipeline.chunks_of(names, min(count, size), share)
    assert [n for chunk in chunks for n in chunk] == names
    assert pipeline.Job(Path("does-not-matter")).run([]) == ([], [], [], {})  # no work, not "all"


@needs_fork
def test_a_failure_in_the_parent_leaves_no_worker_behind(fleet_project, project) -> None:
    parent = os.getpid()

    def boom(name: str, files: dict[str, str]) -> None:
        if os.getpid() == parent:
            raise RuntimeError("simulated")

    with pytest.raises(RuntimeError):
        pipeline.process(project / "environments", None, workers=3, parallel_min=2, each=boom)
    with pytest.raises(ChildProcessError):  # every worker was stopped and reaped
        os.waitpid(-1, os.WNOHANG)


def test_named_environments_render_the_same_through_the_cli_as_alone(fleet_project, project, runner) -> None:
    assert runner.invoke(cli, ["build"]).exit_code == 0
    one = fleet_project[7]
    result = runner.invoke(cli, ["check", one])
    assert result.exit_code == 0 and f"up to date: {len(artifact_paths(project / 'environments', one))} files" in result.stdout


# --- build with nothing changed, check never writes ---------------------------------------------------

@pytest.mark.slow  # a fleet built twice
def test_a_round_leaves_no_cycle_behind_for_the_next_one(fleet_project, project) -> None:
    """A worker runs round after round in one process: the cycles a round leaves (an environment's objects hold
    a few) are freed when the round ends, not kept with the old objects, where the collector rarely looks (a
    worker grew from 76 to 128 MiB between N=1000 and N=3000 when they were)."""
    import gc
    import weakref

    class Node:
        pass

    job = pipeline.Job(project / "environments", pipeline.keep_files, None, None)
    names = sorted(fleet_project)[:4]
    gc.collect()
    with pipeline._no_cycle_collection():
        job._run(names)  # a round's real work: load, render and check
        cycle = Node()
        cycle.self = cycle  # type: ignore[attr-defined]
        alive = weakref.ref(cycle)
        del cycle
    assert alive() is None
    assert gc.get_freeze_count() == 0  # the old objects are back in the collector's sight


def test_build_with_nothing_changed_rewrites_no_file(fleet_project, project, runner) -> None:
    assert runner.invoke(cli, ["build"]).exit_code == 0
    before = tree_state(project / "output")
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 0, result.output
    assert f"0 changed, {len(artifact_paths(project / 'environments'))} unchanged" in result.stdout
    assert tree_state(project / "output") == before  # same mtimes and inodes: nothing replaced


@pytest.mark.slow  # a fleet built twice
def test_build_after_one_change_rewrites_only_that_environment(fleet_project, project, runner) -> None:
    assert runner.invoke(cli, ["build"]).exit_code == 0
    before = tree_state(project / "output")
    changed = fleet_project[11]
    path = project / "environments" / f"{changed}.yaml"
    path.write_text(path.read_text().replace("  namespace: ", "  namespace: moved-", 1))
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 0, result.output
    after = tree_state(project / "output")
    differing = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert differing and all(k.startswith(f"{changed}/") for k in differing)


@pytest.mark.slow  # a fleet built per case
@pytest.mark.parametrize("situation", ["up to date", "stale", "missing output", "orphaned file", "invalid input"])
def test_check_and_diff_never_write(fleet_project, project, runner, situation) -> None:
    assert runner.invoke(cli, ["build"]).exit_code == 0
    expected_exit = 1
    if situation == "up to date":
        expected_exit = 0
    elif situation == "stale":
        path = project / "environments" / f"{fleet_project[0]}.yaml"
        path.write_text(path.read_text().replace("tier: ", "# edited\ntier: ", 1).replace("namespace: ", "namespace: x", 1))
    elif situation == "missing output":
        (project / "output" / fleet_project[1] / "app.env").unlink()
    elif situation == "orphaned file":
        (project / "environments" / f"{fleet_project[2]}.yaml").unlink()
    else:
        (project / "environments" / f"{fleet_project[3]}.yaml").write_text("tier: nonsense\n")
        expected_exit = 2
    before = tree_state(project)
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == expected_exit, result.output
    assert tree_state(project) == before
    runner.invoke(cli, ["diff"])
    runner.invoke(cli, ["validate"])
    assert tree_state(project) == before


# --- build: every environment passes before the first write, then each is written where it was rendered --

@needs_fork
@pytest.mark.parametrize("failure", ["invalid input", "hand-written file in the way"])
def test_a_failure_in_the_last_environment_stops_the_build_before_any_write(fleet_project, project, runner, monkeypatch,
                                                                            failure) -> None:
    """Workers write their own environments' files in the second round; a failure found in the first round, in the
    last environment of the last worker's piece, still leaves everything as it was."""
    from infragen import workers

    monkeypatch.setattr(pipeline, "PARALLEL_MIN", 8)
    monkeypatch.setattr(workers, "default_workers", lambda: 3)
    last = fleet_project[-1]
    if failure == "invalid input":
        (project / "environments" / f"{last}.yaml").write_text("tier: nonsense\n")
    else:
        (project / "output" / last).mkdir()
        (project / "output" / last / "app.env").write_text("MINE=1\n")
    before = tree_state(project)
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2, result.output
    assert result.stderr.endswith("nothing was written\n")
    assert tree_state(project) == before


def test_an_environment_changed_between_the_two_rounds_is_not_written(project, write_env, runner, monkeypatch) -> None:
    """Round 2 loads each environment again: if its files changed since round 1 validated them, it stops there."""
    import infragen.plan as plan

    path = write_env("production", MINIMAL)
    real_lock = plan.output_lock

    def lock_after_an_edit(output_dir):
        path.write_text(MINIMAL.replace("fraud-prod", "fraud-moved"))
        return real_lock(output_dir)

    monkeypatch.setattr(plan, "output_lock", lock_after_an_edit)
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("environments/production.yaml: changed during the build")
    assert "the build stopped part-way" in result.stderr
    assert not any((project / "output").iterdir())


def test_build_with_nothing_to_write_creates_no_output_directory(project, runner) -> None:
    (project / "output").rmdir()
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 0, result.output
    assert not (project / "output").exists()


def test_check_without_an_output_directory_creates_none(project, write_env, runner) -> None:
    write_env("production", MINIMAL)
    (project / "output").rmdir()
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 1
    assert not (project / "output").exists()


# --- lean start-up ------------------------------------------------------------------------------------

def _modules_after(command: list[str], cwd: Path) -> set[str]:
    code = ("import sys, runpy\n"
            f"sys.argv = ['infragen'] + {command!r}\n"
            "try:\n    runpy.run_module('infragen', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "sys.stderr.write('MODULES ' + ' '.join(sorted(sys.modules)) + '\\n')\n")
    # No INFRAGEN_* settings from the caller's shell: with one, pydantic-settings is rightly imported.
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("INFRAGEN_")}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    line = [text for text in result.stderr.splitlines() if text.startswith("MODULES ")][-1]
    return set(line.split()[1:])


@pytest.mark.parametrize("command", [["schema"], ["list"], ["explain", "production"], ["--help"]])
def test_commands_that_render_nothing_do_not_import_jinja(shipped_project, command) -> None:
    modules = _modules_after(command, shipped_project)
    assert "jinja2" not in modules
    assert "pydantic_settings" not in modules


def test_check_imports_the_settings_framework_only_when_there_are_settings(shipped_project, monkeypatch) -> None:
    for key in [k for k in os.environ if k.upper().startswith("INFRAGEN_")]:
        monkeypatch.delenv(key)
    modules = _modules_after(["check"], shipped_project)
    assert "jinja2" in modules  # sanity: the probe sees imports
    assert "pydantic_settings" not in modules and "multiprocessing" not in modules
    (shipped_project / "pyproject.toml").write_text('[project]\nname = "x"\n')  # no [tool.infragen]
    assert "pydantic_settings" not in _modules_after(["check"], shipped_project)
    (shipped_project / "pyproject.toml").write_text('[tool.infragen]\noutput = "output"\n')
    assert "pydantic_settings" in _modules_after(["check"], shipped_project)


def test_check_and_build_run_no_tool_and_search_no_plugin(shipped_project, monkeypatch) -> None:
    """What only verify, a misspelt name or pydantic's plugin search would import stays out of a cold check or
    build (the plugin search is disabled, so its import of importlib.metadata is skipped)."""
    for key in [k for k in os.environ if k.upper().startswith("INFRAGEN_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("PYDANTIC_DISABLE_PLUGINS", raising=False)
    for command in (["check", "--no-cache"], ["build", "--no-cache"]):
        modules = _modules_after(command, shipped_project)
        assert "pydantic.main" in modules  # sanity: the environments were validated
        assert not {"importlib.metadata", "subprocess", "difflib", "socket"} & modules, command


def test_the_plugin_search_still_runs_when_a_user_enables_plugins(shipped_project, monkeypatch) -> None:
    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "some-plugin")  # only one disabled: the others are searched
    assert "importlib.metadata" in _modules_after(["check", "--no-cache"], shipped_project)


# --- compiled-template cache --------------------------------------------------------------------------

@pytest.fixture
def fresh_templates(monkeypatch, tmp_path):
    from infragen import render

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    render.jinja_env.cache_clear()
    render.template.cache_clear()
    yield tmp_path / "cache" / "infragen" / "templates"
    render.jinja_env.cache_clear()
    render.template.cache_clear()


def _render_shipped() -> dict[str, str]:
    from conftest import SHIPPED_ENVIRONMENTS

    return render_all(Loader(SHIPPED_ENVIRONMENTS).load_many())


def test_template_cache_is_written_reused_and_survives_damage(fresh_templates, monkeypatch) -> None:
    from infragen import render

    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    first = _render_shipped()
    entries = sorted(fresh_templates.glob("*.jinja"))
    render.compile_all()  # templates of artifacts the shipped environments do not have, too
    entries = sorted(fresh_templates.glob("*.jinja"))
    # every artifact's template and the macros they import
    assert len(entries) == len(list((REPO / "infragen" / "templates").rglob("*.j2")))
    for entry in entries:
        entry.write_bytes(b"not a jinja bytecode file")
    render.jinja_env.cache_clear()
    render.template.cache_clear()
    assert _render_shipped() == first


def test_template_cache_is_not_written_when_python_writes_no_bytecode(fresh_templates, monkeypatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _render_shipped()
    assert not fresh_templates.exists()


# --- tool settings (pydantic-settings) ----------------------------------------------------------------

def test_settings_precedence_and_types(project, monkeypatch) -> None:
    from infragen.config import load_settings

    (project / "pyproject.toml").write_text('[tool.infragen]\noutput = "gen"\nstrict = true\n')
    settings = load_settings()
    assert settings.output == Path("gen") and settings.strict is True and settings.environments == Path("environments")
    monkeypatch.setenv("infragen_output", "from-env")  # variable names are case-insensitive
    monkeypatch.setenv("INFRAGEN_STRICT", "false")
    monkeypatch.setenv("INFRAGEN_UNRELATED", "ignored")
    settings = load_settings()
    assert settings.output == Path("from-env") and settings.strict is False
    assert load_settings(output=Path("flag")).output == Path("flag")


@pytest.mark.parametrize("text", ['[tool.infragen\n', '[tool]\ninfragen = 3\n', '[tool.infragen]\nstrict = "maybe"\n'])
def test_bad_settings_are_reported_not_raised(project, write_env, runner, text) -> None:
    write_env("production", MINIMAL)
    (project / "pyproject.toml").write_text(text)
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output and "pyproject.toml" in result.stderr


# --- the policy's fast read of rendered files ----------------------------------------------------------

