"""The real Prometheus and Alertmanager (Debian's packages) run the alert rules and the Alertmanager config
infragen generates, unchanged, and deliver notifications end to end: a fake application in this process
reports its traffic, Prometheus scrapes it and evaluates the rules, Alertmanager routes each alert by
severity to a Slack or PagerDuty receiver whose secret it reads from `<secrets_dir>/<secret>/<key>` (the layout
the Prometheus Operator mounts Secrets in), and a webhook receiver in this process records what arrives. A second copy of the application in another namespace reports broken traffic the whole
time and must never alert. Loopback only; every server is stopped by its pid.

The environment is tests/fixtures/live-environments/_live.yaml (timings in seconds) plus what environment()
below adds. New scenarios use the `stack` fixture (tests/live_stack.py), which starts each test with healthy
traffic and no alert: change the app's traffic, then `stack.expect(receiver, alertname[, "resolved"])`. E.g.

    stack.app.stop()                                   # up == 0 for the app's target
    stack.expect("critical-hook", "MetricsMissing")
    stack.app.start()
    stack.expect("critical-hook", "MetricsMissing", "resolved")

(give such an alert a `for` of a few seconds: on this shared machine a scrape can time out, which reads as
up == 0). A PagerDuty receiver: `oncall: {pagerduty: {routing_key_secret: {name: oncall, key: routing-key}, url:
<hooks.url("oncall")>}}` in environment() and "oncall" in SETUP.receivers.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import FIXTURES
from live_stack import HEALTHY, FakeApp, Setup, Stack, WebhookReceiver, broken, open_stack
from tools import missing, require

pytestmark = [pytest.mark.tools, pytest.mark.live]  # real servers on 127.0.0.1

SERVERS = {  # executable -> (Debian package, the name upstream's tarball uses)
    "prometheus": ("prometheus", "prometheus"),
    "prometheus-alertmanager": ("prometheus-alertmanager", "alertmanager"),
}


def environment(namespace: str, secrets: Path, hooks: WebhookReceiver) -> str:
    """An environment over the fixture partial: its namespace, and one receiver per severity route (the test
    reads which one got a notification from the URL path): critical pages through PagerDuty's Events API at the
    local receiver (`pagerduty.url`), the others post to Slack webhooks. Every secret is a Secret's key mounted
    below `secrets` (file mode: the Alertmanager reads files)."""
    return f"""\
extends: _live
service: {{namespace: {namespace}}}
alertmanager:
  format: file
  secrets_dir: {secrets}
  receivers:
    critical-hook: {{pagerduty: {{routing_key_secret: {{name: critical-hook, key: routing-key}}, url: {hooks.url("critical-hook")}}}}}
    warning-hook: {{slack: {{api_url_secret: {{name: warning-hook, key: url}}, channel: "#fraud-alerts"}}}}
    default-hook: {{slack: {{api_url_secret: {{name: default-hook, key: url}}}}}}
  routes: {{critical: critical-hook, warning: warning-hook, info: warning-hook}}
  default_receiver: default-hook
"""


SETUP = Setup(fixtures=FIXTURES / "live-environments", environment=environment,
              receivers=("critical-hook", "warning-hook", "default-hook"))


def find_servers() -> tuple[str, str]:
    """The paths of prometheus and prometheus-alertmanager; otherwise skip (fail under INFRAGEN_REQUIRE_TOOLS=1)
    saying how to install what is missing."""
    found = {name: shutil.which(name) or shutil.which(upstream) for name, (_, upstream) in SERVERS.items()}
    absent = [name for name, path in found.items() if path is None]
    if absent:
        packages = " ".join(SERVERS[name][0] for name in absent)
        missing(f"{' and '.join(absent)} not installed: run `apt-get install {packages}` (scripts/test.sh run "
                "as root installs them, with promtool and amtool)")
    return found["prometheus"], found["prometheus-alertmanager"]  # type: ignore[return-value]


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus, alertmanager = find_servers()
    with open_stack(tmp_path_factory.mktemp("live-alerting"), SETUP, prometheus, alertmanager) as stack:
        yield stack


@pytest.fixture
def stack(module_stack: Stack) -> Stack:
    """The module's stack, reset for this test: healthy app, no alert left, earlier notifications ignored."""
    module_stack.begin()
    return module_stack


def common_labels(stack: Stack, severity: str) -> dict[str, str]:
    """The labels infragen puts on every alert of the live environment (team: from _live.yaml's alerts.labels)."""
    return {"severity": severity, "service": stack.job, "namespace": stack.namespace, "environment": stack.env.name,
            **stack.env.spec.alerts.labels}


def test_fake_app_metrics_pass_promtool() -> None:
    """The harness itself: what the fake app serves is valid exposition format, by Prometheus' own linter."""
    promtool = require("promtool")
    app = FakeApp("lint", broken(10))
    try:
        text = app.exposition()
    finally:
        app.stop()
    result = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"promtool check metrics:\n{result.stdout}{result.stderr}\n{text}"


