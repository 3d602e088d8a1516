"""promtool unit tests of the SLO rules (output tests/slo.test.yaml), derived from the same objectives.

For each burn condition (fast: 14.4x over 1h with 5m, 6x over 6h with 30m; slow: 3x over 1d with 2h, 1x over 3d
with 6h, for a 30d period) a test group loads a clean baseline as long as the tier's longest window, so every
window is full, then burns at 1.05x the condition's factor: the tier's alert must be silent one evaluation before
the time computed here and firing at it, `for` included, with its labels and annotations (burn rate and budget
left). A burn at 0.95x must leave the tier silent past the point where the condition would have fired. Further
groups: zero traffic (no alert, and no ratio or budget sample at all: never NaN), traffic below
`slo.min_request_rate` with every request failing (silent), and another namespace burning (silent). Every group
also carries the excluded endpoints failing at ten times the service's traffic, and 429 answers, which are not
errors: a rule that counted either would fire where the tests expect silence.

Long windows in seconds (promtool evaluates every rule at every evaluation step from 0 to the last check): the
input is sampled each minute (so a 5m rate always has samples), the rules are evaluated every 5 minutes.

`_Timeline` is a small model of what Prometheus 2's rule engine computes on these series (promql/functions.go
extrapolatedRate, promql/engine.go ranges closed at both ends, rules/alerting.go `for`): counters start at 0,
so `rate(x[w])` is the increase over the samples in [t-w, t] divided by w, and a sum of 5m rates taken every
5 minutes is the increase since the start divided by 300.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from itertools import accumulate
from typing import Any

from .alerts import promql_string
from .slo import TIERS, Condition, Objective, Tier, decimal_text, go_float
from .types import format_duration, format_number

EVAL_MINUTES = 5
TRAFFIC = Decimal(600)  # the service's requests per minute (10/s)
LIMITED = Decimal("0.1")  # 429 answers on top of the service's traffic, as a share of it: not errors
NOISE = 10  # excluded endpoints and other namespaces carry 10x the traffic, all of it failing
ABOVE, BELOW = Decimal("1.05"), Decimal("0.95")
RULE_FILES = ("../prometheus/slo-rules.yaml",)


def _minutes(seconds: int) -> int:
    return seconds // 60


def _counter(increments: list[tuple[int, Decimal]]) -> str:
    return _counter_text(tuple(increments))


@lru_cache(maxsize=1024)
def _counter_text(increments: tuple[tuple[int, Decimal], ...]) -> str:
    """promtool notation of a counter from 0 rising by `per_minute` for `minutes`, phase after phase."""
    parts, value, first = [], Decimal(0), True
    for minutes, per_minute in increments:
        if first:
            parts.append(f"0+{decimal_text(per_minute)}x{minutes}")
            first = False
        elif minutes:
            parts.append(f"{decimal_text(value + per_minute)}+{decimal_text(per_minute)}x{minutes - 1}")
        value += per_minute * minutes
    return " ".join(parts)


@dataclass
class _Traffic:
    """One SLO's requests in a group: `rate` per minute, the bad share per phase (minutes, share)."""

    rate: Decimal
    phases: list[tuple[int, Decimal]]


@dataclass(frozen=True)
class _Numbers:
    """What the timeline of an SLO depends on: environments that share these share their timelines (a fleet of
    environments with default objectives computes each once)."""

    slo: str
    budget: Decimal
    period: int
    min_rate: Fraction
    fors: tuple[int, ...]  # `for` of each tier, in TIERS order

    @classmethod
    def of(cls, o: Objective) -> _Numbers:
        return cls(o.slo, o.budget, o.period, Fraction(repr(o.settings.min_request_rate)),
                   tuple(o.tier_for(t) for t in TIERS))

    def factor(self, c: Condition) -> Fraction:
        return c.factor(self.period)

    def tier_for(self, tier: Tier) -> int:
        return self.fors[TIERS.index(tier)]


def _timeline(o: Objective, traffic: _Traffic, end: int) -> _Timeline:
    return _cached_timeline(_Numbers.of(o), traffic.rate, tuple(traffic.phases), end)


@lru_cache(maxsize=512)
def _cached_timeline(numbers: _Numbers, rate: Decimal, phases: tuple[tuple[int, Decimal], ...], end: int) -> _Timeline:
    return _Timeline(numbers, _Traffic(rate, list(phases)), end)


