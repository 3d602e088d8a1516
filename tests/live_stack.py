"""A live alerting stack for tests: the real Prometheus and Alertmanager running infragen's generated
`prometheus/alerts.yaml` and `alertmanager/alertmanager.yaml` unchanged, scraping fake applications that run
in the test process, and notifying a webhook receiver that runs in the test process too.

    stack.app.set(error_ratio=0.2)                              # change what the fake app reports, at runtime
    fired = stack.expect("warning-hook", "HighErrorRate")       # wait for the notification, or fail showing
                                                                # what arrived and what Prometheus says
    stack.app.stop()                                            # scrapes fail: up == 0

Everything binds 127.0.0.1 and talks to nothing else; the servers are stopped by their own pids.

The test module says what to run in a `Setup`: the environment text (over a fixture partial) and the receiver
names. Each receiver gets a Secret of its name mounted as the Prometheus Operator mounts one,
`<secrets>/<name>/<key>`: key `url`, its webhook URL on the receiver (http://127.0.0.1:<port>/<name>, for a Slack
`api_url_secret: {name: <name>, key: url}`), and key `routing-key`, `key-<name>` (for a PagerDuty
`routing_key_secret`; point its `url` at `hooks.url(name)`). The receiver tells notifications apart by that path.
`Notification.status`, `.alertname` and `.subject` read Slack messages and PagerDuty events alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from infragen.consumers import free_port

if TYPE_CHECKING:
    from infragen.models.environment import Environment

POLL = 0.25  # seconds between two looks at a condition
STARTUP_TIMEOUT = 30.0  # a server must answer /-/ready within this
HTTP_TIMEOUT = 5.0


# --- the fake application -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Traffic:
    """What a fake application reports: rates per second and current values. Counters grow at these rates from
    the moment they are set, so rate() over any window sees a mix of old and new traffic, as with a real app:
    after set(error_ratio=0.2) the 1m error ratio climbs past 5% within seconds, and after set(error_ratio=0)
    it takes until the 5xx counted are diluted or leave the window (up to a minute) to fall below again."""

    requests_per_second: float = 50.0
    error_ratio: float = 0.0  # answered 5xx (half 500, half 503)
    client_error_ratio: float = 0.1  # answered 404: not errors of the service, never counted by HighErrorRate
    latency_seconds: float = 0.04  # every request takes this long
    pool_in_use: float = 2.0  # database_pool_connections_in_use
    cache_lookups_per_second: float = 20.0
    cache_hit_ratio: float = 0.95
    unhandled_per_second: float = 0.0  # errors_total{error_type="unhandled"}
    handled_per_second: float = 1.0  # errors_total{error_type="handled"}: not what UnhandledExceptions counts
    queries_per_second: float = 20.0  # per query type
    query_seconds: float = 0.01
    rate_limited_per_second: float = 0.0

    def __post_init__(self) -> None:
        if not 0 <= self.error_ratio + self.client_error_ratio <= 1:
            raise ValueError(f"error_ratio {self.error_ratio} + client_error_ratio {self.client_error_ratio} must be in [0, 1]")
        if not 0 <= self.cache_hit_ratio <= 1:
            raise ValueError(f"cache_hit_ratio {self.cache_hit_ratio} must be in [0, 1]")


HEALTHY = Traffic()


def broken(pool_capacity: int) -> Traffic:
    """Far past every alert's default threshold at once, from the first seconds on. Absolute rates are high on
    purpose: until a series has a whole rate window of history, Prometheus' rate() over it is the increase
    seen so far divided by the whole window (it extrapolates only half a scrape interval past the first
    sample), so 5/s reads as 1/s after 12 s of a 1m window; 50/s does after about a second."""
    return Traffic(error_ratio=0.5, latency_seconds=4.0, pool_in_use=float(pool_capacity), cache_hit_ratio=0.1,
                   unhandled_per_second=50.0, query_seconds=6.0, rate_limited_per_second=50.0)


BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
ENDPOINTS = (("POST", "/score"), ("GET", "/health"))  # requests split evenly between them
QUERY_TYPES = ("select", "insert")
HISTOGRAMS = frozenset({"http_request_duration_seconds", "database_query_duration_seconds"})  # the rest: counters
HELP = {
    "cache_hits_total": "Cache lookups that found the entry.",
    "cache_misses_total": "Cache lookups that did not.",
    "database_query_duration_seconds": "Database query duration by query type.",
    "errors_total": "Errors by type; unhandled ones reached the top of the request handler.",
    "http_request_duration_seconds": "HTTP request duration.",
    "http_requests_total": "HTTP requests answered, by method, endpoint and status.",
    "rate_limit_exceeded_total": "Requests rejected by the rate limit.",
    "database_pool_connections_in_use": "Database connections of this instance's pool (and overflow) in use.",
}

Labels = tuple[tuple[str, str], ...]


class FakeApp:
    """An application's /metrics in the Prometheus text format, on 127.0.0.1, served from a thread."""

    def __init__(self, name: str, traffic: Traffic = HEALTHY) -> None:
        self.name = name
        self._lock = threading.Lock()
        self._traffic = traffic
        self._counters: dict[tuple[str, Labels], float] = {}
        self._last = time.monotonic()
        self._advance(0.0)  # every series exists from the start, at 0, as client libraries do for known labels
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.scrapes = 0
        self.start()

    @property
    def target(self) -> str:
        """host:port, as Prometheus' `instance` label shows it."""
        return f"127.0.0.1:{self.port}"

    @property
    def traffic(self) -> Traffic:
        return self._traffic

    @property
    def running(self) -> bool:
        return self._server is not None

    def set(self, traffic: Traffic | None = None, **changes: Any) -> None:
        """Report `traffic` (or the current traffic with `changes`) from now on."""
        with self._lock:
            self._advance_to_now()
            self._traffic = dataclasses.replace(traffic or self._traffic, **changes)

    def set_errors(self, ratio: float) -> None:
        self.set(error_ratio=ratio)

    def start(self) -> None:
        """Serve /metrics (again, on the same port after stop(): Prometheus keeps scraping that address)."""
        if self._server is not None:
            return
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path != "/metrics":
                    self.send_error(404)
                    return
                body = app.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-app-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving: the port refuses connections, as when the application is down."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        assert self._thread is not None
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def exposition(self) -> str:
        with self._lock:
            self._advance_to_now()
            self.scrapes += 1
            counters = dict(self._counters)
            in_use = self._traffic.pool_in_use
        lines: list[str] = []
        typed: set[str] = set()
        for (name, labels), value in sorted(counters.items(), key=_series_order):
            family = re.sub(r"_(bucket|sum|count)$", "", name)
            family = family if family in HISTOGRAMS else name
            if family not in typed:
                typed.add(family)
                lines.append(f"# HELP {family} {HELP[family]}")
                lines.append(f"# TYPE {family} {'histogram' if family in HISTOGRAMS else 'counter'}")
            lines.append(f"{name}{_label_text(labels)} {_number(value)}")
        lines.append(f"# HELP database_pool_connections_in_use {HELP['database_pool_connections_in_use']}")
        lines.append("# TYPE database_pool_connections_in_use gauge")
        lines.append(f"database_pool_connections_in_use {_number(in_use)}")
        return "\n".join(lines) + "\n"

    def _advance_to_now(self) -> None:
        now = time.monotonic()
        self._advance(now - self._last)
        self._last = now

    def _advance(self, seconds: float) -> None:
        """Grow every counter by what the current traffic does in `seconds`."""
        t = self._traffic
        add = self._add
        requests = t.requests_per_second * seconds / len(ENDPOINTS)
        for method, endpoint in ENDPOINTS:
            where = (("method", method), ("endpoint", endpoint))
            shares = {"200": 1 - t.error_ratio - t.client_error_ratio, "404": t.client_error_ratio,
                      "500": t.error_ratio / 2, "503": t.error_ratio / 2}
            for status, share in shares.items():
                add("http_requests_total", where + (("status", status),), requests * share)
            self._observe("http_request_duration_seconds", (("endpoint", endpoint),), requests, t.latency_seconds)
        lookups = t.cache_lookups_per_second * seconds
        add("cache_hits_total", (), lookups * t.cache_hit_ratio)
        add("cache_misses_total", (), lookups * (1 - t.cache_hit_ratio))
        add("errors_total", (("error_type", "unhandled"),), t.unhandled_per_second * seconds)
        add("errors_total", (("error_type", "handled"),), t.handled_per_second * seconds)
        for query_type in QUERY_TYPES:
            self._observe("database_query_duration_seconds", (("query_type", query_type),),
                          t.queries_per_second * seconds, t.query_seconds)
        add("rate_limit_exceeded_total", (), t.rate_limited_per_second * seconds)

    def _observe(self, name: str, labels: Labels, count: float, seconds: float) -> None:
        for bound in BUCKETS:
            self._add(f"{name}_bucket", labels + (("le", _number(bound)),), count if seconds <= bound else 0.0)
        self._add(f"{name}_sum", labels, count * seconds)
        self._add(f"{name}_count", labels, count)

    def _add(self, name: str, labels: Labels, amount: float) -> None:
        key = (name, labels)
        self._counters[key] = self._counters.get(key, 0.0) + amount


