"""The environment file's schema: one pydantic model per section, every rule about a single value or section.

Cross-section rules (PDB vs HPA, fleet vs database, ...) live in `infragen.policy`; numbers derived from
settings live in `infragen.models.environment`. Defaults that vary by tier come from `infragen.models.tiers`
and are layered beneath the files, so a field without a default here is one the tier always supplies.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from fractions import Fraction
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .. import rules
from ..rules import Rule
from .limits import Feature, Quota, Sessions, Throttling, Validation
from .timing import TARGET_DISCOVERY_SECONDS, GateTiming
from .types import (
    COOKIE_NAME_RE,
    INT32_MAX,
    NGINX_VARIABLE_RE,
    NGINX_VERSION_RE,
    SERVER_ADDRESS_RE,
    DnsLabel,
    Duration,
    IntOrPercent,
    KubernetesLabels,
    PortName,
    format_duration,
    format_number,
    percent_value,
    split_address,
)

Tier = Literal["development", "staging", "production"]
TIERS: tuple[str, ...] = ("development", "staging", "production")
Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")

# nginx releases that matter to the upstream we write.
STICKY_COOKIE_SINCE = (1, 29, 6)  # `sticky cookie` in open-source nginx
MIN_NGINX = (1, 18, 0)  # empty hash keys fall back to round-robin since 1.17.1; 1.18 is the stable line with it


def form(text: str) -> dict[str, Any]:
    """Field metadata: what a pattern-checked value should look like, in words. The loader says "expected <form>"
    instead of showing the regex, which helps nobody; the JSON Schema carries it as `x-form`."""
    return {"x-form": text}


def rule_error(rule: Rule, message: str, at: tuple[Any, ...] = (), related: tuple[tuple[Any, ...], ...] = ()) -> PydanticCustomError:
    """A violation of a load-stage rule (infragen.rules) found while validating: the loader reports it with the rule id,
    at the value `at` (a path below the section that raised it) and names the `related` values with their locations.
    These stay in the models because the artifact could not be written correctly at all; `infragen.policy` holds the
    rules about artifacts that are each valid but do not fit together."""
    # The message travels in the context so braces in it are never taken for placeholders.
    return PydanticCustomError("policy_rule", "{message}", {"message": message, "rule": rule.id, "at": at, "related": related})


class Section(BaseModel):
    # strict: "5" is not 5 and 1.3 is not "1.3"; extra="forbid": a typo is an error, not a silent default.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)


class Service(Section):
    name: DnsLabel = Field(description="Service name: the Deployment the HPA scales, the Prometheus `job` label.")
    namespace: DnsLabel | None = Field(
        None, description="Kubernetes namespace, also the `namespace` label alerts select by. Default: the environment name.")
    port: int = Field(8000, ge=1, le=65535, description="The port the application listens on: the port of upstream servers written without one.")
    selector: KubernetesLabels | None = Field(
        None, description="Pod labels the PDB selects. Default: {app.kubernetes.io/name: <service.name>}.")

    @field_validator("selector")
    @classmethod
    def _selector(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not value:
            raise ValueError("an empty selector matches every pod in the namespace; name at least one label")
        return value


class ScalingPolicy(Section):
    type: Literal["Pods", "Percent"]
    value: int = Field(ge=1, le=INT32_MAX, description="Pods, or percent of current replicas, per period.")
    period_seconds: int = Field(ge=1, le=1800)


# Kubernetes' own defaults, written out so the artifact says what will happen.
_SCALE_UP_POLICIES = (
    ScalingPolicy(type="Percent", value=100, period_seconds=15),
    ScalingPolicy(type="Pods", value=4, period_seconds=15),
)
_SCALE_DOWN_POLICIES = (ScalingPolicy(type="Percent", value=100, period_seconds=15),)


class Autoscaling(Section):
    min_replicas: int = Field(ge=1, le=INT32_MAX, description="HPA minReplicas. Tier default: 1 / 2 / 3.")
    max_replicas: int = Field(ge=1, le=INT32_MAX, description="HPA maxReplicas, >= min_replicas. Tier default: 2 / 5 / 10.")
    target_cpu_percent: int = Field(ge=1, le=100, description="Target average CPU utilisation. Tier default: 70 / 70 / 60.")
    target_memory_percent: int | None = Field(None, ge=1, le=100, description="Optional second metric: memory utilisation.")
    scale_up_stabilization_seconds: int = Field(0, ge=0, le=3600)
    scale_down_stabilization_seconds: int = Field(300, ge=0, le=3600)
    scale_up_policies: list[ScalingPolicy] = Field(
        default_factory=lambda: list(_SCALE_UP_POLICIES), min_length=1,
        description="Default: Kubernetes' (100% or 4 pods per 15 s, whichever is more).")
    scale_down_policies: list[ScalingPolicy] = Field(
        default_factory=lambda: list(_SCALE_DOWN_POLICIES), min_length=1,
        description="Default: Kubernetes' (100% per 15 s, after the stabilization window).")
    scale_up_select_policy: Literal["Max", "Min", "Disabled"] = "Max"
    scale_down_select_policy: Literal["Max", "Min", "Disabled"] = "Max"

    @field_validator("max_replicas")
    @classmethod
    def _max_at_least_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_replicas")
        if low is not None and value < low:
            raise ValueError(f"max_replicas {value} is below min_replicas {low}")
        return value


_INT_OR_PERCENT = 'a whole number or a percentage such as "25%"'


class DisruptionBudget(Section):
    min_available: IntOrPercent | None = Field(None, json_schema_extra=form(_INT_OR_PERCENT), description='Pods that must stay up: an integer or "N%".')
    max_unavailable: IntOrPercent | None = Field(None, json_schema_extra=form(_INT_OR_PERCENT), description='Pods that may be down: an integer or "N%". Excludes min_available.')
    unhealthy_pod_eviction_policy: Literal["AlwaysAllow", "IfHealthyBudget"] = Field(
        "AlwaysAllow", description="AlwaysAllow suits a stateless API: a crash-looping pod never blocks a drain.")

    @model_validator(mode="after")
    def _exactly_one(self) -> DisruptionBudget:
        if (self.min_available is None) == (self.max_unavailable is None):
            raise ValueError("set exactly one of min_available or max_unavailable")
        return self

    # Kubernetes rounds both fields' percentages up (the disruption controller's GetScaledValueFromIntOrPercent).
    def pods_kept(self, replicas: int) -> int:
        """Pods the budget keeps available out of `replicas`."""
        if self.min_available is not None:
            return percent_value(self.min_available, replicas, round_up=True)
        assert self.max_unavailable is not None  # the validator guarantees exactly one
        return replicas - percent_value(self.max_unavailable, replicas, round_up=True)

    def evictions_allowed(self, replicas: int) -> int:
        """Pods a drain may evict at once when `replicas` are running and healthy."""
        return min(replicas, max(0, replicas - self.pods_kept(replicas)))


class Database(Section):
    base_pool_size: int = Field(ge=1, description="Pool size at load_estimate 1.0. Tier default: 5 / 10 / 20.")
    load_estimate: float = Field(1.0, gt=0, le=100, description="Expected load relative to the tier's baseline; 1.5 = 50% more.")
    pool_size: int | None = Field(None, ge=1, description="Explicit pool size; default ceil(base_pool_size x load_estimate).")
    max_overflow: int | None = Field(None, ge=0, description="Connections beyond the pool; default pool size // 2.")
    max_connections: int = Field(100, ge=1, description="The database's max_connections (PostgreSQL's default is 100).")
    reserved_connections_percent: int = Field(
        10, ge=0, le=90, description="Share of max_connections kept free for admin sessions and migrations.")

    @property
    def effective_pool_size(self) -> int:
        if self.pool_size is not None:
            return self.pool_size
        # Decimal of the written text: 20 x 1.1 is 22, not ceil(22.000000000000004) = 23.
        exact = Decimal(self.base_pool_size) * Decimal(repr(self.load_estimate))
        return int(exact.to_integral_value(rounding=ROUND_CEILING))

    @property
    def effective_max_overflow(self) -> int:
        return self.max_overflow if self.max_overflow is not None else self.effective_pool_size // 2

    @property
    def connections_per_pod(self) -> int:
        return self.effective_pool_size + self.effective_max_overflow

    @property
    def usable_connections(self) -> int:
        """max_connections less the reserve, rounded down."""
        return self.max_connections * (100 - self.reserved_connections_percent) // 100


class RateLimit(Section):
    requests: int = Field(100, ge=1, description="Requests allowed per window per client key.")
    window_seconds: int = Field(60, ge=1, description="Window length; requests/window must be a whole number per second or per minute.")
    burst: int | None = Field(None, ge=0, le=INT32_MAX, description=(
        "Requests over the rate nginx still accepts from a client at once. Default requests - 1: with nodelay nginx "
        "then admits exactly what the app's token bucket admits (requests at once, refilled at requests/window)."))
    nodelay: bool = Field(True, description="Serve burst requests at once instead of queueing them.")
    edge_instances: int = Field(1, ge=1, le=1000, description=(
        "nginx instances in front of the service. Each keeps its own zone, so together they admit this many times "
        "the rate (zone sync is commercial)."))
    key: str = Field("$binary_remote_addr", pattern=NGINX_VARIABLE_RE, json_schema_extra=form("an nginx variable such as $binary_remote_addr"),
                     description="nginx variable identifying a client. Behind a load balancer, use one carrying the real client address.")
    status_code: int = Field(429, ge=400, le=599, description="Status for rejected requests (nginx's own default is 503).")
    zone_size: str = Field("10m", pattern=r"^[1-9][0-9]{0,5}[km]$", json_schema_extra=form("a size such as 10m or 64k"), description="Shared memory for client states (1m holds ~16k).")

    @model_validator(mode="after")
    def _whole_rate(self) -> RateLimit:
        try:
            _ = self.nginx_rate  # computing it is the check: a rate nginx cannot write raises
        except ValueError as exc:
            raise rule_error(rules.NGINX_RATE_NOT_INTEGER, str(exc), at=("window_seconds",), related=(("requests",),)) from None
        return self

    @property
    def effective_burst(self) -> int:
        """`burst`, or requests - 1: nginx then admits `requests` back-to-back, as the app's bucket does."""
        return self.burst if self.burst is not None else self.requests - 1

    @property
    def nginx_rate(self) -> str:
        """`limit_req_zone` takes only whole requests per second or per minute."""
        per_second = Fraction(self.requests, self.window_seconds)
        if per_second.denominator == 1:
            return f"{per_second.numerator}r/s"
        per_minute = per_second * 60
        if per_minute.denominator == 1:
            return f"{per_minute.numerator}r/m"
        raise ValueError(
            f"{self.requests} requests per {self.window_seconds} s is {float(per_minute):.3g} per minute; nginx only takes a whole "
            "number of requests per second or per minute: choose a window that divides 60, or adjust requests")


