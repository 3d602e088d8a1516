"""Service level objectives: the SLIs' PromQL, the recording rules per window, the burn-rate alerts, and the
budget arithmetic `explain` and `review` print.

An SLO's error budget is `1 - objective` of the requests in the period. Its burn rate over a window is the
window's error ratio divided by the budget: 1 spends the budget exactly over the period. The alerts are the SRE
workbook's multiwindow, multi-burn-rate pairs (as Sloth generates them for 30d): a long window that says enough
budget went, and a short one that says it is still going, so the alert clears soon after the burn stops. The
factor of a pair is the share of the budget it lets go in its long window: `share x period / long window`
(2% in 1h of 30d is 14.4).

Every ratio is request-weighted: numerator and denominator are summed separately, then divided; never an
average of ratios. A denominator is filtered with `> 0`, so an idle window gives no sample instead of NaN (a NaN
sample would poison every sum over it). The period's ratio is built on the 5m rates: summing them over the period
weights each 5 minutes by its requests, and reads one series per SLO instead of every raw series for 30 days. The
other windows are built the same way, on the same two 5m rules (one query of the raw series per SLO and
evaluation, however many windows).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from .alerts import braces, promql_string, service_matchers
from .settings import Slo
from .types import format_duration, format_number, format_period

RATE_WINDOW = 300  # the 5m rule every longer construction builds on
WINDOWS = (300, 1800, 3600, 7200, 21600, 86400, 259200)  # 5m 30m 1h 2h 6h 1d 3d
SLOS = ("availability", "latency")
ALERT_NAMES = {"availability": "AvailabilityBudgetBurn", "latency": "LatencyBudgetBurn"}


@dataclass(frozen=True)
class Condition:
    """One pair of windows: fires when both burn faster than `factor` (the long window has spent `share` of the
    period's budget at that rate)."""

    long: int
    short: int
    share: Fraction

    def factor(self, period: int) -> Fraction:
        return self.share * period / self.long


@dataclass(frozen=True)
class Tier:
    name: str  # the alert's `burn` label
    severity: str
    conditions: tuple[Condition, ...]


# The SRE workbook's parameters for a 30d period (Sloth's google-30d windows): 2% of the budget in 1h, 5% in 6h
# page; 10% in 1d, 10% in 3d open a ticket. The short window is a twelfth of the long one.
TIERS = (
    Tier("fast", "critical", (Condition(3600, 300, Fraction(2, 100)), Condition(21600, 1800, Fraction(5, 100)))),
    Tier("slow", "warning", (Condition(86400, 7200, Fraction(10, 100)), Condition(259200, 21600, Fraction(10, 100)))),
)


def decimal_text(value: Fraction | Decimal) -> str:
    """A ratio as short decimal text: exact when it terminates within 12 significant digits."""
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    text = format(Decimal(format(value, ".12g")).normalize(), "f")
    return text if text != "-0" else "0"


def go_float(value: float) -> str:
    """How the Python Prometheus client writes a bucket's `le` (prometheus_client.utils.floatToGoString), which is
    also what Prometheus 3 normalises every `le` to at ingestion (labels.FormatOpenMetricsFloat): Go's shortest
    'g' form, integers with ".0" (1 -> "1.0", 0.5 -> "0.5", 1e-05 -> "1e-05")."""
    text = repr(float(value))
    dot = text.find(".")
    if "e" not in text and dot > 6:  # Go switches to exponents from 1e+06 on
        digits = text[0] + text[1:dot] + text[dot + 1:]
        mantissa = (digits[0] + "." + digits[1:]).rstrip("0").rstrip(".")
        return f"{mantissa}e+{dot - 1:02d}"
    return text


def le_matcher(threshold: float) -> str:
    """The `le` matcher of the bucket at `threshold`. Python's client writes integers as "1.0" and Prometheus 3
    stores every `le` so; a Go or Java client scraped by Prometheus 2 writes "1". An integer threshold matches
    both spellings, any other has only one."""
    text = go_float(threshold)
    if float(threshold).is_integer() and text.endswith(".0"):
        return f"le=~{promql_string(text[:-2] + '(' + chr(92) + '.0)?')}"
    return f"le={promql_string(text)}"


_RE2_SPECIAL = set("\\.+*?()|[]{}^$")


def re2_literal(text: str) -> str:
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in text)


