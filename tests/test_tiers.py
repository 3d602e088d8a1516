"""The tier defaults (infragen.models.tiers) on their own: what an environment that names only its tier gets,
that this is what the README's tier table says, that it is safe as it stands, and that any layer overrides it."""

from __future__ import annotations

import re

import pytest
from conftest import REPO

from infragen.errors import InputError
from infragen.explain import explain
from infragen.load import Loader
from infragen.policy import check_environment

TIERS = ("development", "staging", "production")
ONLY_REQUIRED = """\
tier: {tier}
service: {{name: fraud-api, namespace: fraud-{tier}}}
load_balancing: {{servers: ["10.0.0.1:8080", "10.0.0.2:8080"]}}
database: {{max_connections: 5000}}
monitoring: {{labels: {{release: prometheus}}}}
rollout: {{prometheus_url: "http://prometheus.monitoring.svc:9090"}}
"""


def tier_table() -> dict[str, dict[str, str]]:
    """The README's "Tier defaults" table: setting -> tier -> cell."""
    section = (REPO / "README.md").read_text().split("### Tier defaults", 1)[1].split("\n#", 1)[0]
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| `")]
    return {cells[0].strip().strip("`"): dict(zip(TIERS, (c.strip() for c in cells[1:]), strict=True)) for cells in rows}


@pytest.fixture
def tier_envs(project, write_env) -> dict:
    for tier in TIERS:
        write_env(tier, ONLY_REQUIRED.format(tier=tier))
    loader = Loader(project / "environments")
    return {tier: loader.load(tier) for tier in TIERS}


def test_the_readme_tier_table_is_what_each_tier_gets(tier_envs) -> None:
    table = tier_table()
    assert len(table) >= 8
    for setting, cells in table.items():
        for tier, cell in cells.items():
            shown = {s.path: s for s in explain(tier_envs[tier], setting)}
            if setting == "disruption_budget":  # the one row that names its key in the cell
                key, value = cell.strip("`").split(": ")
                found = shown[f"disruption_budget.{key}"]
            else:
                found = shown[setting]
                value = re.sub(r"`|\s*\(.*\)$", "", cell)
            assert found.value == value, (setting, tier, found.value, cell)
            assert found.source in (f"tier default ({tier})", "default"), (setting, tier, found.source)  # no file


def test_an_environment_with_only_its_tier_passes_every_rule_and_never_blocks_a_drain(tier_envs) -> None:
    for tier, env in tier_envs.items():
        errors = [f.format() for f in check_environment(env) if f.level == "error"]
        assert errors == [], tier
        assert env.capacity.evictions_allowed_at_min_replicas >= 1, tier  # one pod can always be drained


def test_production_pages_and_waits_for_a_person_elsewhere_nothing_wakes_anyone(tier_envs) -> None:
    severity = {tier: {r.name: r.severity for r in env.monitoring.alert_rules}["MetricsMissing"] for tier, env in tier_envs.items()}
    assert severity == {"development": "warning", "staging": "warning", "production": "critical"}
    assert tier_envs["production"].spec.rollout.blue_green.auto_promote is False


def test_a_file_or_a_partial_overrides_a_tier_default_and_explain_says_which(project, write_env) -> None:
    write_env("_wide", "autoscaling: {max_replicas: 40}\n")
    write_env("production", "extends: _wide\n" + ONLY_REQUIRED.format(tier="production")
              + "autoscaling: {min_replicas: 4}\ndisruption_budget: {max_unavailable: 2}\n")
    env = Loader(project / "environments").load("production")
    shown = {s.path: s for s in explain(env, "autoscaling")}
    assert (shown["autoscaling.min_replicas"].value, shown["autoscaling.max_replicas"].value) == ("4", "40")
    assert shown["autoscaling.min_replicas"].source.startswith("environments/production.yaml:")
    assert shown["autoscaling.max_replicas"].source.startswith("environments/_wide.yaml:")
    assert shown["autoscaling.target_cpu_percent"].source == "tier default (production)"
    # the file's max_unavailable replaces the tier's min_available: the two exclude each other
    assert env.capacity.pdb_field == ("maxUnavailable", 2)


def test_the_tier_is_checked(project, write_env) -> None:
    write_env("production", ONLY_REQUIRED.format(tier="prod"))
    with pytest.raises(InputError, match="'prod' is not a tier; use development, staging or production; did you mean"):
        Loader(project / "environments").load("production")