class SessionAffinity(Section):
    enabled: bool = Field(True, description="Send each client session to the same upstream server.")
    cookie: str = Field("session_id", pattern=COOKIE_NAME_RE,
                        json_schema_extra=form("a cookie name of letters, digits and _ (nginx has no $cookie_ variable for other names)"),
                        description="The application's session cookie; nginx < 1.29.6 hashes on it.")
    routing_cookie: str = Field("route", pattern=COOKIE_NAME_RE, json_schema_extra=form("a cookie name of letters, digits and _"),
                                description="Cookie nginx >= 1.29.6 issues itself (`sticky cookie`); must differ from `cookie`.")
    ttl: Duration = Field(10800, description="Lifetime of the routing cookie (sticky mode). Default 3h.")

    @field_validator("ttl")
    @classmethod
    def _positive_ttl(cls, value: int) -> int:
        if value < 1:
            raise ValueError("ttl must be at least 1s: a routing cookie that expires at once gives no affinity")
        return value

    @field_validator("routing_cookie")
    @classmethod
    def _distinct(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("cookie"):
            raise ValueError(f"routing_cookie must differ from the application's cookie {value!r}, or nginx overwrites the session")
        return value


class UpstreamServer(Section):
    address: str = Field(pattern=SERVER_ADDRESS_RE,
                         json_schema_extra=form("host:port such as 10.0.0.11:30080, app.internal:8080 or [fd00::1]:8080 (port optional)"),
                         description="host:port (DNS name, IPv4, or [IPv6]); without a port, service.port.")
    weight: int = Field(1, ge=1, le=1000)
    max_fails: int | None = Field(None, ge=0, le=1000, description="Default: load_balancing.max_fails.")
    fail_timeout: Duration | None = Field(None, description="Default: load_balancing.fail_timeout.")
    backup: bool = Field(False, description="Only used when the others are down; not allowed with affinity hashing.")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        # The pattern admits what nginx refuses at load time: port 70000, "[::1::]", "300.1.1.1" (a "host name").
        import ipaddress

        host, port = split_address(value)
        if port is not None and port > 65535:
            raise ValueError(f"port {port} is above 65535")
        try:
            if host.startswith("["):
                ipaddress.IPv6Address(host[1:-1])
            elif host.replace(".", "").isdigit():
                ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{host} is not a valid IP address") from None
        return value


def _server_from_string(value: Any) -> Any:
    return {"address": value} if isinstance(value, str) else value


RESOLVE_SINCE = (1, 27, 3)  # `resolve` servers and `resolver` inside upstream {} in open-source nginx
_HOST_RE = r"^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?)*$"


class Discovery(Section):
    service: str = Field(pattern=_HOST_RE, json_schema_extra=form("a DNS name such as fraud-api-headless.fraud.svc.cluster.local"),
                         description="DNS name of a headless Service (clusterIP: None): one A record per ready pod.")
    port: int | None = Field(None, ge=1, le=65535, description="The pods' port. Default: service.port.")
    resolver: str = Field("kube-dns.kube-system.svc.cluster.local", pattern=SERVER_ADDRESS_RE,
                          json_schema_extra=form("a DNS server as host or host:port, such as 10.96.0.10"),
                          description="DNS server nginx asks at run time (the cluster's DNS Service).")


def _cidr(value: str) -> str:
    import ipaddress

    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an address or CIDR range ({exc}); nginx warns at low bits set") from None
    return value


class LoadBalancing(Section):
    nginx_version: str = Field("1.22", pattern=NGINX_VERSION_RE, json_schema_extra=form('a quoted version such as "1.22" or "1.29.6"'),
                               description='Oldest nginx that will load the file, as a quoted string ("1.22", "1.29.6").')
    method: Literal["least_conn", "round_robin", "random"] | None = Field(
        None, description="Balancing method. Default least_conn. With affinity on nginx < 1.29.6 the cookie hash is the method.")
    session_affinity: SessionAffinity = Field(default_factory=SessionAffinity)
    keepalive: int = Field(32, ge=0, le=4096, description="Idle keepalive connections each worker keeps to the upstream; 0 disables.")
    max_fails: int = Field(3, ge=0, le=1000, description="Failures within fail_timeout that mark a server down.")
    fail_timeout: Duration = Field(10, description="Default 10s.")
    zone_size: str = Field("64k", pattern=r"^[1-9][0-9]{0,5}[km]$", json_schema_extra=form("a size such as 10m or 64k"), description="Shared memory for upstream state across workers.")
    # discovery before servers: the servers validator reads it to tell "required" from "not needed".
    discovery: Discovery | None = Field(None, description=(
        "Instead of servers: a headless Service resolved at run time, one upstream peer per pod (nginx >= 1.27.3)."))
    servers: list[UpstreamServer] = Field(None, validate_default=True, description=(
        'Required unless discovery: addresses nginx balances over, "host:port" or mappings.'))
    real_ip_from: list[Annotated[str, AfterValidator(_cidr)]] = Field(default_factory=list, json_schema_extra=form(
        "addresses or CIDR ranges such as 10.0.0.0/8"), description=(
        "The load balancers in front of nginx: their X-Forwarded-For names the client (real_ip), so the rate-limit "
        "key is the client. Empty: off."))
    connect_timeout: Duration = Field(5, description="proxy_connect_timeout: how long nginx waits to connect to a "
                                                     "server before trying the next. Default 5s.")
    read_timeout: Duration = Field(60, description="proxy_read_timeout: longest silence between two reads of an "
                                                   "answer. Default 60s.")
    next_upstream_tries: int = Field(2, ge=1, le=100, description=(
        "Servers nginx tries for one request (proxy_next_upstream_tries), the first included; never replays a POST."))

    @field_validator("servers", mode="before")
    @classmethod
    def _strings_to_servers(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            # Required, unless discovery is set (or was written and failed: that error is the one to fix).
            if "discovery" in info.data and info.data["discovery"] is None:
                raise PydanticCustomError("missing", "Field required")
            return []
        return [_server_from_string(v) for v in value] if isinstance(value, list) else value

    @field_validator("servers")
    @classmethod
    def _unique(cls, value: list[UpstreamServer]) -> list[UpstreamServer]:
        seen: set[str] = set()
        for server in value:
            if server.address in seen:
                raise ValueError(f"server {server.address} is listed twice")
            seen.add(server.address)
        if value and all(s.backup for s in value):
            raise ValueError("every server is a backup; at least one must be a primary")
        return value

    @field_validator("connect_timeout")
    @classmethod
    def _connect(cls, value: int) -> int:
        if not 1 <= value <= 75:
            raise ValueError("connect_timeout must be 1s to 75s (nginx: it usually cannot exceed 75 seconds)")
        return value

    @field_validator("read_timeout")
    @classmethod
    def _read(cls, value: int) -> int:
        if value < 1:
            raise ValueError("read_timeout must be at least 1s")
        return value

    @field_validator("nginx_version")
    @classmethod
    def _supported(cls, value: str) -> str:
        if nginx_version_tuple(value) < MIN_NGINX:
            raise ValueError(f"nginx {value} is older than the oldest supported version, 1.18")
        return value

    @model_validator(mode="after")
    def _servers_or_discovery(self) -> LoadBalancing:
        if self.discovery is not None and self.servers:
            raise rule_error(rules.UPSTREAM_SERVERS_OR_DISCOVERY,
                             "discovery and static servers exclude each other: nginx would mix node and pod addresses "
                             "in one upstream; remove servers or discovery", at=("discovery",), related=(("servers",),))
        if self.discovery is None and not self.servers:
            raise rule_error(rules.UPSTREAM_SERVERS_OR_DISCOVERY,
                             "required: list the upstream servers, or set load_balancing.discovery", at=("servers",))
        if self.discovery is not None and self.version < RESOLVE_SINCE:
            raise rule_error(rules.UPSTREAM_RESOLVE_VERSION,
                             f"discovery needs nginx 1.27.3 or later (`resolve` and `resolver` in upstream {{}} are "
                             f"open source since 1.27.3); nginx_version is {self.nginx_version}: set "
                             'nginx_version: "1.27.3" or later, or list servers instead',
                             at=("discovery",), related=(("nginx_version",),))
        return self

    @model_validator(mode="after")
    def _one_method(self) -> LoadBalancing:
        backup = next((i for i, s in enumerate(self.servers) if s.backup), None)
        if self.affinity_mode == "hash":
            if self.method is not None:
                raise rule_error(
                    rules.NGINX_METHOD_CONFLICT,
                    f"method {self.method} conflicts with session affinity: on nginx {self.nginx_version} affinity is "
                    "`hash $cookie_... consistent`, itself the balancing method; remove `method` or disable affinity",
                    at=("method",), related=(("session_affinity", "enabled"), ("nginx_version",)))
            if backup is not None:
                raise rule_error(
                    rules.NGINX_BACKUP_CONFLICT,
                    "backup servers cannot be combined with hash-based session affinity (nginx rejects it); "
                    "remove `backup` or disable affinity",
                    at=("servers", backup, "backup"), related=(("session_affinity", "enabled"), ("nginx_version",)))
        if self.method == "random" and backup is not None:
            raise rule_error(rules.NGINX_BACKUP_CONFLICT, "backup servers cannot be combined with method random (nginx rejects it)",
                             at=("servers", backup, "backup"), related=(("method",),))
        return self

    @property
    def version(self) -> tuple[int, int, int]:
        return nginx_version_tuple(self.nginx_version)

    @property
    def affinity_mode(self) -> Literal["off", "hash", "sticky"]:
        if not self.session_affinity.enabled:
            return "off"
        return "sticky" if self.version >= STICKY_COOKIE_SINCE else "hash"

    @property
    def effective_method(self) -> str:
        if self.affinity_mode == "hash":
            return "hash"
        return self.method or "least_conn"


def nginx_version_tuple(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(".")] + [0, 0]
    return (parts[0], parts[1], parts[2])


class _Alert(Section):
    for_: Duration = Field(alias="for", description="How long the condition must hold before the alert fires.")
    severity: Severity


def _ratio(default: float, what: str) -> Any:
    return Field(default, gt=0, lt=1, description=f"{what}, a ratio strictly between 0 and 1.")


class ErrorRateAlert(_Alert):
    threshold: float = _ratio(0.05, "Share of 5xx responses above which HighErrorRate fires")
    for_: Duration = Field(300, alias="for")
    severity: Severity = "warning"


class LatencyAlert(_Alert):
    threshold_seconds: float = Field(1.0, gt=0, le=3600, description="p95 request latency above which HighLatencyP95 fires.")
    for_: Duration = Field(600, alias="for")
    severity: Severity = "warning"


class PoolAlert(_Alert):
    threshold: float = _ratio(0.9, "Pool use / capacity above which DatabasePoolNearExhaustion fires")
    for_: Duration = Field(120, alias="for")
    severity: Severity = "critical"


class CacheAlert(_Alert):
    threshold: float = _ratio(0.6, "Cache hit ratio below which LowCacheHitRate fires")
    for_: Duration = Field(900, alias="for")
    severity: Severity = "info"


class ExceptionsAlert(_Alert):
    threshold: int = Field(10, ge=0, description="Unhandled exceptions per rate window above which UnhandledExceptions fires.")
    for_: Duration = Field(0, alias="for")
    severity: Severity = "warning"


class SlowQueriesAlert(_Alert):
    threshold_seconds: float = Field(2.0, gt=0, le=3600, description="p95 query duration above which SlowDatabaseQueries fires.")
    for_: Duration = Field(300, alias="for")
    severity: Severity = "warning"


class RateLimitedAlert(_Alert):
    threshold_per_second: float = Field(1.0, gt=0, description="Rejected requests per second above which RateLimitExceeded fires.")
    for_: Duration = Field(600, alias="for")
    severity: Severity = "info"


class MetricsMissingAlert(_Alert):
    """No threshold: fires when no target of the service's job and namespace is up (gone, or failing)."""

    for_: Duration = Field(300, alias="for")
    severity: Severity = Field("warning", description="Tier default: critical in production, warning elsewhere "
                                                      "(a development target going away must not page).")


class RolloutStuckAlert(_Alert):
    """No threshold: fires when a canary or blue-green rollout waits on a person, is aborted or fails this long."""

    for_: Duration = Field(1800, alias="for")
    severity: Severity = "warning"


class Alerts(Section):
    error_rate: ErrorRateAlert = Field(default_factory=ErrorRateAlert)
    latency_p95: LatencyAlert = Field(default_factory=LatencyAlert)
    db_pool_utilization: PoolAlert = Field(default_factory=PoolAlert)
    cache_hit_rate: CacheAlert = Field(default_factory=CacheAlert)
    unhandled_exceptions: ExceptionsAlert = Field(default_factory=ExceptionsAlert)
    slow_queries: SlowQueriesAlert = Field(default_factory=SlowQueriesAlert)
    rate_limited: RateLimitedAlert = Field(default_factory=RateLimitedAlert)
    metrics_missing: MetricsMissingAlert = Field(default_factory=MetricsMissingAlert)
    rollout_stuck: RolloutStuckAlert = Field(default_factory=RolloutStuckAlert, description=(
        "RolloutStuck, written for canary and blue-green rollouts only."))
    runbook_url: str | None = Field(
        None, pattern=r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%/-]*)?$",
        json_schema_extra=form("an http:// or https:// URL without spaces, quotes or query string"),
        description="Base URL of the runbooks; each alert links to <runbook_url>#<AlertName>.")
    rate_window: Duration = Field(300, description="Window of every rate()/increase() in the rules. Default 5m.")
    scrape_interval: Duration = Field(30, description="How often Prometheus scrapes the service; rate windows must be >= 4x it.")
    labels: dict[str, str] = Field(default_factory=dict, description="Extra labels on every alert (e.g. team).")

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        import re

        for key in value:
            if not re.fullmatch(r"^[a-zA-Z_][a-zA-Z0-9_]*$", key) or key.startswith("__"):
                raise ValueError(f"{key!r} is not a Prometheus label name")
            if key in ("severity", "service", "environment", "namespace", "job"):
                raise ValueError(f"label {key!r} is set by infragen itself")
        for key, text in value.items():
            if "{{" in text:  # Prometheus expands alert label values as Go templates
                raise ValueError(f"label {key}: '{{{{' would start a Prometheus template; label values are literal text")
        return value

    @field_validator("rate_window")
    @classmethod
    def _window_vs_scrape(cls, value: int) -> int:
        if value < 60:
            raise ValueError("rate_window below 1m leaves too few samples for rate()")
        return value

    def items(self) -> list[tuple[str, _Alert]]:
        return [(name, getattr(self, name)) for name in ALERT_KEYS]


