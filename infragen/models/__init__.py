"""Typed settings (what a file may say) and resolved environments (what the artifacts are made from)."""

from .environment import Environment
from .settings import ALERT_KEYS, SEVERITIES, TIERS, EnvironmentSpec

__all__ = ["ALERT_KEYS", "SEVERITIES", "TIERS", "Environment", "EnvironmentSpec"]
