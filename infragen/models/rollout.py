"""How Argo Rollouts splits a canary into pods, and what an analysis measurement decides.

Without a traffic router a canary's weight is a ratio of pods. `canary_split` is Argo Rollouts' own arithmetic
(utils/replicaset/canary.go, approximateWeightedCanaryStableReplicaCounts): among the floor and ceiling of
replicas x weight / 100, over `replicas` pods or, when surge is allowed, `replicas + 1`, the split whose share
of pods is closest to the weight; with surge allowed, a weight of 1-99 never gets 0 canary pods (without surge it
can: 75% of 2 replicas is 0/2). So 5% on 3 replicas is 1 canary pod of 4: 25% of the pods, and of the traffic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import NamedTuple

from .alerts import error_ratio, latency_p95, promql_string, service_matchers
from .defaults import Part, default_of
from .settings import ARGO_STRATEGIES
from .slo import Objective
from .timing import GateTiming
from .types import format_duration

MAX_WEIGHT = 100
HASH_ARG = "canary-hash"  # the AnalysisTemplate argument carrying the new pods' rollouts-pod-template-hash


class Split(NamedTuple):
    canary: int
    stable: int

    @property
    def share(self) -> float:
        """The canary's share of the pods (and, without a traffic router, of the requests)."""
        return self.canary / (self.canary + self.stable)

    def __str__(self) -> str:
        """`1 canary + 2 stable (33%)`: both counts named, never a fraction (`1/2`) that reads as another share."""
        return f"{self.canary} canary + {self.stable} stable ({self.share:.0%})"

    def faithful(self, weight: int) -> bool:
        """Is the canary's real share at most twice the step's `weight` (the line `canary-step-share` draws)?"""
        return self.share <= 2 * weight / MAX_WEIGHT


def _tied(weight: int, total: int) -> bool:
    return math.modf(total * (weight / MAX_WEIGHT))[0] == 0.5


def _delta(weight: int, canary: int, total: int) -> float:
    return abs(canary * MAX_WEIGHT / total - weight)


def canary_split(weight: int, replicas: int, surge_pods: int) -> Split:
    """The canary and stable pod counts Argo Rollouts runs at `weight` percent of `replicas`."""
    if replicas == 0:
        return Split(0, 0)
    ceil_count = math.ceil(replicas * weight / MAX_WEIGHT)
    floor_count = math.floor(replicas * weight / MAX_WEIGHT)
    zero_allowed = weight in (0, MAX_WEIGHT) or (replicas == 1 and surge_pods == 0)
    options: list[tuple[int, int]] = []
    if ceil_count < replicas or zero_allowed:
        options.append((ceil_count, replicas))
    if not _tied(weight, replicas) and (floor_count != 0 or zero_allowed):
        options.append((floor_count, replicas))
    if surge_pods > 0:
        options.append((ceil_count, replicas + 1))
        if not _tied(weight, replicas + 1) and (floor_count != 0 or zero_allowed):
            options.append((floor_count, replicas + 1))
    if not options:  # Argo: "should not get here"
        return Split(0, replicas)
    best = options[0]
    for option in options[1:]:  # strictly better only: the first of equals wins, as in Argo
        if _delta(weight, *option) < _delta(weight, *best):
            best = option
    return Split(best[0], best[1] - best[0])


def smallest_faithful_replicas(weight: int, surge_pods_at: Callable[[int], int], limit: int = 10_000) -> int | None:
    """The fewest replicas at which the canary's split is faithful to `weight` (None beyond `limit`)."""
    for replicas in range(1, limit + 1):
        if canary_split(weight, replicas, surge_pods_at(replicas)).faithful(weight):
            return replicas
    return None


def gate_conditions(threshold: str) -> tuple[str, str]:
    """(successCondition, failureCondition) of a gate measurement whose value must stay at or below `threshold`.
    No data (an empty result: nothing scraped yet; NaN: zero requests, 0/0) satisfies neither, so the measurement is
    inconclusive and the rollout pauses for a person: never an abort, never a silent pass."""
    known = "len(result) > 0 && !isNaN(result[0])"
    return f"{known} && result[0] <= {threshold}", f"{known} && result[0] > {threshold}"