def _series_order(item: tuple[tuple[str, Labels], float]) -> tuple:
    (name, labels), _ = item
    family = re.sub(r"_(bucket|sum|count)$", "", name)
    le = dict(labels).get("le")
    return (family, name.endswith("_sum"), name.endswith("_count"),
            tuple((k, v) for k, v in labels if k != "le"), float(le) if le else 0.0)


def _label_text(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in labels)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(labels, escaped, strict=True)) + "}"


def _number(value: float) -> str:
    if value == math.inf:
        return "+Inf"
    return repr(float(value))


# --- the webhook receiver -------------------------------------------------------------------------------------

_TITLE = re.compile(r"^\[(?:(?P<firing>FIRING):(?P<count>\d+)|(?P<resolved>RESOLVED))\] (?P<alertname>\S+) \((?P<severity>[^,]*), (?P<environment>[^)]*)\)$")


@dataclass(frozen=True)
class Notification:
    """One POST Alertmanager made to the receiver."""

    index: int  # position in the receiver's log
    receiver: str  # the first path segment: the receiver's name, by the URLs the test hands out
    path: str
    at: float  # seconds since the receiver started
    body: bytes

    @cached_property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def _doc(self) -> dict:
        return self.json if isinstance(self.json, dict) else {}

    @property
    def attachment(self) -> dict:
        """A Slack message's attachment (title, text, ...), or {}."""
        attachments = self._doc.get("attachments")
        return attachments[0] if isinstance(attachments, list) and attachments and isinstance(attachments[0], dict) else {}

    @property
    def payload(self) -> dict:
        """A PagerDuty event's payload (summary, severity, class, custom_details), or {}."""
        payload = self._doc.get("payload")
        return payload if isinstance(payload, dict) else {}

    @cached_property
    def subject(self) -> str:
        """A Slack message's title (infragen's `[FIRING:1] <alertname> (<severity>, <environment>)`), a PagerDuty
        event's summary (the alert's summary annotation)."""
        return str(self.attachment.get("title", "") or self.payload.get("summary", ""))

    @cached_property
    def _title(self) -> re.Match[str] | None:
        return _TITLE.match(str(self.attachment.get("title", "")))

    @property
    def status(self) -> str | None:
        """firing or resolved (Slack: the title; PagerDuty: event_action trigger or resolve)."""
        action = self._doc.get("event_action")
        if action in ("trigger", "resolve"):
            return "firing" if action == "trigger" else "resolved"
        if self._title is None:
            return None
        return "firing" if self._title["firing"] else "resolved"

    @property
    def alertname(self) -> str | None:
        """Slack: from the title; PagerDuty: the event's class."""
        if self.payload:
            return self.payload.get("class")
        return self._title["alertname"] if self._title else None

    def about(self, alertname: str) -> bool:
        return self.alertname == alertname

    def line(self) -> str:
        shown = self.subject or self.text[:300]
        return f"#{self.index} +{self.at:.1f}s POST {self.path}: {shown}"