def test_broken_series_in_another_namespace_never_alert(stack: Stack) -> None:
    # The other namespace's series are past every threshold: the same rules generated for that namespace
    # select them (otherwise this test would prove nothing).
    breaches = stack.wait_for_control_breaches()
    assert len(breaches) == 7, breaches
    # The rules for this namespace, evaluated over and over on the same data, select nothing: no alert even
    # pending (HighLatencyP95 and the others wait up to 15m before firing, but would be pending at once).
    stack.hold_quiet(evaluations=8)
    assert all(stack.control_breaches().values()), "the other namespace's series stopped breaching during the check"
    for receiver in SETUP.receivers:
        stack.assert_not_notified(receiver)


def test_error_rate_alert_reaches_the_warning_receiver_then_resolves(stack: Stack) -> None:
    stack.app.set_errors(0.2)  # 20% 5xx against a threshold of 5%
    fired = stack.expect("warning-hook", "HighErrorRate")

    alert = stack.firing_once("HighErrorRate")
    labels = {"alertname": "HighErrorRate", **common_labels(stack, "warning")}
    assert alert["labels"] == labels, f"{stack.rules_file}: HighErrorRate fired with {alert['labels']}"
    # infragen's Slack title and text: severity and environment, then the alert's own summary, description and
    # runbook link (Alertmanager's default text is empty).
    assert fired.subject == f"[FIRING:1] HighErrorRate (warning, {stack.env.name})", fired.line()
    text = fired.attachment["text"]
    annotations = alert["annotations"]
    # The description quotes the value when Prometheus sent the alert, which moves between evaluations.
    described = annotations["description"].split(" ", 1)[1]
    for part in (annotations["summary"], described, annotations["runbook_url"],
                 "severity: warning", f"environment: {stack.env.name}", f"namespace: {stack.namespace}"):
        assert part in text, f"{part!r} is not in the Slack text:\n{text}"
    assert annotations["runbook_url"] == "https://runbooks.example.com/fraud-api#HighErrorRate", annotations
    assert fired.json.get("channel") == "#fraud-alerts", fired.text
    receiver = urllib.parse.quote(stack.env.routing.qualified("warning-hook"), safe="")
    assert fired.attachment["title_link"].endswith(f"/#/alerts?receiver={receiver}"), fired.text
    stack.assert_not_notified("critical-hook")
    stack.assert_not_notified("default-hook")

    stack.app.set_errors(0.0)
    # The 5xx already counted leave the 1m window gradually: the ratio drops below 5% within about a minute.
    resolved = stack.expect("warning-hook", "HighErrorRate", "resolved", timeout=100)
    assert resolved.subject == f"[RESOLVED] HighErrorRate (warning, {stack.env.name})", resolved.line()
    assert resolved.attachment["text"].startswith("Resolved: *" + annotations["summary"]), resolved.text
    stack.assert_not_notified("critical-hook")


def test_pool_exhaustion_reaches_the_critical_receiver_then_resolves(stack: Stack) -> None:
    stack.app.set(pool_in_use=stack.env.capacity.connections_per_pod)  # every connection of the pool and its overflow in use
    fired = stack.expect("critical-hook", "DatabasePoolNearExhaustion")

    alert = stack.firing_once("DatabasePoolNearExhaustion")
    # Per instance: the series' own labels stay on the alert, the other namespace's instance never shows up.
    labels = {"alertname": "DatabasePoolNearExhaustion", **common_labels(stack, "critical"),
              "instance": stack.app.target, "job": stack.job}
    assert alert["labels"] == labels, f"{stack.rules_file}: DatabasePoolNearExhaustion fired with {alert['labels']}"
    assert float(alert["value"]) == 1.0, alert
    # A PagerDuty Events v2 trigger, with the routing key Alertmanager read from <secrets_dir>/<secret>/<key>.
    assert fired.json["event_action"] == "trigger" and fired.json["routing_key"] == "key-critical-hook", fired.text
    # The summary as the description, the alert's class and severity, and details keyed for a responder.
    summary = alert["annotations"]["summary"]
    assert fired.payload["summary"] == summary, fired.text
    assert (fired.payload["severity"], fired.payload["class"]) == ("critical", "DatabasePoolNearExhaustion"), fired.text
    details = fired.payload["custom_details"]
    assert {k: details.get(k) for k in ("environment", "service", "namespace", "summary", "runbook_url")} == {
        "environment": stack.env.name, "service": stack.job, "namespace": stack.namespace, "summary": summary,
        "runbook_url": "https://runbooks.example.com/fraud-api#DatabasePoolNearExhaustion"}, fired.text
    stack.assert_not_notified("warning-hook")
    stack.assert_not_notified("default-hook")

    stack.app.set(HEALTHY)
    resolved = stack.expect("critical-hook", "DatabasePoolNearExhaustion", "resolved")
    assert resolved.json["event_action"] == "resolve", resolved.text
    stack.assert_not_notified("warning-hook")


