"""Make N synthetic but realistic fraud-api-style environments for the benchmark.

Deterministic (seeded): the same N always gives the same files. The mix follows what a platform repo
holds: services in several regions and tiers, shared partials (a base per service family, a region
partial with its receivers, an nginx partial for sticky cookies), affinity on and off, 2-6 upstream
servers, per-environment alert overrides and extra receivers. Every environment is valid and sized so
its fleet fits its database, so the benchmark measures the success path that CI runs every time.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

TIERS = ("development", "staging", "production")
REGIONS = ("eu", "us", "ap")
FAMILIES = ("fraud", "payments", "ledger", "risk")
TIER_DEFAULTS = {  # (min, max, base pool) as the tier defaults in infragen/models/tiers.py; used to size max_connections
    "development": (1, 2, 5),
    "staging": (2, 5, 10),
    "production": (3, 10, 20),
}

PYPROJECT = """\
[tool.infragen]
environments = "environments"
output = "output"
"""


def _partials() -> dict[str, str]:
    files = {}
    for family in FAMILIES:
        files[f"_{family}"] = f"""\
# Shared by every {family} service.
rate_limit: {{requests: 100, window_seconds: 60}}
load_balancing:
  nginx_version: "1.22"
  session_affinity: {{enabled: true, cookie: session_id, ttl: 3h}}
  keepalive: 32
alerts:
  runbook_url: https://runbooks.example.com/{family}
  labels: {{team: {family}}}
"""
    for region in REGIONS:
        files[f"_region-{region}"] = f"""\
# Alert routing for {region}: on-call pager (production pages: tier default), team Slack channel.
alertmanager:
  receivers:
    oncall:
      pagerduty: {{routing_key_secret: {{name: pagerduty-{region}, key: routing-key}}}}
    team-slack:
      slack: {{channel: "#alerts-{region}", api_url_secret: {{name: slack-{region}, key: api-url}}}}
  routes: {{warning: team-slack, info: team-slack}}
  default_receiver: team-slack
monitoring:
  labels: {{release: prometheus-{region}}}
rollout:
  prometheus_url: http://prometheus-{region}.monitoring.svc:9090
"""
    files["_nginx-sticky"] = """\
# Newer nginx: session affinity through nginx's own routing cookie.
load_balancing:
  nginx_version: "1.29.6"
  session_affinity: {routing_cookie: route}
