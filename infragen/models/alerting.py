"""Where the service's alerts go: routes, receivers, inhibition and messages, for both ways of loading them.

- operator: a Prometheus Operator `AlertmanagerConfig` (monitoring.coreos.com/v1alpha1, the version the standard
  CRDs serve) in the service's namespace. Receivers reference Kubernetes Secrets by `{name, key}`; the operator
  reads them and inlines the values into the configuration it generates (prometheus-operator
  pkg/alertmanager/amcfg.go, convertPagerdutyConfig / convertSlackConfig).
- file: `alertmanager/alertmanager.yaml`, whose service route can be pasted into a shared routing tree. Secrets are
  files where the Secrets are mounted: `<secrets_dir>/<secret>/<key>`, the layout the operator gives an
  Alertmanager's `spec.secrets` (pkg/alertmanager/statefulset.go).

The documents (infragen.documents.alertmanager_config and .alertmanager) place these values. Both carry the same
tree: one route matched on the service's `namespace` and `service` labels, holding a child
route per severity, and the same inhibit rules and message templates. Receiver names in the file are what the
operator would name them (`<namespace>/<resource name>/<receiver>`, amcfg.go makeNamespacedString), so several
services' and environments' files never collide in one Alertmanager.
"""

from __future__ import annotations

from dataclasses import dataclass

from .defaults import Part, default_of
from .settings import SEVERITIES, AlertmanagerFormat, AlertmanagerSettings, Receiver, SecretRef
from .types import format_duration

# --- messages: Go templates Alertmanager renders per notification (text/template with its own functions) ------
# A group is one alertname (group_by) under one severity route, so its common labels carry both; annotations can
# differ between the group's alerts (per instance), so a single value comes from the first alert when not common.
STATUS = '[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}]'
SLACK_TITLE = (STATUS + ' {{ with .CommonLabels.alertname }}{{ . }}{{ else }}{{ .GroupLabels.SortedPairs.Values | join " " }}'
               '{{ end }} ({{ .CommonLabels.severity }}, {{ .CommonLabels.environment }})')
SLACK_TEXT = (
    '{{ range .Alerts }}{{ if eq .Status "resolved" }}Resolved: {{ end }}*{{ .Annotations.summary }}*\n'
    '{{ .Annotations.description }}\n'
    'severity: {{ .Labels.severity }}, environment: {{ .Labels.environment }}, service: {{ .Labels.service }}, '
    'namespace: {{ .Labels.namespace }}\n'
    '{{ with .Annotations.runbook_url }}Runbook: {{ . }}\n{{ end }}{{ end }}')
SUMMARY = ('{{ with .CommonAnnotations.summary }}{{ . }}{{ else }}{{ (index .Alerts 0).Annotations.summary }} '
           '({{ len .Alerts }} alerts){{ end }}')
RUNBOOK = ('{{ with .CommonAnnotations.runbook_url }}{{ . }}{{ else }}{{ (index .Alerts 0).Annotations.runbook_url }}'
           '{{ end }}')
# PagerDuty's event class: what kind of problem, for event rules and for a responder's filters.
PAGERDUTY_CLASS = '{{ .CommonLabels.alertname }}'
# PagerDuty Events v2 severities are critical, error, warning and info; Alertmanager's default is error.
PAGERDUTY_SEVERITY = ('{{ if eq .CommonLabels.severity "critical" }}critical{{ else if eq .CommonLabels.severity '
                      '"warning" }}warning{{ else }}info{{ end }}')
# Keys a responder or a PagerDuty event rule can act on (Alertmanager adds firing, resolved, num_firing, num_resolved).
PAGERDUTY_DETAILS = (
    ("environment", "{{ .CommonLabels.environment }}"),
    ("service", "{{ .CommonLabels.service }}"),
    ("namespace", "{{ .CommonLabels.namespace }}"),
    ("summary", SUMMARY),
    ("runbook_url", RUNBOOK),
)

METRICS_MISSING = "MetricsMissing"


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # = != =~ !~
    value: str

    @property
    def text(self) -> str:
        """Alertmanager's matcher syntax, escaped as the operator writes it (v1alpha1 Matcher.String)."""
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.op}"{escaped}"'

    @property
    def resource(self) -> dict[str, str]:
        return {"name": self.name, "value": self.value, "matchType": self.op}


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]
    why: str