ALERT_KEYS = ("error_rate", "latency_p95", "db_pool_utilization", "cache_hit_rate",
              "unhandled_exceptions", "slow_queries", "rate_limited", "metrics_missing", "rollout_stuck")

_ABS_PATH = r"^/[A-Za-z0-9._/-]+$"
# Go's url.Parse (Alertmanager) refuses a `%` not followed by two hex digits.
_HTTP_URL = r"^https?://[A-Za-z0-9.-]+(:[0-9]+)?(/([A-Za-z0-9._~/-]|%[0-9A-Fa-f]{2})*)?$"
# Kubernetes: a Secret's name is a DNS subdomain, a key is letters, digits, '-', '_' and '.'.
SECRET_NAME_RE = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
SECRET_KEY_RE = r"^[-._a-zA-Z0-9]+$"
DEFAULT_SECRETS_DIR = "/etc/alertmanager/secrets"  # where the Prometheus Operator mounts an Alertmanager's Secrets
AlertmanagerFormat = Literal["operator", "file"]
NULL_RECEIVER = "null"  # the receiver without integrations that catches what is not this service's (file mode)


class SecretRef(Section):
    """A key of a Kubernetes Secret: `{name, key}`, as an AlertmanagerConfig references it (never a value)."""

    name: str = Field(max_length=253, pattern=SECRET_NAME_RE, json_schema_extra=form(
        "a Kubernetes Secret name such as alertmanager-pagerduty"), description="The Secret's name.")
    key: str = Field(max_length=253, pattern=SECRET_KEY_RE, json_schema_extra=form("a key of the Secret such as routing-key"),
                     description="The key in the Secret that holds the value.")

    @model_validator(mode="before")
    @classmethod
    def _both(cls, data: Any) -> Any:
        if isinstance(data, dict) and "name" in data and "key" not in data:
            raise ValueError(f"a Secret reference names the key too: {{name: {data['name']}, key: <the key in the Secret "
                             "that holds the value>}")
        return data


