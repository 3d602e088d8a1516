"""alertmanager/alertmanager.yaml: a route per severity to its receiver; secrets are read from files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models.environment import Environment
    from ..models.settings import Receiver

NOTE = "Secrets are read from files (mount them from Kubernetes Secrets); none appear here."


def _receiver(name: str, receiver: Receiver) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if receiver.pagerduty is not None:
        pd = receiver.pagerduty
        pagerduty: dict[str, Any] = {"routing_key_file": pd.routing_key_file, "send_resolved": pd.send_resolved}
        if pd.url is not None:
            pagerduty["url"] = pd.url
        out["pagerduty_configs"] = [pagerduty]
    if receiver.slack is not None:
        sl = receiver.slack
        slack: dict[str, Any] = {"api_url_file": sl.api_url_file}
        if sl.channel is not None:
            slack["channel"] = sl.channel
        slack["send_resolved"] = sl.send_resolved
        out["slack_configs"] = [slack]
    return out


def documents(env: Environment) -> list[dict[str, Any]]:
    am, routing = env.spec.alertmanager, env.routing
    route: dict[str, Any] = {"receiver": am.default_receiver, "group_by": list(am.group_by), **routing.durations,
                             "routes": [{"receiver": receiver, "matchers": [f'severity="{severity}"']}
                                        for severity, receiver in routing.severity_routes]}
    return [{"route": route, "receivers": [_receiver(name, r) for name, r in routing.receivers]}]
