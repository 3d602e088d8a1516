"""A small model of Argo Rollouts' analysis schedule, played against series that start when the new pods start.

The generated Rollout and AnalysisTemplate are read as YAML, nothing else: their steps, `startingStep`,
`initialDelay`, `interval`, `count` and limits decide the schedule, and promtool evaluates their queries on the
series a scenario's traffic produces. Written from argoproj/argo-rollouts (post v1.10.0-rc1):

- analysis/analysis.go: `generateMetricTasks` (the first measurement `initialDelay` after the run's start, at once
  without one; the next `interval` after the last one finished, 10 s after an Error; none once `count` is reached
  or the run is terminating); `runMeasurements` (Error does not count towards `count`, it adds to the consecutive
  errors; the other phases reset them); `assessMetricStatus` / `assessMetricFailureInconclusiveOrError` (Failed when
  failures > failureLimit (default 0), Inconclusive when inconclusive > inconclusiveLimit (default 0), Error when
  consecutive errors > consecutiveErrorLimit (default 4); Successful once `count` is reached; a metric without
  `count` runs until the run terminates, and is then Successful); `assessRunStatus` (the worst completed metric;
  utils/analysis/helpers.go `IsTerminating`: one Failed, Error or Inconclusive metric terminates the run, the
  others end Successful, so the worst phase is the run's at the next reconcile, modelled as at once).
- utils/evaluate/evaluate.go `EvaluateResult` and metricproviders/prometheus/prometheus.go `processResponse`:
  `result` is the list of sample values; failure first, then success, neither is Inconclusive, an evaluation
  error is Error.
- rollout/analysis.go: `reconcileBackgroundAnalysisRun` (no run before `startingStep`; Inconclusive pauses the
  rollout, Failed or Error aborts it), `needsNewAnalysisRun` (a run that succeeded is never started again),
  `reconcileAnalysisRuns` (full promotion cancels the runs), `skipPrePromotionAnalysisRun` (pre-promotion once the
  preview ReplicaSet is available), `skipPostPromotionAnalysisRun` (post-promotion once the active Service selects
  the new pods), `setPauseOrAbortForBlueGreen`.
- rollout/canary.go `completedCurrentCanaryStep`: a `setWeight` step completes when its pods are available, a
  `pause` with a duration when it has passed, one without waits for a person.
- rollout/bluegreen.go: without `previewReplicaCount` the preview stack runs at full size; `autoPromotionEnabled`
  switches once pre-promotion succeeded, otherwise a person promotes.

Prometheus discovers a pod through its Service's endpoints (batched up to 5 s) and scrapes it within one scrape
interval: the model takes the latest, so a pod's first sample is `5 s + S` after it is ready behind the scraped
Service (for blue-green, after the switch). Without a traffic router requests spread evenly over the ready pods.
The model ends at the first outcome: completed, aborted, or paused for a person (paused is final: without a
person nothing resumes it, and `progressDeadlineSeconds` is not checked while paused).
"""

from __future__ import annotations

import ast
import math
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

import yaml

from infragen.models.rollout import canary_split
from infragen.models.types import parse_duration

DISCOVERY = 5  # Prometheus' Kubernetes discovery batches endpoint changes up to 5 s
ERROR_RETRY = 10  # analysis/analysis.go DefaultErrorRetryInterval
CONSECUTIVE_ERROR_LIMIT = 4  # defaults.DefaultConsecutiveErrorLimit
NEW, OLD = "abc123", "old999"  # rollouts-pod-template-hash of the new version's pods and of the stable ones
BUCKETS = ("0.25", "0.5", "1", "+Inf")
COMPLETED = ("Successful", "Failed", "Error", "Inconclusive")
WORST = ("Successful", "Inconclusive", "Error", "Failed")  # utils/analysis/helpers.go analysisStatusOrder


# --- Argo's conditions (antonmedv/expr), translated minimally ---------------------------------------------------

