"""Deployment strategies (rolling, canary, blue-green) proven by the programs that consume them.

- `kubectl kustomize` renders an application kustomization of this module's own (a Deployment and a Service)
  that includes each environment's generated Component: the Deployment carries the probes (and a rolling
  update's strategy), never `replicas`, and every rendered object passes kubernetes-validate or its CRD schema.
  A patch that misses its Deployment is silent in Kustomize, and `infragen verify` fails on it.
- Each gate query passes `promtool check rules`, and `promtool test rules` proves its values on synthetic series
  (6% and 4% 5xx, no 5xx series, zero traffic, old pods' errors); the AnalysisTemplate's own success and failure
  conditions then turn those values into Failed, Successful and Inconclusive.
- `canary_split` is Argo Rollouts' arithmetic; `infragen explain ENV rollout` prints it per step.
- The policy rules, the bad-input errors and the invariants between the artifacts.

Variants the shipped environments do not cover live in tests/fixtures/rollout-environments/.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import pytest
import tools
import yaml
from conftest import FIXTURES, MINIMAL, SHIPPED_ENVIRONMENTS, SHIPPED_OUTPUT, files_under
from hypothesis import given, settings
from hypothesis import strategies as st
from timeline import argo_phase

import infragen.consumers
import infragen.verify
from infragen.artifacts import COMPONENT, CUSTOM_RESOURCES, DEPLOYMENT_PATCH, for_environment
from infragen.cli import cli
from infragen.consumers import check_kubernetes_text, load_kubectl_output
from infragen.load import Loader
from infragen.models.environment import Environment
from infragen.models.rollout import canary_split
from infragen.models.settings import KEEP_PREVIOUS
from infragen.policy import check_environment
from infragen.render import render_environment

VARIANTS = FIXTURES / "rollout-environments"
SOURCES = {"shipped": SHIPPED_ENVIRONMENTS, "variant": VARIANTS, "edge": FIXTURES / "environments",
           "verify": FIXTURES / "verify-environments"}
KUBERNETES = "kubernetes/"


@cache
def load(label: str, name: str) -> Environment:
    return Loader(SOURCES[label]).load(name)


@cache
def rendered(label: str, name: str) -> dict[str, str]:
    """The environment's artifacts as the current code renders them: path below output/<env>/ -> text."""
    prefix = f"{name}/"
    return {path[len(prefix):]: text for path, text in render_environment(load(label, name)).items()}


def documents(text: str) -> list[dict[str, Any]]:
    """Generated files and kubectl's output alike (kubectl writes a matcher's `matchType: =` unquoted)."""
    return load_kubectl_output(text)


def ids(labels: tuple[str, ...]) -> list[str]:
    return [f"{label}:{name}" for label in labels if SOURCES[label].is_dir() for name in Loader(SOURCES[label]).names()]


def split_id(env_id: str) -> tuple[str, str]:
    label, name = env_id.split(":")
    return label, name


ALL_IDS = ids(("shipped", "variant", "edge", "verify"))
ROLLOUT_IDS = ids(("shipped", "variant"))


def with_strategy(strategies: tuple[str, ...], env_ids: list[str] = ALL_IDS) -> list[str]:
    return [i for i in env_ids if load(*split_id(i)).rollout.strategy in strategies]


def test_the_environments_cover_every_strategy_and_variant() -> None:
    """The parametrised tests below prove what they claim only if these hold."""
    assert {load("shipped", n).rollout.strategy for n in ("development", "staging", "production")} == {
        "rolling", "canary", "blue-green"}
    assert load("shipped", "development").rollout.strategy == "rolling"
    assert load("shipped", "staging").rollout.strategy == "canary"
    assert load("shipped", "production").rollout.strategy == "blue-green"
    assert load("variant", "canary-manual").spec.rollout.canary.pause is None
    assert load("variant", "canary-ungated").rollout.analysed is False
    assert load("variant", "blue-green-auto").spec.rollout.blue_green.auto_promote is True
    assert load("variant", "canary-plain-prometheus").spec.monitoring.operator is False


# --- kubectl kustomize: the Component inside an application -------------------------------------------------

KUBECTL_MIN = (1, 21)  # kubectl's first Kustomize with Components; Debian's kubernetes-client 1.20 lacks them


@lru_cache(maxsize=1)
def _kubectl() -> tuple[str | None, tuple[int, int] | None]:
    path = shutil.which("kubectl")
    if path is None:
        return None, None
    proc = subprocess.run([path, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=60)
    try:
        info = json.loads(proc.stdout)["clientVersion"]
        return path, (int(info["major"]), int(re.match(r"\d+", info["minor"]).group()))
    except (ValueError, KeyError, TypeError, AttributeError):
        return path, None


def require_kubectl() -> str:
    """kubectl >= 1.21; otherwise skip (fail under INFRAGEN_REQUIRE_TOOLS=1) saying how to get it."""
    path, version = _kubectl()
    if path is not None and version is not None and version >= KUBECTL_MIN:
        return path
    found = "not installed" if path is None else f"at {path} is version {'.'.join(map(str, version or ())) or '?'}"
    tools.missing(f"kubectl {found}: these tests need kubectl >= 1.21 with Kustomize Components, from "
                  "https://kubernetes.io/docs/tasks/tools/ (Debian's kubernetes-client 1.20 has none)")


@pytest.mark.parametrize("required", [False, True])
@pytest.mark.parametrize("found", [(None, None), ("/usr/bin/kubectl", (1, 20))])
def test_a_missing_or_old_kubectl_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch, required: bool,
                                                               found: tuple) -> None:
    monkeypatch.setattr(tools, "REQUIRE_TOOLS", required)
    monkeypatch.setitem(globals(), "_kubectl", lambda: found)
    with pytest.raises(pytest.fail.Exception if required else pytest.skip.Exception) as raised:
        require_kubectl()
    assert "kubectl >= 1.21" in str(raised.value) and "https://kubernetes.io/docs/tasks/tools/" in str(raised.value)


def kubernetes_dir(label: str, name: str, root: Path) -> Path:
    """A copy of output/<env>/kubernetes/: the shipped build for shipped environments, else rendered now."""
    target = root / "component"
    if label == "shipped":
        shutil.copytree(SHIPPED_OUTPUT / name / "kubernetes", target)
        return target
    for path, text in rendered(label, name).items():
        if path.startswith(KUBERNETES):
            file = target / path[len(KUBERNETES):]
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(text, encoding="utf-8")
    return target


SIDECAR = {"name": "log-shipper", "image": "registry.invalid/log-shipper:1"}


# The application's own environment: a Secret read whole, and a variable of its own. Both must survive the patch.
APP_ENV_FROM = [{"secretRef": {"name": "fraud-api-secrets"}}]
APP_ENV = [{"name": "LOG_LEVEL", "value": "info"}]


def application(env: Environment, root: Path, component: Path, deployment: str | None = None) -> Path:
    """The application team's kustomization: their Deployment (no replicas: the HPA owns them) and Service, and
    the generated Component under `components:`."""
    app = root / "app"
    app.mkdir()
    labels = {"app.kubernetes.io/name": "fraud-api"}
    port = env.spec.service.port
    objects = [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": deployment or env.service_name, "namespace": env.namespace},
         "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
             "containers": [{"name": env.container, "image": "registry.invalid/fraud-api:1.4.2",
                             "ports": [{"name": "http", "containerPort": port}],
                             "envFrom": APP_ENV_FROM, "env": APP_ENV,
                             "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
                            SIDECAR]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": env.rollout.active_service, "namespace": env.namespace},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": port, "targetPort": port}]}},
    ]
    (app / "app.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False), encoding="utf-8")
    (app / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["app.yaml"],
        "components": [f"../{component.name}"]}, sort_keys=False), encoding="utf-8")
    return app


