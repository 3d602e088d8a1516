"""kubernetes/dashboard-configmap.yaml: grafana/dashboard.json in a ConfigMap labelled for Grafana's sidecar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import Block

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = ("grafana/dashboard.json for Grafana's dashboard sidecar (kube-prometheus-stack loads ConfigMaps with its "
        "label).")


def documents(env: Environment) -> list[dict[str, Any]]:
    from ..render import json_document  # the dashboard's own file, byte for byte

    mon = env.monitoring
    return [{"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": env.metadata(mon.dashboard_name, mon.dashboard_labels),
             "data": {mon.dashboard_file: Block(json_document(mon.dashboard))}}]
