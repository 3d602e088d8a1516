"""tests/alerts.test.yaml: promtool unit tests of prometheus/alerts.yaml (infragen.models.alert_tests derives them
from the same settings as the rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.alert_tests import AlertCheck, TestGroup
    from ..models.environment import Environment

NOTE = ("promtool unit tests of ../prometheus/alerts.yaml, derived from the same settings. Run from this directory:\n"
        "  promtool test rules alerts.test.yaml")


def _check(check: AlertCheck) -> dict[str, Any]:
    return {"eval_time": check.eval_time, "alertname": check.alertname,
            "exp_alerts": [{"exp_labels": dict(alert.labels), "exp_annotations": dict(alert.annotations)}
                           for alert in check.expected]}


def _group(group: TestGroup) -> dict[str, Any]:
    return {"name": group.name, "interval": group.interval,
            "input_series": [{"series": s.selector, "values": s.values} for s in group.series],
            "alert_rule_test": [_check(check) for check in group.checks]}


def documents(env: Environment) -> list[dict[str, Any]]:
    tests = env.monitoring.alert_tests
    return [{"rule_files": list(tests.rule_files), "evaluation_interval": tests.evaluation_interval,
             "tests": [_group(group) for group in tests.groups]}]
