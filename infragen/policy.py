"""Cross-artifact policy: rules about settings that are each valid but must fit together.

Every rule is registered once, with its stable id, level, one-line summary and fix hint (documented in
docs/policy.md, which a test keeps in step with `RULES`). Two stages:

- `load`: checked while an environment is loaded, because without them an artifact cannot be written
  correctly at all (nginx would reject the upstream, Alertmanager the route) or a secret would leak. The
  models raise them (`rule_error`) or `infragen.secrets` finds them; they arrive as `InputError` problems
  carrying the rule id. They are declared in infragen.rules, beneath the models, which raise the rule objects.
- `policy`: one function per rule, declared here with `@policy_rule`, run on a loaded environment before
  anything is written; `check.report` files a finding under the rule being run, so a rule's id is written once. A rule reads the environment's settings and derived values (never rendered text: every artifact
  reads the same derived values, so they agree by construction).

Each finding points at the value that causes it (in the environment file or the partial it came from) and
names the other values involved with their own locations. Production-tier rules may be turned into
warnings by an exception in the environment's own file: `policy: {allow: [rule-id]}`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .errors import Finding, Level, Location, PathKey, Problem
from .explain import format_value, is_duration, origin_of, own_file
from .models.environment import Environment
from .models.rollout import Split, smallest_faithful_replicas
from .models.types import format_duration, split_address
from .rules import RULES, Rule, register

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo


class Term(Protocol):
    """Names a value in a finding's message: bare for the value pointed at, `field value (location)` for others."""

    def __call__(self, path: PathKey, shown: str | None = None, /) -> str: ...


Compose = Callable[[Term], str]  # builds a finding's message from the terms of the values involved


def policy_rule(id: str, level: Level, summary: str, hint: str, *, production_only: bool = False
                ) -> Callable[[Callable[[Check], None]], Rule]:
    """Declare a policy-stage rule: the decorated function reports its violations through `check.report` (the
    finding carries the rule being run). Rules run in the order they are declared."""
    def declare(func: Callable[[Check], None]) -> Rule:
        return register(Rule(id, level, "policy", summary, hint, production_only, func))
    return declare


# --- the checking context ---------------------------------------------------------------------------------

@dataclass
class Check:
    """One environment being checked: what a rule reads, and `report` to add a finding."""

    env: Environment
    findings: list[Finding] = field(default_factory=list)
    allow_used: set[str] = field(default_factory=set)  # production exceptions some rule needed
    acknowledged: set[str] = field(default_factory=set)  # acknowledged warnings some rule reported
    rule: Rule | None = None  # the rule being run: every finding reported is its

    def __post_init__(self) -> None:
        self.spec = self.env.spec
        self.env_file = next((loc.file for loc in self.env.locations.values() if loc.file and own_file(self.env, loc)),
                             self.env.source)

    def value(self, path: PathKey) -> Any:
        return self._lookup(path)[0]

    def shown(self, path: PathKey) -> str:
        """The value at `path` as a message shows it: durations as written (30d, 2m), not in seconds."""
        value, info = self._lookup(path)
        return format_value(value, duration=is_duration(info))

    def _lookup(self, path: PathKey) -> tuple[Any, FieldInfo | None]:
        current: Any = self.spec
        info: FieldInfo | None = None
        for part in path:
            if isinstance(current, (dict, list)):
                current, info = current[part], None
            else:
                fields = type(current).model_fields
                name = next((n for n, f in fields.items() if (f.alias or n) == part), part)
                current, info = getattr(current, name), fields.get(name)
        return current, info

    def report(self, paths: list[PathKey], compose: Compose, hint: str | None = None,
               level: Level | None = None) -> None:
        """Add a finding of the rule being run at the first of `paths` written in a file; `compose(term)` builds the message, where
        `term(path)` names a value: bare for the value pointed at, `field value (location)` for the others."""
        locations = {path: origin_of(self.env, path) for path in paths}
        primary = next((p for p in paths if locations[p].file is not None), paths[0])

        def term(path: PathKey, shown: str | None = None) -> str:
            text = shown if shown is not None else self.shown(path)
            where = locations.get(path) or origin_of(self.env, path)
            if path == primary:
                return text if where.file is not None else f"{text} ({where})"
            return f"{'.'.join(str(p) for p in path)} {text} ({where})"

        message = compose(term)
        rule = self.rule
        assert rule is not None, "report() is called by a rule run through check_environment"
        rule_id, level = rule.id, level or rule.level  # a rule may report a lesser finding than its own (production-pdb)
        if rule.production_only:
            level, message = self._exception(rule_id, level, message)
        elif level == "warning" and rule_id in self.spec.policy.acknowledge:
            self.acknowledged.add(rule_id)
            where = origin_of(self.env, ("policy", "acknowledge", self.spec.policy.acknowledge.index(rule_id)))
            level, message = "info", f"{message}; acknowledged at {where}"
        location = locations[primary] if locations[primary].file is not None else Location(self.env_file)
        related = tuple(loc for p, loc in locations.items() if p != primary and loc.file is not None)
        self.findings.append(Finding(location, ".".join(str(p) for p in primary), message, level=level, rule=rule_id,
                                     environment=self.env.name, related=related, hint=hint or rule.hint))

    def _exception(self, rule_id: str, level: Level, message: str) -> tuple[Level, str]:
        allow = self.spec.policy.allow
        if rule_id not in allow:
            return level, message
        self.allow_used.add(rule_id)
        where = origin_of(self.env, ("policy", "allow", allow.index(rule_id)))
        if own_file(self.env, where):
            return ("warning" if level == "error" else "info"), f"{message}; allowed by the exception at {where}"
        return level, (f"{message}; the exception at {where} does not count: an exception belongs in the environment's "
                       "own file")


