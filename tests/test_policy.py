"""Cross-artifact policy: one test per rule (failing without it), locations of inherited values, exceptions,
--strict, --format json, and the shipped environments passing every rule without a warning."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import MINIMAL, REPO
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infragen.cli import cli
from infragen.errors import InputError, Problem
from infragen.load import Loader
from infragen.policy import RULES, check, check_environment, hint_for

# A production environment with everything valid and no warning; tests change one thing at a time.
GOOD = MINIMAL


def load(project: Path, name: str = "production"):
    return Loader(project / "environments").load(name)


def findings(project: Path, name: str = "production") -> list[Problem]:
    return check_environment(load(project, name))


def lines(problems: list[Problem]) -> list[str]:
    return [p.format() for p in problems]


def only(problems: list[Problem], rule: str) -> Problem:
    matching = [p for p in problems if p.rule == rule]
    assert len(matching) == 1, lines(problems)
    return matching[0]


def load_problems(project: Path, name: str = "production") -> list[Problem]:
    with pytest.raises(InputError) as info:
        Loader(project / "environments").load_many([name])
    return info.value.problems


def with_minimal(extra: str) -> str:
    """An environment file extending the valid `_minimal` partial, then saying `extra` (its lines start at line 2)."""
    return "extends: _minimal\n" + textwrap.dedent(extra)


@pytest.fixture(autouse=True)
def _minimal_partial(project: Path) -> None:
    (project / "environments" / "_minimal.yaml").write_text(MINIMAL, encoding="utf-8")


def test_a_valid_environment_has_no_findings(project, write_env) -> None:
    write_env("production", GOOD)
    assert findings(project) == []


# --- pdb-blocks-drain -----------------------------------------------------------------------------------

def _issue_example(write_env) -> None:
    write_env("_base", """\
        service: {name: fraud-api}
        load_balancing:
          servers: ["10.0.0.1:8080", "10.0.0.2:8080"]
        database: {max_connections: 500}
        autoscaling:
          min_replicas: 3
        monitoring: {labels: {release: prometheus}}
        rollout: {strategy: rolling}
        """)
    write_env("production", "extends: _base\ntier: production\n" + "#\n" * 10 + "disruption_budget:\n    min_available: 3\n")


def test_pdb_blocking_drains_points_at_both_values_across_files(project, write_env) -> None:
    # The issue's own example, line for line and column for column.
    _issue_example(write_env)
    assert lines(findings(project)) == [
        "environments/production.yaml:14:20: disruption_budget.min_available: 3 >= autoscaling.min_replicas 3 "
        "(environments/_base.yaml:6:17): every node drain would block [pdb-blocks-drain]"]


def test_the_json_example_in_docs_policy_is_the_real_output(project, write_env, runner) -> None:
    _issue_example(write_env)
    docs = (REPO / "docs" / "policy.md").read_text()
    example = json.loads(docs.split("```json\n", 1)[1].split("```", 1)[0])
    result = runner.invoke(cli, ["validate", "--format", "json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout) == example


@pytest.mark.parametrize("budget, blocks", [
    ('{min_available: 2}', False),
    ('{min_available: 3}', True),
    ('{min_available: "66%"}', False),  # 66% of 3 = 1.98, rounded up to 2: one pod may go
    ('{min_available: "67%"}', True),  # 67% of 3 = 2.01, rounded up to 3: none may go
    ('{max_unavailable: 1}', False),
    ('{max_unavailable: "1%"}', False),  # Kubernetes rounds maxUnavailable up too: 1% of 3 allows 1 pod
    ('{max_unavailable: 0}', True),
    ('{max_unavailable: "0%"}', True),
])
def test_pdb_percentages_are_resolved_the_way_kubernetes_rounds(project, write_env, budget, blocks) -> None:
    write_env("production", with_minimal(f"disruption_budget: {budget}\n"))
    assert [p.rule for p in findings(project)] == (["pdb-blocks-drain"] if blocks else [])


def test_pdb_blocking_with_a_value_from_a_partial_says_where_it_came_from(project, write_env) -> None:
    # Every tier's default is maxUnavailable 1: one replica never blocks a drain.
    staging = with_minimal("autoscaling: {min_replicas: 1}\n").replace("extends: _minimal\n", "extends: _minimal\ntier: staging\n")
    write_env("staging", staging)
    assert findings(project, "staging") == []
    # A min_available 1 from a partial does, and the finding points there, naming the replicas' location.
    write_env("_pdb", "disruption_budget: {min_available: 1}\n")
    write_env("staging", staging.replace("extends: _minimal\n", "extends: [_minimal, _pdb]\n"))
    finding = only(findings(project, "staging"), "pdb-blocks-drain")
    assert finding.format().startswith(
        "environments/_pdb.yaml:1:36: disruption_budget.min_available: 1 >= autoscaling.min_replicas 1 "
        "(environments/staging.yaml:3:29): every node drain would block"), finding.format()
    assert "max_unavailable: 1" in finding.hint


# --- fleet-exceeds-database ------------------------------------------------------------------------------

@pytest.mark.parametrize("max_connections, fits", [(434, True), (433, False)])
def test_fleet_must_fit_the_database_less_its_reserve(project, write_env, max_connections, fits) -> None:
    # Production defaults: (10 + ceil(25% of 10) = 3) x (20 + 10) = 390; 434 x 90% = 390.6 -> 390 usable.
    write_env("production", GOOD.replace("max_connections: 500", f"max_connections: {max_connections}"))
    found = findings(project)
    if fits:
        assert found == []
        return
    finding = only(found, "fleet-exceeds-database")
    assert finding.level == "error"
    assert finding.location.file == "environments/production.yaml" and finding.field == "database.max_connections"
    assert "leaves 389 usable" in finding.message and "opens 390" in finding.message
    assert "3 surge pods from rollout.max_surge 25% (default)" in finding.message
    assert "at least 434" in finding.hint


def test_fleet_hint_is_instant_even_for_absurd_replica_counts(project, write_env) -> None:
    """The largest fitting max_replicas is bisected, not searched one by one from 2147483647."""
    write_env("production", with_minimal("autoscaling: {max_replicas: 2147483647}\n"))
    finding = only(findings(project), "fleet-exceeds-database")
    assert "lower autoscaling.max_replicas to 12" in hint_for(finding)  # (12 + 3) x 30 = 450 <= 450 usable


def test_fleet_surge_is_the_environments_own_when_set(project, write_env) -> None:
    # (10 + 1 surge) x 30 = 330: 366 x 90% = 329 is too few, 367 x 90% = 330 fits.
    write_env("production", with_minimal("database: {max_connections: 366}\nrollout: {max_surge: 1}\n"))
    assert [p.rule for p in findings(project)] == ["fleet-exceeds-database"]
    write_env("production", with_minimal("database: {max_connections: 367}\nrollout: {max_surge: 1}\n"))
    assert findings(project) == []


def test_fleet_finding_points_at_values_inherited_from_a_partial(project, write_env) -> None:
    write_env("_db", "database:\n  max_connections: 200\n  reserved_connections_percent: 20\n")
    write_env("production", "extends: [_nodb, _db]\n")
    write_env("_nodb", GOOD.replace("database: {max_connections: 500}\n", ""))
    finding = only(findings(project), "fleet-exceeds-database")
    assert str(finding.location) == "environments/_db.yaml:2:20"
    assert "database.reserved_connections_percent 20% (environments/_db.yaml:3:33)" in finding.message
    assert "leaves 160 usable" in finding.message


# --- receivers ---------------------------------------------------------------------------------------------

def test_unused_receiver_is_a_warning_at_its_definition_in_the_partial(project, write_env) -> None:
    write_env("_alerting", """\
        alertmanager:
          receivers:
            oncall: {pagerduty: {routing_key_secret: {name: pd, key: key}}}
            team-slack: {slack: {api_url_secret: {name: slack, key: url}}}
            spare: {slack: {api_url_secret: {name: spare, key: url}}}
        """)
    write_env("production", "extends: [_minimal, _alerting]\n")
    finding = only(findings(project), "receiver-unused")
    assert finding.level == "warning"
    assert finding.format().startswith("environments/_alerting.yaml:5:5: alertmanager.receivers.spare: warning: receiver 'spare'")


def test_undefined_receiver_is_reported_once_with_its_rule_at_the_route(project, write_env) -> None:
    write_env("production", "extends: _minimal\nalertmanager:\n  routes: {critical: pager}\n")
    problems = load_problems(project)
    assert [p.rule for p in problems] == ["receiver-undefined"]
    assert problems[0].format().startswith(
        "environments/production.yaml:3:22: alertmanager.routes.critical: routes.critical names receiver 'pager', which is not defined")


def test_undefined_default_receiver(project, write_env) -> None:
    write_env("production", "extends: _minimal\nalertmanager: {default_receiver: nobody}\n")
    [problem] = load_problems(project)
    assert (problem.rule, problem.field, problem.location.line) == ("receiver-undefined", "alertmanager.default_receiver", 2)


# --- nginx ---------------------------------------------------------------------------------------------------

def test_method_conflicting_with_hash_affinity_names_the_partial_that_set_the_version(project, write_env) -> None:
    write_env("_nginx", 'load_balancing:\n  nginx_version: "1.24"\n')
    write_env("production", "extends: [_minimal, _nginx]\nload_balancing: {method: least_conn}\n")
    [problem] = load_problems(project)
    assert problem.rule == "nginx-method-conflict"
    assert str(problem.location) == "environments/production.yaml:2:26" and problem.field == "load_balancing.method"
    assert "load_balancing.nginx_version '1.24' set at environments/_nginx.yaml:2:18" in problem.message


def test_method_is_fine_with_sticky_affinity_on_a_recent_nginx(project, write_env) -> None:
    write_env("production", with_minimal('load_balancing: {method: least_conn, nginx_version: "1.29.6"}\n'))
    assert findings(project) == []


@pytest.mark.parametrize("extra, field", [
    ('load_balancing: {servers: ["10.0.0.1:80", {address: "10.0.0.2:80", backup: true}]}\n', "load_balancing.servers.1.backup"),
    ('load_balancing: {method: random, session_affinity: {enabled: false}, '
     'servers: ["10.0.0.1:80", {address: "10.0.0.2:80", backup: true}]}\n', "load_balancing.servers.1.backup"),
])
def test_backup_servers_conflict_with_hashing_and_random(project, write_env, extra, field) -> None:
    write_env("production", "extends: _minimal\n" + extra)
    [problem] = load_problems(project)
    assert (problem.rule, problem.field) == ("nginx-backup-conflict", field)
    assert problem.location.line == 2


def test_backup_is_fine_with_least_conn(project, write_env) -> None:
    write_env("production", with_minimal('load_balancing: {session_affinity: {enabled: false}, '
                                         'servers: ["10.0.0.1:80", "10.0.0.3:80", {address: "10.0.0.2:80", backup: true}]}\n'))
    assert findings(project) == []


def test_rate_not_whole_points_at_the_window_and_names_the_inherited_requests(project, write_env) -> None:
    write_env("_rate", "rate_limit:\n  requests: 100\n")
    write_env("production", "extends: [_minimal, _rate]\nrate_limit: {window_seconds: 7}\n")
    [problem] = load_problems(project)
    assert problem.rule == "nginx-rate-not-integer"
    assert str(problem.location) == "environments/production.yaml:2:30" and problem.field == "rate_limit.window_seconds"
    assert "rate_limit.requests 100 set at environments/_rate.yaml:2:13" in problem.message


@pytest.mark.parametrize("requests, window, rate", [(100, 60, "100r/m"), (10, 1, "10r/s"), (120, 120, "1r/s"), (30, 180, "10r/m")])
def test_whole_rates_pass(project, write_env, requests, window, rate) -> None:
    write_env("production", with_minimal(f"rate_limit: {{requests: {requests}, window_seconds: {window}}}\n"))
    assert load(project).spec.rate_limit.nginx_rate == rate and findings(project) == []


@pytest.mark.parametrize("lb, warns", [
    ('{servers: ["fraud-api.prod.svc:8000"]}', True),  # affinity (the default) over one Service name
    ('{session_affinity: {enabled: false}, servers: ["fraud-api.prod.svc:8000"]}', True),  # least_conn by default
    ('{session_affinity: {enabled: false}, method: round_robin, servers: ["fraud-api.prod.svc:8000"]}', False),
    ('{session_affinity: {enabled: false}, servers: ["10.0.0.1:80", {address: "10.0.0.2:80", backup: true}]}', True),
])
def test_single_server_under_affinity_or_least_conn_is_a_warning(project, write_env, lb, warns) -> None:
    write_env("production", with_minimal(f"load_balancing: {lb}\n"))
    found = findings(project)
    if not warns:
        assert found == []
        return
    finding = only(found, "nginx-single-server")
    assert finding.level == "warning" and finding.field == "load_balancing.servers.0"
    assert finding.location.line == 2


# --- rate-limit-key-spoofable ----------------------------------------------------------------------------

@pytest.mark.parametrize("key, warns", [
    ("$binary_remote_addr", False), ("$remote_addr", False), ("$http_x_forwarded_for", True),
    ("$http_x_real_ip", True), ("$cookie_session_id", True), ("$arg_user", True),
])
def test_rate_limit_keyed_on_client_chosen_values_is_a_warning(project, write_env, key, warns) -> None:
    write_env("production", with_minimal(f"rate_limit: {{key: {key}}}\n"))
    found = findings(project)
    if not warns:
        assert found == []
        return
    finding = only(found, "rate-limit-key-spoofable")
    assert finding.level == "warning" and finding.field == "rate_limit.key" and finding.location.line == 2


# --- the edge against the app (issue 18) ------------------------------------------------------------------

@pytest.mark.parametrize("rate_limit, warns", [
    ("{requests: 100, window_seconds: 60}", False),  # burst unset: requests - 1
    ("{requests: 100, window_seconds: 60, burst: 99}", False),
    ("{requests: 100, window_seconds: 60, burst: 150}", False),  # looser than the app: the app still limits
    ("{requests: 100, window_seconds: 60, burst: 98}", True),
    ("{requests: 100, window_seconds: 60, burst: 20}", True),  # the old shipped value: 21 of 100
    ("{requests: 100, window_seconds: 60, burst: 49, edge_instances: 2}", False),  # 2 x 50
    ("{requests: 100, window_seconds: 60, nodelay: false}", True),  # admits all, but queues them
    ("{requests: 1, window_seconds: 1, nodelay: false}", False),  # burst 0: nothing to queue
])
def test_an_edge_stricter_than_the_app_is_a_warning(project, write_env, rate_limit, warns) -> None:
    write_env("production", with_minimal(f"rate_limit: {rate_limit}\n"))
    found = findings(project)
    if not warns:
        assert found == [], lines(found)
        return
    finding = only(found, "edge-stricter-than-app")
    assert finding.level == "warning" and finding.location.line == 2, finding.format()


def test_edge_stricter_names_the_numbers_and_can_be_acknowledged(project, write_env) -> None:
    write_env("production", with_minimal("rate_limit: {requests: 100, window_seconds: 60, burst: 20}\n"))
    finding = only(findings(project), "edge-stricter-than-app")
    assert finding.field == "rate_limit.burst"
    assert "nginx admits 21 requests at once" in finding.message and "rate_limit.requests 100" in finding.message
    write_env("production", with_minimal("rate_limit: {requests: 100, window_seconds: 60, burst: 20}\n"
                                         "policy: {acknowledge: [edge-stricter-than-app]}\n"))
    assert only(findings(project), "edge-stricter-than-app").level == "info"


@pytest.mark.parametrize("extra, fails, field", [
    ("autoscaling: {target_cpu_percent: 79}\n", False, None),
    ("autoscaling: {target_cpu_percent: 80}\n", True, "autoscaling.target_cpu_percent"),
    ("throttling: {cpu_percent: 50}\n", True, "throttling.cpu_percent"),
    ("autoscaling: {target_memory_percent: 80}\n", True, "autoscaling.target_memory_percent"),
    ("autoscaling: {target_memory_percent: 80}\nthrottling: {memory_percent: 81}\n", False, None),
    ("throttling: {memory_percent: 10}\n", False, None),  # no memory target: nothing to throttle before
])
def test_throttling_starts_above_the_hpa_targets(project, write_env, extra, fails, field) -> None:
    write_env("production", with_minimal(extra))
    found = findings(project)
    if not fails:
        assert found == [], lines(found)
        return
    finding = only(found, "throttle-before-scale")
    assert finding.level == "error" and finding.field == field, finding.format()


@pytest.mark.parametrize("extra, warns", [
    ("", False),  # 3h affinity, 24h sessions
    ("sessions: {ttl: 2h}\n", True),
    ("sessions: {ttl: 3h}\n", False),
    ("sessions: {ttl: 2h}\nload_balancing: {session_affinity: {enabled: false}}\n", False),
    ('load_balancing: {nginx_version: "1.29.6", session_affinity: {ttl: 2d}}\n', True),
])
def test_affinity_must_not_outlive_the_session(project, write_env, extra, warns) -> None:
    write_env("production", with_minimal(extra))
    found = findings(project)
    assert [p.rule for p in found] == (["affinity-outlives-session"] if warns else []), lines(found)


@pytest.mark.parametrize("lb, warns", [
    ('{servers: ["10.0.0.1:30080", "10.0.0.2:30080"]}', True),  # affinity (default) through NodePorts
    ('{servers: ["10.0.0.1:32767", "10.0.0.2:8080"]}', True),
    ('{servers: ["10.0.0.1:29999", "10.0.0.2:32768"]}', False),
    ('{servers: ["10.0.0.1:30080", "10.0.0.2:30080"], session_affinity: {enabled: false}}', True),  # least_conn
    ('{servers: ["10.0.0.1:30080", "10.0.0.2:30080"], session_affinity: {enabled: false}, method: round_robin}', False),
])
def test_affinity_through_nodeports_is_a_warning_naming_both_ways_out(project, write_env, lb, warns) -> None:
    write_env("production", with_minimal(f"load_balancing: {lb}\n"))
    found = findings(project)
    if not warns:
        assert found == [], lines(found)
        return
    finding = only(found, "affinity-through-nodeport")
    assert finding.level == "warning" and finding.field == "load_balancing.servers.0"
    hint = hint_for(finding) or ""
    assert "externalTrafficPolicy: Local" in hint and "still spread over that node's pods" in hint
    assert "headless Service" in hint and "one upstream peer per pod" in hint


def test_a_port_less_server_takes_the_service_port(project, write_env) -> None:
    write_env("production", with_minimal('service: {port: 30500}\nload_balancing: {servers: ["10.0.0.1", "10.0.0.2"]}\n'))
    assert only(findings(project), "affinity-through-nodeport")


@pytest.mark.parametrize("lb, rule, field", [
    ('{nginx_version: "1.27.3", discovery: {service: api.ns.svc.cluster.local}}', "upstream-servers-or-discovery",
     "load_balancing.discovery"),
    ('{servers: [], discovery: {service: api.ns.svc.cluster.local}}', "upstream-resolve-version",
     "load_balancing.discovery"),
])
def test_discovery_is_refused_beside_servers_and_before_nginx_1_27_3(project, write_env, lb, rule, field) -> None:
    write_env("production", with_minimal(f"load_balancing: {lb}\n"))
    problem = only(load_problems(project), rule)
    assert problem.field == field and problem.location.line == 2, problem.format()
    if rule == "upstream-resolve-version":
        assert "1.27.3" in problem.message


def test_discovery_writes_a_resolve_upstream_without_affinity_warnings(project, write_env) -> None:
    write_env("production", with_minimal('load_balancing: {nginx_version: "1.27.3", servers: [], discovery: '
                                         '{service: api-hl.ns.svc.cluster.local, port: 8080}}\n'))
    assert findings(project) == []
    env = load(project)
    assert env.edge.upstream_servers == [{"address": "api-hl.ns.svc.cluster.local:8080",
                                     "params": ["resolve", "max_fails=3", "fail_timeout=10s"]}]
    assert env.edge.resolver == "kube-dns.kube-system.svc.cluster.local"


# --- prometheus-rate-window ------------------------------------------------------------------------------

@pytest.mark.parametrize("alerts, fails", [
    ("{rate_window: 2m}", False),  # exactly 4 x 30s
    ("{rate_window: 1m}", True),
    ("{rate_window: 1m, scrape_interval: 15s}", False),
    ("{scrape_interval: 2m}", True),  # the default 5m window < 8m
])
def test_rate_window_is_at_least_four_scrape_intervals(project, write_env, alerts, fails) -> None:
    write_env("production", with_minimal(f"alerts: {alerts}\n"))
    found = findings(project)
    assert [p.rule for p in found] == (["prometheus-rate-window"] if fails else [])
    if fails:
        assert found[0].location.line == 2 and "4 x" in found[0].message


# --- production tier ------------------------------------------------------------------------------------

def test_production_needs_two_replicas_but_development_does_not(project, write_env) -> None:
    write_env("production", with_minimal("autoscaling: {min_replicas: 1}\ndisruption_budget: {max_unavailable: 1}\n"))
    rules = [p.rule for p in findings(project)]
    assert rules == ["production-min-replicas", "production-pdb"]
    write_env("development", with_minimal("autoscaling: {min_replicas: 1}\n").replace("extends: _minimal\n", "extends: _minimal\ntier: development\n"))
    assert findings(project, "development") == []


def test_production_pdb_must_protect_a_pod(project, write_env) -> None:
    write_env("production", with_minimal("disruption_budget: {min_available: 0}\n"))
    finding = only(findings(project), "production-pdb")
    assert finding.field == "disruption_budget.min_available" and finding.level == "error"
    write_env("production", with_minimal('disruption_budget: {max_unavailable: "100%"}\n'))
    assert only(findings(project), "production-pdb").field == "disruption_budget.max_unavailable"
    write_env("staging", with_minimal("disruption_budget: {min_available: 0}\n").replace("extends: _minimal\n", "extends: _minimal\ntier: staging\n"))
    assert findings(project, "staging") == []


def test_production_pdb_warns_when_a_drain_may_evict_more_than_one_pod_at_min_replicas(project, write_env) -> None:
    write_env("production", with_minimal("disruption_budget: {min_available: 1}\n"))  # 3 replicas: 2 may go
    finding = only(findings(project), "production-pdb")
    assert finding.level == "warning" and finding.field == "disruption_budget.min_available"
    assert "lets a drain evict 2 of autoscaling.min_replicas 3 (tier default (production)) pods at once" \
        in finding.message, finding.message
    write_env("production", with_minimal('disruption_budget: {max_unavailable: "50%"}\n'))  # 50% of 3 rounds up: 2
    assert only(findings(project), "production-pdb").level == "warning"
    for budget in ("{max_unavailable: 1}", "{min_available: 2}", '{max_unavailable: "33%"}'):
        write_env("production", with_minimal(f"disruption_budget: {budget}\n"))
        assert findings(project) == [], budget
    # An exception in the environment's own file keeps it as a note: it never fails --strict.
    write_env("production", with_minimal("disruption_budget: {min_available: 1}\npolicy: {allow: [production-pdb]}\n"))
    assert [(p.rule, p.level) for p in findings(project)] == [("production-pdb", "info")]


def test_production_critical_route_must_page(project, write_env) -> None:
    write_env("production", with_minimal("alertmanager: {routes: {critical: team-slack}}\n"))
    finding = only(findings(project), "production-paging")
    assert finding.field == "alertmanager.routes.critical" and finding.location.line == 2
    assert "no pagerduty" in finding.message


def test_production_needs_a_critical_alert(project, write_env) -> None:
    write_env("_quiet", "alerts:\n  db_pool_utilization: {severity: warning}\n  metrics_missing: {severity: warning}\n")
    write_env("production", "extends: [_minimal, _quiet]\n")
    finding = only(findings(project), "production-paging")
    assert str(finding.location) == "environments/_quiet.yaml:2:35" and "no alert has severity critical" in finding.message


# --- exceptions -------------------------------------------------------------------------------------------

def test_an_exception_in_the_environment_file_turns_the_error_into_a_warning(project, write_env) -> None:
    write_env("production", with_minimal("autoscaling: {min_replicas: 1}\ndisruption_budget: {max_unavailable: 1}\n"
                                         "policy: {allow: [production-min-replicas, production-pdb]}\n"))
    found = findings(project)
    assert [(p.rule, p.level) for p in found] == [("production-min-replicas", "warning"), ("production-pdb", "warning")]
    assert "allowed by the exception at environments/production.yaml:4:18" in found[0].message


def test_an_exception_in_a_partial_does_not_count(project, write_env) -> None:
    write_env("_lenient", "policy: {allow: [production-min-replicas]}\n")
    one_replica = "autoscaling: {min_replicas: 1}\ndisruption_budget: {max_unavailable: 1}\n"
    write_env("production", "extends: [_minimal, _lenient]\n" + one_replica)
    found = findings(project)
    assert [(p.rule, p.level) for p in found] == [("production-min-replicas", "error"), ("production-pdb", "error")]
    assert "the exception at environments/_lenient.yaml:1:18 does not count" in found[0].message
    # The environment's own list replaces the partial's (lists replace when layered).
    write_env("production", "extends: [_minimal, _lenient]\n" + one_replica + "policy: {allow: [production-pdb]}\n")
    found = findings(project)
    assert [(p.rule, p.level) for p in found] == [("production-min-replicas", "error"), ("production-pdb", "warning")]


def test_an_exception_that_is_not_needed_warns(project, write_env) -> None:
    write_env("production", with_minimal("policy: {allow: [production-paging]}\n"))
    finding = only(findings(project), "policy-allow-unused")
    assert (finding.level, str(finding.location)) == ("warning", "environments/production.yaml:2:18")
    write_env("staging", with_minimal("policy: {allow: [production-pdb]}\n").replace("extends: _minimal\n", "extends: _minimal\ntier: staging\n"))
    assert "staging-tier environment" in only(findings(project, "staging"), "policy-allow-unused").message


def test_only_production_rules_can_be_allowed(project, write_env) -> None:
    write_env("production", with_minimal("policy: {allow: [pdb-blocks-drain]}\n"))
    [problem] = load_problems(project)
    assert problem.field == "policy.allow.0" and "production-min-replicas" in problem.message


# --- inline-secret ---------------------------------------------------------------------------------------

SLACK_HOOK = "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


@pytest.mark.parametrize("extra, field", [
    # The likeliest mistake: the URL itself under a key that does not exist. Both problems are reported.
    (f"alertmanager:\n  receivers:\n    team-slack: {{slack: {{api_url: '{SLACK_HOOK}'}}}}\n",
     "alertmanager.receivers.team-slack.slack.api_url"),
    ("alerts: {labels: {pd: e93facc04764012d7bfb002500d5d1a6}}\n", "alerts.labels.pd"),
    ("alerts: {labels: {token: xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx}}\n", "alerts.labels.token"),
    ("alerts: {labels: {aws: AKIAIOSFODNN7EXAMPLE}}\n", "alerts.labels.aws"),
    ("alerts: {runbook_url: 'https://admin:hunter2@runbooks.example.com/x'}\n", "alerts.runbook_url"),
    ("alerts: {labels: {key: Zx8Qp2Lm9Rt4Vw7Yb3Nc6Kd1}}\n", "alerts.labels.key"),
    ("alertmanager:\n  receivers:\n    oncall: {pagerduty: {routing_key_file: /etc/R0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5}}\n",
     "alertmanager.receivers.oncall.pagerduty.routing_key_file"),
])
def test_inline_secrets_are_errors_that_never_repeat_the_secret(project, write_env, extra, field) -> None:
    write_env("production", "extends: _minimal\n" + extra)
    problems = load_problems(project)
    secret = [p for p in problems if p.rule == "inline-secret"]
    assert [p.field for p in secret] == [field], lines(problems)
    assert secret[0].location.file == "environments/production.yaml" and secret[0].location.line >= 2
    value = extra.split(":", 1)[1]
    for token in re.findall(r"[A-Za-z0-9]{16,}", value):
        assert token not in secret[0].format()


def test_a_secret_in_a_partial_is_reported_there_even_when_overridden(project, write_env) -> None:
    write_env("_base", f"alerts:\n  runbook_url: {SLACK_HOOK}\n")
    write_env("production", "extends: [_minimal, _base]\nalerts: {runbook_url: 'https://runbooks.example.com/x'}\n")
    [problem] = load_problems(project)
    assert (problem.rule, str(problem.location), problem.field) == ("inline-secret", "environments/_base.yaml:2:16", "alerts.runbook_url")
    assert "Slack webhook URL" in problem.message


@pytest.mark.parametrize("value", ["simple378-production", "/etc/alertmanager/secrets/pagerduty-routing-key",
                                   "123e4567-e89b-12d3-a456-426614174000", "fraud-detection-platform-team-2024",
                                   "https://runbooks.example.com/fraud-api/v2",
                                   "https://github.com/acme/ops/blob/4b825dc642cb6eb9a060e54bf8d69288fbee4904/fraud-api.md"])
def test_ordinary_values_are_not_secrets(project, write_env, value) -> None:
    write_env("production", with_minimal(f"alerts: {{labels: {{x: '{value}'}}}}\n"))
    assert findings(project) == []


# --- catalogue, docs, shipped environments ---------------------------------------------------------------

def test_every_rule_is_documented_with_its_level() -> None:
    docs = (REPO / "docs" / "policy.md").read_text()
    for rule in RULES.values():
        assert re.search(rf"^### `{re.escape(rule.id)}` \({rule.level}", docs, re.MULTILINE), rule.id
    documented = set(re.findall(r"^### `([a-z-]+)`", docs, re.MULTILINE))
    assert documented == set(RULES)
    assert "docs/policy.md" in (REPO / "README.md").read_text()


def test_load_stage_rules_are_raised_as_objects_by_the_code_that_owns_them() -> None:
    """Each load-stage rule is a constant of infragen.rules that the models or the secret scan raise by name: its
    id string is written once, in its declaration."""
    from infragen import rules
    sources = "".join((REPO / "infragen" / name).read_text() for name in ("models/settings.py", "secrets.py"))
    constants = {value.id: name for name, value in vars(rules).items() if isinstance(value, rules.Rule)}
    for rule in RULES.values():
        if rule.stage == "load":
            assert constants[rule.id] in sources, rule.id
    package = "".join(p.read_text() for p in (REPO / "infragen").rglob("*.py") if p.name != "rules.py")
    assert not [r.id for r in RULES.values() if f'"{r.id}"' in package and r.stage == "load"]


def test_shipped_environments_pass_every_rule_without_a_warning() -> None:
    envs = Loader(REPO / "environments").load_many()
    assert [e.name for e in envs] == ["development", "production", "staging"]
    found = check(envs)
    # Only what they acknowledge, as notes that never fail: staging's canary steps at a few replicas, and every
    # environment's affinity through NodePorts (_base.yaml says why).
    assert {(f.environment, f.rule, f.level) for f in found} == {("staging", "canary-step-share", "info")} | {
        (name, "affinity-through-nodeport", "info") for name in ("development", "production", "staging")}


# --- command line ------------------------------------------------------------------------------------------

def _pdb_error(write_env) -> None:
    write_env("production", with_minimal("disruption_budget: {min_available: 3}\n"))


def _single_server_warning(write_env) -> None:
    write_env("production", GOOD.replace('["10.0.0.1:8080", "10.0.0.2:8080"]', '["10.0.0.1:8080"]'))


@pytest.mark.parametrize("command", ["build", "check", "validate", "diff"])
def test_errors_stop_every_command_before_anything_is_written(project, write_env, runner, command) -> None:
    _pdb_error(write_env)
    result = runner.invoke(cli, [command])
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        "environments/production.yaml:2:36: disruption_budget.min_available: 3 >= autoscaling.min_replicas 3 "
        "(tier default (production)): every node drain would block [pdb-blocks-drain]; "
        "fix: set disruption_budget.min_available to at most 2, or use max_unavailable: 1",
        "infragen: 1 problem" + ("; nothing was written" if command == "build" else "")]  # the others never write
    assert list((project / "output").iterdir()) == []


@pytest.mark.parametrize("command", ["build", "validate"])
def test_warnings_are_printed_and_do_not_fail(project, write_env, runner, command) -> None:
    _single_server_warning(write_env)
    result = runner.invoke(cli, [command])
    assert result.exit_code == 0, result.output
    assert "load_balancing.servers.0: warning:" in result.stderr and "[nginx-single-server]" in result.stderr


def test_strict_makes_warnings_fail_from_flag_environment_or_pyproject(project, write_env, runner, monkeypatch) -> None:
    _single_server_warning(write_env)
    result = runner.invoke(cli, ["build", "--strict"])
    assert result.exit_code == 2 and result.stderr.splitlines()[-1] == "infragen: 1 problem; nothing was written"
    assert list((project / "output").iterdir()) == []
    monkeypatch.setenv("INFRAGEN_STRICT", "1")
    assert runner.invoke(cli, ["validate"]).exit_code == 2
    assert runner.invoke(cli, ["validate", "--no-strict"]).exit_code == 0
    monkeypatch.delenv("INFRAGEN_STRICT")
    (project / "pyproject.toml").write_text("[tool.infragen]\nstrict = true\n")
    assert runner.invoke(cli, ["check"]).exit_code == 2


def test_json_lists_findings_for_ci(project, write_env, runner) -> None:
    write_env("production", GOOD.replace('["10.0.0.1:8080", "10.0.0.2:8080"]', '["10.0.0.1:8080"]')
              + "disruption_budget: {min_available: 3}\n")
    result = runner.invoke(cli, ["validate", "--format", "json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert [(f["rule"], f["level"], f["file"], f["line"], f["column"]) for f in report["findings"]] == [
        ("pdb-blocks-drain", "error", "environments/production.yaml", 8, 36),
        ("nginx-single-server", "warning", "environments/production.yaml", 4, 13),
    ]
    assert all(f["hint"] and f["environment"] == "production" for f in report["findings"])


def test_json_on_success_and_for_load_errors(project, write_env, runner) -> None:
    write_env("production", GOOD)
    result = runner.invoke(cli, ["build", "--format", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"ok": True, "strict": False, "findings": []}
    assert "created" in result.stderr
    write_env("production", with_minimal("rate_limit: {window_seconds: 7}\n"))
    result = runner.invoke(cli, ["check", "--format", "json"])
    assert result.exit_code == 2
    [finding] = json.loads(result.stdout)["findings"]
    assert finding["rule"] == "nginx-rate-not-integer" and finding["line"] == 2 and finding["hint"]


@pytest.mark.slow  # a real interpreter per command
def test_shipped_project_passes_strict_in_a_real_process(shipped_project) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for command in (["validate", "--strict", "--format", "json"], ["check", "--strict"]):
        proc = subprocess.run([sys.executable, "-m", "infragen", *command], cwd=shipped_project, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "warning" not in proc.stderr
    findings = json.loads(subprocess.run([sys.executable, "-m", "infragen", "validate", "--format", "json"],
                                         cwd=shipped_project, env=env, capture_output=True, text=True,
                                         timeout=60).stdout)["findings"]
    assert {(f["rule"], f["level"]) for f in findings} == {("canary-step-share", "info"),
                                                           ("affinity-through-nodeport", "info")}


def test_json_is_one_document_even_when_a_later_step_fails(project, write_env, runner) -> None:
    _single_server_warning(write_env)
    (project / "output" / "production").mkdir()
    (project / "output" / "production" / "app.env").write_text("hand-written\n")
    result = runner.invoke(cli, ["build", "--format", "json"])
    assert result.exit_code == 2
    report = json.loads(result.stdout)  # a second document would not parse
    assert report["ok"] is False
    assert [f["rule"] for f in report["findings"]] == ["nginx-single-server", None]
    assert report["findings"][1]["file"].endswith("output/production/app.env")


def test_check_reports_json_and_exits_1_when_stale(project, write_env, runner) -> None:
    write_env("production", GOOD)
    result = runner.invoke(cli, ["check", "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"ok": True, "strict": False, "findings": []}
    assert "missing" in result.stderr


def test_undefined_default_route_points_at_the_receivers_that_dropped_it(project, write_env) -> None:
    write_env("production", "extends: _minimal\nalertmanager:\n  receivers:\n    oncall: {pagerduty: {routing_key_file: /s/pd}}\n")
    [problem] = load_problems(project)
    assert problem.rule == "receiver-undefined"
    assert problem.format().startswith(
        "environments/production.yaml:3:3: alertmanager.receivers: routes.warning names receiver 'team-slack', which is not "
        "defined (receivers: oncall) (alertmanager.routes.warning is the default)")


def test_rate_not_whole_points_at_the_partial_that_set_the_window(project, write_env) -> None:
    write_env("_rate", "rate_limit:\n  window_seconds: 7\n")
    write_env("production", "extends: [_minimal, _rate]\nrate_limit: {requests: 100}\n")
    [problem] = load_problems(project)
    assert (problem.rule, problem.field, str(problem.location)) == ("nginx-rate-not-integer", "rate_limit.window_seconds",
                                                                     "environments/_rate.yaml:2:19")
    assert "rate_limit.requests 100 set at environments/production.yaml:2:24" in problem.message


@pytest.mark.slow  # 60 generated fleets
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(max_replicas=st.integers(3, 40), pool=st.integers(1, 60), overflow=st.integers(0, 30),
       surge=st.one_of(st.integers(0, 5), st.integers(0, 100).map(lambda n: f"{n}%")), reserve=st.integers(0, 90))
def test_fleet_hint_names_the_smallest_max_connections_that_fits(project, write_env, max_replicas, pool, overflow,
                                                                 surge, reserve) -> None:
    def env_with(max_connections: int, max_replicas: int = max_replicas) -> list[Problem]:
        write_env("production", with_minimal(
            f"autoscaling: {{max_replicas: {max_replicas}}}\n"
            f"database: {{pool_size: {pool}, max_overflow: {overflow}, max_connections: {max_connections}, "
            f"reserved_connections_percent: {reserve}}}\n"
            f"rollout: {{max_surge: {surge if isinstance(surge, int) else repr(surge)}, max_unavailable: 1}}\n"))
        return findings(project)

    [finding] = env_with(1)
    needed = int(re.search(r"at least ([0-9]+)", finding.hint).group(1))
    assert env_with(needed) == []
    assert [p.rule for p in env_with(needed - 1)] == ["fleet-exceeds-database"]
    # With a database of half that, the hint also names the largest max_replicas that fits, when one does.
    [finding] = env_with(needed // 2)
    fitting = re.search(r"lower autoscaling.max_replicas to ([0-9]+)", finding.hint)
    if fitting:
        assert env_with(needed // 2, int(fitting.group(1))) == []
        assert [p.rule for p in env_with(needed // 2, int(fitting.group(1)) + 1)] == ["fleet-exceeds-database"]


def test_text_summary_counts_every_line_printed(project, write_env, runner) -> None:
    _single_server_warning(write_env)
    (project / "output" / "production").mkdir()
    (project / "output" / "production" / "app.env").write_text("hand-written\n")
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert "[nginx-single-server]" in lines[0] and "not generated by infragen" in lines[1]
    assert lines[2:] == ["infragen: 2 problems; nothing was written"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tier=st.sampled_from(["development", "staging", "production"]), replicas=st.tuples(st.integers(1, 6), st.integers(0, 6)),
       budget=st.one_of(st.integers(0, 8).map(lambda n: f"min_available: {n}"), st.integers(0, 8).map(lambda n: f"max_unavailable: {n}"),
                        st.integers(0, 100).map(lambda n: f'min_available: "{n}%"'),
                        st.integers(0, 100).map(lambda n: f'max_unavailable: "{n}%"')),
       servers=st.integers(1, 3), affinity=st.booleans(), critical=st.sampled_from(["oncall", "team-slack"]),
       pool_severity=st.sampled_from(["critical", "warning", "info"]), window=st.sampled_from(["1m", "2m", "5m"]),
       allow=st.lists(st.sampled_from(["production-min-replicas", "production-pdb", "production-paging"]), unique=True))
def test_every_finding_is_located_and_catalogued(project, write_env, tier, replicas, budget, servers, affinity, critical,
                                                 pool_severity, window, allow) -> None:
    addresses = ", ".join(f'"10.0.0.{i}:80"' for i in range(1, servers + 1))
    write_env("production", with_minimal(f"""\
        tier: {tier}
        autoscaling: {{min_replicas: {replicas[0]}, max_replicas: {replicas[0] + replicas[1]}}}
        disruption_budget: {{{budget}}}
        load_balancing: {{session_affinity: {{enabled: {str(affinity).lower()}}}, servers: [{addresses}]}}
        alerts: {{rate_window: {window}, db_pool_utilization: {{severity: {pool_severity}}}}}
        alertmanager: {{routes: {{critical: {critical}}}}}
        policy: {{allow: [{", ".join(allow)}]}}
        """))
    for finding in findings(project):
        assert finding.rule in RULES and RULES[finding.rule].stage == "policy"
        assert finding.location.file in ("environments/production.yaml", "environments/_minimal.yaml")
        assert finding.location.line is not None, finding.format()  # every rule here involves a value someone wrote
        # an allowed production warning (production-pdb's evictions) is a note
        assert finding.level in ("error", "warning") or (finding.level == "info" and finding.rule in allow)
        assert "\n" not in finding.format()


# --- burn-gate-above-page, burn-gate-without-objective ----------------------------------------------------

def _budget_gated(max_burn_rate: float, slo: str = "") -> str:
    return with_minimal(f"""\
        rollout:
          strategy: blue-green
          prometheus_url: http://prometheus.monitoring.svc:9090
          gates: {{max_burn_rate: {max_burn_rate}}}
        {slo}""")


@pytest.mark.parametrize("limit, period, warns", [
    (6, "30d", False),  # the 6h page's factor: nothing that passes pages
    (6.5, "30d", True),
    (12, "60d", False),  # 5% of a 60d budget in 6h is 12x
    (12.5, "60d", True),
])
def test_a_budget_gate_looser_than_the_fast_page_warns(project, write_env, limit, period, warns) -> None:
    write_env("production", _budget_gated(limit, f"slo: {{period: {period}}}\n"))
    found = [p for p in findings(project) if p.rule == "burn-gate-above-page"]
    if not warns:
        assert found == [], lines(found)
        return
    [finding] = found
    assert finding.level == "warning" and finding.location.line == 5 and finding.field == "rollout.gates.max_burn_rate"
    page = "6" if period == "30d" else "12"
    assert f"page from {page}x" in finding.message and f"at most {page}" in (finding.hint or ""), finding.format()
    assert f"over slo.period {period} (" in finding.message, finding.format()  # as written, not 4w2d or seconds


def test_a_budget_gate_without_an_objective_warns_and_is_not_written(project, write_env) -> None:
    write_env("production", _budget_gated(6, "slo: {enabled: false}\n"))
    env = load(project)
    finding = only(check_environment(env), "burn-gate-without-objective")
    assert finding.level == "warning" and finding.location.line == 5, finding.format()
    assert env.rollout.burn_gates == [] and [q[0] for q in env.rollout.gate_queries] == ["error-rate", "latency-p95"]


def test_the_budget_gate_measures_each_enabled_objective_on_the_new_pods_only(project, write_env) -> None:
    write_env("production", _budget_gated(3, "slo: {latency: {enabled: false}}\n"))
    env = load(project)
    assert [p.rule for p in check_environment(env) if p.rule.startswith("burn-gate")] == []
    [(name, query, limit)] = [q for q in env.rollout.gate_queries if q[0].endswith("-burn-rate")]
    assert name == "availability-burn-rate" and limit == 3
    # the SLO's own SLI (its exclusions), narrowed to the new pods, over the gate window, divided by the budget
    assert query.count('rollouts_pod_template_hash="{{args.canary-hash}}"') == 3 and query.endswith("/ 0.001")
    assert query.count('endpoint!~"/health|/health/detailed|/metrics"') == 3 and query.count("[2m]") == 3
