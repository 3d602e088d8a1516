"""Property tests (issue 5).

1. Any environment the models accept renders artifacts that the real consumers accept: nginx -t, promtool
   check rules, amtool check-config, kubernetes-validate, and the env-file rules of docker and compose.
2. Random mutations of valid environment files (deleted, duplicated or swapped lines, retyped values,
   garbage bytes, deep nesting, truncation) end in exit 0 or exit 2 with one line per problem, never a
   traceback, and a failed build leaves output/ untouched.

Example counts are modest so the suite stays quick on two cores; INFRAGEN_HYPOTHESIS_EXAMPLES=500 (or the
"deep" profile via HYPOTHESIS_PROFILE=infragen-deep) runs longer.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from artifact_checks import check_all, nginx_installed_version
from click.testing import CliRunner
from conftest import SHIPPED_ENVIRONMENTS, chdir, files_under
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from infragen.cli import cli
from infragen.errors import InputError
from infragen.load import Loader
from infragen.render import render_environment

EXAMPLES = int(os.environ.get("INFRAGEN_HYPOTHESIS_EXAMPLES", "0")) or None
settings.register_profile("infragen", max_examples=EXAMPLES or 40, deadline=None, derandomize=False,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("infragen-deep", max_examples=EXAMPLES or 500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "infragen")


# --- strategies: environments near and across the models' limits ------------------------------------

label = st.from_regex(r"[a-z]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
small = st.integers(min_value=-2, max_value=40)
big = st.one_of(small, st.integers(min_value=0, max_value=2**40))
duration = st.one_of(
    st.builds(lambda n, u: f"{n}{u}", st.integers(0, 400), st.sampled_from("smhdw")),
    st.builds(lambda n: f"{n}w", st.integers(0, 10**7)),  # beyond what Prometheus can represent
    st.sampled_from(["0s", "1h30m", "2w3d", "5", "5min", ""]),
)
percent = st.integers(0, 120).map(lambda n: f"{n}%")
ratio = st.floats(min_value=-0.1, max_value=1.1, allow_nan=False)
server = st.builds(lambda host, port: f"{host}:{port}",
                   st.one_of(st.ip_addresses(v=4).map(str), st.ip_addresses(v=6).map(lambda a: f"[{a}]")),
                   st.integers(1, 70000))
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
label_name = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,10}", fullmatch=True)


def maybe(**fields: st.SearchStrategy) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({}, optional=fields)


policy = st.fixed_dictionaries({"type": st.sampled_from(["Pods", "Percent"]), "value": st.integers(1, 200),
                                "period_seconds": st.integers(1, 1800)})
alert = maybe(**{"for": duration, "severity": st.sampled_from(["critical", "warning", "info"])})

environment = st.fixed_dictionaries(
    {
        "tier": st.sampled_from(["development", "staging", "production"]),
        "service": st.fixed_dictionaries({"name": label}, optional={
            "namespace": label, "port": st.integers(1, 65535),
            "selector": st.dictionaries(st.sampled_from(["app", "app.kubernetes.io/name", "tier"]), label, min_size=1, max_size=2)}),
        "load_balancing": st.fixed_dictionaries({"servers": st.lists(st.one_of(server, st.fixed_dictionaries(
            {"address": server}, optional={"weight": st.integers(1, 1000), "max_fails": st.integers(0, 1000),
                                           "fail_timeout": duration, "backup": st.booleans()})),
            min_size=1, max_size=3)}, optional={
            "nginx_version": st.sampled_from(["1.18", "1.22", "1.25.3", "1.29.6", "1.30", "2.0"]),
            "method": st.sampled_from(["least_conn", "round_robin", "random"]),
            "session_affinity": maybe(enabled=st.booleans(), cookie=st.from_regex(r"[A-Za-z0-9_]{1,10}", fullmatch=True),
                                      routing_cookie=st.from_regex(r"[A-Za-z0-9_]{1,10}", fullmatch=True), ttl=duration),
            "keepalive": st.integers(0, 4096), "max_fails": st.integers(0, 1000), "fail_timeout": duration,
            "zone_size": st.sampled_from(["64k", "1m", "512k"])}),
    },
    optional={
        "autoscaling": maybe(min_replicas=big, max_replicas=big, target_cpu_percent=st.integers(1, 100),
                             target_memory_percent=st.integers(1, 100),
                             scale_up_stabilization_seconds=st.integers(0, 3600),
                             scale_down_stabilization_seconds=st.integers(0, 3600),
                             scale_up_policies=st.lists(policy, min_size=1, max_size=2),
                             scale_down_policies=st.lists(policy, min_size=1, max_size=2),
                             scale_up_select_policy=st.sampled_from(["Max", "Min", "Disabled"])),
        "disruption_budget": st.one_of(st.fixed_dictionaries({"min_available": st.one_of(small, percent)}),
                                       st.fixed_dictionaries({"max_unavailable": st.one_of(small, percent)})),
        "database": maybe(base_pool_size=st.integers(1, 100), load_estimate=st.floats(0.1, 5), pool_size=st.integers(1, 200),
                          max_overflow=st.integers(0, 100), max_connections=st.integers(1, 100000),
                          reserved_connections_percent=st.integers(0, 90)),
        "rate_limit": maybe(requests=st.integers(1, 10000), window_seconds=st.sampled_from([1, 2, 5, 7, 60, 3600]),
                            burst=st.integers(0, 1000), nodelay=st.booleans(), status_code=st.integers(400, 599),
                            key=st.sampled_from(["$binary_remote_addr", "$http_x_forwarded_for", "$cookie_x"]),
                            zone_size=st.sampled_from(["10m", "1m", "999999k"])),
        "alerts": maybe(error_rate=alert, latency_p95=alert, db_pool_utilization=alert, rate_limited=alert,
                        rate_window=duration, scrape_interval=duration,
                        labels=st.dictionaries(label_name, text, max_size=2),
                        runbook_url=st.sampled_from(["https://runbooks.example.com/x", "http://r:8080/a/b/"])),
        "alertmanager": maybe(group_by=st.lists(st.one_of(label_name, st.just("...")), min_size=1, max_size=3),
                              group_wait=duration, group_interval=duration, repeat_interval=duration),
        "rollout": maybe(max_surge=st.one_of(small, percent)),
    },
)


@contextlib.contextmanager
def project_dir():
    with tempfile.TemporaryDirectory(prefix="infragen-prop-") as tmp:
        yield Path(tmp)


@pytest.mark.slow  # generated environments through the real tools
@settings(settings.get_profile(PROFILE))
@given(data=environment)
@pytest.mark.tools
def test_any_accepted_environment_renders_artifacts_the_real_tools_accept(data: dict[str, Any]) -> None:
    with project_dir() as root:
        (root / "environments").mkdir()
        (root / "environments/prop.yaml").write_text(yaml.dump(data, Dumper=yaml.CSafeDumper), encoding="utf-8")
        try:
            env = Loader(root / "environments").load("prop")
        except InputError as exc:
            # Rejected is a fine outcome, provided the user is told why, one line per problem.
            assert exc.problems and all(p.format() and "\n" not in p.format() for p in exc.problems)
            event("rejected")
            return
        event("accepted")
        # nginx -t can only judge files meant for the installed nginx or older (sticky needs 1.29.6).
        installed = nginx_installed_version()
        check_all(render_environment(env), nginx=installed is None or env.spec.load_balancing.version <= installed)


# --- mutations of real environment files ----------------------------------------------------------------

SOURCES = {p.name: p.read_bytes() for p in sorted(SHIPPED_ENVIRONMENTS.glob("*.yaml"))}
SUMMARY = re.compile(r"^infragen: (\d+) problems?; nothing was written$")
PROBLEM = re.compile(r"^(environments/[^:]+(:\d+(:\d+)?)?|output/[^:]+): ")
REPLACEMENTS = [b"true", b"on", b"1", b"-1", b"0", b"1.5", b"1e999", b"010", b"1:30", b"null", b"~", b"[]", b"{}",
                b'"x"', b"'5m'", b"5m", b"[1, [2, [3]]]", b"{a: {b: c}}", b"&a x", b"*a", b"!!binary eA==", b"|\n  x",
                b"\"\xc3\xa9\\n;{}#$\"", b"\xff\xfe", b"\t", b"- x", b"? x"]


@st.composite
def mutated(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SOURCES)))
    lines = SOURCES[name].split(b"\n")
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["delete", "duplicate", "swap", "retype", "garbage", "nest", "truncate", "indent"]))
        i = draw(st.integers(0, max(len(lines) - 1, 0)))
        if kind == "delete" and lines:
            del lines[i]
        elif kind == "duplicate" and lines:
            lines.insert(i, lines[i])
        elif kind == "swap" and len(lines) > 1:
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif kind == "retype" and lines and b":" in lines[i]:
            head = lines[i].split(b":", 1)[0]
            lines[i] = head + b": " + draw(st.sampled_from(REPLACEMENTS))
        elif kind == "garbage" and lines:
            junk = draw(st.binary(min_size=1, max_size=8))
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + junk + lines[i][at:]
        elif kind == "nest":
            depth = draw(st.sampled_from([5, 40, 5000]))
            lines.insert(i, b"deep: " + b"[" * depth + b"]" * depth)
        elif kind == "truncate":
            lines = lines[:i]
        elif kind == "indent" and lines:
            lines[i] = b" " * draw(st.integers(1, 3)) + lines[i]
    return name, b"\n".join(lines)


@pytest.fixture(scope="module")
def built_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("template")
    shutil.copytree(SHIPPED_ENVIRONMENTS, root / "environments")
    with chdir(root):
        assert CliRunner().invoke(cli, ["build"]).exit_code == 0
    return root


@pytest.mark.slow  # generated mutations, a build each
@settings(settings.get_profile(PROFILE), max_examples=(EXAMPLES or 100) if PROFILE == "infragen" else None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(change=mutated())
def test_mutated_files_end_in_exit_0_or_2_and_failures_change_nothing(built_template: Path, change: tuple[str, bytes]) -> None:
    name, content = change
    with project_dir() as root:
        shutil.copytree(built_template / "environments", root / "environments")
        shutil.copytree(built_template / "output", root / "output")
        (root / "environments" / name).write_bytes(content)
        before = files_under(root / "output")
        with chdir(root):
            result = CliRunner().invoke(cli, ["build"])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 2), result.output
        event(f"exit {result.exit_code}")
        if result.exit_code == 2:
            lines = result.stderr.rstrip("\n").split("\n")
            summary = SUMMARY.match(lines[-1])
            assert summary and int(summary.group(1)) == len(lines) - 1, result.stderr
            for line in lines[:-1]:
                assert PROBLEM.match(line), f"problem without a file: {line!r}"
            assert files_under(root / "output") == before
