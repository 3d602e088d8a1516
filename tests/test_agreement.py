"""Artifacts that carry the same number agree, for any settings: each reads it from the same derived value of
the environment, so no policy rule re-reads rendered text to compare them. This test does, once, here.

app.env repeats the HPA's replica range and CPU target, the pool that DatabasePoolNearExhaustion divides by,
the rate nginx enforces and the burst that makes nginx admit what the app's bucket admits, and the body sizes
nginx refuses above: the application and its infrastructure must never disagree on them.
"""

from __future__ import annotations

import re
from fractions import Fraction

import yaml
from conftest import FIXTURES, SHIPPED_ENVIRONMENTS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infragen.load import Loader
from infragen.render import render_environment


def agreement(files: dict[str, str], name: str) -> dict[str, tuple[object, object]]:
    """For each repeated number: (what app.env says, what the other artifact says), read the way their
    consumers read them (YAML parsed, nginx's rate as requests per second)."""
    app = dict(line.split("=", 1) for line in files[f"{name}/app.env"].splitlines() if "=" in line and line[0] != "#")
    hpa = yaml.safe_load(files[f"{name}/kubernetes/hpa.yaml"])["spec"]
    cpu = next(m["resource"]["target"]["averageUtilization"] for m in hpa["metrics"] if m["resource"]["name"] == "cpu")
    rules = yaml.safe_load(files[f"{name}/prometheus/alerts.yaml"])["groups"][0]["rules"]
    pool_expr = next(r["expr"] for r in rules if r["alert"] == "DatabasePoolNearExhaustion")
    capacity = int(re.search(r"\} / ([0-9]+) >", pool_expr).group(1))
    count, unit = re.search(r"\brate=([0-9]+)r/([sm]);", files[f"{name}/nginx/upstream.conf"]).groups()
    location, server = files[f"{name}/nginx/location.conf"], files[f"{name}/nginx/server.conf"]
    burst = int(re.search(r"\bburst=([0-9]+)", location).group(1))
    uploads = re.findall(r"location = (\S+) \{\n\s+client_max_body_size ([0-9]+);", server)
    app_uploads = [(app[f"UPLOAD_{i}_PATH"], app[f"UPLOAD_{i}_MAX_BYTES"]) for i in range(1, 100) if f"UPLOAD_{i}_PATH" in app]
    return {
        "payload bytes": (int(app["MAX_PAYLOAD_BYTES"]), int(re.search(r"client_max_body_size ([0-9]+);", location).group(1))),
        "uploads": (app_uploads, uploads),
        "burst": (int(app["RATE_LIMIT_REQUESTS"]) - 1, burst),
        "min replicas": (int(app["K8S_MIN_REPLICAS"]), hpa["minReplicas"]),
        "max replicas": (int(app["K8S_MAX_REPLICAS"]), hpa["maxReplicas"]),
        "cpu target": (int(app["K8S_TARGET_CPU_PERCENT"]), cpu),
        "pool capacity": (int(app["DATABASE_POOL_SIZE"]) + int(app["DATABASE_POOL_OVERFLOW"]), capacity),
        "rate per second": (Fraction(int(app["RATE_LIMIT_REQUESTS"]), int(app["RATE_LIMIT_WINDOW_SECONDS"])),
                            Fraction(int(count), 1 if unit == "s" else 60)),
    }


def test_shipped_and_fixture_environments_agree() -> None:
    for directory in (SHIPPED_ENVIRONMENTS, FIXTURES / "environments"):
        loader = Loader(directory)
        for name in loader.names():
            env = loader.load(name)
            found = agreement(render_environment(env), name)
            if env.spec.rate_limit.burst is not None:
                del found["burst"]  # written: a deliberate edge (edge-stricter-than-app when below)
            for what, (app, other) in found.items():
                assert app == other, f"{directory.name}/{name}: {what}: app.env {app}, elsewhere {other}"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(low=st.integers(1, 50), extra=st.integers(0, 50), cpu=st.integers(1, 100),
       pool=st.one_of(st.none(), st.integers(1, 80)), overflow=st.one_of(st.none(), st.integers(0, 40)),
       load=st.sampled_from(["0.5", "1.0", "1.1", "2.5"]), rate=st.sampled_from([(100, 60), (10, 1), (30, 30), (7, 60)]))
def test_any_settings_agree(project, write_env, low, extra, cpu, pool, overflow, load, rate) -> None:
    database = f"load_estimate: {load}, max_connections: 100000"
    if pool is not None:
        database += f", pool_size: {pool}"
    if overflow is not None:
        database += f", max_overflow: {overflow}"
    write_env("staging", f"""\
        tier: staging
        service: {{name: billing-api}}
        autoscaling: {{min_replicas: {low}, max_replicas: {low + extra}, target_cpu_percent: {cpu}}}
        disruption_budget: {{max_unavailable: 1}}
        database: {{{database}}}
        rate_limit: {{requests: {rate[0]}, window_seconds: {rate[1]}}}
        load_balancing: {{servers: ["10.0.0.1:80", "10.0.0.2:80"]}}
        """)
    files = render_environment(Loader(project / "environments").load("staging"))
    for what, (app, other) in agreement(files, "staging").items():
        assert app == other, what


def test_no_artifact_names_another_service(project, write_env) -> None:
    write_env("staging", """\
        tier: staging
        service: {name: billing-api}
        load_balancing: {servers: ["10.0.0.1:80", "10.0.0.2:80"]}
        database: {max_connections: 1000}
        """)
    files = render_environment(Loader(project / "environments").load("staging"))
    for path, text in files.items():
        assert "fraud" not in text, path
    assert "# Read by billing-api at start-up" in files["staging/app.env"]