def kustomize(kubectl: str, app: Path) -> list[dict[str, Any]]:
    proc = subprocess.run([kubectl, "kustomize", str(app)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return documents(proc.stdout)


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, [(o["kind"], o["metadata"]["name"]) for o in objects]
    return found[0]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    [found] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def expected_probe(env: Environment, path: str, probe: Any) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": env.spec.service.port}, "periodSeconds": probe.period_seconds,
            "timeoutSeconds": probe.timeout_seconds, "failureThreshold": probe.failure_threshold}


def crd_errors(document: dict[str, Any], crds: Path) -> list[str]:
    import jsonschema

    group, _, version = document["apiVersion"].rpartition("/")
    path = crds / group / f"{document['kind'].lower()}_{version}.json"
    assert path.is_file(), (f"no CRD schema for {document['kind']} at {path}: add the CRD's JSON schema there (README, "
                            "Testing, says where to get them); a core Kubernetes kind is declared Kubernetes(apiVersion, "
                            "kind) in infragen/artifacts.py")
    schema = json.loads(path.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


@pytest.mark.slow  # kubectl kustomize per environment
@pytest.mark.tools
@pytest.mark.parametrize("env_id", ROLLOUT_IDS)
def test_kustomize_renders_the_component_into_the_applications_deployment(env_id: str, tmp_path: Path) -> None:
    kubectl = require_kubectl()
    crds = tools.require_schemas() / "crds"
    label, name = split_id(env_id)
    env = load(label, name)
    component = kubernetes_dir(label, name, tmp_path)
    objects = kustomize(kubectl, application(env, tmp_path, component))

    deployment = one(objects, "Deployment")
    spec, health = deployment["spec"], env.spec.health
    app = container(deployment, env.container)
    assert app["startupProbe"] == expected_probe(env, health.liveness_path, health.startup)
    assert app["livenessProbe"] == expected_probe(env, health.liveness_path, health.liveness)
    assert app["readinessProbe"] == expected_probe(env, health.readiness_path, health.readiness)
    # The patch merges into the application's container by name: its image, ports and other containers stay.
    assert app["image"] == "registry.invalid/fraud-api:1.4.2"
    assert app["ports"] == [{"name": "http", "containerPort": env.spec.service.port}]
    assert container(deployment, SIDECAR["name"]) == SIDECAR
    assert "replicas" not in spec  # the HPA owns them
    # app.env reaches the pod: every key from the generated ConfigMap under its hashed name, the application's own
    # envFrom (a Secret) and env kept.
    [config_map] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(
        env.app_env_configmap + "-")]
    assert config_map["data"] == dict(env.app_env) and config_map["metadata"]["namespace"] == env.namespace
    assert app["envFrom"] == APP_ENV_FROM
    reads = {e["name"]: e for e in app["env"]}
    assert reads["LOG_LEVEL"] == APP_ENV[0]
    assert [n for n in reads if n != "LOG_LEVEL"] == [key for key, _ in env.app_env]
    for key, _value in env.app_env:
        assert reads[key] == {"name": key, "valueFrom": {"configMapKeyRef": {
            "name": config_map["metadata"]["name"], "key": key}}}
    rollout = env.spec.rollout
    if env.rollout.strategy == "rolling":
        assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {
            "maxSurge": rollout.max_surge, "maxUnavailable": rollout.max_unavailable}}
        assert spec["minReadySeconds"] == rollout.min_ready_seconds
        assert spec["progressDeadlineSeconds"] == rollout.progress_deadline_seconds
    else:  # the Rollout runs the pods: a Deployment strategy would never run
        assert not {"strategy", "minReadySeconds", "progressDeadlineSeconds"} & set(spec)
        assert one(objects, "Rollout")["spec"]["workloadRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"],
            "scaleDown": rollout.workload_scale_down}

    # Every generated object made it in, beside the application's two.
    generated = [d for path in sorted(component.glob("*.yaml")) if path.name not in ("kustomization.yaml",
                                                                                    "deployment-patch.yaml")
                 for d in documents(path.read_text(encoding="utf-8"))]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, objects)) == sorted([("Deployment", env.service_name), ("Service", env.rollout.active_service),
                                                key(config_map), *map(key, generated)])

    custom = [o for o in objects if (o["apiVersion"], o["kind"]) in CUSTOM_RESOURCES]  # as the registry declares
    core = [o for o in objects if o not in custom]
    status, summary, details = check_kubernetes_text(yaml.safe_dump_all(core))
    assert status == "ok", details or summary
    if env.rollout.argo:
        assert {"Rollout"} <= {o["kind"] for o in custom}
    if env.rollout.analysed:
        assert {"AnalysisTemplate"} <= {o["kind"] for o in custom}
    for document in custom:
        assert crd_errors(document, crds) == [], key(document)


@pytest.mark.tools
def test_kustomize_silently_skips_a_patch_whose_deployment_is_named_otherwise(tmp_path: Path) -> None:
    """Why a lone Component proves nothing: the application's Deployment under another name gets no probes,
    and Kustomize says nothing."""
    kubectl = require_kubectl()
    env = load("shipped", "staging")
    objects = kustomize(kubectl, application(env, tmp_path, kubernetes_dir("shipped", "staging", tmp_path),
                                             deployment="fraud-api-v2"))
    deployment = one(objects, "Deployment")
    assert deployment["metadata"]["name"] == "fraud-api-v2"
    assert not {"startupProbe", "livenessProbe", "readinessProbe"} & set(container(deployment, env.container))


@pytest.fixture
def only_kubectl(monkeypatch: pytest.MonkeyPatch) -> None:
    """`verify` as on a machine with kubectl but without promtool, amtool and nginx: only the Kustomize checks run."""
    real = infragen.verify.find_tool
    monkeypatch.setattr(infragen.verify, "find_tool",
                        lambda name: None if name in infragen.consumers.TOOL_PACKAGES else real(name))


VERIFY_LINE = re.compile(r"^(?P<path>\S+)\s+(?P<status>ok|failed|skipped)\s+(?P<summary>.+)$")


def verify_lines(output: str) -> dict[str, tuple[str, str]]:
    return {m["path"]: (m["status"], m["summary"]) for line in output.splitlines() if (m := VERIFY_LINE.match(line))}


@pytest.mark.tools
@pytest.mark.slow  # kubectl kustomize and verify per case
@pytest.mark.parametrize("file, old, new", [
    # the Component's patch aimed at another Deployment
    ("kubernetes/kustomization.yaml", "      name: fraud-api\n", "      name: fraud-api-v2\n"),
    # the patch's container is not the application's
    ("kubernetes/deployment-patch.yaml", "        - name: fraud-api\n", "        - name: fraud-api-v2\n"),
], ids=["component-target", "patch-container"])
@pytest.mark.parametrize("name", ["development", "staging", "production"])
def test_verify_fails_when_the_patch_misses_the_deployment(shipped_project: Path, runner, only_kubectl, name: str,
                                                           file: str, old: str, new: str) -> None:
    require_kubectl()
    crds = tools.require_schemas() / "crds"
    ok = runner.invoke(cli, ["verify", "--crd-schemas", str(crds), name])
    assert ok.exit_code == 0, ok.output
    assert verify_lines(ok.output)[f"output/{name}/{COMPONENT}"][0] == "ok"

    path = shipped_project / "output" / name / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, text
    path.write_text(text.replace(old, new), encoding="utf-8")
    result = runner.invoke(cli, ["verify", "--crd-schemas", str(crds), name])
    assert result.exit_code == 1, result.output
    lines = verify_lines(result.output)
    for artifact in (DEPLOYMENT_PATCH, COMPONENT):
        status, summary = lines[f"output/{name}/{artifact}"]
        assert status == "failed", result.output
        assert "lacks startupProbe, livenessProbe, readinessProbe" in summary, summary


