"""The rule catalogue: every rule's id, level, one-line summary and fix hint, declared once.

Two stages. `load` rules are checked while an environment is loaded, because without them an artifact cannot be
written correctly at all or a secret would leak: they are declared here, beneath the models, so the models
(`infragen.models.settings.rule_error`) and the secret scan raise the rule object itself. `policy` rules are
functions registered with `@policy_rule` in infragen.policy, run on a loaded environment. docs/policy.md documents
every rule (a test keeps it in step with `RULES`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from .errors import Level


@dataclass(frozen=True, eq=False)
class Rule:
    id: str
    level: Level
    stage: Literal["load", "policy"]
    summary: str
    hint: str
    production_only: bool = False  # binds production-tier environments only; `policy.allow` may relax it
    # policy stage: the function that reports violations, given an infragen.policy.Check (typed Any here: the
    # catalogue sits beneath the policy module, which imports it)
    check: Callable[[Any], None] | None = None


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    if rule.id in RULES:
        raise ValueError(f"rule {rule.id} registered twice")
    RULES[rule.id] = rule
    return rule


def load_rule(id: str, level: Level, summary: str, hint: str) -> Rule:
    """Declare a rule the models or the secret scan check while loading."""
    return register(Rule(id, level, "load", summary, hint))


INLINE_SECRET = load_rule(
    "inline-secret", "error",
    "No secret (Slack webhook URL, PagerDuty key, token) is written in any settings file.",
    "put the secret in a Kubernetes Secret and reference it by name and key (slack.api_url_secret, "
    "pagerduty.routing_key_secret: {name, key}); the secret is in git history now: rotate it")
NGINX_METHOD_CONFLICT = load_rule(
    "nginx-method-conflict", "error",
    "One balancing method per upstream: with hash-based session affinity (nginx < 1.29.6) `method` cannot be set.",
    "remove load_balancing.method, disable session_affinity, or declare nginx_version >= 1.29.6 (sticky cookie)")
NGINX_BACKUP_CONFLICT = load_rule(
    "nginx-backup-conflict", "error",
    "`backup` servers are not allowed with hash-based affinity or method random (nginx refuses the upstream).",
    "remove `backup: true`, disable session affinity / use another method, or declare nginx_version >= 1.29.6")
NGINX_RATE_NOT_INTEGER = load_rule(
    "nginx-rate-not-integer", "error",
    "The rate limit is a whole number of requests per second or per minute (`limit_req_zone rate=`).",
    "choose rate_limit.window_seconds dividing 60 (or a multiple of 60 that divides requests x 60), or adjust requests")
UPSTREAM_SERVERS_OR_DISCOVERY = load_rule(
    "upstream-servers-or-discovery", "error",
    "The upstream has either static servers or discovery, exactly one of them.",
    "list load_balancing.servers (node or pod addresses), or set load_balancing.discovery to a headless Service, "
    "not both")
UPSTREAM_RESOLVE_VERSION = load_rule(
    "upstream-resolve-version", "error",
    "load_balancing.discovery needs nginx 1.27.3 or later (`resolve` in an open-source upstream).",
    'set load_balancing.nginx_version: "1.27.3" (or later) where nginx runs that version, or list servers instead')
BLUE_GREEN_SERVICES_DISTINCT = load_rule(
    "blue-green-services-distinct", "error",
    "A blue-green rollout's active and preview Services are two Services.",
    "name rollout.blue_green.preview_service (default <service.name>-preview) differently from the active Service")
SLO_THRESHOLD_NOT_BUCKET = load_rule(
    "slo-threshold-not-bucket", "error",
    "The latency objective's threshold is a bucket boundary of the application's histogram (`le` is matched exactly).",
    "set slo.latency.threshold_seconds to one of metrics.latency_buckets, or add the threshold to the application's "
    "histogram buckets and to metrics.latency_buckets")
GATES_COUNT_NOT_APPLICABLE = load_rule(
    "gates-count-not-applicable", "error",
    "rollout.gates.count is set only where it applies: blue-green's post-promotion gates (a canary's run until "
    "the rollout completes).",
    "remove rollout.gates.count from a canary environment (or from the partial it extends)")
GATES_TIMING = load_rule(
    "gates-timing", "error",
    "The gates can judge each step before it ends: a canary's pause outlasts the first measurement (discovery + "
    "scrape interval + gate window) plus failure_limit more; blue-green's post-promotion measurements cover "
    "rollout.gates.full_traffic and can fail.",
    "lengthen rollout.canary.pause, raise rollout.gates.count (or remove it: derived), or shorten "
    "rollout.gates.window / interval")
RECEIVER_UNDEFINED = load_rule(
    "receiver-undefined", "error",
    "Every severity's route and the default receiver name a receiver that is defined.",
    "define the receiver under alertmanager.receivers or route to an existing one")
SECRET_FILE_IN_OPERATOR_MODE = load_rule(
    "secret-file-in-operator-mode", "error",
    "With alertmanager.format operator, receivers reference Kubernetes Secrets (`*_secret: {name, key}`): an "
    "AlertmanagerConfig has no file fields.",
    "replace routing_key_file / api_url_file with routing_key_secret / api_url_secret: {name, key}, or set "
    "alertmanager.format: file")