def _one_secret(owner: str, file_key: str, secret_key: str, file: str | None, secret: SecretRef | None) -> None:
    if file is not None and secret is not None:
        raise ValueError(f"{owner} has both {file_key} and {secret_key}: keep one ({secret_key}: {{name, key}} names "
                         f"the Kubernetes Secret, {file_key} a file where it is mounted)")
    if file is None and secret is None:
        raise ValueError(f"{owner} needs {secret_key}: {{name: <Secret>, key: <key>}} (or, with alertmanager.format: "
                         f"file, {file_key})")


class PagerDuty(Section):
    routing_key_secret: SecretRef | None = Field(None, description=(
        "The Kubernetes Secret key holding the Events v2 routing key."))
    routing_key_file: str | None = Field(None, pattern=_ABS_PATH, json_schema_extra=form(
        "an absolute file path such as /etc/alertmanager/secrets/alertmanager-pagerduty/routing-key"),
        description="File mode only: a file holding the routing key, instead of routing_key_secret.")
    send_resolved: bool = True
    url: str | None = Field(
        None, pattern=_HTTP_URL, json_schema_extra=form("an http:// or https:// URL such as https://events.pagerduty.com/v2/enqueue"),
        description="Events API endpoint (Alertmanager's `url`). Default: Alertmanager's, PagerDuty's public one.")

    @model_validator(mode="after")
    def _secret(self) -> PagerDuty:
        _one_secret("pagerduty", "routing_key_file", "routing_key_secret", self.routing_key_file, self.routing_key_secret)
        return self


