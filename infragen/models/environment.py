"""A resolved environment: its name, where it came from, its validated settings, and every derived value.

Artifacts read only from here (through their context functions in infragen.artifacts). Anything computed
(pool sizes, surge pods, nginx rate, names that carry the environment, alert rules) is a property, so a
template never does arithmetic or applies a default, and two artifacts that carry the same number read it
from the same property. `derivations()` and `unset_default()` give each derived value with the formula that
made it, numbers filled in: `infragen explain` prints those instead of restating the arithmetic.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ..errors import Location, PathKey
from .alert_tests import AlertTests, build_alert_tests
from .alerts import AlertInputs, AlertRule, build_alert_rules, error_ratio, latency_p95, promql_string, service_matchers
from .alerts import selector as alert_selector
from .dashboard import DashboardInputs, build_dashboard
from .rollout import HASH_ARG, Split, canary_split, gate_conditions
from .settings import GATED, SEVERITIES, EnvironmentSpec
from .types import format_duration, format_number, split_address


@dataclass(frozen=True)
class Derivation:
    """A value infragen computes, under a setting-like dotted name, with its formula and the numbers put in."""

    setting: str
    value: Any
    formula: str


@dataclass(frozen=True, eq=False)
class Environment:
    name: str
    source: str  # the file as named in headers: "environments/production.yaml"
    partials: tuple[str, ...]  # partial files merged beneath it, in order
    spec: EnvironmentSpec
    locations: Mapping[PathKey, Location] = field(default_factory=dict, repr=False)

    # --- identity --------------------------------------------------------------------------------
    @property
    def job(self) -> str:
        """Prometheus `job` label of the service's series: the service name (the application's metrics contract)."""
        return self.spec.service.name

    @property
    def service_name(self) -> str:
        return self.spec.service.name

    @property
    def deployment(self) -> str:
        return self.spec.service.name

    @property
    def scale_target(self) -> tuple[str, str, str]:
        """(apiVersion, kind, name) of the workload the HPA scales: the Argo Rollout when one runs the Deployment's
        pods (an HPA still aimed at the Deployment would fight the Rollout's controller)."""
        if self.gated:
            return ("argoproj.io/v1alpha1", "Rollout", self.rollout_name)
        return ("apps/v1", "Deployment", self.deployment)

    # --- rollout ---------------------------------------------------------------------------------------
    @property
    def strategy(self) -> str:
        return self.spec.rollout.strategy

    @property
    def gated(self) -> bool:
        """Canary and blue-green run through an Argo Rollout whose analysis queries Prometheus."""
        return self.strategy in GATED

    @property
    def rollout_name(self) -> str:
        return self.deployment

    @property
    def analysis(self) -> bool:
        """Does the gated strategy run its analysis (canary: the gates; blue-green: health check and gates)?"""
        r = self.spec.rollout
        return r.canary.analysis if self.strategy == "canary" else r.blue_green.analysis if self.gated else False

    # The objects below are plain data, serialised by the templates (the `yaml_tree` filter quotes every value).
    def _probe(self, path: str, probe: Any) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": self.spec.service.port}, "periodSeconds": probe.period_seconds,
                "timeoutSeconds": probe.timeout_seconds, "failureThreshold": probe.failure_threshold}

    @property
    def deployment_patch(self) -> dict[str, Any]:
        """A strategic-merge patch of the application's Deployment: probes (containers merge by name) and, for
        rolling updates, the update strategy. Never replicas (the HPA owns them) and never an image."""
        r, h = self.spec.rollout, self.spec.health
        spec: dict[str, Any] = {}
        if not self.gated:  # a Rollout replaces the Deployment's own rollout: its strategy would never run
            spec["strategy"] = {"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": r.max_surge, "maxUnavailable": r.max_unavailable}}
            spec["minReadySeconds"] = r.min_ready_seconds
            spec["progressDeadlineSeconds"] = r.progress_deadline_seconds
        spec["template"] = {"spec": {"containers": [{
            "name": self.container,
            "startupProbe": self._probe(h.liveness_path, h.startup),
            "livenessProbe": self._probe(h.liveness_path, h.liveness),
            "readinessProbe": self._probe(h.readiness_path, h.readiness),
        }]}}
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": self.deployment}, "spec": spec}

    def _metadata(self, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
        return {"name": name, "namespace": self.namespace, "labels": labels or self.standard_labels}

    @property
    def _new_pods_arg(self) -> list[dict[str, Any]]:
        return [{"name": HASH_ARG, "valueFrom": {"podTemplateHashValue": "Latest"}}]

    @property
    def rollout(self) -> dict[str, Any]:
        """The Argo Rollout that runs the Deployment's pod template (workloadRef): infragen never needs it."""
        r = self.spec.rollout
        if self.strategy == "canary":
            canary: dict[str, Any] = {"maxSurge": r.max_surge, "maxUnavailable": r.max_unavailable}
            if r.canary.analysis:  # in the background from the start, until the rollout completes
                canary["analysis"] = {"templates": [{"templateName": self.gates_template}], "args": self._new_pods_arg}
            pause = {"duration": format_duration(r.canary.pause)} if r.canary.pause is not None else {}
            canary["steps"] = [step for weight in r.canary.steps for step in ({"setWeight": weight}, {"pause": pause})]
            strategy: dict[str, Any] = {"canary": canary}
        else:
            bg = r.blue_green
            blue_green: dict[str, Any] = {
                "activeService": self.active_service, "previewService": self.preview_service,
                "autoPromotionEnabled": bg.auto_promote, "scaleDownDelaySeconds": bg.rollback_window,
                "scaleDownDelayRevisionLimit": 1}  # one old stack: two releases in the window never leave three
            if bg.analysis:
                blue_green["prePromotionAnalysis"] = {"templates": [{"templateName": self.preview_check_template}]}
                blue_green["postPromotionAnalysis"] = {"templates": [{"templateName": self.gates_template}],
                                                       "args": self._new_pods_arg}
            strategy = {"blueGreen": blue_green}
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": self._metadata(self.rollout_name),
                "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": self.deployment,
                                         "scaleDown": r.workload_scale_down},
                         "minReadySeconds": r.min_ready_seconds, "progressDeadlineSeconds": r.progress_deadline_seconds,
                         "strategy": strategy}}

    @property
    def analysis_templates(self) -> list[dict[str, Any]]:
        """The gates (new pods' error rate and p95 latency, from the alerts' own query builders); for blue-green also
        the pre-promotion health check of the new stack through the preview Service."""
        gates = self.spec.rollout.gates
        metrics = []
        for name, query, limit in self.gate_queries:
            success, failure = gate_conditions(format_number(limit))
            metrics.append({"name": name, "interval": format_duration(gates.interval), "count": gates.count,
                            "failureLimit": gates.failure_limit, "successCondition": success,
                            "failureCondition": failure,
                            "provider": {"prometheus": {"address": self.spec.rollout.prometheus_url, "query": query}}})
        templates = [{"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                      "metadata": self._metadata(self.gates_template),
                      "spec": {"args": [{"name": HASH_ARG}], "metrics": metrics}}]
        if self.strategy == "blue-green":
            templates.append({"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
                              "metadata": self._metadata(self.preview_check_template),
                              "spec": {"metrics": [{
                                  # Before the switch the new stack has no traffic: its health, not traffic gates.
                                  # A non-2xx answer is an error; five in a row (max_retries=5) fail the check.
                                  "name": "preview-health", "interval": "10s", "count": 1, "failureLimit": 0,
                                  "consecutiveErrorLimit": 5, "successCondition": 'result == "healthy"',
                                  "provider": {"web": {"url": self.preview_check_url, "jsonPath": "{$.status}",
                                                       "timeoutSeconds": 10}}}]}})
        return templates

    @property
    def preview_service_object(self) -> dict[str, Any]:
        """The Service that reaches the new stack before the switch (Argo adds the pod-template-hash selector)."""
        port = self.spec.service.port
        return {"apiVersion": "v1", "kind": "Service", "metadata": self._metadata(self.preview_service, self.preview_labels),
                "spec": {"selector": self.selector, "ports": [{"name": self.spec.monitoring.port_name, "port": port,
                                                               "targetPort": port, "protocol": "TCP"}]}}

    @property
    def active_service(self) -> str:
        return self.spec.rollout.blue_green.active_service or self.service_name

    @property
    def preview_service(self) -> str:
        return self.spec.rollout.blue_green.preview_service or f"{self.service_name}-preview"

    @property
    def preview_labels(self) -> dict[str, str]:
        """Labels of the preview Service: none the ServiceMonitor selects, or after the switch both Services would
        select the same pods and every series would be scraped twice."""
        return {"app.kubernetes.io/component": "preview", "app.kubernetes.io/managed-by": "infragen",
                "app.kubernetes.io/name": self.preview_service}

    @property
    def container(self) -> str:
        return self.spec.health.container or self.service_name

    @property
    def gates_template(self) -> str:
        return f"{self.rollout_name}-gates"

    @property
    def preview_check_template(self) -> str:
        return f"{self.rollout_name}-preview-health"

    def canary_split(self, weight: int, replicas: int) -> Split:
        return canary_split(weight, replicas, self.spec.rollout.surge_pods(replicas))

    @property
    def canary_steps(self) -> list[tuple[int, Split, Split]]:
        """Each canary step: (weight, split at min_replicas, split at max_replicas)."""
        a = self.spec.autoscaling
        return [(w, self.canary_split(w, a.min_replicas), self.canary_split(w, a.max_replicas))
                for w in self.spec.rollout.canary.steps]

    def peak_pods_at(self, max_replicas: int) -> int:
        """Pods running at the peak of a rollout at `max_replicas`: plus the surge for rolling updates and canaries
        (Argo caps a canary at replicas + maxSurge), two full stacks for blue-green (the old one runs on through
        the rollback window)."""
        if self.strategy == "blue-green":
            return 2 * max_replicas
        return max_replicas + self.spec.rollout.surge_pods(max_replicas)

    @property
    def gate_matchers(self) -> tuple[str, ...]:
        """The new version's pods only: the gates compare them, not the fleet."""
        return service_matchers(self.job, self.namespace) + (
            f"rollouts_pod_template_hash={promql_string('{{args.' + HASH_ARG + '}}')}",)

    @property
    def gate_queries(self) -> list[tuple[str, str, float]]:
        """(metric name, PromQL, highest passing value) of each gate, from the same builders as the alerts."""
        gates = self.spec.rollout.gates
        window = format_duration(gates.window)
        return [("error-rate", error_ratio(self.gate_matchers, window, no_errors_is_zero=True), gates.max_error_rate),
                ("latency-p95", latency_p95(self.gate_matchers, window), gates.max_latency_p95_seconds)]

    @property
    def preview_check_url(self) -> str:
        path = (self.spec.health.dependency_paths or ["/health"])[0]
        return f"http://{self.preview_service}.{self.namespace}.svc:{self.spec.service.port}{path}"

    @property
    def namespace(self) -> str:
        return self.spec.service.namespace or self.name

    @property
    def selector(self) -> dict[str, str]:
        return dict(sorted((self.spec.service.selector or {"app.kubernetes.io/name": self.spec.service.name}).items()))

    @property
    def upstream_name(self) -> str:
        # Carries the environment so several environments' files can share one nginx.
        return f"{self.spec.service.name}-{self.name}"

    @property
    def upstream_zone(self) -> str:
        return f"{self.upstream_name}-upstream"

    @property
    def rate_limit_zone(self) -> str:
        # Shared-memory zone names are global in nginx: distinct from the upstream zone.
        return f"{self.upstream_name}-ratelimit"

    @property
    def header(self) -> str:
        sources = self.source
        if self.partials:
            sources += " (with " + ", ".join(self.partials) + ")"
        return (f"Generated by infragen from {sources}. Do not edit by hand:\n"
                f"change the environment file and run `infragen build {self.name}`.")

    # --- database --------------------------------------------------------------------------------
    @property
    def pool_size(self) -> int:
        return self.spec.database.effective_pool_size

    @property
    def pool_overflow(self) -> int:
        return self.spec.database.effective_max_overflow

    @property
    def pool_capacity(self) -> int:
        """Connections one pod may open: pool plus overflow."""
        return self.spec.database.connections_per_pod

    @property
    def surge_pods(self) -> int:
        """Extra pods a rolling update adds at max_replicas (Kubernetes rounds maxSurge percentages up)."""
        return self.spec.rollout.surge_pods(self.spec.autoscaling.max_replicas)

    def peak_connections_at(self, max_replicas: int) -> int:
        """Database connections the fleet may open at `max_replicas`, mid-rollout, every pool and overflow full."""
        return self.peak_pods_at(max_replicas) * self.pool_capacity

    @property
    def peak_connections(self) -> int:
        return self.peak_connections_at(self.spec.autoscaling.max_replicas)

    @property
    def usable_connections(self) -> int:
        return self.spec.database.usable_connections

    # --- disruption budget -------------------------------------------------------------------------
    @property
    def evictions_allowed_at_min_replicas(self) -> int:
        return self.spec.disruption_budget.evictions_allowed(self.spec.autoscaling.min_replicas)

    # --- kubernetes ------------------------------------------------------------------------------
    @property
    def pdb_field(self) -> tuple[str, int | str]:
        budget = self.spec.disruption_budget
        if budget.min_available is not None:
            return ("minAvailable", budget.min_available)
        assert budget.max_unavailable is not None  # the model guarantees exactly one
        return ("maxUnavailable", budget.max_unavailable)

    # --- nginx -----------------------------------------------------------------------------------
    @property
    def affinity_mode(self) -> str:
        return self.spec.load_balancing.affinity_mode

    @property
    def balancing_method(self) -> str:
        return self.spec.load_balancing.effective_method

    @property
    def balancing_directive(self) -> list[str]:
        """The upstream's one balancing directive as words (empty: nginx's default round-robin)."""
        method = self.balancing_method
        if method == "hash":
            return ["hash", f"$cookie_{self.spec.load_balancing.session_affinity.cookie}", "consistent"]
        if method == "random":
            return ["random", "two", "least_conn"]  # power of two choices, the better of two by connections
        if method == "least_conn":
            return ["least_conn"]
        return []

    @property
    def sticky_directive(self) -> list[str]:
        """`sticky cookie ...` words when nginx issues its own routing cookie (>= 1.29.6), else empty."""
        if self.affinity_mode != "sticky":
            return []
        affinity = self.spec.load_balancing.session_affinity
        return ["sticky", "cookie", affinity.routing_cookie, f"expires={self.affinity_ttl}", "path=/", "httponly"]

    @property
    def upstream_servers(self) -> list[dict[str, Any]]:
        """Each server's address (with service.port when none was written) and its parameters as words."""
        lb = self.spec.load_balancing
        servers = []
        for server in lb.servers:
            host, port = split_address(server.address)
            params = [] if server.weight == 1 else [f"weight={server.weight}"]  # 1 is nginx's default
            params.append(f"max_fails={server.max_fails if server.max_fails is not None else lb.max_fails}")
            params.append("fail_timeout=" + format_duration(
                server.fail_timeout if server.fail_timeout is not None else lb.fail_timeout))
            if server.backup:
                params.append("backup")
            servers.append({"address": f"{host}:{port if port is not None else self.spec.service.port}",
                            "params": params})
        return servers

    @property
    def affinity_ttl(self) -> str:
        return format_duration(self.spec.load_balancing.session_affinity.ttl)

    # --- application env file --------------------------------------------------------------------
    @property
    def app_env(self) -> list[tuple[str, str]]:
        spec = self.spec
        return [
            ("PROMETHEUS_METRICS_ENABLED", "true"),
            ("RATE_LIMIT_REQUESTS", str(spec.rate_limit.requests)),
            ("RATE_LIMIT_WINDOW_SECONDS", str(spec.rate_limit.window_seconds)),
            ("DATABASE_POOL_SIZE", str(self.pool_size)),
            ("DATABASE_POOL_OVERFLOW", str(self.pool_overflow)),
            ("K8S_MIN_REPLICAS", str(spec.autoscaling.min_replicas)),
            ("K8S_MAX_REPLICAS", str(spec.autoscaling.max_replicas)),
            ("K8S_TARGET_CPU_PERCENT", str(spec.autoscaling.target_cpu_percent)),
        ]

    # --- prometheus ------------------------------------------------------------------------------
    @cached_property
    def alert_inputs(self) -> AlertInputs:
        return AlertInputs(job=self.job, namespace=self.namespace, environment=self.name, settings=self.spec.alerts,
                           pool_size=self.pool_size, pool_overflow=self.pool_overflow,
                           rollout=self.rollout_name if self.gated else None)

    @cached_property
    def alert_rules(self) -> list[AlertRule]:
        return build_alert_rules(self.alert_inputs)

    @cached_property
    def alert_tests(self) -> AlertTests:
        """promtool unit tests of the alert rules (output tests/alerts.test.yaml)."""
        return build_alert_tests(self.alert_inputs, self.alert_rules)

    @property
    def alert_group(self) -> str:
        return f"{self.spec.service.name}-{self.name}"

    @property
    def rule_groups(self) -> list[tuple[str, list[AlertRule]]]:
        """(group name, rules): the same objects in prometheus/alerts.yaml and the PrometheusRule."""
        return [(self.alert_group, self.alert_rules)]

    # --- monitoring: scrape, operator resources, dashboard -----------------------------------------------
    @property
    def standard_labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": self.service_name, "app.kubernetes.io/managed-by": "infragen"}

    @property
    def operator_labels(self) -> dict[str, str]:
        """Labels of every Prometheus Operator resource: the standard ones, then those the cluster's Prometheus
        selects by (monitoring.labels)."""
        return dict(sorted({**self.standard_labels, **self.spec.monitoring.labels}.items()))

    @property
    def dashboard_labels(self) -> dict[str, str]:
        return dict(sorted({**self.standard_labels, **self.spec.monitoring.dashboard_labels}.items()))

    @property
    def monitored_service_selector(self) -> dict[str, str]:
        """Labels that pick the Kubernetes Service whose endpoints are scraped."""
        return dict(sorted((self.spec.monitoring.selector_labels or self.selector).items()))

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
        return self.upstream_name

    @property
    def scrape_keep(self) -> list[tuple[str, str]]:
        """(discovery label, anchored RE2 regex) pairs a plain Prometheus keeps endpoints by: each label of the
        monitored Service, and the name of the metrics port. Kubernetes discovery spells a label `a.b/c` as
        `__meta_kubernetes_service_label_a_b_c`."""
        keep = [(f"__meta_kubernetes_service_label_{re.sub(r'[^A-Za-z0-9_]', '_', key)}", re.escape(value))
                for key, value in self.monitored_service_selector.items()]
        keep.append(("__meta_kubernetes_endpoint_port_name", re.escape(self.spec.monitoring.port_name)))
        return keep

    @property
    def dashboard_name(self) -> str:
        return f"{self.service_name}-{self.name}-dashboard"

    @property
    def dashboard_file(self) -> str:
        """The dashboard's file name in the ConfigMap (Grafana's sidecar writes it out under this name)."""
        return f"{self.service_name}-{self.name}.json"

    @cached_property
    def dashboard(self) -> dict[str, Any]:
        return build_dashboard(DashboardInputs(
            service=self.service_name, namespace=self.namespace, environment=self.name,
            description=self.header.replace("\n", " "), selector=alert_selector(self.alert_inputs),
            rate_window=format_duration(self.spec.alerts.rate_window), hpa=self.deployment,
            pool_size=self.pool_size, pool_overflow=self.pool_overflow), self.alert_rules)

    # --- alertmanager ------------------------------------------------------------------------------
    @property
    def severity_routes(self) -> list[tuple[str, str]]:
        """(severity, receiver) in severity order, critical first."""
        routes = self.spec.alertmanager.routes
        return [(sev, getattr(routes, sev)) for sev in SEVERITIES]

    @property
    def receivers(self) -> list[tuple[str, Any]]:
        return sorted(self.spec.alertmanager.receivers.items())

    @property
    def alertmanager_durations(self) -> dict[str, str]:
        am = self.spec.alertmanager
        return {"group_wait": format_duration(am.group_wait), "group_interval": format_duration(am.group_interval),
                "repeat_interval": format_duration(am.repeat_interval)}

    # --- how each derived value is made (infragen explain) --------------------------------------------------
    def derivations(self) -> list[Derivation]:
        """Values infragen computes from the settings, each with its formula."""
        spec, db, a = self.spec, self.spec.database, self.spec.autoscaling
        surge = spec.rollout.max_surge
        surge_formula = (f"rollout.max_surge {surge} of autoscaling.max_replicas {a.max_replicas}, rounded up"
                         if isinstance(surge, str) else f"rollout.max_surge {surge}")
        kind, value = self.pdb_field
        rounded = " (a percentage, rounded up)" if isinstance(value, str) else ""
        evictions = (f"autoscaling.min_replicas {a.min_replicas} - minAvailable {value}{rounded}" if kind == "minAvailable"
                     else f"maxUnavailable {value}{rounded}, at most autoscaling.min_replicas {a.min_replicas}")
        lb = spec.load_balancing
        return [
            Derivation("database.connections_per_pod", self.pool_capacity,
                       f"database.pool_size {self.pool_size} + database.max_overflow {self.pool_overflow}"),
            Derivation("database.usable_connections", self.usable_connections,
                       f"database.max_connections {db.max_connections} x (100 - database.reserved_connections_percent "
                       f"{db.reserved_connections_percent})%, rounded down"),
            Derivation("rollout.surge_pods", self.surge_pods, surge_formula),
            Derivation("rollout.peak_pods", self.peak_pods_at(a.max_replicas), self.peak_pods_formula),
            Derivation("database.peak_connections", self.peak_connections,
                       f"rollout.peak_pods {self.peak_pods_at(a.max_replicas)} x database.connections_per_pod "
                       f"{self.pool_capacity}"),
            Derivation("disruption_budget.evictions_allowed_at_min_replicas", self.evictions_allowed_at_min_replicas,
                       evictions),
            Derivation("rate_limit.nginx_rate", spec.rate_limit.nginx_rate,
                       f"rate_limit.requests {spec.rate_limit.requests} per rate_limit.window_seconds "
                       f"{spec.rate_limit.window_seconds}, as whole requests per second or per minute"),
            Derivation("monitoring.scrape_timeout", self.scrape_timeout,
                       f"alerts.scrape_interval {self.scrape_interval}, at most 10s (Prometheus' default timeout)"),
            Derivation("load_balancing.affinity_mode", lb.affinity_mode,
                       f"session_affinity.enabled {'true' if lb.session_affinity.enabled else 'false'} on nginx "
                       f"{lb.nginx_version}: hash before 1.29.6, sticky from it"),
            *self.step_derivations(),
        ]

    @property
    def peak_pods_formula(self) -> str:
        a = self.spec.autoscaling
        if self.strategy == "blue-green":
            return (f"2 x autoscaling.max_replicas {a.max_replicas}: blue-green runs both stacks for "
                    f"rollout.blue_green.rollback_window {format_duration(self.spec.rollout.blue_green.rollback_window)}")
        return f"autoscaling.max_replicas {a.max_replicas} + rollout.surge_pods {self.surge_pods} ({self.strategy})"

    def step_derivations(self) -> list[Derivation]:
        """Each canary step as Argo Rollouts really runs it without a traffic router: pods, not traffic."""
        if self.strategy != "canary":
            return []
        a = self.spec.autoscaling
        rows = []
        for i, (weight, low, high) in enumerate(self.canary_steps, 1):
            shown = f"{weight}%: {low} at {a.min_replicas} replicas, {high} at {a.max_replicas}"
            rows.append(Derivation(f"rollout.canary.step_{i}", shown,
                                   f"canary and stable pods Argo Rollouts runs for weight {weight} at autoscaling.min_replicas "
                                   f"{a.min_replicas} and max_replicas {a.max_replicas} (real share of pods and requests)"))
        return rows

    def unset_default(self, path: PathKey) -> Derivation | None:
        """The value used for the optional setting at `path` when no layer sets it, and how it is derived."""
        db, lb = self.spec.database, self.spec.load_balancing
        dotted = ".".join(str(p) for p in path)
        if path == ("service", "namespace"):
            return Derivation(dotted, self.namespace, "the environment name")
        if path == ("service", "selector"):
            return Derivation(dotted, self.selector, "{app.kubernetes.io/name: service.name}")
        if path == ("monitoring", "selector_labels"):
            return Derivation(dotted, self.monitored_service_selector, "service.selector")
        if path == ("rollout", "blue_green", "active_service"):
            return Derivation(dotted, self.active_service, "service.name")
        if path == ("rollout", "blue_green", "preview_service"):
            return Derivation(dotted, self.preview_service, "<service.name>-preview")
        if path == ("health", "container"):
            return Derivation(dotted, self.container, "service.name")
        if path == ("database", "pool_size"):
            return Derivation(dotted, self.pool_size, f"ceil(database.base_pool_size {db.base_pool_size} x "
                                                      f"database.load_estimate {format_number(db.load_estimate)})")
        if path == ("database", "max_overflow"):
            return Derivation(dotted, self.pool_overflow, f"database.pool_size {self.pool_size} // 2")
        if path == ("load_balancing", "method"):
            directive = " ".join(self.balancing_directive) or "round-robin (no directive)"
            if lb.affinity_mode == "hash":
                return Derivation(dotted, directive,
                                  f"session affinity on nginx {lb.nginx_version} (< 1.29.6) hashes the session cookie")
            return Derivation(dotted, directive, "least_conn unless session affinity hashes")
        if len(path) == 4 and path[:2] == ("load_balancing", "servers") and path[3] in ("max_fails", "fail_timeout"):
            value = getattr(lb, path[3])
            shown = format_duration(value) if path[3] == "fail_timeout" else value
            return Derivation(dotted, shown, f"load_balancing.{path[3]}")
        return None

    def location_of(self, path: PathKey) -> Location | None:
        """The location of `path` or of its nearest located ancestor."""
        path = tuple(path)
        while path:
            if path in self.locations:
                return self.locations[path]
            path = path[:-1]
        return None
