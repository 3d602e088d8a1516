"""grafana/dashboard.json: the Grafana dashboard (infragen.models.dashboard builds it from the alert rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = None  # JSON has no comments: the dashboard's description carries the generated-file marker


def documents(env: Environment) -> list[dict[str, Any]]:
    return [env.monitoring.dashboard]