def app_dir(root: Path, env: Environment, container_name: str, own_env: list[dict[str, Any]] | None = None,
            components: list[str] | None = None) -> Path:
    """An application kustomization of the team's own, outside output/: a Deployment and a Service."""
    app = root / "deploy"
    app.mkdir(exist_ok=True)
    labels = {"app.kubernetes.io/name": env.service_name}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": env.service_name},
                  "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                      "containers": [{"name": container_name, "image": "registry.invalid/fraud-api:1.4.2",
                                      "envFrom": APP_ENV_FROM, "env": own_env or APP_ENV}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": env.rollout.active_service},
               "spec": {"selector": labels, "ports": [{"name": "http", "port": 8000}]}}
    (app / "app.yaml").write_text(yaml.safe_dump_all([deployment, service]), encoding="utf-8")
    kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
                     "resources": ["app.yaml"], **({"components": components} if components else {})}
    (app / "kustomization.yaml").write_text(yaml.safe_dump(kustomization), encoding="utf-8")
    return app


@pytest.mark.tools
@pytest.mark.slow
def test_verify_app_renders_the_applications_kustomization_and_names_a_container_the_patch_would_add(
        shipped_project: Path, runner) -> None:
    require_kubectl()
    env = load("shipped", "production")
    app = app_dir(shipped_project, env, "fraud-api")
    result = runner.invoke(cli, ["verify", "--app", "deploy", "production"])
    assert result.exit_code == 0, result.output
    assert "--app deploy (production)  ok       kubectl kustomize deploy with the Component: container 'fraud-api' " \
           f"of Deployment fraud-api gets the probes and the {len(env.app_env)} app.env keys" in result.output, \
        result.output
    # Listing the Component itself is rendered as it is (no second copy of the Component).
    app_dir(shipped_project, env, "fraud-api", components=["../output/production/kubernetes"])
    result = runner.invoke(cli, ["verify", "--app", "deploy", "production"])
    assert result.exit_code == 0 and "(it lists the Component)" in result.output, result.output
    # The application's container is named otherwise: the patch would add an image-less one.
    app_dir(shipped_project, env, "api")
    result = runner.invoke(cli, ["verify", "--app", str(app), "production"])
    assert result.exit_code == 1, result.output
    assert "the patch adds a container 'fraud-api' to Deployment fraud-api instead of merging into one (its " \
           "containers: api): set health.container: api" in result.output, result.output
    assert "container fraud-api: no image (added by the patch)\n    container api: image " \
           "registry.invalid/fraud-api:1.4.2" in result.output, result.output
    # An app.env key the application also sets itself.
    app_dir(shipped_project, env, "fraud-api", own_env=[{"name": "DATABASE_POOL_SIZE", "value": "5"}])
    result = runner.invoke(cli, ["verify", "--app", "deploy", "production"])
    assert result.exit_code == 1 and "sets DATABASE_POOL_SIZE in its own env, which app.env also gives" \
        in result.output, result.output


def test_verify_app_without_a_kustomization_is_bad_input(shipped_project: Path, runner) -> None:
    (shipped_project / "deploy").mkdir()
    result = runner.invoke(cli, ["verify", "--app", "deploy"])
    assert result.exit_code == 2 and result.stderr.startswith("deploy: no kustomization.yaml here"), result.output


@pytest.mark.tools
@pytest.mark.slow
def test_a_changed_app_env_value_gets_a_new_configmap_name(shipped_project: Path, runner) -> None:
    """A generator, not a fixed name: a changed app.env changes the pod template, so the pods roll through the
    rollout strategy (and its gates) instead of keeping the old values until they restart."""
    kubectl = require_kubectl()
    env = load("shipped", "staging")
    app = app_dir(shipped_project, env, "fraud-api", components=["../output/staging/kubernetes"])

    def config_map_name() -> str:
        [cm] = [o for o in kustomize(kubectl, app) if o["kind"] == "ConfigMap" and
                o["metadata"]["name"].startswith("fraud-api-env-")]
        return cm["metadata"]["name"]

    before = config_map_name()
    staging = shipped_project / "environments" / "staging.yaml"
    staging.write_text(staging.read_text() + "rate_limit: {requests: 120}\n", encoding="utf-8")
    assert runner.invoke(cli, ["build", "staging"]).exit_code == 0
    assert config_map_name() != before


# --- the gates through promtool ------------------------------------------------------------------------------

NEW, OLD = "abc123", "old999"  # rollouts-pod-template-hash of the new version's pods and of the stable ones
HASH_ARG = "{{args.canary-hash}}"
ANALYSED_IDS = [i for i in ROLLOUT_IDS if load(*split_id(i)).rollout.analysed]


def gate_metrics(label: str, name: str) -> dict[str, dict[str, Any]]:
    """The gates as the rendered analysis-template.yaml has them: metric name -> metric."""
    [gates] = [t for t in documents(rendered(label, name)["kubernetes/analysis-template.yaml"])
               if t["metadata"]["name"] == load(label, name).rollout.gates_template]
    return {m["name"]: m for m in gates["spec"]["metrics"]}


def gate_query(label: str, name: str, metric: str, pod_hash: str = NEW) -> str:
    query = gate_metrics(label, name)[metric]["provider"]["prometheus"]["query"]
    assert query.count(f'rollouts_pod_template_hash="{HASH_ARG}"') >= 1, query
    return query.replace(HASH_ARG, pod_hash)