class WebhookReceiver:
    """Records every POST (Slack webhooks, PagerDuty events) and answers 200 `ok`. One path per receiver:
    `url("critical-hook")` is http://127.0.0.1:<port>/critical-hook."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._log: list[Notification] = []
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._record(self.path, body)
                answer = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="webhook-receiver", daemon=True)
        self._thread.start()

    def url(self, receiver: str) -> str:
        return f"http://127.0.0.1:{self.port}/{receiver}"

    def _record(self, path: str, body: bytes) -> None:
        name = urllib.parse.urlsplit(path).path.strip("/").split("/")[0]
        with self._changed:
            self._log.append(Notification(len(self._log), name, path, time.monotonic() - self._started, body))
            self._changed.notify_all()

    def notifications(self, receiver: str | None = None, since: int = 0) -> list[Notification]:
        with self._changed:
            return [n for n in self._log[since:] if receiver is None or n.receiver == receiver]

    def mark(self) -> int:
        """The index the next notification gets: pass it as `since` to look only at what comes after now."""
        with self._changed:
            return len(self._log)

    def wait_for(self, receiver: str, predicate: Callable[[Notification], bool], timeout: float,
                 since: int = 0) -> Notification | None:
        """The first notification to `receiver` (from index `since`) that satisfies predicate, waiting up to
        `timeout` seconds for it; None when none came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for n in self._log[since:]:
                    if n.receiver == receiver and predicate(n):
                        return n
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(min(left, POLL))

    def describe(self, since: int = 0) -> str:
        with self._changed:
            log = list(self._log)
        if not log:
            return "the webhook receiver got no notification at all"
        lines = [f"the webhook receiver got {len(log)} notification(s) ({since} before this test):"]
        lines += [("  " if n.index >= since else "  (earlier) ") + n.line() for n in log]
        return "\n".join(lines)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# --- the servers ----------------------------------------------------------------------------------------------

