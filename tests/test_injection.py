"""No settings value can inject text into an artifact (issue 5).

Every string setting is found from the JSON Schema (so a new field is covered without touching this file).
Each gets hostile payloads as prefix and suffix. A variant either fails validation with exit-2 problems, or
its artifacts parse back to exactly the baseline's structure with the one value substituted, and the real
consumers (nginx -t, promtool, amtool, kubernetes-validate) accept them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from artifact_checks import check_all, env_compose, env_docker, nginx_parse

from infragen.errors import InputError
from infragen.load import Loader
from infragen.render import render_environment
from infragen.schema import environment_schema

# Every optional string setting is present, with values that occur nowhere else in the artifacts,
# so "the baseline with this value replaced" is well defined.
FULL = {
    "tier": "production",
    "service": {"name": "fraud-api", "namespace": "fraud-ns", "port": 8000,
                "selector": {"app.kubernetes.io/name": "fraud-sel", "tierlabel": "backend"}},
    "autoscaling": {"min_replicas": 3, "max_replicas": 10, "target_cpu_percent": 60, "target_memory_percent": 80,
                    "scale_up_policies": [{"type": "Pods", "value": 4, "period_seconds": 15}],
                    "scale_down_policies": [{"type": "Percent", "value": 10, "period_seconds": 60}],
                    "scale_up_select_policy": "Max", "scale_down_select_policy": "Min"},
    "disruption_budget": {"min_available": "34%", "unhealthy_pod_eviction_policy": "IfHealthyBudget"},
    "database": {"max_connections": 500},
    "rate_limit": {"key": "$http_x_client", "zone_size": "9m"},
    "load_balancing": {"nginx_version": "1.22", "session_affinity": {"cookie": "sessck", "routing_cookie": "routeck", "ttl": "2h"},
                       "fail_timeout": "11s", "zone_size": "63k",
                       "servers": ["10.0.0.1:8080", {"address": "10.0.0.2:8081", "fail_timeout": "7s"}]},
    "alerts": {"runbook_url": "https://runbooks.example.com/rb", "labels": {"team": "teamval", "owner": "ownerval"},
               "error_rate": {"for": "4m", "severity": "warning"}, "rate_window": "6m", "scrape_interval": "20s"},
    "alertmanager": {
        "receivers": {"oncall": {"pagerduty": {"routing_key_secret": {"name": "pdsecret", "key": "pdkey"},
                                               "url": "https://pd.example.com/pdurl"}},
                      "team-slack": {"slack": {"api_url_secret": {"name": "slacksecret", "key": "slackkey"},
                                               "channel": "#chanval"}}},
        "config_labels": {"amlabel": "amlabelval"},
        "routes": {"critical": "oncall", "warning": "team-slack", "info": "team-slack"},
        "default_receiver": "team-slack", "group_by": ["alertname", "groupval"], "group_wait": "31s"},
    "rollout": {"max_surge": "26%"},
    "monitoring": {"selector_labels": {"app.kubernetes.io/name": "monsel"}, "labels": {"release": "relval"},
                   "dashboard_labels": {"grafana_dashboard": "dashval"}, "path": "/metricsval", "port_name": "portval"},
    "policy": {"allow": ["production-pdb"]},
}

PAYLOADS = ["\n", "\r\n", "\n  injected: true", '"', "'", "{", "}", "{{ $value }}", ";", "; evil on;", "#", " # x",
            "$", "${HOME}", "\\", "\t", ": x", "\n- x", "&a", "*a", "!!python/object", "`id`", "é", "\u2028", "\x85",
            " ", "%", "=X", "\x00", "\x1b[31m", "\U0001F680"]

PREFIX_FIRST = set("\"'{}#$&*!`%- \n\t\\;")


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["$defs"][node["$ref"].split("/")[-1]]
    return node


def string_paths(schema: dict) -> list[tuple[tuple[Any, ...], str]]:
    """(path, "value" | "key") for every place a string is written in an environment file."""
    found: list[tuple[tuple[Any, ...], str]] = []

    def walk(node: dict, path: tuple[Any, ...], data: Any) -> None:
        node = _resolve(schema, node)
        for alt in node.get("anyOf", []):
            walk(alt, path, data)
        kind = node.get("type")
        if kind == "string" and isinstance(data, str):
            found.append((path, "value"))
        if kind == "object" and isinstance(data, dict):
            for key, sub in node.get("properties", {}).items():
                if key in data:
                    walk(sub, path + (key,), data[key])
            extra = node.get("additionalProperties")
            pattern = next(iter(node.get("patternProperties", {}).values()), None)
            value_schema = pattern if pattern is not None else (extra if isinstance(extra, dict) else None)
            if value_schema is not None and not node.get("properties"):
                for key in sorted(data):
                    found.append((path + (key,), "key"))
                    walk(value_schema, path + (key,), data[key])
        if kind == "array" and isinstance(data, list):
            for i, item in enumerate(data):
                walk(node.get("items", {}), path + (i,), item)

    walk(schema, (), FULL)
    return sorted(set(found), key=repr)


STRING_PATHS = string_paths(environment_schema())


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


def _variant(path: tuple[Any, ...], kind: str, new: str) -> tuple[dict, str]:
    data = copy.deepcopy(FULL)
    parent = _get(data, path[:-1])
    if kind == "key":
        old = path[-1]
        parent[new] = parent.pop(old)
    else:
        old = parent[path[-1]]
        parent[path[-1]] = new
    return data, old


def _substitute(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, dict):
        return {_substitute(k, old, new): _substitute(v, old, new) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, old, new) for v in value)
    return value


def _dashboard(document: dict[str, Any]) -> dict[str, Any]:
    """The uid is a digest of service, namespace and environment: it changes with them, by design."""
    assert len(document["uid"]) <= 40
    return {**document, "uid": "UID"}


def _parsed(files: dict[str, str], env: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, text in files.items():
        rel = path.split("/", 1)[1]
        if rel.endswith(".yaml"):
            documents = list(yaml.safe_load_all(text))
            out[rel] = documents[0] if len(documents) == 1 else documents
            if rel == "kubernetes/dashboard-configmap.yaml":  # the dashboard inside, as Grafana's sidecar reads it
                out[rel]["data"] = {k: _dashboard(json.loads(v)) for k, v in out[rel]["data"].items()}
        elif rel.endswith(".json"):
            out[rel] = _dashboard(json.loads(text))
        elif rel.endswith(".conf"):
            out[rel] = nginx_parse(text)
        else:
            docker = env_docker(text)
            assert docker == env_compose(text), "docker and compose read app.env differently"
            out[rel] = docker
    return _substitute(out, env, "ENV")  # environment names differ per variant; compare the rest


def test_every_string_setting_is_found():
    """The schema walk must see the string settings we know of (guards the walk itself)."""
    paths = {".".join(map(str, p)) + ("[key]" if k == "key" else "") for p, k in STRING_PATHS}
    for expected in ("service.name", "service.namespace", "service.selector.app.kubernetes.io/name[key]",
                     "alerts.labels.owner", "alerts.labels.owner[key]", "alertmanager.group_by.0",
                     "load_balancing.servers.0", "load_balancing.servers.1.address", "rate_limit.key",
                     "alertmanager.receivers.oncall[key]", "alerts.runbook_url",
                     "alertmanager.receivers.team-slack.slack.channel",
                     "alertmanager.receivers.oncall.pagerduty.routing_key_secret.key", "alertmanager.config_labels.amlabel",
                     "alerts.error_rate.for", "disruption_budget.min_available", "load_balancing.nginx_version",
                     "policy.allow.0"):
        assert expected in paths, f"{expected} not found among {sorted(paths)}"
    assert len(STRING_PATHS) >= 30


@pytest.mark.slow  # every hostile value through every real consumer
@pytest.mark.tools
def test_no_value_injects_into_any_artifact(tmp_path: Path):
    envdir = tmp_path / "environments"
    envdir.mkdir()
    (envdir / "zzbaseline.yaml").write_text(yaml.safe_dump(FULL), encoding="utf-8")
    loader = Loader(envdir)
    baseline = _parsed(render_environment(loader.load("zzbaseline")), "zzbaseline")

    accepted: dict[str, str] = {}
    rejected = 0
    for n, ((path, kind), payload) in enumerate((pk, p) for pk in STRING_PATHS for p in PAYLOADS):
        # A leading character is dangerous in fewer ways (YAML indicators, nginx quotes): prefix only those.
        for m, place in enumerate(("suffix", "prefix") if payload[:1] in PREFIX_FIRST else ("suffix",)):
            old = path[-1] if kind == "key" else _get(FULL, path)
            new = old + payload if place == "suffix" else payload + old
            data, _ = _variant(path, kind, new)
            name = f"zzv{n}-{m}"
            (envdir / f"{name}.yaml").write_text(yaml.dump(data, Dumper=yaml.CSafeDumper, width=10**6), encoding="utf-8")
            try:
                env = Loader(envdir).load(name)
            except InputError as exc:
                rejected += 1
                for problem in exc.problems:
                    line = problem.format()
                    assert "\n" not in line and line, line
                continue
            what = f"{'.'.join(map(str, path))} ({kind}) = {new!r}"
            files = render_environment(env)
            got = _parsed(files, name)
            want = _substitute(baseline, old, new)
            assert got == want, f"{what}: artifacts do not parse back to the intended structure"
            accepted.update(files)
    assert rejected, "every hostile variant was accepted: the test is not testing anything"
    if accepted:
        check_all(accepted)


def test_substitution_check_can_fail(tmp_path: Path):
    """The parse-back comparison notices a value that broke out of its scalar."""
    text = "a: 'x'\nb: 1\n"
    injected = "a: x\nb: 2\n"
    assert _substitute(yaml.safe_load(text), "x", "x") != yaml.safe_load(injected)
    assert nginx_parse("a b;") != nginx_parse("a b; c;")
    with pytest.raises(AssertionError):
        env_compose("A=$HOME\n")