"""
    return files


def _environment(i: int, rng: random.Random) -> tuple[str, str]:
    family = FAMILIES[i % len(FAMILIES)]
    tier = TIERS[(i // len(FAMILIES)) % len(TIERS)]
    region = REGIONS[(i // (len(FAMILIES) * len(TIERS))) % len(REGIONS)]
    service = f"{family}-svc{i // 36:03d}"
    name = f"{service}-{tier[:4]}-{region}"
    low, high, base = TIER_DEFAULTS[tier]
    extends = [f"_{family}", f"_region-{region}"]
    lines = []
    affinity_mode = rng.choice(("hash", "hash", "sticky", "off"))
    if affinity_mode == "sticky":
        extends.append("_nginx-sticky")
    lines.append(f"# {service} {tier} in {region}.")
    lines.append(f"extends: [{', '.join(extends)}]")
    lines.append(f"tier: {tier}")
    lines.append("service:")
    lines.append(f"  name: {service}")
    lines.append(f"  namespace: {name}")
    if rng.random() < 0.3:
        lines.append(f"  port: {rng.choice((8000, 8080, 9000))}")
    if tier != "development" and rng.random() < 0.5:
        low = low + rng.randint(0, 2)
        high = max(high, low) + rng.randint(0, 10)
        lines.append("autoscaling:")
        lines.append(f"  min_replicas: {low}")
        lines.append(f"  max_replicas: {high}")
        lines.append(f"  target_cpu_percent: {rng.choice((50, 60, 65, 70, 75))}")
        if rng.random() < 0.5:
            lines.append(f"  target_memory_percent: {rng.choice((60, 70, 75))}")  # below throttling's 80
    if tier == "production" and rng.random() < 0.3:
        # A percentage that evicts one pod at a time at min replicas 3-5, as the production-pdb rule asks
        lines.append('disruption_budget: {max_unavailable: "20%"}')
    load = rng.choice((1.0, 1.0, 1.25, 1.5, 2.0))
    pool = math.ceil(base * load)
    # The tier's rollout: blue-green in production runs three full stacks within a rollback window (the old one,
    # the active one, the preview one: infragen/models/capacity.py), the others add a 25% surge.
    peak = (3 * high if tier == "production" else high + math.ceil(high * 0.25)) * (pool + pool // 2)
    max_connections = max(100, math.ceil(peak / 0.9 / 100) * 100)
    lines.append("database:")
    if load != 1.0:
        lines.append(f"  load_estimate: {load}")
    lines.append(f"  max_connections: {max_connections}")
    if rng.random() < 0.2:
        lines.append("rate_limit:")
        lines.append(f"  requests: {rng.choice((60, 120, 300, 600))}")
        lines.append('  key: "$remote_addr"')  # a non-default key, and not one a client can spoof
    lines.append("load_balancing:")
    method = "least_conn"
    if affinity_mode == "off":
        lines.append("  session_affinity: {enabled: false}")
        method = rng.choice(('least_conn', 'round_robin', 'random'))
        lines.append(f"  method: {method}")
    lines.append("  servers:")
    octet = i % 250 + 1
    for s in range(rng.randint(2, 6)):
        if rng.random() < 0.2:
            lines.append(f'    - {{address: "10.{octet}.{s}.11:30080", weight: {rng.randint(2, 5)}}}')
        else:
            lines.append(f'    - "10.{octet}.{s}.11:30080"')
    overrides = []
    error_rate = None
    if rng.random() < 0.4:
        error_rate = rng.choice((0.01, 0.02, 0.1))
        overrides.append(f"  error_rate: {{threshold: {error_rate}, for: 10m}}")
    if rng.random() < 0.3:
        overrides.append(f"  latency_p95: {{threshold_seconds: {rng.choice((0.5, 2, 3))}}}")
    if tier == "production" and rng.random() < 0.5:
        overrides.append("  db_pool_utilization: {threshold: 0.85, for: 2m, severity: critical}")
    if overrides:
        lines.append("alerts:")
        lines.extend(overrides)
    if rng.random() < 0.25:
        # An extra receiver for this service's own channel, routed for warnings.
        lines.append("alertmanager:")
        lines.append("  receivers:")
        lines.append(f"    {service}-slack:")
        lines.append(f'      slack: {{channel: "#{service}", api_url_secret: {{name: slack-{service}, key: api-url}}}}')
        lines.append(f"  routes: {{warning: {service}-slack}}")
    if tier != "development" and error_rate is not None and error_rate < 0.05:
        lines.append(f"rollout: {{gates: {{max_error_rate: {error_rate}}}}}")  # no looser than the alert it mirrors
    # Kept knowingly, as the shipped environments do: canary steps of 5% on a few replicas (staging), and
    # affinity or least_conn through NodePorts (every server is one).
    nodeport = affinity_mode != "off" or method == "least_conn"
    acknowledged = (["canary-step-share"] if tier == "staging" else []) + (["affinity-through-nodeport"] if nodeport else [])
    if acknowledged:
        lines.append(f"policy: {{acknowledge: [{', '.join(acknowledged)}]}}")
    return name, "\n".join(lines) + "\n"


def write_fleet(root: Path, count: int, seed: int = 6) -> list[str]:
    """Write pyproject.toml and environments/ for `count` environments below `root`; return their names."""
    rng = random.Random(seed)
    env_dir = root / "environments"
    env_dir.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT)
    for stem, text in _partials().items():
        (env_dir / f"{stem}.yaml").write_text(text)
    names = []
    for i in range(count):
        name, text = _environment(i, rng)
        (env_dir / f"{name}.yaml").write_text(text)
        names.append(name)
    return names
