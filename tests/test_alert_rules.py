"""The alert rules and their promtool tests, built from an environment's settings (infragen.models.alerts and
alert_tests), on their own: what an on-call engineer relies on (which alerts exist, what each selects, which
setting moves which number) and that the generated tests really pin the rules (a rule with another threshold
fails them in promtool)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import MINIMAL, SHIPPED_ENVIRONMENTS
from tools import require

from infragen.load import Loader
from infragen.models.alert_tests import expand_annotation
from infragen.models.alerts import promql_string
from infragen.render import render_environment

CONTRACT = ["HighErrorRate", "HighLatencyP95", "DatabasePoolNearExhaustion", "LowCacheHitRate", "UnhandledExceptions",
            "SlowDatabaseQueries", "RateLimitExceeded", "MetricsMissing"]
GATED = 'rollout: {strategy: canary, prometheus_url: "http://prometheus.monitoring.svc:9090"}\n'


def load(project: Path, write_env, text: str):
    write_env("production", text)
    return Loader(project / "environments").load("production")


def by_name(env) -> dict:
    return {rule.name: rule for rule in env.monitoring.alert_rules}


def test_the_alert_names_are_the_contract_and_a_gated_rollout_adds_rollout_stuck(project, write_env) -> None:
    rolling = load(project, write_env, MINIMAL)
    assert [r.name for r in rolling.monitoring.alert_rules] == CONTRACT
    canary = load(project, write_env, MINIMAL.replace("rollout: {strategy: rolling}\n", GATED))
    assert [r.name for r in canary.monitoring.alert_rules] == CONTRACT + ["RolloutStuck"]
    stuck = by_name(canary)["RolloutStuck"]
    assert 'namespace="fraud-prod"' in stuck.expr and f'name="{canary.service_name}"' in stuck.expr


@pytest.mark.parametrize("name", sorted(Loader(SHIPPED_ENVIRONMENTS).names()))
def test_every_query_selects_the_service_by_job_and_namespace_and_nothing_wider(name: str) -> None:
    env = Loader(SHIPPED_ENVIRONMENTS).load(name)
    for rule in env.monitoring.alert_rules:
        if rule.name == "RolloutStuck":
            continue
        selectors = [part.split("}")[0] for part in rule.query.split("{")[1:] if "=" in part.split("}")[0]]
        assert selectors, rule.name
        for sel in selectors:  # every series selector, not only the first
            assert f'job="{env.service_name}"' in sel and f'namespace="{env.namespace}"' in sel, (rule.name, sel)


def test_each_setting_moves_its_own_rule(project, write_env) -> None:
    env = load(project, write_env, MINIMAL + (
        "alerts:\n"
        "  rate_window: 10m\n"
        "  error_rate: {threshold: 0.02, for: 3m, severity: critical}\n"
        "  latency_p95: {threshold_seconds: 0.25}\n"
        "  cache_hit_rate: {threshold: 0.8}\n"
        "  labels: {team: fraud}\n"
        "  runbook_url: https://runbooks.example.com/fraud-api/\n"))
    rules = by_name(env)
    error = rules["HighErrorRate"]
    assert error.expr.endswith(" > 0.02") and error.for_ == "3m" and error.severity == "critical"
    assert "2%" in error.summary and "[10m]" in error.query and "[5m]" not in error.query
    assert rules["HighLatencyP95"].expr.endswith(" > 0.25")
    assert rules["LowCacheHitRate"].expr.endswith(" < 0.8")  # fires below
    assert dict(error.labels) == {"severity": "critical", "service": env.service_name, "namespace": "fraud-prod",
                                  "environment": "production", "team": "fraud"}
    assert error.runbook_url == "https://runbooks.example.com/fraud-api#HighErrorRate"
    untouched = load(project, write_env, MINIMAL)
    assert by_name(untouched)["HighLatencyP95"].expr != rules["HighLatencyP95"].expr
    assert by_name(untouched)["RateLimitExceeded"].expr == rules["RateLimitExceeded"].expr.replace("[10m]", "[5m]")


def test_the_pool_alert_divides_by_what_each_instance_may_open(project, write_env) -> None:
    small = load(project, write_env, MINIMAL)
    large = load(project, write_env, MINIMAL.replace("database: {max_connections: 500}",
                                                     "database: {max_connections: 500, base_pool_size: 30}"))
    for env in (small, large):
        capacity = env.capacity.pool_size + env.capacity.pool_overflow
        rule = by_name(env)["DatabasePoolNearExhaustion"]
        assert rule.query.endswith(f" / {capacity}") and f"of its {capacity} database connections" in rule.description
    assert small.capacity.pool_size != large.capacity.pool_size


def test_metrics_missing_has_no_threshold_and_fires_on_absence(project, write_env) -> None:
    rule = by_name(load(project, write_env, MINIMAL))["MetricsMissing"]
    assert rule.threshold is None and rule.expr == 'absent(up{job="fraud-api",namespace="fraud-prod"} == 1)'


def test_label_values_become_safe_promql_strings() -> None:
    assert promql_string('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


@pytest.mark.parametrize(("template", "value", "text"), [
    # Prometheus' template functions (template/template.go) for the values the alerts produce
    ("{{ $value | humanizePercentage }}", 0.0612, "6.12%"),
    ("{{ $value | humanizeDuration }}", 90.0, "1m 30s"),
    ("{{ $value | humanizeDuration }}", 0.25, "250ms"),
    ("{{ $value | humanizeDuration }}", 90061.0, "1d 1h 1m 1s"),
    ("{{ $value | humanize }}", 1234.0, "1.234k"),
    ("{{ $value | humanize }}", 0.5, "500m"),
    ("pool on {{ $labels.instance }}", 0.0, "pool on pod-a:8000"),
])
def test_annotations_are_expanded_as_prometheus_expands_them(template: str, value: float, text: str) -> None:
    assert expand_annotation(template, value, {"instance": "pod-a:8000"}) == text


def test_every_threshold_alert_is_tested_firing_past_it_and_silent_short_of_it(project, write_env) -> None:
    env = load(project, write_env, MINIMAL.replace("rollout: {strategy: rolling}\n", GATED))
    tests = env.monitoring.alert_tests
    for rule in env.monitoring.alert_rules:
        checks = [c for g in tests.groups for c in g.checks if c.alertname == rule.name]
        firing = [c for c in checks if c.expected]
        assert firing and any(not c.expected for c in checks), rule.name  # both ways, for every alert
        for check in firing:
            [alert] = check.expected
            assert dict(alert.labels)["severity"] == rule.severity and dict(alert.labels)["namespace"] == "fraud-prod"


def _promtool_test(promtool: str, directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, "test", "rules", "alerts.test.yaml"], cwd=directory / "tests",
                          capture_output=True, text=True)


@pytest.mark.tools
@pytest.mark.slow  # three promtool runs
def test_the_generated_tests_pass_and_fail_a_rule_with_another_threshold(project, write_env, tmp_path) -> None:
    promtool = require("promtool")
    text = MINIMAL + "alerts: {error_rate: {threshold: 0.05}, slow_queries: {threshold_seconds: 2.0}}\n"
    for label, rules_text in (("same", text), ("error_rate moved", text.replace("0.05", "0.1")),
                              ("slow_queries moved", text.replace("2.0", "3.0"))):
        built = tmp_path / label
        tests_from = render_environment(load(project, write_env, text))
        rules_from = render_environment(load(project, write_env, rules_text))
        for rel, content in (("tests/alerts.test.yaml", tests_from["production/tests/alerts.test.yaml"]),
                             ("prometheus/alerts.yaml", rules_from["production/prometheus/alerts.yaml"])):
            (built / rel).parent.mkdir(parents=True, exist_ok=True)
            (built / rel).write_text(content)
        result = _promtool_test(promtool, built)
        if label == "same":
            assert result.returncode == 0, result.stdout + result.stderr
        else:
            assert result.returncode != 0, f"{label}: the tests did not notice"
            name = "HighErrorRate" if "error_rate" in label else "SlowDatabaseQueries"
            assert name in result.stdout + result.stderr