class ServerFailed(AssertionError):
    pass


def http_get(port: int, path: str, params: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    """GET from 127.0.0.1 with http.client (urllib would honour *_proxy variables)."""
    if params:
        path += "?" + urllib.parse.urlencode(params)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def http_post_json(port: int, path: str, document: Any) -> tuple[int, bytes]:
    """POST a JSON document to 127.0.0.1."""
    body = json.dumps(document).encode()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=HTTP_TIMEOUT)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


class Server:
    """A server process on a free 127.0.0.1 port, its output in a log file. Started again on another port
    when the one picked was taken in the meantime."""

    name = "server"

    def __init__(self, executable: str, workdir: Path) -> None:
        self.executable = executable
        self.workdir = workdir
        self.log = workdir / f"{self.name}.log"
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def argv(self, port: int) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        for _attempt in range(3):
            self.port = free_port()
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen(self.argv(self.port), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, cwd=self.workdir,
                                             env={**os.environ, "LC_ALL": "C"})
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while self.proc.poll() is None and time.monotonic() < deadline:
                if self._ready():
                    return
                time.sleep(POLL)
            if self.proc.poll() is not None and "address already in use" in self.log_tail(5):
                continue  # another process took the port between free_port() and the bind: pick another
            break
        self.stop()
        raise ServerFailed(f"{self.name} did not become ready within {STARTUP_TIMEOUT:.0f}s "
                           f"(exit status {self.proc.returncode if self.proc else None}):\n"
                           f"  {' '.join(self.argv(self.port))}\n{self.log_tail()}")

    def _ready(self) -> bool:
        try:
            return http_get(self.port, "/-/ready")[0] == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Terminate by pid, wait, kill if it will not stop."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    noise: re.Pattern[str] | None = None  # log lines left out of log_tail()

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return f"({self.log} unreadable)"
        kept = [line for line in text.splitlines() if not (self.noise and self.noise.search(line))]
        return "\n".join(f"    {line}" for line in kept[-lines:]) or "    (empty log)"

    def get(self, path: str, **params: str) -> Any:
        """A JSON API answer. Raises ServerFailed with the body on anything but 200."""
        try:
            status, body = http_get(self.port, path, params)
        except OSError as exc:
            alive = "running" if self.proc and self.proc.poll() is None else f"exited {self.proc and self.proc.returncode}"
            raise ServerFailed(f"{self.name} ({alive}) at 127.0.0.1:{self.port}{path}: {exc}\n{self.log_tail()}") from exc
        if status != 200:
            raise ServerFailed(f"{self.name} {path} {params}: HTTP {status}: {body[:500]!r}")
        return json.loads(body)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Prometheus(Server):
    name = "prometheus"

    def __init__(self, executable: str, workdir: Path, config: Path) -> None:
        super().__init__(executable, workdir)
        self.config = config

    def argv(self, port: int) -> list[str]:
        return [self.executable, f"--config.file={self.config}", f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url=http://127.0.0.1:{port}/",
                "--log.level=info"]

    def api(self, path: str, **params: str) -> Any:
        answer = self.get(f"/api/v1/{path}", **params)
        if answer.get("status") != "success":
            raise ServerFailed(f"prometheus /api/v1/{path} {params}: {answer}")
        return answer["data"]

    def alerts(self) -> list[dict]:
        """Pending and firing alerts, as /api/v1/alerts lists them."""
        return self.api("alerts")["alerts"]

    def query(self, expr: str) -> list[dict]:
        return self.api("query", query=expr)["result"]

    def rules(self) -> list[dict]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

    def rule_evaluations(self) -> int:
        """How many times the rule groups have been evaluated (Prometheus' own counter)."""
        status, body = http_get(self.port, "/metrics")
        if status != 200:
            raise ServerFailed(f"prometheus /metrics: HTTP {status}")
        total = 0.0
        for line in body.decode().splitlines():
            if line.startswith("prometheus_rule_group_iterations_total{"):
                total += float(line.rsplit(" ", 1)[1])
        return int(total)

    def describe_alerts(self) -> str:
        try:
            alerts = self.alerts()
        except ServerFailed as exc:
            return f"Prometheus /api/v1/alerts failed: {exc}"
        if not alerts:
            return "Prometheus /api/v1/alerts: no pending or firing alert"
        lines = [f"Prometheus /api/v1/alerts: {len(alerts)} alert(s):"]
        for a in alerts:
            lines.append(f"  {a['state']} {a['labels'].get('alertname')} value={a.get('value')} "
                         f"since={a.get('activeAt')} labels={json.dumps(a['labels'], sort_keys=True)}")
        return "\n".join(lines)


