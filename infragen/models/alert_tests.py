"""promtool unit tests for the alert rules, derived from the same model as the rules.

For every alert the generated file proves, on synthetic series that carry the environment's job and
namespace: it fires once the signal has been past the threshold for longer than `for` (with the
expected labels and annotations); it is silent just short of the threshold; silent before `for` has
elapsed; silent on zero traffic (ratio alerts); silent when the bad series belong to another namespace
or another job. Thresholds, `for`, the rate window and the pool capacity come from the environment, so
the tests change with the settings.

Timing model (all series start at t=0 from zero, constant rates, so every value is exact):
- ratio signals (a ratio of rates, or a quantile of a histogram) hold their final value from the first
  evaluation with two samples in the window (t = 1m);
- absolute rates and increases ramp up linearly until the rate window is full;
- gauges hold their value from t = 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import lru_cache
from typing import Literal, NamedTuple

from ..errors import AlertTestError
from .alerts import ROLLOUT_STUCK_PHASES, AlertInputs, AlertRule, promql_string
from .types import format_duration

SAMPLE_SECONDS = 15  # synthetic scrape interval: several samples in even the shortest (1m) rate window
EVAL_SECONDS = 60  # rule evaluation interval of the tests (Prometheus' default)
NEAR = Decimal("0.05")  # "just" past/short: within 5% of the threshold (of its distance to 0 or 1 for ratios)
NOISE = 10  # other namespaces/jobs carry 10x the service's traffic, so a dropped matcher swings the result
TRAFFIC = Decimal(1000)  # the service's own events per minute
RULE_FILES = ("../prometheus/alerts.yaml",)  # relative to the test file (and to its directory as cwd)

Kind = Literal["ratio", "rate", "gauge"]
LabelSet = tuple[tuple[str, str], ...]


# --- the file's structure ------------------------------------------------------------------------------
# Named tuples, not frozen dataclasses: immutable all the same, and an environment makes ~200 of them, where a
# frozen dataclass's __init__ (an object.__setattr__ per field) was a fifth of generating the tests.

class Series(NamedTuple):
    selector: str  # metric{label="value",...}
    values: str  # promtool expanding notation


class ExpectedAlert(NamedTuple):
    labels: LabelSet
    annotations: LabelSet


class AlertCheck(NamedTuple):
    eval_time: str
    alertname: str
    expected: tuple[ExpectedAlert, ...]  # empty: the alert must be silent


class TestGroup(NamedTuple):
    name: str
    interval: str
    series: tuple[Series, ...]
    checks: tuple[AlertCheck, ...]


class AlertTests(NamedTuple):
    rule_files: tuple[str, ...]
    evaluation_interval: str
    groups: tuple[TestGroup, ...]


# --- synthetic signals -----------------------------------------------------------------------------------

class _Line(NamedTuple):
    """One input series: a counter rising by `per_minute`, a flat counter, or a gauge."""
    metric: str
    labels: LabelSet
    amount: Decimal
    shape: Literal["counter", "flat", "gauge"]


@dataclass(frozen=True)
class _Who:
    job: str
    namespace: str

    def labels(self, *extra: tuple[str, str], instance: str = "pod-a:8000") -> LabelSet:
        return (("job", self.job), ("namespace", self.namespace), ("instance", instance)) + extra


def _counter(metric: str, labels: LabelSet, per_minute: Decimal) -> _Line:
    return _Line(metric, labels, per_minute, "counter")


def _histogram(metric: str, labels: LabelSet, buckets: list[tuple[Decimal | None, Decimal]]) -> list[_Line]:
    """Cumulative bucket counters; `None` is +Inf."""
    return [_counter(f"{metric}_bucket", labels + (("le", "+Inf" if le is None else _dec(le)),), count)
            for le, count in buckets]


@dataclass(frozen=True)
class _Scenario:
    """How to make one alert's expression take a chosen value, and what else is around it."""
    kind: Kind
    direction: Literal["above", "below"]
    bounded: bool  # the value is a ratio in (0, 1)
    own: Callable[[_Who, Decimal], list[_Line]]  # the service's series at value v
    other_good: Callable[[_Who, Decimal], list[_Line]]  # foreign series that would pull a leaky selector away from firing
    other_bad: Callable[[_Who, Decimal], list[_Line]]  # foreign series that would make a leaky selector fire
    result_labels: Callable[[_Who], LabelSet]  # labels of the alert beyond the rule's own
    zero_traffic: bool  # a ratio of traffic: must stay silent when the counters stand still