class Slack(Section):
    api_url_secret: SecretRef | None = Field(None, description="The Kubernetes Secret key holding the webhook URL.")
    api_url_file: str | None = Field(None, pattern=_ABS_PATH, json_schema_extra=form(
        "an absolute file path such as /etc/alertmanager/secrets/alertmanager-slack/api-url"),
        description="File mode only: a file holding the webhook URL, instead of api_url_secret.")
    channel: str | None = Field(None, pattern=r"^[#@]?[a-z0-9][a-z0-9._-]{0,79}$", json_schema_extra=form("a Slack channel such as #fraud-alerts"),
                                description="Override the webhook's channel.")
    send_resolved: bool = Field(True, description="Alertmanager's Slack default is false; resolved notices are wanted.")

    @model_validator(mode="after")
    def _secret(self) -> Slack:
        _one_secret("slack", "api_url_file", "api_url_secret", self.api_url_file, self.api_url_secret)
        return self


class Receiver(Section):
    pagerduty: PagerDuty | None = None
    slack: Slack | None = None

    @model_validator(mode="after")
    def _something(self) -> Receiver:
        if self.pagerduty is None and self.slack is None:
            raise ValueError("a receiver needs pagerduty or slack (or both)")
        return self

    @property
    def pages(self) -> bool:
        """Does it page a person (PagerDuty) rather than post to a chat?"""
        return self.pagerduty is not None

    def files(self) -> list[tuple[tuple[str, str], str]]:
        """((integration, key), path) of each secret this receiver reads from a file it names itself."""
        found = []
        if self.pagerduty is not None and self.pagerduty.routing_key_file is not None:
            found.append((("pagerduty", "routing_key_file"), self.pagerduty.routing_key_file))
        if self.slack is not None and self.slack.api_url_file is not None:
            found.append((("slack", "api_url_file"), self.slack.api_url_file))
        return found


class SeverityRoutes(Section):
    # Critical goes to the team's chat unless the tier pages (production's tier default routes it to oncall).
    critical: str = Field("team-slack", description="Tier default: oncall in production, team-slack elsewhere.")
    warning: str = "team-slack"
    info: str = "team-slack"


def _default_receivers() -> dict[str, Receiver]:
    return {
        "oncall": Receiver(pagerduty=PagerDuty(routing_key_secret=SecretRef(name="alertmanager-pagerduty", key="routing-key"))),
        "team-slack": Receiver(slack=Slack(api_url_secret=SecretRef(name="alertmanager-slack", key="api-url"))),
    }


class AlertmanagerSettings(Section):
    format: AlertmanagerFormat | None = Field(None, description=(
        "operator: a Prometheus Operator AlertmanagerConfig (kubernetes/alertmanagerconfig.yaml); file: "
        "alertmanager/alertmanager.yaml for an Alertmanager that reads files. Default: operator when "
        "monitoring.operator is true, else file."))
    receivers: dict[DnsLabel, Receiver] = Field(
        default_factory=_default_receivers, min_length=1,
        description="Named receivers. Default: oncall (PagerDuty) and team-slack (Slack), each reading its secret from "
                    "a Kubernetes Secret (alertmanager-pagerduty / routing-key, alertmanager-slack / api-url).")
    routes: SeverityRoutes = Field(default_factory=SeverityRoutes, description="Receiver for each severity.")
    default_receiver: str = Field("team-slack", description="Receiver of the service's alerts no severity route matches.")
    group_by: list[Annotated[str, Field(pattern=r"^([a-zA-Z_][a-zA-Z0-9_]*|\.\.\.)$")]] = Field(
        default_factory=lambda: ["alertname", "namespace"], min_length=1, json_schema_extra=form("label names (letters, digits, _) or '...'"),
        description="Label names alerts are grouped by (or `...` for all labels).")
    group_wait: Duration = Field(30, description="Default 30s.")
    group_interval: Duration = Field(300, description="Default 5m. Alertmanager refuses 0s.")
    repeat_interval: Duration = Field(14400, description="Default 4h. Alertmanager refuses 0s.")
    secrets_dir: str = Field(DEFAULT_SECRETS_DIR, pattern=_ABS_PATH, json_schema_extra=form(
        "an absolute directory such as /etc/alertmanager/secrets"), description=(
        "File mode: where the Secrets are mounted, one directory per Secret and a file per key "
        "(<secrets_dir>/<secret>/<key>), as the Prometheus Operator mounts an Alertmanager's spec.secrets."))
    config_labels: KubernetesLabels = Field(default_factory=dict, description=(
        "Operator mode: labels of the AlertmanagerConfig, for an Alertmanager whose alertmanagerConfigSelector "
        "selects by label (kube-prometheus-stack selects every AlertmanagerConfig: none needed)."))

    @field_validator("group_interval", "repeat_interval")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("must be at least 1s; Alertmanager refuses 0s here")
        return value

    @field_validator("group_by")
    @classmethod
    def _group_by(cls, value: list[str]) -> list[str]:
        # Alertmanager's own rules: no label twice, and `...` (group by everything) stands alone.
        for i, name in enumerate(value):
            if name in value[:i]:
                raise ValueError(f"{name!r} is listed twice")
        if "..." in value and len(value) > 1:
            raise ValueError("'...' groups by every label and cannot be combined with label names")
        return value

    @field_validator("receivers")
    @classmethod
    def _reserved(cls, value: dict[str, Receiver]) -> dict[str, Receiver]:
        if NULL_RECEIVER in value:
            raise ValueError(f"the receiver name {NULL_RECEIVER!r} is reserved: infragen's file gives it to what is not "
                             "this service's alerts; choose another name")
        return value

    @model_validator(mode="after")
    def _known_receivers(self) -> AlertmanagerSettings:
        missing = [(where, name) for where, name in self.route_references() if name not in self.receivers]
        if missing:
            where, name = missing[0]
            raise rule_error(rules.RECEIVER_UNDEFINED,
                             f"{where} names receiver {name!r}, which is not defined (receivers: {', '.join(sorted(self.receivers))})",
                             at=tuple(where.split(".")), related=(("receivers",),))
        return self

    def route_references(self) -> list[tuple[str, str]]:
        refs = [(f"routes.{sev}", getattr(self.routes, sev)) for sev in SEVERITIES]
        refs.append(("default_receiver", self.default_receiver))
        return refs


