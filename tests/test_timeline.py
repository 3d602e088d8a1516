"""The generated rollouts played over time: a model of Argo Rollouts' analysis schedule (tests/timeline.py, written
from the controller's source) runs the generated Rollout and AnalysisTemplate against series that start when the
new pods start, and promtool evaluates the generated queries on them.

For the shipped staging (canary) and production (blue-green) and the rollout fixtures that run analysis:
- a healthy new version with traffic completes with no person beyond the promotions its settings ask for;
- 10% 5xx from the start aborts before the next weight (blue-green: before the post-promotion gates pass);
- a version that degrades at the last weight (blue-green: halfway through the post-promotion gates) aborts there;
- zero traffic pauses for a person, and never passes nor aborts;
- with a budget gate (rollout.gates.max_burn_rate), a version burning its availability budget faster than the gate
  allows aborts though its error rate passes the error-rate gate, and one just under it completes.
And the output before gate timing was derived (tests/fixtures/timeline/pre-fix-*) stalls at its first measurement
while the new version is healthy: kept as the regression case; with a delay but `count: 5`, the canary's later
weights went ungated.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest
import tools
import yaml
from conftest import FIXTURES, SHIPPED_ENVIRONMENTS
from timeline import Artifacts, Outcome, Scenario, play

from infragen.load import Loader
from infragen.models.environment import Environment
from infragen.render import render_environment

SOURCES = {"shipped": SHIPPED_ENVIRONMENTS, "variant": FIXTURES / "rollout-environments"}
PRE_FIX = FIXTURES / "timeline"
RPS = 20.0
HEALTHY = Scenario("healthy", RPS)
FAILING = Scenario("10% 5xx from the start", RPS, error_ratio=0.1)
ZERO = Scenario("zero traffic", 0.0)


@cache
def environment(env_id: str) -> Environment:
    label, name = env_id.split(":")
    return Loader(SOURCES[label]).load(name)


def analysed() -> list[str]:
    ids = [f"{label}:{name}" for label, root in SOURCES.items() for name in Loader(root).names()]
    return [i for i in ids if environment(i).rollout.analysed]


def artifacts(env: Environment, rollout: str, templates: str) -> Artifacts:
    return Artifacts.from_text(rollout, templates, env.service_name, env.namespace, env.spec.autoscaling.min_replicas,
                               env.spec.alerts.scrape_interval)


@cache
def generated(env_id: str) -> Artifacts:
    env = environment(env_id)
    files = render_environment(env)
    return artifacts(env, files[f"{env.name}/kubernetes/rollout.yaml"],
                     files[f"{env.name}/kubernetes/analysis-template.yaml"])


def run(env_id: str, scenario: Scenario, tmp_path: Path, played: Artifacts | None = None) -> Outcome:
    return play(played or generated(env_id), scenario, tools.require("promtool"), tmp_path)


def degrading(env_id: str) -> Scenario:
    where = "last-weight" if environment(env_id).rollout.strategy == "canary" else "half-judgement"
    return Scenario(f"degrades at {where}", RPS, error_ratio=0.2, degrade=where)


def asked_of_a_person(env: Environment) -> tuple[str, ...]:
    """The promotions the settings ask a person for: blue-green without auto promotion, canary pauses without
    a duration."""
    if env.rollout.strategy == "blue-green":
        return () if env.spec.rollout.blue_green.auto_promote else ("promote (the switch)",)
    if env.spec.rollout.canary.pause is not None:
        return ()
    weights = env.spec.rollout.canary.steps
    return tuple(f"promote at step {2 * i + 1} ({w}%)" for i, w in enumerate(weights))


def test_the_environments_cover_both_strategies_with_and_without_a_person() -> None:
    envs = [environment(i) for i in analysed()]
    assert {e.rollout.strategy for e in envs} == {"canary", "blue-green"}
    assert {bool(asked_of_a_person(e)) for e in envs if e.rollout.strategy == "blue-green"} == {True, False}
    assert {bool(asked_of_a_person(e)) for e in envs if e.rollout.strategy == "canary"} == {True, False}


@pytest.mark.tools
@pytest.mark.slow
@pytest.mark.parametrize("env_id", analysed())
def test_a_healthy_version_with_traffic_completes_on_its_own(env_id: str, tmp_path: Path) -> None:
    outcome = run(env_id, HEALTHY, tmp_path)
    assert outcome.result == "completed", outcome
    assert outcome.persons == asked_of_a_person(environment(env_id)), outcome
    # Every gate measured, and every measurement passed: completing was judged, not skipped.
    for run_ in outcome.runs:
        assert all(m.measured and all(p == "Successful" for _, p in m.measured) for m in run_.metrics), outcome


@pytest.mark.tools
@pytest.mark.slow
@pytest.mark.parametrize("env_id", analysed())
def test_ten_percent_5xx_from_the_start_aborts_before_the_next_weight(env_id: str, tmp_path: Path) -> None:
    env = environment(env_id)
    outcome = run(env_id, FAILING, tmp_path)
    assert outcome.result == "aborted", outcome
    if env.rollout.strategy == "canary":
        assert outcome.weight == env.spec.rollout.canary.steps[0], outcome
    else:  # after the switch, before the post-promotion gates passed: traffic goes back to the old stack
        [post] = [r for r in outcome.runs if r.kind == "post-promotion"]
        assert post.phase == "Failed" and post.ended is not None
        assert post.ended - post.start <= env.rollout.gate_timing.abort_after, outcome


@pytest.mark.tools
@pytest.mark.slow
@pytest.mark.parametrize("env_id", analysed())
def test_a_version_that_degrades_later_aborts_there(env_id: str, tmp_path: Path) -> None:
    env = environment(env_id)
    outcome = run(env_id, degrading(env_id), tmp_path)
    assert outcome.result == "aborted", outcome
    if env.rollout.strategy == "canary":
        assert outcome.weight == env.spec.rollout.canary.steps[-1], outcome
    measured = [p for r in outcome.runs for m in r.metrics for _, p in m.measured]
    assert "Successful" in measured and "Failed" in measured, outcome  # passed while healthy, failed once degraded


@pytest.mark.tools
@pytest.mark.slow
@pytest.mark.parametrize("env_id", analysed())
def test_zero_traffic_pauses_and_never_passes_nor_aborts(env_id: str, tmp_path: Path) -> None:
    outcome = run(env_id, ZERO, tmp_path)
    assert outcome.result == "paused", outcome
    gates = [r for r in outcome.runs if r.kind != "pre-promotion"]
    assert [p for r in gates for m in r.metrics for _, p in m.measured if p != "Inconclusive"] == [], outcome


def budget_gated() -> list[str]:
    return [i for i in analysed() if environment(i).rollout.burn_gates]


def without_burn_gates(played: Artifacts) -> Artifacts:
    templates = yaml.safe_load(yaml.safe_dump(played.templates))
    for template in templates.values():
        template["spec"]["metrics"] = [m for m in template["spec"]["metrics"] if not m["name"].endswith("-burn-rate")]
    return Artifacts(played.rollout, templates, played.job, played.namespace, played.replicas, played.scrape)


def test_the_budget_gate_is_played_for_both_strategies() -> None:
    assert {environment(i).rollout.strategy for i in budget_gated()} == {"canary", "blue-green"}


@pytest.mark.tools
@pytest.mark.slow
@pytest.mark.parametrize("env_id", budget_gated())
def test_the_budget_gate_aborts_a_version_the_error_rate_gate_passes(env_id: str, tmp_path: Path) -> None:
    """5xx at 1.5x what rollout.gates.max_burn_rate allows, far under rollout.gates.max_error_rate: only the
    availability burn gate fails it; without the burn gates the same version completes. At 0.9x it completes."""
    env = environment(env_id)
    [availability] = [o for o in env.rollout.burn_gates if o.slo == "availability"]
    allowed = env.spec.rollout.gates.max_burn_rate * float(availability.budget)  # the error ratio the gate passes
    assert 1.5 * allowed < env.spec.rollout.gates.max_error_rate
    burning = Scenario("burns 1.5x the gate's rate", RPS, error_ratio=1.5 * allowed)
    outcome = run(env_id, burning, tmp_path)
    assert outcome.result == "aborted", outcome
    failed = {m.spec["name"] for r in outcome.runs for m in r.metrics if any(p == "Failed" for _, p in m.measured)}
    assert failed == {"availability-burn-rate"}, outcome
    assert run(env_id, burning, tmp_path, without_burn_gates(generated(env_id))).result == "completed"
    under = run(env_id, Scenario("burns 0.9x the gate's rate", RPS, error_ratio=0.9 * allowed), tmp_path)
    assert under.result == "completed", under


def pre_fix(env_id: str) -> Artifacts:
    env = environment(env_id)
    directory = PRE_FIX / f"pre-fix-{env.name}"
    return artifacts(env, (directory / "rollout.yaml").read_text(encoding="utf-8"),
                     (directory / "analysis-template.yaml").read_text(encoding="utf-8"))


@pytest.mark.tools
@pytest.mark.slow
@pytest.mark.parametrize("env_id", ["shipped:staging", "shipped:production"])
def test_the_output_before_derived_timing_stalls_at_its_first_measurement(env_id: str, tmp_path: Path) -> None:
    outcome = run(env_id, HEALTHY, tmp_path, pre_fix(env_id))
    assert outcome.result == "paused", outcome
    [gates] = [r for r in outcome.runs if r.kind != "pre-promotion"]
    assert outcome.at == gates.start  # measured the moment the run started: nothing scraped yet
    assert {p for m in gates.metrics for _, p in m.measured} == {"Inconclusive"}, outcome
    # The same version under today's timing completes.
    assert run(env_id, HEALTHY, tmp_path).result == "completed"


@pytest.mark.tools
@pytest.mark.slow
def test_a_finite_background_count_left_the_later_weights_ungated(tmp_path: Path) -> None:
    """The pre-fix canary's `count: 5`, even with a delay: the run succeeded early and was never started again,
    so a version degrading at the last weight completed."""
    played = pre_fix("shipped:staging")
    templates = yaml.safe_load(yaml.safe_dump(played.templates))
    for metric in templates["fraud-api-gates"]["spec"]["metrics"]:
        metric["initialDelay"] = "2m35s"
    delayed = Artifacts(played.rollout, templates, played.job, played.namespace, played.replicas, played.scrape)
    outcome = run("shipped:staging", degrading("shipped:staging"), tmp_path, delayed)
    assert outcome.result == "completed", outcome
    assert run("shipped:staging", degrading("shipped:staging"), tmp_path).result == "aborted"


@pytest.mark.parametrize("name, rows", [
    ("staging", {"rollout.gates.initial_delay": ("2m35s", "target discovery 5s + alerts.scrape_interval 30s + "
                                                  "rollout.gates.window 2m"),
                 "rollout.gates.abort_after": ("3m35s", "rollout.gates.initial_delay 2m35s + "
                                                "rollout.gates.failure_limit 1 x rollout.gates.interval 1m"),
                 "rollout.gates.count": ("null", "a canary's background gates measure until the rollout completes")}),
    ("production", {"rollout.gates.initial_delay": ("2m35s", "target discovery 5s + alerts.scrape_interval 30s"),
                    "rollout.gates.count": ("9", "the fewest post-promotion measurements that judge "
                                                 "rollout.gates.full_traffic 10m"),
                    "rollout.gates.judged": ("10m35s", "rollout.gates.initial_delay 2m35s + (rollout.gates.count 9 - 1)"
                                                       " x rollout.gates.interval 1m after the switch")}),
])
def test_explain_rollout_shows_the_gate_timing_with_its_formula_and_the_artifact_carries_it(
        shipped_project: Path, runner, name: str, rows: dict[str, tuple[str, str]]) -> None:
    from infragen.cli import cli

    result = runner.invoke(cli, ["explain", name, "rollout"])
    assert result.exit_code == 0, result.output
    for setting, (value, formula) in rows.items():
        [line] = [line for line in result.output.splitlines() if line.split()[:1] == [setting]]
        assert line.split()[1] == value and f"derived: {formula}" in line, line
    played = generated(f"shipped:{name}")
    for template in played.templates.values():
        for metric in template["spec"]["metrics"]:
            if "prometheus" in metric["provider"]:
                assert metric["initialDelay"] == rows["rollout.gates.initial_delay"][0]
                assert str(metric.get("count", "null")) == rows["rollout.gates.count"][0]
