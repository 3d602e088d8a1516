"""`infragen review`: a git repository holding the shipped project, an edit in the working tree, the review.

Snapshots (tests/__snapshots__/test_review.ambr) pin the Markdown of each kind of change the issue names;
markdown-it-py (CommonMark with GitHub's tables) checks its structure the way GitHub will read it.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
from conftest import artifact_paths, files_under
from markdown_it import MarkdownIt

from infragen import api
from infragen.cli import cli
from infragen.config import load_settings
from infragen.markdown import COMMENT_LIMIT, review_markdown
from infragen.policy import hint_for

EDIT = ("max_replicas: 10", "max_replicas: 12")  # environments/production.yaml, as the README's example


def git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return {**env, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"}


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, env=git_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"git {' '.join(args)}: {proc.stderr}"
    return proc.stdout.strip()


def commit_all(repo: Path, message: str = "base") -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--no-verify", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(shipped_project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped environments and output, committed in a fresh git repository (the working directory)."""
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    git(shipped_project, "init", "-q")
    git(shipped_project, "config", "user.name", "infragen tests")
    git(shipped_project, "config", "user.email", "tests@infragen.invalid")
    git(shipped_project, "config", "commit.gpgsign", "false")
    commit_all(shipped_project)
    return shipped_project


def edit(repo: Path, name: str, old: str, new: str) -> None:
    path = repo / "environments" / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{name} no longer has {old!r}: pick another edit"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def run_review(runner, *args: str):
    result = runner.invoke(cli, ["review", *args])
    return result.exit_code, result.stdout


# --- structure ----------------------------------------------------------------------------------------

MD = MarkdownIt("commonmark").enable("table")


def structure(text: str) -> dict:
    """What GitHub will show: the first block, the level-3 headings, the details blocks, the diff fences, tables."""
    tokens = MD.parse(text)
    first = next(t for t in tokens if t.type == "inline")
    headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h3"]
    tables = []
    for i, t in enumerate(tokens):
        if t.type == "table_open":
            header = []
            for u in tokens[i:]:
                if u.type == "thead_close":
                    break
                if u.type == "inline":
                    header.append(u.content)
            tables.append(header)
    fences = [t for t in tokens if t.type == "fence"]
    details = [t.content for t in tokens if t.type == "html_block" and "<details>" in t.content]
    return {"first": first.content, "first_type": tokens[0].type, "headings": headings, "tables": tables,
            "fences": fences, "details": details}


def assert_well_formed(text: str) -> dict:
    found = structure(text)
    assert found["first_type"] == "paragraph_open" and found["first"].startswith("**infragen review** against")
    assert "\n" not in found["first"]  # one summary line
    for fence in found["fences"]:
        assert fence.info == "diff"
        for line in fence.content.splitlines():  # + and - in column 0: GitHub colours the fence
            assert line[:1] in ("+", "-", " ", "@", "\\"), line
    assert len(found["details"]) == len(found["fences"])
    assert len(text) <= COMMENT_LIMIT
    return found


# --- the kinds of change -------------------------------------------------------------------------------

def test_scalar_change(repo: Path, runner, snapshot) -> None:
    edit(repo, "production.yaml", *EDIT)
    code, text = run_review(runner)
    assert code == 1
    assert text == snapshot
    found = assert_well_formed(text)
    assert found["first"].startswith("**infragen review** against `HEAD`: 1 environment changed, 2 unchanged, 0 failing")
    assert "output files: 0 added, 3 changed, 0 removed" in found["first"]  # app.env, its ConfigMap literal, the HPA
    assert found["headings"] == ["<code>production</code>: changed"] or found["headings"] == ["`production`: changed"]
    assert found["tables"] == [["setting", "before", "after", "from"], ["file", "path", "before", "after"],
                               ["margin", "before", "after"]]
    assert "| `kubernetes/hpa.yaml` | `spec.maxReplicas` | `10` | `12` |" in text
    assert "| `app.env` | `K8S_MAX_REPLICAS` | `10` | `12` |" in text
    assert "| `autoscaling.max_replicas` | `10` | `12` | `environments/production.yaml:8` |" in text
    assert "30 pods: 900 of 1080 usable (180 spare) | 36 pods: 1080 of 1080 usable (0 spare)" in text
    assert len(found["fences"]) == 1 and "-  maxReplicas: 10\n+  maxReplicas: 12" in found["fences"][0].content


