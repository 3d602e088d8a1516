"""kubernetes/hpa.yaml: the HorizontalPodAutoscaler of the Deployment, or of the Argo Rollout that runs its pods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import Note

if TYPE_CHECKING:
    from ..models.environment import Environment
    from ..models.settings import ScalingPolicy

NOTE = None


def _metric(resource: str, utilization: int) -> dict[str, Any]:
    return {"type": "Resource",
            "resource": {"name": resource, "target": {"type": "Utilization", "averageUtilization": utilization}}}


def _rules(window: int, select: str, policies: list[ScalingPolicy]) -> dict[str, Any]:
    return {"stabilizationWindowSeconds": window, "selectPolicy": select,
            "policies": [{"type": p.type, "value": p.value, "periodSeconds": p.period_seconds} for p in policies]}


def documents(env: Environment) -> list[dict[str, Any]]:
    a = env.spec.autoscaling
    api_version, kind, name = env.rollout.scale_target
    metrics = [_metric("cpu", a.target_cpu_percent)]
    if a.target_memory_percent is not None:
        metrics.append(_metric("memory", a.target_memory_percent))
    return [{
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": env.metadata(env.service_name),
        "spec": {
            "scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": name},
            "minReplicas": a.min_replicas,
            "maxReplicas": a.max_replicas,
            "metrics": Note("Utilisation targets are relative to the pods' resource requests: the Deployment must set "
                            "them.", metrics),
            "behavior": {
                "scaleUp": _rules(a.scale_up_stabilization_seconds, a.scale_up_select_policy, a.scale_up_policies),
                "scaleDown": _rules(a.scale_down_stabilization_seconds, a.scale_down_select_policy,
                                    a.scale_down_policies),
            },
        },
    }]
