"""Each value infragen derives, with the formula that made it and the numbers put in (`infragen explain`).

The values are the environment's own properties; the defaults of optional settings are declared where they are
applied (infragen.models.defaults), so nothing here restates a default.
"""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from ..errors import PathKey
from .defaults import Derivation, declared_default
from .slo import percent
from .timing import TARGET_DISCOVERY_SECONDS
from .types import format_duration, format_number

if TYPE_CHECKING:
    from .environment import Environment


def unset_default(env: Environment, path: PathKey) -> Derivation | None:
    """The value used for the optional setting at `path` when no layer sets it, and how it is derived."""
    declared = declared_default(tuple(path))
    if declared is None or declared.owner is None:
        return None
    return declared.derivation(env.part(declared.owner), tuple(path))


def derivations(env: Environment) -> list[Derivation]:
    """Values infragen computes from the settings, each with its formula."""
    spec, db, a, capacity = env.spec, env.spec.database, env.spec.autoscaling, env.capacity
    surge = spec.rollout.max_surge
    surge_formula = (f"rollout.max_surge {surge} of autoscaling.max_replicas {a.max_replicas}, rounded up"
                     if isinstance(surge, str) else f"rollout.max_surge {surge}")
    kind, value = capacity.pdb_field
    rounded = " (a percentage, rounded up)" if isinstance(value, str) else ""
    evictions = (f"autoscaling.min_replicas {a.min_replicas} - minAvailable {value}{rounded}" if kind == "minAvailable"
                 else f"maxUnavailable {value}{rounded}, at most autoscaling.min_replicas {a.min_replicas}")
    lb = spec.load_balancing
    return [
        Derivation("database.connections_per_pod", capacity.connections_per_pod,
                   f"database.pool_size {capacity.pool_size} + database.max_overflow {capacity.pool_overflow}"),
        Derivation("database.usable_connections", capacity.usable_connections,
                   f"database.max_connections {db.max_connections} x (100 - database.reserved_connections_percent "
                   f"{db.reserved_connections_percent})%, rounded down"),
        Derivation("rollout.surge_pods", capacity.surge_pods, surge_formula),
        Derivation("rollout.peak_pods", capacity.peak_pods, capacity.peak_at(a.max_replicas).formula),
        Derivation("database.peak_connections", capacity.peak_connections,
                   f"rollout.peak_pods {capacity.peak_pods} x database.connections_per_pod "
                   f"{capacity.connections_per_pod}"),
        Derivation("disruption_budget.evictions_allowed_at_min_replicas", capacity.evictions_allowed_at_min_replicas,
                   evictions),
        Derivation("rate_limit.nginx_rate", spec.rate_limit.nginx_rate,
                   f"rate_limit.requests {spec.rate_limit.requests} per rate_limit.window_seconds "
                   f"{spec.rate_limit.window_seconds}, as whole requests per second or per minute"),
        Derivation("monitoring.scrape_timeout", env.monitoring.scrape_timeout,
                   f"alerts.scrape_interval {env.monitoring.scrape_interval}, at most 10s (Prometheus' default timeout)"),
        Derivation("load_balancing.affinity_mode", lb.affinity_mode,
                   f"session_affinity.enabled {'true' if lb.session_affinity.enabled else 'false'} on nginx "
                   f"{lb.nginx_version}: hash before 1.29.6, sticky from it"),
        *env.edge.derivations(),
        *step_derivations(env),
        *(Derivation(*d) for o in env.monitoring.objectives for d in o.derivations()),
        *gate_derivations(env),
    ]


def gate_derivations(env: Environment) -> list[Derivation]:
    """When the gates measure (infragen.models.timing): after the new pods' series cover a whole window."""
    if not env.rollout.argo:
        return []
    t, d, canary = env.rollout.gate_timing, format_duration, env.rollout.strategy == "canary"
    rows = [Derivation("rollout.gates.initial_delay", d(t.initial_delay),
                       f"target discovery {d(TARGET_DISCOVERY_SECONDS)} + alerts.scrape_interval {d(t.scrape_interval)}"
                       f" + rollout.gates.window {d(t.window)}: from the run's start ("
                       + ("step 1, once the first weight's pods are available" if canary else "the switch")
                       + "), the new pods' series then cover a whole window")]
    if canary:
        pause = env.spec.rollout.canary.pause
        rows.append(Derivation("rollout.gates.abort_after", d(t.abort_after),
                               f"rollout.gates.initial_delay {d(t.initial_delay)} + rollout.gates.failure_limit "
                               f"{t.failure_limit} x rollout.gates.interval {d(t.interval)}: a version failing from "
                               "its first weight is aborted this long after its pods are available, "
                               + (f"within rollout.canary.pause {d(pause)}" if pause is not None
                                  else "if the person promoting waits that long")))
    else:
        count = t.post_promotion_count
        rows.append(Derivation("rollout.gates.judged", d(t.judged(count)),
                               f"rollout.gates.initial_delay {d(t.initial_delay)} + (rollout.gates.count {count} - 1)"
                               f" x rollout.gates.interval {d(t.interval)} after the switch, at least "
                               f"rollout.gates.full_traffic {d(t.full_traffic)}"))
    limit = env.spec.rollout.gates.max_burn_rate
    for o in env.rollout.burn_gates:
        assert limit is not None  # burn_gates is empty without it
        allowed = Fraction(repr(limit)) * Fraction(o.budget)
        rows.append(Derivation(f"rollout.gates.{o.slo}_burn_limit",
                               f"{percent(allowed)} of the new pods' requests {o.bad} over {d(t.window)}",
                               f"rollout.gates.max_burn_rate {format_number(limit)} x the {o.slo} budget "
                               f"{percent(Fraction(o.budget))} (100% - slo.{o.slo}.objective "
                               f"{format_number(o.objective)}%), over rollout.gates.window"))
    return rows


def step_derivations(env: Environment) -> list[Derivation]:
    """Each canary step as Argo Rollouts really runs it without a traffic router: pods, not traffic."""
    if env.rollout.strategy != "canary":
        return []
    a = env.spec.autoscaling
    rows = []
    for i, (weight, low, high) in enumerate(env.rollout.canary_steps, 1):
        shown = f"{weight}%: {low} at {a.min_replicas} replicas, {high} at {a.max_replicas}"
        rows.append(Derivation(f"rollout.canary.step_{i}", shown,
                               f"canary and stable pods Argo Rollouts runs for weight {weight} at autoscaling.min_replicas "
                               f"{a.min_replicas} and max_replicas {a.max_replicas} (real share of pods and requests)"))
    return rows
