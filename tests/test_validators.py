"""Every artifact of every test environment, checked by the program that consumes it.

Artifacts are rendered fresh from the current templates (not read from output/), so a broken template
fails here even before `infragen check` notices the committed output is stale. Every failure names the
artifact and carries the tool's own message.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
from dataclasses import astuple
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from artifact_checks import alertmanager_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes_validate.utils import all_versions
from tools import Built, build_all, environment_ids, require

from infragen.artifacts import ARTIFACTS, BY_PATH, Kubernetes, for_environment
from infragen.consumers import (
    KUBERNETES,
    check_alertmanager,
    check_alertmanager_config,
    check_env_file,
    check_kubernetes,
    check_kubernetes_text,
    check_rule_tests,
    check_rules,
    kubernetes_versions,
    nginx_test,
    nginx_version,
    routing_expectations,
)
from infragen.render import render_environment

ENVIRONMENTS = environment_ids()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    return build_all(tmp_path_factory.mktemp("built"))


def _show(path: Path) -> str:
    return f"{path.parent.name}/{path.name} ({path})"


def _copy(source: Path, target: Path, edit=lambda text: text) -> Path:
    """source, edited, written to target: a broken copy for proving a check can fail."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(edit(source.read_text(encoding="utf-8")), encoding="utf-8")
    return target


# --- Kubernetes -----------------------------------------------------------------------------------------------

def test_kubernetes_versions_span_1_27_to_the_newest_bundled() -> None:
    versions = [tuple(int(p) for p in v.split(".")[:2]) for v in kubernetes_versions()]
    newest = max(tuple(int(p) for p in v.split(".")[:2]) for v in all_versions())
    assert versions[0] == (1, 27)
    assert versions[-1] == newest
    assert versions == [(1, minor) for minor in range(27, newest[1] + 1)], "a Kubernetes minor is missing"