# --- rules checked on a loaded environment, in reporting order --------------------------------------------

@policy_rule("pdb-blocks-drain", "error",
             "The PDB lets at least one pod be evicted at the HPA's minimum (percentages rounded up, as Kubernetes does).",
             "keep disruption_budget.min_available below autoscaling.min_replicas, or use max_unavailable >= 1")
def pdb_blocks_drain(check: Check) -> None:
    budget, replicas = check.spec.disruption_budget, check.spec.autoscaling.min_replicas
    if check.env.capacity.evictions_allowed_at_min_replicas >= 1:
        return
    mr = ("autoscaling", "min_replicas")
    if budget.min_available is not None:
        ma = ("disruption_budget", "min_available")
        required = budget.pods_kept(replicas)
        hint = (f"set disruption_budget.min_available to at most {replicas - 1}, or use max_unavailable: 1"
                if replicas > 1 else "with one replica use disruption_budget.max_unavailable: 1 (or run 2 replicas)")
        if isinstance(budget.min_available, str):
            check.report([ma, mr], lambda t: (
                f"{t(ma)} of {t(mr)} is {required} pods (Kubernetes rounds up), every one of them: "
                "every node drain would block"), hint)
        else:
            check.report([ma, mr], lambda t: f"{t(ma)} >= {t(mr)}: every node drain would block", hint)
    else:
        mu = ("disruption_budget", "max_unavailable")
        check.report([mu], lambda t: f"{t(mu)} lets no pod be evicted: every node drain would block",
                     "set disruption_budget.max_unavailable to at least 1")


@policy_rule("fleet-exceeds-database", "error",
             "The fleet's peak during a rollout (max_replicas + surge pods; blue-green: three full stacks while a "
             "rollback window is set) x (pool + overflow) fits in the database's max_connections less the reserve.",
             "raise database.max_connections, or lower max_replicas, the pool, or rollout.max_surge")
