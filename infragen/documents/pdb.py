"""kubernetes/pdb.yaml: the PodDisruptionBudget over the service's pods."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = None


def documents(env: Environment) -> list[dict[str, Any]]:
    field, value = env.capacity.pdb_field
    return [{
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": env.metadata(env.service_name),
        "spec": {field: value, "selector": {"matchLabels": env.selector},
                 "unhealthyPodEvictionPolicy": env.spec.disruption_budget.unhealthy_pod_eviction_policy},
    }]
