"""kubernetes/servicemonitor.yaml: the Prometheus Operator's ServiceMonitor of the service's Kubernetes Service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import Note

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = None


def documents(env: Environment) -> list[dict[str, Any]]:
    m, mon = env.spec.monitoring, env.monitoring
    spec: dict[str, Any] = {"selector": {"matchLabels": mon.service_selector}}
    if mon.pod_hash_label:
        spec["podTargetLabels"] = Note("The rollout's analysis selects the new pods by this pod label (as "
                                       "rollouts_pod_template_hash).", ["rollouts-pod-template-hash"])
    spec["namespaceSelector"] = {"matchNames": [env.namespace]}
    spec["endpoints"] = [{
        "port": m.port_name, "path": m.path, "interval": mon.scrape_interval, "scrapeTimeout": mon.scrape_timeout,
        "relabelings": Note(
            "The operator names the job after the Kubernetes Service (or a label that silently falls back to it).\n"
            "Pinned here to the job every alert selects, whatever the Service is called.",
            [{"action": "replace", "targetLabel": "job", "replacement": env.service_name}]),
    }]
    return [{"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
             "metadata": env.metadata(env.service_name, mon.operator_labels), "spec": spec}]