def test_change_through_a_partial(repo: Path, runner, snapshot) -> None:
    edit(repo, "_base.yaml", "requests: 100", "requests: 120")
    code, text = run_review(runner)
    assert code == 1
    assert text == snapshot
    found = assert_well_formed(text)
    assert [h.split(":")[0] for h in found["headings"]] == ["`development`", "`production`", "`staging`"]
    assert text.count("`environments/_base.yaml:9 (partial)`") == 3
    # The app's side moved and nginx's with it (burst unset): the margin shows them still equal.
    assert ("| rate limit per client, nginx against the app's token bucket | edge 100 of the app's 100 at once "
            "(1 instance); then 1 per 601 ms per instance vs 1 per 600 ms | edge 120 of the app's 120 at once "
            "(1 instance); then 1 per 500 ms per instance vs 1 per 500 ms |") in text


def test_a_stricter_edge_shows_as_a_margin(repo: Path, runner) -> None:
    edit(repo, "_base.yaml", "  window_seconds: 60\n", "  window_seconds: 60\n  burst: 20\n")
    code, text = run_review(runner)
    assert code == 1
    assert ("| rate limit per client, nginx against the app's token bucket | edge 100 of the app's 100 at once "
            "(1 instance); then 1 per 601 ms per instance vs 1 per 600 ms | edge 21 of the app's 100 at once "
            "(1 instance); then 1 per 601 ms per instance vs 1 per 600 ms **(nginx is stricter than the app)** |") in text
    assert "edge-stricter-than-app" in text


def test_tier_change(repo: Path, runner, snapshot) -> None:
    edit(repo, "production.yaml", "tier: production", "tier: staging")
    code, text = run_review(runner)
    assert code == 1
    assert text == snapshot
    assert_well_formed(text)
    assert "| `tier` | `production` | `staging` | `environments/production.yaml:3` |" in text
    assert "| `database.base_pool_size` | `20` | `10` | `tier default (staging)` |" in text


def test_added_and_deleted_environments(repo: Path, runner, snapshot) -> None:
    (repo / "environments" / "qa.yaml").write_text(
        (repo / "environments" / "staging.yaml").read_text().replace("simple378-staging", "simple378-qa"))
    (repo / "environments" / "development.yaml").unlink()
    code, text = run_review(runner)
    assert code == 1
    assert text == snapshot
    found = assert_well_formed(text)
    added = len(artifact_paths(repo / "environments", "qa"))  # what a build writes for each (the registry's count)
    removed = len(list((repo / "output" / "development").rglob("*.*")))
    assert found["first"].startswith("**infragen review** against `HEAD`: 2 environments changed (1 added, 1 deleted), "
                                     f"2 unchanged, 0 failing; output files: {added} added, 0 changed, {removed} removed")
    assert [h for h in found["headings"]] == ["`development`: deleted", "`qa`: added"]


def test_change_that_creates_a_policy_error(repo: Path, runner, snapshot) -> None:
    edit(repo, "production.yaml", "max_connections: 1200", "max_connections: 900")
    code, text = run_review(runner)
    assert code == 2  # as check: the new side fails a policy rule
    assert text == snapshot
    found = assert_well_formed(text)
    assert found["headings"] == ["`production`: failing"]
    assert "**error** `fleet-exceeds-database` `environments/production.yaml:19:20`" in text
    assert "30 pods: 900 of 1080 usable (180 spare) | 30 pods: 900 of 810 usable (90 over)" in text
    assert "**Artifacts**: no generated file changes." in text