def core_manifests(env) -> list[str]:
    """The environment's artifacts the registry declares core Kubernetes objects checked by kubernetes-validate
    (the Deployment patch is a partial object: proven through Kustomize instead)."""
    return [a.path for a in for_environment(env) if isinstance(a.resource, Kubernetes) and a.consumer is KUBERNETES]


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_kubernetes_manifests_are_valid_for_every_supported_version(built: dict[str, Built], name: str) -> None:
    manifests = core_manifests(built[name].env)
    assert manifests  # every environment has an HPA and a PDB at least
    failures = []
    for artifact in manifests:
        path = built[name].path(artifact)
        for version in kubernetes_versions():
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                assert (doc["apiVersion"], doc["kind"]) == astuple(BY_PATH[artifact].resource), _show(path)
                try:
                    kubernetes_validate.validate(doc, version, strict=True)
                except kubernetes_validate.ValidationError as exc:
                    failures.append(f"{_show(path)} on Kubernetes {version}: {'.'.join(map(str, exc.path))}: "
                                    f"{exc.message}")
    assert not failures, "kubernetes-validate --strict:\n" + "\n".join(failures)


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_manifests_point_at_the_service(built: dict[str, Built], name: str) -> None:
    """What a schema cannot see: the PDB selects the service's pods (an empty selector would match every pod
    in the namespace) and the HPA scales the service's Deployment, or the Argo Rollout that runs its pods."""
    env = built[name].env
    pdb_path, hpa_path = built[name].path("kubernetes/pdb.yaml"), built[name].path("kubernetes/hpa.yaml")
    pdb, hpa = (yaml.safe_load(p.read_text(encoding="utf-8")) for p in (pdb_path, hpa_path))
    selector = pdb["spec"]["selector"]
    assert selector == {"matchLabels": env.selector} and env.selector, f"{_show(pdb_path)}: selector {selector}"
    target = ({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": env.service_name} if env.rollout.argo
              else {"apiVersion": "apps/v1", "kind": "Deployment", "name": env.service_name})
    assert hpa["spec"]["scaleTargetRef"] == target, \
        f"{_show(hpa_path)}: scaleTargetRef {hpa['spec']['scaleTargetRef']}"
    assert pdb["metadata"]["namespace"] == hpa["metadata"]["namespace"] == env.namespace


def test_kubernetes_check_rejects_an_unknown_field(tmp_path: Path, built: dict[str, Built]) -> None:
    # Strict mode is what catches a misspelt field; prove the check is strict.
    hpa = yaml.safe_load(built["shipped:production"].path("kubernetes/hpa.yaml").read_text(encoding="utf-8"))
    hpa["spec"]["minReplica"] = hpa["spec"].pop("minReplicas")
    path = tmp_path / "hpa.yaml"
    path.write_text(yaml.safe_dump(hpa), encoding="utf-8")
    status, summary, _ = check_kubernetes(path)
    assert status == "failed" and "minReplica" in summary, summary


def test_kubernetes_check_rejects_an_integer_beyond_int32(built: dict[str, Built]) -> None:
    # The schemas only say `format: int32`, which kubernetes-validate does not enforce; the API server does.
    hpa = yaml.safe_load(built["shipped:production"].path("kubernetes/hpa.yaml").read_text(encoding="utf-8"))
    hpa["spec"]["maxReplicas"] = 2**31
    kubernetes_validate.validate(hpa, kubernetes_versions()[-1], strict=True)
    status, summary, _ = check_kubernetes_text(yaml.safe_dump(hpa))
    assert status == "failed" and "spec.maxReplicas: 2147483648" in summary, summary


# --- Prometheus -----------------------------------------------------------------------------------------------

@pytest.mark.tools
@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_promtool_check_rules_without_warnings(built: dict[str, Built], name: str) -> None:
    promtool = require("promtool")
    path = built[name].path("prometheus/alerts.yaml")
    status, summary, details = check_rules(promtool, path)
    assert status == "ok", f"{_show(path)}: {summary}\n{details}"
    assert f"{len(built[name].env.monitoring.alert_rules)} rules" in summary


@pytest.mark.slow  # promtool test rules per environment
@pytest.mark.tools
@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_generated_alert_tests_pass(built: dict[str, Built], name: str) -> None:
    promtool = require("promtool")
    path = built[name].path("tests/alerts.test.yaml")
    status, summary, details = check_rule_tests(promtool, path)
    assert status == "ok", f"{_show(path)} against {built[name].path('prometheus/alerts.yaml')}: {summary}\n{details}"


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_generated_alert_tests_cover_every_case(built: dict[str, Built], name: str) -> None:
    env = built[name].env
    spec = yaml.safe_load(built[name].path("tests/alerts.test.yaml").read_text(encoding="utf-8"))
    assert spec["rule_files"] == ["../prometheus/alerts.yaml"]
    for rule in env.monitoring.alert_rules:
        groups = {g["name"].split(": ", 1)[1].split(" (")[0]: g for g in spec["tests"] if g["name"].startswith(rule.name + ":")}
        names = " | ".join(groups)
        hold = getattr(env.spec.alerts, rule.setting).for_
        fire = next(g for n, g in groups.items() if n.startswith("fires when"))
        firing = [c for c in fire["alert_rule_test"] if c.get("exp_alerts")]
        assert len(firing) == 1 and len(firing[0]["exp_alerts"]) == 1, f"{rule.name}: one firing check"
        labels = firing[0]["exp_alerts"][0]["exp_labels"]
        assert {k: v for k, v in rule.labels} .items() <= labels.items(), f"{rule.name}: rule labels expected"
        assert _seconds(firing[0]["eval_time"]) > hold
        if hold >= 60:
            silent = [c for c in fire["alert_rule_test"] if not c.get("exp_alerts")]
            assert len(silent) == 1 and _seconds(silent[0]["eval_time"]) < _seconds(firing[0]["eval_time"]), \
                f"{rule.name}: a silent check before `for` ({hold}s) elapses"
        if rule.setting == "rollout_stuck":  # the controller's stuck phases fire; progressing, completed, others do not
            assert {"fires when paused", "fires when Abort", "fires when Error", "fires when Timeout",
                    "fires when InvalidSpec", "silent while Progressing", "silent while Completed",
                    "silent when another rollout or namespace is stuck"} <= groups.keys(), names
            continue
        if rule.comparison is None:  # MetricsMissing: targets gone or down fire; one up, or foreign ones down, do not
            assert {"fires when the target is there but down", "silent while one target is up"} <= groups.keys(), names
            assert any(n.startswith("silent when targets of another namespace") for n in groups), names
            continue
        if rule.threshold:
            assert any(n.startswith("silent just") for n in groups), f"{rule.name}: no just-short case in {names}"
        if rule.name in ("HighErrorRate", "LowCacheHitRate", "HighLatencyP95", "SlowDatabaseQueries"):
            assert "silent on zero traffic" in groups, f"{rule.name}: no zero-traffic case in {names}"
        for label in ("namespace", "job"):
            assert f"silent when the bad series belong to another {label}" in groups, f"{rule.name}: {label} case"


@pytest.mark.tools
def test_promtool_check_of_several_files_fails_when_one_does(tmp_path: Path, built: dict[str, Built]) -> None:
    promtool = require("promtool")
    good = [built[name].path("prometheus/alerts.yaml") for name in ("shipped:production", "shipped:staging")]
    assert check_rules(promtool, *good)[0] == "ok"
    broken = _copy(good[0], tmp_path / "broken/alerts.yaml", lambda text: text.replace("expr: ", "expr: ) ", 1))
    status, summary, details = check_rules(promtool, *good, broken)
    assert status == "failed" and "broken/alerts.yaml" in details, f"{summary}\n{details}"


def _seconds(text: str) -> int:
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([hms])", text))


@pytest.mark.slow  # promtool runs
@pytest.mark.tools
def test_alert_tests_follow_the_threshold(tmp_path: Path, built: dict[str, Built]) -> None:
    """Tests generated for one threshold fail against rules built with another: they carry the number."""
    promtool = require("promtool")
    source = built["shipped:production"]
    spec = source.env.spec.model_copy(update={"alerts": source.env.spec.alerts.model_copy(update={
        "error_rate": source.env.spec.alerts.error_rate.model_copy(update={"threshold": 0.2})})})
    moved = dataclasses.replace(source.env, spec=spec)
    files = render_environment(moved)
    test_file = tmp_path / "tests" / "alerts.test.yaml"
    test_file.parent.mkdir()
    test_file.write_text(files["production/tests/alerts.test.yaml"], encoding="utf-8")
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "prometheus" / "alerts.yaml").write_text(source.path("prometheus/alerts.yaml").read_text(encoding="utf-8"),
                                                         encoding="utf-8")
    assert "fires when > 0.2" in test_file.read_text(encoding="utf-8")
    status, summary, details = check_rule_tests(promtool, test_file)
    assert status == "failed" and "HighErrorRate" in summary, details
    assert moved.monitoring.alert_tests != source.env.monitoring.alert_tests


