"""Monitoring: how Prometheus scrapes the service, its alert rules and their promtool tests, and the Grafana
dashboard. How Alertmanager routes the alerts is infragen.models.alerting."""

from __future__ import annotations

import re
from functools import cached_property
from typing import Any

from .alert_tests import AlertTests, build_alert_tests
from .alerts import AlertInputs, AlertRule, build_alert_rules
from .alerts import selector as alert_selector
from .dashboard import DashboardInputs, build_dashboard
from .defaults import Part, default_of
from .slo import Objective, build_objectives
from .slo_tests import build_slo_tests
from .types import format_duration


class Monitoring(Part):
    @cached_property
    def alert_inputs(self) -> AlertInputs:
        env, capacity = self.env, self.env.capacity
        return AlertInputs(job=env.service_name, namespace=env.namespace, environment=env.name,
                           settings=self.spec.alerts, pool_size=capacity.pool_size,
                           pool_overflow=capacity.pool_overflow,
                           rollout=env.service_name if env.rollout.argo else None)

    @cached_property
    def alert_rules(self) -> list[AlertRule]:
        return build_alert_rules(self.alert_inputs)

    @cached_property
    def alert_tests(self) -> AlertTests:
        """promtool unit tests of the alert rules (output tests/alerts.test.yaml)."""
        return build_alert_tests(self.alert_inputs, self.alert_rules)

    @property
    def alert_group(self) -> str:
        return f"{self.env.service_name}-{self.env.name}"

    @property
    def rule_groups(self) -> list[tuple[str, list[AlertRule]]]:
        """(group name, rules): the same objects in prometheus/alerts.yaml and the PrometheusRule."""
        return [(self.alert_group, self.alert_rules)]

    @property
    def operator_labels(self) -> dict[str, str]:
        """Labels of every Prometheus Operator resource: the standard ones, then those the cluster's Prometheus
        selects by (monitoring.labels)."""
        return dict(sorted({**self.env.standard_labels, **self.spec.monitoring.labels}.items()))

    @property
    def dashboard_labels(self) -> dict[str, str]:
        return dict(sorted({**self.env.standard_labels, **self.spec.monitoring.dashboard_labels}.items()))

    @default_of(("monitoring", "selector_labels"), "service.selector")
    def service_selector(self) -> dict[str, str]:
        """Labels that pick the Kubernetes Service whose endpoints are scraped."""
        return dict(sorted((self.spec.monitoring.selector_labels or self.env.selector).items()))

    @property
    def pod_hash_label(self) -> bool:
        """Is the pods' rollouts-pod-template-hash label kept on their series (for the rollout's analysis)?"""
        return self.env.rollout.argo

    @property
    def scrape_interval(self) -> str:
        return format_duration(self.spec.alerts.scrape_interval)

    @property
    def scrape_timeout(self) -> str:
        """Prometheus' default 10s, never longer than the interval (Prometheus refuses that)."""
        return format_duration(min(self.spec.alerts.scrape_interval, 10))

    @property
    def scrape_job(self) -> str:
        """job_name of the plain Prometheus scrape job: unique per service and environment in one prometheus.yml
        (the `job` label itself is pinned to service.name by a relabeling)."""
        return f"{self.env.service_name}-{self.env.name}"

    @property
    def scrape_keep(self) -> list[tuple[str, str]]:
        """(discovery label, anchored RE2 regex) pairs a plain Prometheus keeps endpoints by: each label of the
        monitored Service, and the name of the metrics port. Kubernetes discovery spells a label `a.b/c` as
        `__meta_kubernetes_service_label_a_b_c`."""
        keep = [(f"__meta_kubernetes_service_label_{re.sub(r'[^A-Za-z0-9_]', '_', key)}", re.escape(value))
                for key, value in self.service_selector.items()]
        keep.append(("__meta_kubernetes_endpoint_port_name", re.escape(self.spec.monitoring.port_name)))
        return keep

    @property
    def dashboard_name(self) -> str:
        return f"{self.env.service_name}-{self.env.name}-dashboard"

    @property
    def dashboard_file(self) -> str:
        """The dashboard's file name in the ConfigMap (Grafana's sidecar writes it out under this name)."""
        return f"{self.env.service_name}-{self.env.name}.json"

    @cached_property
    def dashboard(self) -> dict[str, Any]:
        env, capacity = self.env, self.env.capacity
        return build_dashboard(DashboardInputs(
            service=env.service_name, namespace=env.namespace, environment=env.name,
            description=env.header.replace("\n", " "), selector=alert_selector(self.alert_inputs),
            rate_window=format_duration(self.spec.alerts.rate_window), hpa=env.service_name,
            pool_size=capacity.pool_size, pool_overflow=capacity.pool_overflow), self.alert_rules, self.objectives)

    # --- service level objectives ------------------------------------------------------------------------------
    @cached_property
    def objectives(self) -> list[Objective]:
        """The enabled SLOs (none when slo.enabled is off): their recording rules, burn alerts and budgets."""
        env, alerts = self.env, self.spec.alerts
        return build_objectives(self.spec.slo, job=env.service_name, namespace=env.namespace, environment=env.name,
                                threshold_labels=tuple(sorted(alerts.labels.items())), runbook_url=alerts.runbook_url)

    @property
    def slo_group(self) -> str:
        return f"{self.alert_group}-slo"

    @cached_property
    def slo_tests(self) -> dict[str, Any]:
        """promtool unit tests of the SLO rules (output tests/slo.test.yaml)."""
        return build_slo_tests(self.objectives)

