"""The CI integrations, run through the real tools: the pre-commit hooks (.pre-commit-hooks.yaml) with
`pre-commit try-repo`, and the composite GitHub Action (action.yml) and its sample workflow with
check-jsonschema's bundled schemas and actionlint. The action's shell steps also run here, under bash as
GitHub runs them, against a fake infragen and a real shallow git clone.

A missing tool skips its tests with the install command, except under INFRAGEN_REQUIRE_TOOLS=1 (CI),
where it fails them, as tests/tools.py does for promtool, amtool and nginx.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SHIPPED_ENVIRONMENTS, SHIPPED_OUTPUT, files_under

ACTION = REPO / "action.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"
SAMPLE_WORKFLOW = Path(__file__).resolve().parent / "fixtures" / "workflows" / "review.yml"
TEST_EXTRAS = "pip install -e '.[test]'"
GITHUB_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]  # how GitHub runs `shell: bash`
EDIT = ("max_replicas: 10", "max_replicas: 12")  # a real line of environments/production.yaml, and its edit


def require(command: str, install: str) -> str:
    """The command's path (this interpreter's bin directory first: .venv/bin need not be on PATH); otherwise
    skip saying how to install it, or fail under INFRAGEN_REQUIRE_TOOLS=1."""
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
    found = shutil.which(command, path=search)
    if found:
        return found
    from tools import missing  # imported only here: it loads the infragen pipeline, these tests do not

    missing(f"{command} not installed: run `{install}`, or scripts/test.sh")


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=timeout,
                          stdin=None if stdin is not None else subprocess.DEVNULL)


def shown(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def git_env() -> dict[str, str]:
    """git without the user's or the system's configuration (hooks, signing, templates)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


def git(repo: Path, *args: str) -> str:
    proc = run([require("git", "apt-get install git"), *args], cwd=repo, env=git_env())
    assert proc.returncode == 0, f"git {' '.join(args)}\n{shown(proc)}"
    return proc.stdout.strip()


def init_repo(repo: Path, message: str = "initial") -> str:
    """git init + commit everything in repo; returns the commit."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q")
    git(repo, "config", "user.name", "infragen tests")
    git(repo, "config", "user.email", "tests@infragen.invalid")
    git(repo, "config", "commit.gpgsign", "false")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD")


# --- pre-commit hooks ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PRE_COMMIT_HOME and the pip / virtualenv caches, shared by this session's pre-commit runs and
    kept out of the user's ~/.cache. (try-repo installs the hook environment afresh for every run in a
    store of its own; the shared pip cache is what makes the later installs quick.)"""
    return tmp_path_factory.mktemp("pre-commit-home")


def test_hooks_manifest_is_valid() -> None:
    pre_commit = require("pre-commit", TEST_EXTRAS)
    proc = run([pre_commit, "validate-manifest", str(HOOKS)], cwd=REPO)
    assert proc.returncode == 0, shown(proc)
    hooks = {hook["id"]: hook for hook in yaml.safe_load(HOOKS.read_text(encoding="utf-8"))}
    assert set(hooks) == {"infragen-check", "infragen-build"}
    for hook_id, hook in hooks.items():
        assert hook["entry"] == hook_id.replace("-", " ")
        assert hook["language"] == "python"
        assert hook["pass_filenames"] is False and hook["require_serial"] is True
        assert hook["files"] == "^(environments|output)/"


@pytest.mark.slow  # pre-commit installs infragen into an environment of its own
def test_pre_commit_hooks_with_try_repo(tmp_path: Path, pre_commit_home: Path) -> None:
    """`pre-commit try-repo` installs this repository (pip, from pyproject.toml) and runs its hooks on a
    project: check passes on the shipped project and fails once an environment changes; build then
    rewrites output/ and fails the way a fixing hook does, and passes when run again."""
    pre_commit = require("pre-commit", TEST_EXTRAS)
    require("git", "apt-get install git")
    project = tmp_path / "project"
    shutil.copytree(SHIPPED_ENVIRONMENTS, project / "environments")
    shutil.copytree(SHIPPED_OUTPUT, project / "output")
    init_repo(project)

    drop = {"INFRAGEN_ENVIRONMENTS", "INFRAGEN_OUTPUT", "INFRAGEN_STRICT"}  # the hooks use the project's layout
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(PRE_COMMIT_HOME=str(pre_commit_home / "home"), PIP_CACHE_DIR=str(pre_commit_home / "pip"),
               VIRTUALENV_OVERRIDE_APP_DATA=str(pre_commit_home / "virtualenv"), PIP_DISABLE_PIP_VERSION_CHECK="1")

    def try_repo(hook: str) -> subprocess.CompletedProcess[str]:
        return run([pre_commit, "try-repo", str(REPO), hook, "--all-files", "--color=never"],
                   cwd=project, env=env, timeout=600)

    proc = try_repo("infragen-check")
    assert proc.returncode == 0, shown(proc)
    assert "infragen check" in proc.stdout and "Passed" in proc.stdout, shown(proc)

    production = project / "environments" / "production.yaml"
    text = production.read_text(encoding="utf-8")
    assert EDIT[0] in text, f"environments/production.yaml no longer has {EDIT[0]!r}: pick another edit"
    production.write_text(text.replace(EDIT[0], EDIT[1], 1), encoding="utf-8")
    before = files_under(project / "output")

    proc = try_repo("infragen-check")
    assert proc.returncode != 0, shown(proc)
    assert "Failed" in proc.stdout, shown(proc)
    assert files_under(project / "output") == before  # check changes nothing

    proc = try_repo("infragen-build")
    assert proc.returncode != 0, shown(proc)
    assert "files were modified by this hook" in proc.stdout, shown(proc)
    after = files_under(project / "output")
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    assert changed, "infragen build changed nothing"
    assert all(name.startswith("production/") for name in changed), changed
    assert b"maxReplicas: 12" in after["production/kubernetes/hpa.yaml"]

    proc = try_repo("infragen-build")
    assert proc.returncode == 0, shown(proc)
    assert files_under(project / "output") == after


# --- the GitHub Action and the sample workflow ------------------------------------------------------

def action() -> dict:
    return yaml.safe_load(ACTION.read_text(encoding="utf-8"))


def step(name: str) -> dict:
    matches = [s for s in action()["runs"]["steps"] if s.get("name") == name]
    assert len(matches) == 1, f"action.yml has {len(matches)} steps named {name!r}"
    return matches[0]


@pytest.mark.slow  # check-jsonschema in a process of its own
def test_action_metadata_schema() -> None:
    check_jsonschema = require("check-jsonschema", TEST_EXTRAS)
    proc = run([check_jsonschema, "--builtin-schema", "vendor.github-actions", str(ACTION)], cwd=REPO)
    assert proc.returncode == 0, shown(proc)


@pytest.mark.slow  # check-jsonschema in a process of its own
def test_sample_workflow_schema() -> None:
    check_jsonschema = require("check-jsonschema", TEST_EXTRAS)
    proc = run([check_jsonschema, "--builtin-schema", "vendor.github-workflows", str(SAMPLE_WORKFLOW)], cwd=REPO)
    assert proc.returncode == 0, shown(proc)


@pytest.mark.slow  # actionlint in a process of its own
def test_sample_workflow_actionlint(tmp_path: Path) -> None:
    """actionlint checks the workflow and, through `uses: ./`, its inputs and outputs against action.yml."""
    actionlint = require("actionlint", TEST_EXTRAS)
    repo = tmp_path / "repo"
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ACTION, repo / "action.yml")
    shutil.copy(SAMPLE_WORKFLOW, repo / ".github" / "workflows" / "review.yml")
    init_repo(repo)
    proc = run([actionlint, "-no-color", ".github/workflows/review.yml"], cwd=repo)
    assert proc.returncode == 0, shown(proc)

    # It really reads action.yml: an input the action does not have is an error.
    workflow = repo / ".github" / "workflows" / "review.yml"
    workflow.write_text(workflow.read_text(encoding="utf-8").replace("python-version:", "python_version:"),
                        encoding="utf-8")
    proc = run([actionlint, "-no-color", ".github/workflows/review.yml"], cwd=repo)
    assert proc.returncode == 1 and "python_version" in proc.stdout, shown(proc)


