"""Cross-artifact policy: rules about artifacts that are each valid but must fit together.

Every rule has a stable id, a level and a fix hint (`RULES`, documented in docs/policy.md). Two stages:

- `load`: checked while an environment is loaded, because without them an artifact cannot be written
  correctly at all (nginx would reject the upstream, Alertmanager the route) or a secret would leak. They
  are raised by the models (`rule_error`) or by `infragen.secrets`, and arrive as `InputError` problems
  carrying the rule id.
- `policy`: checked here on a loaded environment and its rendered files, before anything is written.

Each finding points at the value that causes it (in the environment file or the partial it came from) and
names the other values involved with their own locations. Production-tier rules may be turned into
warnings by an exception in the environment's own file: `policy: {allow: [rule-id]}`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Iterable, Literal, Mapping, get_args


from .errors import Finding, Level, Location, Problem, failing  # noqa: F401 - Finding, failing re-exported
from .explain import format_value, origin_of, own_file
from .models.environment import Environment
from .models.settings import AllowableRule
from .models.types import format_duration, percent_value

PathKey = tuple[Any, ...]

# The artifacts are read back from their text, not through a YAML parser: they are infragen's own block-style
# output, and building hpa.yaml and alerts.yaml into Python objects for four numbers cost more per environment
# than rendering every file. A value not found where the template puts it reads as None: a mismatch, reported.
_HPA_MIN = re.compile(r"^  minReplicas: ([0-9]+)$", re.MULTILINE)
_HPA_MAX = re.compile(r"^  maxReplicas: ([0-9]+)$", re.MULTILINE)
_HPA_CPU = re.compile(r"^ +name: cpu\n +target:\n +type: Utilization\n +averageUtilization: ([0-9]+)$", re.MULTILINE)
_NGINX_RATE = re.compile(r"^limit_req_zone\s.*\brate=([0-9]+)r/([sm]);", re.MULTILINE)


def _number(pattern: re.Pattern[str], text: str) -> int | None:
    match = pattern.search(text)
    return int(match.group(1)) if match else None


def _rule_expr(text: str, alert: str) -> str:
    """`expr` of one alert in a rendered rules file: the line after its `- alert:` line ("" if none)."""
    match = re.search(rf"^ +- alert: {re.escape(alert)}\n +expr: (.*)$", text, re.MULTILINE)
    if match is None:
        return ""
    scalar = match.group(1)
    if scalar.startswith("'") and scalar.endswith("'") and len(scalar) > 1:
        return scalar[1:-1].replace("''", "'")
    if scalar.startswith('"'):  # non-ASCII label values: let a YAML parser undo the escapes
        import yaml

        value = yaml.safe_load(scalar)
        return value if isinstance(value, str) else ""
    return scalar


@dataclass(frozen=True)
class Rule:
    id: str
    level: Level
    stage: Literal["load", "policy"]
    summary: str
    hint: str
    production_only: bool = False  # binds production-tier environments only; `policy.allow` may relax it


RULES: dict[str, Rule] = {rule.id: rule for rule in (
    Rule("inline-secret", "error", "load",
         "No secret (Slack webhook URL, PagerDuty key, token) is written in any settings file.",
         "put the secret in a Kubernetes Secret mounted as a file and name the file (slack.api_url_file, "
         "pagerduty.routing_key_file); the secret is in git history now: rotate it"),
    Rule("nginx-method-conflict", "error", "load",
         "One balancing method per upstream: with hash-based session affinity (nginx < 1.29.6) `method` cannot be set.",
         "remove load_balancing.method, disable session_affinity, or declare nginx_version >= 1.29.6 (sticky cookie)"),
    Rule("nginx-backup-conflict", "error", "load",
         "`backup` servers are not allowed with hash-based affinity or method random (nginx refuses the upstream).",
         "remove `backup: true`, disable session affinity / use another method, or declare nginx_version >= 1.29.6"),
    Rule("nginx-rate-not-integer", "error", "load",
         "The rate limit is a whole number of requests per second or per minute (`limit_req_zone rate=`).",
         "choose rate_limit.window_seconds dividing 60 (or a multiple of 60 that divides requests x 60), or adjust requests"),
    Rule("receiver-undefined", "error", "load",
         "Every severity's route and the default receiver name a receiver that is defined.",
         "define the receiver under alertmanager.receivers or route to an existing one"),
    Rule("pdb-blocks-drain", "error", "policy",
         "The PDB lets at least one pod be evicted at the HPA's minimum (percentages rounded up, as Kubernetes does).",
         "keep disruption_budget.min_available below autoscaling.min_replicas, or use max_unavailable >= 1"),
    Rule("fleet-exceeds-database", "error", "policy",
         "(max_replicas + surge pods) x (pool + overflow) fits in the database's max_connections less the reserve.",
         "raise database.max_connections, or lower max_replicas, the pool, or rollout.max_surge"),
    Rule("receiver-unused", "warning", "policy",
         "Every defined receiver is used by a severity route or as the default receiver.",
         "route a severity to it (alertmanager.routes.<severity>) or remove it"),
    Rule("nginx-single-server", "warning", "policy",
         "Session affinity or least_conn over a single upstream server balances nothing.",
         "list at least two upstream servers (pod or node addresses, not one Service name), or turn session affinity "
         "off and set load_balancing.method: round_robin"),
    Rule("rate-limit-key-spoofable", "warning", "policy",
         "The rate-limit key is not a request header the client chooses.",
         "keep rate_limit.key: $binary_remote_addr and configure nginx's real_ip module (set_real_ip_from, "
         "real_ip_header) so it holds the client address behind a load balancer"),
    Rule("prometheus-rate-window", "error", "policy",
         "Every rate()/increase() window is at least 4 x the scrape interval.",
         "raise alerts.rate_window to at least 4 x alerts.scrape_interval"),
    Rule("production-min-replicas", "error", "policy",
         "A production-tier environment runs at least 2 replicas.",
         "set autoscaling.min_replicas >= 2, or add production-min-replicas to policy.allow in this file, saying why",
         production_only=True),
    Rule("production-pdb", "error", "policy",
         "A production-tier environment has a PDB that keeps at least one pod available at the HPA's minimum.",
         "use disruption_budget.min_available >= 1 (below min_replicas), or a max_unavailable below min_replicas; "
         "or add production-pdb to policy.allow in this file, saying why",
         production_only=True),
    Rule("production-paging", "error", "policy",
         "A production-tier environment routes critical alerts to a paging (PagerDuty) receiver, and has a critical alert.",
         "route alertmanager.routes.critical to a receiver with pagerduty, and keep at least one alert at severity "
         "critical; or add production-paging to policy.allow in this file, saying why",
         production_only=True),
    Rule("policy-allow-unused", "warning", "policy",
         "Every exception in policy.allow is needed: the rule applies to the environment and would fail without it.",
         "remove the entry from policy.allow"),
    Rule("app-env-mismatch", "error", "policy",
         "app.env agrees with the HPA (replicas, CPU target), the pool (alert capacity) and the nginx rate limit.",
         "the artifacts are rendered from one setting, so this is an infragen bug: report it; never edit generated files"),
)}

ALLOWABLE = tuple(rule.id for rule in RULES.values() if rule.production_only)
assert set(ALLOWABLE) == set(get_args(AllowableRule)), "settings.AllowableRule must list the production-only rules"




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


# --- checking ------------------------------------------------------------------------------------------

Term = Callable[..., str]


class _Checker:
    def __init__(self, env: Environment, files: Mapping[str, str]) -> None:
        self.env = env
        self.spec = env.spec
        self.files = files
        self.findings: list[Finding] = []
        self.env_file = next((loc.file for loc in env.locations.values() if loc.file and own_file(env, loc)), env.source)
        self.allow_used: set[str] = set()

    # values and where they came from
    def value(self, path: PathKey) -> Any:
        current: Any = self.spec
        for part in path:
            if isinstance(current, dict):
                current = current[part]
            elif isinstance(current, list):
                current = current[part]
            else:
                fields = type(current).model_fields
                name = next((n for n, f in fields.items() if (f.alias or n) == part), part)
                current = getattr(current, name)
        return current

    def report(self, rule_id: str, paths: list[PathKey], compose: Callable[[Term], str], hint: str | None = None) -> None:
        """Add a finding at the first of `paths` written in a file; `compose(term)` builds the message, where
        `term(path)` names a value: bare for the value pointed at, `field value (location)` for the others."""
        locations = {path: origin_of(self.env, path) for path in paths}
        primary = next((p for p in paths if locations[p].file is not None), paths[0])

        def term(path: PathKey, shown: str | None = None) -> str:
            text = shown if shown is not None else format_value(self.value(path))
            where = locations.get(path) or origin_of(self.env, path)
            if path == primary:
                return text if where.file is not None else f"{text} ({where})"
            return f"{'.'.join(str(p) for p in path)} {text} ({where})"

        message = compose(term)
        rule = RULES[rule_id]
        level = rule.level
        if rule.production_only:
            level, message = self._exception(rule_id, level, message)
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
            return "warning", f"{message}; allowed by the exception at {where}"
        return level, (f"{message}; the exception at {where} does not count: an exception belongs in the environment's "
                       "own file")

    # rules, in RULES order
    def pdb_blocks_drain(self) -> None:
        a, budget = self.spec.autoscaling, self.spec.disruption_budget
        replicas = a.min_replicas
        mr = ("autoscaling", "min_replicas")
        if budget.min_available is not None:
            ma = ("disruption_budget", "min_available")
            required = percent_value(budget.min_available, replicas, round_up=True)
            if required < replicas:
                return
            hint = (f"set disruption_budget.min_available to at most {replicas - 1}, or use max_unavailable: 1"
                    if replicas > 1 else "with one replica use disruption_budget.max_unavailable: 1 (or run 2 replicas)")
            if isinstance(budget.min_available, str):
                self.report("pdb-blocks-drain", [ma, mr], lambda t: (
                    f"{t(ma)} of {t(mr)} is {required} pods (Kubernetes rounds up), every one of them: "
                    "every node drain would block"), hint)
            else:
                self.report("pdb-blocks-drain", [ma, mr], lambda t: f"{t(ma)} >= {t(mr)}: every node drain would block", hint)
        else:
            mu = ("disruption_budget", "max_unavailable")
            assert budget.max_unavailable is not None
            if percent_value(budget.max_unavailable, replicas, round_up=True) >= 1:
                return
            self.report("pdb-blocks-drain", [mu], lambda t: f"{t(mu)} lets no pod be evicted: every node drain would block",
                        "set disruption_budget.max_unavailable to at least 1")

    def fleet_exceeds_database(self) -> None:
        env, db, a = self.env, self.spec.database, self.spec.autoscaling
        usable, peak = db.usable_connections, env.peak_connections
        if peak <= usable:
            return
        mc, res = ("database", "max_connections"), ("database", "reserved_connections_percent")
        maxr, surge = ("autoscaling", "max_replicas"), ("rollout", "max_surge")
        pool_paths = [("database", "pool_size")] if db.pool_size is not None else [("database", "base_pool_size"),
                                                                                    ("database", "load_estimate")]
        overflow_paths = [("database", "max_overflow")] if db.max_overflow is not None else []
        paths = [mc, maxr, *pool_paths, *overflow_paths, surge, res]

        def compose(t: Term) -> str:
            if db.pool_size is not None:
                pool = t(("database", "pool_size"))
            else:
                pool = f"pool {env.pool_size} = ceil({t(pool_paths[0])} x {t(pool_paths[1])})"
            overflow = t(("database", "max_overflow")) if overflow_paths else f"overflow {env.pool_overflow} (pool // 2)"
            return (f"{t(mc)} leaves {usable} usable after {t(res, f'{db.reserved_connections_percent}%')} reserve, "
                    f"but the fleet at peak opens {peak}: ({t(maxr)} + {env.surge_pods} surge pods from {t(surge)}) x "
                    f"({pool} + {overflow}) connections per pod; a scale-up during a rollout would exhaust the database")

        needed = -(-peak * 100 // (100 - db.reserved_connections_percent))
        # The surge follows max_replicas when it is a percentage, so search rather than divide. Peak connections
        # grow with n, so bisect: a linear walk down from max_replicas 2147483647 would never finish.
        def fits(n: int) -> bool:
            return (n + percent_value(self.spec.rollout.max_surge, n, round_up=True)) * env.pool_capacity <= usable

        low, high, fitting = a.min_replicas, a.max_replicas - 1, None
        while low <= high:
            mid = (low + high) // 2
            if fits(mid):
                fitting, low = mid, mid + 1
            else:
                high = mid - 1
        hint = (f"raise database.max_connections to at least {needed}"
                + (f", or lower autoscaling.max_replicas to {fitting}" if fitting is not None else "")
                + ", or shrink the pool (database.pool_size / max_overflow) or rollout.max_surge")
        self.report("fleet-exceeds-database", paths, compose, hint)

    def receiver_unused(self) -> None:
        am = self.spec.alertmanager
        used = {name for _, name in am.route_references()}
        for name in sorted(am.receivers):
            if name in used:
                continue
            path = ("alertmanager", "receivers", name)
            self.report("receiver-unused", [path, ("alertmanager", "routes")], lambda t, name=name: (
                f"receiver {name!r} is defined but no severity route nor default_receiver uses it: it never receives an alert"))

    def nginx_single_server(self) -> None:
        lb = self.spec.load_balancing
        primaries = [i for i, server in enumerate(lb.servers) if not server.backup]
        affinity = lb.session_affinity.enabled
        if len(primaries) != 1 or not (affinity or lb.effective_method == "least_conn"):
            return
        server = ("load_balancing", "servers", primaries[0])
        if affinity:
            cause, what, shown = ("load_balancing", "session_affinity", "enabled"), "session affinity", "true"
        else:
            cause, what, shown = ("load_balancing", "method"), "least_conn", lb.effective_method
        self.report("nginx-single-server", [server, cause], lambda t: (
            f"{t(server, lb.servers[primaries[0]].address)} is the only server, so {what} ({t(cause, shown)}) balances "
            "nothing; behind one Kubernetes Service name kube-proxy picks the pod, not nginx"))

    def rate_limit_key_spoofable(self) -> None:
        key = self.spec.rate_limit.key
        if not (key.startswith("$http_") or key.startswith("$cookie_") or key.startswith("$arg_")):
            return
        path = ("rate_limit", "key")
        self.report("rate-limit-key-spoofable", [path], lambda t: (
            f"{t(path, key)} is sent by the client: a client that changes it gets a fresh limit on every request, "
            "and nginx does not count requests where it is empty"))

    def prometheus_rate_window(self) -> None:
        alerts = self.spec.alerts
        if alerts.rate_window >= 4 * alerts.scrape_interval:
            return
        rw, si = ("alerts", "rate_window"), ("alerts", "scrape_interval")
        self.report("prometheus-rate-window", [rw, si], lambda t: (
            f"{t(rw, format_duration(alerts.rate_window))} is shorter than 4 x {t(si, format_duration(alerts.scrape_interval))} "
            f"= {format_duration(4 * alerts.scrape_interval)}: rate() needs about 4 scrapes per window, or one missed "
            "scrape hides or fakes an alert"),
            f"set alerts.rate_window to at least {format_duration(4 * alerts.scrape_interval)}")

    def production(self) -> None:
        if self.spec.tier != "production":
            return
        a = self.spec.autoscaling
        mr = ("autoscaling", "min_replicas")
        if a.min_replicas < 2:
            self.report("production-min-replicas", [mr, ("tier",)], lambda t: (
                f"{t(mr)} in a production-tier environment: with one pod every restart or eviction is an outage; "
                "production runs at least 2"))
        self._production_pdb()
        self._production_paging()

    def _production_pdb(self) -> None:
        budget, replicas = self.spec.disruption_budget, self.spec.autoscaling.min_replicas
        mr = ("autoscaling", "min_replicas")
        if budget.min_available is not None:
            kept = percent_value(budget.min_available, replicas, round_up=True)
            field = ("disruption_budget", "min_available")
        else:
            assert budget.max_unavailable is not None
            kept = replicas - percent_value(budget.max_unavailable, replicas, round_up=True)
            field = ("disruption_budget", "max_unavailable")
        if kept >= 1:
            return
        self.report("production-pdb", [field, mr], lambda t: (
            f"{t(field)} keeps no pod available at {t(mr)}: the PDB protects nothing, a drain may evict every pod at once"))

    def _production_paging(self) -> None:
        am = self.spec.alertmanager
        route = ("alertmanager", "routes", "critical")
        receiver = am.receivers.get(am.routes.critical)
        if receiver is not None and receiver.pagerduty is None:
            target = ("alertmanager", "receivers", am.routes.critical)
            self.report("production-paging", [route, target], lambda t: (
                f"critical alerts go to {t(route)}, which has no pagerduty: nothing pages on-call in production"))
            return
        critical = [key for key, alert in self.spec.alerts.items() if alert.severity == "critical"]
        if not critical:
            paths = [("alerts", key, "severity") for key, _ in self.spec.alerts.items()]
            paths.sort(key=lambda p: origin_of(self.env, p).file is None)  # point at a severity someone wrote
            self.report("production-paging", paths[:1] + [route], lambda t: (
                f"no alert has severity critical (this one is {t(paths[0])}), so {t(route)} never pages on-call"))

    def allow_unused(self) -> None:
        for i, rule_id in enumerate(self.spec.policy.allow):
            if rule_id in self.allow_used:
                continue
            path = ("policy", "allow", i)
            why = (f"this is a {self.spec.tier}-tier environment, where the rule does not apply"
                   if self.spec.tier != "production" else "the rule holds without it")
            self.report("policy-allow-unused", [path], lambda t, why=why: f"{t(path)} is not needed: {why}")

    def app_env_mismatch(self) -> None:
        name, env = self.env.name, self.env
        app_text = self.files.get(f"{name}/app.env")
        if app_text is None:
            return  # not rendered (a caller checking settings only)
        app = dict(line.split("=", 1) for line in app_text.splitlines() if "=" in line and not line.startswith("#"))

        def number(key: str) -> int | None:
            text = app.get(key, "")
            return int(text) if text.isdigit() else None

        hpa_text = self.files[f"{name}/kubernetes/hpa.yaml"]
        min_replicas, max_replicas, cpu = (_number(p, hpa_text) for p in (_HPA_MIN, _HPA_MAX, _HPA_CPU))
        zone = _NGINX_RATE.search(self.files[f"{name}/nginx/upstream.conf"])
        nginx_rate = Fraction(int(zone.group(1)), 1 if zone.group(2) == "s" else 60) if zone else None
        requests, window = number("RATE_LIMIT_REQUESTS"), number("RATE_LIMIT_WINDOW_SECONDS")
        app_rate = Fraction(requests, window) if requests is not None and window else None
        pool_expr = _rule_expr(self.files[f"{name}/prometheus/alerts.yaml"], "DatabasePoolNearExhaustion")
        capacity = re.search(r"/ ([0-9]+) >", pool_expr)
        alert_capacity = int(capacity.group(1)) if capacity else None

        # (setting it comes from, app.env keys, the other side, its value, whether they agree)
        checks: list[tuple[PathKey, tuple[str, ...], str, Any, bool]] = [
            (("autoscaling", "min_replicas"), ("K8S_MIN_REPLICAS",), "kubernetes/hpa.yaml minReplicas",
             min_replicas, number("K8S_MIN_REPLICAS") == min_replicas),
            (("autoscaling", "max_replicas"), ("K8S_MAX_REPLICAS",), "kubernetes/hpa.yaml maxReplicas",
             max_replicas, number("K8S_MAX_REPLICAS") == max_replicas),
            (("autoscaling", "target_cpu_percent"), ("K8S_TARGET_CPU_PERCENT",),
             "kubernetes/hpa.yaml cpu averageUtilization", cpu, number("K8S_TARGET_CPU_PERCENT") == cpu),
            (("database", "pool_size"), ("DATABASE_POOL_SIZE",), "the pool size", env.pool_size,
             number("DATABASE_POOL_SIZE") == env.pool_size),
            (("database", "max_overflow"), ("DATABASE_POOL_OVERFLOW",), "the pool overflow", env.pool_overflow,
             number("DATABASE_POOL_OVERFLOW") == env.pool_overflow),
            # Against the model's capacity, not app.env's sum: a wrong DATABASE_POOL_SIZE is reported once, above.
            (("database", "max_overflow"), ("DATABASE_POOL_SIZE", "DATABASE_POOL_OVERFLOW"),
             "the capacity in prometheus/alerts.yaml DatabasePoolNearExhaustion", alert_capacity,
             alert_capacity == env.pool_capacity),
            (("rate_limit", "requests"), ("RATE_LIMIT_REQUESTS", "RATE_LIMIT_WINDOW_SECONDS"),
             "nginx/upstream.conf limit_req_zone rate", zone.group(0).split("rate=")[1].rstrip(";") if zone else None,
             app_rate is not None and app_rate == nginx_rate),
        ]
        for path, keys, other, other_value, agree in checks:
            if agree:
                continue
            mine = ", ".join(f"{key}={app.get(key, '(missing)')}" for key in keys)
            self.report("app-env-mismatch", [path], lambda t, mine=mine, other=other, other_value=other_value: (
                f"app.env says {mine} but {other} is {other_value}: the application and its infrastructure disagree"))

    def run(self) -> list[Finding]:
        self.pdb_blocks_drain()
        self.fleet_exceeds_database()
        self.receiver_unused()
        self.nginx_single_server()
        self.rate_limit_key_spoofable()
        self.prometheus_rate_window()
        self.production()
        self.allow_unused()
        self.app_env_mismatch()
        return self.findings


def check_environment(env: Environment, files: Mapping[str, str] | None = None) -> list[Finding]:
    """Policy findings of one environment. `files` are its rendered artifacts (rendered here when omitted)."""
    if files is None:
        from .render import render_environment

        files = render_environment(env)
    return _Checker(env, files).run()


def check(environments: Iterable[Environment], files: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings of every environment, in environment order then rule order."""
    return [finding for env in environments for finding in check_environment(env, files)]