class RolloutPlan(Part):
    """How a new version goes out: a rolling update of the Deployment, or an Argo Rollout (canary, blue-green)
    that runs the Deployment's pods, with or without its analysis."""

    @property
    def strategy(self) -> str:
        return self.spec.rollout.strategy

    @property
    def argo(self) -> bool:
        """Does an Argo Rollout run the pods (canary and blue-green), whether or not its analysis is on?"""
        return self.strategy in ARGO_STRATEGIES

    @property
    def analysed(self) -> bool:
        """Does the Argo Rollout run its analysis (canary: the gates; blue-green: the health check and the gates)?"""
        r = self.spec.rollout
        return r.canary.analysis if self.strategy == "canary" else r.blue_green.analysis if self.argo else False

    @property
    def scale_target(self) -> tuple[str, str, str]:
        """(apiVersion, kind, name) of the workload the HPA scales: the Argo Rollout when one runs the Deployment's
        pods (an HPA still aimed at the Deployment would fight the Rollout's controller)."""
        if self.argo:
            return ("argoproj.io/v1alpha1", "Rollout", self.env.service_name)
        return ("apps/v1", "Deployment", self.env.service_name)

    @default_of(("rollout", "blue_green", "active_service"), "service.name")
    def active_service(self) -> str:
        return self.spec.rollout.blue_green.active_service or self.env.service_name

    @default_of(("rollout", "blue_green", "preview_service"), "<service.name>-preview")
    def preview_service(self) -> str:
        return self.spec.rollout.blue_green.preview_service or f"{self.env.service_name}-preview"

    @property
    def preview_labels(self) -> dict[str, str]:
        """Labels of the preview Service: none the ServiceMonitor selects, or after the switch both Services would
        select the same pods and every series would be scraped twice."""
        return {"app.kubernetes.io/component": "preview", "app.kubernetes.io/managed-by": "infragen",
                "app.kubernetes.io/name": self.preview_service}

    @property
    def gate_timing(self) -> GateTiming:
        """When the gates measure (infragen.models.timing): after the new pods' series cover a whole window."""
        return self.spec.gate_timing

    @default_of(("rollout", "gates", "count"), lambda p: p.count_formula)
    def gate_count(self) -> int | None:
        """Blue-green's post-promotion measurements; none for a canary, whose gates run until the rollout completes."""
        return self.gate_timing.post_promotion_count if self.strategy == "blue-green" else None

    @property
    def count_formula(self) -> str:
        t = self.gate_timing
        if self.strategy != "blue-green":
            return "a canary's background gates measure until the rollout completes"
        return (f"the fewest post-promotion measurements that judge rollout.gates.full_traffic "
                f"{format_duration(t.full_traffic)} and can fail: max(failure_limit {t.failure_limit} + 1, "
                f"ceil((full_traffic - initial_delay {format_duration(t.initial_delay)}) / interval "
                f"{format_duration(t.interval)}) + 1)")

    @property
    def gates_template(self) -> str:
        return f"{self.env.service_name}-gates"

    @property
    def preview_check_template(self) -> str:
        return f"{self.env.service_name}-preview-health"

    def canary_split(self, weight: int, replicas: int) -> Split:
        return canary_split(weight, replicas, self.spec.rollout.surge_pods(replicas))

    @property
    def canary_steps(self) -> list[tuple[int, Split, Split]]:
        """Each canary step: (weight, split at min_replicas, split at max_replicas)."""
        a = self.spec.autoscaling
        return [(w, self.canary_split(w, a.min_replicas), self.canary_split(w, a.max_replicas))
                for w in self.spec.rollout.canary.steps]

    @property
    def new_pods_matchers(self) -> tuple[str, ...]:
        """The new version's pods only: the gates compare them, not the fleet."""
        return (f"rollouts_pod_template_hash={promql_string('{{args.' + HASH_ARG + '}}')}",)

    @property
    def gate_matchers(self) -> tuple[str, ...]:
        return service_matchers(self.env.service_name, self.env.namespace) + self.new_pods_matchers

    @property
    def gate_queries(self) -> list[tuple[str, str, float]]:
        """(metric name, PromQL, highest passing value) of each gate, from the same builders as the alerts."""
        gates = self.spec.rollout.gates
        window = format_duration(gates.window)
        burn = [(f"{o.slo}-burn-rate", o.burn_rate(window), gates.max_burn_rate) for o in self.burn_gates
                if gates.max_burn_rate is not None]
        return [("error-rate", error_ratio(self.gate_matchers, window, no_errors_is_zero=True), gates.max_error_rate),
                ("latency-p95", latency_p95(self.gate_matchers, window), gates.max_latency_p95_seconds), *burn]

    @property
    def burn_gates(self) -> list[Objective]:
        """The SLOs the budget gate (rollout.gates.max_burn_rate) measures, narrowed to the new pods' series: every
        enabled SLO, none when the gate is off or the rollout runs no analysis."""
        if self.spec.rollout.gates.max_burn_rate is None or not self.analysed:
            return []
        return [replace(o, pod_matchers=self.new_pods_matchers) for o in self.env.monitoring.objectives]

    @property
    def preview_check_url(self) -> str:
        path = (self.spec.health.dependency_paths or ["/health"])[0]
        return f"http://{self.preview_service}.{self.env.namespace}.svc:{self.spec.service.port}{path}"