# --- Alertmanager ---------------------------------------------------------------------------------------------

@pytest.mark.tools
@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_amtool_accepts_config_and_routes_each_severity_to_its_receiver(built: dict[str, Built], name: str) -> None:
    """The file Alertmanager runs: alertmanager/alertmanager.yaml, or what the operator generates from the
    AlertmanagerConfig inside kube-prometheus-stack's configuration (infragen.operator_merge)."""
    amtool = require("amtool")
    env = built[name].env
    path = alertmanager_file(built[name].directory)
    status, summary, details = check_alertmanager(amtool, path, env)
    assert status == "ok", f"{_show(path)}: {summary}\n{details}"
    scope = (f"namespace={env.namespace}", f"service={env.service_name}")
    severities = {labels[2].split("=")[1]: receiver for labels, receiver in routing_expectations(env)
                  if labels[:2] == scope and len(labels) == 3 and labels[2].startswith("severity=")}
    assert severities == {sev: env.routing.qualified(r) for sev, r in env.routing.severity_routes}
    for severity, receiver in severities.items():  # one direct amtool call per severity, as the docs show it
        proc = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}",
                               f"--verify.receivers={receiver}", *scope, f"severity={severity}"],
                              capture_output=True, text=True)
        assert proc.returncode == 0, f"{_show(path)}: severity={severity} does not route to {receiver}: {proc.stdout}{proc.stderr}"


@pytest.mark.tools
def test_amtool_route_check_can_fail(built: dict[str, Built]) -> None:
    amtool = require("amtool")
    path = alertmanager_file(built["shipped:production"].directory)
    proc = subprocess.run([amtool, "config", "routes", "test", f"--config.file={path}",
                           "--verify.receivers=simple378-production/fraud-api/team-slack",
                           "namespace=simple378-production", "service=fraud-api", "severity=critical"],
                          capture_output=True, text=True)
    assert proc.returncode != 0, "amtool accepted a wrong receiver: the routing check proves nothing"


@pytest.mark.tools
def test_amtool_check_of_several_files_fails_when_one_does(tmp_path: Path, built: dict[str, Built]) -> None:
    amtool = require("amtool")
    good = [alertmanager_file(built[name].directory) for name in ("shipped:production", "fixture:plain-prometheus")]
    assert check_alertmanager_config(amtool, *good)[0] == "ok"
    broken = _copy(good[1], tmp_path / "broken/alertmanager.yaml",
                   lambda text: text.replace("receiver: plain-prometheus/fraud-api/oncall", "receiver: nobody", 1))
    status, summary, details = check_alertmanager_config(amtool, *good, broken)
    assert status == "failed" and 'undefined receiver "nobody"' in summary, f"{summary}\n{details}"


# --- nginx ----------------------------------------------------------------------------------------------------

def _installed_nginx() -> tuple[str, tuple[int, int, int]]:
    nginx = require("nginx")
    version = nginx_version(nginx)
    assert version is not None, f"cannot read the version of {nginx}"
    return nginx, version