def fleet_exceeds_database(check: Check) -> None:
    env, db, a = check.env, check.spec.database, check.spec.autoscaling
    usable, peak = env.capacity.usable_connections, env.capacity.peak_connections
    if peak <= usable:
        return
    mc, res = ("database", "max_connections"), ("database", "reserved_connections_percent")
    maxr, surge, strategy = ("autoscaling", "max_replicas"), ("rollout", "max_surge"), ("rollout", "strategy")
    window = ("rollout", "blue_green", "rollback_window")
    blue_green = env.rollout.strategy == "blue-green"
    pool_paths = [("database", "pool_size")] if db.pool_size is not None else [("database", "base_pool_size"),
                                                                                ("database", "load_estimate")]
    overflow_paths = [("database", "max_overflow")] if db.max_overflow is not None else []
    paths = [mc, maxr, *pool_paths, *overflow_paths, *((strategy, window) if blue_green else (surge,)), res]

    def compose(t: Term) -> str:
        if db.pool_size is not None:
            pool = t(("database", "pool_size"))
        else:
            pool = f"pool {env.capacity.pool_size} = ceil({t(pool_paths[0])} x {t(pool_paths[1])})"
        overflow = t(("database", "max_overflow")) if overflow_paths else f"overflow {env.capacity.pool_overflow} (pool // 2)"
        stacks = env.capacity.peak_at(a.max_replicas).stacks
        shown = format_duration(check.spec.rollout.blue_green.rollback_window)
        pods = (f"{stacks} x {t(maxr)} (a release inside {t(window, shown)} runs the old stack kept for rollback, the "
                f"active and the preview one, each at full size, under {t(strategy)})" if blue_green
                else f"({t(maxr)} + {env.capacity.surge_pods} surge pods from {t(surge)})")
        return (f"{t(mc)} leaves {usable} usable after {t(res, f'{db.reserved_connections_percent}%')} reserve, "
                f"but the fleet at peak opens {peak}: {pods} x ({pool} + {overflow}) connections per pod; "
                "a scale-up during a rollout would exhaust the database")

    needed = env.capacity.smallest_fitting_max_connections
    # The surge follows max_replicas when it is a percentage, so search rather than divide. Peak connections
    # grow with n, so bisect: a linear walk down from max_replicas 2147483647 would never finish.
    low, high, fitting = a.min_replicas, a.max_replicas - 1, None
    while low <= high:
        mid = (low + high) // 2
        if env.capacity.peak_connections_at(mid) <= usable:
            fitting, low = mid, mid + 1
        else:
            high = mid - 1
    others = ("shrink the pool (database.pool_size / max_overflow)" + (
        "; a shorter rollout.blue_green.rollback_window shortens the three-stack peak, not its size; "
        "or set `rollout.strategy: rolling` to keep the previous output" if blue_green else " or rollout.max_surge"))
    hint = (f"raise database.max_connections to at least {needed}"
            + (f", or lower autoscaling.max_replicas to {fitting}" if fitting is not None else "")
            + f", or {others}")
    check.report(paths, compose, hint)


@policy_rule("receiver-unused", "warning",
             "Every defined receiver is used by a severity route or as the default receiver (a paging receiver outside "
             "production excepted: tier-aware paging leaves it unused there on purpose).",
             "route a severity to it (alertmanager.routes.<severity>) or remove it")
def receiver_unused(check: Check) -> None:
    am = check.spec.alertmanager
    used = {name for _, name in am.route_references()}
    for name in sorted(am.receivers):
        if name in used or (am.receivers[name].pages and check.spec.tier != "production"):
            continue
        path = ("alertmanager", "receivers", name)
        def unused(t: Term, name: str = name) -> str:
            return f"receiver {name!r} is defined but no severity route nor default_receiver uses it: it never receives an alert"
        check.report([path, ("alertmanager", "routes")], unused)


@policy_rule("non-production-pages", "warning",
             "Outside production nothing routes to a paging (PagerDuty) receiver: critical alerts go to the team's chat.",
             "route the severity to a chat receiver (production's tier default pages; development and staging send "
             "critical to team-slack), or acknowledge non-production-pages under policy.acknowledge, saying why")
def non_production_pages(check: Check) -> None:
    am = check.spec.alertmanager
    if check.spec.tier == "production":
        return
    for where, name in am.route_references():
        if not am.receivers[name].pages:
            continue
        path = ("alertmanager",) + tuple(where.split("."))
        target = ("alertmanager", "receivers", name)
        def pages(t: Term, path: PathKey = path, name: str = name) -> str:
            return (f"{t(path)} pages: receiver {name!r} has pagerduty, and this is a {check.spec.tier}-tier "
                    "environment, whose alerts must not wake on-call")
        check.report([path, target, ("tier",)], pages)


@policy_rule("secret-file-layout", "warning",
             "File mode: a receiver's secret file follows the mount layout <alertmanager.secrets_dir>/<secret>/<key>.",
             "use routing_key_secret / api_url_secret: {name, key} (read from <secrets_dir>/<name>/<key>), or mount the "
             "Secret there and name that file")
def secret_file_layout(check: Check) -> None:
    am = check.spec.alertmanager
    top = am.secrets_dir.rstrip("/") + "/"
    for name, receiver in sorted(am.receivers.items()):
        for (integration, key), file in receiver.files():
            rest = file[len(top):].split("/") if file.startswith(top) else []
            if len(rest) == 2 and all(rest):
                continue
            path = ("alertmanager", "receivers", name, integration, key)
            def off_layout(t: Term, path: PathKey = path) -> str:
                return (f"{t(path)} is not <secrets_dir>/<secret>/<key> below {t(('alertmanager', 'secrets_dir'))}: "
                        "the Prometheus Operator mounts each Secret of an Alertmanager as a directory, one file per "
                        "key, so this file may not exist, and Alertmanager reads it only when it sends: the first "
                        "notification fails")
            check.report([path, ("alertmanager", "secrets_dir")], off_layout)


