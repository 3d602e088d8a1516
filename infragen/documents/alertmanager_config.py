"""kubernetes/alertmanagerconfig.yaml (operator mode): the Prometheus Operator's AlertmanagerConfig
(monitoring.coreos.com/v1alpha1) in the service's namespace. The operator adds `namespace="<its namespace>"` to the
route and to both sides of each inhibit rule, and forces `continue: true` on the route (prometheus-operator
pkg/alertmanager/amcfg.go, namespaceEnforcer and continueToNextRoute); the route carries the namespace matcher
itself too, for an Alertmanager whose alertmanagerConfigMatcherStrategy is None. Receivers reference Secrets of the
namespace by name and key; the operator inlines their values into the configuration it generates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..models.alerting import (
    PAGERDUTY_CLASS,
    PAGERDUTY_DETAILS,
    PAGERDUTY_SEVERITY,
    SLACK_TEXT,
    SLACK_TITLE,
    SUMMARY,
    Matcher,
)
from ..models.settings import Receiver, SecretRef

if TYPE_CHECKING:
    from ..models.environment import Environment


def _secret(ref: SecretRef) -> dict[str, str]:
    return {"name": ref.name, "key": ref.key}


def _receiver(name: str, receiver: Receiver) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    pd = receiver.pagerduty
    if pd is not None and pd.routing_key_secret is not None:
        config: dict[str, Any] = {"routingKey": _secret(pd.routing_key_secret), "sendResolved": pd.send_resolved}
        if pd.url is not None:
            config["url"] = pd.url
        config.update({"description": SUMMARY, "severity": PAGERDUTY_SEVERITY, "class": PAGERDUTY_CLASS,
                       "details": [{"key": k, "value": v} for k, v in PAGERDUTY_DETAILS]})
        out["pagerdutyConfigs"] = [config]
    sl = receiver.slack
    if sl is not None and sl.api_url_secret is not None:
        slack: dict[str, Any] = {"apiURL": _secret(sl.api_url_secret)}
        if sl.channel is not None:
            slack["channel"] = sl.channel
        slack.update({"sendResolved": sl.send_resolved, "title": SLACK_TITLE, "text": SLACK_TEXT})
        out["slackConfigs"] = [slack]
    return out


NOTE = ("The Prometheus Operator merges this into its Alertmanager's configuration: it keeps the route and the inhibit\n"
        "rules to this namespace (and the route here to this service), names the receivers <namespace>/<name>/<receiver>,\n"
        "and reads each referenced Secret of this namespace into the configuration it generates. No secret appears here.")


def documents(env: Environment) -> list[dict[str, Any]]:
    routing = env.routing
    s, durations = routing.settings, routing.durations
    route: dict[str, Any] = {
        "receiver": s.default_receiver, "groupBy": list(s.group_by), "groupWait": durations["group_wait"],
        "groupInterval": durations["group_interval"], "repeatInterval": durations["repeat_interval"],
        "matchers": [m.resource for m in routing.scope],
        "routes": [{"receiver": receiver, "matchers": [Matcher("severity", "=", sev).resource]}
                   for sev, receiver in routing.severity_routes]}
    return [{
        "apiVersion": "monitoring.coreos.com/v1alpha1", "kind": "AlertmanagerConfig",
        "metadata": env.metadata(routing.resource_name, routing.labels),
        "spec": {
            "route": route,
            "inhibitRules": [{"sourceMatch": [m.resource for m in rule.source],
                              "targetMatch": [m.resource for m in rule.target], "equal": list(rule.equal)}
                             for rule in routing.inhibit_rules],
            "receivers": [_receiver(n, r) for n, r in routing.used_receivers],
        },
    }]
