"""kubernetes/analysis-template.yaml: the gates (the new pods' error rate and p95 latency, from the alerts' own
query builders) and, for blue-green, the pre-promotion health check of the new stack through the preview Service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models.rollout import HASH_ARG, gate_conditions
from ..models.types import format_duration, format_number

if TYPE_CHECKING:
    from ..models.environment import Environment

NOTE = ("The gates: the new pods' error rate and p95 latency, selected by rollouts_pod_template_hash (the canary-hash\n"
        "argument). No data (zero requests) is inconclusive: the rollout pauses for a person.\n"
        "Each gate's first measurement waits initialDelay (5s target discovery + scrape interval + gate window): the new\n"
        "pods' series then cover a whole window (`infragen explain <env> rollout` shows the numbers).")


def _gates(env: Environment) -> dict[str, Any]:
    gates, timing, count = env.spec.rollout.gates, env.rollout.gate_timing, env.rollout.gate_count
    metrics = []
    for name, query, limit in env.rollout.gate_queries:
        success, failure = gate_conditions(format_number(limit))
        # A canary's background gates have no count: they measure until the rollout completes (every weight gated).
        metrics.append({"name": name, "initialDelay": format_duration(timing.initial_delay),
                        "interval": format_duration(gates.interval), **({"count": count} if count is not None else {}),
                        "failureLimit": gates.failure_limit, "successCondition": success,
                        "failureCondition": failure,
                        "provider": {"prometheus": {"address": env.spec.rollout.prometheus_url, "query": query}}})
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": env.metadata(env.rollout.gates_template),
            "spec": {"args": [{"name": HASH_ARG}], "metrics": metrics}}


def _preview_check(env: Environment) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "AnalysisTemplate",
            "metadata": env.metadata(env.rollout.preview_check_template),
            "spec": {"metrics": [{
                # Before the switch the new stack has no traffic: its health, not traffic gates.
                # A non-2xx answer is an error; five in a row (max_retries=5) fail the check.
                "name": "preview-health", "interval": "10s", "count": 1, "failureLimit": 0,
                "consecutiveErrorLimit": 5, "successCondition": 'result == "healthy"',
                "provider": {"web": {"url": env.rollout.preview_check_url, "jsonPath": "{$.status}",
                                     "timeoutSeconds": 10}}}]}}


def documents(env: Environment) -> list[dict[str, Any]]:
    if env.rollout.strategy == "blue-green":
        return [_gates(env), _preview_check(env)]
    return [_gates(env)]