@policy_rule("nginx-single-server", "warning",
             "Session affinity or least_conn over a single upstream server balances nothing.",
             "list at least two upstream servers (pod or node addresses, not one Service name), or turn session affinity "
             "off and set load_balancing.method: round_robin")
def nginx_single_server(check: Check) -> None:
    lb = check.spec.load_balancing
    primaries = [i for i, server in enumerate(lb.servers) if not server.backup]
    affinity = lb.session_affinity.enabled
    if len(primaries) != 1 or not (affinity or lb.effective_method == "least_conn"):
        return
    server = ("load_balancing", "servers", primaries[0])
    cause: PathKey
    if affinity:
        cause, what, shown = ("load_balancing", "session_affinity", "enabled"), "session affinity", "true"
    else:
        cause, what, shown = ("load_balancing", "method"), "least_conn", lb.effective_method
    check.report([server, cause], lambda t: (
        f"{t(server, lb.servers[primaries[0]].address)} is the only server, so {what} ({t(cause, shown)}) balances "
        "nothing; behind one Kubernetes Service name kube-proxy picks the pod, not nginx"))


@policy_rule("rate-limit-key-spoofable", "warning",
             "The rate-limit key is not a request header the client chooses.",
             "keep rate_limit.key: $binary_remote_addr and set load_balancing.real_ip_from to the load balancers' "
             "ranges (nginx's real_ip module, in nginx/server.conf), so it holds the client address behind them")
def rate_limit_key_spoofable(check: Check) -> None:
    key = check.spec.rate_limit.key
    if not key.startswith(("$http_", "$cookie_", "$arg_")):
        return
    path = ("rate_limit", "key")
    check.report([path], lambda t: (
        f"{t(path, key)} is sent by the client: a client that changes it gets a fresh limit on every request, "
        "and nginx does not count requests where it is empty"))


@policy_rule("edge-stricter-than-app", "warning",
             "nginx admits at once at least what the app's token bucket admits (rate_limit.requests), and does not "
             "queue it: otherwise its 429s hide the app's limit and RateLimitExceeded never sees them.",
             "remove rate_limit.burst (nginx then admits requests - 1 + 1 at once, as the app does) and keep nodelay, "
             "or acknowledge a deliberately stricter edge: policy.acknowledge: [edge-stricter-than-app]")
def edge_stricter_than_app(check: Check) -> None:
    rate = check.env.edge.rate
    if not rate.stricter:
        return
    burst, req, inst = ("rate_limit", "burst"), ("rate_limit", "requests"), ("rate_limit", "edge_instances")
    nodelay = ("rate_limit", "nodelay")
    if rate.edge_at_once < rate.requests:
        check.report([burst, req, inst], lambda t: (
            f"nginx admits {rate.edge_at_once} requests at once from a client ({t(inst)} x ({t(burst, str(rate.burst))} "
            f"+ 1)) where the app's bucket admits {t(req)}: nginx answers 429 to requests the app would serve, "
            "and those rejections reach no app metric"))
        return
    check.report([nodelay, burst], lambda t: (
        f"{t(nodelay)}: nginx queues a burst the app would answer at once, the last of {rate.burst + 1} back-to-back "
        f"requests by {rate.longest_delay_ms} ms ({t(burst, str(rate.burst))} x {rate.refill_ms} ms)"),
        "set rate_limit.nodelay: true, or acknowledge it: policy.acknowledge: [edge-stricter-than-app]")


@policy_rule("throttle-before-scale", "error",
             "Throttling starts above the HPA's utilisation targets (CPU, and memory where the HPA has one): the HPA "
             "must add pods before the app lowers its limits.",
             "raise throttling.cpu_percent / memory_percent above the HPA's target, or lower "
             "autoscaling.target_cpu_percent / target_memory_percent")
def throttle_before_scale(check: Check) -> None:
    a, t = check.spec.autoscaling, check.spec.throttling
    pairs = [("cpu", t.cpu_percent, ("throttling", "cpu_percent"), a.target_cpu_percent,
              ("autoscaling", "target_cpu_percent")),
             ("memory", t.memory_percent, ("throttling", "memory_percent"), a.target_memory_percent,
              ("autoscaling", "target_memory_percent"))]
    for what, limit, path, target, target_path in pairs:
        if target is None or limit > target:
            continue
        def early(t: Term, what: str = what, path: PathKey = path, target_path: PathKey = target_path) -> str:
            return (f"the app throttles from {what} use {t(path)} (percent of the request), at or below the HPA's "
                    f"target {t(target_path)}: it lowers its limits before the HPA adds pods, refusing load more pods "
                    "would serve")
        check.report([path, target_path], early, f"set {'.'.join(path)} above {target}, or {'.'.join(target_path)} below {limit}")


