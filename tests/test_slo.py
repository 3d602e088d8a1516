"""Service level objectives (issue 19): the recording rules' values against an independent computation, the `le`
spelling, and the budget arithmetic.

The independent check builds counters for traffic that is uneven on purpose (a busy day with few errors, a quiet
stretch with many, an idle hour, a long calm, a busy burst), computes in plain Python the request-weighted error
ratio of every window (errors in the window over requests in the window), and asks promtool, which runs
Prometheus' own rule engine on the generated rules file, whether each recorded ratio agrees to a relative 1e-6.
The unweighted average of 5m ratios (what Sloth records for the period) is far off on the same series, so the
check can tell the two apart.
"""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from conftest import SHIPPED_ENVIRONMENTS
from tools import require

from infragen.load import Loader
from infragen.models.slo import WINDOWS, go_float, period_text
from infragen.render import render_environment

MINUTE = 60
# (minutes, requests per minute, failing per minute, slow per minute): integers, so every ratio is exact.
PHASES = [
    (1440, 1000, 2, 5),  # a busy day, few errors
    (240, 100, 10, 30),  # a quiet stretch with many
    (60, 0, 0, 0),  # idle: no requests at all
    (2880, 500, 1, 2),  # two calm days
    (120, 2000, 60, 100),  # a busy burst
]
EXCLUDED = 5000  # /health requests per minute, all failing and slow: the SLIs must leave them out
CHECKS = [1680, 1710, 1740, 1800, 4500, 4620, 4740]  # minutes: end of the quiet stretch, idle, after, 3d full, burst


def _cumulative(column: int) -> list[int]:
    out = [0]
    for minutes, *rates in PHASES:
        for _ in range(minutes):
            out.append(out[-1] + rates[column])
    return out


def _counter(column: int) -> str:
    """promtool notation: one segment per phase."""
    parts, value = [], 0
    for i, (minutes, *rates) in enumerate(PHASES):
        step = rates[column]
        parts.append(f"0+{step}x{minutes}" if i == 0 else f"{value + step}+{step}x{minutes - 1}")
        value += step * minutes
    return " ".join(parts)


def _expected(t: int, window: int, bad: list[int], total: list[int]) -> Fraction | None:
    start = max(0, t - window)
    requests = total[t] - total[start]
    return Fraction(bad[t] - bad[start], requests) if requests else None


def _series(namespace: str, le: str) -> list[tuple[str, str]]:
    base = f'job="fraud-api",namespace="{namespace}",instance="pod-a:8000",method="POST"'
    end = sum(p[0] for p in PHASES)
    good = _cumulative(0)
    ok = " ".join(str(good[i] - _cumulative(1)[i]) for i in range(len(good)))  # the 200s, written out
    fast = " ".join(str(good[i] - _cumulative(2)[i]) for i in range(len(good)))
    return [
        (f'http_requests_total{{{base},endpoint="/v1/score",status="200"}}', ok),
        (f'http_requests_total{{{base},endpoint="/v1/score",status="503"}}', _counter(1)),
        (f'http_requests_total{{{base},endpoint="/health",status="503"}}', f"0+{EXCLUDED}x{end}"),
        (f'http_request_duration_seconds_bucket{{{base},endpoint="/v1/score",le="{le}"}}', fast),
        (f'http_request_duration_seconds_bucket{{{base},endpoint="/v1/score",le="+Inf"}}', _counter(0)),
        (f'http_request_duration_seconds_count{{{base},endpoint="/v1/score"}}', _counter(0)),
        (f'http_request_duration_seconds_bucket{{{base},endpoint="/health",le="{le}"}}', f"0+0x{end}"),
        (f'http_request_duration_seconds_bucket{{{base},endpoint="/health",le="+Inf"}}', f"0+{EXCLUDED}x{end}"),
        (f'http_request_duration_seconds_count{{{base},endpoint="/health"}}', f"0+{EXCLUDED}x{end}"),
    ]


