"""The alert rules of the contract, built from an environment's settings: seven with thresholds, and
MetricsMissing, which guards them all.

Every PromQL expression is assembled here, not in the template, so the same objects also drive the
generated promtool tests. Rules follow the Prometheus pitfalls list: sum numerator and denominator
separately, keep `le` through the sum, rate() only on counters, and a ratio with no traffic is NaN, which
compares false, so it never fires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from .settings import Alerts
from .types import format_duration, format_number


@dataclass(frozen=True)
class AlertRule:
    name: str  # alert name: part of the contract, never changes
    setting: str  # the key under `alerts:` that configures it
    query: str  # what is compared with the threshold (a dashboard panel shows exactly this), or the whole condition
    comparison: str | None  # ">" or "<"; None: `query` is the condition (no threshold)
    threshold: float | int | None
    unit: str  # of `query`, in Grafana's unit ids (percentunit, s, reqps, short): how a dashboard shows it
    for_: str
    severity: str
    labels: tuple[tuple[str, str], ...]
    summary: str
    description: str
    runbook_url: str | None

    @property
    def expr(self) -> str:
        if self.comparison is None:
            return self.query
        assert self.threshold is not None  # a comparison always comes with its threshold
        return f"{self.query} {self.comparison} {format_number(self.threshold)}"


@dataclass(frozen=True)
class AlertInputs:
    """What the alert rules and their tests are built from: the service's identity, the `alerts:` settings and
    the pool capacity the pool alert divides by (the environment computes it; the rules only quote it)."""

    job: str
    namespace: str
    environment: str
    settings: Alerts
    pool_size: int
    pool_overflow: int
    rollout: str | None = None  # the Argo Rollout's name, when a gated strategy has one

    @property
    def pool_capacity(self) -> int:
        return self.pool_size + self.pool_overflow


@lru_cache(maxsize=4096)  # label values repeat in every series of every generated alert test
def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal (Go escaping)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def percent_text(ratio: float) -> str:
    return format_number(float(Decimal(repr(ratio)) * 100)) + "%"


def selector(env: AlertInputs, *extra: str) -> str:
    return braces(service_matchers(env.job, env.namespace), *extra)


def service_matchers(job: str, namespace: str) -> tuple[str, ...]:
    """The matchers every query of the service starts with: its job and namespace."""
    return (f"job={promql_string(job)}", f"namespace={promql_string(namespace)}")


def braces(matchers: Sequence[str], *extra: str) -> str:
    return "{" + ",".join([*matchers, *extra]) + "}"


# --- queries shared by the alerts and the rollout gates (one builder each, so they can never drift apart) ---

def error_ratio(matchers: Sequence[str], window: str, *, no_errors_is_zero: bool = False) -> str:
    """Share of 5xx responses: sum of the 5xx rate over sum of every rate (summed separately, then divided).
    `no_errors_is_zero`: a version that has never answered a 5xx has no 5xx series at all, so its ratio is empty,
    not 0; a gate must read that as 0 and keep "no data" for zero requests only (then the ratio is 0/0)."""
    errors = f'sum(rate(http_requests_total{braces(matchers, "status=~" + promql_string("5.."))}[{window}]))'
    if no_errors_is_zero:
        errors = f"({errors} or vector(0))"
    return f"{errors} / sum(rate(http_requests_total{braces(matchers)}[{window}]))"


def latency_p95(matchers: Sequence[str], window: str) -> str:
    """p95 request latency from the histogram, `le` kept through the sum."""
    return f"histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{braces(matchers)}[{window}])))"


@dataclass(frozen=True)
class _Draft:
    """One alert before the labels, `for` and runbook its `alerts.<setting>` section adds."""

    name: str
    setting: str
    threshold: float | int | None
    query: str
    comparison: str | None
    unit: str
    summary: str
    description: str


@dataclass(frozen=True)
class _Words:
    """What every alert's query and text is made of."""

    env: AlertInputs
    window: str
    matchers: tuple[str, ...]
    sel: str
    who: str  # "job (environment)", the start of every summary
    where: str  # "job in namespace ns"

    def rate(self, metric: str) -> str:
        return f"rate({metric}{self.sel}[{self.window}])"


