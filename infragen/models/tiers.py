"""Tier defaults: the replica range, CPU target, base pool size, disruption budget, severities and paging each tier starts from. They are a layer beneath every file, so `explain` can say where a value came from."""

from __future__ import annotations

from typing import Any

TIER_DEFAULTS: dict[str, dict[str, Any]] = {
    "development": {
        "autoscaling": {"min_replicas": 1, "max_replicas": 2, "target_cpu_percent": 70},
        "database": {"base_pool_size": 5},
        # One replica: minAvailable 1 would block every drain, so allow one pod down instead.
        "disruption_budget": {"max_unavailable": 1},
        "rollout": {"strategy": "rolling"},
        # Development's alerts never page and its traffic is test traffic: no objectives to burn.
        "slo": {"enabled": False},
        # Nothing is critical in development: a development pool running out must not look like an outage.
        "alerts": {"db_pool_utilization": {"severity": "warning"}},
    },
    "staging": {
        "autoscaling": {"min_replicas": 2, "max_replicas": 5, "target_cpu_percent": 70},
        "database": {"base_pool_size": 10},
        # One pod at a time, at any replica count (min_available 1 would let a drain take all but one).
        "disruption_budget": {"max_unavailable": 1},
        "rollout": {"strategy": "canary"},
        # Staging runs the same objectives as production, so rules and dashboard are proven before they page;
        # its low traffic keeps the burn alerts quiet below slo.min_request_rate.
        "slo": {"enabled": True},
    },
    "production": {
        "autoscaling": {"min_replicas": 3, "max_replicas": 10, "target_cpu_percent": 60},
        "database": {"base_pool_size": 20},
        # One pod at a time: min_available 1 at the minimum of 3 would let a drain evict 2 of 3 at once.
        "disruption_budget": {"max_unavailable": 1},
        # Production pages when its metrics are gone; elsewhere a target going away must not wake anyone.
        "alerts": {"metrics_missing": {"severity": "critical"}},
        # Only production pages on-call; elsewhere critical alerts go to the team's chat (the model default).
        "alertmanager": {"routes": {"critical": "oncall"}},
        # Full new stack beside the old; a person promotes once its health check passes.
        "rollout": {"strategy": "blue-green", "blue_green": {"auto_promote": False}},
        "slo": {"enabled": True},
    },
}
