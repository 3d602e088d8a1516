"""From scrape to alert to dashboard: the job every alert selects is the job the scrape produces, the operator's
resources and the plain files say the same thing, and the dashboard shows exactly what the alerts compare.

Custom resources are checked against the CRD schemas and the dashboard against Grafana's schemas (third-party
files the project does not ship: tools.require_schemas finds them, or skips with how to get them).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import FIXTURES, SHIPPED_ENVIRONMENTS
from tools import require, require_schemas

from infragen.cli import cli
from infragen.consumers import check_dashboard, check_scrape_config
from infragen.load import Loader
from infragen.models.dashboard import alert_panels, dashboard_uid
from infragen.render import render_environment

SETS = {"shipped": SHIPPED_ENVIRONMENTS, "fixture": FIXTURES / "environments"}


def environments():
    for label, directory in SETS.items():
        loader = Loader(directory)
        for name in loader.names():
            yield f"{label}:{name}", loader.load(name)


ENVIRONMENTS = dict(environments())


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, str]]:
    """label:name -> {artifact path: text}"""
    return {key: {path.split("/", 1)[1]: text for path, text in render_environment(env).items()}
            for key, env in ENVIRONMENTS.items()}


def _validator(schema: dict) -> jsonschema.protocols.Validator:
    return jsonschema.validators.validator_for(schema)(schema)


def _schema_problems(document: object, schema_file: Path) -> list[str]:
    validator = _validator(json.loads(schema_file.read_text()))
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


# --- the job every alert selects -----------------------------------------------------------------------------

@pytest.mark.parametrize("key", [k for k, e in ENVIRONMENTS.items() if e.spec.monitoring.operator])
def test_service_monitor_pins_the_job_the_alerts_select(rendered, key) -> None:
    env = ENVIRONMENTS[key]
    monitor = yaml.safe_load(rendered[key]["kubernetes/servicemonitor.yaml"])
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["relabelings"][-1] == {"action": "replace", "targetLabel": "job", "replacement": env.spec.service.name}
    assert endpoint["port"] == env.spec.monitoring.port_name and endpoint["path"] == env.spec.monitoring.path
    assert monitor["spec"].get("podTargetLabels") == (["rollouts-pod-template-hash"] if env.rollout.argo else None)
    assert monitor["spec"]["selector"]["matchLabels"] == (env.spec.monitoring.selector_labels or env.selector)
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [env.namespace]}
    interval, timeout = (_seconds(endpoint[k]) for k in ("interval", "scrapeTimeout"))
    assert interval == env.spec.alerts.scrape_interval and 0 < timeout <= interval
    assert env.spec.monitoring.labels.items() <= monitor["metadata"]["labels"].items()
    for rule in yaml.safe_load(rendered[key]["prometheus/alerts.yaml"])["groups"][0]["rules"]:
        if rule["alert"] == "RolloutStuck":  # Argo Rollouts' controller's series, by rollout name and namespace
            assert f'namespace="{monitor["metadata"]["namespace"]}"' in rule["expr"]
            continue
        assert f'job="{endpoint["relabelings"][-1]["replacement"]}"' in rule["expr"]
        assert f'namespace="{monitor["metadata"]["namespace"]}"' in rule["expr"]


def test_plain_scrape_job_keeps_only_the_service_and_pins_job_and_namespace(rendered) -> None:
    key = "fixture:plain-prometheus"
    env, files = ENVIRONMENTS[key], rendered[key]
    assert not {"kubernetes/servicemonitor.yaml", "kubernetes/prometheusrule.yaml",
                "kubernetes/dashboard-configmap.yaml"} & files.keys()
    [job] = yaml.safe_load(files["prometheus/scrape.yaml"])["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "endpoints", "namespaces": {"names": [env.namespace]}}]
    assert job["metrics_path"] == "/internal/metrics" and job["scrape_interval"] == "5s" and job["scrape_timeout"] == "5s"
    keep = {r["source_labels"][0]: r["regex"] for r in job["relabel_configs"] if r.get("action") == "keep"}
    assert keep == {"__meta_kubernetes_service_label_app_kubernetes_io_name": "fraud\\-api",
                    "__meta_kubernetes_service_label_app_kubernetes_io_component": "api",
                    "__meta_kubernetes_endpoint_port_name": "metrics"}
    for label, value in keep.items():  # Prometheus anchors relabel regexes
        assert re.fullmatch(value, {"__meta_kubernetes_endpoint_port_name": "metrics"}.get(label, "fraud-api" if "name" in label else "api"))
        assert not re.fullmatch(value, "fraud-api-canary")
    assert {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"} in job["relabel_configs"]
    assert job["relabel_configs"][-1] == {"target_label": "job", "replacement": "fraud-api"}
    assert job["job_name"] == "fraud-api-plain-prometheus"


def test_scrape_job_check_says_how_it_was_checked(tmp_path) -> None:
    env = ENVIRONMENTS["fixture:plain-prometheus"]
    path = tmp_path / "scrape.yaml"
    path.write_text(render_environment(env)["plain-prometheus/prometheus/scrape.yaml"])
    status, summary, _ = check_scrape_config(path)
    assert status == "ok" and (summary == "promtool check config" or "checked structurally" in summary), summary
    structural = "structurally" in summary
    path.write_text(path.read_text().replace("target_label: job\n", "target_label: jobs\n"))
    status, summary, _ = check_scrape_config(path)
    if structural:  # a promtool with Kubernetes discovery accepts a job that is not pinned: only this check refuses it
        assert status == "failed" and "job is not pinned" in summary, summary


# --- PrometheusRule = alerts.yaml ----------------------------------------------------------------------------

@pytest.mark.parametrize("key", [k for k, e in ENVIRONMENTS.items() if e.spec.monitoring.operator])
def test_prometheus_rule_holds_exactly_the_rule_groups_of_alerts_yaml(rendered, key) -> None:
    """... and of slo-rules.yaml, where the environment has SLOs."""
    rule = yaml.safe_load(rendered[key]["kubernetes/prometheusrule.yaml"])
    plain = yaml.safe_load(rendered[key]["prometheus/alerts.yaml"])
    slo = rendered[key].get("prometheus/slo-rules.yaml")
    if slo is not None:
        plain["groups"] += yaml.safe_load(slo)["groups"]
    assert rule["spec"] == plain
    assert "MetricsMissing" in [r["alert"] for r in plain["groups"][0]["rules"]]


@pytest.mark.slow  # promtool per environment
@pytest.mark.tools
def test_prometheus_rule_spec_passes_promtool(tmp_path, rendered) -> None:
    from infragen.consumers import check_prometheus_rule

    promtool = require("promtool")
    schemas = require_schemas()
    for key, files in rendered.items():
        if "kubernetes/prometheusrule.yaml" not in files:
            continue
        path = tmp_path / key.replace(":", "-") / "prometheusrule.yaml"
        path.parent.mkdir()
        path.write_text(files["kubernetes/prometheusrule.yaml"])
        status, summary, details = check_prometheus_rule(promtool, path, schemas / "crds")
        assert status == "ok", f"{key}: {summary}\n{details}"


# --- custom resources against their CRDs ---------------------------------------------------------------------

@pytest.mark.parametrize("artifact", ["kubernetes/servicemonitor.yaml", "kubernetes/prometheusrule.yaml"])
def test_operator_resources_pass_their_crd_schemas(rendered, artifact) -> None:
    schemas = require_schemas()
    checked = 0
    for key, files in rendered.items():
        if artifact not in files:
            continue
        document = yaml.safe_load(files[artifact])
        group, version = document["apiVersion"].split("/")
        problems = _schema_problems(document, schemas / "crds" / group / f"{document['kind'].lower()}_{version}.json")
        assert problems == [], f"{key} {artifact}: {problems}"
        checked += 1
    assert checked >= 3


def test_the_crd_schemas_are_strict_enough_to_catch_a_mistake(rendered) -> None:
    """A ServiceMonitor with a numeric port, or an unknown field, must fail: the schema check proves something."""
    schemas = require_schemas()
    schema = schemas / "crds" / "monitoring.coreos.com" / "servicemonitor_v1.json"
    document = yaml.safe_load(rendered["shipped:production"]["kubernetes/servicemonitor.yaml"])
    document["spec"]["endpoints"][0]["port"] = 8000
    assert _schema_problems(document, schema)
    document = yaml.safe_load(rendered["shipped:production"]["kubernetes/servicemonitor.yaml"])
    document["spec"]["endpoints"][0]["jobLabel"] = "app"
    assert _schema_problems(document, schema)


# --- the dashboard -----------------------------------------------------------------------------------------------

def test_dashboards_pass_grafanas_schemas(rendered) -> None:
    schemas = require_schemas()
    timeseries = json.loads((schemas / "grafana" / "timeseries.jsonschema.json").read_text())
    definitions = timeseries["definitions"]
    options = _validator({**definitions["Options"], "definitions": definitions})
    field_config = _validator({**definitions["FieldConfig"], "definitions": definitions})
    for key, files in rendered.items():
        dashboard = json.loads(files["grafana/dashboard.json"])
        assert _schema_problems(dashboard, schemas / "grafana" / "dashboard.jsonschema.json") == [], key
        for panel in dashboard["panels"]:
            if panel["type"] == "row":  # an SLO's row: the dashboard schema's RowPanel, checked above
                continue
            assert panel["type"] == "timeseries"
            assert list(options.iter_errors(panel["options"])) == [], (key, panel["title"])
            custom = panel["fieldConfig"]["defaults"].get("custom", {})
            assert list(field_config.iter_errors(custom)) == [], (key, panel["title"])


def test_each_alert_panel_shows_exactly_the_alerts_query_and_threshold(rendered) -> None:
    for key, env in ENVIRONMENTS.items():
        dashboard = json.loads(rendered[key]["grafana/dashboard.json"])
        rules = {r["alert"]: r for r in yaml.safe_load(rendered[key]["prometheus/alerts.yaml"])["groups"][0]["rules"]}
        threshold_rules = [r for r in env.monitoring.alert_rules if r.comparison is not None]
        assert len(threshold_rules) == 7
        panels = {p["title"]: p for p in dashboard["panels"]}
        for rule in threshold_rules:
            panel = panels[rule.name]
            [target] = panel["targets"]
            threshold = panel["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"]
            # the alert as Prometheus loads it is exactly: the panel's query, its comparison, the panel's line
            assert rules[rule.name]["expr"] == f"{target['expr']} {rule.comparison} {_number(threshold)}", (key, rule.name)
            assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "line"
        assert [rule.name for rule, _panel in alert_panels(env.monitoring.alert_rules)] == [r.name for r in threshold_rules]


@pytest.mark.slow  # promtool per environment
@pytest.mark.tools
def test_every_panel_query_passes_promtool(tmp_path, rendered) -> None:
    promtool = require("promtool")
    for key, files in rendered.items():
        path = tmp_path / f"{key.replace(':', '-')}.json"
        path.write_text(files["grafana/dashboard.json"])
        status, summary, details = check_dashboard(promtool, path, None)
        assert status == "skipped" and "panel queries: promtool check rules" in summary, f"{key}: {summary}\n{details}"
    broken = json.loads(files["grafana/dashboard.json"])
    broken["panels"][0]["targets"][0]["expr"] += ")"
    path.write_text(json.dumps(broken))
    assert check_dashboard(promtool, path, None)[0] == "failed"


def test_dashboard_uid_is_stable_and_distinct_per_service_namespace_and_environment() -> None:
    uids = {dashboard_uid(s, n, e) for s in ("fraud-api", "billing-api") for n in ("prod", "ns") for e in ("production", "staging")}
    assert len(uids) == 8 and all(len(uid) <= 40 and re.fullmatch(r"[a-z0-9-]+", uid) for uid in uids)
    assert dashboard_uid("fraud-api", "prod", "production") == dashboard_uid("fraud-api", "prod", "production")
    shipped = [json.loads(render_environment(env)[f"{env.name}/grafana/dashboard.json"])["uid"]
               for key, env in ENVIRONMENTS.items() if key.startswith("shipped:")]
    assert len(set(shipped)) == len(shipped)


def test_dashboard_configmap_carries_the_dashboard_byte_for_byte(rendered) -> None:
    for key, files in rendered.items():
        if "kubernetes/dashboard-configmap.yaml" not in files:
            continue
        env = ENVIRONMENTS[key]
        configmap = yaml.safe_load(files["kubernetes/dashboard-configmap.yaml"])
        assert configmap["data"] == {env.monitoring.dashboard_file: files["grafana/dashboard.json"].rstrip("\n")}
        assert env.spec.monitoring.dashboard_labels.items() <= configmap["metadata"]["labels"].items()
    assert yaml.safe_load(rendered["shipped:production"]["kubernetes/dashboard-configmap.yaml"])["metadata"]["labels"][
        "grafana_dashboard"] == "1"


def test_json_marker_makes_the_dashboard_ours(shipped_project, runner) -> None:
    """JSON cannot start with `#`: the marker is in its description, and build recognises (and replaces) it."""
    assert runner.invoke(cli, ["build"]).exit_code == 0
    dashboard = shipped_project / "output/production/grafana/dashboard.json"
    dashboard.write_text(dashboard.read_text().replace('"refresh": "1m"', '"refresh": "5m"'))
    result = runner.invoke(cli, ["check"])
    assert result.exit_code == 1 and "stale     output/production/grafana/dashboard.json" in result.stderr
    assert runner.invoke(cli, ["build"]).exit_code == 0
    dashboard.write_text('{"title": "mine", "description": "hand-made"}\n')
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2 and "was not generated by infragen" in result.stderr


# --- settings ------------------------------------------------------------------------------------------------

def test_operator_off_writes_plain_files_only_and_turning_it_on_removes_them(shipped_project, runner) -> None:
    production = shipped_project / "environments" / "production.yaml"
    production.write_text(production.read_text() + "monitoring: {operator: false}\n")
    result = runner.invoke(cli, ["build", "production"])
    assert result.exit_code == 0, result.output
    out = shipped_project / "output" / "production"
    assert (out / "prometheus/scrape.yaml").is_file() and (out / "grafana/dashboard.json").is_file()
    for gone in ("servicemonitor.yaml", "prometheusrule.yaml", "dashboard-configmap.yaml"):
        assert not (out / "kubernetes" / gone).exists() and f"deleted  output/production/kubernetes/{gone}" in result.stdout


def test_metrics_missing_pages_only_in_production() -> None:
    severities = {key: env.spec.alerts.metrics_missing.severity for key, env in ENVIRONMENTS.items()
                  if key.startswith("shipped:")}
    assert severities == {"shipped:development": "warning", "shipped:staging": "warning", "shipped:production": "critical"}


def test_operator_resources_without_selector_labels_warn(project, write_env, runner) -> None:
    from conftest import MINIMAL

    write_env("production", MINIMAL.replace("monitoring: {labels: {release: prometheus}}\n", ""))
    result = runner.invoke(cli, ["validate"])
    assert result.exit_code == 0 and "[operator-resources-unselected]" in result.stderr
    assert runner.invoke(cli, ["validate", "--strict"]).exit_code == 2
    write_env("production", MINIMAL.replace("{labels: {release: prometheus}}", "{operator: false}"))
    assert "operator-resources-unselected" not in runner.invoke(cli, ["validate"]).stderr


def test_pagerduty_url_reaches_alertmanager(rendered) -> None:
    config = yaml.safe_load(rendered["fixture:plain-prometheus"]["alertmanager/alertmanager.yaml"])
    [oncall] = [r for r in config["receivers"] if r["name"] == "plain-prometheus/fraud-api/oncall"]
    assert oncall["pagerduty_configs"][0]["url"] == "https://events.eu.pagerduty.com/v2/enqueue"
    resource = yaml.safe_load(rendered["shipped:production"]["kubernetes/alertmanagerconfig.yaml"])
    [oncall] = [r for r in resource["spec"]["receivers"] if r["name"] == "oncall"]
    assert "url" not in oncall["pagerdutyConfigs"][0]


def _seconds(text: str) -> int:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", text))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)