def _error_rate(who: _Who, v: Decimal) -> list[_Line]:
    req = "http_requests_total"
    base = (("method", "POST"), ("endpoint", "/score"))
    # A share of 4xx as well, so a status matcher widened to 4xx shows up.
    return [_counter(req, who.labels(*base, ("status", "500")), v * TRAFFIC),
            _counter(req, who.labels(*base, ("status", "404")), (1 - v) * TRAFFIC / 4),
            _counter(req, who.labels(*base, ("status", "200")), (1 - v) * TRAFFIC * 3 / 4)]


def _requests_with(status: str) -> Callable[[_Who, Decimal], list[_Line]]:
    return lambda who, v: [_counter("http_requests_total", who.labels(("method", "POST"), ("endpoint", "/score"), ("status", status)),
                                    TRAFFIC * NOISE)]


def _quantile_buckets(v: Decimal, slow: bool) -> list[tuple[Decimal | None, Decimal]]:
    """Buckets whose p95 is exactly v: 90% at or below v/2, 10% in (v/2, 3v/2], so p95 is the bucket's midpoint.
    `slow`: all observations beyond 3v/2 (p95 is then the highest finite bound, 3v/2)."""
    low, high = v / 2, v * 3 / 2
    if slow:
        return [(low, Decimal(0)), (high, Decimal(0)), (None, TRAFFIC * NOISE)]
    return [(low, TRAFFIC * 9 / 10), (high, TRAFFIC), (None, TRAFFIC)]


def _fast_buckets(v: Decimal, volume: Decimal) -> list[tuple[Decimal | None, Decimal]]:
    return [(v / 2, volume), (v * 3 / 2, volume), (None, volume)]


_LATENCY = "http_request_duration_seconds"
_QUERY = "database_query_duration_seconds"
_ENDPOINT = (("method", "POST"), ("endpoint", "/score"))


def _pool_scenario(env: AlertInputs) -> _Scenario:
    capacity = Decimal(env.pool_capacity)
    threshold = Decimal(repr(env.settings.db_pool_utilization.threshold))
    metric = "database_pool_connections_in_use"

    def gauge(who: _Who, ratio: Decimal, instance: str) -> _Line:
        return _Line(metric, who.labels(instance=instance), ratio * capacity, "gauge")

    return _Scenario(
        kind="gauge", direction="above", bounded=True,
        # A second, healthy instance: the alert is per instance, so exactly one fires.
        own=lambda who, v: [gauge(who, v, "pod-a:8000"), gauge(who, threshold / 2, "pod-b:8000")],
        other_good=lambda who, v: [gauge(who, Decimal(0), "pod-x:8000")],
        other_bad=lambda who, v: [gauge(who, Decimal(1), "pod-x:8000")],
        result_labels=lambda who: who.labels(),
        zero_traffic=False,
    )


