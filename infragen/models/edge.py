"""The nginx edge: the upstream, its balancing and session affinity, the rate limit against the app's, and the
words of the nginx files that keep the app's promises (body sizes, the JSON error answers, the request id).

Names carry the environment (`<service.name>-<environment>`) so several environments' files can share one nginx.

nginx's limit_req (src/http/modules/ngx_http_limit_req_module.c): `rate=Nr/m` is stored in milli-requests per
second as N * 1000 / 60, truncated (100r/m is 1666). Per key, `excess` (milli-requests ahead of schedule) becomes
max(0, excess - rate * ms / 1000 + 1000) on each request, ms since the last admitted one; over burst * 1000 the
request is rejected and the state is left alone (a rejection costs nothing). So with `nodelay` the k-th
back-to-back request has excess (k - 1) * 1000 and passes while k <= burst + 1: a token bucket of burst + 1
refilled at the rate. From a full bucket the next request passes once rate * ms / 1000 >= 1000 (integer
arithmetic), that is after ceil(1,000,000 / rate) ms: 601 ms for 100r/m, where the app refills every 600 ms.
"""


from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from .defaults import Derivation, Part, default_of
from .settings import RateLimit
from .types import format_duration, format_number, split_address


def _ceil(value: Fraction) -> int:
    return -(-value.numerator // value.denominator)


@dataclass(frozen=True)
class RateArithmetic:
    """One client's limit at the edge and in the app, from the same `rate_limit` settings."""

    requests: int  # the app's bucket: capacity, refilled at requests per window
    window_seconds: int
    burst: int  # nginx's, written or derived (requests - 1)
    burst_derived: bool
    nodelay: bool
    instances: int  # nginx instances, each with its own zone
    nginx_rate: str  # "100r/m"

    @classmethod
    def of(cls, rl: RateLimit) -> RateArithmetic:
        return cls(rl.requests, rl.window_seconds, rl.effective_burst, rl.burst is None, rl.nodelay, rl.edge_instances,
                   rl.nginx_rate)

    @property
    def stored_rate(self) -> int:
        """The rate as nginx stores it: milli-requests per second, truncated."""
        number, unit = self.nginx_rate[:-3], self.nginx_rate[-1]
        return int(number) * 1000 // (60 if unit == "m" else 1)

    @property
    def sustained_rate(self) -> str:
        """What all edge instances together admit once the buckets are empty, in nginx's unit."""
        return f"{self.instances * int(self.nginx_rate[:-3])}{self.nginx_rate[-3:]}"

    @property
    def refill_ms(self) -> int:
        """Milliseconds after which nginx admits one more request from a full bucket."""
        return _ceil(Fraction(1_000_000, self.stored_rate))

    @property
    def app_refill_ms(self) -> Fraction:
        return Fraction(self.window_seconds * 1000, self.requests)

    @property
    def retry_after(self) -> int:
        """Seconds a rejected client should wait: the refill interval rounded up (nginx can only send a static value)."""
        return _ceil(Fraction(self.refill_ms, 1000))

    @property
    def edge_at_once(self) -> int:
        """Requests the edge admits back-to-back from one client: burst + 1 per instance."""
        return self.instances * (self.burst + 1)

    @property
    def stricter(self) -> bool:
        """Does the edge refuse (or, without nodelay, hold back) what the app would answer at once?"""
        return self.edge_at_once < self.requests or (not self.nodelay and self.burst > 0)

    @property
    def longest_delay_ms(self) -> int:
        """Without nodelay: how long nginx holds the last request of a full burst (burst x the refill interval)."""
        return 0 if self.nodelay else self.burst * self.refill_ms

    def burst_formula(self) -> str:
        return (f"rate_limit.requests {self.requests} - 1: with nodelay nginx admits requests back-to-back, exactly "
                "the app's token bucket")

    def at_once_formula(self) -> str:
        return (f"rate_limit.edge_instances {self.instances} x (burst {self.burst} + 1) back-to-back from one client"
                f"{'' if self.nodelay else ', queued (nodelay false)'}; the app's bucket admits rate_limit.requests "
                f"{self.requests}")

    def refill_formula(self) -> str:
        app = self.app_refill_ms
        shown = str(app.numerator) if app.denominator == 1 else f"{float(app):.4g}"
        return (f"ceil(1000000 / {self.stored_rate}): nginx stores {self.nginx_rate} as {self.stored_rate} "
                f"milli-requests/s (truncated) and admits one more this long after a full bucket; the app refills "
                f"one every {shown} ms (window {self.window_seconds} s / {self.requests}); per nginx instance")

    def margin(self) -> str:
        """Edge against app, for `review`: back-to-back, then the refill."""
        app = self.app_refill_ms
        shown = str(app.numerator) if app.denominator == 1 else f"{float(app):.4g}"
        delay = f", the last held {self.longest_delay_ms} ms" if self.longest_delay_ms else ""
        return (f"edge {self.edge_at_once} of the app's {self.requests} at once{delay} "
                f"({self.instances} instance{'' if self.instances == 1 else 's'}); then 1 per {self.refill_ms} ms "
                f"per instance vs 1 per {shown} ms")


def detail(message: str) -> str:
    """An error answer in the app's shape (FastAPI's `{"detail": ...}`), so clients meet one format."""
    return json.dumps({"detail": message}, ensure_ascii=True)


@dataclass(frozen=True)
class BodyLimit:
    """A `client_max_body_size` and the named location that answers its 413 in JSON."""

    bytes: int
    named_location: str  # "@fraud-api-production-body-too-large"
    answer: str  # the JSON body


@dataclass(frozen=True)
class UploadLocation:
    path: str
    limit: BodyLimit


def _method_formula(edge: Edge) -> str:
    lb = edge.spec.load_balancing
    if lb.affinity_mode == "hash":
        return f"session affinity on nginx {lb.nginx_version} (< 1.29.6) hashes the session cookie"
    return "least_conn unless session affinity hashes"


class Edge(Part):
    @property
    def upstream_name(self) -> str:
        return f"{self.env.service_name}-{self.env.name}"

    @property
    def upstream_zone(self) -> str:
        return f"{self.upstream_name}-upstream"

    @property
    def rate_limit_zone(self) -> str:
        # Shared-memory zone names are global in nginx: distinct from the upstream zone.
        return f"{self.upstream_name}-ratelimit"

    @property
    def affinity_mode(self) -> str:
        return self.spec.load_balancing.affinity_mode

    @property
    def balancing_method(self) -> str:
        return self.spec.load_balancing.effective_method

    @property
    def balancing_directive(self) -> list[str]:
        """The upstream's one balancing directive as words (empty: nginx's default round-robin)."""
        method = self.balancing_method
        if method == "hash":
            return ["hash", f"$cookie_{self.spec.load_balancing.session_affinity.cookie}", "consistent"]
        if method == "random":
            return ["random", "two", "least_conn"]  # power of two choices, the better of two by connections
        if method == "least_conn":
            return ["least_conn"]
        return []

    @default_of(("load_balancing", "method"), _method_formula)
    def balancing(self) -> str:
        """The balancing directive as written in the upstream."""
        return " ".join(self.balancing_directive) or "round-robin (no directive)"

    @property
    def sticky_directive(self) -> list[str]:
        """`sticky cookie ...` words when nginx issues its own routing cookie (>= 1.29.6), else empty."""
        if self.affinity_mode != "sticky":
            return []
        affinity = self.spec.load_balancing.session_affinity
        return ["sticky", "cookie", affinity.routing_cookie, f"expires={self.affinity_ttl}", "path=/", "httponly"]

    @default_of(("load_balancing", "servers", None, "max_fails"), "load_balancing.max_fails")
    def max_fails(self) -> int:
        """A server's max_fails when it sets none."""
        return self.spec.load_balancing.max_fails

    @default_of(("load_balancing", "servers", None, "fail_timeout"), "load_balancing.fail_timeout")
    def fail_timeout(self) -> str:
        """A server's fail_timeout when it sets none."""
        return format_duration(self.spec.load_balancing.fail_timeout)

    @property
    def upstream_servers(self) -> list[dict[str, Any]]:
        """Each server's address (with service.port when none was written) and its parameters as words; with
        discovery, the headless Service's name resolved at run time (`resolve`: one peer per pod)."""
        discovery = self.spec.load_balancing.discovery
        if discovery is not None:
            return [{"address": f"{discovery.service}:{self.discovery_port}",
                     "params": ["resolve", f"max_fails={self.max_fails}", f"fail_timeout={self.fail_timeout}"]}]
        servers = []
        for server in self.spec.load_balancing.servers:
            host, port = split_address(server.address)
            params = [] if server.weight == 1 else [f"weight={server.weight}"]  # 1 is nginx's default
            params.append(f"max_fails={server.max_fails if server.max_fails is not None else self.max_fails}")
            params.append("fail_timeout=" + (format_duration(server.fail_timeout) if server.fail_timeout is not None
                                             else self.fail_timeout))
            if server.backup:
                params.append("backup")
            servers.append({"address": f"{host}:{port if port is not None else self.spec.service.port}",
                            "params": params})
        return servers

    @property
    def affinity_ttl(self) -> str:
        return format_duration(self.spec.load_balancing.session_affinity.ttl)

    @default_of(("load_balancing", "discovery", "port"), "service.port")
    def discovery_port(self) -> int:
        """The pods' port when discovery names none."""
        discovery = self.spec.load_balancing.discovery
        return discovery.port if discovery is not None and discovery.port is not None else self.spec.service.port

    @property
    def rate(self) -> RateArithmetic:
        return RateArithmetic.of(self.spec.rate_limit)

    @default_of(("rate_limit", "burst"), lambda edge: edge.rate.burst_formula())
    def burst(self) -> int:
        """nginx's burst: as written, or requests - 1 (the app's bucket)."""
        return self.rate.burst

    # The map's variable: the client's X-Request-ID when well-formed, else nginx's $request_id. The same name and
    # the same map in every environment's upstream.conf: nginx accepts a map repeated for a variable (the last
    # wins, and they are identical), so several environments' files still fit in one nginx.
    request_id_variable = "$infragen_request_id"

    # A client's X-Request-ID is kept when it is a plain token (it then ties the client's logs to the app's); any
    # other value is replaced, so a client cannot write into the app's logs through it.
    request_id_pattern = "~^[A-Za-z0-9._-]{1,64}$"
    # Retry on the next server only when this one could not be reached or answered as a dead proxy would. Not
    # http_503: an overloaded app answering 503 would count as failed (max_fails) and push its load on the others.
    # Never `non_idempotent`: nginx does not replay a POST, PATCH or LOCK once sent, as the first may have acted.
    next_upstream = ("error", "timeout", "http_502", "http_504")

    @property
    def rate_limited(self) -> tuple[str, str]:
        """(named location, JSON answer) of a rejected request."""
        rl = self.spec.rate_limit
        return (f"@{self.upstream_name}-rate-limited",
                detail(f"Too many requests: {rl.requests} per {rl.window_seconds} s; retry after "
                       f"{self.rate.retry_after} s"))

    def _body_limit(self, size: int, name: str) -> BodyLimit:
        return BodyLimit(size, f"@{self.upstream_name}-{name}", detail(f"Request body larger than {size} bytes"))

    @property
    def body_limit(self) -> BodyLimit:
        return self._body_limit(self.spec.validation.max_payload_bytes, "body-too-large")

    @property
    def uploads(self) -> list[UploadLocation]:
        return [UploadLocation(u.path, self._body_limit(u.max_bytes, f"upload-{i}-body-too-large"))
                for i, u in enumerate(self.spec.validation.uploads, 1)]

    @property
    def body_limits(self) -> list[BodyLimit]:
        """Every body limit nginx answers 413 for: the payload's, then each upload's."""
        return [self.body_limit] + [u.limit for u in self.uploads]

    @property
    def resolver(self) -> str | None:
        discovery = self.spec.load_balancing.discovery
        return discovery.resolver if discovery is not None else None

    @property
    def proxy(self) -> dict[str, str | int]:
        lb = self.spec.load_balancing
        return {"connect_timeout": format_duration(lb.connect_timeout), "read_timeout": format_duration(lb.read_timeout),
                "tries": lb.next_upstream_tries}

    @property
    def app_env(self) -> list[tuple[str, str]]:
        """The app's side of the same limits, under the key names the app reads."""
        spec = self.spec
        v, t = spec.validation, spec.throttling
        env = [("MAX_PAYLOAD_BYTES", str(v.max_payload_bytes)), ("MAX_BATCH_ITEMS", str(v.max_batch_items)),
               ("MAX_PAGE_SIZE", str(v.max_page_size)), ("MAX_DATE_RANGE_DAYS", str(v.max_date_range_days))]
        for i, upload in enumerate(v.uploads, 1):
            env += [(f"UPLOAD_{i}_PATH", upload.path), (f"UPLOAD_{i}_MAX_BYTES", str(upload.max_bytes)),
                    (f"UPLOAD_{i}_ALLOWED_TYPES", ",".join(upload.allowed_types))]
        for feature, quota in sorted(spec.quotas.items()):
            env += [(f"QUOTA_{feature.upper()}_LIMIT", str(quota.limit)), (f"QUOTA_{feature.upper()}_PERIOD", quota.period)]
        env += [("THROTTLE_CPU_PERCENT", str(t.cpu_percent)), ("THROTTLE_MEMORY_PERCENT", str(t.memory_percent)),
                ("THROTTLE_MIN_FACTOR", format_number(t.min_factor)),
                ("THROTTLE_RECOVERY_SECONDS", str(t.recovery_seconds)),
                ("SESSION_TTL_SECONDS", str(spec.sessions.ttl))]
        return env

    def derivations(self) -> list[Derivation]:
        """The edge-versus-app arithmetic, for `explain`."""
        rate = self.rate
        return [Derivation(*row) for row in [
            ("rate_limit.nginx_stored_rate", rate.stored_rate,
             f"rate_limit.nginx_rate {rate.nginx_rate} in milli-requests per second, truncated as nginx stores it"),
            ("rate_limit.edge_admits_at_once", rate.edge_at_once, rate.at_once_formula()),
            ("rate_limit.edge_sustained_rate", rate.sustained_rate,
             f"rate_limit.edge_instances {rate.instances} x rate_limit.nginx_rate {rate.nginx_rate}, each instance "
             f"with its own zone; the app refills rate_limit.requests {rate.requests} per window"),
            ("rate_limit.edge_refill_ms", rate.refill_ms, rate.refill_formula()),
            ("rate_limit.retry_after_seconds", rate.retry_after,
             f"rate_limit.edge_refill_ms {rate.refill_ms} rounded up to whole seconds (Retry-After of a 429)"),
        ]]
