"""Where alerts go (issue 17): the AlertmanagerConfig against its CRD schema; the Prometheus Operator's merge of the
shipped resources into one kube-prometheus-stack Alertmanager (infragen.operator_merge, modelled on the operator's
pkg/alertmanager/amcfg.go) through amtool's routing tests; file mode; tier-aware paging and its rules; the
dashboard fixes. The messages and inhibition are proven live in tests/test_live_alerting.py."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import MINIMAL, SHIPPED_ENVIRONMENTS, SHIPPED_OUTPUT
from tools import require, require_schemas

from infragen import api
from infragen.config import ToolSettings
from infragen.consumers import NOTHING, check_custom_resources, placeholder_secrets
from infragen.load import Loader
from infragen.operator_merge import ConversionError, generate, matcher_text
from infragen.policy import check_environment

SHIPPED = ("development", "staging", "production")


def resource(env: str) -> dict:
    return yaml.safe_load((SHIPPED_OUTPUT / env / "kubernetes/alertmanagerconfig.yaml").read_text(encoding="utf-8"))


def test_shipped_alertmanagerconfigs_pass_the_crd_schema() -> None:
    crds = require_schemas() / "crds"
    status, summary, details = check_custom_resources([resource(env) for env in SHIPPED], crds)
    assert status == "ok", f"{summary}\n{details}"


def test_the_crd_schema_check_can_fail() -> None:
    crds = require_schemas() / "crds"
    broken = resource("production")
    broken["spec"]["receivers"][0]["pagerdutyConfigs"][0]["routingKey"] = {"name": "alertmanager-pagerduty"}  # no key
    status, summary, _ = check_custom_resources([broken], crds)
    assert status == "failed" and "'key' is a required property" in summary, summary


# --- the operator's merge, through amtool ------------------------------------------------------------------

@pytest.fixture(scope="module")
def merged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three shipped environments' AlertmanagerConfigs in one kube-prometheus-stack Alertmanager, as the
    operator generates its configuration (default matcher strategy OnNamespace)."""
    resources = [resource(env) for env in SHIPPED]
    secrets = {key: value for r in resources for key, value in placeholder_secrets(r).items()}
    path = tmp_path_factory.mktemp("merged") / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(generate(resources, secrets)), encoding="utf-8")
    return path


def routes_to(path: Path, *labels: str) -> list[str]:
    """amtool's answer: the receivers an alert with `labels` reaches, in order."""
    amtool = require("amtool")
    proc = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}", *labels],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().split(",")


