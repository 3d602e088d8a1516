"""kubernetes/preview-service.yaml: the Service that reaches the new blue-green stack before the switch (Argo
Rollouts adds the pod-template-hash selector)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = ("Reaches the new blue-green stack before the switch (the pre-promotion health check asks it). Its labels are not\n"
        "ones the ServiceMonitor selects: after the switch it selects the same pods as the active Service.")


def _document(env: Environment) -> dict[str, Any]:
    port = env.spec.service.port
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": env.metadata(env.rollout.preview_service, env.rollout.preview_labels),
            "spec": {"selector": env.selector, "ports": [{"name": env.spec.monitoring.port_name, "port": port,
                                                          "targetPort": port, "protocol": "TCP"}]}}


def documents(env: Environment) -> list[dict[str, Any]]:
    return [_document(env)]
