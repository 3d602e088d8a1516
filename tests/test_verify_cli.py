"""`infragen verify`: one line per artifact, exit codes, missing tools, broken artifacts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, artifact_paths
from tools import require, require_schemas

import infragen.consumers
import infragen.verify
from infragen.cli import cli

LINE = re.compile(r"^(?P<path>\S+)\s+(?P<status>ok|failed|skipped)\s+(?P<summary>.+)$")


def _lines(output: str) -> dict[str, tuple[str, str]]:
    """path -> (status, summary) for every artifact line."""
    found = {}
    for line in output.splitlines():
        if m := LINE.match(line):
            found[m["path"]] = (m["status"], m["summary"])
    return found


def _all_tools() -> list[str]:
    """Every validator and schema verify can use: the options that pass them to `verify`."""
    for tool in ("promtool", "amtool", "nginx"):
        require(tool)
    schemas = require_schemas()
    return ["--crd-schemas", str(schemas / "crds"), "--dashboard-schema", str(schemas / "grafana/dashboard.jsonschema.json")]


@pytest.mark.slow  # infragen verify over whole environments, every consumer
@pytest.mark.tools
def test_verify_passes_on_the_shipped_output(shipped_project: Path, runner) -> None:
    schemas = _all_tools()
    result = runner.invoke(cli, ["verify", "--require-all", *schemas])
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    assert sorted(lines) == sorted(f"output/{path}" for path in artifact_paths(shipped_project / "environments"))
    assert {status for status, _ in lines.values()} == {"ok"}, result.output
    assert "kubernetes-validate --strict, Kubernetes 1.27-" in lines["output/production/kubernetes/hpa.yaml"][1]
    assert result.output.rstrip().endswith(f"verify: {len(lines)} ok, 0 failed, 0 skipped")


@pytest.fixture
def without_external_tools(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a machine without promtool, amtool and nginx (also keeps tests that need none of them quick)."""
    real = infragen.verify.find_tool
    monkeypatch.setattr(infragen.verify, "find_tool",
                        lambda name: None if name in infragen.consumers.TOOL_PACKAGES else real(name))


@pytest.mark.slow  # infragen verify over whole environments, every consumer
def test_missing_tools_are_skipped_with_an_install_hint(shipped_project: Path, runner, without_external_tools) -> None:
    result = runner.invoke(cli, ["verify", "production"])
    assert result.exit_code == 0, result.output
    lines = _lines(result.output)
    assert lines["output/production/prometheus/alerts.yaml"] == ("skipped", "promtool not installed (apt-get install prometheus)")
    assert lines["output/production/kubernetes/alertmanagerconfig.yaml"] == (
        "skipped", "amtool not installed (apt-get install prometheus-alertmanager)")
    assert lines["output/production/nginx/upstream.conf"] == ("skipped", "nginx not installed (apt-get install nginx-light)")
    # Kubernetes schemas ship with the Python package: no binary needed.
    assert lines["output/production/kubernetes/hpa.yaml"][0] == "ok"
    assert "apt-get install prometheus prometheus-alertmanager nginx-light" in result.output

    strict = runner.invoke(cli, ["verify", "--require-all", "production"])
    assert strict.exit_code == 1, strict.output


@pytest.mark.slow  # infragen verify over whole environments, every consumer
@pytest.mark.tools
def test_a_wrong_receiver_fails_with_amtools_answer(shipped_project: Path, runner) -> None:
    require("amtool")
    path = shipped_project / "output/production/kubernetes/alertmanagerconfig.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("      - receiver: oncall", "      - receiver: team-slack", 1), encoding="utf-8")
    result = runner.invoke(cli, ["verify", "production"])
    assert result.exit_code == 1, result.output
    status, summary = _lines(result.output)["output/production/kubernetes/alertmanagerconfig.yaml"]
    assert status == "failed"
    assert ("severity=critical routes to 'simple378-production/fraud-api/team-slack', the environment names "
            "'simple378-production/fraud-api/oncall'") in summary


@pytest.mark.slow  # infragen verify over whole environments, every consumer
def test_an_invalid_manifest_fails_with_the_schema_message(shipped_project: Path, runner, without_external_tools) -> None:
    path = shipped_project / "output/production/kubernetes/pdb.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("maxUnavailable: 1", "maxUnavailable: [1]"), encoding="utf-8")
    result = runner.invoke(cli, ["verify", "production"])
    assert result.exit_code == 1, result.output
    status, summary = _lines(result.output)["output/production/kubernetes/pdb.yaml"]
    assert status == "failed" and "Kubernetes 1.27: spec.maxUnavailable" in summary, summary