def test_sample_workflow_uses_the_action_on_pull_requests() -> None:
    workflow = yaml.safe_load(SAMPLE_WORKFLOW.read_text(encoding="utf-8"))
    assert "pull_request" in workflow[True]  # PyYAML reads the key `on` as True
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    uses = [s.get("uses", "") for s in steps]
    checkout = next(i for i, u in enumerate(uses) if u.startswith("actions/checkout@"))
    assert "fetch-depth" in steps[checkout]["with"]
    assert uses.index("./") > checkout


def test_action_contract() -> None:
    meta = action()
    assert meta["runs"]["using"] == "composite"
    inputs = meta["inputs"]
    assert {name: inputs[name].get("default") for name in inputs} == {
        "base": "", "python-version": "3.11", "working-directory": ".", "environments": "", "output": ""}
    steps = meta["runs"]["steps"]
    assert steps[0]["uses"].startswith("actions/setup-python@")
    assert steps[0]["with"]["python-version"] == "${{ inputs.python-version }}"
    assert '"$GITHUB_ACTION_PATH"' in step("Install infragen")["run"]
    assert "check --format github" in step("infragen check")["run"]
    review = step("infragen review")
    assert review["env"]["PR_BASE_SHA"] == "${{ github.event.pull_request.base.sha }}"
    assert "git fetch --no-tags --depth=1 origin" in review["run"]
    assert '>> "$GITHUB_STEP_SUMMARY"' not in review["run"]  # review appends its summary itself
    assert "review --format markdown" in review["run"]  # the check step annotates; no second set
    for name in ("infragen check", "infragen review"):
        assert step(name)["working-directory"] == "${{ inputs.working-directory }}"


def test_action_run_steps_take_inputs_only_through_env() -> None:
    """Every run step is bash, and no ${{ }} expression is pasted into shell code: a value such as a
    branch name `$(curl evil)` must stay data."""
    runs = [s for s in action()["runs"]["steps"] if "run" in s]
    assert len(runs) == 3
    for s in runs:
        assert s.get("shell") == "bash", s
        assert "${{" not in s["run"], s["run"]
        bash = require("bash", "apt-get install bash")
        proc = run([bash, "-n"], cwd=REPO, stdin=s["run"])
        assert proc.returncode == 0, shown(proc)


# The action's shell steps, run as GitHub runs them: bash -eo pipefail, inputs in env, a fake infragen
# on PATH that records its arguments and exits with FAKE_EXIT.

FAKE_INFRAGEN = """\
#!/usr/bin/env bash
printf '%s\\n' "$@" > "$FAKE_ARGS"
printf '%s\\n' "$PWD" > "$FAKE_CWD"
echo "## infragen review (fake)"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then echo "## infragen review (fake)" >> "$GITHUB_STEP_SUMMARY"; fi
exit "${FAKE_EXIT:-0}"
"""


