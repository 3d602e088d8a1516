"""kubernetes/deployment-patch.yaml: a strategic-merge patch of the application's Deployment. Probes and app.env's
keys from the Component's ConfigMap (containers merge by name) and, for rolling updates, the update strategy. Never replicas (the HPA owns them), never an image."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.environment import Environment
    from ..models.settings import Probe

NOTE = ("A strategic-merge patch of the application's Deployment, applied by kustomization.yaml (a Kustomize Component):\n"
        "probes, app.env's keys (each from the Component's ConfigMap: `env` merges by name, so the application's own\n"
        "env and envFrom stay), and the update strategy of a rolling update. Never replicas (the HPA owns them) and\n"
        "never an image.")


def _probe(env: Environment, path: str, probe: Probe) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": env.spec.service.port}, "periodSeconds": probe.period_seconds,
            "timeoutSeconds": probe.timeout_seconds, "failureThreshold": probe.failure_threshold}


def _document(env: Environment) -> dict[str, Any]:
    r, h = env.spec.rollout, env.spec.health
    spec: dict[str, Any] = {}
    if not env.rollout.argo:  # a Rollout replaces the Deployment's own rollout: its strategy would never run
        spec["strategy"] = {"type": "RollingUpdate",
                            "rollingUpdate": {"maxSurge": r.max_surge, "maxUnavailable": r.max_unavailable}}
        spec["minReadySeconds"] = r.min_ready_seconds
        spec["progressDeadlineSeconds"] = r.progress_deadline_seconds
    spec["template"] = {"spec": {"containers": [{
        "name": env.container,
        # One entry per app.env key: `env` merges by name, so the application's own env and envFrom survive
        # (a patched envFrom list would replace the application's whole list).
        "env": [{"name": key, "valueFrom": {"configMapKeyRef": {"name": env.app_env_configmap, "key": key}}}
                for key, _ in env.app_env],
        "startupProbe": _probe(env, h.liveness_path, h.startup),
        "livenessProbe": _probe(env, h.liveness_path, h.liveness),
        "readinessProbe": _probe(env, h.readiness_path, h.readiness),
    }]}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": env.service_name}, "spec": spec}


def documents(env: Environment) -> list[dict[str, Any]]:
    return [_document(env)]
