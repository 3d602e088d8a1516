"""Capacity: pods at the peak of a rollout, the database connections they may open, and the disruption budget.

The fleet's peak is what the database must hold: every pod's pool and overflow full while a rollout runs the most
pods it ever runs at once (`peak_pods`, the one place that is counted: the fleet rule, `explain` and `review` read
it), per strategy:
- rolling: Kubernetes adds up to maxSurge pods above the replica count (a percentage rounds up).
- canary: at each step Argo Rollouts runs the canary and stable pods of its split (utils/replicaset/canary.go),
  and while a step scales it never exceeds replicas + maxSurge; so the peak is the largest of those.
- blue-green: the preview stack is scaled to full size before the switch whatever `previewReplicaCount` says,
  and the old stack stays up for `scaleDownDelaySeconds` after it (rollout/bluegreen.go, rollout/replicaset.go).
  A release that lands inside the previous one's rollback window therefore runs three full stacks: the one kept
  for rollback (`scaleDownDelayRevisionLimit: 1` keeps one), the active one and the new preview one; its delay
  restarts only after the new one's post-promotion analysis. Two stacks when there is no rollback window.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .defaults import Part, default_of
from .rollout import Split
from .types import format_duration, format_number


@dataclass(frozen=True)
class Peak:
    pods: int
    formula: str  # with the numbers put in, for `explain`, the fleet rule and `review`
    stacks: int = 0  # blue-green: full stacks running at once


def peak_pods(strategy: str, replicas: int, surge_pods: int, splits: Sequence[tuple[int, Split]],
              rollback_window: int, replicas_name: str = "replicas") -> Peak:
    """The most pods running at once while a new version rolls out at `replicas` (the HPA's count, named
    `replicas_name` in the formula)."""
    count = f"{replicas_name} {replicas}"
    if strategy == "blue-green":
        stacks = 3 if rollback_window > 0 else 2
        why = (f"old (kept for rollout.blue_green.rollback_window {format_duration(rollback_window)}) + active + "
               "preview stacks" if stacks == 3 else "active + preview stacks")
        return Peak(stacks * replicas, f"{stacks} x {count}: {why}, each at full size", stacks)
    surged = replicas + surge_pods
    if strategy == "rolling":
        return Peak(surged, f"{count} + rollout.surge_pods {surge_pods} (rolling)")
    widest = max(splits, key=lambda step: step[1].canary + step[1].stable, default=None)
    if widest is None or surged >= widest[1].canary + widest[1].stable:
        return Peak(surged, f"{count} + rollout.surge_pods {surge_pods}: the most a canary runs while a step scales")
    weight, split = widest
    return Peak(split.canary + split.stable,
                f"canary step {weight}% at {count}: {split.canary} canary + {split.stable} stable pods")


class Capacity(Part):
    @default_of(("database", "pool_size"), lambda c: (
        f"ceil(database.base_pool_size {c.spec.database.base_pool_size} x database.load_estimate "
        f"{format_number(c.spec.database.load_estimate)})"))
    def pool_size(self) -> int:
        return self.spec.database.effective_pool_size

    @default_of(("database", "max_overflow"), lambda c: f"database.pool_size {c.pool_size} // 2")
    def pool_overflow(self) -> int:
        return self.spec.database.effective_max_overflow

    @property
    def connections_per_pod(self) -> int:
        """Connections one pod may open: pool plus overflow."""
        return self.spec.database.connections_per_pod

    @property
    def surge_pods(self) -> int:
        """Extra pods a rolling update adds at max_replicas (Kubernetes rounds maxSurge percentages up)."""
        return self.spec.rollout.surge_pods(self.spec.autoscaling.max_replicas)

    def peak_at(self, max_replicas: int) -> Peak:
        """The most pods a rollout runs at `max_replicas`, with its formula."""
        r = self.spec.rollout
        splits = ([(w, self.env.rollout.canary_split(w, max_replicas)) for w in r.canary.steps]
                  if r.strategy == "canary" else [])
        return peak_pods(r.strategy, max_replicas, r.surge_pods(max_replicas), splits, r.blue_green.rollback_window,
                         "autoscaling.max_replicas")

    def peak_pods_at(self, max_replicas: int) -> int:
        return self.peak_at(max_replicas).pods

    @property
    def peak_pods(self) -> int:
        return self.peak_pods_at(self.spec.autoscaling.max_replicas)

    def peak_connections_at(self, max_replicas: int) -> int:
        """Database connections the fleet may open at `max_replicas`, mid-rollout, every pool and overflow full."""
        return self.peak_pods_at(max_replicas) * self.connections_per_pod

    @property
    def peak_connections(self) -> int:
        return self.peak_connections_at(self.spec.autoscaling.max_replicas)

    @property
    def usable_connections(self) -> int:
        return self.spec.database.usable_connections

    @property
    def smallest_fitting_max_connections(self) -> int:
        """The least database.max_connections whose usable share holds the fleet's peak. Usable is
        max_connections x (100 - reserve) // 100, which is >= peak exactly when max_connections x (100 - reserve)
        >= 100 x peak: so the ceiling of 100 x peak / (100 - reserve), and at least 1 (the setting's minimum)."""
        reserve = self.spec.database.reserved_connections_percent
        return max(1, -(-self.peak_connections * 100 // (100 - reserve)))

    # --- disruption budget ---------------------------------------------------------------------------------------
    @property
    def evictions_allowed_at_min_replicas(self) -> int:
        return self.spec.disruption_budget.evictions_allowed(self.spec.autoscaling.min_replicas)

    @property
    def pdb_field(self) -> tuple[str, int | str]:
        """The PodDisruptionBudget's one field: (minAvailable or maxUnavailable, its value)."""
        budget = self.spec.disruption_budget
        if budget.min_available is not None:
            return ("minAvailable", budget.min_available)
        assert budget.max_unavailable is not None  # the model guarantees exactly one
        return ("maxUnavailable", budget.max_unavailable)
