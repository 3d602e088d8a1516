"""The alert rule groups as a Prometheus rules file writes them: prometheus/alerts.yaml is this document, and the
PrometheusRule (kubernetes/prometheusrule.yaml) carries the same groups as its spec."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.alerts import AlertRule
    from ..models.environment import Environment

NOTE = None


def _rule(rule: AlertRule) -> dict[str, Any]:
    annotations = {"summary": rule.summary, "description": rule.description}
    if rule.runbook_url is not None:
        annotations["runbook_url"] = rule.runbook_url
    return {"alert": rule.name, "expr": rule.expr, "for": rule.for_, "labels": dict(rule.labels),
            "annotations": annotations}


def groups(env: Environment) -> dict[str, Any]:
    return {"groups": [{"name": name, "rules": [_rule(rule) for rule in rules]}
                       for name, rules in env.monitoring.rule_groups]}


def documents(env: Environment) -> list[dict[str, Any]]:
    return [groups(env)]