@pytest.fixture
def step_runner(tmp_path: Path):
    """run_step(step name, cwd, fake exit code, **env) -> (process, infragen's arguments or None, files)."""
    bash = require("bash", "apt-get install bash")
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "infragen").write_text(FAKE_INFRAGEN, encoding="utf-8")
    (fake_bin / "infragen").chmod(0o755)
    files = {name: tmp_path / name for name in ("args", "cwd", "summary.md", "github-output")}

    def run_step(name: str, cwd: Path, fake_exit: int = 0, **inputs: str):
        for path in files.values():
            path.unlink(missing_ok=True)
        files["summary.md"].write_text("earlier\n", encoding="utf-8")
        script = tmp_path / "step.sh"
        script.write_text(step(name)["run"], encoding="utf-8")
        env = {**git_env(), "PATH": f"{fake_bin}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
               "FAKE_ARGS": str(files["args"]), "FAKE_CWD": str(files["cwd"]), "FAKE_EXIT": str(fake_exit),
               "GITHUB_STEP_SUMMARY": str(files["summary.md"]), "GITHUB_OUTPUT": str(files["github-output"]),
               **{key: str(value) for key, value in inputs.items()}}
        proc = run([bash, *GITHUB_BASH[1:], str(script)], cwd=cwd, env=env)
        args = files["args"].read_text(encoding="utf-8").splitlines() if files["args"].exists() else None
        return proc, args, files

    return run_step


def test_check_step_passes_inputs_as_data(tmp_path: Path, step_runner) -> None:
    project = tmp_path / "project"
    project.mkdir()
    proc, args, _ = step_runner("infragen check", project)
    assert proc.returncode == 0 and args == ["check", "--format", "github"], shown(proc)

    hostile = "envs $(touch pwned) `touch pwned2`; touch pwned3"
    proc, args, _ = step_runner("infragen check", project, fake_exit=1, ENVIRONMENTS_DIR=hostile,
                                OUTPUT_DIR="out dir")
    assert proc.returncode == 1, shown(proc)  # stale output fails the step
    assert args == ["check", "--format", "github", "--environments", hostile, "--output", "out dir"]
    assert sorted(p.name for p in project.iterdir()) == []


@pytest.fixture
def shallow_pr(tmp_path: Path) -> tuple[Path, str]:
    """A shallow clone (as actions/checkout makes) of a repository whose base commit it lacks."""
    origin = tmp_path / "origin"
    (origin / "environments").mkdir(parents=True)
    (origin / "environments" / "a.yaml").write_text("tier: production\n", encoding="utf-8")
    base = init_repo(origin, "base")
    (origin / "environments" / "a.yaml").write_text("tier: staging\n", encoding="utf-8")
    git(origin, "commit", "-q", "--no-verify", "-am", "head")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth=1", origin.as_uri(), str(clone))
    proc = run(["git", "cat-file", "-e", f"{base}^{{commit}}"], cwd=clone, env=git_env())
    assert proc.returncode != 0, "the shallow clone already has the base commit"
    return clone, base


@pytest.mark.parametrize(("review_exit", "step_exit", "changes"), [(0, 0, "false"), (1, 0, "true"), (2, 2, None),
                                                                   (3, 3, None)])
def test_review_step_fetches_the_base_and_maps_exit_codes(shallow_pr, step_runner, review_exit: int,
                                                         step_exit: int, changes: str | None) -> None:
    clone, base = shallow_pr
    proc, args, files = step_runner("infragen review", clone, fake_exit=review_exit, PR_BASE_SHA=base)
    assert proc.returncode == step_exit, shown(proc)
    assert args == ["review", "--format", "markdown", "--base", base]
    assert git(clone, "cat-file", "-t", base) == "commit"  # fetched
    assert files["summary.md"].read_text(encoding="utf-8") == "earlier\n## infragen review (fake)\n"
    output = files["github-output"].read_text(encoding="utf-8") if files["github-output"].exists() else ""
    assert output == (f"changes={changes}\n" if changes else "")


def test_review_step_base_input_wins_and_accepts_a_branch(shallow_pr, step_runner, tmp_path: Path) -> None:
    clone, base = shallow_pr
    main = git(tmp_path / "origin", "rev-parse", "HEAD")
    branch = git(tmp_path / "origin", "rev-parse", "--abbrev-ref", "HEAD")
    proc, args, _ = step_runner("infragen review", clone, REVIEW_BASE=branch, PR_BASE_SHA=base,
                                ENVIRONMENTS_DIR="environments", OUTPUT_DIR="my output")
    assert proc.returncode == 0, shown(proc)
    assert args == ["review", "--format", "markdown", "--base", main, "--environments", "environments", "--output",
                    "my output"]