@dataclass
class _Scan:
    """How far a tier's scan over the evaluations went: the next minute, where the condition began to hold (None:
    it does not), and the firings found."""

    next: int = 0
    active: int | None = None
    found: list[tuple[int, Fraction, Condition]] = field(default_factory=list)


class _Timeline:
    """The recorded ratios and the alert of one SLO over a group's evaluations (every 5 minutes). Counters rise at a
    constant rate within each phase, so every quantity has a closed form. The scan over evaluations runs on
    integers: every rate is scaled by the common denominator of the rates, which keeps the arithmetic exact."""

    def __init__(self, numbers: _Numbers, traffic: _Traffic, end: int) -> None:
        self.o, self.end = numbers, end
        extra = Fraction(LIMITED) if numbers.slo == "availability" else Fraction(0)  # the 429s: good requests
        per_minute = Fraction(traffic.rate) * (1 + extra)
        phases, start = [], 0
        for minutes, share in traffic.phases:
            phases.append((start, start + minutes, Fraction(traffic.rate) * Fraction(share)))
            start += minutes
        self.scale = math.lcm(per_minute.denominator, *(rate.denominator for _, _, rate in phases))
        self._total = int(per_minute * self.scale)  # scaled requests per minute
        scaled = [(first, last, int(rate * self.scale)) for first, last, rate in phases]  # scaled bad ones
        self.min_rate = numbers.min_rate
        self.budget = Fraction(numbers.budget)
        # The bad requests (scaled) up to each evaluation: minute m counts its phase's rate (the last phase holds).
        per_minute_bad = [rate for first, last, rate in scaled for _ in range(last - first)][:end]
        per_minute_bad += [scaled[-1][2]] * (end - len(per_minute_bad))
        bad_at = list(accumulate(per_minute_bad, initial=0))[::EVAL_MINUTES]
        # Timelines are cached (a fleet shares them): 8 bytes an evaluation, not a Python int's 40, when they fit.
        self._bad_at: Sequence[int] = array("q", bad_at) if bad_at[-1] < 2**63 else bad_at
        self._scans: dict[str, _Scan] = {}
        self._firing: dict[tuple[str, bool, int], list[tuple[int, Fraction, Condition]]] = {}

    def _over(self, t: int, window: int) -> tuple[int, int]:
        """(bad, all) requests, scaled, over the evaluations after t - window (the rules' sums of 5m rates, which
        tile the window). Both minutes are evaluation times: the bad requests up to each are looked up."""
        start = max(0, t - window)
        return self._bad_at[t // EVAL_MINUTES] - self._bad_at[start // EVAL_MINUTES], self._total * (t - start)

    def _guard(self, t: int, window: int) -> bool:
        """avg_over_time of the 5m request rates of the evaluations after t - window (they tile it too) at or above
        slo.min_request_rate: requests / 300 / evaluations >= min_rate."""
        start = max(0, t - window)
        evaluations = (t - start) // EVAL_MINUTES
        requests = self._total * (t - start)
        return evaluations > 0 and requests * self.min_rate.denominator >= \
            self.min_rate.numerator * 300 * evaluations * self.scale

    def _holds(self, t: int, long_: int, short_: int, num: int, den: int) -> bool:
        """Do both windows' ratios exceed num/den (the condition's factor x budget), with enough traffic?"""
        bad, requests = self._over(t, long_)
        if requests <= 0 or bad * den <= num * requests:
            return False
        bad, requests = self._over(t, short_)
        return requests > 0 and bad * den > num * requests and self._guard(t, long_)

    def firing(self, tier: Tier, first_only: bool = False, until: int | None = None) -> list[tuple[int, Fraction, Condition]]:
        """(minute, value, condition) of every evaluation up to `until` at which the tier's alert fires (or the first):
        `value` is the long window's burn rate. One scan per tier, resumed where the last call left it."""
        until = self.end if until is None else until
        key = (tier.name, first_only, until)
        if key in self._firing:  # a group's checks ask again and again
            return self._firing[key]
        scan = self._scans.setdefault(tier.name, _Scan())
        conditions = []
        for c in tier.conditions:
            threshold = self.o.factor(c) * self.budget
            conditions.append((_minutes(c.long), _minutes(c.short), threshold.numerator, threshold.denominator, c))
        hold = _minutes(self.o.tier_for(tier))
        while scan.next <= until and not (first_only and scan.found):
            t = scan.next
            scan.next += EVAL_MINUTES
            held = next((cond for cond in conditions if self._holds(t, *cond[:4])), None)
            if held is None:
                scan.active = None
                continue
            scan.active = t if scan.active is None else scan.active
            if t - scan.active >= hold:
                bad, requests = self._over(t, held[0])
                scan.found.append((t, Fraction(bad, requests) / self.budget, held[4]))
        found = [f for f in scan.found if f[0] <= until]
        self._firing[key] = found[:1] if first_only else found
        return self._firing[key]

    def budget_left(self, t: int) -> float:
        assert t % EVAL_MINUTES == 0, t  # the table holds evaluation times
        ratio = Fraction(self._bad_at[t // EVAL_MINUTES], self._total * t)  # every evaluation lies inside the period
        return float(1 - ratio / self.budget)


@dataclass
class _Group:
    name: str
    end: int
    series: list[dict[str, str]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    exprs: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> dict[str, Any]:
        group: dict[str, Any] = {"name": self.name, "interval": "1m", "input_series": self.series}
        if self.alerts:
            group["alert_rule_test"] = self.alerts
        if self.exprs:
            group["promql_expr_test"] = self.exprs
        return group


def _labels(o: Objective, namespace: str, **extra: str) -> str:
    labels = {"job": o.job, "namespace": namespace, "instance": "pod-a:8000", "method": "POST", **extra}
    return "{" + ",".join(f"{k}={promql_string(v)}" for k, v in labels.items()) + "}"


def _cut(phases: list[tuple[int, Decimal]], end: int) -> list[tuple[int, Decimal]]:
    """The phases made exactly `end` minutes long: cut, or the last one held."""
    out, left = [], end
    for minutes, value in phases:
        if left <= 0:
            break
        out.append((min(minutes, left), value))
        left -= minutes
    if left > 0:
        out.append((left, phases[-1][1]))
    return out


def _series(o: Objective, traffic: _Traffic, end: int, namespace: str | None = None) -> list[dict[str, str]]:
    """The input series of one SLO: good and bad requests of the service's endpoint, and noise that must not count."""
    ns, phases = namespace or o.namespace, _cut(traffic.phases, end)
    good = _counter([(m, traffic.rate * (1 - s)) for m, s in phases])
    bad = _counter([(m, traffic.rate * s) for m, s in phases])
    everything, nothing = _counter([(end, traffic.rate)]), _counter([(end, Decimal(0))])
    noise = _counter([(end, traffic.rate * NOISE)])
    excluded = o.settings.exclude_endpoints[0] if o.settings.exclude_endpoints else None
    endpoint = "/v1/score"
    if o.slo == "availability":
        out = [(f"http_requests_total{_labels(o, ns, endpoint=endpoint, status='200')}", good),
               (f"http_requests_total{_labels(o, ns, endpoint=endpoint, status='503')}", bad),
               (f"http_requests_total{_labels(o, ns, endpoint=endpoint, status='429')}",
                _counter([(end, traffic.rate * LIMITED)]))]
        if excluded:
            out.append((f"http_requests_total{_labels(o, ns, endpoint=excluded, status='503')}", noise))
    else:
        assert o.threshold is not None
        le, metric = go_float(o.threshold), "http_request_duration_seconds"
        out = [(f"{metric}_bucket{_labels(o, ns, endpoint=endpoint, le=le)}", good),
               (f"{metric}_bucket{_labels(o, ns, endpoint=endpoint, le='+Inf')}", everything),
               (f"{metric}_count{_labels(o, ns, endpoint=endpoint)}", everything)]
        if excluded:  # every probe slower than the threshold
            out += [(f"{metric}_bucket{_labels(o, ns, endpoint=excluded, le=le)}", nothing),
                    (f"{metric}_bucket{_labels(o, ns, endpoint=excluded, le='+Inf')}", noise),
                    (f"{metric}_count{_labels(o, ns, endpoint=excluded)}", noise)]
    return [{"series": selector, "values": values} for selector, values in out]


def _expected(o: Objective, tier: Tier, value: Fraction, left: float) -> dict[str, Any]:
    from .alert_tests import _humanize  # Prometheus' humanize, as the threshold alerts' tests emulate it

    annotations = {"summary": o.summary(tier), "description": o.description(tier, _humanize(float(value)), o.left_text(left))}
    if o.runbook_url:
        annotations["runbook_url"] = f"{o.runbook_url.rstrip('/')}#{o.alert_name}"
    return {"exp_labels": o.alert_labels(tier), "exp_annotations": annotations}


def _check(o: Objective, timeline: _Timeline, t: int, expect: dict[str, bool], end: int) -> dict[str, Any]:
    """Both tiers share the alert's name, so a check lists every tier firing at `t`; `expect` says which tiers
    the scenario is about must (True) or must not (False) be among them."""
    firing = []
    for tier in TIERS:
        hit = next((f for f in timeline.firing(tier, until=end) if f[0] == t), None)  # one scan per group
        if tier.name in expect and expect[tier.name] != (hit is not None):
            raise AssertionError(f"{o.alert_name} {tier.name} at {t}m: expected {'firing' if expect[tier.name] else 'silent'}")
        if hit is not None:
            firing.append(_expected(o, tier, hit[1], timeline.budget_left(t)))
    return {"eval_time": _at(t), "alertname": o.alert_name, "exp_alerts": firing}


def _at(minutes: int) -> str:
    return format_duration(minutes * 60)


def _burn_groups(objectives: list[Objective], tier: Tier, c: Condition, baseline: int, below: bool) -> list[_Group]:
    """A clean baseline, then a burn at 1.05x the condition's factor (fires at the time computed here, not one
    evaluation earlier) and, when `below`, in a second group at 0.95x (silent then)."""
    horizon = baseline + 2 * _minutes(c.long) + _minutes(max(o.tier_for(tier) for o in objectives)) + 10
    runs: dict[Decimal, list[tuple[Objective, _Traffic, _Timeline]]] = {}
    scales = (ABOVE, BELOW) if below else (ABOVE,)
    for scale in scales:
        runs[scale] = []
        for o in objectives:
            # The share of the endpoint's requests that fail, so that with the 429s the SLI is scale x factor x budget.
            share = scale * Decimal(o.factor(c).numerator) / Decimal(o.factor(c).denominator) * o.budget * (
                1 + (LIMITED if o.slo == "availability" else 0))
            traffic = _Traffic(TRAFFIC, [(baseline, Decimal(0)), (horizon - baseline, share)])
            runs[scale].append((o, traffic, _timeline(o, traffic, horizon)))
    end = max(tl.firing(tier, first_only=True)[0][0] for _, _, tl in runs[ABOVE])  # the file is no longer than it needs to be
    groups = []
    for scale in scales:
        label = "just above" if scale == ABOVE else "just below"
        start = f"after {_at(baseline)} clean" if baseline else "from the start"
        group = _Group(f"{tier.name} burn {label} {format_number(float(c.factor(objectives[0].period)))}x over "
                       f"{format_duration(c.long)} and {format_duration(c.short)}: {decimal_text(scale)}x {start}", end)
        for o, traffic, tl in runs[scale]:
            group.series += _series(o, traffic, end)
            fired = tl.firing(tier, until=end)
            if scale == BELOW:
                if fired:
                    raise AssertionError(f"{o.alert_name} {tier.name} fires at {fired[0][0]}m below its factor")
                group.alerts.append(_check(o, tl, end, {tier.name: False}, end))
                continue
            t, value, cause = fired[0]
            if cause != c:  # the baseline is meant to keep the tier's other condition out of the way
                raise AssertionError(f"{o.alert_name} {tier.name}: fired by {cause}, not {c}")
            group.alerts.append(_check(o, tl, t - EVAL_MINUTES, {tier.name: False}, end))
            group.alerts.append(_check(o, tl, t, {tier.name: True}, end))
        groups.append(group)
    return groups


def _silent_group(name: str, objectives: list[Objective], end: int, traffic: dict[str, _Traffic],
                  namespace: str | None = None, absent: bool = False) -> _Group:
    """Traffic that must never fire either tier (in `namespace`, beside the healthy service, when given)."""
    group = _Group(name, end)
    for o in objectives:
        group.series += _series(o, traffic[o.slo], end, namespace)
        if namespace is not None:
            group.series += _series(o, _Traffic(TRAFFIC, [(end, Decimal(0))]), end)
        else:
            timeline = _timeline(o, traffic[o.slo], end)
            if any(timeline.firing(tier, until=end) for tier in TIERS):
                raise AssertionError(f"{name}: {o.alert_name} would fire")
        for t in (65, end):  # past the fast tier's first window and `for`, and at the end
            group.alerts.append({"eval_time": _at(t), "alertname": o.alert_name, "exp_alerts": []})  # nothing at all
        if absent:  # no sample at all, never NaN: idle windows must not poison sums over them
            for record in ("slo:sli_error:ratio_rate5m", "slo:sli_error:ratio_rate1h",
                           f"slo:sli_error:ratio_rate{o.period_text}", "slo:period_error_budget_remaining:ratio"):
                group.exprs.append({"expr": o.series(record), "eval_time": _at(end), "exp_samples": []})
    return group


def _spike_group(objectives: list[Objective]) -> _Group:
    """3d clean, then 30 minutes at 60x the budget: the fast tier pages (30x over 1h), the slow tier stays silent
    (1.25x over 1d, 0.42x over 3d): full long windows dilute a spike. The page clears once the 5m window is clean."""
    fast, slow = TIERS
    baseline, burst = _minutes(max(c.long for c in slow.conditions)), 30
    end = baseline + burst + 60
    group = _Group(f"a 30m burst at 60x the budget after {_at(baseline)} clean: a page, no ticket", end)
    for o in objectives:
        share = 60 * o.budget * (1 + (LIMITED if o.slo == "availability" else 0))
        traffic = _Traffic(TRAFFIC, [(baseline, Decimal(0)), (burst, share), (end - baseline - burst, Decimal(0))])
        timeline = _timeline(o, traffic, end)
        group.series += _series(o, traffic, end)
        pages = timeline.firing(fast, until=end)
        if not pages or timeline.firing(slow, until=end):
            raise AssertionError(f"{o.alert_name}: a burst must page and open no ticket")
        t = pages[0][0]
        cleared = next(k for k in range(t, end + 1, EVAL_MINUTES) if k not in {p[0] for p in pages})
        for at, pages_then in ((t - EVAL_MINUTES, False), (t, True), (cleared, False)):
            group.alerts.append(_check(o, timeline, at, {"fast": pages_then, "slow": False}, end))
    return group


def build_slo_tests(objectives: list[Objective]) -> dict[str, Any]:
    """The whole test file as data (tests/slo.test.yaml); empty without an enabled SLO (no file then)."""
    if not objectives:
        return {}
    fast, slow = TIERS
    # The fast tier after 6h clean, so both its windows are full; the slow tier from the start (a young series: every
    # window holds the same ratio), its full windows in the burst group: 3d of baseline cost promtool seconds.
    groups = [g for c in fast.conditions for g in _burn_groups(objectives, fast, c, _minutes(fast.conditions[-1].long), True)]
    groups += [g for c in slow.conditions for g in _burn_groups(objectives, slow, c, 0, c == slow.conditions[-1])]
    groups.append(_spike_group(objectives))
    end = 90
    all_bad = {o.slo: _Traffic(TRAFFIC, [(end, Decimal(1))]) for o in objectives}
    groups.append(_silent_group("zero traffic: no alert, no ratio, no budget sample", objectives, end,
                                {o.slo: _Traffic(Decimal(0), [(end, Decimal(0))]) for o in objectives}, absent=True))
    low = Decimal(repr(objectives[0].settings.min_request_rate)) * 60 * Decimal("0.9")
    if low > 0:
        groups.append(_silent_group("every request failing below slo.min_request_rate", objectives, end,
                                    {o.slo: _Traffic(low, [(end, Decimal(1))]) for o in objectives}))
    groups.append(_silent_group("another namespace burning its whole budget", objectives, end, all_bad,
                                namespace=f"{objectives[0].namespace}-other"[:63]))
    return {"rule_files": list(RULE_FILES), "evaluation_interval": _at(EVAL_MINUTES),
            "tests": [g.document() for g in groups]}