def test_change_to_comments_only(repo: Path, runner, snapshot) -> None:
    edit(repo, "production.yaml", "# fraud-api production.", "# fraud-api production, the one customers use.")
    code, text = run_review(runner)
    assert code == 0
    assert text == snapshot
    found = assert_well_formed(text)
    assert found["headings"] == []
    assert "no setting and no artifact changes (comments or formatting only)" in text


def test_nothing_changed(repo: Path, runner) -> None:
    code, text = run_review(runner)
    assert code == 0
    assert text.startswith("**infragen review** against `HEAD`: 0 environments changed, 3 unchanged, 0 failing")
    assert "Nothing changes in effect." in text


def test_new_side_that_does_not_load_fails(repo: Path, runner) -> None:
    edit(repo, "production.yaml", "max_replicas: 10", "max_replicas: ten")
    code, text = run_review(runner)
    assert code == 2
    assert "### `production`: failing" in text and "**Does not load** (the working tree's files):" in text
    assert "`environments/production.yaml:8:17` `autoscaling.max_replicas`: Input should be a valid integer" in text
    assert_well_formed(text)


# --- the base side ------------------------------------------------------------------------------------

def test_base_is_a_commit_and_the_working_tree_is_not_touched(repo: Path, runner) -> None:
    base = git(repo, "rev-parse", "HEAD")
    edit(repo, "production.yaml", *EDIT)
    commit_all(repo, "raise max_replicas")  # committed without rebuilding output/: HEAD's output is stale
    before = files_under(repo)
    status = git(repo, "status", "--porcelain")
    code, text = run_review(runner, "--base", base, "production")
    assert code == 1 and "`spec.maxReplicas` | `10` | `12`" in text
    assert "| `autoscaling.max_replicas` | `10` | `12` |" in text
    # against HEAD: the settings are the same, the committed output is stale: said so
    code, text = run_review(runner, "production")
    assert code == 1 and "No setting changed: the artifacts differ" in text
    assert files_under(repo) == before and git(repo, "status", "--porcelain") == status


def test_base_that_does_not_load_is_reported(repo: Path, runner) -> None:
    (repo / "environments" / "staging.yaml").write_text("tier: [\n")
    commit_all(repo, "broken staging")
    git(repo, "checkout", "-q", "HEAD~1", "--", "environments/staging.yaml")
    code, text = run_review(runner)
    assert code == 0  # the working tree builds what HEAD committed: nothing changes in effect
    assert "**The base side does not load**" in text
    assert "`HEAD:environments/staging.yaml:2:1`" in text  # named by the ref, not by a temporary path
    assert_well_formed(text)


@pytest.mark.parametrize(("args", "message"), [
    (["--base", "no-such-branch"], "unknown git ref 'no-such-branch'"),
    (["--base", "--upload-pack=touch pwned"], "--base must be a git ref or commit"),
])
def test_bad_ref_exits_2(repo: Path, runner, args: list[str], message: str) -> None:
    result = runner.invoke(cli, ["review", *args])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    assert not (repo / "pwned").exists()


def test_not_a_git_repository_exits_2(shipped_project: Path, runner, monkeypatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(shipped_project.parent))
    result = runner.invoke(cli, ["review"])
    assert result.exit_code == 2
    assert "not in a git repository" in result.stderr and "infragen diff" in result.stderr


def test_shallow_clone_without_the_base_exits_2(repo: Path, runner, tmp_path: Path, monkeypatch) -> None:
    edit(repo, "production.yaml", *EDIT)
    commit_all(repo, "second")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth=1", repo.as_uri(), str(clone))
    monkeypatch.chdir(clone)
    result = runner.invoke(cli, ["review", "--base", "HEAD~1"])
    assert result.exit_code == 2
    assert "not in this shallow clone" in result.stderr and "git fetch --depth=1 origin HEAD~1" in result.stderr
    assert runner.invoke(cli, ["review"]).exit_code == 1  # HEAD is there: its output is stale (never rebuilt)