def _scenarios(env: AlertInputs) -> dict[str, _Scenario]:
    window_minutes = Decimal(env.settings.rate_window) / 60
    exceptions_t = Decimal(env.settings.unhandled_exceptions.threshold)
    return {
        "HighErrorRate": _Scenario(
            kind="ratio", direction="above", bounded=True, own=_error_rate,
            other_good=_requests_with("200"), other_bad=_requests_with("500"),
            result_labels=lambda who: (), zero_traffic=True),
        "HighLatencyP95": _Scenario(
            kind="ratio", direction="above", bounded=False,
            own=lambda who, v: _histogram(_LATENCY, who.labels(*_ENDPOINT), _quantile_buckets(v, slow=False)),
            other_good=lambda who, v: _histogram(_LATENCY, who.labels(*_ENDPOINT), _fast_buckets(v, TRAFFIC * NOISE)),
            other_bad=lambda who, v: _histogram(_LATENCY, who.labels(*_ENDPOINT), _quantile_buckets(v, slow=True)),
            result_labels=lambda who: (), zero_traffic=True),
        "DatabasePoolNearExhaustion": _pool_scenario(env),
        "LowCacheHitRate": _Scenario(
            kind="ratio", direction="below", bounded=True,
            own=lambda who, v: [_counter("cache_hits_total", who.labels(), v * TRAFFIC),
                                _counter("cache_misses_total", who.labels(), (1 - v) * TRAFFIC)],
            other_good=lambda who, v: [_counter("cache_hits_total", who.labels(), TRAFFIC * NOISE)],
            other_bad=lambda who, v: [_counter("cache_misses_total", who.labels(), TRAFFIC * NOISE)],
            result_labels=lambda who: (), zero_traffic=True),
        "UnhandledExceptions": _Scenario(
            kind="rate", direction="above", bounded=False,
            # Plenty of other error types too, so a dropped error_type matcher shows up.
            own=lambda who, v: [
                _counter("errors_total", who.labels(("error_type", "unhandled"), ("endpoint", "/score")), v / window_minutes),
                _counter("errors_total", who.labels(("error_type", "validation"), ("endpoint", "/score")),
                         (exceptions_t + 1) * NOISE / window_minutes)],
            other_good=lambda who, v: [],
            other_bad=lambda who, v: [_counter("errors_total", who.labels(("error_type", "unhandled"), ("endpoint", "/score")),
                                               (exceptions_t + 1) * NOISE / window_minutes)],
            result_labels=lambda who: (), zero_traffic=False),
        "SlowDatabaseQueries": _Scenario(
            kind="ratio", direction="above", bounded=False,
            # A fast second query type: the alert is per query type, so exactly one fires.
            own=lambda who, v: (_histogram(_QUERY, who.labels(("query_type", "select")), _quantile_buckets(v, slow=False))
                                + _histogram(_QUERY, who.labels(("query_type", "insert")), _fast_buckets(v, TRAFFIC))),
            other_good=lambda who, v: _histogram(_QUERY, who.labels(("query_type", "select")), _fast_buckets(v, TRAFFIC * NOISE)),
            other_bad=lambda who, v: _histogram(_QUERY, who.labels(("query_type", "select")), _quantile_buckets(v, slow=True)),
            result_labels=lambda who: (("query_type", "select"),), zero_traffic=True),
        "RateLimitExceeded": _Scenario(
            kind="rate", direction="above", bounded=False,
            own=lambda who, v: [_counter("rate_limit_exceeded_total", who.labels(), v * 60)],
            other_good=lambda who, v: [],
            other_bad=lambda who, v: [_counter("rate_limit_exceeded_total", who.labels(), (v + 1) * 60 * NOISE)],
            result_labels=lambda who: (), zero_traffic=False),
    }


# --- Prometheus' template functions (Go's %.4g equals C's and Python's) ---------------------------------------

def _humanize(v: float) -> str:
    if v == 0 or math.isnan(v) or math.isinf(v):
        return f"{v:.4g}"
    prefix = ""
    if abs(v) >= 1:
        for p in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
    else:
        for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(v) >= 1:
                break
            prefix, v = p, v * 1000
    return f"{v:.4g}{prefix}"


def _humanize_duration(v: float) -> str:
    if math.isnan(v) or math.isinf(v):
        return f"{v:.4g}"
    if v == 0:
        return f"{v:.4g}s"
    if abs(v) >= 1:
        sign = "-" if v < 0 else ""
        whole = int(abs(v))
        seconds, minutes, hours, days = whole % 60, whole // 60 % 60, whole // 3600 % 24, whole // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{abs(v):.4g}s"
    prefix = ""
    for p in ("m", "u", "n", "p", "f", "a", "z", "y"):
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{v:.4g}{prefix}s"


_FUNCTIONS = {"humanize": _humanize, "humanizeDuration": _humanize_duration,
              "humanizePercentage": lambda v: "%.4g%%" % (v * 100)}
_ACTION = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_VALUE = re.compile(r"^\$value\s*\|\s*(\w+)$")
_LABEL = re.compile(r"^\$labels\.([A-Za-z_][A-Za-z0-9_]*)$")


def expand_annotation(template: str, value: float, labels: dict[str, str]) -> str:
    """The text Prometheus makes of an annotation, for the template actions our rules use."""
    def action(match: re.Match[str]) -> str:
        body = match.group(1)
        if (m := _VALUE.match(body)) and m.group(1) in _FUNCTIONS:
            return _FUNCTIONS[m.group(1)](value)
        if m := _LABEL.match(body):
            return labels.get(m.group(1), "")
        raise AlertTestError(f"annotation action {{{{ {body} }}}} is not supported by the test generator")

    return _ACTION.sub(action, template)


# --- choosing values ---------------------------------------------------------------------------------------