def test_review_step_in_a_subdirectory_uses_a_local_base(tmp_path: Path, step_runner) -> None:
    repo = tmp_path / "repo"
    (repo / "deploy").mkdir(parents=True)
    (repo / "deploy" / "x").write_text("x\n", encoding="utf-8")
    base = init_repo(repo)
    proc, args, files = step_runner("infragen review", repo / "deploy", PR_BASE_SHA=base)
    assert proc.returncode == 0, shown(proc)  # no origin: the base is already here, nothing is fetched
    assert args == ["review", "--format", "markdown", "--base", base]
    assert files["cwd"].read_text(encoding="utf-8").strip() == str(repo / "deploy")


@pytest.mark.parametrize(("env", "complaint"), [
    ({}, "no base to review against"),
    ({"PR_BASE_SHA": "--upload-pack=touch pwned"}, "not an option"),
])
def test_review_step_refuses_a_missing_or_option_like_base(tmp_path: Path, step_runner, env: dict,
                                                            complaint: str) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "x").write_text("x\n", encoding="utf-8")
    init_repo(repo)
    proc, args, _ = step_runner("infragen review", repo, **env)
    assert proc.returncode == 2, shown(proc)
    assert args is None
    assert proc.stdout.startswith("::error title=infragen review::") and complaint in proc.stdout, shown(proc)
    assert not (repo / "pwned").exists()


@pytest.mark.slow  # git clones and the real infragen
def test_action_steps_with_the_real_infragen_on_a_shallow_pull_request(tmp_path: Path) -> None:
    """The check and review steps as GitHub runs them (GITHUB_ACTIONS=true, a job summary file), with this
    infragen, in a shallow clone of a pull request that raises max_replicas and rebuilds output/."""
    bash = require("bash", "apt-get install bash")
    infragen = require("infragen", TEST_EXTRAS)
    origin = tmp_path / "origin"
    shutil.copytree(SHIPPED_ENVIRONMENTS, origin / "environments")
    shutil.copytree(SHIPPED_OUTPUT, origin / "output")
    base = init_repo(origin, "base")
    production = origin / "environments" / "production.yaml"
    production.write_text(production.read_text(encoding="utf-8").replace(*EDIT, 1), encoding="utf-8")
    proc = run([infragen, "build"], cwd=origin, env={**os.environ, "INFRAGEN_CACHE": "0"})
    assert proc.returncode == 0, shown(proc)
    git(origin, "commit", "-q", "--no-verify", "-am", "raise max_replicas")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth=1", origin.as_uri(), str(clone))

    summary, outputs = tmp_path / "summary.md", tmp_path / "github-output"
    env = {**git_env(), "PATH": f"{Path(infragen).parent}{os.pathsep}{os.environ.get('PATH', os.defpath)}",
           "GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs),
           "INFRAGEN_CACHE": "0", "PR_BASE_SHA": base, "REVIEW_BASE": "", "ENVIRONMENTS_DIR": "", "OUTPUT_DIR": ""}
    for name in ("infragen check", "infragen review"):
        script = tmp_path / "step.sh"
        script.write_text(step(name)["run"], encoding="utf-8")
        proc = run([bash, *GITHUB_BASH[1:], str(script)], cwd=clone, env=env)
        assert proc.returncode == 0, f"{name}\n{shown(proc)}"
    assert outputs.read_text(encoding="utf-8") == "changes=true\n"
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("**infragen check**: output is up to date")
    assert f"**infragen review** against `{base}`: 1 environment changed, 2 unchanged, 0 failing" in text
    assert "| `kubernetes/hpa.yaml` | `spec.maxReplicas` | `10` | `12` |" in text
    assert "::error" not in text and "::warning" not in text  # annotations go to the log, not the summary