def test_unknown_environment_exits_2(repo: Path, runner) -> None:
    result = runner.invoke(cli, ["review", "prod"])
    assert result.exit_code == 2 and "did you mean 'production'" in result.stderr


# --- GitHub ---------------------------------------------------------------------------------------------

def test_step_summary_and_annotations_under_github_actions(repo: Path, runner, monkeypatch, tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    edit(repo, "production.yaml", "max_connections: 1200", "max_connections: 900")
    code, text = run_review(runner)
    assert code == 2
    markdown, _, annotations = text.partition("::error ")
    assert markdown.startswith("**infragen review**")  # the Markdown, then the annotations: never instead
    assert annotations.startswith("file=environments/production.yaml,line=19,col=20,title=fleet-exceeds-database::")
    assert summary.read_text() == "earlier\n" + markdown


def test_format_github_prints_only_annotations_on_stdout(repo: Path, runner) -> None:
    edit(repo, "production.yaml", "max_connections: 1200", "max_connections: 900")
    result = runner.invoke(cli, ["review", "--format", "github"])
    assert result.exit_code == 2
    assert result.stdout.startswith("::error file=environments/production.yaml,line=19,col=20,"
                                    "title=fleet-exceeds-database::")
    assert result.stderr.startswith("**infragen review**")


# --- the comment limit --------------------------------------------------------------------------------

def test_long_reviews_cut_diffs_first_and_say_so(repo: Path) -> None:
    edit(repo, "_base.yaml", "requests: 100", "requests: 120")
    review = api.review(load_settings())
    full = review_markdown(review, hint_for)
    assert full.count("<details>") == 3
    limit = len(full) - 100
    cut = review_markdown(review, hint_for, limit=limit)
    assert len(cut) <= limit and cut.count("<details>") == 2
    assert re.search(r"\*Cut to stay under GitHub's [\d,]+-character comment limit: the unified diffs of \w+\.\*", cut)
    tiny = review_markdown(review, hint_for, limit=1500)
    assert len(tiny) <= 1500 and "<details>" not in tiny and "details cut to fit" in tiny
    assert_well_formed(tiny)
    smallest = review_markdown(review, hint_for, limit=300)
    assert len(smallest) <= 300 and smallest.startswith("**infragen review**")


def test_output_is_deterministic(repo: Path, runner) -> None:
    edit(repo, "_base.yaml", "requests: 100", "requests: 120")
    assert run_review(runner) == run_review(runner)


# --- the README's example -----------------------------------------------------------------------------

README_START = "<!-- review example: written by tests/test_review.py (INFRAGEN_UPDATE_README=1 to rewrite it) -->\n"
README_END = "<!-- end of review example -->\n"


def test_readme_shows_the_real_review(repo: Path, runner) -> None:
    """The README's review section shows this review, byte for byte: with INFRAGEN_UPDATE_README=1 this test
    writes it there, otherwise it compares."""
    from conftest import REPO

    edit(repo, "production.yaml", *EDIT)
    code, text = run_review(runner)
    assert code == 1
    fence = "`" * max(4, max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)
    block = f"{fence}markdown\n{text}{fence}\n"
    readme = REPO / "README.md"
    current = readme.read_text(encoding="utf-8")
    before, start, rest = current.partition(README_START)
    assert start, "README.md lost its review example markers"
    old_block, end, after = rest.partition(README_END)
    assert end, "README.md lost the end of its review example"
    if os.environ.get("INFRAGEN_UPDATE_README") == "1":
        readme.write_text(before + start + block + end + after, encoding="utf-8")
    else:
        assert old_block == block, "README.md's review example is out of date: run INFRAGEN_UPDATE_README=1 pytest " \
                                   "tests/test_review.py -k readme"