@pytest.mark.slow  # infragen verify over whole environments, every consumer
def test_missing_output_fails_and_says_how_to_build(shipped_project: Path, runner, without_external_tools) -> None:
    (shipped_project / "output/staging/app.env").unlink()
    result = runner.invoke(cli, ["verify", "staging"])
    assert result.exit_code == 1
    assert _lines(result.output)["output/staging/app.env"] == ("failed", "missing; run: infragen build staging")


def test_invalid_environment_exits_2_with_its_location(project: Path, write_env, runner) -> None:
    write_env("broken", "tier: production\nservice: {name: fraud-api}\nautoscaling: {min_replicas: zero}\n")
    result = runner.invoke(cli, ["verify"])
    assert result.exit_code == 2
    assert "environments/broken.yaml:3:" in result.output


def test_unknown_environment_is_a_usage_error(shipped_project: Path, runner) -> None:
    result = runner.invoke(cli, ["verify", "prod"])
    assert result.exit_code == 2
    assert "unknown environment 'prod'" in result.output


@pytest.mark.slow  # infragen verify over whole environments, every consumer
@pytest.mark.tools
def test_verify_runs_as_a_module(shipped_project: Path) -> None:
    schemas = _all_tools()
    env = {**os.environ, "PYTHONPATH": str(REPO), "INFRAGEN_CRD_SCHEMAS": schemas[1]}
    proc = subprocess.run([sys.executable, "-m", "infragen", "verify", "--require-all", schemas[2], schemas[3], "development"],
                          cwd=shipped_project, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(_lines(proc.stdout)) == len(artifact_paths(shipped_project / "environments", "development"))


@pytest.mark.parametrize("required", [False, True])
def test_a_missing_validator_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch, required: bool) -> None:
    import tools

    monkeypatch.setattr(tools, "find_tool", lambda name: None)
    monkeypatch.setattr(tools, "REQUIRE_TOOLS", required)
    outcome = pytest.fail.Exception if required else pytest.skip.Exception
    with pytest.raises(outcome) as raised:
        tools.require("promtool")
    assert "apt-get install prometheus prometheus-alertmanager nginx-light" in str(raised.value)


@pytest.mark.slow  # infragen verify over whole environments, every consumer
@pytest.mark.tools
def test_an_nginx_newer_than_the_installed_one_is_skipped_not_passed(project: Path, write_env, runner,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    require("nginx")
    write_env("sticky", """\
        tier: production
        service: {name: fraud-api, namespace: fraud-sticky}
        database: {max_connections: 1000}
        load_balancing:
          nginx_version: "1.29.6"
          servers: ["10.0.0.1:8080", "10.0.0.2:8080"]
        monitoring: {labels: {release: prometheus}}
        rollout: {prometheus_url: "http://prometheus.monitoring.svc:9090"}
        """)
    assert runner.invoke(cli, ["build"]).exit_code == 0
    real = infragen.verify.find_tool  # only nginx matters here; the others would just slow the test down
    monkeypatch.setattr(infragen.verify, "find_tool", lambda name: real(name) if name == "nginx" else None)
    result = runner.invoke(cli, ["verify"])
    assert result.exit_code == 0, result.output
    status, summary = _lines(result.output)["output/sticky/nginx/upstream.conf"]
    assert status == "skipped" and "older than the nginx 1.29.6" in summary and "snapshot only" in summary, summary
    assert runner.invoke(cli, ["verify", "--require-all"]).exit_code == 1


@pytest.mark.slow  # infragen verify over whole environments, every consumer
def test_custom_resources_without_schemas_are_skipped_with_the_hint(shipped_project: Path, runner) -> None:
    result = runner.invoke(cli, ["verify", "production"])
    lines = _lines(result.output)
    status, summary = lines["output/production/kubernetes/servicemonitor.yaml"]
    assert status == "skipped" and "--crd-schemas DIR or INFRAGEN_CRD_SCHEMAS" in summary
    assert runner.invoke(cli, ["verify", "--crd-schemas", "no-such-dir", "production"]).exit_code == 2


@pytest.mark.slow  # infragen verify over whole environments, every consumer
def test_a_resource_that_breaks_its_crd_schema_fails_verify(shipped_project: Path, runner) -> None:
    schemas = require_schemas()
    monitor = shipped_project / "output/production/kubernetes/servicemonitor.yaml"
    monitor.write_text(monitor.read_text().replace("port: http", "port: 8000"))
    result = runner.invoke(cli, ["verify", "--crd-schemas", str(schemas / "crds"), "production"])
    assert result.exit_code == 1
    status, summary = _lines(result.output)["output/production/kubernetes/servicemonitor.yaml"]
    assert status == "failed" and "ServiceMonitor schema" in summary, summary