def _request_alerts(w: _Words) -> list[_Draft]:
    a, window, who, where = w.env.settings, w.window, w.who, w.where
    return [
        # No 5xx at all reads as 0, not "no data" (the dashboard shows it); zero requests stay NaN: no alert.
        _Draft(
            name="HighErrorRate", setting="error_rate", threshold=a.error_rate.threshold,
            query=error_ratio(w.matchers, window, no_errors_is_zero=True), comparison=">", unit="percentunit",
            summary=f"{who}: 5xx responses above {percent_text(a.error_rate.threshold)}",
            description=f"{{{{ $value | humanizePercentage }}}} of requests to {where} answered 5xx over the last "
                        f"{window} (threshold {percent_text(a.error_rate.threshold)})."),
        _Draft(
            name="HighLatencyP95", setting="latency_p95", threshold=a.latency_p95.threshold_seconds,
            query=latency_p95(w.matchers, window), comparison=">", unit="s",
            summary=f"{who}: p95 latency above {format_number(a.latency_p95.threshold_seconds)}s",
            description=f"p95 request latency of {where} is {{{{ $value | humanizeDuration }}}} over the last {window} "
                        f"(threshold {format_number(a.latency_p95.threshold_seconds)}s)."),
    ]


def _dependency_alerts(w: _Words) -> list[_Draft]:
    env, a, window, who, where = w.env, w.env.settings, w.window, w.who, w.where
    capacity = env.pool_capacity
    return [
        _Draft(
            name="DatabasePoolNearExhaustion", setting="db_pool_utilization", threshold=a.db_pool_utilization.threshold,
            query=f"database_pool_connections_in_use{w.sel} / {capacity}", comparison=">", unit="percentunit",
            summary=f"{who}: database pool above {percent_text(a.db_pool_utilization.threshold)} on an instance",
            description=f"Instance {{{{ $labels.instance }}}} of {where} uses {{{{ $value | humanizePercentage }}}} of "
                        f"its {capacity} database connections (pool {env.pool_size} + overflow {env.pool_overflow}; "
                        f"threshold {percent_text(a.db_pool_utilization.threshold)})."),
        _Draft(
            name="LowCacheHitRate", setting="cache_hit_rate", threshold=a.cache_hit_rate.threshold,
            # `or vector(0)`: a side with no series yet counts as zero instead of hiding the ratio.
            query=f'(sum({w.rate("cache_hits_total")}) or vector(0)) / ((sum({w.rate("cache_hits_total")}) '
                  f'or vector(0)) + (sum({w.rate("cache_misses_total")}) or vector(0)))',
            comparison="<", unit="percentunit",
            summary=f"{who}: cache hit rate below {percent_text(a.cache_hit_rate.threshold)}",
            description=f"Cache hit rate of {where} is {{{{ $value | humanizePercentage }}}} over the last {window} "
                        f"(threshold {percent_text(a.cache_hit_rate.threshold)})."),
        _Draft(
            name="UnhandledExceptions", setting="unhandled_exceptions", threshold=a.unhandled_exceptions.threshold,
            query=f'sum(increase(errors_total{selector(env, "error_type=" + promql_string("unhandled"))}[{window}]))',
            comparison=">", unit="short",
            summary=f"{who}: more than {a.unhandled_exceptions.threshold} unhandled exceptions in {window}",
            description=f"{where} raised {{{{ $value | humanize }}}} unhandled exceptions over the last {window} "
                        f"(threshold {a.unhandled_exceptions.threshold})."),
        _Draft(
            name="SlowDatabaseQueries", setting="slow_queries", threshold=a.slow_queries.threshold_seconds,
            query=f'histogram_quantile(0.95, sum by (le, query_type) '
                  f'({w.rate("database_query_duration_seconds_bucket")}))',
            comparison=">", unit="s",
            summary=f"{who}: p95 {{{{ $labels.query_type }}}} query time above "
                    f"{format_number(a.slow_queries.threshold_seconds)}s",
            description=f"p95 duration of {{{{ $labels.query_type }}}} queries from {where} is "
                        f"{{{{ $value | humanizeDuration }}}} over the last {window} "
                        f"(threshold {format_number(a.slow_queries.threshold_seconds)}s)."),
    ]