def _promql_checks(namespace: str, budgets: dict[str, Fraction], period: int, checks: list[int]) -> list[dict]:
    total = _cumulative(0)
    cases = []
    for slo, column in (("availability", 1), ("latency", 2)):
        labels = f'{{namespace="{namespace}",service="fraud-api",slo="{slo}"}}'
        selector = f'{{slo="{slo}",service="fraud-api",namespace="{namespace}"}}'
        bad = _cumulative(column)
        for t in checks:
            for window in (*WINDOWS, period):
                record = f"slo:sli_error:ratio_rate{period_text(window)}{selector}"
                expected = _expected(t, window // MINUTE, bad, total)
                cases.append(_agrees(record, expected, t, labels))
            ratio = _expected(t, period // MINUTE, bad, total)
            left = None if ratio is None else 1 - ratio / budgets[slo]
            cases.append(_agrees(f"slo:period_error_budget_remaining:ratio{selector}", left, t, labels))
    return cases


def _agrees(record: str, expected: Fraction | None, t: int, labels: str) -> dict:
    at = f"{t}m"
    if expected is None:  # no requests in the window: no sample at all, never NaN
        return {"expr": record, "eval_time": at, "exp_samples": []}
    value = float(expected)
    tolerance = abs(value) * 1e-6 if value else 0
    return {"expr": f"abs({record} - {value!r}) <= bool {tolerance!r}", "eval_time": at,
            "exp_samples": [{"labels": labels, "value": 1}]}


def _run_promtool(tmp_path: Path, rules: str, series: list[tuple[str, str]], checks: list[dict]) -> None:
    import yaml

    promtool = require("promtool")
    (tmp_path / "rules.yaml").write_text(rules, encoding="utf-8")
    test = {"rule_files": ["rules.yaml"], "evaluation_interval": "5m",
            "tests": [{"interval": "1m", "input_series": [{"series": s, "values": v} for s, v in series],
                       "promql_expr_test": checks}]}
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(test, sort_keys=False, width=10_000), encoding="utf-8")
    proc = subprocess.run([promtool, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout, (proc.stdout + proc.stderr)[-4000:]


@pytest.mark.tools
@pytest.mark.slow  # promtool evaluates the rules over 3d7h of series
def test_recorded_ratios_are_request_weighted_per_window(tmp_path: Path) -> None:
    env = Loader(SHIPPED_ENVIRONMENTS).load("production")
    rules = render_environment(env)[f"{env.name}/prometheus/slo-rules.yaml"]
    budgets = {o.slo: Fraction(o.budget) for o in env.monitoring.objectives}
    assert set(budgets) == {"availability", "latency"}
    checks = _promql_checks(env.namespace, budgets, env.spec.slo.period, CHECKS)
    _run_promtool(tmp_path, rules, _series(env.namespace, go_float(env.spec.slo.latency.threshold_seconds)), checks)


def test_the_average_of_5m_ratios_would_be_told_apart() -> None:
    """On the same series the unweighted mean of 5m ratios (Sloth's period SLI) is far from the weighted ratio."""
    total, bad = _cumulative(0), _cumulative(1)
    end = CHECKS[-1]
    ratios = [r for t in range(5, end + 1, 5) if (r := _expected(t, 5, bad, total)) is not None]
    weighted = _expected(end, end, bad, total)
    assert weighted is not None
    assert abs(sum(ratios) / len(ratios) - weighted) / weighted > Fraction(1, 10)


@pytest.mark.tools
@pytest.mark.slow  # a promtool run each
@pytest.mark.parametrize("written", ["1.0", "1"])
def test_integer_threshold_matches_both_le_spellings(tmp_path: Path, written: str, project: Path, write_env) -> None:
    """Python's client (and Prometheus 3, for every client) writes le="1.0"; a Go client scraped by Prometheus 2
    writes le="1". The rule's matcher must read both."""
    from conftest import MINIMAL

    write_env("production", MINIMAL + "slo: {latency: {threshold_seconds: 1.0}}\n")
    env = Loader(project / "environments").load("production")
    rules = render_environment(env)[f"{env.name}/prometheus/slo-rules.yaml"]
    assert 'le=~"1(\\\\.0)?"' in rules
    budgets = {o.slo: Fraction(o.budget) for o in env.monitoring.objectives}
    checks = [c for c in _promql_checks(env.namespace, budgets, env.spec.slo.period, [1680])
              if "latency" in c["expr"] and "ratio_rate1h" in c["expr"]]
    assert checks and checks[0]["exp_samples"]
    series = [(s, v) for s, v in _series(env.namespace, written) if "duration" in s]
    _run_promtool(tmp_path, rules, series, checks)


@pytest.mark.parametrize(("value", "text"), [
    (1.0, "1.0"), (0.5, "0.5"), (0.005, "0.005"), (10.0, "10.0"), (2.5, "2.5"), (1e-05, "1e-05"),
    (100000.0, "100000.0"), (1e6, "1e+06"), (1234567.0, "1.234567e+06"),
])
def test_le_text_is_what_the_python_client_and_prometheus_3_write(value: float, text: str) -> None:
    # prometheus_client.utils.floatToGoString and Prometheus 3's labels.FormatOpenMetricsFloat agree on these.
    assert go_float(value) == text


def test_objective_change_is_a_budget_change() -> None:
    env = Loader(SHIPPED_ENVIRONMENTS).load("production")
    availability = next(o for o in env.monitoring.objectives if o.slo == "availability")
    assert availability.budget_seconds(env.spec.slo.period) == 2592  # 43m12s of 30d


def test_review_shows_an_objective_change_as_a_budget_change(project: Path, write_env) -> None:
    from conftest import MINIMAL

    from infragen.review import margins

    write_env("before", MINIMAL)
    write_env("after", MINIMAL + "slo: {availability: {objective: 99.95}}\n")
    loader = Loader(project / "environments")
    moved = {m.name: m for m in margins(loader.load("before"), loader.load("after"))}
    budget = moved["availability objective: its error budget (time at 100% errors)"]
    assert (budget.before, budget.after) == ("99.9: budget 43m12s per 30d", "99.95: budget 21m36s per 30d")
    assert not any(name.startswith("latency") for name in moved)


def test_explain_gives_budgets_and_detection_times(project: Path, write_env) -> None:
    from conftest import MINIMAL

    from infragen.explain import explain

    write_env("production", MINIMAL)
    rows = {s.path: s.value for s in explain(Loader(project / "environments").load("production"), "slo")}
    assert rows["slo.availability.budget"].startswith("0.1% of requests: 43m12s at 100% errors, 2592 failed requests")
    assert rows["slo.availability.budget_1h"].startswith("3.6s at 100% errors, 3.6 failed requests")
    # 14.4 x 0.1% of 1h is 51.84s, then `for` 2m; (2m51.84s) / 43m12s of budget is 6.6%.
    assert rows["slo.availability.fast.detection"].startswith("2m52s at 100% errors (52s + for 2m): 6.63% of the 30d")
    assert rows["slo.latency.slow.detection"].startswith("1h43m12s at 100% errors (43m12s + for 1h)")


@pytest.mark.tools
@pytest.mark.slow  # a promtool run over the whole generated file
def test_generated_tests_fail_against_rules_of_another_objective(tmp_path: Path, project: Path, write_env) -> None:
    """The generated SLO tests can fail: tests made for 99.5% run against the rules of 99.9%."""
    from conftest import MINIMAL

    write_env("production", MINIMAL)
    write_env("other", MINIMAL + "slo: {availability: {objective: 99.5}}\n")
    loader = Loader(project / "environments")
    rules = render_environment(loader.load("production"))["production/prometheus/slo-rules.yaml"]
    tests = render_environment(loader.load("other"))["other/tests/slo.test.yaml"]
    (tmp_path / "prometheus").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "prometheus" / "slo-rules.yaml").write_text(rules, encoding="utf-8")
    # Same service and namespace on both sides: only the objective differs.
    (tmp_path / "tests" / "slo.test.yaml").write_text(tests.replace("(other)", "(production)").replace(
        "environment: other", "environment: production"), encoding="utf-8")
    proc = subprocess.run([require("promtool"), "test", "rules", "slo.test.yaml"], cwd=tmp_path / "tests",
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0 and "AvailabilityBudgetBurn" in proc.stdout + proc.stderr


def test_dashboard_has_a_row_per_slo_reading_the_recording_rules() -> None:
    import json

    env = Loader(SHIPPED_ENVIRONMENTS).load("production")
    dashboard = json.loads(render_environment(env)["production/grafana/dashboard.json"])
    rows = [p for p in dashboard["panels"] if p["type"] == "row"]
    assert [r["title"] for r in rows] == ["SLO: availability 99.9% (requests not answered 5xx)",
                                          "SLO: latency 99% under 0.5s"]
    panels = {p["title"]: p for p in dashboard["panels"]}
    sel = f'{{slo="availability",service="fraud-api",namespace="{env.namespace}"}}'
    budget = panels["availability: error budget left (30d)"]
    assert budget["targets"][0]["expr"] == f"slo:period_error_budget_remaining:ratio{sel}"
    burn = panels["availability: burn rate per window"]
    assert [t["legendFormat"] for t in burn["targets"]] == ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]
    assert burn["targets"][2]["expr"] == f"slo:sli_error:ratio_rate1h{sel} / 0.001"
    lines = [s["value"] for s in burn["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]]
    assert lines == [1, 3, 6, 14.4]  # the alert factors
    sli = panels["latency: SLI against the objective"]
    assert sli["fieldConfig"]["defaults"]["thresholds"]["steps"][-1]["value"] == 0.99
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    # no two panels overlap
    cells = [(x, y) for p in dashboard["panels"] for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
             for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])]
    assert len(cells) == len(set(cells))