def _dec(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def _candidates(low: Decimal, high: Decimal, far: Decimal) -> Iterator[Decimal]:
    """Numbers strictly inside (low, high), fewest significant digits first, nearest to `far` first."""
    top = max(abs(low), abs(high))
    if top == 0:
        return
    exponent = top.adjusted()
    seen: set[Decimal] = set()
    for digits in range(1, 18):  # up to what a float64 can carry
        step = Decimal(1).scaleb(exponent - digits + 1)
        start = int((low / step).to_integral_value(ROUND_FLOOR)) + 1
        stop = int((high / step).to_integral_value(ROUND_CEILING)) - 1
        middle = int((far / step).to_integral_value())
        found = [n * step for n in range(max(start, middle - 50), min(stop, middle + 50) + 1)]
        found.sort(key=lambda c: (abs(far - c), c))
        for candidate in found:
            if candidate.normalize() not in seen:
                seen.add(candidate.normalize())
                yield candidate


def _pick(rule: AlertRule, scenario: _Scenario, who: _Who, threshold: Decimal, past: bool) -> Decimal | None:
    """A value `past` (or just short of) the threshold whose annotations do not depend on float rounding."""
    room = min(threshold, 1 - threshold) if scenario.bounded else threshold
    margin = NEAR * room
    if threshold == 0:  # a count threshold of zero: one event is past it, and nothing is short of zero
        if not past:
            return None
        low, high = Decimal(0), Decimal(2)
    else:
        above = past == (scenario.direction == "above")
        low, high = (threshold, threshold + margin * 2) if above else (threshold - margin * 2, threshold)
        if scenario.bounded:
            low, high = max(low, Decimal(0)), min(high, Decimal(1))
    far = threshold + margin if high > threshold else threshold - margin
    return _stable_value(_value_functions(rule), low, high, far)


def _value_functions(rule: AlertRule) -> tuple[str, ...]:
    """The functions the annotations apply to $value: the only part of their text that depends on it."""
    return _functions_in(rule.summary, rule.description)


@lru_cache(maxsize=1024)  # the same annotation texts in every environment
def _functions_in(*templates: str) -> tuple[str, ...]:
    names = {m.group(1) for t in templates for body in _ACTION.findall(t)
             if (m := _VALUE.match(body)) and m.group(1) in _FUNCTIONS}
    return tuple(sorted(names))


@lru_cache(maxsize=4096)  # the same thresholds and functions recur across environments: search once
def _stable_value(functions: tuple[str, ...], low: Decimal, high: Decimal, far: Decimal) -> Decimal:
    fallback = None
    for value in _candidates(low, high, far):
        if all(len({_FUNCTIONS[f](float(value) * (1 + eps)) for eps in (-1e-9, 0.0, 1e-9)}) == 1 for f in functions):
            return value
        fallback = fallback or value
    # Only for thresholds finer than a float can tell apart: build anyway, promtool will say what differs.
    return fallback if fallback is not None else far


# --- timing ------------------------------------------------------------------------------------------------

def _ceil_eval(seconds: int) -> int:
    """The first evaluation at or after `seconds`."""
    return -(-seconds // EVAL_SECONDS) * EVAL_SECONDS


def _earliest_active(scenario: _Scenario, value: Decimal, threshold: Decimal, window: int) -> int:
    """A lower bound on the first evaluation at which the condition holds."""
    if scenario.kind == "gauge":
        return 0
    if scenario.kind == "ratio":
        return EVAL_SECONDS  # needs two samples in the window
    # Ramps as value * t / window until the window is full; `>=` keeps it a lower bound at exact ties.
    t = EVAL_SECONDS
    while value * min(t, window) / window < threshold:
        t += EVAL_SECONDS
    return t


# --- building the file -------------------------------------------------------------------------------------

def _series(lines: list[_Line], samples: int) -> list[Series]:
    return [Series(_selector(line.metric, line.labels), _values(line.shape, line.amount, samples)) for line in lines]


@lru_cache(maxsize=8192)  # series repeat across the test groups of an environment and across environments
def _selector(metric: str, labels: LabelSet) -> str:
    return metric + "{" + ",".join(f"{k}={promql_string(v)}" for k, v in labels) + "}"


@lru_cache(maxsize=8192)
def _values(shape: str, amount: Decimal, samples: int) -> str:
    if shape == "counter":
        # 12 significant digits: far inside the 1e-9 the annotation check tolerates, at any magnitude.
        step = Decimal(format(amount * SAMPLE_SECONDS / 60, ".12g"))
        return f"0+{_dec(step)}x{samples}"
    return f"{_dec(amount)}+0x{samples}"  # a gauge, or a counter standing still


def _flat(lines: list[_Line]) -> list[_Line]:
    """The same series standing still: traffic stopped."""
    return [_Line(line.metric, line.labels, Decimal(1000), "flat") for line in lines]


class _Groups(NamedTuple):
    """Checks and test groups of one rule, every series `samples` long."""

    rule: AlertRule
    samples: int

    def check(self, at: int, expected: tuple[ExpectedAlert, ...] = ()) -> AlertCheck:
        return AlertCheck(format_duration(at), self.rule.name, expected)

    def group(self, name: str, lines: list[_Line], *checks: AlertCheck) -> TestGroup:
        return TestGroup(f"{self.rule.name}: {name}", format_duration(SAMPLE_SECONDS),
                         tuple(_series(lines, self.samples)), checks)


def _expected(rule: AlertRule, value: float, labels: dict[str, str]) -> ExpectedAlert:
    """The alert as Prometheus sends it: its labels, and its annotations expanded for `value`."""
    return ExpectedAlert(labels=tuple(sorted(labels.items())), annotations=tuple(sorted(
        [("summary", expand_annotation(rule.summary, value, labels)),
         ("description", expand_annotation(rule.description, value, labels))]
        + ([("runbook_url", rule.runbook_url)] if rule.runbook_url else []))))


def _target_groups(rule: AlertRule, hold: int, who: _Who, other_ns: _Who, other_job: _Who) -> list[TestGroup]:
    """MetricsMissing: fires when no target of the job and namespace is up, whether gone or failing; silent while
    one is up, and whatever targets of other namespaces or jobs do."""
    fire_at = _ceil_eval(hold) + EVAL_SECONDS
    samples = fire_at // SAMPLE_SECONDS + 4

    def up(owner: _Who, value: int, instance: str = "pod-a:8000") -> _Line:
        return _Line("up", owner.labels(instance=instance), Decimal(value), "gauge")

    make = _Groups(rule, samples)
    check, group = make.check, make.group

    # absent() of a comparison carries no labels of its own: the alert has exactly the rule's labels.
    labels = dict(rule.labels)
    expected = _expected(rule, 1.0, labels)
    fire_checks = []
    if hold >= EVAL_SECONDS:
        fire_checks.append(check((hold - 1) // EVAL_SECONDS * EVAL_SECONDS))  # pending, not firing, before `for`
    fire_checks.append(check(fire_at, (expected,)))
    # Up targets of other namespaces and jobs around it: a matcher that leaked them would keep it silent.
    others_up = [up(other_ns, 1), up(other_job, 1)]
    return [
        group(f"fires when no target is left (for {rule.for_}), silent until `for` has elapsed", others_up, *fire_checks),
        group("fires when the target is there but down", [up(who, 0)] + others_up, check(fire_at, (expected,))),
        group("silent while one target is up", [up(who, 1), up(who, 0, "pod-b:8000")], check(fire_at)),
        group(f"silent when targets of another namespace ({other_ns.namespace}) or job ({other_job.job}) are down",
              [up(who, 1), up(other_ns, 0), up(other_job, 0)], check(fire_at)),
    ]


def _rollout_groups(rule: AlertRule, hold: int, namespace: str, rollout: str) -> list[TestGroup]:
    """RolloutStuck on the controller's real phases: fires when the rollout has been Paused, Abort, Error, Timeout or
    InvalidSpec past `for`, whichever label carries its namespace (`namespace` with honorLabels, `exported_namespace`
    with the chart's default ServiceMonitor, whose `namespace` is then the controller's); silent while Progressing
    or Completed, and for another rollout or namespace stuck the same way."""
    fire_at = _ceil_eval(hold) + EVAL_SECONDS
    samples = fire_at // SAMPLE_SECONDS + 4
    controller = (("job", "argo-rollouts"), ("instance", "argo-rollouts-metrics:8090"))

    def info(phase: str, name: str = rollout, ns: str = namespace, honor: bool = True) -> _Line:
        where = (("namespace", ns),) if honor else (("namespace", "argo-rollouts"), ("exported_namespace", ns))
        labels = controller + where + (("name", name), ("strategy", "canary"), ("phase", phase))
        return _Line("rollout_info", labels, Decimal(1), "gauge")

    make = _Groups(rule, samples)
    check, group = make.check, make.group

    labels = {**dict(rule.labels), "name": rollout}
    expected = _expected(rule, 1.0, labels)
    checks = ([check((hold - 1) // EVAL_SECONDS * EVAL_SECONDS)] if hold >= EVAL_SECONDS else []) + \
        [check(fire_at, (expected,))]
    groups = []
    for honor, layout in ((True, "(namespace: honorLabels)"), (False, "(exported_namespace: the chart's default)")):
        others = [info("Paused", name=_other_job(rollout), honor=honor),
                  info("Abort", ns=_other_namespace(namespace), honor=honor)]
        groups += [
            group(f"fires when paused (waiting on a person) for {rule.for_}, silent until `for` has elapsed {layout}",
                  [info("Paused", honor=honor)] + others, *checks),
            *(group(f"fires when {phase} {layout}", [info(phase, honor=honor)], check(fire_at, (expected,)))
              for phase in ROLLOUT_STUCK_PHASES[1:]),
            *(group(f"silent while {phase} {layout}", [info(phase, honor=honor)], check(fire_at))
              for phase in ("Progressing", "Completed")),
            group(f"silent when another rollout or namespace is stuck {layout}",
                  [info("Completed", honor=honor)] + others, check(fire_at)),
        ]
    return groups


def _other_namespace(own: str) -> str:
    return "other-namespace" if own != "other-namespace" else "other-namespace-2"


def _other_job(own: str) -> str:
    return "other-job" if own != "other-job" else "other-job-2"


def build_alert_tests(env: AlertInputs, rules: Sequence[AlertRule]) -> AlertTests:
    """promtool tests of `rules` (built by build_alert_rules from the same inputs)."""
    alerts = env.settings
    window = alerts.rate_window
    who = _Who(env.job, env.namespace)
    other_ns = _Who(env.job, _other_namespace(env.namespace))
    other_job = _Who(_other_job(env.job), env.namespace)
    scenarios = _scenarios(env)
    groups: list[TestGroup] = []
    for rule in rules:
        if rule.setting == "metrics_missing":
            groups.extend(_target_groups(rule, alerts.metrics_missing.for_, who, other_ns, other_job))
            continue
        if rule.setting == "rollout_stuck":
            groups.extend(_rollout_groups(rule, alerts.rollout_stuck.for_, env.namespace, env.rollout or ""))
            continue
        scenario = scenarios[rule.name]
        threshold = Decimal(repr(rule.threshold))
        hold = getattr(alerts, rule.setting).for_
        fire_at = _ceil_eval(window) + _ceil_eval(hold) + EVAL_SECONDS  # steady state, past `for`
        samples = fire_at // SAMPLE_SECONDS + 4
        bad = _pick(rule, scenario, who, threshold, past=True)
        good = _pick(rule, scenario, who, threshold, past=False)
        assert bad is not None
        word = "above" if scenario.direction == "above" else "below"
        arrow = ">" if scenario.direction == "above" else "<"

        make = _Groups(rule, samples)
        check, group = make.check, make.group

        labels = dict(scenario.result_labels(who))
        labels.update(rule.labels)
        expected = _expected(rule, float(bad), labels)
        # Foreign series pulling the other way: a matcher that leaks them would keep the alert silent.
        fire_lines = scenario.own(who, bad) + scenario.other_good(other_ns, bad) + scenario.other_good(other_job, bad)
        fire_checks = []
        if hold >= EVAL_SECONDS:
            last_pending = _earliest_active(scenario, bad, threshold, window) + (hold - 1) // EVAL_SECONDS * EVAL_SECONDS
            fire_checks.append(check(last_pending))
        fire_checks.append(check(fire_at, (expected,)))
        groups.append(group(
            f"fires when {arrow} {_dec(threshold)} (value {_dec(bad)}) for {rule.for_}, silent until `for` has elapsed",
            fire_lines, *fire_checks))
        if good is not None:
            groups.append(group(f"silent just {'below' if word == 'above' else 'above'} the threshold (value {_dec(good)})",
                                scenario.own(who, good), check(fire_at)))
        else:
            good = Decimal(0)
        if scenario.zero_traffic:
            groups.append(group("silent on zero traffic (no 0/0 alert)", _flat(scenario.own(who, bad)), check(fire_at)))
        for label, other in (("namespace", other_ns), ("job", other_job)):
            lines = scenario.own(who, good) if good else []
            groups.append(group(f"silent when the bad series belong to another {label} ({getattr(other, label)})",
                                lines + scenario.other_bad(other, good or bad), check(fire_at)))
    return AlertTests(RULE_FILES, format_duration(EVAL_SECONDS), tuple(groups))
