"""How Argo Rollouts splits a canary into pods, and what an analysis measurement decides.

Without a traffic router a canary's weight is a ratio of pods. `canary_split` is Argo Rollouts' own arithmetic
(utils/replicaset/canary.go, approximateWeightedCanaryStableReplicaCounts): among the floor and ceiling of
replicas x weight / 100, over `replicas` pods or, when surge is allowed, `replicas + 1`, the split whose share
of pods is closest to the weight; with surge allowed, a weight of 1-99 never gets 0 canary pods (without surge it
can: 75% of 2 replicas is 0/2). So 5% on 3 replicas is 1 canary pod of 4: 25% of the pods, and of the traffic.
"""

from __future__ import annotations

import math
from typing import NamedTuple

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


def smallest_faithful_replicas(weight: int, surge_pods_at: callable[[int], int], limit: int = 10_000) -> int | None:
    """The fewest replicas at which the canary's real share is at most twice `weight` (None beyond `limit`)."""
    for replicas in range(1, limit + 1):
        if canary_split(weight, replicas, surge_pods_at(replicas)).share <= 2 * weight / MAX_WEIGHT:
            return replicas
    return None


def gate_conditions(threshold: str) -> tuple[str, str]:
    """(successCondition, failureCondition) of a gate measurement whose value must stay at or below `threshold`.
    No data (an empty result: nothing scraped yet; NaN: zero requests, 0/0) satisfies neither, so the measurement is
    inconclusive and the rollout pauses for a person: never an abort, never a silent pass."""
    known = "len(result) > 0 && !isNaN(result[0])"
    return f"{known} && result[0] <= {threshold}", f"{known} && result[0] > {threshold}"
