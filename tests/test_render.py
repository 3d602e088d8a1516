"""Rendering: artifacts parse, carry the header, and say what the model computed."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import FIXTURES, SHIPPED_ENVIRONMENTS, artifact_paths
from hypothesis import given, settings
from hypothesis import strategies as st

from infragen.artifacts import MARKER, format_of
from infragen.errors import RenderError
from infragen.load import Loader
from infragen.render import env_value, nginx_word, render_all, yaml_scalar


@pytest.fixture(scope="module")
def shipped_files() -> dict[str, str]:
    return render_all(Loader(SHIPPED_ENVIRONMENTS).load_many())


def test_every_environment_gets_every_artifact(shipped_files) -> None:
    assert set(shipped_files) == set(artifact_paths(SHIPPED_ENVIRONMENTS))
    assert {path.split("/", 1)[0] for path in shipped_files} == {"development", "staging", "production"}


def test_files_start_with_the_generated_header_naming_the_source(shipped_files) -> None:
    for path, text in shipped_files.items():
        env, rel = path.split("/", 1)
        assert format_of(rel).is_generated(text.encode()), path  # the marker, as the file's format carries it
        first = json.loads(text)["description"] if rel.endswith(".json") else text.splitlines()[0]
        assert first.startswith(f"# {MARKER}" if not rel.endswith(".json") else MARKER), path
        assert f"environments/{env}.yaml" in first and "Do not edit by hand" in first, path


def test_files_are_lf_with_one_final_newline(shipped_files) -> None:
    for path, text in shipped_files.items():
        assert "\r" not in text, path
        assert text.endswith("\n") and not text.endswith("\n\n"), path


def test_yaml_artifacts_parse_to_the_model_values(shipped_files) -> None:
    hpa = yaml.safe_load(shipped_files["production/kubernetes/hpa.yaml"])
    assert hpa["spec"]["minReplicas"] == 3 and hpa["spec"]["maxReplicas"] == 10
    # production is blue-green: the HPA scales the Argo Rollout that runs the Deployment's pods
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "fraud-api"}
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu", "memory"]
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    pdb = yaml.safe_load(shipped_files["development/kubernetes/pdb.yaml"])
    assert pdb["spec"]["maxUnavailable"] == 1 and "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/name": "fraud-api"}}
    rules = yaml.safe_load(shipped_files["production/prometheus/alerts.yaml"])["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == ["HighErrorRate", "HighLatencyP95", "DatabasePoolNearExhaustion",
                                           "LowCacheHitRate", "UnhandledExceptions", "SlowDatabaseQueries",
                                           "RateLimitExceeded", "MetricsMissing", "RolloutStuck"]
    for rule in rules:
        assert 'namespace="simple378-production"' in rule["expr"]
        assert 'job="fraud-api"' in rule["expr"] or rule["alert"] == "RolloutStuck"  # the controller's series
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
        assert rule["labels"]["severity"] in ("critical", "warning", "info")
    amc = yaml.safe_load(shipped_files["production/kubernetes/alertmanagerconfig.yaml"])
    assert (amc["kind"], amc["metadata"]["namespace"]) == ("AlertmanagerConfig", "simple378-production")
    route = amc["spec"]["route"]
    assert route["receiver"] == "team-slack"
    assert route["matchers"] == [{"name": "namespace", "value": "simple378-production", "matchType": "="},
                                 {"name": "service", "value": "fraud-api", "matchType": "="}]
    assert [(r["receiver"], r["matchers"][0]["value"]) for r in route["routes"]] == [
        ("oncall", "critical"), ("team-slack", "warning"), ("team-slack", "info")]
    assert [yaml.safe_load(shipped_files[f"{env}/kubernetes/alertmanagerconfig.yaml"])["spec"]["route"]["routes"][0][
        "receiver"] for env in ("development", "staging")] == ["team-slack", "team-slack"]  # only production pages


def test_app_env_has_the_domain_keys_with_environment_values(shipped_files) -> None:
    lines = [line for line in shipped_files["production/app.env"].splitlines() if line and not line.startswith("#")]
    assert dict(line.split("=", 1) for line in lines) == {
        "PROMETHEUS_METRICS_ENABLED": "true", "RATE_LIMIT_REQUESTS": "100", "RATE_LIMIT_WINDOW_SECONDS": "60",
        "DATABASE_POOL_SIZE": "20", "DATABASE_POOL_OVERFLOW": "10", "K8S_MIN_REPLICAS": "3",
        "K8S_MAX_REPLICAS": "10", "K8S_TARGET_CPU_PERCENT": "60",
        # The app's limits (the design's numbers, _base.yaml), under the key names the app reads.
        "MAX_PAYLOAD_BYTES": "1048576", "MAX_BATCH_ITEMS": "1000", "MAX_PAGE_SIZE": "100", "MAX_DATE_RANGE_DAYS": "90",
        "UPLOAD_1_PATH": "/api/v1/reports/upload", "UPLOAD_1_MAX_BYTES": "10485760", "UPLOAD_1_ALLOWED_TYPES": "csv,xlsx",
        "QUOTA_API_CALLS_LIMIT": "1000", "QUOTA_API_CALLS_PERIOD": "daily",
        "THROTTLE_CPU_PERCENT": "80", "THROTTLE_MEMORY_PERCENT": "80", "THROTTLE_MIN_FACTOR": "0.5",
        "THROTTLE_RECOVERY_SECONDS": "300", "SESSION_TTL_SECONDS": "86400",
    }


def test_no_secret_values_in_alertmanager_config(shipped_files) -> None:
    text = shipped_files["production/kubernetes/alertmanagerconfig.yaml"]
    amc = yaml.safe_load(text)
    [pagerduty] = [r["pagerdutyConfigs"][0] for r in amc["spec"]["receivers"] if r["name"] == "oncall"]
    [slack] = [r["slackConfigs"][0] for r in amc["spec"]["receivers"] if r["name"] == "team-slack"]
    assert pagerduty["routingKey"] == {"name": "alertmanager-pagerduty", "key": "routing-key"}
    assert slack["apiURL"] == {"name": "alertmanager-slack", "key": "api-url"}
    assert "hooks.slack.com" not in text and "routing_key" not in text and "api_url" not in text
    assert not any(path.endswith("alertmanager/alertmanager.yaml") for path in shipped_files)


def test_upstream_uses_exactly_one_balancing_method() -> None:
    loader = Loader(FIXTURES / "environments")
    methods = ("least_conn;", "hash ", "ip_hash;", "random")
    for name in loader.names():
        text = render_all([loader.load(name)])[f"{name}/nginx/upstream.conf"]
        used = [m for m in methods if any(line.strip().startswith(m) for line in text.splitlines())]
        assert len(used) == 1, (name, used)


def test_names_carry_the_environment_so_files_can_share_one_nginx(shipped_files) -> None:
    assert "upstream fraud-api-production {" in shipped_files["production/nginx/upstream.conf"]
    assert "zone=fraud-api-staging-ratelimit:" in shipped_files["staging/nginx/upstream.conf"]
    assert "proxy_pass http://fraud-api-development;" in shipped_files["development/nginx/location.conf"]


@pytest.mark.parametrize("value", ["5m", "fraud-api", "on", "yes", "y", "~", "null", "10", "1e3", "0x1f", "1_000",
                                   "#channel", "a: b", "it's", "line\nbreak", "tab\there", "naïve", "{x}", "", " lead"])
def test_yaml_filter_round_trips_any_string(value: str) -> None:
    assert yaml.safe_load(f"key: {yaml_scalar(value)}\n") == {"key": value}
    assert "\n" not in yaml_scalar(value)


@pytest.mark.parametrize("value", [0, 1, 0.05, 1.0, 2.5, True, False, None])
def test_yaml_filter_round_trips_scalars(value) -> None:
    assert yaml.safe_load(f"key: {yaml_scalar(value)}\n") == {"key": value}


@pytest.mark.parametrize("value", ["a;b", "a b", "a\nb", "x{", "'q'", "#c"])
def test_nginx_filter_refuses_unsafe_words(value: str) -> None:
    with pytest.raises(RenderError):
        nginx_word(value)


@pytest.mark.parametrize("value", ["a b", "a\nb", "'x'", '"x"', "$HOME", "#"])
def test_env_filter_refuses_unsafe_values(value: str) -> None:
    with pytest.raises(RenderError):
        env_value(value)


@pytest.mark.slow  # 200 generated documents
@settings(max_examples=200, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(), lambda children: st.lists(children) | st.dictionaries(st.text(), children), max_leaves=30))
def test_json_document_is_json_dumps_canonical_form(value) -> None:
    """The fast encoder writes exactly what json.dumps(indent=2, sort_keys=True, ensure_ascii=True) writes."""
    from infragen.render import json_document

    assert json_document(value) == json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)