@policy_rule("affinity-outlives-session", "warning",
             "Session affinity lasts no longer than the session itself (load_balancing.session_affinity.ttl <= "
             "sessions.ttl).",
             "lower load_balancing.session_affinity.ttl to sessions.ttl or less, or raise sessions.ttl")
def affinity_outlives_session(check: Check) -> None:
    lb, sessions = check.spec.load_balancing, check.spec.sessions
    if not lb.session_affinity.enabled or lb.session_affinity.ttl <= sessions.ttl:
        return
    ttl, session = ("load_balancing", "session_affinity", "ttl"), ("sessions", "ttl")
    check.report([ttl, session], lambda t: (
        f"affinity lasts {t(ttl, format_duration(lb.session_affinity.ttl))}, longer than the session "
        f"({t(session, format_duration(sessions.ttl))}): a client keeps its server after its session is gone"))


NODE_PORTS = range(30000, 32768)  # Kubernetes' default --service-node-port-range


@policy_rule("affinity-through-nodeport", "warning",
             "Session affinity and least_conn act on pods: the upstream servers are not NodePorts (30000-32767), "
             "where kube-proxy picks the pod for every connection.",
             "either set externalTrafficPolicy: Local on the Service: a client then stays on one node, but is still "
             "spread over that node's pods, canary and stable alike; or run nginx inside the cluster and use "
             "load_balancing.discovery with a headless Service (resolve, nginx >= 1.27.3): one upstream peer per pod, "
             "so affinity and least_conn act on pods. Or acknowledge it: policy.acknowledge: [affinity-through-nodeport]")
def affinity_through_nodeport(check: Check) -> None:
    lb, port = check.spec.load_balancing, check.spec.service.port
    affinity = lb.session_affinity.enabled
    if not (affinity or lb.effective_method == "least_conn"):
        return
    node_ports = [i for i, s in enumerate(lb.servers)
                  if (split_address(s.address)[1] or port) in NODE_PORTS]
    if not node_ports:
        return
    first = ("load_balancing", "servers", node_ports[0])
    cause = ("load_balancing", "session_affinity", "enabled") if affinity else ("load_balancing", "method")
    what = "session affinity" if affinity else "least_conn"
    check.report([first, cause], lambda t: (
        f"{t(first, lb.servers[node_ports[0]].address)} looks like a NodePort ({len(node_ports)} of {len(lb.servers)} "
        f"servers in 30000-32767): {what} ({t(cause, 'true' if affinity else lb.effective_method)}) picks a node, and "
        "kube-proxy then sends each connection to any pod, so a session (or a canary's user) moves between pods and "
        "versions"))


@policy_rule("prometheus-rate-window", "error",
             "Every rate()/increase() window, the alerts' and the rollout gates', is at least 4 x the scrape interval.",
             "raise alerts.rate_window (or rollout.gates.window) to at least 4 x alerts.scrape_interval")
def prometheus_rate_window(check: Check) -> None:
    alerts = check.spec.alerts
    si = ("alerts", "scrape_interval")
    windows: list[tuple[PathKey, int]] = [(("alerts", "rate_window"), alerts.rate_window)]
    if check.env.rollout.argo:
        windows.append((("rollout", "gates", "window"), check.spec.rollout.gates.window))
    for path, window in windows:
        if window >= 4 * alerts.scrape_interval:
            continue
        def short(t: Term, path: PathKey = path, window: int = window) -> str:
            return (f"{t(path, format_duration(window))} is shorter than 4 x "
                    f"{t(si, format_duration(alerts.scrape_interval))} = {format_duration(4 * alerts.scrape_interval)}: "
                    "rate() needs about 4 scrapes per window, or one missed scrape hides or fakes an alert")
        check.report([path, si], short, f"set {'.'.join(path)} to at least {format_duration(4 * alerts.scrape_interval)}")


@policy_rule("rollout-needs-prometheus", "error",
             "A canary or blue-green rollout that runs its analysis names the Prometheus it queries "
             "(rollout.prometheus_url).",
             "set rollout.prometheus_url to your Prometheus' in-cluster URL (kube-prometheus-stack: "
             "http://prometheus-operated.monitoring.svc:9090), or set `rollout.strategy: rolling` to keep the previous output")