def argo_expression(condition: str) -> ast.Expression:
    """An Argo Rollouts (antonmedv/expr) condition as Python, translated minimally: `&&`, `||`, `!`. Only the names
    Argo gives a Prometheus measurement (`result`) and the functions it provides (`len`, `isNaN`) may appear."""
    text = condition.replace("&&", " and ").replace("||", " or ")
    text = re.sub(r"!(?!=)", " not ", text)
    tree = ast.parse(text.strip(), mode="eval")
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert names <= {"result", "len", "isNaN"}, (condition, names)
    allowed = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.Compare, ast.Call, ast.Name,
               ast.Load, ast.Subscript, ast.Constant, ast.Gt, ast.GtE, ast.Lt, ast.LtE, ast.Eq, ast.NotEq)
    assert all(isinstance(node, allowed) for node in ast.walk(tree)), (condition, ast.dump(tree))
    return tree


def argo_phase(metric: dict[str, Any], result: Any) -> str:
    """Argo Rollouts' EvaluateResult: failure first, then success; neither is Inconclusive. An evaluation error
    (e.g. `result[0]` of an empty result) is Error, which aborts the rollout after consecutiveErrorLimit."""
    def evaluate(condition: str) -> bool:
        code = compile(argo_expression(condition), "<condition>", "eval")
        return bool(eval(code, {"__builtins__": {}}, {"result": result, "len": len, "isNaN": math.isnan}))

    try:
        success = evaluate(metric["successCondition"]) if "successCondition" in metric else None
        failure = evaluate(metric["failureCondition"]) if "failureCondition" in metric else None
    except (IndexError, TypeError):
        return "Error"
    if success is None and failure is None:
        return "Successful"
    if failure is None:
        failure = not success
    if success is None:
        success = not failure
    return "Failed" if failure else "Successful" if success else "Inconclusive"


# --- an AnalysisRun -------------------------------------------------------------------------------------------

def seconds(text: str | None) -> int | None:
    return None if text is None else parse_duration(text)


@dataclass
class MetricState:
    """One metric of a run: its spec and what its measurements gave so far."""

    spec: dict[str, Any]
    measured: list[tuple[int, str]] = field(default_factory=list)
    count: int = 0
    failed: int = 0
    inconclusive: int = 0
    consecutive_errors: int = 0
    phase: str = "Running"

    def due(self, start: int) -> int | None:
        """When the next measurement is taken (generateMetricTasks), None when none will be."""
        if self.phase != "Running" or (self.spec.get("count") is not None and self.count >= self.spec["count"]):
            return None
        if not self.measured:
            return start + (seconds(self.spec.get("initialDelay")) or 0)
        last_time, last_phase = self.measured[-1]
        interval = seconds(self.spec.get("interval"))
        return last_time + (ERROR_RETRY if last_phase == "Error" or interval is None else interval)

    def record(self, time: int, phase: str) -> None:
        """runMeasurements, then assessMetricStatus."""
        self.measured.append((time, phase))
        if phase == "Error":
            self.consecutive_errors += 1
        else:
            self.count += 1
            self.consecutive_errors = 0
            self.failed += phase == "Failed"
            self.inconclusive += phase == "Inconclusive"
        if self.failed > self.spec.get("failureLimit", 0):
            self.phase = "Failed"
        if self.inconclusive > self.spec.get("inconclusiveLimit", 0):
            self.phase = "Inconclusive"
        if self.consecutive_errors > self.spec.get("consecutiveErrorLimit", CONSECUTIVE_ERROR_LIMIT):
            self.phase = "Error"
        if self.phase == "Running" and self.spec.get("count") is not None and self.count >= self.spec["count"]:
            self.phase = "Successful"


Measure = Callable[[dict[str, Any], int], str]