def promtool(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([tools.require("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.mark.tools
@pytest.mark.parametrize("env_id", ANALYSED_IDS)
def test_each_gate_query_passes_promtool_check_rules(env_id: str, tmp_path: Path) -> None:
    label, name = split_id(env_id)
    env = load(label, name)
    metrics = gate_metrics(label, name)
    # The artifact carries the queries of the same builders as the alerts, with their thresholds.
    assert [(n, q) for n, q, _ in env.rollout.gate_queries] == [(n, m["provider"]["prometheus"]["query"])
                                                        for n, m in metrics.items()]
    assert {m["provider"]["prometheus"]["address"] for m in metrics.values()} == {env.spec.rollout.prometheus_url}
    rules = {"groups": [{"name": "gates", "rules": [
        {"record": f"gate:{metric.replace('-', '_')}:value", "expr": gate_query(label, name, metric)}
        for metric in metrics]}]}
    (tmp_path / "gates.yaml").write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    proc = promtool(["check", "rules", "gates.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(metrics)} rules found" in proc.stdout


# Each case: input series of the new (NEW) and old (OLD) pods, per-15s counter increments (None: flat, zero
# traffic), the value the gate query must give (None: no sample at all, NaN: 0/0), and the phase the template's
# own conditions must then give. Counts are chosen so the ratios are exact in floating point.
ERROR_RATE_CASES = [
    ("new pods at 6% 5xx", [(NEW, "a", "500", 3), (NEW, "a", "200", 47), (NEW, "b", "500", 3), (NEW, "b", "200", 47)],
     0.06, "Failed"),
    ("new pods at 4% 5xx; old pods at 50% do not count against them",
     [(NEW, "a", "503", 2), (NEW, "a", "200", 48), (OLD, "c", "500", 25), (OLD, "c", "200", 25)], 0.04, "Successful"),
    ("new pods with traffic but no 5xx series at all", [(NEW, "a", "200", 50), (OLD, "c", "500", 25)], 0.0,
     "Successful"),
    ("zero traffic: the new pods' counters are flat", [(NEW, "a", "200", None), (NEW, "a", "500", None)], math.nan,
     "Inconclusive"),
    ("the new pods not scraped yet", [(OLD, "c", "200", 50), (OLD, "c", "500", 25)], None, "Inconclusive"),
]
# Buckets le 0.25, 0.5, 1, +Inf: increments per 15 s of each cumulative bucket (multiples of 15: whole rates per
# second, so p95 is exact: 0.5 + 0.5 x (9.5 - 8) / 2 and 0.25 x 9.5 / 10).
LATENCY_CASES = [
    ("new pods' p95 above the gate", [(NEW, (60, 120, 150, 150))], 0.875, "Failed"),
    ("new pods' p95 below the gate; slow old pods do not count", [(NEW, (150, 150, 150, 150)), (OLD, (0, 0, 0, 150))],
     0.2375, "Successful"),
    ("zero traffic: the new pods' buckets are flat", [(NEW, None)], math.nan, "Inconclusive"),
]
BUCKETS = ("0.25", "0.5", "1", "+Inf")
STEPS = 40  # 10 minutes of 15 s scrapes
EVAL = "8m"


def _labels(env: Environment, pod_hash: str, **extra: str) -> str:
    labels = {"job": env.service_name, "namespace": env.namespace, "rollouts_pod_template_hash": pod_hash, **extra}
    return ",".join(f'{k}="{v}"' for k, v in labels.items())


def _values(increment: float | None) -> str:
    return f"1000+0x{STEPS}" if increment is None else f"0+{increment}x{STEPS}"


def _expectations(expr: str, value: float | None) -> list[dict[str, Any]]:
    """promtool 2.42 cannot compare NaN: a NaN result is asserted as `count(q != q)` being 1."""
    if value is None:
        return [{"expr": expr, "eval_time": EVAL, "exp_samples": []}]
    nan_count = [{"labels": "{}", "value": 1}] if math.isnan(value) else []
    tests = [{"expr": f"count(({expr}) != ({expr}))", "eval_time": EVAL, "exp_samples": nan_count}]
    if not math.isnan(value):
        tests.append({"expr": expr, "eval_time": EVAL, "exp_samples": [{"labels": "{}", "value": value}]})
    return tests


def gate_rule_tests(label: str, name: str) -> dict[str, Any]:
    env = load(label, name)
    tests = []
    query = gate_query(label, name, "error-rate")
    for title, series, value, _phase in ERROR_RATE_CASES:
        tests.append({"name": f"error-rate: {title}", "interval": "15s", "input_series": [
            {"series": f'http_requests_total{{{_labels(env, h, instance=f"pod-{pod}:8000", status=status)}}}',
             "values": _values(inc)} for h, pod, status, inc in series],
            "promql_expr_test": _expectations(query, value)})
    query = gate_query(label, name, "latency-p95")
    for title, pods, value, _phase in LATENCY_CASES:
        input_series = []
        for pod_hash, increments in pods:
            for i, le in enumerate(BUCKETS):
                labels = _labels(env, pod_hash, instance=f"pod-{pod_hash}:8000", le=le)
                input_series.append({"series": f"http_request_duration_seconds_bucket{{{labels}}}",
                                     "values": _values(None if increments is None else increments[i])})
        tests.append({"name": f"latency-p95: {title}", "interval": "15s", "input_series": input_series,
                      "promql_expr_test": _expectations(query, value)})
    return {"rule_files": [], "evaluation_interval": "1m", "tests": tests}


@pytest.mark.tools
@pytest.mark.parametrize("env_id", ["shipped:staging", "shipped:production"])
def test_gate_values_through_promtool_test_rules(env_id: str, tmp_path: Path) -> None:
    (tmp_path / "gates.test.yaml").write_text(yaml.safe_dump(gate_rule_tests(*split_id(env_id)), sort_keys=False),
                                              encoding="utf-8")
    proc = promtool(["test", "rules", "gates.test.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def _result(value: float | None) -> list[float]:
    """Argo's `result` of a Prometheus vector: the list of sample values."""
    return [] if value is None else [value]


@pytest.mark.parametrize("metric, title, value, phase",
                         [("error-rate", t, v, p) for t, _, v, p in ERROR_RATE_CASES]
                         + [("latency-p95", t, v, p) for t, _, v, p in LATENCY_CASES]
                         + [("error-rate", "no sample at all", None, "Inconclusive"),
                            ("latency-p95", "no sample at all", None, "Inconclusive"),
                            ("latency-p95", "0/0", math.nan, "Inconclusive"),
                            ("error-rate", "exactly at the gate", 0.05, "Successful"),
                            ("latency-p95", "exactly at the gate", 0.5, "Successful")])
def test_the_templates_own_conditions_judge_the_gate_values(metric: str, title: str, value: float | None,
                                                            phase: str) -> None:
    for env_id in ["shipped:staging", "shipped:production"]:
        assert argo_phase(gate_metrics(*split_id(env_id))[metric], _result(value)) == phase, (env_id, title)


def test_the_blue_green_pre_promotion_check_asks_the_new_stacks_health_through_the_preview_service() -> None:
    for env_id in with_strategy(("blue-green",), ROLLOUT_IDS):
        label, name = split_id(env_id)
        env = load(label, name)
        [check] = [t for t in documents(rendered(label, name)["kubernetes/analysis-template.yaml"])
                   if t["metadata"]["name"] == env.rollout.preview_check_template]
        [metric] = check["spec"]["metrics"]
        web = metric["provider"]["web"]
        assert web["url"] == (f"http://{env.rollout.preview_service}.{env.namespace}.svc:{env.spec.service.port}"
                              f"{env.spec.health.dependency_paths[0]}")
        assert web["jsonPath"] == "{$.status}"
        assert metric["consecutiveErrorLimit"] == 5  # the design's max_retries=5
        assert argo_phase(metric, "healthy") == "Successful"
        assert argo_phase(metric, "degraded") == "Failed"


# --- canary split: Argo Rollouts' arithmetic ------------------------------------------------------------------

@pytest.mark.parametrize("weight, replicas, surge, canary, stable", [
    (5, 3, 1, 1, 3), (10, 3, 1, 1, 3), (50, 3, 1, 2, 2),  # 3 replicas, surge allowed
    (5, 3, 0, 1, 2),  # maxSurge 0
    (5, 10, 3, 1, 10), (50, 10, 3, 5, 5),
    (5, 20, 5, 1, 19),
])
def test_canary_split_reproduces_argo_rollouts_worked_examples(weight, replicas, surge, canary, stable) -> None:
    split = canary_split(weight, replicas, surge)
    assert (split.canary, split.stable) == (canary, stable)
    assert split.share == canary / (canary + stable)


def test_without_surge_argo_runs_no_canary_pod_when_the_rounding_ties_at_the_top() -> None:
    """Argo's own corner ("should not get here"): 75% of 2 replicas is 1.5 pods; the ceiling (2) would leave no
    stable pod, the floor is tied, and without surge there is no other option: 0 canary pods."""
    assert tuple(canary_split(75, 2, 0)) == (0, 2)
    assert tuple(canary_split(75, 2, 1)) == (2, 1)


@settings(max_examples=400, deadline=None)
@given(weight=st.integers(1, 99), replicas=st.integers(1, 500), surge=st.integers(0, 200))
def test_canary_split_never_starves_either_side_nor_exceeds_one_extra_pod(weight: int, replicas: int,
                                                                          surge: int) -> None:
    split = canary_split(weight, replicas, surge)
    pods = replicas + (1 if surge else 0)  # Argo may run one pod over the replica count when surge allows
    assert replicas <= split.canary + split.stable <= pods
    exact = replicas * weight / 100
    tied_at_the_top = surge == 0 and math.modf(exact)[0] == 0.5 and math.ceil(exact) == replicas  # see above
    if pods >= 2 and not tied_at_the_top:
        assert split.canary >= 1 and split.stable >= 1, split
        # the closest share of pods to the weight Argo can reach with its totals
        best = min(abs(c * 100 / t - weight) for t in {replicas, pods} for c in range(1, t))
        assert abs(split.canary * 100 / (split.canary + split.stable) - weight) == pytest.approx(best)


# --- infragen explain ENV rollout -----------------------------------------------------------------------------

def test_explain_rollout_prints_each_canary_step_as_argo_runs_it(shipped_project: Path, runner) -> None:
    result = runner.invoke(cli, ["explain", "staging", "rollout"])
    assert result.exit_code == 0, result.output
    # staging: autoscaling 2-5 replicas, max_surge 25% (1 pod at 2, 2 at 5)
    rows = {1: "5%: 1 canary + 2 stable (33%) at 2 replicas, 1 canary + 5 stable (17%) at 5",
            2: "10%: 1 canary + 2 stable (33%) at 2 replicas, 1 canary + 5 stable (17%) at 5",
            3: "50%: 1 canary + 1 stable (50%) at 2 replicas, 3 canary + 3 stable (50%) at 5"}
    for step, value in rows.items():
        assert re.search(rf"^rollout\.canary\.step_{step}\s+{re.escape(value)}\s+derived: ", result.output, re.M), \
            result.output
    assert "rollout.canary.step_4" not in result.output
    rolling = runner.invoke(cli, ["explain", "development", "rollout"])
    assert rolling.exit_code == 0 and "rollout.canary.step_" not in rolling.output


# --- policy ---------------------------------------------------------------------------------------------------

STAGING = """\
tier: staging
service: {name: fraud-api, namespace: fraud-staging}
load_balancing:
  servers: ["10.0.0.1:8080", "10.0.0.2:8080"]
database: {max_connections: 500}
monitoring: {labels: {release: prometheus}}
rollout: {prometheus_url: "http://prometheus.monitoring.svc:9090"}
"""


@pytest.fixture
def partials(project: Path) -> Path:
    """_staging and _production partials, each a valid environment of its tier; files extend one and add a few lines."""
    (project / "environments" / "_staging.yaml").write_text(STAGING, encoding="utf-8")
    (project / "environments" / "_production.yaml").write_text(
        MINIMAL.replace("rollout: {strategy: rolling}\n", ""), encoding="utf-8")
    return project


def findings(project: Path, name: str, rule: str | None = None) -> list:
    found = check_environment(Loader(project / "environments").load(name))
    return [f for f in found if rule is None or f.rule == rule]


def test_canary_step_share_warns_and_names_the_replica_count_that_honours_the_weight(partials, write_env) -> None:
    write_env("staging", "extends: _staging\nautoscaling: {min_replicas: 3, max_replicas: 20}\n")
    found = findings(partials, "staging", "canary-step-share")
    assert [(step_of(f), f.level) for f in found] == [(5, "warning"), (10, "warning")]
    assert re.search(r"runs 1 canary and 3 stable pods at (autoscaling\.min_replicas )?3: ", found[0].message), \
        found[0].message
    assert "25% of the pods and of the requests, not 5%" in found[0].message
    assert str(found[0].location).startswith("environments/staging.yaml:2:")  # the min_replicas written there
    needed = {}
    for finding, weight in zip(found, (5, 10), strict=True):
        m = re.fullmatch(rf"{weight}% means at most {2 * weight}% from (\d+) replicas on", finding.hint)
        assert m, finding.hint
        needed[weight] = int(m[1])
    assert needed == {5: 9, 10: 4}
    # The count named is the one that honours the weight: one fewer does not.
    for weight in (5, 10):
        for replicas, warns in ((needed[weight], False), (needed[weight] - 1, True)):
            write_env("staging", f"extends: _staging\nautoscaling: {{min_replicas: {replicas}, max_replicas: 20}}\n")
            steps = [step_of(f) for f in findings(partials, "staging", "canary-step-share")]
            assert (weight in steps) is warns, (weight, replicas, steps)


def step_of(finding) -> int:
    """The weight of the canary step a canary-step-share finding is about."""
    return int(re.search(r"(\d+)%(?: \([^)]*\))? runs \d+ canary", finding.message)[1])


def test_the_shipped_staging_acknowledges_its_canary_steps_so_strict_stays_usable(shipped_project: Path,
                                                                                  runner) -> None:
    found = findings(shipped_project, "staging", "canary-step-share")
    assert found and {f.level for f in found} == {"info"}
    assert all("acknowledged at environments/staging.yaml:" in f.message for f in found)
    result = runner.invoke(cli, ["validate", "--strict"])
    assert result.exit_code == 0, result.output
    assert "[canary-step-share]" in result.stderr

    staging = shipped_project / "environments/staging.yaml"
    text = staging.read_text(encoding="utf-8")
    assert text.count("acknowledge: [canary-step-share, ") == 1
    staging.write_text(text.replace("acknowledge: [canary-step-share, ", "acknowledge: ["), encoding="utf-8")
    assert runner.invoke(cli, ["validate", "--strict"]).exit_code == 2
    assert runner.invoke(cli, ["validate"]).exit_code == 0


@pytest.mark.parametrize("text", [
    "extends: _staging\nrollout: {strategy: rolling}\npolicy: {acknowledge: [canary-step-share]}\n",
    "extends: _staging\nautoscaling: {min_replicas: 20, max_replicas: 20}\n"
    "policy: {acknowledge: [canary-step-share]}\n",
])
def test_an_acknowledgement_with_nothing_to_acknowledge_is_reported(partials, write_env, text: str) -> None:
    write_env("staging", text)
    [finding] = findings(partials, "staging")
    assert (finding.rule, finding.level) == ("policy-allow-unused", "warning")
    assert str(finding.location) == "environments/staging.yaml:3:24"
    assert "the environment has no such warning" in finding.message


@pytest.mark.parametrize("gate, alert, value, alert_value, alert_name", [
    ("max_error_rate", "error_rate: {threshold: 0.05}", "0.1", "0.05", "HighErrorRate"),
    ("max_latency_p95_seconds", "latency_p95: {threshold_seconds: 0.5}", "0.75", "0.5", "HighLatencyP95"),
])
def test_a_gate_looser_than_the_alert_it_mirrors_warns(partials, write_env, gate, alert, value, alert_value,
                                                       alert_name) -> None:
    write_env("staging", f"extends: _staging\nautoscaling: {{min_replicas: 20, max_replicas: 20}}\n"
                         f"alerts: {{{alert}}}\nrollout: {{gates: {{{gate}: {value}}}}}\n")
    [finding] = findings(partials, "staging")
    assert (finding.rule, finding.level) == ("gates-looser-than-alerts", "warning")
    assert finding.field == f"rollout.gates.{gate}"
    assert alert_name in finding.message and str(finding.location).startswith("environments/staging.yaml:4:")
    assert finding.hint == f"set rollout.gates.{gate} to at most {alert_value}"
    write_env("staging", f"extends: _staging\nautoscaling: {{min_replicas: 20, max_replicas: 20}}\n"
                         f"alerts: {{{alert}}}\nrollout: {{gates: {{{gate}: {alert_value}}}}}\n")
    assert findings(partials, "staging") == []  # as tight as the alert: fine


@pytest.mark.parametrize("health", [
    "health: {liveness_path: /health/detailed}",
    "health: {liveness_path: /deps, dependency_paths: [/deps]}",
])
def test_a_liveness_probe_on_a_dependency_check_is_an_error(partials, write_env, runner, health: str) -> None:
    write_env("production", f"extends: _production\nrollout: {{strategy: rolling}}\n{health}\n")
    [finding] = findings(partials, "production")
    assert (finding.rule, finding.level, finding.field) == ("liveness-checks-dependencies", "error",
                                                            "health.liveness_path")
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2 and "[liveness-checks-dependencies]" in result.stderr
    assert files_under(partials / "output") == {}


@pytest.mark.parametrize("rollout, field", [
    ("{strategy: canary, canary: {analysis: false}}", "rollout.canary.analysis"),
    ("{strategy: blue-green, blue_green: {analysis: false}}", "rollout.blue_green.analysis"),
])
def test_production_rollouts_without_analysis_are_errors_unless_allowed(partials, write_env, rollout, field) -> None:
    url = 'prometheus_url: "http://prometheus.monitoring.svc:9090", '
    text = f"extends: _production\nautoscaling: {{min_replicas: 20, max_replicas: 20}}\nrollout: {{{url}{rollout[1:]}\n"
    write_env("production", text)
    [finding] = findings(partials, "production", "production-ungated-rollout")
    assert (finding.level, finding.field) == ("error", field)
    write_env("production", text + "policy: {allow: [production-ungated-rollout]}\n")
    [finding] = findings(partials, "production", "production-ungated-rollout")
    assert finding.level == "warning"
    assert "allowed by the exception at environments/production.yaml:4:" in finding.message
    # Outside production the same rollout is no error.
    write_env("staging", text.replace("_production", "_staging").replace(url, ""))
    assert findings(partials, "staging", "production-ungated-rollout") == []


def test_blue_green_fleet_counts_three_full_stacks_against_the_database(partials, write_env) -> None:
    # 10 replicas x (pool 20 + overflow 10) per stack; a release inside the rollback window runs three stacks:
    # 900 connections, 1000 x 90% = 900 usable.
    url = 'prometheus_url: "http://prometheus.monitoring.svc:9090"'
    write_env("production", f"extends: _production\nrollout: {{strategy: blue-green, {url}}}\n")
    [finding] = findings(partials, "production", "fleet-exceeds-database")
    assert finding.level == "error"
    assert "the fleet at peak opens 900: 3 x autoscaling.max_replicas 10" in finding.message
    assert "rollout.blue_green.rollback_window 3h" in finding.message
    assert finding.hint.startswith("raise database.max_connections to at least 1000")
    assert finding.hint.endswith(KEEP_PREVIOUS) and KEEP_PREVIOUS == (
        "or set `rollout.strategy: rolling` to keep the previous output")
    for max_connections, fails in ((1000, False), (999, True)):
        write_env("production", f"extends: _production\nrollout: {{strategy: blue-green, {url}}}\n"
                                f"database: {{max_connections: {max_connections}}}\n")
        assert bool(findings(partials, "production", "fleet-exceeds-database")) is fails, max_connections
    # The same fleet rolling: max_replicas + 25% surge = 13 pods, 390 connections, fits in 500.
    write_env("production", "extends: _production\nrollout: {strategy: rolling}\n")
    assert findings(partials, "production", "fleet-exceeds-database") == []


@pytest.mark.parametrize("strategy, location", [
    ("", "environments/staging.yaml: "),  # the tier's default strategy
    ("rollout: {strategy: canary}\n", "environments/staging.yaml:8:21: "),
    ("rollout: {strategy: blue-green}\n", "environments/staging.yaml:8:21: "),
])
def test_a_gated_strategy_without_prometheus_fails_naming_the_key(project, write_env, runner, strategy,
                                                                  location) -> None:
    write_env("staging", STAGING.replace('rollout: {prometheus_url: "http://prometheus.monitoring.svc:9090"}\n',
                                         "autoscaling: {min_replicas: 10, max_replicas: 10}\n" + strategy))
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2, result.output
    [line, summary] = result.stderr.splitlines()
    assert line.startswith(location) and "[rollout-needs-prometheus]" in line, line
    assert "rollout.prometheus_url" in line and line.endswith(KEEP_PREVIOUS), line
    assert summary == "infragen: 1 problem; nothing was written"
    assert files_under(project / "output") == {}
    write_env("staging", STAGING.replace("rollout: {", "autoscaling: {min_replicas: 10, max_replicas: 10}\n"
                                         + (strategy[:-2] + ", " if strategy else "rollout: {")))
    assert runner.invoke(cli, ["build"]).exit_code == 0


@pytest.mark.parametrize("strategy", ["canary", "blue-green"])
def test_a_rollout_without_its_analysis_needs_no_prometheus(project, write_env, runner, strategy) -> None:
    """Nothing queries Prometheus when the analysis is off: no URL asked for, no AnalysisTemplate written."""
    section = "canary" if strategy == "canary" else "blue_green"
    write_env("staging", STAGING.replace('rollout: {prometheus_url: "http://prometheus.monitoring.svc:9090"}\n',
                                         "autoscaling: {min_replicas: 10, max_replicas: 10}\n"
                                         f"rollout: {{strategy: {strategy}, {section}: {{analysis: false}}}}\n"))
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 0, result.output
    assert "rollout-needs-prometheus" not in result.output
    written = files_under(project / "output")
    assert "staging/kubernetes/rollout.yaml" in written
    assert "staging/kubernetes/analysis-template.yaml" not in written


# --- bad input ------------------------------------------------------------------------------------------------

BASE = MINIMAL.replace("rollout: {strategy: rolling}\n", "")  # six lines: each case starts on line 7
URL = "  prometheus_url: http://prometheus.monitoring.svc:9090\n"
BIG_DATABASE = BASE.replace("max_connections: 500", "max_connections: 1000")  # two blue-green stacks fit


@pytest.mark.parametrize("text, where, message", [
    ("rollout:\n  strategy: canary\n" + URL + "  canary: {steps: [5, 50, 10]}\n", "10:12",
     "rollout.canary.steps: weights must increase strictly: 50 then 10"),
    ("rollout:\n  strategy: canary\n" + URL + "  canary: {steps: [5, 5]}\n", "10:12",
     "rollout.canary.steps: weights must increase strictly: 5 then 5"),
    ("rollout:\n  strategy: canary\n" + URL + "  canary: {steps: [0, 50]}\n", "10:12",
     "rollout.canary.steps: weight 0 is not 1-99"),
    ("rollout:\n  strategy: canary\n" + URL + "  canary: {steps: [5, 100]}\n", "10:12",
     "rollout.canary.steps: weight 100 is not 1-99"),
    ("rollout:\n  strategy: canary\n" + URL + "  canary: {steps: ['5']}\n", "10:20",
     "rollout.canary.steps.0: Input should be a valid integer"),
    ("rollout:\n  strategy: canary\n" + URL + "  canary: {step: [5]}\n", "10:12",
     "rollout.canary.step: unknown key 'step'; did you mean 'steps'?"),
    ("rollout:\n  strategy: blue-green\n" + URL + "  blue_green: {rollback_window: 0s}\n", "10:33",
     "rollout.blue_green.rollback_window: a rollback window of 0"),
    ("rollout:\n  strategy: canary\n" + URL + "  gates: {count: 5}\n", "10:18",
     "rollout.gates.count: cannot apply to a canary: its gates run in the background from the first weight until "
     "the rollout completes"),
    ("rollout:\n  strategy: canary\n" + URL + "  canary: {pause: 3m}\n", "10:19",
     "rollout.canary.pause: 3m ends before the gates can abort a version failing from its first weight, 3m35s after"),
    ("rollout:\n  strategy: canary\n" + URL + "  canary: {pause: 3m35s}\n", "10:19",
     "rollout.canary.pause: 3m35s ends before the gates can abort"),
    ("rollout:\n  strategy: blue-green\n" + URL + "  gates: {count: 8}\n", "10:18",
     "rollout.gates.count: 8 post-promotion measurements judge the new stack for 9m35s after the switch (first after "
     "2m35s, then every 1m), less than rollout.gates.full_traffic 10m; set rollout.gates.count to at least 9"),
    ("rollout:\n  strategy: blue-green\n" + URL + "  gates: {count: 1, full_traffic: 1m}\n", "10:18",
     "rollout.gates.count: 1 post-promotion measurements are not above failure_limit 1, so they could never fail; "
     "set rollout.gates.count to at least 2"),
    ("rollout: {strategy: rolling, max_surge: 0, max_unavailable: 0}\n", "7:1",
     "rollout: max_surge and max_unavailable are both 0"),
    ("rollout: {strategy: canaries}\n", "7:21",
     "rollout.strategy: Input should be 'rolling', 'canary' or 'blue-green'; did you mean 'canary'?"),
    ("rollout: {strategy: rolling}\nhealth: {liveness_path: health}\n", "8:25",
     "health.liveness_path: expected an absolute path such as /health (got 'health')"),
    ("rollout: {strategy: rolling}\nhealth: {readiness_path: /health check}\n", "8:26",
     "health.readiness_path: expected an absolute path such as /health (got '/health check')"),
    ("rollout: {strategy: rolling}\nhealth: {dependency_paths: [health/detailed]}\n", "8:29",
     "health.dependency_paths.0: expected absolute paths such as /health/detailed"),
    ("rollout: {strategy: canary, prometheus_url: 'prometheus:9090'}\n", "7:45",
     "rollout.prometheus_url: expected an http:// or https:// URL"),
    ("rollout: {strategy: canary, prometheus_url: 'ftp://prometheus:9090'}\n", "7:45",
     "rollout.prometheus_url: expected an http:// or https:// URL"),
])
def test_bad_rollout_input_is_one_located_line_and_nothing_is_written(project, write_env, runner, text, where,
                                                                      message) -> None:
    write_env("production", MINIMAL)
    assert runner.invoke(cli, ["build"]).exit_code == 0
    before = files_under(project / "output")
    assert before
    write_env("production", BASE + text)
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2, result.output
    [line, summary] = result.stderr.splitlines()
    assert line.startswith(f"environments/production.yaml:{where}: {message}"), line
    assert summary == "infragen: 1 problem; nothing was written"
    assert "Traceback" not in result.output
    assert files_under(project / "output") == before


@pytest.mark.parametrize("blue_green", ["{preview_service: fraud-api}", "{active_service: fraud-api-preview}"])
def test_blue_green_active_and_preview_services_must_differ(project, write_env, runner, blue_green: str) -> None:
    write_env("production", BIG_DATABASE + "rollout:\n  strategy: blue-green\n" + URL + f"  blue_green: {blue_green}\n")
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2, result.output
    assert "rollout.blue_green." in result.stderr
    assert files_under(project / "output") == {}


@pytest.mark.parametrize("strategy", ["rolling", "canary"])
def test_progress_deadline_must_exceed_min_ready_seconds(project, write_env, runner, strategy: str) -> None:
    write_env("production", BIG_DATABASE + f"rollout:\n  strategy: {strategy}\n" + URL
              + "  min_ready_seconds: 600\n  progress_deadline_seconds: 300\n")
    result = runner.invoke(cli, ["build"])
    assert result.exit_code == 2, result.output
    assert "progress_deadline_seconds" in result.stderr
    assert files_under(project / "output") == {}


# --- invariants between the artifacts -------------------------------------------------------------------------

def objects_of(label: str, name: str, path: str) -> list[dict[str, Any]]:
    return documents(rendered(label, name)[path])


@pytest.mark.parametrize("env_id", with_strategy(("blue-green",)))
def test_the_preview_service_is_never_scraped_as_the_service(env_id: str) -> None:
    """After the switch both Services select the same pods: a preview Service the ServiceMonitor also selected
    would have every series scraped twice."""
    label, name = split_id(env_id)
    env = load(label, name)
    [preview] = objects_of(label, name, "kubernetes/preview-service.yaml")
    assert preview["metadata"]["name"] == env.rollout.preview_service != env.rollout.active_service
    assert preview["spec"]["selector"] == env.selector
    if env.spec.monitoring.operator:
        [monitor] = objects_of(label, name, "kubernetes/servicemonitor.yaml")
        selected = monitor["spec"]["selector"]["matchLabels"]
    else:
        selected = env.monitoring.service_selector
    labels = preview["metadata"]["labels"]
    assert not selected.items() <= labels.items(), (selected, labels)


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_hpa_scales_the_rollout_when_one_runs_the_pods(env_id: str) -> None:
    label, name = split_id(env_id)
    env = load(label, name)
    [hpa] = objects_of(label, name, "kubernetes/hpa.yaml")
    target = hpa["spec"]["scaleTargetRef"]
    if env.rollout.argo:
        [rollout] = objects_of(label, name, "kubernetes/rollout.yaml")
        assert target == {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": rollout["metadata"]["name"]}
        assert "replicas" not in rollout["spec"]
    else:
        assert "kubernetes/rollout.yaml" not in rendered(label, name)
        [patch] = objects_of(label, name, DEPLOYMENT_PATCH)
        assert target == {"apiVersion": "apps/v1", "kind": "Deployment", "name": patch["metadata"]["name"]}


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_the_pod_hash_label_reaches_the_series_exactly_for_gated_strategies(env_id: str) -> None:
    label, name = split_id(env_id)
    env = load(label, name)
    files = rendered(label, name)
    if env.spec.monitoring.operator:
        [monitor] = objects_of(label, name, "kubernetes/servicemonitor.yaml")
        assert monitor["spec"].get("podTargetLabels") == (["rollouts-pod-template-hash"] if env.rollout.argo else None)
    else:
        [job] = yaml.safe_load(files["prometheus/scrape.yaml"])["scrape_configs"]
        copy = {"source_labels": ["__meta_kubernetes_pod_label_rollouts_pod_template_hash"],
                "target_label": "rollouts_pod_template_hash"}
        assert (copy in job["relabel_configs"]) is env.rollout.argo


@pytest.mark.parametrize("env_id", ALL_IDS)
def test_the_component_lists_exactly_the_environments_other_kubernetes_artifacts(env_id: str) -> None:
    label, name = split_id(env_id)
    env = load(label, name)
    [component] = objects_of(label, name, COMPONENT)
    registry = [a.path[len(KUBERNETES):] for a in for_environment(env)
                if a.path.startswith(KUBERNETES) and a.path not in (COMPONENT, DEPLOYMENT_PATCH)]
    files = sorted(p[len(KUBERNETES):] for p in rendered(label, name)
                   if p.startswith(KUBERNETES) and p not in (COMPONENT, DEPLOYMENT_PATCH))
    assert component["apiVersion"] == "kustomize.config.k8s.io/v1alpha1" and component["kind"] == "Component"
    assert component["resources"] == registry and sorted(registry) == files
    assert component["patches"] == [{"path": "deployment-patch.yaml",
                                     "target": {"kind": "Deployment", "name": env.service_name}}]
    [patch] = objects_of(label, name, DEPLOYMENT_PATCH)
    assert patch["metadata"]["name"] == env.service_name
    assert "replicas" not in patch["spec"]
    assert all(set(c) == {"name", "env", "startupProbe", "livenessProbe", "readinessProbe"}  # never an image
               for c in patch["spec"]["template"]["spec"]["containers"])
    # app.env's keys: generated into a ConfigMap by the Component, each read by the container from it
    assert component["configMapGenerator"] == [env.app_env_generator]
    [app] = patch["spec"]["template"]["spec"]["containers"]
    assert app["env"] == [{"name": key, "valueFrom": {"configMapKeyRef": {"name": env.app_env_configmap, "key": key}}}
                          for key, _ in env.app_env]
    assert env.app_env_generator["literals"] == [f"{key}={value}" for key, value in env.app_env]


@pytest.mark.parametrize("env_id", with_strategy(("canary", "blue-green")))
def test_the_rollout_names_what_exists(env_id: str) -> None:
    """The analysis templates the Rollout names are in analysis-template.yaml, with the argument it passes; the
    Services it switches are the application's and the generated preview."""
    label, name = split_id(env_id)
    env = load(label, name)
    [rollout] = objects_of(label, name, "kubernetes/rollout.yaml")
    templates = {t["metadata"]["name"]: t for t in objects_of(label, name, "kubernetes/analysis-template.yaml")} \
        if env.rollout.analysed else {}
    strategy = rollout["spec"]["strategy"]
    references = []
    if env.rollout.strategy == "canary":
        if "analysis" in strategy["canary"]:
            references.append(strategy["canary"]["analysis"])
    else:
        bg = strategy["blueGreen"]
        assert (bg["activeService"], bg["previewService"]) == (env.rollout.active_service, env.rollout.preview_service)
        assert bg["scaleDownDelaySeconds"] == env.spec.rollout.blue_green.rollback_window
        assert bg["scaleDownDelayRevisionLimit"] == 1
        references += [bg[k] for k in ("prePromotionAnalysis", "postPromotionAnalysis") if k in bg]
    assert bool(references) is env.rollout.analysed
    for reference in references:
        for template in reference["templates"]:
            spec = templates[template["templateName"]]["spec"]
            wanted = {a["name"] for a in spec.get("args", [])}
            assert {a["name"] for a in reference.get("args", [])} == wanted
            for arg in reference.get("args", []):
                assert arg["valueFrom"] == {"podTemplateHashValue": "Latest"}  # the new version's pods


# --- variants of each strategy --------------------------------------------------------------------------------

def test_a_canary_without_pause_duration_waits_for_a_person() -> None:
    [rollout] = objects_of("variant", "canary-manual", "kubernetes/rollout.yaml")
    canary = rollout["spec"]["strategy"]["canary"]
    assert canary["steps"] == [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}]
    assert (canary["maxSurge"], canary["maxUnavailable"]) == (1, 0)
    [rollout] = objects_of("shipped", "staging", "kubernetes/rollout.yaml")
    assert {"pause": {"duration": "5m"}} in rollout["spec"]["strategy"]["canary"]["steps"]


def test_a_canary_without_analysis_has_no_template() -> None:
    files = rendered("variant", "canary-ungated")
    assert "kubernetes/analysis-template.yaml" not in files
    [rollout] = documents(files["kubernetes/rollout.yaml"])
    assert "analysis" not in rollout["spec"]["strategy"]["canary"]


def test_blue_green_promotion_follows_the_setting() -> None:
    [auto] = objects_of("variant", "blue-green-auto", "kubernetes/rollout.yaml")
    assert auto["spec"]["strategy"]["blueGreen"]["autoPromotionEnabled"] is True
    assert auto["spec"]["strategy"]["blueGreen"]["scaleDownDelaySeconds"] == 3600
    [manual] = objects_of("shipped", "production", "kubernetes/rollout.yaml")
    assert manual["spec"]["strategy"]["blueGreen"]["autoPromotionEnabled"] is False  # production's tier default
    assert manual["spec"]["strategy"]["blueGreen"]["scaleDownDelaySeconds"] == 10800


@pytest.mark.parametrize("strategy, surge, window, pods, stacks", [
    ("rolling", 3, 0, 13, 0), ("canary", 3, 0, 13, 0), ("canary", 0, 0, 10, 0),
    ("blue-green", 3, 10800, 30, 3), ("blue-green", 3, 0, 20, 2)])
def test_one_function_counts_each_strategys_peak_pods(strategy: str, surge: int, window: int, pods: int,
                                                      stacks: int) -> None:
    from infragen.models.capacity import peak_pods

    splits = [(w, canary_split(w, 10, surge)) for w in (5, 10, 50)] if strategy == "canary" else []
    peak = peak_pods(strategy, 10, surge, splits, window)
    assert (peak.pods, peak.stacks) == (pods, stacks), peak
    # every canary step's pods stay within the peak (Argo caps a step at replicas + maxSurge)
    assert all(split.canary + split.stable <= peak.pods for _, split in splits)


def test_explain_and_review_read_the_same_peak(shipped_project: Path, runner) -> None:
    env = load("shipped", "production")
    result = runner.invoke(cli, ["explain", "production", "rollout.peak_pods"])
    assert f"rollout.peak_pods  {env.capacity.peak_at(10).pods}" in result.output and "3 x autoscaling.max_replicas 10" \
        in result.output, result.output
    from infragen.review import margins

    [fleet] = [m for m in margins(None, env) if m.name.startswith("database connections")]
    assert fleet.after == "30 pods: 900 of 1080 usable (180 spare)"


# rollout_info's phase label, exactly as argo-rollouts' controller/metrics/rollouts.go (calculatePhase) sets it.
CONTROLLER_PHASES = {"Progressing", "Completed", "Paused", "Timeout", "Error", "Abort", "InvalidSpec"}


@pytest.mark.parametrize("name", ["staging", "production"])
def test_rollout_stuck_reads_the_controllers_real_phases_in_both_namespace_layouts(name: str) -> None:
    files = rendered("shipped", name)
    [rule] = [r for g in yaml.safe_load(files["prometheus/alerts.yaml"])["groups"] for r in g["rules"]
              if r.get("alert") == "RolloutStuck"]
    phases = set(re.findall(r'phase=~"([^"]+)"', rule["expr"])[0].split("|"))
    assert phases == CONTROLLER_PHASES - {"Progressing", "Completed"}, rule["expr"]
    assert 'namespace="' in rule["expr"] and 'exported_namespace="' in rule["expr"]
    assert rule["labels"]["severity"] == "warning"  # the stable version still serves: never a page
    series = [s["series"] for t in yaml.safe_load(files["tests/alerts.test.yaml"])["tests"]
              for s in t["input_series"] if s["series"].startswith("rollout_info")]
    assert {re.search(r'phase="([^"]+)"', s)[1] for s in series} <= CONTROLLER_PHASES  # no invented phase
    assert any("exported_namespace=" in s for s in series) and any("exported_namespace=" not in s for s in series)
    fired = [t["name"] for t in yaml.safe_load(files["tests/alerts.test.yaml"])["tests"]
             if t["name"].startswith("RolloutStuck") and "fires" in t["name"]]
    for phase in ("Paused", "Abort", "Error", "Timeout", "InvalidSpec"):
        assert sum(phase.lower() in n.lower() for n in fired) >= 2, (phase, fired)  # in both layouts


@pytest.mark.parametrize("tier", ["development", "staging", "production"])
def test_rollout_stuck_is_a_warning_in_every_tier(project, write_env, tier: str) -> None:
    write_env("env", MINIMAL.replace("tier: production", f"tier: {tier}").replace(
        "rollout: {strategy: rolling}", 'rollout: {strategy: canary, prometheus_url: "http://p:9090"}'))
    env = Loader(project / "environments").load("env")
    assert env.spec.alerts.rollout_stuck.severity == "warning"