def rollout_needs_prometheus(check: Check) -> None:
    if not check.env.rollout.analysed or check.spec.rollout.prometheus_url is not None:
        return  # without its analysis (rollout.canary.analysis / blue_green.analysis false) nothing queries it
    strategy, url = ("rollout", "strategy"), ("rollout", "prometheus_url")
    check.report([strategy, url], lambda t: (
        f"{t(strategy)} gates the rollout on queries to Prometheus, and rollout.prometheus_url is not set: "
        "no default could point anywhere real"))


@policy_rule("canary-step-share", "warning",
             "At min_replicas each canary step's real share of pods (Argo Rollouts without a traffic router splits pods, "
             "not requests) is at most twice its weight.",
             "run more replicas, use fewer and larger steps, or acknowledge it: policy.acknowledge: [canary-step-share]")
def canary_step_share(check: Check) -> None:
    env = check.env
    if env.rollout.strategy != "canary":
        return
    for i, (weight, low, _high) in enumerate(env.rollout.canary_steps):
        if low.faithful(weight):
            continue
        needed = smallest_faithful_replicas(weight, check.spec.rollout.surge_pods)
        step, mr = ("rollout", "canary", "steps", i), ("autoscaling", "min_replicas")
        def coarse(t: Term, weight: int = weight, low: Split = low, step: PathKey = step, mr: PathKey = mr) -> str:
            return (f"step {t(step, f'{weight}%')} runs {low.canary} canary and {low.stable} stable pods at {t(mr)}: "
                    f"{low.share:.0%} of the pods and of the requests, not {weight}%")
        check.report([step, mr], coarse,
                     f"{weight}% means at most {2 * weight}% from {needed} replicas on" if needed else None)


@policy_rule("gates-looser-than-alerts", "warning",
             "A rollout gate is no looser than the alert it mirrors (a canary must not pass while the alert would fire).",
             "lower the gate to the alert's threshold or below")
def gates_looser_than_alerts(check: Check) -> None:
    if not check.env.rollout.argo:
        return
    gates, alerts = check.spec.rollout.gates, check.spec.alerts
    pairs = [(("rollout", "gates", "max_error_rate"), gates.max_error_rate, ("alerts", "error_rate", "threshold"),
              alerts.error_rate.threshold, "HighErrorRate"),
             (("rollout", "gates", "max_latency_p95_seconds"), gates.max_latency_p95_seconds,
              ("alerts", "latency_p95", "threshold_seconds"), alerts.latency_p95.threshold_seconds, "HighLatencyP95")]
    for gate, gate_value, alert, alert_value, name in pairs:
        if gate_value <= alert_value:
            continue
        def looser(t: Term, gate: PathKey = gate, alert: PathKey = alert, name: str = name) -> str:
            return f"{t(gate)} is looser than {t(alert)}: a new version passes its gate while {name} fires"
        check.report([gate, alert], looser, f"set {'.'.join(gate)} to at most {format_value(alert_value)}")


@policy_rule("burn-gate-above-page", "warning",
             "The budget gate passes no new version burning its error budget faster than the fast burn alert pages on.",
             "lower rollout.gates.max_burn_rate to the fast alert's lowest factor or below")
def burn_gate_above_page(check: Check) -> None:
    env, gate, period = check.env, ("rollout", "gates", "max_burn_rate"), ("slo", "period")
    limit = check.spec.rollout.gates.max_burn_rate
    if limit is None or not env.rollout.burn_gates:
        return
    page = min(o.lowest_page_factor for o in env.rollout.burn_gates)
    if limit <= page:
        return
    shown = format_value(float(page))
    check.report([gate, period], lambda t: (
        f"{t(gate)} passes a new version burning its error budget up to {t(gate)}x, while AvailabilityBudgetBurn and "
        f"LatencyBudgetBurn page from {shown}x (the fast tier's lowest factor over {t(period)}): the version that "
        "passes pages once it serves everyone"), f"set rollout.gates.max_burn_rate to at most {shown}")


@policy_rule("burn-gate-without-objective", "warning",
             "The budget gate has an objective to measure: rollout.gates.max_burn_rate with slo.enabled.",
             "set slo.enabled: true (with slo.availability / slo.latency), or remove rollout.gates.max_burn_rate")
def burn_gate_without_objective(check: Check) -> None:
    env, gate, enabled = check.env, ("rollout", "gates", "max_burn_rate"), ("slo", "enabled")
    if not env.rollout.analysed or check.spec.rollout.gates.max_burn_rate is None or env.rollout.burn_gates:
        return
    check.report([gate, enabled], lambda t: (
        f"{t(gate)} sets a budget gate, but {t(enabled)} gives it no objective: the rollout runs without it"))