class Alertmanager(Server):
    name = "alertmanager"
    # At debug level it logs every alert received and every notification sent, and also every group flush,
    # once per group_interval (1s), which would push the rest out of a short tail.
    noise = re.compile(r"msg=flushing")

    def __init__(self, executable: str, workdir: Path, config: Path) -> None:
        super().__init__(executable, workdir)
        self.config = config

    def argv(self, port: int) -> list[str]:
        # --cluster.listen-address= (empty) turns the gossip cluster off: no second port, nothing on 0.0.0.0.
        return [self.executable, f"--config.file={self.config}", f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}", f"--web.external-url=http://127.0.0.1:{port}/",
                "--cluster.listen-address=", "--log.level=debug"]

    def alerts(self) -> list[dict]:
        return self.get("/api/v2/alerts")

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """Send alerts as Prometheus does (API v2): `labels`, `annotations`, optional `startsAt`/`endsAt`."""
        status, body = http_post_json(self.port, "/api/v2/alerts", list(alerts))
        if status != 200:
            raise ServerFailed(f"alertmanager POST /api/v2/alerts: HTTP {status}: {body[:500]!r}")

    def describe_alerts(self) -> str:
        try:
            alerts = self.alerts()
        except ServerFailed as exc:
            return f"Alertmanager /api/v2/alerts failed: {exc}"
        if not alerts:
            return "Alertmanager /api/v2/alerts: none"
        lines = [f"Alertmanager /api/v2/alerts: {len(alerts)} alert(s):"]
        for a in alerts:
            receivers = ",".join(r["name"] for r in a.get("receivers", []))
            lines.append(f"  {a['status']['state']} -> {receivers} endsAt={a.get('endsAt')} "
                         f"labels={json.dumps(a['labels'], sort_keys=True)}")
        return "\n".join(lines)


# --- the whole stack ------------------------------------------------------------------------------------------