@dataclass
class Run:
    """An AnalysisRun started at `start`: its metrics measure until they complete or the run terminates."""

    kind: str  # background, pre-promotion, post-promotion
    start: int
    metrics: list[MetricState]
    ended: int | None = None

    @property
    def phase(self) -> str:
        """assessRunStatus: the worst completed metric once one ended badly (the run terminates) or all ended."""
        phases = [m.phase for m in self.metrics]
        bad = [p for p in phases if p in ("Failed", "Error", "Inconclusive")]
        if bad:
            return max(bad, key=WORST.index)
        return "Successful" if all(p == "Successful" for p in phases) else "Running"

    def advance(self, until: int, measure: Measure) -> None:
        """Take every measurement due at or before `until`, in time order, stopping when the run completes."""
        while self.phase == "Running":
            due = [(m.due(self.start), i) for i, m in enumerate(self.metrics)]
            pending = [(t, i) for t, i in due if t is not None and t <= until]
            if not pending:
                return
            time = min(t for t, _ in pending)
            for t, i in pending:  # one reconcile measures every metric then due
                if t == time:
                    self.metrics[i].record(time, measure(self.metrics[i].spec, time))
            if self.phase != "Running":
                self.terminate(time)

    def finish(self, measure: Measure, limit: int) -> int:
        """Measure until the run completes (pre- and post-promotion runs have a count); when it did."""
        self.advance(limit, measure)
        assert self.phase != "Running", f"{self.kind} run still running at {limit}s"
        assert self.ended is not None
        return self.ended

    def terminate(self, time: int) -> None:
        """Terminating (a metric ended badly, or the rollout cancelled the run on full promotion): metrics still
        running end Successful (assessMetricStatus, terminating), so the run's phase is the worst one."""
        for m in self.metrics:
            if m.phase == "Running":
                m.phase = "Successful"
        self.ended = time


def new_run(kind: str, start: int, analysis: dict[str, Any], templates: dict[str, dict[str, Any]],
            args: dict[str, str]) -> Run:
    """A run of the Rollout's analysis: its templates' metrics with the arguments resolved."""
    metrics = []
    for ref in analysis["templates"]:
        for metric in templates[ref["templateName"]]["spec"]["metrics"]:
            text = yaml.safe_dump(metric)
            for name, value in args.items():
                text = text.replace("{{args." + name + "}}", value)
            metrics.append(MetricState(yaml.safe_load(text)))
    return Run(kind, start, metrics)


def resolve_args(analysis: dict[str, Any]) -> dict[str, str]:
    """podTemplateHashValue Latest: the new pods' hash; Stable: the old ones'."""
    hashes = {"Latest": NEW, "Stable": OLD}
    return {a["name"]: hashes[a["valueFrom"]["podTemplateHashValue"]] for a in analysis.get("args", [])}


# --- scenarios and the traffic they produce -------------------------------------------------------------------

@dataclass(frozen=True)
class Scenario:
    name: str
    rps: float  # requests per second to the service
    error_ratio: float = 0.0  # share of the new pods' requests that answer 500 once degraded
    degrade: str = "start"  # when errors begin: start | last-weight (canary) | half-judgement (blue-green)
    boot: int = 20  # seconds from a pod's creation to ready
    person_after: int = 600  # seconds a person takes to promote a rollout waiting for one (looks before acting)


@dataclass
class Plan:
    """When pods serve, as the controller would run them with every gate passing: the series follow it."""

    scrape: int
    serving: Callable[[int], int]  # t -> pods serving requests (new and old)
    new_pods: list[int]  # when each new pod starts serving, behind the scraped Service
    degrade_at: int
    horizon: int
    times: dict[str, int] = field(default_factory=dict)  # planned event times, for the model to check against


def counter_values(plan: Plan, scenario: Scenario, start: int, grid: int) -> list[list[float | None]]:
    """Scraped values of one new pod's [200, 500, bucket..., count] counters on the grid: the requests it served since
    `start`. The 500 series exists from the pod's first error only (a labelled counter appears when first used)."""
    ok = errors = 0.0
    rows: list[list[float | None]] = []
    first = start + DISCOVERY + plan.scrape
    for t in range(0, plan.horizon + 1):
        if t > start:
            rate = scenario.rps / max(1, plan.serving(t))
            ratio = scenario.error_ratio if t > plan.degrade_at else 0.0
            ok, errors = ok + rate * (1 - ratio), errors + rate * ratio
        if t % grid:
            continue
        scraped = t >= first and (t - first) % plan.scrape == 0
        total = ok + errors
        # every request is fast: all in le=0.25, and in the histogram's _count
        rows.append([ok if scraped else None, errors if scraped and errors > 0 else None]
                    + [total if scraped else None] * (len(BUCKETS) + 1))
    return rows