@pytest.mark.tools
@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_nginx_accepts_upstream_server_and_location(built: dict[str, Built], name: str) -> None:
    nginx, installed = _installed_nginx()
    b = built[name]
    lb = b.env.spec.load_balancing
    if lb.version > installed:
        needs = "a resolve upstream" if lb.discovery is not None else f"{b.env.edge.affinity_mode} affinity"
        pytest.skip(f"{name} targets nginx {lb.nginx_version} ({needs}); "
                    f"nginx {'.'.join(map(str, installed))} is the only one installable here: checked by snapshot only")
    upstream, location, server = (b.path(f"nginx/{f}.conf") for f in ("upstream", "location", "server"))
    code, out = nginx_test(nginx, [upstream], {"/": [location]}, [server])
    assert code == 0, f"nginx -t rejects {_show(upstream)} + {_show(server)} + {_show(location)} (warnings count):\n{out}"


@pytest.mark.tools
def test_every_environment_fits_in_one_nginx(built: dict[str, Built]) -> None:
    """Upstream and zone names carry the environment, so all of them can be included side by side."""
    nginx, installed = _installed_nginx()
    loadable = [b for b in built.values() if b.env.spec.load_balancing.version <= installed]
    assert len(loadable) >= 3
    code, out = nginx_test(nginx, [b.path("nginx/upstream.conf") for b in loadable], {})
    assert code == 0, "nginx -t rejects the upstream files of " + ", ".join(b.name for b in loadable) + f" together:\n{out}"


@pytest.mark.tools
def test_nginx_check_fails_on_a_second_balancing_method(tmp_path: Path) -> None:
    # nginx only warns about a redefined balancing method (the second one silently wins): warnings must fail.
    nginx, _ = _installed_nginx()
    broken = tmp_path / "upstream.conf"
    broken.write_text("upstream twice {\n    hash $cookie_session_id consistent;\n    least_conn;\n"
                      "    server 10.0.0.1:8080;\n}\n", encoding="utf-8")
    code, out = nginx_test(nginx, [broken], {})
    assert code != 0 and "[warn]" in out, out


@pytest.mark.tools
def test_one_nginx_with_a_location_per_environment_fails_when_one_location_does(tmp_path: Path,
                                                                              built: dict[str, Built]) -> None:
    nginx, installed = _installed_nginx()
    loadable = [b for b in built.values() if b.env.spec.load_balancing.version <= installed]
    upstreams = [b.path("nginx/upstream.conf") for b in loadable]
    locations = {f"/{b.name.replace(':', '-')}/": [b.path("nginx/location.conf")] for b in loadable}
    code, out = nginx_test(nginx, upstreams, locations)
    assert code == 0, out
    first = loadable[0].path("nginx/location.conf")
    broken = _copy(first, tmp_path / "location.conf", lambda text: text + "proxy_pass http://127.0.0.1:1;\n")
    code, out = nginx_test(nginx, upstreams, {**locations, "/broken/": [broken]})
    assert code != 0 and '"proxy_pass" directive is duplicate' in out, out


_METHODS = ("hash", "ip_hash", "random", "least_conn")


@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_upstream_affinity_directive_matches_the_settings(built: dict[str, Built], name: str) -> None:
    """The one check the `sticky cookie` shape (nginx >= 1.29.6, not installable here) gets besides
    snapshots; for the other shapes the live test shows the behaviour."""
    env = built[name].env
    path = built[name].path("nginx/upstream.conf")
    body = path.read_text(encoding="utf-8").split("upstream ", 1)[1]
    directives = [line.strip().rstrip(";") for line in body.splitlines()
                  if line.strip() and not line.strip().startswith("#")]
    methods = [d for d in directives if d.split()[0] in _METHODS]
    sticky = [d for d in directives if d.startswith("sticky")]
    affinity = env.spec.load_balancing.session_affinity
    if env.edge.affinity_mode == "hash":
        assert methods == [f"hash $cookie_{affinity.cookie} consistent"] and not sticky, f"{_show(path)}: {methods + sticky}"
    elif env.edge.affinity_mode == "sticky":
        assert len(methods) <= 1, f"{_show(path)}: more than one balancing method: {methods}"
        assert sticky == [f"sticky cookie {affinity.routing_cookie} expires={env.edge.affinity_ttl} path=/ httponly"], \
            f"{_show(path)}: {sticky}"
        assert affinity.routing_cookie != affinity.cookie, f"{_show(path)}: nginx would overwrite the session cookie"
    else:
        expected = {"least_conn": ["least_conn"], "random": ["random two least_conn"], "round_robin": []}
        assert methods == expected[env.edge.balancing_method] and not sticky, f"{_show(path)}: {methods + sticky}"