@dataclass(repr=False)
class Stack:
    """The running stack. `app` is the service in `namespace`, the one the alert rules watch; `other` is the
    same service (same `job`) in `other_namespace`, reporting broken traffic the whole time."""

    env: Environment  # the environment the stack runs (infragen's resolved settings)
    namespace: str
    other_namespace: str
    job: str
    app: FakeApp
    other: FakeApp
    receiver: WebhookReceiver
    prometheus: Prometheus
    alertmanager: Alertmanager
    rules_file: Path  # the generated prometheus/alerts.yaml Prometheus runs
    alertmanager_file: Path  # the generated alertmanager/alertmanager.yaml Alertmanager runs
    control_rules: dict[str, str]  # alert name -> expression generated for other_namespace (never loaded)
    since: int = 0  # notifications before this index belong to earlier tests
    started: float = field(default_factory=time.monotonic)

    def __repr__(self) -> str:  # pytest shows it in tracebacks: keep it to one line
        return (f"Stack(app {self.app.target} in {self.namespace}, other {self.other.target} in {self.other_namespace}, "
                f"prometheus {self.prometheus.url}, alertmanager {self.alertmanager.url})")

    # -- scenario helpers

    def begin(self, quiet_timeout: float = 120.0) -> None:
        """A clean slate for a test: the app running with healthy traffic, no alert pending or firing in
        Prometheus, and expect() looking only at notifications from now on."""
        self.app.start()
        self.app.set(HEALTHY)
        self.wait_until(lambda: not self.prometheus.alerts(), quiet_timeout,
                        "Prometheus to have no pending or firing alert left by an earlier test")
        self.since = self.receiver.mark()

    def expect(self, receiver: str, alertname: str, status: str = "firing", timeout: float = 60.0) -> Notification:
        """The first notification since begin() to `receiver` about `alertname` with `status`; fails after
        `timeout` seconds showing everything the receiver got, Prometheus' and Alertmanager's alerts."""
        found = self.receiver.wait_for(receiver, lambda n: n.about(alertname) and n.status == status, timeout,
                                       since=self.since)
        if found is None:
            raise AssertionError(f"no {status} notification about {alertname} reached {receiver} within "
                                 f"{timeout:.0f}s\n{self.diagnostics()}")
        return found

    def assert_not_notified(self, receiver: str, alertname: str | None = None) -> None:
        """Nothing (about `alertname`) reached `receiver` since begin()."""
        wrong = [n for n in self.receiver.notifications(receiver, since=self.since)
                 if alertname is None or n.about(alertname)]
        assert not wrong, (f"{receiver} got {len(wrong)} notification(s) "
                           f"{'about ' + alertname if alertname else ''} it should not have:\n"
                           + "\n".join("  " + n.line() for n in wrong) + f"\n{self.diagnostics()}")

    def firing(self, alertname: str) -> list[dict]:
        return [a for a in self.prometheus.alerts()
                if a["labels"].get("alertname") == alertname and a["state"] == "firing"]

    def firing_once(self, alertname: str) -> dict:
        """The one firing `alertname` alert in Prometheus."""
        alerts = self.firing(alertname)
        assert len(alerts) == 1, f"expected exactly one firing {alertname}, found {len(alerts)}\n{self.diagnostics()}"
        return alerts[0]

    def hold_quiet(self, evaluations: int = 5, timeout: float = 60.0) -> None:
        """Prometheus evaluates the rules `evaluations` more times, and at every look has no pending or
        firing alert."""
        start = self.prometheus.rule_evaluations()
        deadline = time.monotonic() + timeout
        while True:
            alerts = self.prometheus.alerts()
            assert not alerts, f"an alert is pending or firing while it should not:\n{self.diagnostics()}"
            done = self.prometheus.rule_evaluations() - start
            if done >= evaluations:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus evaluated its rules {done} times in {timeout:.0f}s, expected "
                                     f"{evaluations}\n{self.diagnostics()}")
            time.sleep(POLL)

    def wait_for_control_breaches(self, timeout: float = 45.0) -> dict[str, bool]:
        """Wait until every rule generated for other_namespace selects the other app's series."""
        def all_breach() -> dict[str, bool] | None:
            breaches = self.control_breaches()
            return breaches if all(breaches.values()) else None

        return self.wait_until(all_breach, timeout, lambda: f"every rule generated for {self.other_namespace} to "
                               f"select the broken series there (now: {self.control_breaches()})")

    def control_breaches(self) -> dict[str, bool]:
        """For each alert: does the expression generated for other_namespace select something right now,
        i.e. would the alert fire there (`for` aside)? Proves `other`'s series are really past the thresholds."""
        return {name: bool(self.prometheus.query(expr)) for name, expr in self.control_rules.items()}

    def wait_until(self, condition: Callable[[], Any], timeout: float, what: str | Callable[[], str]) -> Any:
        """condition()'s first true value, looking every POLL seconds; fails after `timeout` seconds saying
        `what` it waited for (a callable: worded at the time of failure)."""
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                waited = what() if callable(what) else what
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {waited}\n{self.diagnostics()}")
            time.sleep(POLL)

    def diagnostics(self) -> str:
        parts = [
            f"--- {time.monotonic() - self.started:.1f}s into the stack; app {self.app.target} "
            f"({self.namespace}, {'up' if self.app.running else 'STOPPED'}, {self.app.scrapes} scrapes): {self.app.traffic}",
            f"other {self.other.target} ({self.other_namespace}, {self.other.scrapes} scrapes): {self.other.traffic}",
            self.receiver.describe(self.since),
            self.prometheus.describe_alerts(),
            self.alertmanager.describe_alerts(),
            f"rules: {self.rules_file}\nAlertmanager config: {self.alertmanager_file}",
            f"prometheus log ({self.prometheus.log}), last lines:\n{self.prometheus.log_tail(12)}",
            f"alertmanager log ({self.alertmanager.log}), last lines:\n{self.alertmanager.log_tail(12)}",
        ]
        return "\n".join(parts)