class Monitoring(Section):
    operator: bool = Field(True, description="Emit Prometheus Operator resources (ServiceMonitor, PrometheusRule, dashboard "
                                             "ConfigMap). false: plain files only (prometheus/scrape.yaml).")
    port_name: PortName = Field("http", description="Name of the Service port that serves the metrics (the operator "
                                                    "refuses numbers).")
    path: str = Field("/metrics", pattern=r"^/[A-Za-z0-9._~%/-]*$", json_schema_extra=form("a path starting with /, such as /metrics"),
                      description="HTTP path of the metrics.")
    selector_labels: KubernetesLabels | None = Field(
        None, description="Labels that pick the service's Kubernetes Service. Default: the pod selector (service.selector).")
    labels: KubernetesLabels = Field(
        default_factory=dict, description="Labels on every operator resource, so the cluster's Prometheus selects them "
                                          "(kube-prometheus-stack: release: <its release name>).")
    dashboard_labels: KubernetesLabels = Field(
        default_factory=lambda: {"grafana_dashboard": "1"},
        description="Labels of the dashboard ConfigMap; kube-prometheus-stack's Grafana sidecar loads grafana_dashboard: \"1\".")

    @field_validator("selector_labels")
    @classmethod
    def _not_empty(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not value:
            raise ValueError("an empty selector picks every Service in the namespace; name at least one label")
        return value


# The Python Prometheus client's default Histogram buckets (prometheus_client.metrics.Histogram.DEFAULT_BUCKETS),
# without the +Inf bucket every histogram has. The application exports its latency histogram with them.
PYTHON_CLIENT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


class Metrics(Section):
    latency_buckets: list[float] = Field(
        default_factory=lambda: list(PYTHON_CLIENT_BUCKETS), min_length=1,
        description="Upper bounds (seconds) of the buckets of http_request_duration_seconds as the application exports "
                    "them, without +Inf. Default: the Python Prometheus client's default Histogram buckets.")

    @field_validator("latency_buckets")
    @classmethod
    def _increasing(cls, value: list[float]) -> list[float]:
        for i, bound in enumerate(value):
            if not 0 < bound < float("inf"):
                raise ValueError(f"bucket {bound!r} is not a positive finite number of seconds (+Inf is implicit)")
            if i and bound <= value[i - 1]:
                raise ValueError(f"buckets must increase strictly: {value[i - 1]!r} then {bound!r}")
        return value


# The longest alert window (3d): a period shorter than it could never hold a whole window.
LONGEST_SLO_WINDOW = 3 * 86400
DEFAULT_EXCLUDED_ENDPOINTS = ("/health", "/health/detailed", "/metrics")


def _objective(default: float, what: str) -> Any:
    return Field(default, description=f"{what}, in percent: above 0 and below 100 (100 leaves no error budget).")


class _Objective(Section):
    enabled: bool = Field(True, description="Record this SLO and alert on its burn rate (when slo.enabled).")
    objective: float

    @field_validator("objective")
    @classmethod
    def _below_100(cls, value: float) -> float:
        if value >= 100:
            raise ValueError(f"an objective of {format_number(value)}% leaves no error budget: every failed request would breach it "
                             "and every burn-rate alert would divide by zero; use a value below 100 such as 99.9")
        if value <= 0:
            raise ValueError(f"an objective of {format_number(value)}% is not above 0; use a percentage such as 99.9")
        return value


class AvailabilityObjective(_Objective):
    objective: float = _objective(99.9, "Share of requests not answered 5xx (429 is not an error)")


class LatencyObjective(_Objective):
    objective: float = _objective(99.0, "Share of requests answered within threshold_seconds")
    threshold_seconds: float = Field(0.5, gt=0, le=3600, description="Latency threshold: must be one of "
                                                                     "metrics.latency_buckets (the `le` it reads).")


class FastBurn(Section):
    for_: Duration = Field(120, alias="for", description="How long a fast burn must hold before the critical alert "
                                                         "fires. Default 2m.")


class SlowBurn(Section):
    for_: Duration = Field(3600, alias="for", description="How long a slow burn must hold before the warning fires. "
                                                          "Default 1h.")


class Slo(Section):
    enabled: bool = Field(description="Record the SLIs and alert on error-budget burn. Tier default: off in "
                                      "development, on in staging and production.")
    period: Duration = Field(30 * 86400, description="The period the error budget covers. Default 30d; at least 3d "
                                                     "(the longest alert window).")
    availability: AvailabilityObjective = Field(default_factory=AvailabilityObjective)
    latency: LatencyObjective = Field(default_factory=LatencyObjective)
    exclude_endpoints: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: list(DEFAULT_EXCLUDED_ENDPOINTS),
        description="Values of the `endpoint` label the SLIs leave out (probes and the metrics scrape).")
    min_request_rate: float = Field(1.0, ge=0, le=1e9, description=(
        "Requests per second (averaged over an alert's long window) below which the burn-rate alerts stay silent."))
    fast: FastBurn = Field(default_factory=FastBurn, description="The fast-burn tier (critical).")
    slow: SlowBurn = Field(default_factory=SlowBurn, description="The slow-burn tier (warning).")

    @field_validator("period")
    @classmethod
    def _period(cls, value: int) -> int:
        if value < LONGEST_SLO_WINDOW:
            raise ValueError(f"a period of {format_duration(value)} is shorter than the longest alert window (3d); "
                             "use at least 3d, usually 30d or 28d")
        return value

    @field_validator("exclude_endpoints")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an endpoint is listed twice")
        return value

    @property
    def objectives(self) -> list[tuple[str, _Objective]]:
        """The SLOs that are recorded and alerted on, in a fixed order (none when the section is off)."""
        if not self.enabled:
            return []
        return [(name, o) for name, o in (("availability", self.availability), ("latency", self.latency)) if o.enabled]


def nearest_buckets(value: float, buckets: list[float]) -> str:
    """The bucket bounds on either side of `value`, in words."""
    below = [b for b in buckets if b < value]
    above = [b for b in buckets if b > value]
    if below and above:
        return f"the nearest are {format_number(below[-1])} and {format_number(above[0])}"
    if below:
        return f"the largest is {format_number(below[-1])}"
    return f"the smallest is {format_number(above[0])}"


Strategy = Literal["rolling", "canary", "blue-green"]
ARGO_STRATEGIES: tuple[str, ...] = ("canary", "blue-green")  # strategies an Argo Rollout runs
KEEP_PREVIOUS = "or set `rollout.strategy: rolling` to keep the previous output"


class CanarySettings(Section):
    steps: list[int] = Field(default_factory=lambda: [5, 10, 50], min_length=1, description=(
        "Canary weights in percent, strictly increasing, each 1-99; full rollout after the last."))
    pause: Duration | None = Field(300, description="Pause after each step. Default 5m; null waits for a person "
                                                    "(`kubectl argo rollouts promote`).")
    analysis: bool = Field(True, description="Run the gates as a background analysis from the first step.")

    @field_validator("steps")
    @classmethod
    def _weights(cls, value: list[int]) -> list[int]:
        for i, weight in enumerate(value):
            if not 1 <= weight <= 99:
                raise ValueError(f"weight {weight} is not 1-99: 100 is the full rollout after the last step")
            if i and weight <= value[i - 1]:
                raise ValueError(f"weights must increase strictly: {value[i - 1]} then {weight}")
        return value


class BlueGreenSettings(Section):
    rollback_window: Duration = Field(10800, description="How long the old stack keeps running after the switch, "
                                                         "so a rollback is immediate. Default 3h.")
    auto_promote: bool = Field(True, description="Switch as soon as the pre-promotion check passes. Tier default: "
                                                 "false in production (a person promotes).")
    active_service: DnsLabel | None = Field(None, description="The Service that takes production traffic. "
                                                              "Default: service.name.")
    preview_service: DnsLabel | None = Field(None, description="The Service that reaches the new stack before the "
                                                               "switch (infragen writes it). Default: <service.name>-preview.")
    analysis: bool = Field(True, description="Check the new stack's health before the switch and the gates after it.")

    @field_validator("rollback_window")
    @classmethod
    def _window(cls, value: int) -> int:
        if value < 1:
            raise ValueError("a rollback window of 0 removes the old stack at the switch: nothing to roll back to")
        return value


