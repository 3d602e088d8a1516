"""Every bad input issue 5 tries, as data: the tests run them and docs/bad-input.md is generated from the
tests' actual output (tests/test_hostile_input.py fails when the document drifts).

A case writes files into a fresh project that already holds a good build of MINIMAL, runs one command, and
says what exit code and which text the user must see.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from conftest import MINIMAL

ENV = "environments/production.yaml"


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    shown: str  # the input, as the document shows it
    files: dict[str, bytes | str] = field(default_factory=dict)
    args: tuple[str, ...] = ("build",)
    expect: str = ""  # text that must appear in what the user sees
    exit: int = 2
    setup: Callable[[Path], None] | None = None


def monitoring(setting: str) -> str:
    """MINIMAL with `setting` added under monitoring:."""
    return MINIMAL.replace("monitoring: {labels: {release: prometheus}}", f"monitoring: {{{setting}}}")


def lb(extra: str) -> str:
    """MINIMAL with lines added under load_balancing:."""
    return MINIMAL.replace("load_balancing:\n", "load_balancing:\n" + extra)


def _symlink(target: str, link: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        path = root / link
        if path.is_dir() and not path.is_symlink():
            import shutil

            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        path.symlink_to(target if target.startswith("/") else root / target)
    return setup


def _outside(root: Path) -> None:
    (root / "elsewhere").mkdir(exist_ok=True)
    (root / "elsewhere" / "app.env").write_text("precious\n")


def _chain(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        for step in steps:
            step(root)
    return setup


def _replace_with_file(rel: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        import shutil

        shutil.rmtree(root / rel)
        (root / rel).write_text("hand-written\n")
    return setup


def _replace_with_dir(rel: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        (root / rel).unlink()
        (root / rel).mkdir()
    return setup


def _fifo(rel: str) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        os.mkfifo(root / rel)
    return setup


LAUGHS = b"".join([
    b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
    *[f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n".encode() for i in range(8)],
    b"tier: production\n",
])

CASES: list[Case] = [
    # --- YAML -----------------------------------------------------------------------------------------
    Case("duplicate-key", "YAML", "`tier:` twice", {ENV: MINIMAL + "tier: staging\n"}, expect="duplicate key 'tier'"),
    Case("duplicate-nested-key", "YAML", "`service: {name: a, name: b}`",
         {ENV: MINIMAL.replace("{name: fraud-api,", "{name: fraud-api, name: other,")}, expect="duplicate key 'name'"),
    Case("billion-laughs", "YAML", "9 levels of 9 aliases (\"billion laughs\", 387M values)", {ENV: LAUGHS},
         expect="expands to more than"),
    # `{a: ` rather than `[`: libyaml >= 0.2.5 scans 1024 characters ahead and would stop at its own limit first,
    # at another column, and this table must read the same whatever libyaml PyYAML was built with.
    Case("deep-flow-nesting", "YAML", "`a: {a: {a: ...` 50,000 deep (crashed PyYAML's C composer)",
         {ENV: b"a: " + b"{a: " * 50000 + b"}" * 50000}, expect="nesting deeper than 32 levels"),
    Case("deep-block-nesting", "YAML", "block mappings 40 deep", {ENV: "".join(" " * i + "a:\n" for i in range(40)) + " " * 40 + "b: 1\n"},
         expect="nesting deeper than 32 levels"),
    Case("recursive-alias", "YAML", "`a: &x [*x]`", {ENV: MINIMAL + "a: &x [*x]\n"}, expect="nesting deeper"),
    Case("too-large", "YAML", "a 300 KB file", {ENV: MINIMAL + "#" + "x" * 300_000 + "\n"}, expect="byte limit"),
    Case("latin-1", "YAML", "`namespace: caf\\xe9` saved as Latin-1",
         {ENV: MINIMAL.replace("fraud-prod", "caf\xe9").encode("latin-1")}, expect="not valid UTF-8"),
    Case("utf-16", "YAML", "the file saved as UTF-16", {ENV: MINIMAL.encode("utf-16")}, expect="not valid UTF-8"),
    Case("bom", "YAML", "UTF-8 byte-order mark", {ENV: b"\xef\xbb\xbf" + MINIMAL.encode()}, expect="byte-order mark"),
    Case("nul", "YAML", "a NUL byte", {ENV: MINIMAL + "a: b\x00c\n"}, expect="NUL byte"),
    Case("control-char", "YAML", "an ESC control character in a value", {ENV: MINIMAL + "a: \x1b[31m\n"},
         expect="control character 0x1b"),
    Case("tab-indent", "YAML", "a tab indenting `servers:`", {ENV: MINIMAL.replace("  servers", "\tservers")},
         expect="tab used for indentation"),
    Case("empty", "YAML", "an empty file", {ENV: ""}, expect="file is empty"),
    Case("comments-only", "YAML", "only comments", {ENV: "# nothing yet\n"}, expect="file is empty"),
    Case("top-level-list", "YAML", "`- tier: production`", {ENV: "- tier: production\n"}, expect="not a list"),
    Case("top-level-scalar", "YAML", "`production`", {ENV: "production\n"}, expect="top level must be a mapping"),
    Case("multi-document", "YAML", "two documents separated by `---`", {ENV: MINIMAL + "---\ntier: staging\n"},
         expect="more than one YAML document"),
    Case("syntax-error", "YAML", "`service: {name: fraud-api`", {ENV: "tier: production\nservice: {name: fraud-api\n"},
         expect="invalid YAML"),
    Case("merge-key", "YAML", "`<<: *base`", {ENV: "base: &b {tier: production}\n<<: *b\n"}, expect="merge keys"),
    Case("python-tag", "YAML", "`!!python/object/apply:os.system [id]`", {ENV: MINIMAL + "x: !!python/object/apply:os.system [id]\n"},
         expect="not supported"),
    Case("set-tag", "YAML", "`!!set {a, b}`", {ENV: MINIMAL + "x: !!set {a, b}\n"}, expect="not supported"),
    Case("bad-explicit-int", "YAML", "`port: !!int eighty`", {ENV: MINIMAL.replace("namespace: fraud-prod", "namespace: fraud-prod, port: !!int eighty")},
         expect="not a whole number"),
    Case("huge-int", "YAML", "a 1000-digit number", {ENV: MINIMAL + "autoscaling: {max_replicas: " + "9" * 1000 + "}\n"},
         expect="at most 18 digits"),
    Case("infinite-float", "YAML", "`load_estimate: 1.0e+999`", {ENV: MINIMAL.replace("max_connections: 500", "max_connections: 500, load_estimate: 1.0e+999")},
         expect="not a finite decimal number"),
    Case("long-value", "YAML", "a 200,000-character value (the secrets scan took minutes on one)",
         {ENV: MINIMAL + 'alerts: {labels: {team: "' + "v" * 200_000 + '"}}\n'}, expect="no setting is longer than 1024"),
    Case("long-explicit-key", "YAML", "`? <200,000 characters>` (an explicit key)", {ENV: MINIMAL + "? " + "k" * 200_000 + "\n: 1\n"},
         expect="a key of 200000 characters"),
    Case("list-as-key", "YAML", "`[a, b]: 1`", {ENV: MINIMAL + "[a, b]: 1\n"}, expect="mapping key must be a plain name"),
    Case("newline-in-key", "YAML", "`\"tier\\n\": x` (a key with a newline)", {ENV: MINIMAL + '"tier\\n": x\n'},
         expect="unknown key 'tier\\n'"),
    Case("directory", "YAML", "`environments/staging.yaml` is a directory", {"environments/staging.yaml/x": "x"},
         expect="is a directory"),
    Case("fifo", "YAML", "`environments/staging.yaml` is a named pipe (would block forever)",
         setup=_fifo("environments/staging.yaml"), expect="not a regular file"),
    # --- YAML 1.1 surprises ---------------------------------------------------------------------------
    Case("version-float", "YAML 1.1", "`nginx_version: 1.30`", {ENV: lb("  nginx_version: 1.30\n")},
         expect='quote it: "1.30"'),
    Case("version-float-122", "YAML 1.1", "`nginx_version: 1.22`", {ENV: lb("  nginx_version: 1.22\n")},
         expect='quote it: "1.22"'),
    Case("bool-on", "YAML 1.1", "`enabled: on`", {ENV: lb("  session_affinity: {enabled: on}\n")},
         expect="read as a boolean by YAML 1.1"),
    Case("bool-no-as-text", "YAML 1.1", "`cookie: no`", {ENV: lb("  session_affinity: {cookie: no}\n")},
         expect="quote it ('no')"),
    Case("bool-yes", "YAML 1.1", "`nodelay: yes`", {ENV: MINIMAL + "rate_limit: {nodelay: yes}\n"}, expect="write true or false"),
    Case("octal", "YAML 1.1", "`port: 010`", {ENV: MINIMAL.replace("namespace: fraud-prod", "namespace: fraud-prod, port: 010")},
         expect="ambiguous number"),
    Case("hex", "YAML 1.1", "`port: 0x1F90`", {ENV: MINIMAL.replace("namespace: fraud-prod", "namespace: fraud-prod, port: 0x1F90")},
         expect="ambiguous number"),
    Case("base-60", "YAML 1.1", "`for: 1:30`", {ENV: MINIMAL + "alerts: {error_rate: {for: 1:30}}\n"}, expect="base-60"),
    Case("digit-groups", "YAML 1.1", "`max_connections: 1_000`", {ENV: MINIMAL.replace("500", "1_000")}, expect="ambiguous number"),
    Case("duration-no-unit", "YAML 1.1", "`for: 5`", {ENV: MINIMAL + "alerts: {error_rate: {for: 5}}\n"},
         expect="a duration needs a unit"),
    Case("duration-quoted-no-unit", "YAML 1.1", "`for: \"5\"`", {ENV: MINIMAL + "alerts: {error_rate: {for: \"5\"}}\n"},
         expect="is not a duration"),
    Case("duration-bad-unit", "YAML 1.1", "`for: 5min`", {ENV: MINIMAL + "alerts: {error_rate: {for: 5min}}\n"},
         expect="is not a duration"),
    Case("duration-non-ascii-digit", "YAML 1.1", "`for: ٥m` (Arabic-Indic five)", {ENV: MINIMAL + "alerts: {error_rate: {for: ٥m}}\n"},
         expect="is not a duration"),
    Case("number-as-text", "YAML 1.1", "`namespace: 2024`", {ENV: MINIMAL.replace("fraud-prod", "2024")}, expect='quote it: "2024"'),
    Case("text-as-number", "YAML 1.1", "`port: \"8000\"`", {ENV: MINIMAL.replace("namespace: fraud-prod", "namespace: fraud-prod, port: \"8000\"")},
         expect="valid integer"),
    Case("null-tilde", "YAML 1.1", "`name: ~` (null)", {ENV: MINIMAL.replace("name: fraud-api", "name: ~")}, expect="service.name"),
    # accepted exactly as meant
    Case("duration-plain", "YAML 1.1", "`for: 5m` (accepted: 5 minutes)", {ENV: MINIMAL + "alerts: {error_rate: {for: 5m}}\n"},
         exit=0, expect="changed"),
    Case("version-quoted", "YAML 1.1", "`nginx_version: \"1.30\"` (accepted: 1.30, sticky cookie)",
         {ENV: lb('  nginx_version: "1.30"\n')}, exit=0, expect="changed"),
    # --- names ----------------------------------------------------------------------------------------
    Case("arg-dotdot", "Names", "`infragen build ../x`", args=("build", "../x"), expect="not an environment name"),
    Case("arg-absolute", "Names", "`infragen build /etc/passwd`", args=("build", "/etc/passwd"), expect="never paths"),
    Case("arg-dot", "Names", "`infragen build .`", args=("build", "."), expect="not an environment name"),
    Case("arg-partial", "Names", "`infragen build _base`", {"environments/_base.yaml": "tier: production\n"},
         args=("build", "_base"), expect="is a partial"),
    Case("arg-unknown", "Names", "`infragen build prod`", args=("build", "prod"), expect="did you mean 'production'"),
    Case("file-uppercase", "Names", "`environments/Production.yaml`", {"environments/Production.yaml": MINIMAL},
         expect="must be a DNS label"),
    Case("file-underscore", "Names", "`environments/prod_eu.yaml`", {"environments/prod_eu.yaml": MINIMAL},
         expect="must be a DNS label"),
    Case("file-newline", "Names", "`environments/evil\\n.yaml` (newline in the name)", {"environments/evil\n.yaml": MINIMAL},
         expect="evil\\n.yaml"),
    Case("file-non-ascii", "Names", "`environments/prödüction.yaml`", {"environments/prödüction.yaml": MINIMAL},
         expect="must be a DNS label"),
    Case("partial-bad-name", "Names", "`environments/_Base.yaml`", {"environments/_Base.yaml": "tier: production\n"},
         expect="partial's name"),
    Case("extends-path", "Names", "`extends: ../secrets`", {ENV: "extends: ../secrets\n" + MINIMAL}, expect="not a partial name"),
    Case("extends-absolute", "Names", "`extends: /etc/passwd`", {ENV: "extends: /etc/passwd\n" + MINIMAL}, expect="not a partial name"),
    Case("extends-missing", "Names", "`extends: _missing`", {ENV: "extends: _missing\n" + MINIMAL}, expect="chain: production -> _missing"),
    Case("extends-missing-deep", "Names", "`_a` extends `_missing`",
         {ENV: "extends: _a\n" + MINIMAL, "environments/_a.yaml": "extends: _missing\n"},
         expect="chain: production -> _a -> _missing"),
    Case("extends-cycle", "Names", "`_a` extends `_b` extends `_a`",
         {ENV: "extends: _a\n" + MINIMAL, "environments/_a.yaml": "extends: _b\n", "environments/_b.yaml": "extends: _a\n"},
         expect="extends cycle: _a -> _b -> _a"),
    Case("extends-self", "Names", "`_a` extends itself", {ENV: "extends: _a\n" + MINIMAL, "environments/_a.yaml": "extends: _a\n"},
         expect="extends cycle: _a -> _a"),
    Case("extends-number", "Names", "`extends: 5`", {ENV: "extends: 5\n" + MINIMAL}, expect="expected a partial name"),
    # --- injection --------------------------------------------------------------------------------------
    Case("inject-name-newline", "Injection", '`name: "fraud-api\\nzone x"`', {ENV: MINIMAL.replace("name: fraud-api", 'name: "fraud-api\\nzone x"')},
         expect="is not a DNS label"),
    Case("inject-server-semicolon", "Injection", '`servers: ["10.0.0.1:8080; include /etc/passwd"]`',
         {ENV: MINIMAL.replace('"10.0.0.1:8080"', '"10.0.0.1:8080; include /etc/passwd"')}, expect="load_balancing.servers.0"),
    Case("inject-key-brace", "Injection", "`rate_limit: {key: \"$x} server {\"}`", {ENV: MINIMAL + 'rate_limit: {key: "$x} server {"}\n'},
         expect="rate_limit.key"),
    Case("inject-cookie", "Injection", "`cookie: \"a; b\"`", {ENV: lb('  session_affinity: {cookie: "a; b"}\n')}, expect="session_affinity.cookie"),
    Case("inject-label-template", "Injection", "`labels: {team: \"{{ $value }}\"}`", {ENV: MINIMAL + 'alerts: {labels: {team: "{{ $value }}"}}\n'},
         expect="Prometheus template"),
    Case("inject-group-by", "Injection", "`group_by: [\"alertname\\n- x\"]`", {ENV: MINIMAL + 'alertmanager: {group_by: ["alertname\\n- x"]}\n'},
         expect="alertmanager.group_by.0"),
    Case("inject-channel", "Injection", "`channel: \"#a\\nb\"`",
         {ENV: MINIMAL + 'alertmanager: {receivers: {s: {slack: {api_url_secret: {name: x, key: y}, channel: "#a\\nb"}}}, default_receiver: s, routes: {critical: s, warning: s, info: s}}\n'},
         expect="channel"),
    Case("inject-runbook", "Injection", "`runbook_url: \"https://x/\\\" #\"`", {ENV: MINIMAL + 'alerts: {runbook_url: "https://x/\\" #"}\n'},
         expect="alerts.runbook_url"),
    Case("server-port", "Injection", '`servers: ["10.0.0.1:70000"]`', {ENV: MINIMAL.replace('"10.0.0.1:8080"', '"10.0.0.1:70000"')},
         expect="port 70000 is above 65535"),
    Case("server-bad-ipv6", "Injection", '`servers: ["[::1::]:80"]`', {ENV: MINIMAL.replace('"10.0.0.1:8080"', '"[::1::]:80"')},
         expect="not a valid IP address"),
    Case("duration-huge", "Injection", "`for: 99999999w`", {ENV: MINIMAL + "alerts: {error_rate: {for: 99999999w}}\n"},
         expect="longer than 520w"),
    Case("group-by-duplicate", "Injection", "`group_by: [alertname, alertname]`", {ENV: MINIMAL + "alertmanager: {group_by: [alertname, alertname]}\n"},
         expect="listed twice"),
    Case("group-by-all-and-more", "Injection", "`group_by: ['...', alertname]`", {ENV: MINIMAL + "alertmanager: {group_by: ['...', alertname]}\n"},
         expect="cannot be combined"),
    Case("repeat-zero", "Injection", "`repeat_interval: 0s`", {ENV: MINIMAL + "alertmanager: {repeat_interval: 0s}\n"},
         expect="alertmanager.repeat_interval"),
    Case("label-value-astral", "Injection", "`labels: {team: \"🚀\"}` (accepted, written as `\\U0001f680`)",
         {ENV: MINIMAL + 'alerts: {labels: {team: "\U0001F680"}}\n'}, exit=0, expect="changed"),
    Case("label-value-accepted", "Injection", "`labels: {team: \"a\\\"b: c #d $e é\"}` (accepted, escaped)",
         {ENV: MINIMAL + 'alerts: {labels: {team: "a\\"b: c #d $e \u00e9"}}\n'}, exit=0, expect="changed"),
    # --- monitoring -------------------------------------------------------------------------------------
    Case("port-name-number", "Monitoring", "`port_name: 8000` (the operator wants the port's name)",
         {ENV: monitoring("port_name: '8000'")}, expect="monitoring.port_name: '8000' is not a Kubernetes port name"),
    Case("port-name-long", "Monitoring", "`port_name: metrics-endpoint-http` (16 characters)",
         {ENV: monitoring("port_name: metrics-endpoint-http")}, expect="is not a Kubernetes port name"),
    Case("port-name-upper", "Monitoring", "`port_name: HTTP`", {ENV: monitoring("port_name: HTTP")},
         expect="is not a Kubernetes port name"),
    Case("path-relative", "Monitoring", "`path: metrics`", {ENV: monitoring("path: metrics")},
         expect="monitoring.path: expected a path starting with /"),
    Case("label-key-bad", "Monitoring", "`labels: {\"release name\": x}`", {ENV: monitoring('labels: {"release name": x}')},
         expect="is not a valid Kubernetes label key"),
    Case("label-value-bad", "Monitoring", "`labels: {release: \"kube prometheus\"}`",
         {ENV: monitoring('labels: {release: "kube prometheus"}')}, expect="is not a valid Kubernetes label value"),
    Case("label-value-long", "Monitoring", "a 64-character label value", {ENV: monitoring("labels: {release: " + "r" * 64 + "}")},
         expect="is not a valid Kubernetes label value"),
    Case("pagerduty-url", "Monitoring", "`pagerduty: {url: events.pagerduty.com}` (no scheme)",
         {ENV: MINIMAL + "alertmanager:\n  receivers:\n    oncall: {pagerduty: {routing_key_secret: {name: pd, key: k}, url: events.pagerduty.com}}\n"
                         "    team-slack: {slack: {api_url_secret: {name: slack, key: u}}}\n"},
         expect="expected an http:// or https:// URL"),
    # --- the app's limits at the edge (issue 18) --------------------------------------------------------
    Case("payload-zero", "Edge limits", "`validation: {max_payload_bytes: 0}`", {ENV: MINIMAL + "validation: {max_payload_bytes: 0}\n"},
         expect="validation.max_payload_bytes: Input should be greater than or equal to 1 (got 0)"),
    Case("batch-negative", "Edge limits", "`validation: {max_batch_items: -5}`", {ENV: MINIMAL + "validation: {max_batch_items: -5}\n"},
         expect="validation.max_batch_items: Input should be greater than or equal to 1 (got -5)"),
    Case("quota-zero", "Edge limits", "`quotas: {api_calls: {limit: 0, period: daily}}`",
         {ENV: MINIMAL + "quotas: {api_calls: {limit: 0, period: daily}}\n"},
         expect="quotas.api_calls.limit: Input should be greater than or equal to 1 (got 0)"),
    Case("upload-relative", "Edge limits", "`uploads: [{path: api/upload, ...}]` (not absolute)",
         {ENV: MINIMAL + "validation:\n  uploads: [{path: api/upload, max_bytes: 1048576, allowed_types: [csv]}]\n"},
         expect="validation.uploads.0.path: expected an absolute path such as /api/v1/reports/upload"),
    Case("upload-twice", "Edge limits", "the same upload path twice",
         {ENV: MINIMAL + "validation:\n  uploads:\n    - {path: /up, max_bytes: 10, allowed_types: [csv]}\n"
                         "    - {path: /up, max_bytes: 20, allowed_types: [xlsx]}\n"},
         expect="validation.uploads: upload path /up is listed twice"),
    Case("upload-type", "Edge limits", "`allowed_types: [\"*.csv\"]`",
         {ENV: MINIMAL + "validation:\n  uploads: [{path: /up, max_bytes: 10, allowed_types: [\"*.csv\"]}]\n"},
         expect="validation.uploads.0.allowed_types.0: expected simple extensions (csv, xlsx) or MIME types"),
    Case("quota-period", "Edge limits", "`period: weekly`", {ENV: MINIMAL + "quotas: {api_calls: {limit: 10, period: weekly}}\n"},
         expect="quotas.api_calls.period: Input should be 'daily' or 'monthly'"),
    Case("quota-feature", "Edge limits", "`quotas: {api-calls: ...}` (not an env key)",
         {ENV: MINIMAL + "quotas: {api-calls: {limit: 10, period: daily}}\n"}, expect="quotas.api-calls"),
    Case("throttle-percent", "Edge limits", "`throttling: {cpu_percent: 120}`", {ENV: MINIMAL + "throttling: {cpu_percent: 120}\n"},
         expect="throttling.cpu_percent: Input should be less than or equal to 100 (got 120)"),
    Case("throttle-percent-zero", "Edge limits", "`throttling: {memory_percent: 0}`",
         {ENV: MINIMAL + "throttling: {memory_percent: 0}\n"},
         expect="throttling.memory_percent: Input should be greater than or equal to 1 (got 0)"),
    Case("discovery-and-servers", "Edge limits", "`discovery` beside `servers`",
         {ENV: lb('  nginx_version: "1.27.3"\n  discovery: {service: api-hl.ns.svc.cluster.local}\n')},
         expect="load_balancing.discovery: discovery and static servers exclude each other"),
    Case("discovery-old-nginx", "Edge limits", "`discovery` on nginx 1.22",
         {ENV: MINIMAL.replace('  servers: ["10.0.0.1:8080", "10.0.0.2:8080"]\n',
                               "  discovery: {service: api-hl.ns.svc.cluster.local}\n")},
         expect="load_balancing.discovery: discovery needs nginx 1.27.3 or later"),
    Case("session-ttl", "Edge limits", "`sessions: {ttl: one day}`", {ENV: MINIMAL + "sessions: {ttl: one day}\n"},
         expect="sessions.ttl: 'one day' is not a duration"),
    Case("session-ttl-bare", "Edge limits", "`sessions: {ttl: 86400}`", {ENV: MINIMAL + "sessions: {ttl: 86400}\n"},
         expect="sessions.ttl: a duration needs a unit"),
    # --- alert routing ---------------------------------------------------------------------------------
    Case("secret-without-key", "Alerting", "`routing_key_secret: {name: alertmanager-pagerduty}` (no key)",
         {ENV: MINIMAL + "alertmanager:\n  receivers:\n    oncall: {pagerduty: {routing_key_secret: {name: alertmanager-pagerduty}}}\n"},
         expect="a Secret reference names the key too"),
    Case("secret-and-file", "Alerting", "`slack: {api_url_file: ..., api_url_secret: {...}}` (both)",
         {ENV: MINIMAL + "alertmanager:\n  format: file\n  receivers:\n    team-slack: {slack: {api_url_file: "
                         "/etc/alertmanager/secrets/slack/url, api_url_secret: {name: slack, key: url}}}\n"},
         expect="has both api_url_file and api_url_secret"),
    Case("route-undefined-operator", "Alerting", "`routes: {warning: chat}` with no receiver `chat` (operator mode)",
         {ENV: MINIMAL + "alertmanager: {routes: {warning: chat}}\n"}, expect="names receiver 'chat', which is not defined"),
    Case("route-undefined-file", "Alerting", "`default_receiver: chat` with no receiver `chat` (file mode)",
         {ENV: MINIMAL + "alertmanager: {format: file, default_receiver: chat}\n"},
         expect="names receiver 'chat', which is not defined"),
    Case("file-in-operator-mode", "Alerting", "`routing_key_file: ...` with the operator (the default)",
         {ENV: MINIMAL + "alertmanager:\n  receivers:\n    oncall: {pagerduty: {routing_key_file: "
                         "/etc/alertmanager/secrets/alertmanager-pagerduty/routing-key}}\n"
                         "    team-slack: {slack: {api_url_secret: {name: alertmanager-slack, key: api-url}}}\n"},
         expect="use routing_key_secret: {name:"),
    # --- output directory -------------------------------------------------------------------------------
    Case("output-dot", "Output", "`--output .` (the whole project would be in scope for orphan deletion)",
         args=("build", "--output", "."), expect="contains the environments directory"),
    Case("output-is-file", "Output", "`output` is a file", setup=_replace_with_file("output"), expect="output: is not a directory"),
    Case("output-dangling-link", "Output", "`output` is a link to nothing", setup=_symlink("/nonexistent-infragen-target", "output"),
         expect="output: is not a directory"),
    Case("output-parent-is-file", "Output", "`--output notes.txt/out` where notes.txt is a file",
         setup=lambda root: (root / "notes.txt").write_text("x\n"), args=("build", "--output", "notes.txt/out"),
         expect="cannot create: Not a directory"),
    Case("output-root", "Output", "`--output /`", args=("build", "--output", "/"), expect="contains the environments directory"),
    Case("hand-written-target", "Output", "a hand-written `output/production/app.env`",
         setup=lambda root: (root / "output/production/app.env").write_text("MINE=1\n"), expect="was not generated by infragen"),
    Case("hand-written-extra", "Output", "a hand-written `output/production/NOTES.md` (build)",
         setup=lambda root: (root / "output/production/NOTES.md").write_text("notes\n"), exit=0, expect="0 changed"),
    Case("hand-written-check", "Output", "a hand-written `output/production/NOTES.md` (check)",
         setup=lambda root: (root / "output/production/NOTES.md").write_text("notes\n"), args=("check",), exit=0,
         expect="NOTES.md was not generated by infragen; left alone"),
    Case("slo-objective-100", "SLO", "`slo: {availability: {objective: 100}}`",
         {ENV: MINIMAL + "slo: {availability: {objective: 100}}\n"}, expect="leaves no error budget"),
    Case("slo-objective-0", "SLO", "`slo: {latency: {objective: 0}}`",
         {ENV: MINIMAL + "slo: {latency: {objective: 0}}\n"}, expect="is not above 0"),
    Case("slo-threshold-not-bucket", "SLO", "`slo: {latency: {threshold_seconds: 0.3}}` with the default buckets",
         {ENV: MINIMAL + "slo: {latency: {threshold_seconds: 0.3}}\n"}, expect="the nearest are 0.25 and 0.5"),
    Case("slo-period-unparsable", "SLO", "`slo: {period: 30 days}`", {ENV: MINIMAL + "slo: {period: 30 days}\n"},
         expect="is not a duration"),
    Case("slo-period-short", "SLO", "`slo: {period: 2d}`", {ENV: MINIMAL + "slo: {period: 2d}\n"},
         expect="shorter than the longest alert window"),
    Case("latency-buckets-not-increasing", "SLO", "`metrics: {latency_buckets: [0.1, 0.5, 0.25]}`",
         {ENV: MINIMAL + "metrics: {latency_buckets: [0.1, 0.5, 0.25]}\n"}, expect="must increase strictly"),
    Case("symlink-env-dir", "Output", "`output/production` is a symlink out of `output/`",
         {ENV: MINIMAL.replace("500", "600")}, setup=_chain(_outside, _symlink("elsewhere", "output/production")),
         expect="is a symlink"),
    Case("symlink-file", "Output", "`output/production/app.env` is a symlink out of `output/`",
         {ENV: MINIMAL.replace("500", "600")}, setup=_chain(_outside, _symlink("elsewhere/app.env", "output/production/app.env")),
         expect="was not generated by infragen"),
    Case("file-for-dir", "Output", "`output/production/nginx` is a file", {ENV: MINIMAL.replace("500", "600")},
         setup=_replace_with_file("output/production/nginx"), expect="is a file where infragen needs a directory"),
    Case("dir-for-file", "Output", "`output/production/app.env` is a directory", setup=_replace_with_dir("output/production/app.env"),
         expect="was not generated by infragen"),
    Case("fifo-in-output", "Output", "a named pipe `output/production/pipe` (check)", setup=_fifo("output/production/pipe"),
         args=("check",), exit=0, expect="pipe was not generated by infragen"),
]