def prometheus_config(job: str, targets: Mapping[str, str], rules: Path, alertmanager: str,
                      interval: str) -> str:
    """prometheus.yml: one scrape job named like the service (the rules select `job`), one static target per
    namespace with the `namespace` label (the rules select it too), the generated rules, the Alertmanager.
    Scrapes and rule evaluations every `interval`: the environment's alerts.scrape_interval."""
    config = {
        "global": {"scrape_interval": interval, "scrape_timeout": interval, "evaluation_interval": interval},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{
            "job_name": job,
            "static_configs": [{"targets": [target], "labels": {"namespace": namespace}}
                               for namespace, target in targets.items()],
        }],
    }
    return yaml.safe_dump(config, sort_keys=False)


def write_secret(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")  # a trailing newline, as `kubectl create secret --from-file` keeps
    path.chmod(0o600)
    return path


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


def rule_expressions(alerts_yaml: Path) -> dict[str, str]:
    """The threshold alerts' expressions. MetricsMissing (`absent(...)`) is left out: the other namespace's app
    is broken but up, so it never fires there; its isolation is proven by promtool's generated tests and by
    stopping the app (test_metrics_missing_pages_when_the_app_stops)."""
    doc = yaml.safe_load(alerts_yaml.read_text(encoding="utf-8"))
    return {rule["alert"]: rule["expr"] for group in doc["groups"] for rule in group["rules"]
            if not rule["expr"].startswith("absent(")}


SECRET_PATH = re.compile(r"^/[A-Za-z0-9._/-]+$")  # what infragen accepts as alertmanager.secrets_dir


@dataclass(frozen=True)
class Setup:
    """What a test module decides about its stack."""

    fixtures: Path  # partials copied next to the environment files the test writes
    # (namespace, secrets directory, the webhook receiver) -> environment file text
    environment: Callable[[str, Path, WebhookReceiver], str]
    receivers: Sequence[str]  # receiver names: each gets <secrets>/<name>-url and <secrets>/<name>-key
    namespace: str = "fraud-live"  # the environment the stack runs (file live.yaml)
    other_namespace: str = "fraud-shadow"  # broken traffic; its rules (file shadow.yaml) are only generated


def build(environments: Path, output: Path) -> None:
    """`infragen build --strict` of every environment in `environments` into `output`, in process."""
    from infragen import api
    from infragen.config import ToolSettings
    from infragen.errors import InputError

    try:
        api.build(ToolSettings(environments=environments, output=output, strict=True, cache=False))
    except InputError as exc:
        problems = "\n".join(p.format() for p in [*exc.findings, *exc.problems])
        raise AssertionError(f"infragen build --strict refused the live test's environments:\n{problems}") from None


@contextlib.contextmanager
def open_stack(workdir: Path, setup: Setup, prometheus: str, alertmanager: str) -> Iterator[Stack]:
    """Generate the artifacts, start everything, wait until Prometheus scrapes both apps, has loaded the rules
    and found the Alertmanager; stop everything afterwards, on failure too."""
    from infragen.load import Loader
    from infragen.models.types import format_duration

    with contextlib.ExitStack() as cleanup:
        secrets = workdir / "secrets"
        if not SECRET_PATH.match(str(secrets)):  # e.g. a --basetemp with a space: infragen refuses such paths
            secrets = Path(tempfile.mkdtemp(prefix="infragen-live-secrets-", dir="/tmp"))
            cleanup.callback(shutil.rmtree, secrets, True)
        receiver = WebhookReceiver()
        cleanup.callback(receiver.close)
        for name in setup.receivers:  # one Secret per receiver, one file per key, as the operator mounts them
            write_secret(secrets / name / "url", receiver.url(name))
            write_secret(secrets / name / "routing-key", f"key-{name}")

        environments, output = workdir / "environments", workdir / "output"
        shutil.copytree(setup.fixtures, environments)
        for name, namespace in (("live", setup.namespace), ("shadow", setup.other_namespace)):
            (environments / f"{name}.yaml").write_text(setup.environment(namespace, secrets, receiver), encoding="utf-8")
        build(environments, output)
        env = Loader(environments).load("live")
        rules_file = output / "live" / "prometheus" / "alerts.yaml"
        alertmanager_file = output / "live" / "alertmanager" / "alertmanager.yaml"

        app = FakeApp(setup.namespace, HEALTHY)
        cleanup.callback(app.stop)
        other = FakeApp(setup.other_namespace, broken(env.capacity.connections_per_pod))
        cleanup.callback(other.stop)

        (workdir / "alertmanager").mkdir()
        am = cleanup.enter_context(running(Alertmanager(alertmanager, workdir / "alertmanager", alertmanager_file)))
        (workdir / "prometheus").mkdir()
        config = workdir / "prometheus" / "prometheus.yml"
        config.write_text(prometheus_config(env.spec.service.name, {setup.namespace: app.target,
                                                                    setup.other_namespace: other.target},
                                            rules_file, f"127.0.0.1:{am.port}",
                                            format_duration(env.spec.alerts.scrape_interval)),
                          encoding="utf-8")
        prom = cleanup.enter_context(running(Prometheus(prometheus, workdir / "prometheus", config)))

        stack = Stack(env=env, namespace=setup.namespace, other_namespace=setup.other_namespace, job=env.spec.service.name,
                      app=app, other=other, receiver=receiver, prometheus=prom, alertmanager=am,
                      rules_file=rules_file, alertmanager_file=alertmanager_file,
                      control_rules=rule_expressions(output / "shadow" / "prometheus" / "alerts.yaml"))
        expected_rules = {rule["alert"] for group in yaml.safe_load(rules_file.read_text(encoding="utf-8"))["groups"]
                          for rule in group["rules"]}
        stack.wait_until(lambda: {t["labels"].get("namespace") for t in prom.api("targets")["activeTargets"]
                                  if t["health"] == "up"} == {setup.namespace, setup.other_namespace},
                         STARTUP_TIMEOUT, "Prometheus to scrape both fake apps successfully")
        stack.wait_until(lambda: [a["url"] for a in prom.api("alertmanagers")["activeAlertmanagers"]],
                         STARTUP_TIMEOUT, "Prometheus to find the Alertmanager")
        stack.wait_until(lambda: {r["name"] for r in prom.rules() if r.get("health") == "ok"} == expected_rules,
                         STARTUP_TIMEOUT, f"Prometheus to load and evaluate the rules {sorted(expected_rules)}")
        yield stack
