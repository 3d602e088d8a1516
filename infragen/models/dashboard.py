"""One Grafana dashboard per environment, as plain data (serialised to JSON at the edge, by the template).

A panel per threshold alert shows the alert's own query, the side compared with the threshold, with the
threshold drawn as a line: a reader sees how close the service runs to each alert, and the panel can never
disagree with the rule (both come from the same `AlertRule`). Beside them: requests by status class, replicas
against the HPA's range (kube-state-metrics), each instance's pool connections against pool + overflow, and
scrape targets up (what MetricsMissing watches).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .alerts import AlertRule, promql_string
from .slo import TIERS, WINDOWS, Objective, period_text

SCHEMA_VERSION = 39  # Grafana 10.x/11.x dashboards
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
WIDTH, HEIGHT = 12, 8  # two panels per row of Grafana's 24 columns


@dataclass(frozen=True)
class DashboardInputs:
    service: str
    namespace: str
    environment: str
    description: str  # carries infragen's generated-file marker: JSON has no comments
    selector: str  # {job="...",namespace="..."}, as the alerts select
    rate_window: str  # as the alerts' rate()
    hpa: str  # the HorizontalPodAutoscaler's name
    pool_size: int
    pool_overflow: int


def dashboard_uid(service: str, namespace: str, environment: str) -> str:
    """Stable across builds and distinct per service, namespace and environment: two services' `production`
    dashboards never collide in one Grafana. 25 characters (Grafana allows 40)."""
    digest = hashlib.blake2b(f"{service}\0{namespace}\0{environment}".encode(), digest_size=8).hexdigest()
    return f"infragen-{digest}"


def _panel(index: int, title: str, description: str, unit: str, targets: Sequence[tuple[str, str]],
           threshold: float | int | None = None, below_is_bad: bool = False) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit}
    if threshold is not None:
        low, high = ("red", "green") if below_is_bad else ("green", "red")
        defaults["thresholds"] = {"mode": "absolute", "steps": [{"color": low, "value": None},
                                                                {"color": high, "value": threshold}]}
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": HEIGHT, "w": WIDTH, "x": index % 2 * WIDTH, "y": index // 2 * HEIGHT},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True, "calcs": []},
                    "tooltip": {"mode": "multi", "sort": "none"}},
    }


# Labels an alert's query keeps per series (the rest are summed away): the panel's legend names each series by them.
_TEMPLATE_LABEL = re.compile(r"\{\{ \$labels\.([A-Za-z_][A-Za-z0-9_]*) \}\} ?")
_KEPT_LABELS = re.compile(r"sum by \(([^)]*)\)")


def series_labels(rule: AlertRule) -> list[str]:
    """Labels the alert's query keeps: those of a `sum by (...)` but `le`, or `instance` for a per-target query
    without an aggregation."""
    kept = _KEPT_LABELS.search(rule.query)
    if kept is not None:
        return [label.strip() for label in kept.group(1).split(",") if label.strip() not in ("le", "")]
    return [] if "sum(" in rule.query or "(" in rule.query.split("{")[0] else ["instance"]


def plain_summary(rule: AlertRule) -> str:
    """The alert's summary without Prometheus' per-alert templates, which Grafana would show literally."""
    labels = _TEMPLATE_LABEL.findall(rule.summary)
    return _TEMPLATE_LABEL.sub("", rule.summary) + "".join(f", per {label}" for label in labels)


def alert_panels(rules: Sequence[AlertRule]) -> list[tuple[AlertRule, dict[str, Any]]]:
    """The panel of each threshold alert, at its position in the dashboard."""
    threshold_rules = [rule for rule in rules if rule.comparison is not None]
    panels = []
    for i, rule in enumerate(threshold_rules):
        labels = series_labels(rule)
        legend = " ".join("{{" + label + "}}" for label in labels) if labels else rule.name
        panels.append((rule, _panel(i, rule.name, f"{plain_summary(rule)}. The alert fires when this is "
                                                  f"{rule.comparison} the line for {rule.for_}.", rule.unit,
                                    [(rule.query, legend)], rule.threshold, below_is_bad=rule.comparison == "<")))
    return panels


def _at(panel: dict[str, Any], x: int, y: int, w: int = WIDTH) -> dict[str, Any]:
    panel["gridPos"] = {"h": HEIGHT, "w": w, "x": x, "y": y}
    return panel


def slo_panels(objectives: Sequence[Objective], first_id: int, y: int) -> list[dict[str, Any]]:
    """A row per SLO: the budget left over the period, the burn rate in every window against the alert factors,
    and the SLI against the objective. Every query reads the recording rules, so the panels agree with the alerts."""
    panels: list[dict[str, Any]] = []
    for o in objectives:
        def next_id() -> int:
            return first_id + len(panels)

        panels.append({"id": next_id(), "type": "row", "title": f"SLO: {o.what}", "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        y += 1
        period = o.period_text
        budget = _panel(0, f"{o.slo}: error budget left ({period})",
                        f"Share of the {period} budget not yet spent (request-weighted); below 0 the objective is "
                        "breached.", "percentunit", [(o.budget_remaining, "left")], 0, below_is_bad=True)
        budget["id"] = next_id()
        panels.append(_at(budget, 0, y, 6))
        factors = sorted({o.factor(c) for tier in TIERS for c in tier.conditions})
        burn = _panel(0, f"{o.slo}: burn rate per window",
                      "Error ratio over budget in each window: 1 spends the budget exactly over the period. Lines: the "
                      "alerts' factors (" + "; ".join(o.tier_rule(t) for t in TIERS) + ").", "short",
                      [(o.burn(w), period_text(w)) for w in WINDOWS])
        colours = ("yellow", "orange", "red", "dark-red")
        burn["fieldConfig"]["defaults"]["thresholds"] = {"mode": "absolute", "steps": [{"color": "green", "value": None}] + [
            {"color": colours[min(i, len(colours) - 1)], "value": float(f)} for i, f in enumerate(factors)]}
        burn["fieldConfig"]["defaults"]["custom"] = {"thresholdsStyle": {"mode": "line"}}
        burn["id"] = next_id()
        panels.append(_at(burn, 6, y, 12))
        objective = float(o.objective) / 100
        sli = _panel(0, f"{o.slo}: SLI against the objective",
                     f"Good requests over all requests, over 1h and over the period; the line is the objective "
                     f"{o.objective}%.", "percentunit",
                     [(f"1 - {o.ratio(3600)}", "1h"), (f"1 - {o.ratio(o.period)}", period)], objective, below_is_bad=True)
        sli["id"] = next_id()
        panels.append(_at(sli, 18, y, 6))
        y += HEIGHT
    return panels


def build_dashboard(inputs: DashboardInputs, rules: Sequence[AlertRule],
                    objectives: Sequence[Objective] = ()) -> dict[str, Any]:
    panels = [panel for _rule, panel in alert_panels(rules)]
    sel, window = inputs.selector, inputs.rate_window
    hpa = (f'{{namespace={promql_string(inputs.namespace)},'
           f'horizontalpodautoscaler={promql_string(inputs.hpa)}}}')
    capacity = inputs.pool_size + inputs.pool_overflow
    extra = [
        ("Requests by status class", "Requests per second, by the first digit of the HTTP status.", "reqps",
         [(f'sum by (status_class) (label_replace(rate(http_requests_total{sel}[{window}]), "status_class", '
           f'"${{1}}xx", "status", "([0-9]).."))', "{{status_class}}")], None, False),
        ("Replicas and the HPA's range", f"HorizontalPodAutoscaler {inputs.hpa} (kube-state-metrics).", "short",
         [(f"kube_horizontalpodautoscaler_status_current_replicas{hpa}", "current"),
          (f"kube_horizontalpodautoscaler_spec_min_replicas{hpa}", "min"),
          (f"kube_horizontalpodautoscaler_spec_max_replicas{hpa}", "max")], None, False),
        ("Database pool connections in use", f"Per instance, against pool {inputs.pool_size} + overflow "
         f"{inputs.pool_overflow} = {capacity} (the line).", "short",
         [(f"database_pool_connections_in_use{sel}", "{{instance}}")], capacity, False),
        ("Scrape targets up", "Targets of the job and namespace the alerts select; MetricsMissing fires below the line.",
         "short", [(f"count(up{sel} == 1) or vector(0)", "up")], 1, True),
    ]
    for title, description, unit, targets, threshold, below_is_bad in extra:
        panels.append(_panel(len(panels), title, description, unit, targets, threshold, below_is_bad))
    panels += slo_panels(objectives, len(panels) + 1, (len(panels) + 1) // 2 * HEIGHT)
    return {
        "uid": dashboard_uid(inputs.service, inputs.namespace, inputs.environment),
        "title": f"{inputs.service} ({inputs.environment})",
        "description": inputs.description,
        "tags": ["infragen", inputs.service, inputs.environment],
        "timezone": "browser",
        "editable": False,  # a change made in Grafana would be lost at the next build: change the settings
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "templating": {"list": [{"type": "datasource", "name": "datasource", "label": "Prometheus",
                                 "query": "prometheus"}]},
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }
