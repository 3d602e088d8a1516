"""A real nginx (the Debian package) runs the generated upstream.conf and location.conf in front of three
small local HTTP backends, and real requests show the settings doing what they say: cookie affinity,
least-connections balancing, and rate limiting with 429. Loopback only; every process is stopped.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest
from tools import require

from infragen.consumers import free_port, nginx_version, nginx_wrapper
from infragen.load import Loader
from infragen.models.edge import RateArithmetic
from infragen.render import render_environment

pytestmark = [pytest.mark.tools, pytest.mark.live]  # real servers on 127.0.0.1

BACKENDS = 3
SLOW_SECONDS = 0.2  # how long the slow backend holds each request in the least-connections test


class _Backend(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name, self.delay = name, delay
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # nginx keeps keepalive connections to the upstream

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms a request.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server: _Backend = self.server  # type: ignore[assignment]
        if server.delay:
            time.sleep(server.delay)
        self._answer(server.name)

    def do_POST(self) -> None:  # noqa: N802
        server: _Backend = self.server  # type: ignore[assignment]
        received = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._answer(f"{server.name} {len(received)}")

    def _answer(self, text: str) -> None:
        body = text.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        # What reached the backend, for the request-id test.
        self.send_header("X-Seen-Request-Id", self.headers.get("X-Request-ID", ""))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def backends(delays: tuple[float, ...] = (0.0,) * BACKENDS) -> Iterator[list[_Backend]]:
    servers = [_Backend(f"backend-{i}", delay) for i, delay in enumerate(delays)]
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield servers
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


class Files(NamedTuple):
    upstream: Path
    location: Path
    server: Path


def _generate(project: Path, settings: str, servers: list[_Backend]) -> Files:
    """Write an environment file for these backends, render it, return its nginx files."""
    text = textwrap.dedent(settings) + "  servers: [" + ", ".join(f'"{s.address}"' for s in servers) + "]\n"
    (project / "environments" / "live.yaml").write_text(text, encoding="utf-8")
    env = Loader(project / "environments").load("live")
    out = project / "output"
    for rel, content in render_environment(env).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(content, encoding="utf-8")
    return Files(out / "live/nginx/upstream.conf", out / "live/nginx/location.conf", out / "live/nginx/server.conf")


@contextlib.contextmanager
def running_nginx(tmp: Path, upstream: Path, location: Path, server: Path) -> Iterator[int]:
    """Start nginx in the foreground on a loopback port, with the three files where their headers say; stop it
    (and its worker) afterwards."""
    nginx = require("nginx")
    prefix = tmp / "nginx"
    prefix.mkdir()
    os.chmod(prefix, 0o755)  # as root, the worker runs as an unprivileged user and needs to enter it
    port = free_port()
    config = prefix / "nginx.conf"
    # As root, the worker would run as nobody, who cannot enter pytest's private tmp directories to buffer a large
    # request body in client_body_temp: keep it root (only here, on loopback).
    main = "daemon off;\n" + ("user root;\n" if os.geteuid() == 0 else "")
    config.write_text(nginx_wrapper(prefix, [upstream], {"/": [location]}, f"127.0.0.1:{port}", main=main,
                                    server_includes=[server]), encoding="utf-8")
    error_log = prefix / "error.log"
    proc = subprocess.Popen([nginx, "-p", str(prefix), "-e", str(error_log), "-c", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 5
        while not _accepts(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = error_log.read_text(encoding="utf-8") if error_log.exists() else ""
                pytest.fail(f"nginx did not start with {upstream} and {location}:\n{log}{proc.stderr.read().decode()}")
            time.sleep(0.02)
        yield port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # fast shutdown; the master waits for its worker
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        proc.stderr.close()
    assert not _accepts(port), "nginx still listens after shutdown"


def _accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _answer(port: int, upstream: Path, cookie: str) -> str:
    status, backend = get(port, cookie)
    assert status == 200, f"{upstream}: status {status}"
    return backend


def get(port: int, cookie: str | None = None) -> tuple[int, str]:
    """One request on a new connection: (status, name of the backend that answered)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/score", headers={"Cookie": cookie} if cookie else {})
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


HIGH_LIMIT = """\
    tier: production
    service: {name: fraud-api, namespace: live}
    database: {max_connections: 1000}
    # Far above what the test sends: these tests are about balancing, not limiting.
    rate_limit: {requests: 10000, window_seconds: 1, burst: 10000}
    load_balancing:
    """


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "environments").mkdir()
    (tmp_path / "output").mkdir()
    return tmp_path


def _default_nginx_is_installed() -> None:
    nginx = require("nginx")
    version = nginx_version(nginx)
    if version is None or version < (1, 22, 0):
        pytest.skip(f"these tests need nginx >= 1.22 (the default nginx_version); found {version}")


def test_affinity_keeps_each_session_on_one_backend_and_spreads_sessions(project: Path) -> None:
    _default_nginx_is_installed()
    with backends() as servers:
        files = _generate(project, HIGH_LIMIT + "  session_affinity: {enabled: true, cookie: session_id}\n", servers)
        upstream = files.upstream
        with running_nginx(project, *files) as port:
            where: dict[str, set[str]] = collections.defaultdict(set)
            # Repeats back to back and in rounds of 61 sessions (not a multiple of 3), so round-robin
            # or least_conn (which round-robins between idle backends) can never look like affinity.
            sessions = [f"user-{n}" for n in range(61)]
            for session in sessions[:10]:
                for _ in range(3):
                    where[session].add(_answer(port, upstream, f"session_id={session}; theme=dark"))
            for _ in range(2):
                for session in sessions:
                    where[session].add(_answer(port, upstream, f"theme=dark; session_id={session}"))
            moved = {session: sorted(b) for session, b in where.items() if len(b) > 1}
            assert not moved, f"{upstream}: sessions moved between backends despite affinity: {moved}"
            per_backend = collections.Counter(next(iter(b)) for b in where.values())
            assert set(per_backend) == {s.name for s in servers}, \
                f"{upstream}: 61 sessions did not spread over all three backends: {dict(per_backend)}"
            cookieless = collections.Counter(get(port)[1] for _ in range(30))
            assert len(cookieless) >= 2, f"{upstream}: every request without the cookie went to one backend: {dict(cookieless)}"
            other_cookie = collections.Counter(get(port, "other=1")[1] for _ in range(30))
            assert len(other_cookie) >= 2, f"{upstream}: requests with only another cookie all went to one backend"


def test_without_affinity_least_connections_avoids_the_busy_backend(project: Path) -> None:
    _default_nginx_is_installed()
    with backends(delays=(SLOW_SECONDS, 0.0, 0.0)) as servers:
        files = _generate(project, HIGH_LIMIT + "  session_affinity: {enabled: false}\n", servers)
        upstream = files.upstream
        with running_nginx(project, *files) as port:
            # One at a time, every backend is equally idle: requests spread over all three.
            sequential = collections.Counter(get(port, "session_id=same")[1] for _ in range(6))
            assert set(sequential) == {s.name for s in servers}, f"{upstream}: load did not spread: {dict(sequential)}"
            # Concurrently, the slow backend keeps connections open, so least_conn sends it far fewer
            # requests than round-robin's third.
            with ThreadPoolExecutor(max_workers=6) as pool:
                answers = list(pool.map(lambda _: get(port), range(60)))
            assert all(status == 200 for status, _ in answers)
            counts = collections.Counter(backend for _, backend in answers)
            slow = counts[servers[0].name]
            assert slow <= len(answers) * 0.2, \
                f"{upstream}: the busy backend got {slow} of {len(answers)} requests ({dict(counts)}): not least-connections"
            assert counts[servers[1].name] and counts[servers[2].name], f"{upstream}: {dict(counts)}"


def test_requests_beyond_rate_and_burst_get_429(project: Path) -> None:
    _default_nginx_is_installed()
    burst = 4
    settings = f"""\
    tier: production
    service: {{name: fraud-api, namespace: live}}
    database: {{max_connections: 1000}}
    rate_limit: {{requests: 60, window_seconds: 60, burst: {burst}, nodelay: true}}
    load_balancing:
      session_affinity: {{enabled: false}}
    """
    with backends() as servers:
        files = _generate(project, settings, servers)
        location = files.location
        with running_nginx(project, *files) as port:
            statuses = [get(port)[0] for _ in range(burst + 8)]
    accepted = statuses.count(200)
    # 1 request per second plus the burst; one more may slip in if the loop spans a second.
    assert burst + 1 <= accepted <= burst + 2, f"{location}: accepted {accepted} of {statuses}, expected {burst + 1}"
    assert statuses[:burst + 1] == [200] * (burst + 1), f"{location}: {statuses}"
    assert set(statuses[accepted:]) == {429}, f"{location}: rejected requests must get 429, got {statuses}"


# --- the edge keeps the app's promises (issue 18) ------------------------------------------------------------

EDGE = """\
    tier: production
    service: {name: fraud-api, namespace: live}
    database: {max_connections: 1000}
    rate_limit: {requests: %d, window_seconds: %d}
    validation:
      uploads: [{path: /api/v1/reports/upload, max_bytes: %d, allowed_types: [csv, xlsx]}]
    load_balancing:
      session_affinity: {enabled: false}
    """


class Answer(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes
    sent: float  # time.monotonic() just before sending
    received: float  # and just after the answer was read


def request(port: int, method: str = "GET", path: str = "/score", body: bytes | None = None,
            headers: dict[str, str] | None = None, source: str = "127.0.0.1") -> Answer:
    """One request on a new connection from `source` (any 127.x address: a fresh rate-limit key)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        sent = time.monotonic()
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data, sent, time.monotonic())
    finally:
        conn.close()


def _arithmetic(files: Files) -> RateArithmetic:
    env = Loader(files.upstream.parents[3] / "environments").load("live")
    return env.edge.rate


def test_the_edge_admits_exactly_the_apps_bucket_then_429_with_retry_after(project: Path) -> None:
    """burst unset: `requests` back-to-back pass, the next gets 429 in the app's error shape with Retry-After, and
    one more passes once the refill interval has gone by. Timing is never asserted: what each answer must be is
    derived from nginx's arithmetic (infragen.models.edge) and the measured bounds of when nginx saw the requests;
    an attempt a stalled machine made inconclusive is repeated from a fresh client address (a fresh bucket)."""
    _default_nginx_is_installed()
    requests, window = 20, 60  # 20r/m: nginx admits one more 3004 ms after a full bucket, room for a loaded machine
    with backends() as servers:
        files = _generate(project, EDGE % (requests, window, 2 * 1024 * 1024), servers)
        rate = _arithmetic(files)
        assert (rate.burst, rate.edge_at_once, rate.refill_ms, rate.retry_after) == (19, 20, 3004, 4)
        assert f"burst={requests - 1} nodelay;" in files.location.read_text()
        with running_nginx(project, *files) as port:
            conclusive = 0
            for attempt in range(2, 6):
                source = f"127.0.0.{attempt}"
                burst = [request(port, source=source) for _ in range(requests + 1)]
                # Rejections cost nothing and the first `requests` fit the bucket, whatever the timing.
                assert [a.status for a in burst[:requests]] == [200] * requests, [a.status for a in burst]
                assert all("retry-after" not in a.headers for a in burst[:requests])
                last = burst[-1]
                # nginx drains at most stored_rate * ms / 1000 milli-requests in the ms it saw between the first and
                # the last request; under 1000 it cannot have refilled one.
                if (last.received - burst[0].sent) * 1000 * rate.stored_rate >= 1_000_000:
                    continue  # nginx may have refilled one: this attempt proves nothing about the 429
                conclusive += 1
                assert last.status == 429, f"{files.location}: request {requests + 1} got {last.status}"
                assert last.headers["retry-after"] == str(rate.retry_after)
                assert last.headers["content-type"] == "application/json"
                assert json.loads(last.body) == {"detail": f"Too many requests: {requests} per {window} s; retry "
                                                           f"after {rate.retry_after} s"}
                # After the refill interval (plus a margin) one more passes: more time only refills more.
                admitted = burst[requests - 1]
                time.sleep(max(0.0, rate.refill_ms / 1000 + 0.5 - (time.monotonic() - admitted.received)))
                one_more = request(port, source=source)
                assert one_more.status == 200, f"{files.location}: no refill after {rate.refill_ms} ms"
                next_one = request(port, source=source)
                if (next_one.received - admitted.sent) * 1000 * rate.stored_rate < 2_000_000:  # under two refills
                    assert next_one.status == 429, "nginx refilled more than one request in one interval"
                break
            assert conclusive, "every attempt took longer than the refill interval: the machine is too loaded"


def test_body_limits_and_uploads_answer_413_in_the_apps_shape(project: Path) -> None:
    _default_nginx_is_installed()
    payload, upload = 1024 * 1024, 2 * 1024 * 1024  # the default max_payload_bytes (1 MiB); the upload's own limit
    with backends() as servers:
        files = _generate(project, EDGE % (10000, 1, upload), servers)
        with running_nginx(project, *files) as port:
            ok = request(port, "POST", "/score", b"x" * payload)
            assert (ok.status, ok.body.split()[-1]) == (200, str(payload).encode()), ok
            too_large = request(port, "POST", "/score", b"x" * (payload + 1))
            assert too_large.status == 413, too_large
            assert too_large.headers["content-type"] == "application/json"
            assert json.loads(too_large.body) == {"detail": f"Request body larger than {payload} bytes"}
            # The upload path admits its own larger limit; another path refuses the same body.
            uploaded = request(port, "POST", "/api/v1/reports/upload", b"x" * upload)
            assert (uploaded.status, uploaded.body.split()[-1]) == (200, str(upload).encode()), uploaded
            assert request(port, "POST", "/score", b"x" * upload).status == 413
            beyond = request(port, "POST", "/api/v1/reports/upload", b"x" * (upload + 1))
            assert beyond.status == 413 and json.loads(beyond.body) == {
                "detail": f"Request body larger than {upload} bytes"}


def test_the_request_id_reaches_the_backend(project: Path) -> None:
    _default_nginx_is_installed()
    hex32 = re.compile(r"^[0-9a-f]{32}$")
    with backends() as servers:
        files = _generate(project, EDGE % (10000, 1, 1024), servers)
        with running_nginx(project, *files) as port:
            generated = [request(port).headers["x-seen-request-id"] for _ in range(2)]
            assert all(hex32.match(rid) for rid in generated) and generated[0] != generated[1], generated
            kept = request(port, headers={"X-Request-ID": "client-7f3a.1"}).headers["x-seen-request-id"]
            assert kept == "client-7f3a.1"
            for bad in ("has space", "x" * 65, "a;b"):
                replaced = request(port, headers={"X-Request-ID": bad}).headers["x-seen-request-id"]
                assert hex32.match(replaced), (bad, replaced)
            # Uploads go through the same proxy settings.
            upload = request(port, "POST", "/api/v1/reports/upload", b"x", headers={"X-Request-ID": "up-1"})
            assert upload.headers["x-seen-request-id"] == "up-1"
