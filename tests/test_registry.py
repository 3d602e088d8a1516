"""The registry proves itself. Every artifact it declares runs through its own consumer for every shipped and fixture
environment that has it; what an artifact declares itself to be (core Kubernetes objects, a custom resource,
another format) is what it writes; and an artifact registered here, in-process, with a malformed document fails
the same check. Nothing here names an artifact: a new one is covered by being declared.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import FIXTURES, SHIPPED_ENVIRONMENTS
from tools import SCHEMAS, missing, require

from infragen import artifacts
from infragen.artifacts import (
    ARTIFACTS,
    CUSTOM_RESOURCES,
    DOCUMENTS_YAML,
    Artifact,
    CustomResource,
    Kubernetes,
    OtherFormat,
    for_environment,
)
from infragen.consumers import CUSTOM_RESOURCE, KUBERNETES, CheckInput, Schemas, Status, nginx_version
from infragen.load import Loader
from infragen.models.environment import Environment
from infragen.render import render_environment

SOURCES = {"shipped": SHIPPED_ENVIRONMENTS, "verify": FIXTURES / "verify-environments",
           "edge": FIXTURES / "environments", "variant": FIXTURES / "rollout-environments"}


@cache
def environments() -> dict[str, Environment]:
    return {f"{label}:{env.name}": env for label, directory in SOURCES.items()
            for env in Loader(directory).load_many(None)}


# Every (environment, artifact) the registry says exists: collected from ARTIFACTS, never listed by hand.
PAIRS = [(env_id, artifact.path) for env_id, env in environments().items() for artifact in for_environment(env)]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("registry")
    return {env_id: write(root / env_id.replace(":", "-"), env) for env_id, env in environments().items()}


def write(root: Path, env: Environment) -> Path:
    """The environment's files under root/<env>/, as build writes them; the directory."""
    for rel, text in render_environment(env).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root / env.name


def prove(artifact: Artifact, env: Environment, directory: Path) -> tuple[Status, str, str]:
    """The artifact's file through its registered consumer, as `infragen verify` runs it, with every schema given.
    A missing program or schema skips, saying what to install or set (and fails under INFRAGEN_REQUIRE_TOOLS=1)."""
    consumer = artifact.consumer
    tool = require(consumer.tool) if consumer.tool else None
    if consumer.tool == "nginx" and (nginx_version(tool or "") or (0, 0, 0)) < env.spec.load_balancing.version:
        pytest.skip(f"{env.name} targets nginx {env.spec.load_balancing.nginx_version}, newer than the one installed: "
                    "checked by snapshot only")
    given = (Schemas(crds=SCHEMAS / "crds", dashboard=SCHEMAS / "grafana" / "dashboard.jsonschema.json")
             if (SCHEMAS / "crds").is_dir() else Schemas())  # without them, those consumers skip and say why
    return consumer.run(CheckInput(directory / artifact.path, directory, env, tool, CUSTOM_RESOURCES, given))


@pytest.mark.slow  # every consumer, once per environment and artifact: promtool, amtool, nginx, kubectl, schemas
@pytest.mark.tools
@pytest.mark.parametrize(("env_id", "path"), PAIRS)
def test_every_registered_artifact_passes_its_consumer(built: dict[str, Path], env_id: str, path: str) -> None:
    status, summary, details = prove(artifacts.BY_PATH[path], environments()[env_id], built[env_id])
    if status == "skipped":
        missing(f"{env_id} {path}: {summary} (the tests read the schemas from $INFRAGEN_TEST_SCHEMAS; README, Testing, "
                "says where to get them)")
    assert status == "ok", f"{env_id} {path}: {summary}\n{details}"


def test_every_environment_source_is_covered() -> None:
    assert {env_id.split(":")[0] for env_id, _path in PAIRS} == set(SOURCES)
    assert {path for _env_id, path in PAIRS} == {a.path for a in ARTIFACTS}  # each artifact applies somewhere


def yaml_documents(text: str) -> list[Any]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