@policy_rule("gates-need-pod-hash-label", "warning",
             "The gates select the new pods by rollouts_pod_template_hash: something copies that pod label onto the series.",
             "load prometheus/scrape.yaml's job (it copies the label), or add to your scrape job: "
             "{source_labels: [__meta_kubernetes_pod_label_rollouts_pod_template_hash], "
             "target_label: rollouts_pod_template_hash}")
def gates_need_pod_hash_label(check: Check) -> None:
    env = check.env
    if not env.rollout.argo or check.spec.monitoring.operator or not env.rollout.analysed:
        return
    operator, strategy = ("monitoring", "operator"), ("rollout", "strategy")
    check.report([operator, strategy], lambda t: (
        f"with {t(operator)} no ServiceMonitor carries the pod label rollouts-pod-template-hash, and the {t(strategy)} "
        "gates select the new pods by it: a Prometheus whose scrape job does not copy it gives the gates no data, "
        "and every rollout pauses"))


@policy_rule("liveness-checks-dependencies", "error",
             "The liveness probe never checks dependencies (database, redis, external services).",
             "point health.liveness_path at the basic /health; dependency checks belong in readiness and in the "
             "blue-green pre-promotion check")
def liveness_checks_dependencies(check: Check) -> None:
    health = check.spec.health
    if health.liveness_path not in health.dependency_paths:
        return
    path = ("health", "liveness_path")
    check.report([path, ("health", "dependency_paths")], lambda t: (
        f"{t(path)} checks dependencies: one database blip fails it on every pod at once and Kubernetes restarts "
        "them all, turning a blip into an outage"))


@policy_rule("operator-resources-unselected", "warning",
             "Prometheus Operator resources carry the labels the cluster's Prometheus selects them by.",
             "set monitoring.labels to what your Prometheus selects (kube-prometheus-stack: {release: <its release name>}), "
             "or monitoring.operator: false to write a plain scrape job instead")
def operator_resources_unselected(check: Check) -> None:
    monitoring = check.spec.monitoring
    if not monitoring.operator or monitoring.labels:
        return
    labels, operator = ("monitoring", "labels"), ("monitoring", "operator")
    check.report([labels, operator], lambda t: (
        "the ServiceMonitor and PrometheusRule carry no label a Prometheus selects by (monitoring.labels is empty): "
        "kube-prometheus-stack loads only those labelled release: <its release name>, so the service may never be "
        "scraped and its alerts never loaded"))


@policy_rule("production-min-replicas", "error",
             "A production-tier environment runs at least 2 replicas.",
             "set autoscaling.min_replicas >= 2, or add production-min-replicas to policy.allow in this file, saying why",
             production_only=True)
def production_min_replicas(check: Check) -> None:
    mr = ("autoscaling", "min_replicas")
    if check.spec.tier != "production" or check.spec.autoscaling.min_replicas >= 2:
        return
    check.report([mr, ("tier",)], lambda t: (
        f"{t(mr)} in a production-tier environment: with one pod every restart or eviction is an outage; "
        "production runs at least 2"))


@policy_rule("production-pdb", "error",
             "A production-tier environment has a PDB that keeps at least one pod available at the HPA's minimum "
             "(an error), and lets a drain evict at most one pod at a time there (a warning).",
             "use disruption_budget.max_unavailable: 1 (the tier default); or add production-pdb to policy.allow in "
             "this file, saying why",
             production_only=True)
def production_pdb(check: Check) -> None:
    budget, replicas = check.spec.disruption_budget, check.spec.autoscaling.min_replicas
    evictions = check.env.capacity.evictions_allowed_at_min_replicas
    if check.spec.tier != "production" or (budget.pods_kept(replicas) >= 1 and evictions <= 1):
        return
    mr = ("autoscaling", "min_replicas")
    which = ("disruption_budget", "min_available" if budget.min_available is not None else "max_unavailable")
    if budget.pods_kept(replicas) < 1:
        check.report([which, mr], lambda t: (
            f"{t(which)} keeps no pod available at {t(mr)}: the PDB protects nothing, a drain may evict every pod "
            "at once"))
        return
    check.report([which, mr], lambda t: (
        f"{t(which)} lets a drain evict {evictions} of {t(mr)} pods at once: production loses "
        f"{evictions * 100 // replicas}% of its capacity to one node drain; evict one at a time"),
        level="warning")


