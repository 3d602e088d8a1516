"""kubernetes/prometheusrule.yaml: the Prometheus Operator's PrometheusRule, with the rule groups of
prometheus/alerts.yaml and prometheus/slo-rules.yaml as its spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import slo_rules
from .rule_groups import groups

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = ("The same rule groups as prometheus/alerts.yaml (and slo-rules.yaml), for the Prometheus Operator: load one or the\n"
        "other, never both.")


def documents(env: Environment) -> list[dict[str, Any]]:
    return [{"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
             "metadata": env.metadata(env.service_name, env.monitoring.operator_labels),
             "spec": {"groups": groups(env)["groups"] + slo_rules.groups(env)}}]