@pytest.mark.parametrize("env_id", sorted(environments()))
def test_each_artifact_writes_what_it_declares(env_id: str) -> None:
    """Core Kubernetes and custom resources: every object has the declared apiVersion and kind. Another format: no
    object of a kind some artifact declares a Kubernetes object (it would have escaped its schema check)."""
    env = environments()[env_id]
    declared = {(a.resource.api_version, a.resource.kind) for a in ARTIFACTS
                if isinstance(a.resource, (Kubernetes, CustomResource))}
    for rel, text in render_environment(env).items():
        artifact = artifacts.BY_PATH[rel.split("/", 1)[1]]
        if not artifact.path.endswith(".yaml"):
            continue
        kinds = [(d.get("apiVersion"), d.get("kind")) for d in yaml_documents(text)]
        if isinstance(artifact.resource, OtherFormat):
            assert not set(kinds) & declared, (rel, kinds)
        else:
            assert kinds and set(kinds) == {(artifact.resource.api_version, artifact.resource.kind)}, (rel, kinds)


# --- a malformed artifact, registered in-process, fails the checks above -----------------------------------------

NETWORK_POLICY = ("networking.k8s.io/v1", "NetworkPolicy")


def network_policy(env: Environment) -> dict[str, Any]:
    """A NetworkPolicy whose `ports` sits one level too high: what writing it two spaces short of the ingress rule
    gives. Valid YAML, a plausible object: only its consumer (kubernetes-validate, strict) can tell."""
    return {"header": env.header, "note": None, "documents": [{
        "apiVersion": NETWORK_POLICY[0], "kind": NETWORK_POLICY[1], "metadata": env.metadata(env.service_name),
        "spec": {"podSelector": {"matchLabels": env.selector}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"namespaceSelector": {}}]}],
                 "ports": [{"protocol": "TCP", "port": env.spec.service.port}]},
    }]}


def register(monkeypatch: pytest.MonkeyPatch, artifact: Artifact) -> None:
    monkeypatch.setattr(artifacts, "ARTIFACTS", (*ARTIFACTS, artifact))
    monkeypatch.setattr(artifacts, "BY_PATH", {**artifacts.BY_PATH, artifact.path: artifact})


def broken(resource: Kubernetes | CustomResource, consumer: Any) -> Artifact:
    return Artifact("kubernetes/networkpolicy.yaml", DOCUMENTS_YAML, network_policy, consumer,
                    "a NetworkPolicy (test only)", resource)


def test_a_malformed_artifact_fails_its_consumer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    artifact = broken(Kubernetes(*NETWORK_POLICY), KUBERNETES)
    register(monkeypatch, artifact)
    env_id = "shipped:production"
    env = environments()[env_id]
    assert (env_id, artifact.path) not in PAIRS  # registered after collection: the suite itself would collect it
    directory = write(tmp_path, env)
    test_each_artifact_writes_what_it_declares(env_id)  # declared as what it is: that check passes
    status, summary, details = prove(artifact, env, directory)
    assert status == "failed" and "ports" in summary + details, (status, summary, details)
    with pytest.raises(AssertionError, match="NetworkPolicy|ports"):
        test_every_registered_artifact_passes_its_consumer({env_id: directory}, env_id, artifact.path)


def test_a_core_kind_declared_a_custom_resource_is_caught_and_the_message_names_the_fix(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not (SCHEMAS / "crds").is_dir():
        missing(f"no CRD schemas at {SCHEMAS / 'crds'}: set INFRAGEN_TEST_SCHEMAS (README, Testing, says where to get them)")
    artifact = broken(CustomResource(*NETWORK_POLICY), CUSTOM_RESOURCE)
    register(monkeypatch, artifact)
    env = environments()["shipped:production"]
    status, summary, _details = prove(artifact, env, write(tmp_path, env))
    assert status == "skipped" and "no CRD schema for NetworkPolicy" in summary
    assert "infragen/artifacts.py" in summary and "Kubernetes(apiVersion, kind)" in summary  # the fix, not the symptom


def test_the_registry_declares_what_every_artifact_is() -> None:
    for artifact in ARTIFACTS:
        assert isinstance(artifact.resource, (Kubernetes, CustomResource, OtherFormat)), artifact.path
        if isinstance(artifact.resource, CustomResource):
            assert artifact.consumer is not KUBERNETES, artifact.path  # kubernetes-validate has no CRD schemas