def input_series(plan: Plan, scenario: Scenario, job: str, namespace: str, grid: int) -> list[dict[str, str]]:
    series = []
    for n, start in enumerate(plan.new_pods):
        rows = counter_values(plan, scenario, start, grid)
        base = f'job="{job}",namespace="{namespace}",rollouts_pod_template_hash="{NEW}",instance="pod-{n}:8000"'
        names = ([f'http_requests_total{{{base},status="200"}}', f'http_requests_total{{{base},status="500"}}']
                 + [f'http_request_duration_seconds_bucket{{{base},le="{le}"}}' for le in BUCKETS]
                 + [f'http_request_duration_seconds_count{{{base}}}'])
        for column, name in enumerate(names):
            values = " ".join("_" if row[column] is None else repr(round(row[column], 6)) for row in rows)
            series.append({"series": name, "values": values})
    return series


# --- promtool: the generated queries' values at every grid time -----------------------------------------------

_GOT = re.compile(r'time: (\S+),\s*\n\s*exp: [^\n]*\n\s*got: \{gate_metric="([^"]+)"\} (\S+)')


def go_seconds(text: str) -> int:
    total = 0
    for number, unit in re.findall(r"([0-9.]+)(h|m|s)", text):
        total += round(float(number) * {"h": 3600, "m": 60, "s": 1}[unit])
    return total


def query_values(promtool: str, workdir: Path, queries: dict[str, str], series: list[dict[str, str]], grid: int,
                 horizon: int) -> dict[tuple[str, int], list[float]]:
    """Each query's `result` (the sample values, as Argo reads them) at every grid time, evaluated by promtool.
    Every expectation is empty on purpose: promtool then prints the value it got for each time a result exists."""
    tests = [{"expr": f'label_replace({query}, "gate_metric", "{name}", "", "")', "eval_time": f"{t}s",
              "exp_samples": []} for name, query in queries.items() for t in range(0, horizon + 1, grid)]
    document = {"rule_files": [], "evaluation_interval": "1m",
                "tests": [{"interval": f"{grid}s", "input_series": series, "promql_expr_test": tests}]}
    (workdir / "timeline.test.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    proc = subprocess.run([promtool, "test", "rules", "timeline.test.yaml"], cwd=workdir, capture_output=True,
                          text=True, timeout=300)
    output = proc.stdout + proc.stderr
    values: dict[tuple[str, int], list[float]] = {(n, t): [] for n in queries for t in range(0, horizon + 1, grid)}
    for time, name, value in _GOT.findall(output):
        values[(name, go_seconds(time))] = [float(value)]
    got = len(_GOT.findall(output))
    assert (proc.returncode == 0 and got == 0) or (proc.returncode == 1 and got == output.count("got:")), output
    return values


def grid_of(*durations: int) -> int:
    return reduce(math.gcd, [d for d in durations if d], 0) or 1


# --- the controller -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    result: str  # completed | aborted | paused
    at: int  # seconds after the new version was deployed
    weight: int  # canary: the weight serving then (100 once completed); blue-green: 0 before the switch, else 100
    persons: tuple[str, ...]  # what a person had to do
    runs: tuple[Run, ...]

    def __str__(self) -> str:
        lines = [f"{self.result} at {self.at}s, weight {self.weight}, persons {list(self.persons)}"]
        for run in self.runs:
            for m in run.metrics:
                lines.append(f"  {run.kind} run from {run.start}s: {m.spec['name']} {m.phase} {m.measured}")
        return "\n".join(lines)


def _surge(rollout: dict[str, Any], replicas: int) -> int:
    value = rollout["spec"]["strategy"]["canary"].get("maxSurge", "25%")
    return math.ceil(replicas * int(value[:-1]) / 100) if isinstance(value, str) else int(value)