# --- the env file ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ENVIRONMENTS)
def test_env_file_reads_back_in_a_shell(built: dict[str, Built], name: str) -> None:
    path = built[name].path("app.env")
    status, summary, details = check_env_file(path)
    assert status == "ok", f"{_show(path)}: {summary}\n{details}"


def test_every_artifact_names_a_consumer_that_runs_something() -> None:
    """A consumer either runs in-process or names the program it needs, and one the install hint covers."""
    from infragen.consumers import OTHER_TOOLS, TOOL_PACKAGES

    for artifact in ARTIFACTS:
        assert callable(artifact.consumer.run) and artifact.consumer.name, artifact.path
        assert artifact.consumer.tool is None or artifact.consumer.tool in {**TOOL_PACKAGES, **OTHER_TOOLS}, artifact.path


# Alert settings across their whole ranges: windows and `for` durations that are not whole minutes,
# thresholds from tiny to huge. Derandomized, so every run checks the same few cases through promtool.
_RATIO = st.floats(min_value=1e-4, max_value=0.9999)
_ALERT_SETTINGS = st.fixed_dictionaries({
    "rate_window": st.sampled_from([60, 90, 150, 300, 420, 3600]),
    "error_rate": st.tuples(_RATIO, st.sampled_from([0, 30, 61, 300])),
    "latency_p95": st.tuples(st.floats(min_value=1e-4, max_value=3600), st.sampled_from([0, 90, 600])),
    "db_pool_utilization": st.tuples(_RATIO, st.sampled_from([0, 45, 120])),
    "cache_hit_rate": st.tuples(_RATIO, st.sampled_from([0, 75, 900])),
    "unhandled_exceptions": st.tuples(st.integers(min_value=0, max_value=10**6), st.sampled_from([0, 60, 150])),
    "slow_queries": st.tuples(st.floats(min_value=1e-4, max_value=3600), st.sampled_from([0, 100, 300])),
    "rate_limited": st.tuples(st.floats(min_value=1e-6, max_value=1e6), st.sampled_from([0, 61, 600])),
})
_THRESHOLD_FIELD = {"latency_p95": "threshold_seconds", "slow_queries": "threshold_seconds",
                    "rate_limited": "threshold_per_second"}


@pytest.mark.slow  # promtool per generated example
@pytest.mark.tools
@settings(max_examples=4, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=_ALERT_SETTINGS)
def test_generated_alert_tests_pass_for_any_alert_settings(built: dict[str, Built], tmp_path: Path, chosen: dict) -> None:
    promtool = require("promtool")
    base = built["shipped:production"].env
    alerts = base.spec.alerts
    update: dict = {"rate_window": chosen["rate_window"]}
    for key, (threshold, hold) in ((k, v) for k, v in chosen.items() if k != "rate_window"):
        update[key] = getattr(alerts, key).model_copy(update={_THRESHOLD_FIELD.get(key, "threshold"): threshold, "for_": hold})
    env = dataclasses.replace(base, spec=base.spec.model_copy(update={"alerts": alerts.model_copy(update=update)}))
    out = tmp_path / f"case-{abs(hash(repr(chosen)))}"
    for rel, text in render_environment(env).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
    path = out / "production/tests/alerts.test.yaml"
    status, summary, details = check_rule_tests(promtool, path)
    assert status == "ok", f"{_show(path)} for alert settings {chosen}: {summary}\n{details}"


@pytest.mark.tools
def test_verify_reports_a_resolve_upstream_skipped_on_an_older_nginx(built: dict[str, Built]) -> None:
    """discovery (nginx >= 1.27.3) cannot load on the nginx installable here: `verify` says skipped, and why."""
    from infragen.artifacts import BY_PATH, CUSTOM_RESOURCES
    from infragen.consumers import CheckInput

    nginx, installed = _installed_nginx()
    b = built["fixture:discovery"]
    if installed >= (1, 27, 3):
        pytest.skip("this nginx loads resolve upstreams: test_nginx_accepts_upstream_server_and_location checks it")
    for path in ("nginx/upstream.conf", "nginx/server.conf", "nginx/location.conf"):
        status, summary, _ = BY_PATH[path].consumer.run(CheckInput(b.path(path), b.directory, b.env, nginx, CUSTOM_RESOURCES))
        assert status == "skipped" and "a resolve upstream (discovery)" in summary and "1.27.3" in summary, summary
    assert "resolve max_fails=3" in b.path("nginx/upstream.conf").read_text()
