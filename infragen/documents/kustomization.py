"""kubernetes/kustomization.yaml: a Kustomize Component listing every other Kubernetes artifact the environment has,
and applying the Deployment patch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = ("A Kustomize Component: list this directory under `components:` in the application's kustomization (beside its\n"
        "Deployment and Service); `kubectl apply -k`, Argo CD and Flux then apply it. Not for `kubectl apply -f`.\n"
        "The ConfigMap generated from app.env's keys gets a hash of its content in its name: a changed value rolls the\n"
        "pods through the rollout strategy. The patch makes the container read each key from it.")

HERE = "kubernetes/"


def documents(env: Environment) -> list[dict[str, Any]]:
    from ..artifacts import COMPONENT, DEPLOYMENT_PATCH, for_environment  # the registry, which names this module

    own = {COMPONENT, DEPLOYMENT_PATCH}
    resources = [a.path[len(HERE):] for a in for_environment(env) if a.path.startswith(HERE) and a.path not in own]
    return [{"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component", "resources": resources,
             "configMapGenerator": [env.app_env_generator],
             "patches": [{"path": DEPLOYMENT_PATCH[len(HERE):],
                          "target": {"kind": "Deployment", "name": env.service_name}}]}]
