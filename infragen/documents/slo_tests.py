"""tests/slo.test.yaml: promtool unit tests of prometheus/slo-rules.yaml (infragen.models derives them from the same
settings as the rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = ("promtool unit tests of ../prometheus/slo-rules.yaml, derived from the same settings. Run from this directory:\n"
        "  promtool test rules slo.test.yaml")


def documents(env: Environment) -> list[Any]:
    return [env.monitoring.slo_tests]