def _edge_and_presence_alerts(w: _Words) -> list[_Draft]:
    env, a, who, where = w.env, w.env.settings, w.who, w.where
    drafts = [
        _Draft(
            name="RateLimitExceeded", setting="rate_limited", threshold=a.rate_limited.threshold_per_second,
            query=f'sum({w.rate("rate_limit_exceeded_total")})', comparison=">", unit="reqps",
            summary=f"{who}: more than {format_number(a.rate_limited.threshold_per_second)} rate-limited requests "
                    "per second",
            description=f"{where} rejects {{{{ $value | humanize }}}} requests per second for exceeding the rate "
                        f"limit (threshold {format_number(a.rate_limited.threshold_per_second)}/s)."),
        _Draft(
            # No threshold. `== 1` makes a target that is there but failing count as missing too, and absent()
            # fires when no series is left: gone and failing alike. A scrape job that never gives this job and
            # namespace (a renamed Service, a missing relabeling) looks exactly like this: every other alert silent.
            name="MetricsMissing", setting="metrics_missing", threshold=None,
            query=f"absent(up{w.sel} == 1)", comparison=None, unit="short",
            summary=f"{who}: no metrics: no target of job {env.job} in namespace {env.namespace} is up",
            description=f"Prometheus has no up target of {where} (gone, or every scrape failing): every other alert of "
                        "the service is blind until it is back."),
    ]
    if env.rollout is not None:
        held = format_duration(env.settings.rollout_stuck.for_)
        phases = "|".join(ROLLOUT_STUCK_PHASES)
        name = promql_string(env.rollout)
        # The controller's scrape keeps the rollout's namespace as `namespace` with honorLabels, or renames it
        # `exported_namespace` without (the argo-rollouts chart's ServiceMonitor sets none): either layout matches.
        selectors = [f'rollout_info{{{label}={promql_string(env.namespace)},name={name},phase=~"{phases}"}}'
                     for label in ("namespace", "exported_namespace")]
        drafts.append(_Draft(
            name="RolloutStuck", setting="rollout_stuck", threshold=None,
            query=f"max by (name) ({' or '.join(selectors)})",
            comparison=None, unit="short",
            summary=f"{who}: rollout {env.rollout} paused, aborted or failing for {held}",
            description=f"Rollout {env.rollout} in namespace {env.namespace} has waited on a person (a paused step, "
                        "an inconclusive analysis, a blue-green promotion), been aborted (a failed analysis: the stable "
                        "version serves), or failed (Error, Timeout, InvalidSpec) for "
                        f"{held}: `kubectl argo rollouts get rollout {env.rollout} -n {env.namespace}` says which."))
    return drafts


# rollout_info's `phase` values that need a person (argo-rollouts controller/metrics/rollouts.go, calculatePhase:
# the Progressing condition's reason). Progressing and Completed are the others; Healthy and Degraded are the
# object's status.phase, never this label.
ROLLOUT_STUCK_PHASES = ("Paused", "Abort", "Error", "Timeout", "InvalidSpec")
ROLLOUT_PHASES = ("Progressing", "Completed", *ROLLOUT_STUCK_PHASES)


def build_alert_rules(env: AlertInputs) -> list[AlertRule]:
    alerts = env.settings
    window = format_duration(alerts.rate_window)
    matchers = service_matchers(env.job, env.namespace)
    words = _Words(env, window, matchers, braces(matchers), f"{env.job} ({env.environment})",
                   f"{env.job} in namespace {env.namespace}")
    # In this order in the rules file and on the dashboard.
    drafts = _request_alerts(words) + _dependency_alerts(words) + _edge_and_presence_alerts(words)
    extra_labels = tuple(sorted(alerts.labels.items()))
    rules = []
    for draft in drafts:
        setting = getattr(alerts, draft.setting)
        labels = (("severity", setting.severity), ("service", env.job), ("namespace", env.namespace),
                  ("environment", env.environment)) + extra_labels
        rules.append(AlertRule(
            name=draft.name, setting=draft.setting, query=draft.query, comparison=draft.comparison,
            threshold=draft.threshold, unit=draft.unit, for_=format_duration(setting.for_), severity=setting.severity,
            labels=labels, summary=draft.summary, description=draft.description,
            runbook_url=f"{alerts.runbook_url.rstrip('/')}#{draft.name}" if alerts.runbook_url else None,
        ))
    return rules