def canary_plan(rollout: dict[str, Any], replicas: int, scrape: int, scenario: Scenario) -> Plan:
    """Each step's start (canary.go: setWeight completes when its pods are available; a pause after its duration
    or, without one, when a person promotes), the new pods, and how many pods serve at each moment."""
    spec = rollout["spec"]
    steps, available = spec["strategy"]["canary"]["steps"], scenario.boot + spec.get("minReadySeconds", 0)
    times: dict[str, int] = {}
    new_pods: list[int] = []
    stable_changes: list[tuple[int, int]] = [(0, replicas)]
    t, last_weight_at = 0, 0
    for index, step in enumerate(steps):
        times[f"step {index}"] = t
        if "setWeight" in step:
            split = canary_split(step["setWeight"], replicas, _surge(rollout, replicas))
            new_pods += [t + scenario.boot] * (split.canary - len(new_pods))
            last_weight_at = t
            t += available
            stable_changes.append((t, split.stable))  # maxUnavailable 0: the stable side shrinks once they serve
        else:
            t += parse_duration(step["pause"]["duration"]) if "duration" in step["pause"] else scenario.person_after
    times["promoted"] = t

    def serving(now: int) -> int:
        stable = [count for at, count in stable_changes if at <= now][-1]
        return stable + sum(1 for ready in new_pods if ready <= now)

    degrade_at = {"start": 0, "last-weight": last_weight_at}[scenario.degrade]
    return Plan(scrape, serving, new_pods, degrade_at, t, times)


def _judged(analysis: dict[str, Any] | None, templates: dict[str, dict[str, Any]]) -> int:
    """The longest a finite run measures (initialDelay + (count - 1) x interval)."""
    longest = 0
    for ref in (analysis or {}).get("templates", []):
        for metric in templates[ref["templateName"]]["spec"]["metrics"]:
            assert metric.get("count") is not None, "pre- and post-promotion analysis need a count (else InvalidSpec)"
            longest = max(longest, (seconds(metric.get("initialDelay")) or 0)
                          + (metric["count"] - 1) * (seconds(metric.get("interval")) or 0))
    return longest