class Gates(Section):
    max_error_rate: float = Field(0.05, gt=0, lt=1, description="Share of 5xx responses of the new pods above which "
                                                                "a measurement fails.")
    max_latency_p95_seconds: float = Field(0.5, gt=0, le=3600, description="p95 latency of the new pods above which "
                                                                          "a measurement fails.")
    window: Duration = Field(120, description="rate() window of the gate queries, >= 4 x alerts.scrape_interval. "
                                              "Default 2m.")
    interval: Duration = Field(60, description="Time between measurements. Default 1m.")
    count: int | None = Field(None, ge=1, le=1000, description=(
        "Blue-green only: measurements after the switch. Default: the fewest that judge full_traffic. A canary's "
        "gates measure until the rollout completes, so a count is refused there."))
    full_traffic: Duration = Field(600, description="Blue-green: how long after the switch the post-promotion gates "
                                                    "judge the new stack under full traffic. Default 10m.")
    failure_limit: int = Field(1, ge=0, le=1000, description="Failed measurements tolerated; one more aborts the "
                                                             "rollout.")
    max_burn_rate: float | None = Field(None, gt=0, le=10000, description=(
        "Budget gate: the highest burn rate of each enabled SLO's error budget (slo.*) the new pods may show over "
        "the gate window; a measurement above it fails. Unset: no budget gate."))

    @field_validator("interval", "window")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1s")
        return value


class Rollout(Section):
    strategy: Strategy = Field("rolling", description="rolling | canary | blue-green. Tier default: development "
                                                      "rolling, staging canary, production blue-green.")
    max_surge: IntOrPercent = Field("25%", json_schema_extra=form(_INT_OR_PERCENT),
                                    description="Pods a rolling update (or a canary) adds above the replica count "
                                                "(Kubernetes default 25%).")
    max_unavailable: IntOrPercent = Field(0, json_schema_extra=form(_INT_OR_PERCENT),
                                          description="Pods a rolling update (or a canary) may take down below the "
                                                      "replica count. Default 0: full capacity throughout.")
    min_ready_seconds: int = Field(0, ge=0, le=3600, description="Seconds a new pod must stay ready before it counts.")
    progress_deadline_seconds: int = Field(600, ge=1, le=86400, description="Seconds without progress before a rollout "
                                                                            "is reported failed (Kubernetes default).")
    workload_scale_down: Literal["progressively", "onsuccess", "never"] = Field(
        "progressively", description="How Argo Rollouts scales the Deployment down when it takes over "
                                     "(workloadRef.scaleDown). never leaves its pods serving outside every gate.")
    prometheus_url: str | None = Field(
        None, pattern=_HTTP_URL, json_schema_extra=form("an http:// or https:// URL such as http://prometheus.monitoring.svc:9090"),
        description="The Prometheus the analysis queries. Required with canary and blue-green.")
    canary: CanarySettings = Field(default_factory=CanarySettings)
    blue_green: BlueGreenSettings = Field(default_factory=BlueGreenSettings)
    gates: Gates = Field(default_factory=Gates)

    @model_validator(mode="after")
    def _consistent(self) -> Rollout:
        if self.max_surge in (0, "0%") and self.max_unavailable in (0, "0%"):
            raise ValueError("max_surge and max_unavailable are both 0: no pod could ever be replaced")
        if self.progress_deadline_seconds <= self.min_ready_seconds:
            raise ValueError(f"progress_deadline_seconds {self.progress_deadline_seconds} must be greater than "
                             f"min_ready_seconds {self.min_ready_seconds} (Kubernetes and Argo Rollouts refuse it)")
        return self

    def surge_pods(self, replicas: int) -> int:
        """Extra pods a rolling update adds to `replicas` (Kubernetes rounds a maxSurge percentage up)."""
        return percent_value(self.max_surge, replicas, round_up=True)

    def unavailable_pods(self, replicas: int) -> int:
        """Pods an update may take down (Kubernetes rounds a maxUnavailable percentage down)."""
        return percent_value(self.max_unavailable, replicas, round_up=False)


_HEALTH_PATH = r"^/[A-Za-z0-9._~%/-]*$"


class Probe(Section):
    period_seconds: int = Field(10, ge=1, le=3600)
    timeout_seconds: int = Field(1, ge=1, le=3600)
    failure_threshold: int = Field(3, ge=1, le=1000)


def _startup_probe() -> Probe:
    return Probe(period_seconds=5, timeout_seconds=1, failure_threshold=30)


class Health(Section):
    liveness_path: str = Field("/health", pattern=_HEALTH_PATH, json_schema_extra=form("an absolute path such as /health"),
                               description="Restarts the container when it fails: only what a restart fixes.")
    readiness_path: str = Field("/health", pattern=_HEALTH_PATH, json_schema_extra=form("an absolute path such as /health"),
                                description="Takes the pod out of the Service while it fails.")
    dependency_paths: list[Annotated[str, Field(pattern=_HEALTH_PATH)]] = Field(
        default_factory=lambda: ["/health/detailed"], json_schema_extra=form("absolute paths such as /health/detailed"),
        description="Paths that check dependencies (database, redis, external services): never a liveness probe. "
                    "The first is what a blue-green pre-promotion check asks.")
    container: DnsLabel | None = Field(None, description="The Deployment's container the probes go to. Default: "
                                                         "service.name.")
    startup: Probe = Field(default_factory=_startup_probe, description="Holds the other probes until the app has "
                                                                      "started: up to failure_threshold x period_seconds.")
    liveness: Probe = Field(default_factory=Probe, description="Kubernetes' defaults (10s, 1s, 3).")
    readiness: Probe = Field(default_factory=Probe, description="Kubernetes' defaults (10s, 1s, 3).")


# The validation context key under which the loader passes the ids `policy.allow` may name: the production-only
# rules of infragen.policy's registry (the models cannot import it: it imports them).
ALLOWABLE_RULES = "allowable_rules"
ACKNOWLEDGEABLE_RULES = "acknowledgeable_rules"  # the warnings `policy.acknowledge` may name


def _known_rule(key: str) -> Any:
    def check(value: str, info: ValidationInfo) -> str:
        known = (info.context or {}).get(key)
        if known is not None and value not in known:
            expected = ", ".join(repr(a) for a in known[:-1]) + f" or {known[-1]!r}" if len(known) > 1 else repr(known[0])
            raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
        return value
    return AfterValidator(check)


class Policy(Section):
    allow: list[Annotated[str, _known_rule(ALLOWABLE_RULES)]] = Field(
        default_factory=list,
        description="Production-tier rules this environment is exempt from (each then reports a warning, not an error). "
                    "Counts only in the environment's own file, not in a partial. See docs/policy.md.")

    acknowledge: list[Annotated[str, _known_rule(ACKNOWLEDGEABLE_RULES)]] = Field(
        default_factory=list,
        description="Warnings this environment keeps knowingly: each is then printed as a note and never fails "
                    "--strict. See docs/policy.md.")

    @field_validator("allow", "acknowledge")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("a rule is listed twice")
        return value