@dataclass(frozen=True)
class RecordingRule:
    record: str
    expr: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class BurnAlert:
    name: str  # AvailabilityBudgetBurn | LatencyBudgetBurn: both tiers share it
    burn: str  # the tier: "fast" | "slow"
    expr: str
    for_: str
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Objective:
    """One SLO of one environment, with everything its rules, alerts, dashboard and explain need."""

    slo: str  # "availability" | "latency"
    objective: float  # percent
    threshold: float | None  # latency only: seconds
    job: str
    namespace: str
    environment: str
    settings: Slo
    extra_labels: tuple[tuple[str, str], ...] = ()
    runbook_url: str | None = None  # the base: each alert links to <runbook_url>#<AlertName>
    pod_matchers: tuple[str, ...] = ()  # narrows the SLIs to some pods: the rollout's budget gate (the new pods')

    # --- numbers ---------------------------------------------------------------------------------
    @property
    def budget(self) -> Decimal:
        """The share of requests allowed to fail."""
        return 1 - Decimal(repr(self.objective)) / 100

    @property
    def budget_text(self) -> str:
        return decimal_text(self.budget)

    @property
    def period(self) -> int:
        return self.settings.period

    @property
    def period_text(self) -> str:
        return period_text(self.period)

    def factor(self, condition: Condition) -> Fraction:
        return condition.factor(self.period)

    def factor_text(self, condition: Condition) -> str:
        return decimal_text(self.factor(condition))

    def budget_seconds(self, window: int) -> Fraction:
        """The time at 100% errors the budget covers in `window`."""
        return Fraction(self.budget) * window

    def detection_seconds(self, condition: Condition) -> Fraction:
        """From the start of a total outage (100% errors, clean windows before) until the condition holds: the long
        window's ratio reaches factor x budget after that share of it (the short one sooner)."""
        return self.factor(condition) * Fraction(self.budget) * condition.long

    def tier_for(self, tier: Tier) -> int:
        return (self.settings.fast if tier.name == "fast" else self.settings.slow).for_

    def detection_text(self, tier: Tier) -> str:
        """How long a total outage takes to fire the tier, `for` included, and the budget it has spent by then."""
        first = min(self.detection_seconds(c) for c in tier.conditions)
        total = first + self.tier_for(tier)
        spent = total / (Fraction(self.budget) * self.period)
        return (f"{duration_text(total)} at 100% errors ({duration_text(first)} + for "
                f"{format_duration(self.tier_for(tier))}): {percent(spent)} of the {self.period_text} budget")

    def fewest_errors(self, condition: Condition) -> Fraction:
        """The fewest failed requests that fire the condition at slo.min_request_rate."""
        return self.factor(condition) * Fraction(self.budget) * Fraction(repr(self.settings.min_request_rate)) * \
            condition.long

    @property
    def budget_summary(self) -> str:
        """The budget per period, in time at 100% errors: what an objective change changes."""
        return f"{format_number(self.objective)}: budget {duration_text(self.budget_seconds(self.period))} per {self.period_text}"

    def derivations(self) -> list[tuple[str, str, str]]:
        """(setting, value, formula) of the budget per period and window, and of each tier's detection, for explain."""
        key, rate = f"slo.{self.slo}", Fraction(repr(self.settings.min_request_rate))
        objective = f"{key}.objective {format_number(self.objective)}"
        at_rate = f"at slo.min_request_rate {format_number(self.settings.min_request_rate)}/s"
        out = [(f"{key}.budget", f"{percent(Fraction(self.budget))} of requests: "
                f"{duration_text(self.budget_seconds(self.period))} at 100% errors, "
                f"{_count(Fraction(self.budget) * rate * self.period)} failed requests {at_rate}, per {self.period_text}",
                f"100% - {objective}%, over slo.period {self.period_text}")]
        for window in WINDOWS:
            name = period_text(window)
            out.append((f"{key}.budget_{name}", f"{duration_text(self.budget_seconds(window))} at 100% errors, "
                        f"{_count(Fraction(self.budget) * rate * window)} failed requests {at_rate}",
                        f"the budget {percent(Fraction(self.budget))} of {name}: a burn rate of 1 spends this per {name}"))
        for tier in TIERS:
            steps = ", ".join(f"{self.factor_text(c)} x {percent(Fraction(self.budget))} x {period_text(c.long)} = "
                              f"{duration_text(self.detection_seconds(c))}" for c in tier.conditions)
            out.append((f"{key}.{tier.name}.detection", self.detection_text(tier),
                        f"{tier.severity}: the first of {steps} (the long window's ratio reaching factor x budget), "
                        f"then slo.{tier.name}.for"))
            fewest = " or ".join(f"{_count(self.fewest_errors(c))} in {period_text(c.long)}" for c in tier.conditions)
            out.append((f"{key}.{tier.name}.fewest_failures", f"{fewest} {at_rate}",
                        "factor x budget x long window x slo.min_request_rate: below that rate the alert is silent"))
        return out

    # --- PromQL ----------------------------------------------------------------------------------
    @property
    def matchers(self) -> tuple[str, ...]:
        excluded = self.settings.exclude_endpoints
        extra = (f"endpoint!~{promql_string('|'.join(re2_literal(e) for e in excluded))}",) if excluded else ()
        return service_matchers(self.job, self.namespace) + self.pod_matchers + extra

    def requests(self, window: str) -> str:
        """Requests per second the SLI counts, over `window`, summed over every series."""
        metric = "http_requests_total" if self.slo == "availability" else "http_request_duration_seconds_count"
        return f"sum(rate({metric}{braces(self.matchers)}[{window}]))"

    def errors(self, window: str) -> str:
        """Requests per second the SLI counts as bad. A service that never answered 5xx has no 5xx series: its error
        rate is 0 while it has requests, not empty."""
        if self.slo == "availability":
            bad = braces(self.matchers, "status=~" + promql_string("5.."))
            return f"(sum(rate(http_requests_total{bad}[{window}])) or 0 * {self.requests(window)})"
        assert self.threshold is not None
        good = braces(self.matchers, le_matcher(self.threshold))
        return f"({self.requests(window)} - sum(rate(http_request_duration_seconds_bucket{good}[{window}])))"

    @property
    def labels(self) -> dict[str, str]:
        """Labels of every recorded series of this SLO (the sums drop the scraped ones)."""
        return {"slo": self.slo, "service": self.job, "namespace": self.namespace}

    def series(self, record: str, window: str | None = None) -> str:
        text = record + "{" + ",".join(f"{k}={promql_string(v)}" for k, v in self.labels.items()) + "}"
        return f"{text}[{window}]" if window else text

    def ratio(self, window: int) -> str:
        return self.series(f"slo:sli_error:ratio_rate{period_text(window)}")

    @property
    def budget_remaining(self) -> str:
        return self.series("slo:period_error_budget_remaining:ratio")

    def burn(self, window: int) -> str:
        """The burn rate over `window`: what the dashboard draws and the alerts compare."""
        return f"{self.ratio(window)} / {self.budget_text}"

    def over(self, record: str, window: int) -> str:
        """`record` (a 5m rate) summed over the evaluations of the last `window`. The range ends a second short:
        Prometheus 2 includes a sample exactly at its start, Prometheus 3 does not (left-open ranges); without it
        both take the same samples, whose 5m spans tile the window when rules run every 5m."""
        return f"sum_over_time({self.series(record, format_duration(window - 1))})"

    def burn_rate(self, window: str) -> str:
        """The burn rate over `window` straight from the scraped series, built like the 5m rule: the rollout's budget
        gate, on the new pods' series (`pod_matchers`) and over the gate window. No requests give no sample."""
        return f"{self.errors(window)} / ({self.requests(window)} > 0) / {self.budget_text}"

    @property
    def lowest_page_factor(self) -> Fraction:
        """The lowest burn rate the fast (paging) tier fires on: sustained long enough, a faster burn pages."""
        return min(self.factor(c) for tier in TIERS if tier.severity == "critical" for c in tier.conditions)

    def recording_rules(self) -> list[RecordingRule]:
        rate5m = format_duration(RATE_WINDOW)
        rules = [("slo:sli_requests:rate5m", self.requests(rate5m)), ("slo:sli_errors:rate5m", self.errors(rate5m))]
        for window in (*WINDOWS, self.period):
            if window == RATE_WINDOW:
                expr = f"{self.series('slo:sli_errors:rate5m')} / ({self.series('slo:sli_requests:rate5m')} > 0)"
            else:  # request-weighted: numerator and denominator summed separately, each 5m weighing its requests
                expr = (f"{self.over('slo:sli_errors:rate5m', window)} / "
                        f"({self.over('slo:sli_requests:rate5m', window)} > 0)")
            rules.append((f"slo:sli_error:ratio_rate{period_text(window)}", expr))
        rules.append(("slo:period_error_budget_remaining:ratio",
                      f"1 - {self.ratio(self.period)} / {self.budget_text}"))
        return [RecordingRule(record, expr, tuple(self.labels.items())) for record, expr in rules]

    def condition_expr(self, condition: Condition) -> str:
        factor = self.factor_text(condition)
        guard = f"avg_over_time({self.series('slo:sli_requests:rate5m', format_duration(condition.long - 1))})"
        return (f"{self.burn(condition.long)} > {factor} and {self.burn(condition.short)} > {factor} "
                f"and {guard} >= {format_number(self.settings.min_request_rate)}")

    def alert_expr(self, tier: Tier) -> str:
        return " or ".join(f"({self.condition_expr(c)})" for c in tier.conditions)

    # --- alert text ------------------------------------------------------------------------------
    @property
    def alert_name(self) -> str:
        return ALERT_NAMES[self.slo]

    @property
    def bad(self) -> str:
        """What the SLI counts as failed, in words."""
        if self.slo == "availability":
            return "answered 5xx"
        assert self.threshold is not None
        return f"slower than {format_number(self.threshold)}s"

    @property
    def what(self) -> str:
        if self.slo == "availability":
            return f"availability {format_number(self.objective)}% (requests not answered 5xx)"
        assert self.threshold is not None
        return f"latency {format_number(self.objective)}% under {format_number(self.threshold)}s"

    def tier_rule(self, tier: Tier) -> str:
        pairs = " or ".join(f"{self.factor_text(c)}x over {period_text(c.long)} and {period_text(c.short)}"
                            for c in tier.conditions)
        return f"{tier.name} burn: {pairs}"

    def summary(self, tier: Tier) -> str:
        return f"{self.job} ({self.environment}): {self.slo} error budget burning {tier.name}"

    def description(self, tier: Tier, burn: str, left: str) -> str:
        """The description with `burn` (the long window's burn rate) and `left` (the budget remaining) filled in:
        Prometheus template actions in the rule, their expected text in the generated tests."""
        return (f"The {self.what} objective of {self.job} in namespace {self.namespace} is burning its error budget "
                f"{burn}x as fast as the {self.period_text} period allows ({self.tier_rule(tier)}); {left}.")

    @property
    def left_template(self) -> str:
        query = f"`{self.budget_remaining}`"
        return (f"{{{{ with query {query} }}}}{{{{ . | first | value | humanizePercentage }}}} of the {self.period_text} "
                "budget is left{{ else }}the budget left is unknown{{ end }}")

    def left_text(self, remaining: float) -> str:
        return f"{'%.4g%%' % (remaining * 100)} of the {self.period_text} budget is left"

    def alert_labels(self, tier: Tier) -> dict[str, str]:
        return {"severity": tier.severity, "burn": tier.name, "slo": self.slo, "service": self.job,
                "namespace": self.namespace, "environment": self.environment, **dict(self.extra_labels)}

    def alert_rules(self) -> list[BurnAlert]:
        rules = []
        for tier in TIERS:
            annotations = [("summary", self.summary(tier)),
                           ("description", self.description(tier, "{{ $value | humanize }}", self.left_template))]
            if self.runbook_url:
                annotations.append(("runbook_url", f"{self.runbook_url.rstrip('/')}#{self.alert_name}"))
            rules.append(BurnAlert(self.alert_name, tier.name, self.alert_expr(tier), format_duration(self.tier_for(tier)),
                                   tuple(self.alert_labels(tier).items()), tuple(annotations)))
        return rules


period_text = format_period  # a window or period as SLO tools name it: 30d, not 4w2d


def duration_text(seconds: Fraction | int) -> str:
    """A duration in the canonical spelling (43m12s), rounded to the second from 10s on, else to 0.1s."""
    if seconds < 10 and seconds != int(seconds):
        return f"{float(seconds):.1f}s"
    return format_duration(int(round(seconds)))


def _count(requests: Fraction) -> str:
    return format_number(round(float(requests), 1))


def percent(ratio: Fraction) -> str:
    return f"{float(ratio) * 100:.3g}%"


def build_objectives(settings: Slo, *, job: str, namespace: str, environment: str, threshold_labels: Sequence[
        tuple[str, str]] = (), runbook_url: str | None = None) -> list[Objective]:
    """The enabled SLOs of an environment (none when `slo.enabled` is off)."""
    out = []
    for name, objective in settings.objectives:
        threshold = settings.latency.threshold_seconds if name == "latency" else None
        out.append(Objective(slo=name, objective=objective.objective, threshold=threshold, job=job, namespace=namespace,
                             environment=environment, settings=settings, extra_labels=tuple(threshold_labels),
                             runbook_url=runbook_url))
    return out
