"""The nginx edge: the upstream, its balancing and session affinity, and the rate limit's shared-memory zone.

Names carry the environment (`<service.name>-<environment>`) so several environments' files can share one nginx.
"""

from __future__ import annotations

from typing import Any

from .defaults import Part, default_of
from .types import format_duration, split_address


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
        """Each server's address (with service.port when none was written) and its parameters as words."""
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