@policy_rule("production-ungated-rollout", "error",
             "A production-tier canary or blue-green rollout runs its analysis (the gates and the health check).",
             "set rollout.canary.analysis / rollout.blue_green.analysis: true; or add production-ungated-rollout to "
             "policy.allow in this file, saying why",
             production_only=True)
def production_ungated_rollout(check: Check) -> None:
    env = check.env
    if check.spec.tier != "production" or not env.rollout.argo or env.rollout.analysed:
        return
    path = ("rollout", "canary", "analysis") if env.rollout.strategy == "canary" else ("rollout", "blue_green", "analysis")
    check.report([path, ("rollout", "strategy")], lambda t: (
        f"{t(path)} in production: the {env.rollout.strategy} rollout would promote a new version no gate has judged"))


@policy_rule("production-paging", "error",
             "A production-tier environment routes critical alerts to a paging (PagerDuty) receiver, and has a critical alert.",
             "route alertmanager.routes.critical to a receiver with pagerduty, and keep at least one alert at severity "
             "critical; or add production-paging to policy.allow in this file, saying why",
             production_only=True)
def production_paging(check: Check) -> None:
    if check.spec.tier != "production":
        return
    am = check.spec.alertmanager
    route = ("alertmanager", "routes", "critical")
    receiver = am.receivers.get(am.routes.critical)
    if receiver is not None and receiver.pagerduty is None:
        target = ("alertmanager", "receivers", am.routes.critical)
        check.report([route, target], lambda t: (
            f"critical alerts go to {t(route)}, which has no pagerduty: nothing pages on-call in production"))
        return
    if any(alert.severity == "critical" for _, alert in check.spec.alerts.items()):
        return
    paths = [("alerts", key, "severity") for key, _ in check.spec.alerts.items()]
    paths.sort(key=lambda p: origin_of(check.env, p).file is None)  # point at a severity someone wrote
    check.report(paths[:1] + [route], lambda t: (
        f"no alert has severity critical (this one is {t(paths[0])}), so {t(route)} never pages on-call"))


# Last: it needs to know which exceptions the rules above used.
@policy_rule("policy-allow-unused", "warning",
             "Every entry of policy.allow and policy.acknowledge is needed: the rule applies to the environment and "
             "would report without it.",
             "remove the entry from policy.allow or policy.acknowledge")
def policy_allow_unused(check: Check) -> None:
    for i, rule_id in enumerate(check.spec.policy.allow):
        if rule_id in check.allow_used:
            continue
        path = ("policy", "allow", i)
        why = (f"this is a {check.spec.tier}-tier environment, where the rule does not apply"
               if check.spec.tier != "production" else "the rule holds without it")
        def needless(t: Term, path: PathKey = path, why: str = why) -> str:
            return f"{t(path)} is not needed: {why}"
        check.report([path], needless)
    for i, rule_id in enumerate(check.spec.policy.acknowledge):
        if rule_id in check.acknowledged:
            continue
        path = ("policy", "acknowledge", i)
        def unacknowledged(t: Term, path: PathKey = path) -> str:
            return f"{t(path)} is not needed: the environment has no such warning"
        check.report([path], unacknowledged)


# The ids `policy.allow` and `policy.acknowledge` accept (the loader passes them to the models' validation).
ALLOWABLE: tuple[str, ...] = tuple(rule.id for rule in RULES.values() if rule.production_only)
ACKNOWLEDGEABLE: tuple[str, ...] = tuple(r.id for r in RULES.values() if r.level == "warning" and r.stage == "policy"
                                         and r is not policy_allow_unused)


def hint_for(problem: Problem) -> str | None:
    """The fix hint of a problem: its own, or its rule's."""
    own = getattr(problem, "hint", None)
    if own:
        return own
    rule = RULES.get(problem.rule or "")
    return rule.hint if rule else None


def as_dict(problem: Problem) -> dict:
    """JSON form of any problem (finding or load-time), for CI annotations."""
    data = problem.as_dict()
    data["hint"] = hint_for(problem)
    data["related"] = [str(loc) for loc in problem.related]
    return data


def check_environment(env: Environment) -> list[Finding]:
    """Policy findings of one environment, in rule order."""
    check = Check(env)
    for rule in RULES.values():
        if rule.check is not None:
            check.rule = rule
            rule.check(check)
    return check.findings


def check(environments: Iterable[Environment]) -> list[Finding]:
    """Findings of every environment, in environment order then rule order."""
    return [finding for env in environments for finding in check_environment(env)]
