"""Models and loading: tier defaults, layering, derived values, and every validation error with its location."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from conftest import MINIMAL

from infragen.errors import InputError
from infragen.load import Loader
from infragen.models.types import format_duration, parse_duration, percent_value


def load(project: Path, name: str = "production"):
    return Loader(project / "environments").load(name)


def errors(project: Path, name: str = "production") -> list[str]:
    with pytest.raises(InputError) as info:
        Loader(project / "environments").load_many([name])
    return [p.format() for p in info.value.problems]


def with_minimal(extra: str) -> str:
    """An environment file that extends a minimal valid partial, then says `extra` (so keys may repeat MINIMAL's)."""
    return "extends: _minimal\n" + textwrap.dedent(extra)


@pytest.fixture(autouse=True)
def _minimal_partial(project: Path) -> None:
    (project / "environments" / "_minimal.yaml").write_text(MINIMAL, encoding="utf-8")


# --- tier defaults -------------------------------------------------------------------------------------

@pytest.mark.parametrize("tier, replicas, cpu, base_pool, pdb", [
    ("development", (1, 2), 70, 5, ("maxUnavailable", 1)),
    ("staging", (2, 5), 70, 10, ("maxUnavailable", 1)),
    ("production", (3, 10), 60, 20, ("maxUnavailable", 1)),
])
def test_tier_defaults(project, write_env, tier, replicas, cpu, base_pool, pdb) -> None:
    write_env("env", MINIMAL.replace("tier: production", f"tier: {tier}"))
    env = load(project, "env")
    a = env.spec.autoscaling
    assert (a.min_replicas, a.max_replicas) == replicas
    assert a.target_cpu_percent == cpu
    assert env.capacity.pool_size == base_pool and env.capacity.pool_overflow == base_pool // 2
    assert env.capacity.pdb_field == pdb
    assert (a.scale_up_stabilization_seconds, a.scale_down_stabilization_seconds) == (0, 300)
    assert env.spec.rate_limit.nginx_rate == "100r/m"
    assert env.spec.database.max_connections == 500  # from MINIMAL
    assert env.namespace == "fraud-prod"


def test_model_defaults_not_tied_to_tier(project, write_env) -> None:
    write_env("production", MINIMAL)
    env = load(project)
    assert env.spec.load_balancing.nginx_version == "1.22"
    assert env.spec.load_balancing.session_affinity.enabled and env.edge.affinity_ttl == "3h"
    assert env.spec.load_balancing.keepalive == 32
    assert env.spec.rate_limit.key == "$binary_remote_addr" and env.spec.rate_limit.status_code == 429
    assert env.spec.alerts.scrape_interval == 30 and env.spec.alerts.rate_window == 300
    assert env.selector == {"app.kubernetes.io/name": "fraud-api"}


def test_namespace_defaults_to_the_environment_name(project, write_env) -> None:
    write_env("production-eu", MINIMAL.replace("namespace: fraud-prod", "port: 8000"))
    assert load(project, "production-eu").namespace == "production-eu"


# --- derived numbers -----------------------------------------------------------------------------------

@pytest.mark.parametrize("database, pool, overflow", [
    ("{load_estimate: 1.0}", 20, 10),
    ("{load_estimate: 1.5}", 30, 15),
    ("{load_estimate: 1.1}", 22, 11),      # exact: 20 x 1.1 is 22, not ceil(22.000000000000004)
    ("{load_estimate: 1.01}", 21, 10),     # ceil
    ("{load_estimate: 0.5}", 10, 5),
    ("{pool_size: 7, load_estimate: 3}", 7, 3),   # explicit pool size is taken as is
    ("{max_overflow: 0}", 20, 0),
    ("{base_pool_size: 9, load_estimate: 2}", 18, 9),
])
def test_pool_size_and_overflow(project, write_env, database, pool, overflow) -> None:
    write_env("production", MINIMAL.replace("database: {max_connections: 500}", f"database: {database}"))
    env = load(project)
    assert (env.capacity.pool_size, env.capacity.pool_overflow, env.capacity.connections_per_pod) == (pool, overflow, pool + overflow)


@pytest.mark.parametrize("requests, window, rate", [(100, 60, "100r/m"), (10, 1, "10r/s"), (120, 60, "2r/s"),
                                                     (1, 60, "1r/m"), (30, 2, "15r/s"), (5, 30, "10r/m")])
def test_nginx_rate_is_a_whole_number_per_second_or_minute(project, write_env, requests, window, rate) -> None:
    write_env("production", with_minimal(f"rate_limit: {{requests: {requests}, window_seconds: {window}}}\n"))
    assert load(project).spec.rate_limit.nginx_rate == rate


@pytest.mark.parametrize("surge, max_replicas, pods", [('"25%"', 10, 3), ('"25%"', 4, 1), ("0", 10, 0), ("2", 10, 2)])
def test_surge_pods_round_up_like_kubernetes(project, write_env, surge, max_replicas, pods) -> None:
    unavailable = ", max_unavailable: 1" if surge == "0" else ""  # both 0 could never replace a pod
    write_env("production", with_minimal(f"rollout: {{strategy: rolling, max_surge: {surge}{unavailable}}}\n"
                                         f"autoscaling: {{max_replicas: {max_replicas}}}\n"))
    env = load(project)
    assert env.capacity.surge_pods == pods
    assert env.capacity.peak_connections == (max_replicas + pods) * 30


def test_affinity_mode_follows_nginx_version(project, write_env) -> None:
    for version, mode in (('"1.22"', "hash"), ('"1.29.5"', "hash"), ('"1.29.6"', "sticky"), ('"1.30"', "sticky")):
        write_env("production", with_minimal(f"load_balancing: {{nginx_version: {version}}}\n"))
        assert load(project).edge.affinity_mode == mode, version


def test_durations() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("0m") == 0 and parse_duration("2w") == 1209600
    assert format_duration(5400) == "1h30m" and format_duration(0) == "0s" and format_duration(90) == "1m30s"
    assert percent_value("25%", 10, round_up=True) == 3 and percent_value("25%", 10, round_up=False) == 2


# --- layering -----------------------------------------------------------------------------------------

def test_extends_merges_mappings_and_replaces_lists_and_scalars(project, write_env) -> None:
    write_env("_base", """\
        service: {name: fraud-api, port: 9000}
        load_balancing: {servers: ["10.0.0.1:80", "10.0.0.2:80"], keepalive: 8}
        alerts: {labels: {team: fraud, tier: one}}
    """)
    write_env("_big", """\
        extends: _base
        load_balancing: {servers: ["10.9.9.9:80"]}
        database: {max_connections: 900}
    """)
    write_env("production", """\
        extends: [_base, _big]
        tier: production
        service: {namespace: prod}
        alerts: {labels: {tier: two}}
    """)
    env = load(project)
    assert env.spec.service.name == "fraud-api" and env.spec.service.port == 9000 and env.namespace == "prod"
    assert [s.address for s in env.spec.load_balancing.servers] == ["10.9.9.9:80"]  # lists replace
    assert env.spec.load_balancing.keepalive == 8  # mappings merge
    assert env.spec.alerts.labels == {"team": "fraud", "tier": "two"}
    assert env.partials == ("environments/_base.yaml", "environments/_big.yaml")
    assert str(env.locations[("load_balancing", "keepalive")]).startswith("environments/_base.yaml:2:")
    assert str(env.locations[("database", "max_connections")]).startswith("environments/_big.yaml:3:")


def test_later_partials_override_earlier_and_the_file_overrides_all(project, write_env) -> None:
    write_env("_a", "rate_limit: {burst: 1, requests: 10, window_seconds: 1}\n")
    write_env("_b", "rate_limit: {burst: 2}\n")
    write_env("production", "extends: [_minimal, _a, _b]\n")
    assert load(project).spec.rate_limit.burst == 2
    write_env("production", "extends: [_minimal, _b, _a]\nrate_limit: {requests: 60}\n")
    rl = load(project).spec.rate_limit
    assert (rl.burst, rl.requests, rl.window_seconds) == (1, 60, 1)


def test_servers_without_a_port_use_the_service_port(project, write_env) -> None:
    write_env("production", with_minimal('service: {port: 9000}\nload_balancing: {servers: ["10.0.0.1", "[fd00::1]", "app.internal:80"]}\n'))
    assert [s["address"] for s in load(project).edge.upstream_servers] == ["10.0.0.1:9000", "[fd00::1]:9000", "app.internal:80"]


@pytest.mark.parametrize("tier", ["development", "production"])
def test_exclusive_pdb_keys_replace_each_other_across_layers(project, write_env, tier) -> None:
    write_env("production", MINIMAL.replace("tier: production", f"tier: {tier}") + "disruption_budget: {max_unavailable: 1}\n")
    assert load(project).capacity.pdb_field == ("maxUnavailable", 1)
    write_env("production", MINIMAL.replace("tier: production", f"tier: {tier}") + 'disruption_budget: {min_available: "50%"}\n')
    assert load(project).capacity.pdb_field == ("minAvailable", "50%")


def test_null_removes_an_optional_inherited_value(project, write_env) -> None:
    write_env("_base", "extends: _minimal\nautoscaling: {target_memory_percent: 80}\n")
    write_env("production", "extends: _base\nautoscaling: {target_memory_percent: null}\n")
    assert load(project).spec.autoscaling.target_memory_percent is None


def test_tier_may_come_from_a_partial(project, write_env) -> None:
    write_env("_prod", "tier: staging\n")
    write_env("production", "extends: _prod\n" + MINIMAL.replace("tier: production\n", ""))
    assert load(project).spec.tier == "staging"


# --- validation errors: message, field path and file:line:column ---------------------------------------

@pytest.mark.parametrize("extra, expected", [
    ("autoscaling: {min_replicas: 0}\n", "production.yaml:2:29: autoscaling.min_replicas: Input should be greater than or equal to 1 (got 0)"),
    ("autoscaling: {min_replicas: 5, max_replicas: 4}\n", "autoscaling.max_replicas: max_replicas 4 is below min_replicas 5"),
    ("autoscaling: {target_cpu_percent: 101}\n", "autoscaling.target_cpu_percent: Input should be less than or equal to 100"),
    ("autoscaling: {scale_down_stabilization_seconds: 3601}\n", "autoscaling.scale_down_stabilization_seconds: Input should be less than or equal to 3600"),
    ("autoscaling: {scale_up_policies: []}\n", "autoscaling.scale_up_policies: List should have at least 1 item"),
    ("autoscaling: {scale_up_policies: [{type: Pods, value: 1, period_seconds: 1801}]}\n", "autoscaling.scale_up_policies.0.period_seconds: Input should be less than or equal to 1800"),
    ("autoscaling: {min_replica: 2}\n", "autoscaling.min_replica: unknown key 'min_replica'; did you mean 'min_replicas'?"),
    ("autoscale: {}\n", "production.yaml:2:1: autoscale: unknown key 'autoscale'; did you mean 'autoscaling'?"),
    ("disruption_budget: {min_available: 1, max_unavailable: 1}\n", "disruption_budget: set exactly one of min_available or max_unavailable"),
    ('disruption_budget: {min_available: "150%"}\n', "disruption_budget.min_available:"),
    ("alerts: {error_rate: {threshold: 1.5}}\n", "alerts.error_rate.threshold: Input should be less than 1"),
    ("alerts: {cache_hit_rate: {threshold: 0}}\n", "alerts.cache_hit_rate.threshold: Input should be greater than 0"),
    ("alerts: {error_rate: {for: 5}}\n", "alerts.error_rate.for: a duration needs a unit: write '5s' or '5m', not 5"),
    ("alerts: {error_rate: {for: 5 minutes}}\n", "alerts.error_rate.for: '5 minutes' is not a duration"),
    ("alerts: {error_rate: {severity: page}}\n", "alerts.error_rate.severity: Input should be 'critical', 'warning' or 'info'"),
    ("alerts: {labels: {severity: x}}\n", "alerts.labels: label 'severity' is set by infragen itself"),
    ("rate_limit: {window_seconds: 0}\n", "rate_limit.window_seconds: Input should be greater than or equal to 1"),
    ("rate_limit: {requests: 100, window_seconds: 7}\n", "rate_limit.window_seconds: 100 requests per 7 s is 857 per minute; nginx only takes a whole number"),
    ("rate_limit: {key: binary_remote_addr}\n", "rate_limit.key: expected an nginx variable such as $binary_remote_addr (got 'binary_remote_addr')"),
    ("rate_limit: {requests: \"100\"}\n", "rate_limit.requests: Input should be a valid integer (got '100')"),
    ("database: {load_estimate: 0}\n", "database.load_estimate: Input should be greater than 0"),
    ("load_balancing: {nginx_version: 1.30}\n", 'load_balancing.nginx_version: YAML read 1.30 as the number 1.3, but this setting is text; quote it: "1.30"'),
    ('load_balancing: {nginx_version: "1.16"}\n', "load_balancing.nginx_version: nginx 1.16 is older than the oldest supported version, 1.18"),
    ('load_balancing: {method: ip_hash}\n', "load_balancing.method: Input should be 'least_conn', 'round_robin' or 'random'"),
    ('load_balancing: {method: least_conn}\n', "production.yaml:2:26: load_balancing.method: method least_conn conflicts with session affinity"),
    ('load_balancing: {session_affinity: {cookie: session-id}}\n', "load_balancing.session_affinity.cookie: expected a cookie name of letters, digits and _"),
    ('load_balancing: {session_affinity: {routing_cookie: session_id}}\n', "routing_cookie must differ from the application's cookie"),
    ('load_balancing: {session_affinity: {ttl: 0s}}\n', "load_balancing.session_affinity.ttl: ttl must be at least 1s"),
    ('load_balancing: {servers: []}\n', "load_balancing.servers: required: list the upstream servers, or set "
                                        "load_balancing.discovery [upstream-servers-or-discovery]"),
    ('load_balancing: {servers: ["10.0.0.1:http"]}\n', "load_balancing.servers.0.address: expected host:port such as 10.0.0.11:30080"),
    ('load_balancing: {servers: ["10.0.0.1:80", "10.0.0.1:80"]}\n', "load_balancing.servers: server 10.0.0.1:80 is listed twice"),
    ('load_balancing: {servers: [{address: "10.0.0.1:80", backup: true}, "10.0.0.2:80"]}\n', "backup servers cannot be combined with hash-based session affinity"),
    ("alertmanager: {routes: {critical: pager}}\n", "alertmanager.routes.critical: routes.critical names receiver 'pager', which is not defined"),
    ("alertmanager: {receivers: {x: {}}}\n", "alertmanager.receivers.x: a receiver needs pagerduty or slack"),
    ("alertmanager: {receivers: {oncall: {pagerduty: {routing_key_file: relative/path}}}}\n", "alertmanager.receivers.oncall.pagerduty.routing_key_file: expected an absolute file path"),
    ("service: {selector: {}}\n", "service.selector: an empty selector matches every pod in the namespace"),
    ("service: {name: Fraud_API}\n", "service.name: 'Fraud_API' is not a DNS label"),
])
def test_validation_errors_name_file_line_field(project, write_env, extra, expected) -> None:
    write_env("production", with_minimal(extra))
    found = errors(project)
    assert any(expected in line for line in found), found
    assert all(line.startswith("environments/production.yaml") for line in found), found


def test_errors_from_every_environment_are_reported_together(project, write_env) -> None:
    write_env("production", with_minimal("autoscaling: {min_replicas: 0}\n"))
    write_env("staging", MINIMAL.replace("production", "staging") + "rate_limit: {burst: -1}\n")
    with pytest.raises(InputError) as info:
        Loader(project / "environments").load_many()
    assert {p.location.file for p in info.value.problems} == {"environments/production.yaml", "environments/staging.yaml"}


def test_error_in_a_partial_points_at_the_partial(project, write_env) -> None:
    write_env("_base", "rate_limit:\n  burst: -1\n")
    write_env("production", "extends: [_minimal, _base]\n")
    assert errors(project) == ["environments/_base.yaml:2:10: rate_limit.burst: Input should be greater than or equal to 0 (got -1)"]


def test_error_in_a_tier_default_says_so(project, write_env) -> None:
    write_env("production", with_minimal("autoscaling: {min_replicas: 12}\n"))
    assert errors(project) == ["environments/production.yaml: autoscaling.max_replicas: max_replicas 10 is below "
                               "min_replicas 12 (value from tier default (production))"]


@pytest.mark.parametrize("text, expected", [
    ("service: {name: x}\nload_balancing: {servers: ['1.2.3.4:80']}\n", "environments/production.yaml:1:1: tier: required (development, staging or production)"),
    ("tier: prod\n", "environments/production.yaml:1:7: tier: 'prod' is not a tier; use development, staging or production; did you mean 'production'?"),
    ("tier: production\nservice: {name: x}\n", "environments/production.yaml:1:1: load_balancing: required"),
    ("tier: production\nload_balancing: {servers: ['1.2.3.4:80']}\n", "environments/production.yaml:1:1: service: required"),
])
def test_required_settings(project, write_env, text, expected) -> None:
    write_env("production", text)
    assert errors(project) == [expected]


def test_extends_errors_name_the_chain(project, write_env) -> None:
    write_env("_a", "extends: _b\n")
    write_env("_b", "extends: _a\n")
    write_env("production", "extends: [_minimal, _a]\n")
    assert any("extends cycle: _a -> _b -> _a" in e for e in errors(project))
    write_env("production", "extends: [_minimal, _missing]\n")
    assert any("partial '_missing' not found" in e and "chain: production -> _missing" in e for e in errors(project))
    write_env("production", "extends: base\n")
    assert any("'base' is not a partial name" in e for e in errors(project))


def test_unknown_and_partial_environment_names_are_refused(project, write_env) -> None:
    write_env("production", MINIMAL)
    write_env("_base", "{}\n")
    loader = Loader(project / "environments")
    assert loader.names() == ["production"]
    with pytest.raises(InputError, match="unknown environment 'prodution'; did you mean 'production'"):
        loader.select(["prodution"])
    with pytest.raises(InputError, match="'_base' is a partial"):
        loader.select(["_base"])


def test_diamond_extends_keeps_each_partials_overrides(project, write_env) -> None:
    """_a and _b both extend _base: _b must not re-merge _base on top of _a's overrides."""
    write_env("_base", "rate_limit: {requests: 100, window_seconds: 60}\nalerts: {labels: {team: base}}\n")
    write_env("_a", "extends: _base\nrate_limit: {requests: 120}\n")
    write_env("_b", "extends: _base\nalerts: {labels: {team: b}}\n")
    write_env("production", "extends: [_minimal, _a, _b]\n")
    env = load(project)
    assert env.spec.rate_limit.requests == 120 and env.spec.alerts.labels == {"team": "b"}
    assert str(env.locations[("rate_limit", "requests")]).startswith("environments/_a.yaml:2:")
    assert env.partials == ("environments/_minimal.yaml", "environments/_base.yaml", "environments/_a.yaml",
                            "environments/_b.yaml")


def test_yml_files_are_refused_not_skipped(project, write_env) -> None:
    write_env("production", MINIMAL)
    (project / "environments" / "staging.yml").write_text(MINIMAL)
    with pytest.raises(InputError, match="settings files end in .yaml: rename it to staging.yaml"):
        Loader(project / "environments").names()


def test_headers_name_the_directory_however_it_was_given(project, write_env, monkeypatch) -> None:
    write_env("production", MINIMAL)
    monkeypatch.chdir(project / "environments")
    assert Loader(Path(".")).load("production").source == "environments/production.yaml"