class Routing(Part):
    """The alert routing of one environment, from its alertmanager settings and identity."""

    @default_of(("alertmanager", "format"), "operator when monitoring.operator is true, else file")
    def format(self) -> AlertmanagerFormat:
        return self.spec.alertmanager_format

    @property
    def settings(self) -> AlertmanagerSettings:
        return self.spec.alertmanager

    @property
    def resource_name(self) -> str:
        """The AlertmanagerConfig's name, the middle of the receivers' names."""
        return self.env.service_name

    @property
    def labels(self) -> dict[str, str]:
        """The AlertmanagerConfig's labels: the standard ones, then those its Alertmanager selects by."""
        return dict(sorted({**self.env.standard_labels, **self.settings.config_labels}.items()))

    # -- what is routed where
    @property
    def scope(self) -> tuple[Matcher, ...]:
        """The service's own alerts: every rule infragen writes sets both labels."""
        return (Matcher("namespace", "=", self.env.namespace), Matcher("service", "=", self.env.service_name))

    @property
    def severity_routes(self) -> list[tuple[str, str]]:
        """(severity, receiver) in severity order, critical first."""
        return [(sev, getattr(self.settings.routes, sev)) for sev in SEVERITIES]

    @property
    def used_receivers(self) -> list[tuple[str, Receiver]]:
        """The receivers a route names, by name. An unused one is left out: the operator would fail on its Secret
        when the namespace does not have it (a development namespace without the production PagerDuty key)."""
        used = {name for _, name in self.settings.route_references()}
        return [(name, r) for name, r in sorted(self.settings.receivers.items()) if name in used]

    def qualified(self, receiver: str) -> str:
        """The receiver's name in the Alertmanager's configuration: the operator's `<namespace>/<name>/<receiver>`."""
        return f"{self.env.namespace}/{self.resource_name}/{receiver}"

    @property
    def durations(self) -> dict[str, str]:
        s = self.settings
        return {"group_wait": format_duration(s.group_wait), "group_interval": format_duration(s.group_interval),
                "repeat_interval": format_duration(s.repeat_interval)}

    @property
    def inhibit_rules(self) -> list[InhibitRule]:
        """As kube-prometheus-stack's defaults: a more severe alert mutes a less severe one of the same name; and no
        data mutes what the data would say. Each side is kept to this service's alerts."""
        scope = self.scope
        return [
            InhibitRule(scope + (Matcher("severity", "=", "critical"),),
                        scope + (Matcher("severity", "=~", "warning|info"),), ("alertname", "namespace", "service"),
                        "a critical alert mutes the warning and info alerts of the same name"),
            InhibitRule(scope + (Matcher("severity", "=", "warning"),), scope + (Matcher("severity", "=", "info"),),
                        ("alertname", "namespace", "service"), "a warning mutes the info alerts of the same name"),
            InhibitRule(scope + (Matcher("alertname", "=", METRICS_MISSING),),
                        scope + (Matcher("alertname", "!=", METRICS_MISSING),), ("namespace", "service"),
                        "without the service's metrics its other alerts mean nothing"),
        ]

    def secret_file(self, ref: SecretRef) -> str:
        """Where a Secret's key is mounted: one directory per Secret, one file per key."""
        return f"{self.settings.secrets_dir.rstrip('/')}/{ref.name}/{ref.key}"

    def pagerduty_key_file(self, receiver: Receiver) -> str | None:
        """File mode: the file the PagerDuty routing key is read from (the Secret's mount, or the file named)."""
        pd = receiver.pagerduty
        if pd is None:
            return None
        return self.secret_file(pd.routing_key_secret) if pd.routing_key_secret is not None else pd.routing_key_file

    def slack_url_file(self, receiver: Receiver) -> str | None:
        """File mode: the file the Slack webhook URL is read from."""
        sl = receiver.slack
        if sl is None:
            return None
        return self.secret_file(sl.api_url_secret) if sl.api_url_secret is not None else sl.api_url_file