def blue_green_plan(rollout: dict[str, Any], templates: dict[str, dict[str, Any]], replicas: int, scrape: int,
                    scenario: Scenario) -> Plan:
    """The preview stack at full size, available after boot + minReadySeconds; the switch then (auto promotion,
    once pre-promotion passed at once) or when a person promotes; the new pods serve every request after it."""
    spec = rollout["spec"]
    bg = spec["strategy"]["blueGreen"]
    assert "previewReplicaCount" not in bg and "autoPromotionSeconds" not in bg, "not modelled"
    available = scenario.boot + spec.get("minReadySeconds", 0)
    switch = available + (0 if bg.get("autoPromotionEnabled", True) else scenario.person_after)
    judged = _judged(bg.get("postPromotionAnalysis"), templates)
    degrade_at = {"start": 0, "half-judgement": switch + judged // 2}[scenario.degrade]
    horizon = switch + judged + CONSECUTIVE_ERROR_LIMIT * ERROR_RETRY + 60
    return Plan(scrape, lambda now: replicas, [switch] * replicas, degrade_at, horizon,
                {"available": available, "switch": switch})


def play_canary(rollout: dict[str, Any], templates: dict[str, dict[str, Any]], plan: Plan, measure: Measure) -> Outcome:
    canary = rollout["spec"]["strategy"]["canary"]
    analysis = canary.get("analysis")
    starting = (analysis or {}).get("startingStep", 0)
    steps, persons, run, weight = canary["steps"], [], None, 0
    for index, step in enumerate(steps):
        start = plan.times[f"step {index}"]
        end = plan.times[f"step {index + 1}"] if index + 1 < len(steps) else plan.times["promoted"]
        weight = step.get("setWeight", weight)
        if analysis and run is None and index >= starting:  # reconcileBackgroundAnalysisRun, BeforeStartingStep
            run = new_run("background", start, analysis, templates, resolve_args(analysis))
        if "pause" in step and "duration" not in step["pause"]:
            persons.append(f"promote at step {index} ({weight}%)")
        if run is not None:
            run.advance(end, measure)
            if run.phase in ("Failed", "Error"):
                return Outcome("aborted", end if run.ended is None else run.ended, weight, tuple(persons), (run,))
            if run.phase == "Inconclusive":
                return Outcome("paused", end if run.ended is None else run.ended, weight, tuple(persons), (run,))
    if run is not None:
        run.terminate(plan.times["promoted"])
    return Outcome("completed", plan.times["promoted"], 100, tuple(persons), (run,) if run else ())


def play_blue_green(rollout: dict[str, Any], templates: dict[str, dict[str, Any]], plan: Plan,
                    measure: Measure) -> Outcome:
    bg = rollout["spec"]["strategy"]["blueGreen"]
    persons: list[str] = []
    runs: list[Run] = []
    available = plan.times["available"]
    if "prePromotionAnalysis" in bg:
        pre = new_run("pre-promotion", available, bg["prePromotionAnalysis"], templates,
                      resolve_args(bg["prePromotionAnalysis"]))
        runs.append(pre)
        done = pre.finish(measure, plan.horizon)
        if pre.phase != "Successful":
            return Outcome("aborted" if pre.phase in ("Failed", "Error") else "paused", done, 0, (), tuple(runs))
        available = done
    switch = plan.times["switch"]
    if bg.get("autoPromotionEnabled", True):
        assert switch == available, f"the series assumed the switch at {switch}s, the controller makes it {available}s"
    else:
        persons.append("promote (the switch)")
    if "postPromotionAnalysis" not in bg:
        return Outcome("completed", switch, 100, tuple(persons), tuple(runs))
    post = new_run("post-promotion", switch, bg["postPromotionAnalysis"], templates,
                   resolve_args(bg["postPromotionAnalysis"]))
    runs.append(post)
    done = post.finish(measure, plan.horizon)
    result = {"Successful": "completed", "Inconclusive": "paused"}.get(post.phase, "aborted")
    return Outcome(result, done, 100, tuple(persons), tuple(runs))


@dataclass(frozen=True)
class Artifacts:
    """What the model plays: the Rollout, its AnalysisTemplates by name, and the series' identity."""

    rollout: dict[str, Any]
    templates: dict[str, dict[str, Any]]
    job: str
    namespace: str
    replicas: int  # the HPA's minimum: the rollout runs at it
    scrape: int

    @classmethod
    def from_text(cls, rollout: str, templates: str, job: str, namespace: str, replicas: int,
                  scrape: int) -> Artifacts:
        by_name = {t["metadata"]["name"]: t for t in yaml.safe_load_all(templates) if t}
        return cls(yaml.safe_load(rollout), by_name, job, namespace, replicas, scrape)

    def durations(self) -> list[int]:
        found: list[int] = []
        text = yaml.safe_dump([self.rollout, self.templates])
        for value in re.findall(r"(?:duration|interval|initialDelay): '?([0-9hms]+)'?", text):
            found.append(parse_duration(value))
        return found + [self.rollout["spec"].get("minReadySeconds", 0)]


def play(artifacts: Artifacts, scenario: Scenario, promtool: str, workdir: Path) -> Outcome:
    rollout, templates = artifacts.rollout, artifacts.templates
    canary = "canary" in rollout["spec"]["strategy"]
    plan = (canary_plan(rollout, artifacts.replicas, artifacts.scrape, scenario) if canary
            else blue_green_plan(rollout, templates, artifacts.replicas, artifacts.scrape, scenario))
    grid = grid_of(DISCOVERY, ERROR_RETRY, artifacts.scrape, scenario.boot, scenario.person_after,
                   *artifacts.durations(), *plan.times.values())
    queries = {}
    for template in templates.values():
        for metric in template["spec"]["metrics"]:
            if "prometheus" in metric["provider"]:
                query = metric["provider"]["prometheus"]["query"]
                queries[metric["name"]] = query.replace("{{args.canary-hash}}", NEW)
    series = input_series(plan, scenario, artifacts.job, artifacts.namespace, grid)
    values = query_values(promtool, workdir, queries, series, grid, plan.horizon) if queries else {}

    def measure(spec: dict[str, Any], time: int) -> str:
        if "web" in spec["provider"]:  # the preview's /health/detailed answers {"status": "healthy"}
            return argo_phase(spec, "healthy")
        assert (spec["name"], time) in values, f"{spec['name']} measured at {time}s, off the {grid}s grid"
        return argo_phase(spec, values[(spec["name"], time)])

    return (play_canary if canary else play_blue_green)(rollout, templates, plan, measure)