class EnvironmentSpec(Section):
    """One environment file after `extends` and tier defaults are merged in."""

    extends: str | list[str] | None = Field(
        None, description="Partials (`_name`, file environments/_name.yaml) merged beneath this file, in order.")
    tier: Tier = Field(description="development | staging | production: supplies the defaults below.")
    service: Service
    autoscaling: Autoscaling
    disruption_budget: DisruptionBudget
    database: Database
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    load_balancing: LoadBalancing
    alerts: Alerts = Field(default_factory=Alerts)
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    rollout: Rollout = Field(default_factory=Rollout)
    health: Health = Field(default_factory=Health)
    monitoring: Monitoring = Field(default_factory=Monitoring)
    validation: Validation = Field(default_factory=Validation, description="The app's request limits.")
    quotas: dict[Feature, Quota] = Field(default_factory=dict, json_schema_extra=form(
        "feature names of lower-case letters, digits and _, such as api_calls"),
        description="Per-user feature quotas: feature -> {limit, period: daily | monthly}.")
    throttling: Throttling = Field(default_factory=Throttling, description="Dynamic throttling under load.")
    sessions: Sessions = Field(default_factory=Sessions, description="The Redis session store.")
    metrics: Metrics = Field(default_factory=Metrics, description="What the application's metrics look like.")
    slo: Slo = Field(description="Service level objectives: recording rules, burn-rate alerts, budget on the dashboard.")
    policy: Policy = Field(default_factory=Policy, description="Documented exceptions to the production-tier rules.")

    @property
    def alertmanager_format(self) -> AlertmanagerFormat:
        """alertmanager.format, defaulting to the operator's resource where the Prometheus Operator runs."""
        am = self.alertmanager
        return am.format if am.format is not None else ("operator" if self.monitoring.operator else "file")

    @model_validator(mode="after")
    def _no_files_in_operator_mode(self) -> EnvironmentSpec:
        if self.alertmanager_format != "operator":
            return self
        for name, receiver in sorted(self.alertmanager.receivers.items()):
            for (integration, key), _ in receiver.files():
                secret_key = key.replace("_file", "_secret")
                why = ("alertmanager.format is operator" if self.alertmanager.format is not None
                       else "alertmanager.format defaults to operator with monitoring.operator: true")
                raise rule_error(rules.SECRET_FILE_IN_OPERATOR_MODE,
                                 f"{why}: an AlertmanagerConfig references Kubernetes Secrets and has no file fields; "
                                 f"use {secret_key}: {{name: <Secret in the service's namespace>, key: <key in it>}}",
                                 at=("alertmanager", "receivers", name, integration, key),
                                 related=(("alertmanager", "format"), ("monitoring", "operator")))
        return self

    @property
    def gate_timing(self) -> GateTiming:
        gates = self.rollout.gates
        return GateTiming(window=gates.window, scrape_interval=self.alerts.scrape_interval, interval=gates.interval,
                          failure_limit=gates.failure_limit, count=gates.count, full_traffic=gates.full_traffic)

    @model_validator(mode="after")
    def _gate_timing(self) -> EnvironmentSpec:
        """Gate timing that cannot work as the controller runs it is refused (see infragen.models.timing)."""
        r, timing = self.rollout, self.gate_timing
        gates = ("rollout", "gates")
        timing_paths = (gates + ("window",), ("alerts", "scrape_interval"), gates + ("interval",),
                        gates + ("failure_limit",))
        if r.strategy == "canary" and r.gates.count is not None:
            raise rule_error(rules.GATES_COUNT_NOT_APPLICABLE,
                             "cannot apply to a canary: its gates run in the background from the "
                             "first weight until the rollout completes, and a count would end them early, leaving the "
                             "later weights ungated; remove rollout.gates.count",
                             at=gates + ("count",), related=(("rollout", "strategy"),))
        if r.strategy == "canary" and r.canary.analysis and r.canary.pause is not None \
                and r.canary.pause <= timing.abort_after:
            raise rule_error(rules.GATES_TIMING,
                             f"{format_duration(r.canary.pause)} ends before the gates can abort "
                             f"a version failing from its first weight, {format_duration(timing.abort_after)} after "
                             f"its pods are available (first measurement after {format_duration(timing.initial_delay)}"
                             f" = {TARGET_DISCOVERY_SECONDS}s discovery + scrape interval + gate window, then failure_limit "
                             f"{timing.failure_limit} more, {format_duration(timing.interval)} apart): it would reach "
                             f"the next weight first; set rollout.canary.pause longer than "
                             f"{format_duration(timing.abort_after)}, or shorten rollout.gates.window / interval",
                             at=("rollout", "canary", "pause"), related=timing_paths)
        if r.strategy == "blue-green" and r.blue_green.analysis and r.gates.count is not None:
            count, least = r.gates.count, timing.least_post_promotion_count
            if count < least:
                judged = timing.judged(count)
                why = [f"judge the new stack for {format_duration(judged)} after the switch (first after "
                       f"{format_duration(timing.initial_delay)}, then every {format_duration(timing.interval)}), "
                       f"less than rollout.gates.full_traffic {format_duration(timing.full_traffic)}"
                       ] if judged < timing.full_traffic else []
                if count <= timing.failure_limit:
                    why.append(f"are not above failure_limit {timing.failure_limit}, so they could never fail")
                raise rule_error(rules.GATES_TIMING,
                                 f"{count} post-promotion measurements {' and '.join(why)}; set rollout.gates.count "
                                 f"to at least {least}, or remove it (derived)",
                                 at=gates + ("count",), related=(gates + ("full_traffic",), *timing_paths))
        return self

    @model_validator(mode="after")
    def _distinct_blue_green_services(self) -> EnvironmentSpec:
        bg = self.rollout.blue_green
        active = bg.active_service or self.service.name
        preview = bg.preview_service or f"{self.service.name}-preview"
        if active == preview:
            which = "preview_service" if bg.preview_service is not None else "active_service"
            raise rule_error(rules.BLUE_GREEN_SERVICES_DISTINCT,
                             f"rollout.blue_green: the active and the preview Service are both {active!r}: Argo Rollouts "
                             "refuses the Rollout, and the preview Service would replace the application's own",
                             at=("rollout", "blue_green", which), related=(("service", "name"),))
        return self

    @model_validator(mode="after")
    def _threshold_is_a_bucket(self) -> EnvironmentSpec:
        # `le` is matched exactly: a threshold between two buckets selects no series, and the SLO reads as perfect.
        latency, buckets = self.slo.latency, self.metrics.latency_buckets
        if ("latency", latency) in self.slo.objectives and latency.threshold_seconds not in buckets:
            raise rule_error(rules.SLO_THRESHOLD_NOT_BUCKET,
                             f"threshold_seconds {format_number(latency.threshold_seconds)} is not a bucket boundary of "
                             f"metrics.latency_buckets ({nearest_buckets(latency.threshold_seconds, buckets)}): the latency "
                             "SLI reads the bucket `le` equal to the threshold; use one of the buckets, or add the "
                             "threshold to the application's histogram and to metrics.latency_buckets",
                             at=("slo", "latency", "threshold_seconds"), related=(("metrics", "latency_buckets"),))
        return self