def test_the_merged_configuration_passes_amtool_check_config(merged: Path) -> None:
    proc = subprocess.run([require("amtool"), "check-config", str(merged)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, proc.stdout + proc.stderr


def test_only_production_pages(merged: Path) -> None:
    critical = ("service=fraud-api", "severity=critical", "alertname=DatabasePoolNearExhaustion")
    assert routes_to(merged, "namespace=simple378-production", *critical) == ["simple378-production/fraud-api/oncall"]
    assert routes_to(merged, "namespace=simple378-staging", *critical) == ["simple378-staging/fraud-api/team-slack"]
    assert routes_to(merged, "namespace=simple378-development", *critical) == [
        "simple378-development/fraud-api/team-slack"]


def test_other_teams_alerts_never_reach_the_services_receivers(merged: Path) -> None:
    # kube-prometheus-stack's own critical alert, and another service's in the service's own namespace.
    assert routes_to(merged, "namespace=kube-system", "severity=critical", "alertname=KubeAPIDown") == [NOTHING]
    assert routes_to(merged, "namespace=simple378-production", "service=payments", "severity=critical") == [NOTHING]
    assert routes_to(merged, "alertname=Watchdog", "severity=none") == [NOTHING]  # the chart's own route still works


def test_the_routes_stay_scoped_without_the_operators_namespace_matcher(tmp_path: Path) -> None:
    """alertmanagerConfigMatcherStrategy None: the operator adds no namespace matcher; the routes carry theirs."""
    resources = [resource(env) for env in SHIPPED]
    secrets = {key: value for r in resources for key, value in placeholder_secrets(r).items()}
    path = tmp_path / "none.yaml"
    path.write_text(yaml.safe_dump(generate(resources, secrets, strategy="None")), encoding="utf-8")
    assert routes_to(path, "namespace=kube-system", "service=fraud-api", "severity=critical") == [NOTHING]
    assert routes_to(path, "namespace=simple378-production", "service=fraud-api", "severity=critical") == [
        "simple378-production/fraud-api/oncall"]


def test_the_merge_follows_the_operators_source() -> None:
    """What amcfg.go does, checked on the generated structure: the resource's route first with continue: true and
    the namespace matcher appended, receivers prefixed, the Secret's value inlined, inhibit rules appended with
    the namespace matcher on both sides (not twice)."""
    amc = resource("production")
    config = generate([amc], {("simple378-production", "alertmanager-pagerduty", "routing-key"): "k",
                              ("simple378-production", "alertmanager-slack", "api-url"): "https://hooks.example/x"})
    first = config["route"]["routes"][0]
    assert first["continue"] is True and first["matchers"][-1] == 'namespace="simple378-production"'
    assert config["route"]["routes"][1]["matchers"] == ["alertname = Watchdog"]
    names = [r["name"] for r in config["receivers"]]
    assert names == ["null", "simple378-production/fraud-api/oncall", "simple378-production/fraud-api/team-slack"]
    assert config["receivers"][1]["pagerduty_configs"][0]["routing_key"] == "k"
    ours = config["inhibit_rules"][4:]
    assert len(ours) == 3 and all(r["source_matchers"].count('namespace="simple378-production"') == 1 for r in ours)
    assert matcher_text({"name": "a", "value": 'x"\\\n', "matchType": "=~"}) == 'a=~"x\\"\\\\\\n"'
    with pytest.raises(ConversionError, match="failed to get routing key"):
        generate([amc], {})


# --- file mode ------------------------------------------------------------------------------------------------

FILE_MODE = MINIMAL + """\
alertmanager:
  format: file
  secrets_dir: /run/am-secrets
  receivers:
    oncall: {pagerduty: {routing_key_secret: {name: pagerduty, key: routing-key}}}
    team-slack: {slack: {api_url_file: /run/am-secrets/slack/url}}
"""


def _build(project: Path) -> None:
    api.build(ToolSettings(environments=project / "environments", output=project / "output", cache=False))


def test_file_mode_reads_secrets_from_the_mount_layout(project: Path, write_env) -> None:
    write_env("production", FILE_MODE)
    _build(project)
    text = (project / "output/production/alertmanager/alertmanager.yaml").read_text(encoding="utf-8")
    assert "# Only this service's alerts: everything sits under the one route matched on its namespace and service" in text
    config = yaml.safe_load(text)
    files = {r["name"]: c.get("routing_key_file") or c.get("api_url_file") for r in config["receivers"]
             for c in r.get("pagerduty_configs", []) + r.get("slack_configs", [])}
    assert files == {"fraud-prod/fraud-api/oncall": "/run/am-secrets/pagerduty/routing-key",
                     "fraud-prod/fraud-api/team-slack": "/run/am-secrets/slack/url"}
    assert config["route"]["receiver"] == NOTHING
    assert config["route"]["routes"][0]["matchers"] == ['namespace="fraud-prod"', 'service="fraud-api"']
    assert not (project / "output/production/kubernetes/alertmanagerconfig.yaml").exists()
    assert "alertmanagerconfig.yaml" not in (project / "output/production/kubernetes/kustomization.yaml").read_text()


def test_switching_to_operator_mode_deletes_the_stale_file(project: Path, write_env) -> None:
    write_env("production", FILE_MODE)
    _build(project)
    write_env("production", MINIMAL)
    _build(project)
    assert not (project / "output/production/alertmanager/alertmanager.yaml").exists()
    assert (project / "output/production/kubernetes/alertmanagerconfig.yaml").exists()
    assert "- alertmanagerconfig.yaml" in (project / "output/production/kubernetes/kustomization.yaml").read_text()


def test_a_file_off_the_layout_warns_naming_it(project: Path, write_env) -> None:
    write_env("production", FILE_MODE.replace("/run/am-secrets/slack/url", "/etc/slack-url"))
    env = Loader(project / "environments").load("production")
    [finding] = [f for f in check_environment(env) if f.rule == "secret-file-layout"]
    assert finding.level == "warning" and finding.location.line == 13
    assert "<secrets_dir>/<secret>/<key>" in finding.message and "/run/am-secrets" in finding.message


def test_a_file_in_a_partial_and_a_secret_in_the_environment_do_not_clash(project: Path, write_env) -> None:
    """A layer that sets one of a receiver's secret keys replaces the other one it inherits."""
    write_env("_files", "alertmanager:\n  receivers:\n    team-slack: {slack: {api_url_file: /etc/alertmanager/secrets/s/u}}\n"
                        "    oncall: {pagerduty: {routing_key_secret: {name: pd, key: k}}}\n")
    write_env("production", MINIMAL + "extends: _files\nalertmanager:\n  receivers:\n"
              "    team-slack: {slack: {api_url_secret: {name: slack, key: url}}}\n")
    env = Loader(project / "environments").load("production")
    slack = env.spec.alertmanager.receivers["team-slack"].slack
    assert slack is not None and slack.api_url_file is None and slack.api_url_secret is not None


# --- tier-aware paging ----------------------------------------------------------------------------------------

def test_only_the_production_tier_pages_by_default() -> None:
    loader = Loader(SHIPPED_ENVIRONMENTS)
    critical = {name: loader.load(name).routing.severity_routes[0] for name in SHIPPED}
    assert critical == {"development": ("critical", "team-slack"), "staging": ("critical", "team-slack"),
                        "production": ("critical", "oncall")}
    development = loader.load("development")
    assert not [rule.name for rule in development.monitoring.alert_rules if rule.severity == "critical"]
    for name in SHIPPED:  # the shipped environments are clean, oncall unused outside production included
        assert not [f for f in check_environment(loader.load(name)) if f.level != "info"], name


def test_a_non_production_route_to_a_pager_warns_and_is_kept(project: Path, write_env) -> None:
    write_env("staging", MINIMAL.replace("tier: production", "tier: staging") + "alertmanager: {routes: {critical: oncall}}\n")
    env = Loader(project / "environments").load("staging")
    assert env.routing.severity_routes[0] == ("critical", "oncall")
    [finding] = [f for f in check_environment(env) if f.rule == "non-production-pages"]
    assert finding.level == "warning" and str(finding.location) == "environments/staging.yaml:8:35"
    write_env("staging", MINIMAL.replace("tier: production", "tier: staging")
              + "alertmanager: {routes: {critical: oncall}}\npolicy: {acknowledge: [non-production-pages]}\n")
    env = Loader(project / "environments").load("staging")
    [finding] = [f for f in check_environment(env) if f.rule == "non-production-pages"]
    assert finding.level == "info" and "acknowledged" in finding.message


# --- dashboard --------------------------------------------------------------------------------------------------

def test_dashboard_panels_name_their_series_and_show_no_prometheus_templates() -> None:
    dashboard = json.loads((SHIPPED_OUTPUT / "production/grafana/dashboard.json").read_text(encoding="utf-8"))
    panels = {p["title"]: p for p in dashboard["panels"]}
    assert all("{{ $" not in p.get("description", "") for p in panels.values())
    assert all(t.get("legendFormat") for p in panels.values() for t in p.get("targets", []))
    assert panels["SlowDatabaseQueries"]["targets"][0]["legendFormat"] == "{{query_type}}"
    assert "per query_type" in panels["SlowDatabaseQueries"]["description"]
    assert panels["DatabasePoolNearExhaustion"]["targets"][0]["legendFormat"] == "{{instance}}"
    # No 5xx at all is a 0% error rate, not "No data".
    assert "or vector(0))" in panels["HighErrorRate"]["targets"][0]["expr"]
