"""What the Prometheus Operator makes of an AlertmanagerConfig, modelled from its source so `amtool` can test it.

The operator cannot run here; the Alertmanager configuration it generates can be reproduced. This follows
prometheus-operator/prometheus-operator at 6adcebc (after v0.93.0), pkg/alertmanager/amcfg.go:

- `AddAlertmanagerConfigs`: each resource's inhibit rules are appended to the base configuration's; its route
  becomes a first-level child route placed BEFORE the base routes; its receivers are appended.
- `convertRoute`: receivers named `<namespace>/<name>/<receiver>` (`makeNamespacedString`), `groupBy` ->
  `group_by` and so on, child routes converted the same way.
- `convertMatchersV2` / `Matcher.String()` (pkg/apis/monitoring/v1alpha1/alertmanager_config_types.go): a matcher
  with a matchType is written `name<op>"value"`, the value escaped (`\\`, newline, `"`).
- `getEnforcer`: strategy `OnNamespace` (the default) appends `namespace="<resource namespace>"` to the
  top-level route's matchers (`namespaceEnforcer.processRoute`, always appended) and to both sides of each
  inhibit rule unless already there (`processInhibitRule`); `None` adds nothing; either way
  `continueToNextRoute` forces `continue: true` on the top-level route.
- `convertPagerdutyConfig` / `convertSlackConfig`: the Secret's value inlined as `routing_key` / `api_url`;
  `description`, `severity`, `class`, `details` (key/value list -> map), `title`, `text`, `channel`, `send_resolved` copied.

Only what infragen writes is modelled (route, PagerDuty and Slack receivers, inhibit rules); anything else in a
resource is refused rather than silently dropped.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import ConversionError

# kube-prometheus-stack's own Alertmanager configuration (charts/kube-prometheus-stack/values.yaml,
# `alertmanager.config`, chart 88.x): the base the operator merges every AlertmanagerConfig into there.
KUBE_PROMETHEUS_STACK_BASE: dict[str, Any] = {
    "global": {"resolve_timeout": "5m"},
    "inhibit_rules": [
        {"source_matchers": ["severity = critical"], "target_matchers": ["severity =~ warning|info"],
         "equal": ["namespace", "alertname"]},
        {"source_matchers": ["severity = warning"], "target_matchers": ["severity = info"],
         "equal": ["namespace", "alertname"]},
        {"source_matchers": ["alertname = InfoInhibitor"], "target_matchers": ["severity = info"], "equal": ["namespace"]},
        {"target_matchers": ["alertname = InfoInhibitor"]},
    ],
    "route": {"group_by": ["namespace"], "group_wait": "30s", "group_interval": "5m", "repeat_interval": "12h",
              "receiver": "null", "routes": [{"receiver": "null", "matchers": ["alertname = Watchdog"]}]},
    "receivers": [{"name": "null"}],
}

SecretValues = Mapping[tuple[str, str, str], str]  # (namespace, secret name, key) -> value


def matcher_text(matcher: Mapping[str, Any]) -> str:
    unknown = set(matcher) - {"name", "value", "matchType"}
    if unknown or "matchType" not in matcher:
        raise ConversionError(f"matcher {dict(matcher)}: only name, value and matchType are modelled")
    value = str(matcher.get("value", "")).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
    return f'{matcher["name"]}{matcher["matchType"]}"{value}"'


def _route(route: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    names = {"receiver": "receiver", "groupBy": "group_by", "groupWait": "group_wait",
             "groupInterval": "group_interval", "repeatInterval": "repeat_interval", "matchers": "matchers",
             "continue": "continue", "routes": "routes"}
    unknown = set(route) - set(names)
    if unknown:
        raise ConversionError(f"route keys {sorted(unknown)} are not modelled")
    out: dict[str, Any] = {}
    if route.get("receiver"):
        out["receiver"] = prefix + route["receiver"]
    for key in ("groupBy", "groupWait", "groupInterval", "repeatInterval", "continue"):
        if key in route:
            out[names[key]] = copy.deepcopy(route[key])
    if route.get("matchers"):
        out["matchers"] = [matcher_text(m) for m in route["matchers"]]
    if route.get("routes"):
        out["routes"] = [_route(child, prefix) for child in route["routes"]]
    return out


def _secret(secrets: SecretValues, namespace: str, ref: Mapping[str, str], what: str) -> str:
    try:
        return secrets[(namespace, ref["name"], ref["key"])]
    except KeyError:
        raise ConversionError(f"failed to get {what}: no key {ref.get('key')!r} in Secret {ref.get('name')!r} "
                              f"of namespace {namespace!r}") from None


def _receiver(receiver: Mapping[str, Any], prefix: str, namespace: str, secrets: SecretValues) -> dict[str, Any]:
    unknown = set(receiver) - {"name", "pagerdutyConfigs", "slackConfigs"}
    if unknown:
        raise ConversionError(f"receiver keys {sorted(unknown)} are not modelled")
    out: dict[str, Any] = {"name": prefix + receiver["name"]}
    pagerduty = []
    for config in receiver.get("pagerdutyConfigs", []):
        pd: dict[str, Any] = {"routing_key": _secret(secrets, namespace, config["routingKey"], "routing key")}
        for key, name in (("url", "url"), ("description", "description"), ("severity", "severity"),
                          ("class", "class"), ("sendResolved", "send_resolved")):
            if key in config:
                pd[name] = config[key]
        if config.get("details"):
            pd["details"] = {d["key"]: d["value"] for d in config["details"]}
        pagerduty.append(pd)
    slack = []
    for config in receiver.get("slackConfigs", []):
        sl: dict[str, Any] = {}
        if "apiURL" in config:
            sl["api_url"] = _secret(secrets, namespace, config["apiURL"], "Slack API URL")
        for key, name in (("channel", "channel"), ("title", "title"), ("text", "text"), ("sendResolved", "send_resolved")):
            if key in config:
                sl[name] = config[key]
        slack.append(sl)
    if pagerduty:
        out["pagerduty_configs"] = pagerduty
    if slack:
        out["slack_configs"] = slack
    return out


def _inhibit_rule(rule: Mapping[str, Any], namespace_matcher: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for side, name in (("sourceMatch", "source_matchers"), ("targetMatch", "target_matchers")):
        matchers = [matcher_text(m) for m in rule.get(side, [])]
        if namespace_matcher is not None and namespace_matcher not in matchers:
            matchers.append(namespace_matcher)
        out[name] = matchers
    if rule.get("equal"):
        out["equal"] = list(rule["equal"])
    return out


def generate(resources: Sequence[Mapping[str, Any]], secrets: SecretValues,
             base: Mapping[str, Any] = KUBE_PROMETHEUS_STACK_BASE, strategy: str = "OnNamespace") -> dict[str, Any]:
    """The Alertmanager configuration the operator generates from `base` and the AlertmanagerConfigs."""
    if strategy not in ("OnNamespace", "None"):
        raise ConversionError(f"matcher strategy {strategy!r} is not modelled")
    config = copy.deepcopy(dict(base))
    sub_routes = []
    # AddAlertmanagerConfigs walks the resources sorted by their <namespace>/<name> key.
    for resource in sorted(resources, key=lambda r: (r["metadata"]["namespace"], r["metadata"]["name"])):
        namespace, name = resource["metadata"]["namespace"], resource["metadata"]["name"]
        spec, prefix = resource["spec"], f"{namespace}/{name}/"
        unknown = set(spec) - {"route", "receivers", "inhibitRules"}
        if unknown:
            raise ConversionError(f"spec keys {sorted(unknown)} are not modelled")
        enforced = f'namespace="{namespace}"' if strategy == "OnNamespace" else None
        config.setdefault("inhibit_rules", []).extend(_inhibit_rule(r, enforced) for r in spec.get("inhibitRules", []))
        if spec.get("route") is None:
            continue
        route = _route(spec["route"], prefix)
        if enforced is not None:
            route["matchers"] = route.get("matchers", []) + [enforced]
        route["continue"] = True
        sub_routes.append(route)
        config.setdefault("receivers", []).extend(
            _receiver(r, prefix, namespace, secrets) for r in spec.get("receivers", []))
    config["route"]["routes"] = sub_routes + config["route"].get("routes", [])
    return config
