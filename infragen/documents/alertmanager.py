"""alertmanager/alertmanager.yaml (file mode): a whole Alertmanager configuration whose root hands everything but this
service's alerts to a receiver without integrations; the service route (first under `routes`) is what a shared
tree takes. Secrets are files where the Secrets are mounted."""

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
from ..models.settings import NULL_RECEIVER, Receiver

if TYPE_CHECKING:
    from ..models.alerting import Routing
    from ..models.environment import Environment

NOTE = ("Only this service's alerts: everything sits under the one route matched on its namespace and service (the\n"
        "first under `route.routes`), so that route, the inhibit rules and the receivers can be pasted into a shared\n"
        "Alertmanager's configuration without catching other alerts. Used as a whole file, anything else goes to the\n"
        "receiver \"null\", which sends nothing. Secrets are files where the Kubernetes Secrets are mounted,\n"
        "<alertmanager.secrets_dir>/<secret>/<key>; none appear here.")


def _receiver(routing: Routing, name: str, receiver: Receiver) -> dict[str, Any]:
    out: dict[str, Any] = {"name": routing.qualified(name)}
    if receiver.pagerduty is not None:
        pd = receiver.pagerduty
        config: dict[str, Any] = {"routing_key_file": routing.pagerduty_key_file(receiver), "send_resolved": pd.send_resolved}
        if pd.url is not None:
            config["url"] = pd.url
        config.update({"description": SUMMARY, "severity": PAGERDUTY_SEVERITY, "class": PAGERDUTY_CLASS,
                       "details": dict(PAGERDUTY_DETAILS)})
        out["pagerduty_configs"] = [config]
    if receiver.slack is not None:
        sl = receiver.slack
        slack: dict[str, Any] = {"api_url_file": routing.slack_url_file(receiver)}
        if sl.channel is not None:
            slack["channel"] = sl.channel
        slack.update({"send_resolved": sl.send_resolved, "title": SLACK_TITLE, "text": SLACK_TEXT})
        out["slack_configs"] = [slack]
    return out


def documents(env: Environment) -> list[dict[str, Any]]:
    routing = env.routing
    s = routing.settings
    service_route: dict[str, Any] = {
        "receiver": routing.qualified(s.default_receiver),
        "matchers": [m.text for m in routing.scope],
        "group_by": list(s.group_by), **routing.durations,
        "routes": [{"receiver": routing.qualified(receiver), "matchers": [Matcher("severity", "=", sev).text]}
                   for sev, receiver in routing.severity_routes]}
    return [{
        "route": {"receiver": NULL_RECEIVER, "routes": [service_route]},
        "inhibit_rules": [{"source_matchers": [m.text for m in rule.source],
                           "target_matchers": [m.text for m in rule.target], "equal": list(rule.equal)}
                          for rule in routing.inhibit_rules],
        "receivers": [{"name": NULL_RECEIVER}] + [_receiver(routing, n, r) for n, r in routing.used_receivers],
    }]
