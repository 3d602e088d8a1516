"""prometheus/slo-rules.yaml (and the SLO group of the PrometheusRule): one rule group per environment with SLOs,
the recording rules first, then the burn-rate alerts that read them (a group runs its rules in order, so the
alerts see this evaluation's ratios; separate groups run in no fixed order, in promtool as in Prometheus)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = ("Service level objectives: the SLIs' error ratios per window (request-weighted), the budget left over the period,\n"
        "and the burn-rate alerts. Load it beside alerts.yaml; with the Prometheus Operator load\n"
        "kubernetes/prometheusrule.yaml instead, which holds the same group.")


def groups(env: Environment) -> list[dict[str, Any]]:
    objectives = env.monitoring.objectives
    if not objectives:
        return []
    rules: list[dict[str, Any]] = [{"record": r.record, "expr": r.expr, "labels": dict(r.labels)}
                                   for o in objectives for r in o.recording_rules()]
    for o in objectives:
        for alert in o.alert_rules():
            rules.append({"alert": alert.name, "expr": alert.expr, "for": alert.for_, "labels": dict(alert.labels),
                          "annotations": dict(alert.annotations)})
    return [{"name": env.monitoring.slo_group, "rules": rules}]


def documents(env: Environment) -> list[dict[str, Any]]:
    return [{"groups": groups(env)}]
