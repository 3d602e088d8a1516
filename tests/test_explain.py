"""`infragen explain`: each effective setting and where it came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import MINIMAL

from infragen.cli import cli
from infragen.explain import explain
from infragen.load import Loader

BASE = """\
service: {name: fraud-api}
load_balancing:
  servers: ["10.0.0.1:8080", {address: "10.0.0.2:8080", weight: 2}]
rate_limit:
  requests: 100
alerts: {rate_window: 10m}
"""

PRODUCTION = """\
extends: _base
tier: production
service: {namespace: fraud-prod}
database:
  max_connections: 500
  load_estimate: 1.5
disruption_budget: {max_unavailable: 1}
"""


@pytest.fixture
def env_project(project: Path, write_env) -> Path:
    write_env("_base", BASE + "disruption_budget: {min_available: 2}\n")
    write_env("production", PRODUCTION)
    return project


def rows(project: Path, field: str | None = None) -> dict[str, tuple[str, str, str]]:
    env = Loader(project / "environments").load("production")
    return {s.path: (s.value, s.kind, s.source) for s in explain(env, field)}


def test_each_origin_is_named(env_project) -> None:
    found = rows(env_project)
    assert found["database.max_connections"] == ("500", "environment", "environments/production.yaml:5:20")
    assert found["rate_limit.requests"] == ("100", "partial", "environments/_base.yaml:5:13 (partial)")
    assert found["autoscaling.max_replicas"] == ("10", "tier", "tier default (production)")
    assert found["rate_limit.burst"][:2] == ("99", "derived")  # requests - 1: the edge admits what the app admits
    assert found["alerts.rate_window"] == ("10m", "partial", "environments/_base.yaml:6:23 (partial)")  # written as a duration
    assert found["alerts.scrape_interval"] == ("30s", "default", "default")


def test_derived_values_show_the_formula_with_the_numbers(env_project) -> None:
    found = rows(env_project)
    # ceil(20 x 1.5) = 30, overflow 15, surge ceil(25% x 10) = 3, peak 3 x 10 x 45 = 1350.
    assert found["database.pool_size"] == (
        "30", "derived", "derived: ceil(database.base_pool_size 20 x database.load_estimate 1.5)")
    assert found["database.max_overflow"] == ("15", "derived", "derived: database.pool_size 30 // 2")
    assert found["rollout.surge_pods"][0] == "3"
    # blue-green (the production tier's strategy) with a rollback window: three stacks, 3 x 10 pods
    assert found["rollout.peak_pods"] == ("30", "derived", "derived: 3 x autoscaling.max_replicas 10: old (kept for rollout.blue_green."
                                                         "rollback_window 3h) + active + preview stacks, each at full "
                                                         "size")
    assert found["database.peak_connections"] == (
        "1350", "derived", "derived: rollout.peak_pods 30 x database.connections_per_pod 45")
    assert found["database.usable_connections"][0] == "450"
    assert found["service.selector"][0] == "{app.kubernetes.io/name: fraud-api}"
    assert found["load_balancing.method"][0] == "hash $cookie_session_id consistent"
    assert found["disruption_budget.evictions_allowed_at_min_replicas"][0] == "1"


def test_a_server_written_as_a_string_has_its_address_located_at_the_string(env_project) -> None:
    found = rows(env_project, "load_balancing.servers")
    assert found["load_balancing.servers.0.address"][2] == "environments/_base.yaml:3:13 (partial)"
    assert found["load_balancing.servers.0.weight"][1] == "default"
    assert found["load_balancing.servers.1.weight"] == ("2", "partial", "environments/_base.yaml:3:65 (partial)")
    assert found["load_balancing.servers.1.max_fails"] == ("3", "derived", "derived: load_balancing.max_fails")


def test_a_replaced_exclusive_key_is_no_longer_attributed_to_the_partial(env_project) -> None:
    found = rows(env_project, "disruption_budget")
    assert found["disruption_budget.max_unavailable"] == ("1", "environment", "environments/production.yaml:7:38")
    assert found["disruption_budget.min_available"] == ("null", "default", "default")


def test_field_selects_a_setting_or_a_section(env_project) -> None:
    assert list(rows(env_project, "database.max_connections")) == ["database.max_connections"]
    assert set(rows(env_project, "database")) >= {"database.pool_size", "database.peak_connections"}
    assert all(k.startswith("database.") for k in rows(env_project, "database"))


def test_cli_prints_a_table(env_project, runner) -> None:
    result = runner.invoke(cli, ["explain", "production", "rate_limit"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "production: tier production, environments/production.yaml, extends environments/_base.yaml"
    assert lines[1].split() == ["SETTING", "VALUE", "FROM"]
    assert any(line.split()[:3] == ["rate_limit.requests", "100", "environments/_base.yaml:5:13"] for line in lines)
    assert any(line.split()[:2] == ["rate_limit.nginx_rate", "100r/m"] for line in lines)


def test_cli_json(env_project, runner) -> None:
    result = runner.invoke(cli, ["explain", "production", "database.max_connections", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"environment": "production", "settings": [{
        "setting": "database.max_connections", "value": "500", "kind": "environment",
        "source": "environments/production.yaml:5:20", "file": "environments/production.yaml", "line": 5, "column": 20}]}


@pytest.mark.parametrize("args, message", [
    (["production", "databse"], "no setting 'databse' in environment 'production'; did you mean 'database'?"),
    (["prod"], "unknown environment 'prod'; did you mean 'production'?"),
])
def test_cli_unknown_names_exit_2(env_project, runner, args, message) -> None:
    result = runner.invoke(cli, ["explain", *args])
    assert result.exit_code == 2
    assert message in result.stderr


def test_explain_refuses_an_environment_with_an_inline_secret(project, write_env, runner) -> None:
    secret = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
    write_env("production", MINIMAL + f"alerts: {{labels: {{token: {secret}}}}}\n")
    result = runner.invoke(cli, ["explain", "production"])
    assert result.exit_code == 2 and "[inline-secret]" in result.stderr
    assert secret not in result.output + result.stderr


def test_the_example_in_docs_policy_is_the_real_output(shipped_project, runner) -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "policy.md").read_text()
    block = docs.split("    $ infragen explain production database\n", 1)[1].split("\n\n", 1)[0]
    expected = [line[4:] for line in block.splitlines()]
    result = runner.invoke(cli, ["explain", "production", "database"])
    assert result.exit_code == 0
    assert result.stdout.splitlines() == expected
