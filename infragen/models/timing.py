"""When the rollout gates measure, derived from the settings that decide when the new pods' data exists.

Argo Rollouts takes a metric's first measurement `initialDelay` after its AnalysisRun starts (at once without one),
the next ones `interval` apart (analysis/analysis.go, generateMetricTasks). One Inconclusive measurement pauses the
rollout (inconclusiveLimit defaults to 0), so a gate that measures before the new pods' series cover its `rate()`
window stops every rollout for a person. The series exist only once Prometheus has discovered the new pods (the
Service's endpoints, batched up to TARGET_DISCOVERY_SECONDS) and scraped them (within one scrape interval), and
they cover a window W one W later. So the first measurement waits discovery + scrape interval + window after the
pods take traffic, which is when each run starts:

- canary: the background analysis starts at step CANARY_STARTING_STEP (`startingStep`), the pause after the first
  `setWeight`, which begins once that weight's pods are available (rollout/canary.go, completedCurrentCanaryStep;
  utils/replicaset/canary.go, BeforeStartingStep). It has no `count`: it measures until the rollout is fully
  promoted, so every weight is gated (a run that succeeds is never started again: rollout/analysis.go,
  needsNewAnalysisRun).
- blue-green: the post-promotion analysis starts after the switch, when the active Service (the one scraped)
  selects the new pods (rollout/analysis.go, skipPostPromotionAnalysisRun). It needs a finite `count`.

Every number here is computed once; the settings' load-time checks, the artifacts and `explain` read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TARGET_DISCOVERY_SECONDS = 5  # Prometheus' Kubernetes discovery batches endpoint changes for up to 5 s
CANARY_STARTING_STEP = 1  # steps are [setWeight, pause, setWeight, pause, ...]: 1 is the first pause
ERROR_RETRY_SECONDS = 10  # analysis/analysis.go DefaultErrorRetryInterval: after an Error, whatever `interval` says


@dataclass(frozen=True)
class GateTiming:
    """The gates' schedule: `count` is the setting (None: unset), the rest as the settings give them, in seconds."""

    window: int
    scrape_interval: int
    interval: int
    failure_limit: int
    count: int | None
    full_traffic: int

    @property
    def initial_delay(self) -> int:
        """Seconds from a run's start to its first measurement: the new pods' series then cover a whole window."""
        return TARGET_DISCOVERY_SECONDS + self.scrape_interval + self.window

    @property
    def abort_after(self) -> int:
        """Seconds from a run's start until a version failing from the start is aborted: failure_limit + 1 failed
        measurements (Failed when failures > failureLimit)."""
        return self.initial_delay + self.failure_limit * self.interval

    @property
    def least_post_promotion_count(self) -> int:
        """The fewest blue-green post-promotion measurements that judge `full_traffic` after the switch and can fail."""
        spread = max(0, self.full_traffic - self.initial_delay)
        return max(self.failure_limit + 1, math.ceil(spread / self.interval) + 1)

    @property
    def post_promotion_count(self) -> int:
        return self.count if self.count is not None else self.least_post_promotion_count

    def judged(self, count: int) -> int:
        """Seconds after the switch that `count` measurements judge: the last one's time."""
        return self.initial_delay + (count - 1) * self.interval
