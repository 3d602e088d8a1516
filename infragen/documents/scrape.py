"""prometheus/scrape.yaml: a scrape job for a Prometheus without the Prometheus Operator, Kubernetes endpoints
discovery kept to the service's Service and metrics port."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import Flow, Note

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = "A scrape job for a Prometheus without the Prometheus Operator: put it under scrape_configs: in prometheus.yml."


def _relabelings(env: Environment) -> list[Any]:
    mon = env.monitoring
    keep: list[Any] = [{"source_labels": Flow((source,)), "regex": regex, "action": "keep"}
                       for source, regex in mon.scrape_keep]
    keep[0] = Note("Only the endpoints of the service's Kubernetes Service, on the port that serves the metrics.",
                   keep[0])
    copied: list[Any] = [{"source_labels": Flow(("__meta_kubernetes_namespace",)), "target_label": "namespace"},
                         {"source_labels": Flow(("__meta_kubernetes_pod_name",)), "target_label": "pod"}]
    if mon.pod_hash_label:
        copied.append(Note("The rollout's analysis selects the new pods by their rollouts-pod-template-hash label.",
                           {"source_labels": Flow(("__meta_kubernetes_pod_label_rollouts_pod_template_hash",)),
                            "target_label": "rollouts_pod_template_hash"}))
    pinned = Note("job starts as job_name; pinned to the job every alert selects.",
                  {"target_label": "job", "replacement": env.service_name})
    return [*keep, *copied, pinned]


def documents(env: Environment) -> list[dict[str, Any]]:
    mon = env.monitoring
    return [{"scrape_configs": [{
        "job_name": mon.scrape_job, "scrape_interval": mon.scrape_interval, "scrape_timeout": mon.scrape_timeout,
        "metrics_path": env.spec.monitoring.path,
        "kubernetes_sd_configs": [{"role": "endpoints", "namespaces": {"names": [env.namespace]}}],
        "relabel_configs": _relabelings(env),
    }]}]
