"""infragen.gitref on its own, against real git repositories: the base side of a review is what the commit
holds, read without touching the working tree, the index or HEAD, and every way it cannot be read is one clear
error."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from infragen.errors import GitError
from infragen.gitref import resolve, snapshot

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.com", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True, text=True,
                          input="").stdout.strip()


def commit_all(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """deploy/environments and deploy/output in a repository with two commits (v1, then v2)."""
    root = tmp_path / "repo"
    (root / "deploy" / "environments").mkdir(parents=True)
    (root / "deploy" / "output" / "production" / "kubernetes").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    for version in ("v1", "v2"):
        (root / "deploy" / "environments" / "production.yaml").write_text(f"# {version}\n")
        (root / "deploy" / "environments" / "_base.yaml").write_text("# base\n")
        (root / "deploy" / "output" / "production" / "kubernetes" / "hpa.yaml").write_text(f"hpa {version}\n")
        commit_all(root, version)
    return root


def state(repo: Path) -> tuple[str, str, str]:
    """HEAD, the index and the working tree as git sees them."""
    return git(repo, "rev-parse", "HEAD"), git(repo, "ls-files", "-s"), git(repo, "status", "--porcelain")


def test_the_base_side_is_the_commit_not_the_working_tree_and_nothing_is_touched(repo: Path) -> None:
    envs, out = repo / "deploy" / "environments", repo / "deploy" / "output"
    (envs / "production.yaml").write_text("# edited\n")
    git(repo, "add", str(envs / "production.yaml"))  # staged, too: the index is not the base either
    (envs / "staging.yaml").write_text("# new, untracked\n")
    before = state(repo)
    with snapshot("HEAD", envs, out) as snap:
        assert snap.commit == git(repo, "rev-parse", "HEAD")
        assert snap.files == {"_base.yaml": b"# base\n", "production.yaml": b"# v2\n"}
        assert (snap.environments / "production.yaml").read_bytes() == b"# v2\n"
        assert (snap.output / "production" / "kubernetes" / "hpa.yaml").read_bytes() == b"hpa v2\n"
        assert snap.environments.name == "environments"  # labelled like the working tree's folder
        assert (snap.environments_in_repo, snap.output_in_repo) == ("deploy/environments", "deploy/output")
        assert snap.label("production.yaml") == "HEAD:deploy/environments/production.yaml"
        temporary = snap.environments
    assert not temporary.exists()  # removed when the block ends
    assert state(repo) == before


def test_any_ref_git_knows_names_the_base(repo: Path) -> None:
    envs, out = repo / "deploy" / "environments", repo / "deploy" / "output"
    first = git(repo, "rev-parse", "HEAD~1")
    git(repo, "tag", "release-1", first)
    for ref in ("HEAD~1", "release-1", first, first[:10]):
        with snapshot(ref, envs, out) as snap:
            assert snap.commit == first and snap.files["production.yaml"] == b"# v1\n", ref
    assert resolve("main", repo) == (repo.resolve(), git(repo, "rev-parse", "HEAD"))


def test_only_regular_top_level_files_of_the_environments_folder_are_taken(repo: Path) -> None:
    envs = repo / "deploy" / "environments"
    (envs / "old").mkdir()
    (envs / "old" / "archived.yaml").write_text("# not an environment of this folder\n")
    (envs / "link.yaml").symlink_to("/etc/passwd")  # committed as a link: never followed, never copied
    commit_all(repo, "v3")
    with snapshot("HEAD", envs, repo / "deploy" / "output") as snap:
        assert sorted(snap.files) == ["_base.yaml", "production.yaml"]
        assert sorted(p.name for p in snap.environments.iterdir()) == ["_base.yaml", "production.yaml"]


def test_a_ref_without_the_folders_gives_an_empty_base(repo: Path) -> None:
    root = git(repo, "commit-tree", git(repo, "mktree"), "-m", "empty")  # a commit of the empty tree
    with snapshot(root, repo / "deploy" / "environments", repo / "deploy" / "output") as snap:
        assert snap.files == {} and list(snap.environments.iterdir()) == [] and list(snap.output.iterdir()) == []


@pytest.mark.parametrize(("ref", "words"), [
    ("no-such-branch", "unknown git ref 'no-such-branch' (a branch, tag or commit of this repository)"),
    ("--output=/tmp/x", "--base must be a git ref or commit"),  # never passed to git as an option
    ("", "--base must be a git ref or commit"),
])
def test_a_ref_that_is_not_one_is_refused(repo: Path, ref: str, words: str) -> None:
    with pytest.raises(GitError) as info:
        resolve(ref, repo)
    assert words in info.value.problems[0].message


def test_outside_git_and_before_the_first_commit_say_so(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not in a git repository.*infragen diff"):
        resolve("HEAD", plain)
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    with pytest.raises(GitError, match="the repository has no commit yet"):
        resolve("HEAD", empty)


def test_a_shallow_clone_without_the_base_says_how_to_fetch_it(repo: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth=1", f"file://{repo}", str(clone))
    first = git(repo, "rev-parse", "HEAD~1")
    with pytest.raises(GitError) as info:
        resolve(first, clone)
    message = info.value.problems[0].message
    assert "is not in this shallow clone" in message and f"git fetch --depth=1 origin {first}" in message