def _probe(stack: Stack, alertname: str, severity: str) -> dict:
    """An alert as a rule of the service would send it (its labels and annotations), for Alertmanager's API."""
    return {"labels": {"alertname": alertname, **common_labels(stack, severity)},
            "annotations": {"summary": f"{alertname} probe ({severity})", "description": "posted by the test",
                            "runbook_url": f"https://runbooks.example.com/fraud-api#{alertname}"}}


def _inhibited(stack: Stack, alertname: str, severity: str) -> list[str]:
    """The fingerprints inhibiting the service's `alertname` alert of `severity`, as Alertmanager reports them."""
    found = [a for a in stack.alertmanager.alerts()
             if a["labels"].get("alertname") == alertname and a["labels"].get("severity") == severity]
    return found[0]["status"]["inhibitedBy"] if found else []


def test_a_critical_alert_mutes_the_warning_of_the_same_name(stack: Stack) -> None:
    """Inhibition, which amtool cannot test: no generated rule has two severities yet, so the pair is posted to
    Alertmanager's API the way Prometheus would send it. Beside them a warning of another name, not muted,
    shows the warning receiver was reachable all along."""
    name = "InhibitionProbe"
    stack.alertmanager.post_alerts([_probe(stack, name, "critical")])
    stack.expect("critical-hook", name)
    stack.alertmanager.post_alerts([_probe(stack, name, "critical"), _probe(stack, name, "warning"),
                                    _probe(stack, "UninhibitedProbe", "warning")])
    stack.expect("warning-hook", "UninhibitedProbe")
    stack.wait_until(lambda: _inhibited(stack, name, "warning"), 30, f"Alertmanager to mark the {name} warning inhibited")
    stack.assert_not_notified("warning-hook", name)
    # MetricsMissing mutes every other alert of the service: without its metrics they mean nothing.
    stack.alertmanager.post_alerts([_probe(stack, "MetricsMissing", "critical"),
                                    _probe(stack, "HighLatencyP95", "warning")])
    stack.expect("critical-hook", "MetricsMissing")
    stack.wait_until(lambda: _inhibited(stack, "HighLatencyP95", "warning"), 30,
                     "Alertmanager to mark HighLatencyP95 inhibited by MetricsMissing")
    stack.assert_not_notified("warning-hook", "HighLatencyP95")
    # Resolve them all, and see the resolved notices arrive before the next test begins.
    now = datetime.datetime.now(datetime.timezone.utc).isoformat()
    ended = [{**_probe(stack, n, sev), "endsAt": now} for n, sev in (
        (name, "critical"), (name, "warning"), ("UninhibitedProbe", "warning"), ("MetricsMissing", "critical"),
        ("HighLatencyP95", "warning"))]
    stack.alertmanager.post_alerts(ended)
    stack.expect("critical-hook", name, "resolved")
    stack.expect("critical-hook", "MetricsMissing", "resolved")
    stack.expect("warning-hook", "UninhibitedProbe", "resolved")
    stack.assert_not_notified("warning-hook", name)
    stack.assert_not_notified("warning-hook", "HighLatencyP95")


def test_metrics_missing_pages_when_the_app_stops(stack: Stack) -> None:
    """The failure no threshold alert sees: no target of the job and namespace is up. Every other alert is silent
    then; MetricsMissing pages, and resolves when the target is back."""
    stack.app.stop()
    fired = stack.expect("critical-hook", "MetricsMissing")
    alert = stack.firing_once("MetricsMissing")
    assert alert["labels"] == {"alertname": "MetricsMissing", **common_labels(stack, "critical")}, alert["labels"]
    assert fired.json["event_action"] == "trigger", fired.text
    stack.assert_not_notified("warning-hook")
    stack.app.start()
    resolved = stack.expect("critical-hook", "MetricsMissing", "resolved")
    assert resolved.json["event_action"] == "resolve", resolved.text


def test_nothing_ever_mentioned_the_other_namespace(stack: Stack) -> None:
    """Last: over the whole module, while the other namespace stayed broken."""
    stack.hold_quiet(evaluations=5)
    assert all(stack.control_breaches().values()), "the other namespace's series are no longer past the thresholds"
    leaked = [a for a in stack.prometheus.alerts()
              if a["labels"].get("namespace") == stack.other_namespace or a["labels"].get("instance") == stack.other.target]
    assert not leaked, f"alerts about the other namespace:\n{stack.diagnostics()}"
    everything = stack.receiver.notifications()
    about_other = [n for n in everything if stack.other_namespace in n.text or stack.other.target in n.text]
    assert not about_other, (f"notifications mentioning {stack.other_namespace} / {stack.other.target}:\n"
                             + "\n".join(n.line() for n in about_other))
    assert not stack.receiver.notifications("default-hook"), \
        f"every alert has a severity, so the root route's receiver gets nothing:\n{stack.receiver.describe()}"
