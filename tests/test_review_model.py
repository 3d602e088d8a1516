"""infragen.review as data, without the CLI or the Markdown: per environment, the status, the settings that
changed with where each new value comes from, the artifact changes by path inside the file, and the margins that
moved. (tests/test_review.py pins the Markdown a reviewer reads; this pins the facts it is made of.)"""

from __future__ import annotations

from pathlib import Path

from test_review import commit_all, edit, repo  # noqa: F401  (repo: the fixture)

from infragen.review import review


def run(root: Path, *names: str):
    return review(root / "environments", root / "output", "HEAD", names)


def by_name(result) -> dict:
    return {env.name: env for env in result.environments}


def test_a_clean_tree_reviews_as_unchanged_everywhere(repo: Path) -> None:  # noqa: F811
    result = run(repo)
    assert [e.status for e in result.environments] == ["unchanged"] * 3 and not result.changed
    assert result.file_counts() == {"create": 0, "update": 0, "delete": 0}


def test_a_setting_change_names_the_setting_its_source_the_paths_and_the_margin(repo: Path) -> None:  # noqa: F811
    edit(repo, "production.yaml", "max_replicas: 10", "max_replicas: 12")
    envs = by_name(run(repo))
    production = envs["production"]
    assert (production.status, envs["staging"].status, envs["development"].status) == ("changed", "unchanged", "unchanged")
    [setting] = [s for s in production.settings if s.path == "autoscaling.max_replicas"]
    assert (setting.old, setting.new, setting.kind) == ("10", "12", "environment")
    assert setting.source == "environments/production.yaml:8"
    files = {f.path: f for f in production.files}
    assert set(files) >= {"kubernetes/hpa.yaml", "app.env"} and all(f.kind == "update" for f in files.values())
    assert any("spec.maxReplicas" in str(entry) for entry in files["kubernetes/hpa.yaml"].entries)
    [connections] = [m for m in production.margins if m.name.startswith("database connections at peak")]
    assert connections.before != connections.after
    assert production.inputs_changed and production.effective and "+  maxReplicas: 12" in production.diff


def test_a_partial_change_reaches_every_environment_and_names_the_partial(repo: Path) -> None:  # noqa: F811
    edit(repo, "_base.yaml", "requests: 100", "requests: 120")
    for env in run(repo).environments:
        [setting] = [s for s in env.settings if s.path == "rate_limit.requests"]
        assert (setting.old, setting.new, setting.kind) == ("100", "120", "partial"), env.name
        assert setting.source.startswith("environments/_base.yaml:"), setting.source
        assert "nginx/location.conf" in {f.path for f in env.files}


def test_a_value_removed_from_the_file_falls_back_to_the_tier_default_and_says_so(repo: Path) -> None:  # noqa: F811
    edit(repo, "production.yaml", "  min_replicas: 3\n", "")
    production = by_name(run(repo))["production"]
    assert production.settings == []  # 3 is also production's tier default: nothing changes in effect
    assert production.files == [] and production.inputs_changed and not production.effective
    edit(repo, "production.yaml", "target_cpu_percent: 60", "target_cpu_percent: 70")
    commit_all(repo, "production at 70% CPU")
    edit(repo, "production.yaml", "  target_cpu_percent: 70\n", "")
    [setting] = by_name(run(repo))["production"].settings
    assert (setting.path, setting.old, setting.new) == ("autoscaling.target_cpu_percent", "70", "60")
    assert (setting.kind, setting.source) == ("tier", "tier default (production)")


def test_added_deleted_and_failing_environments(repo: Path) -> None:  # noqa: F811
    envs_dir = repo / "environments"
    (envs_dir / "qa.yaml").write_text((envs_dir / "staging.yaml").read_text().replace("simple378-staging", "qa"))
    (envs_dir / "development.yaml").unlink()
    edit(repo, "production.yaml", "max_connections: 1200", "max_connections: 300")
    result = run(repo)
    status = {e.name: e.status for e in result.environments}
    assert status == {"development": "deleted", "production": "failing", "qa": "added", "staging": "unchanged"}
    assert result.failing
    deleted = by_name(result)["development"]
    assert {f.kind for f in deleted.files} == {"delete"}
    failing = by_name(result)["production"]
    assert any(f.rule == "fleet-exceeds-database" and f.level == "error" for f in failing.findings)
    assert [e.name for e in run(repo, "qa").environments] == ["qa"]  # names limit the review


def test_a_base_that_does_not_load_is_reported_not_raised(repo: Path) -> None:  # noqa: F811
    edit(repo, "staging.yaml", "tier: staging", "tier: stagging")
    commit_all(repo, "broken")
    edit(repo, "staging.yaml", "tier: stagging", "tier: staging")
    staging = by_name(run(repo))["staging"]
    assert staging.base_problems and "HEAD:environments/staging.yaml" in staging.base_problems[0].format()
    assert staging.problems == []
