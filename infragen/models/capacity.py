"""Capacity: pods at the peak of a rollout, the database connections they may open, and the disruption budget.

The fleet's peak is what the database must hold: every pod's pool and overflow full while a rollout runs its
extra pods (the surge for rolling updates and canaries, a whole second stack for blue-green).
"""

from __future__ import annotations

from .defaults import Part, default_of
from .types import format_number


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

    def peak_pods_at(self, max_replicas: int) -> int:
        """Pods running at the peak of a rollout at `max_replicas`: plus the surge for rolling updates and canaries
        (Argo caps a canary at replicas + maxSurge), two full stacks for blue-green (the old one runs on through
        the rollback window)."""
        if self.spec.rollout.strategy == "blue-green":
            return 2 * max_replicas
        return max_replicas + self.spec.rollout.surge_pods(max_replicas)

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
