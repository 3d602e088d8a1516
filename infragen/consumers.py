"""The programs that consume each artifact, run on a built file: one `Consumer` per kind of check.

Kubernetes manifests are validated in-process against the schemas bundled with kubernetes-validate; the rest
run the real tools (promtool, amtool, nginx, sh) on the file in output/<env>/. Each artifact names its consumer
in the registry (infragen.artifacts); `infragen verify` runs them. A consumer reads the file and writes only to
temporary directories.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from .errors import ToolError

if TYPE_CHECKING:
    from .models.environment import Environment

Status = Literal["ok", "failed", "skipped"]

OLDEST_KUBERNETES = (1, 27)  # the oldest Kubernetes minor the artifacts are checked against
TOOL_PACKAGES = {"promtool": "prometheus", "amtool": "prometheus-alertmanager", "nginx": "nginx-light"}
# Programs that are not a Debian package away: how to get each.
OTHER_TOOLS = {"kubectl": "install kubectl >= 1.21 from https://kubernetes.io/docs/tasks/tools/ (Debian's "
                          "kubernetes-client 1.20 has no Kustomize Components)"}
INSTALL_HINT = "apt-get install prometheus prometheus-alertmanager nginx-light"
TIMEOUT = 60  # seconds per tool run; they take well under one


def find_tool(name: str) -> str | None:
    """`name` on PATH, or in /usr/sbin (where Debian puts nginx, often off a non-root PATH)."""
    import shutil  # here, like subprocess: build and check run no tool

    found = shutil.which(name)
    if found:
        return found
    candidate = Path("/usr/sbin") / name
    return str(candidate) if os.access(candidate, os.X_OK) else None


def install_hint(tool: str) -> str:
    if tool in OTHER_TOOLS:
        return f"{tool} not installed ({OTHER_TOOLS[tool]})"
    return f"{tool} not installed (apt-get install {TOOL_PACKAGES.get(tool, tool)})"


def _run(argv: Sequence[str], cwd: Path | None = None) -> tuple[int, str]:
    import subprocess

    try:
        proc = subprocess.run(list(argv), cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT,
                              env={**os.environ, "LC_ALL": "C"})
    except subprocess.TimeoutExpired:
        return 124, f"{Path(argv[0]).name} did not finish within {TIMEOUT}s"
    except OSError as exc:
        return 127, f"cannot run {argv[0]}: {exc.strerror}"
    return proc.returncode, (proc.stdout + proc.stderr).strip()


run_tool = _run  # for infragen.application: the same environment, timeout and error text


def _common_dir(paths: Sequence[Path]) -> tuple[Path, list[str]]:
    """The deepest directory holding all `paths`, and their names relative to it: a tool run from there
    prints short names (and none of the directory's)."""
    absolute = [Path(os.path.abspath(p)) for p in paths]
    base = Path(os.path.commonpath([p.parent for p in absolute]))
    return base, [p.relative_to(base).as_posix() for p in absolute]


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return "(no output)"


# --- Kubernetes ---------------------------------------------------------------------------------------------

def kubernetes_versions() -> list[str]:
    """Every Kubernetes minor from OLDEST_KUBERNETES to the newest kubernetes-validate bundles."""
    from kubernetes_validate.utils import all_versions

    seen: dict[tuple[int, int], str] = {}
    for version in all_versions():
        major, minor = (int(p) for p in version.split(".")[:2])
        if (major, minor) >= OLDEST_KUBERNETES:
            seen.setdefault((major, minor), version)
    return [seen[key] for key in sorted(seen)]


def check_kubernetes(path: Path, versions: Sequence[str] | None = None) -> tuple[Status, str, str]:
    return check_kubernetes_text(path.read_text(encoding="utf-8"), versions)


def check_kubernetes_text(text: str, versions: Sequence[str] | None = None) -> tuple[Status, str, str]:
    """A manifest (HPA or PDB) against the schemas of `versions` (default: kubernetes_versions())."""
    import yaml

    try:
        import kubernetes_validate
    except ImportError:
        return "skipped", "kubernetes-validate not installed (pip install kubernetes-validate)", ""
    versions = list(versions) if versions is not None else kubernetes_versions()
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return "failed", f"not valid YAML: {_first_line(str(exc))}", str(exc)
    if not documents:
        return "failed", "no Kubernetes object in the file", ""
    problems: list[str] = []
    for doc in documents:
        problems.extend(f"{where}: {value} does not fit the int32 the API server stores it in"
                        for where, value in _beyond_int32(doc))
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = ".".join(str(p) for p in exc.path) or "(top level)"
                problems.append(f"Kubernetes {_minor(version)}: {where}: {exc.message}")
            except (kubernetes_validate.SchemaNotFoundError, KeyError, TypeError) as exc:
                problems.append(f"Kubernetes {_minor(version)}: {exc}")
    if problems:
        return "failed", f"kubernetes-validate --strict: {problems[0]}", "\n".join(problems)
    span = _minor(versions[0]) if len(versions) == 1 else f"{_minor(versions[0])}-{_minor(versions[-1])}"
    return "ok", f"kubernetes-validate --strict, Kubernetes {span}", ""


def _beyond_int32(node: object, where: str = "") -> list[tuple[str, int]]:
    """kubernetes-validate ignores `format: int32`; the API server does not. Every integer in an HPA or PDB
    is an int32 field."""
    if isinstance(node, dict):
        children = [(f"{where}.{key}" if where else str(key), value) for key, value in node.items()]
    elif isinstance(node, list):
        children = [(f"{where}.{i}", value) for i, value in enumerate(node)]
    else:
        children = []
    found = [problem for below, value in children for problem in _beyond_int32(value, below)]
    if isinstance(node, int) and not isinstance(node, bool) and not -2**31 <= node < 2**31:
        found.append((where or "(top level)", node))
    return found


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# --- Prometheus ---------------------------------------------------------------------------------------------

def check_rules(promtool: str, *paths: Path) -> tuple[Status, str, str]:
    """`promtool check rules`, every lint fatal; several files in one run check each on its own."""
    cwd, names = _common_dir(paths)
    code, out = _run([promtool, "check", "rules", "--lint=all", "--lint-fatal", *names], cwd=cwd)
    complaints = [line.strip() for line in out.splitlines()
                  if re.search(r"warn|error|fail", line, re.I) and not line.startswith("Checking ")]  # not a file name
    if code != 0 or complaints:
        return "failed", f"promtool check rules: {complaints[0] if complaints else _first_line(out)}", out
    found = [int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", out)]
    return "ok", f"promtool check rules ({sum(found) if found else '?'} rules, no warnings)", ""


def check_rule_tests(promtool: str, path: Path) -> tuple[Status, str, str]:
    # promtool 2.42 resolves rule_files against the working directory, later versions against the
    # test file: running from the file's own directory satisfies both.
    code, out = _run([promtool, "test", "rules", path.name], cwd=path.parent)
    if code != 0 or "SUCCESS" not in out:
        failed = re.search(r"alertname: (\w+), time: (\w+)", out)
        where = f"{failed.group(1)} at {failed.group(2)}" if failed else _first_line(out.replace("Unit Testing:", ""))
        return "failed", f"promtool test rules: {where}", out
    groups = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("  - name: "))
    return "ok", f"promtool test rules ({groups} test groups)", ""


# --- Alertmanager -------------------------------------------------------------------------------------------

OTHER_NAMESPACE = "another-namespace"  # stands for every other team's namespace in the routing tests
NOTHING = "null"  # the receiver without integrations that takes what is not this service's (both bases)


def routing_expectations(env: Environment) -> list[tuple[tuple[str, ...], str]]:
    """(label=value arguments, receiver the environment names for them, as the Alertmanager names it): per
    severity, per alert, the default; and alerts that are not this service's, which none of its receivers get."""
    a = env.routing
    scope = (f"namespace={env.namespace}", f"service={env.service_name}")
    routes = dict(a.severity_routes)
    cases: list[tuple[tuple[str, ...], str]] = [
        (scope + (f"severity={severity}",), a.qualified(receiver)) for severity, receiver in a.severity_routes]
    for rule in env.monitoring.alert_rules:
        labels = (f"alertname={rule.name}",) + tuple(f"{k}={v}" for k, v in rule.labels)
        cases.append((labels, a.qualified(routes[rule.severity])))
    cases.append((scope + ("alertname=SomethingElse",), a.qualified(a.settings.default_receiver)))
    cases.append(((f"namespace={OTHER_NAMESPACE}", f"service={env.service_name}", "severity=critical",
                   "alertname=KubeAPIDown"), NOTHING))
    cases.append(((f"namespace={env.namespace}", "service=another-service", "severity=critical"), NOTHING))
    return cases


def check_alertmanager_config(amtool: str, *paths: Path) -> tuple[Status, str, str]:
    """`amtool check-config`; several files in one run check each on its own."""
    cwd, names = _common_dir(paths)
    code, out = _run([amtool, "check-config", *names], cwd=cwd)
    if code != 0 or out.count("SUCCESS") < len(names):
        return "failed", f"amtool check-config: {_complaint(out)}", out
    return "ok", "amtool check-config", ""


def check_alertmanager(amtool: str, path: Path, env: Environment) -> tuple[Status, str, str]:
    """check-config, then each of routing_expectations(env) with `amtool config routes test`."""
    status, summary, details = check_alertmanager_config(amtool, path)
    if status != "ok":
        return status, summary, details
    for labels, receiver in routing_expectations(env):
        code, out = _run([amtool, "config", "routes", "test", f"--config.file={path.name}",
                          f"--verify.receivers={receiver}", *labels], cwd=path.parent)
        if code != 0:
            got = _first_line(out)
            return ("failed", f"amtool config routes test: {' '.join(labels)} routes to {got!r}, the environment names {receiver!r}",
                    out)
    severities = ", ".join(f"{sev}->{receiver}" for sev, receiver in env.routing.severity_routes)
    return "ok", f"amtool check-config; routes {severities}; other services' alerts reach none of its receivers", ""


def placeholder_secrets(resource: Mapping[str, Any]) -> dict[tuple[str, str, str], str]:
    """A value for every Secret key the AlertmanagerConfig references, as the operator would read them."""
    namespace = resource["metadata"]["namespace"]
    values = {}
    for receiver in resource["spec"].get("receivers", []):
        for config in receiver.get("pagerdutyConfigs", []):
            ref = config["routingKey"]
            values[(namespace, ref["name"], ref["key"])] = "placeholder-routing-key"
        for config in receiver.get("slackConfigs", []):
            ref = config["apiURL"]
            values[(namespace, ref["name"], ref["key"])] = "https://hooks.slack.invalid/placeholder"
    return values


def check_alertmanager_resource(amtool: str, path: Path, env: Environment, crds: Path | None) -> tuple[Status, str, str]:
    """The CRD schema; then the configuration the Prometheus Operator generates from the resource inside
    kube-prometheus-stack's base (infragen.operator_merge), through amtool as a plain file is."""
    import tempfile  # here, like socket: build and check never import them (~20 ms of start-up)

    import yaml

    from .operator_merge import ConversionError, generate

    status, summary, details = check_custom_resource(path, crds)
    if status == "failed":
        return status, summary, details
    resource = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        generated = generate([resource], placeholder_secrets(resource))
    except (ConversionError, KeyError, TypeError) as exc:
        return "failed", f"the operator's conversion: {exc}", ""
    with tempfile.TemporaryDirectory(prefix="infragen-amc-") as tmp:
        config = Path(tmp) / "alertmanager.yaml"
        config.write_text(yaml.safe_dump(generated, sort_keys=False), encoding="utf-8")
        am_status, am_summary, am_details = check_alertmanager(amtool, config, env)
    if am_status != "ok":
        return am_status, f"as the operator generates it: {am_summary}", am_details
    return status, f"{summary}; as the operator generates it: {am_summary}", details


def _complaint(out: str) -> str:
    for line in out.splitlines():
        if re.search(r"fail|error|invalid", line, re.I):
            return line.strip()
    return _first_line(out)


# --- nginx --------------------------------------------------------------------------------------------------

@lru_cache(maxsize=8)  # one `nginx -v` per program, however many files are checked
def nginx_version(nginx: str) -> tuple[int, int, int] | None:
    _code, out = _run([nginx, "-v"])
    found = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    return (int(found.group(1)), int(found.group(2)), int(found.group(3))) if found else None


def nginx_wrapper(prefix: Path, http_includes: Sequence[Path], locations: Mapping[str, Sequence[Path]], listen: str,
                  main: str = "", server_includes: Sequence[Path] = ()) -> str:
    """A minimal nginx.conf around generated files: http-level includes and one server with its own includes and
    `locations` (location path -> files included in it; one location per environment fits several in one nginx).
    Everything nginx writes (pid, temp files) goes under `prefix`, so no root and no /var are needed."""
    def inc(paths: Sequence[Path], indent: str) -> str:
        return "".join(f"{indent}include {p.resolve()};\n" for p in paths)

    temp = "".join(f"    {kind}_temp_path {prefix / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    location_blocks = "".join(f"        location {where} {{\n{inc(paths, '            ')}        }}\n"
                              for where, paths in locations.items())
    return (
        f"# Written by infragen to check generated files; not for production.\n{main}"
        f"pid {prefix / 'nginx.pid'};\n"
        "worker_processes 1;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "    access_log off;\n"
        f"{temp}"
        f"{inc(http_includes, '    ')}"
        "    server {\n"
        f"        listen {listen};\n"
        f"{inc(server_includes, '        ')}"
        f"{location_blocks}"
        "    }\n"
        "}\n"
    )


def nginx_test(nginx: str, http_includes: Sequence[Path], locations: Mapping[str, Sequence[Path]],
               server_includes: Sequence[Path] = ()) -> tuple[int, str]:
    """`nginx -t` on nginx_wrapper(); warnings count as failures (a second balancing method only warns)."""
    import tempfile  # here, like socket: build and check never import them (~20 ms of start-up)

    with tempfile.TemporaryDirectory(prefix="infragen-nginx-") as tmp:
        prefix = Path(tmp)
        wrapper = prefix / "nginx.conf"
        listen = f"127.0.0.1:{free_port()}"
        wrapper.write_text(nginx_wrapper(prefix, http_includes, locations, listen, server_includes=server_includes),
                           encoding="utf-8")
        code, out = _run([nginx, "-t", "-q", "-p", str(prefix), "-e", "stderr", "-c", str(wrapper)])
        if code == 0 and re.search(r"\[(warn|alert|emerg|crit|error)\]", out):
            code = 1
        return code, out.replace(str(prefix) + "/", "")


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def check_nginx(nginx: str, env: Environment, http_includes: Sequence[Path],
                locations: Mapping[str, Sequence[Path]], where: str = "",
                server_includes: Sequence[Path] = ()) -> tuple[Status, str, str]:
    """`nginx -t` on the files in a minimal nginx.conf, when the installed nginx is at least the version the
    environment targets (an older one would reject what the newer one accepts: then skipped, never failed)."""
    installed = nginx_version(nginx)
    lb = env.spec.load_balancing
    if installed is not None and installed < lb.version:
        needs = "a resolve upstream (discovery)" if lb.discovery is not None else f"{env.edge.affinity_mode} affinity"
        return ("skipped", f"installed nginx {'.'.join(map(str, installed))} is older than the nginx "
                f"{lb.nginx_version} this environment targets ({needs}); checked by snapshot only", "")
    label = f"nginx -t, nginx {'.'.join(map(str, installed))}" if installed else "nginx -t"
    code, out = nginx_test(nginx, http_includes, locations, server_includes)
    return ("ok", label + where, "") if code == 0 else ("failed", f"{label}: {_nginx_complaint(out)}", out)


def _nginx_complaint(out: str) -> str:
    for line in out.splitlines():
        if re.search(r"\[(warn|alert|emerg|crit|error)\]", line):
            return re.sub(r"^.*?\[(\w+)\] \d+#\d+: ", r"[\1] ", line.strip())
    return _first_line(out)


# --- the application's env file -----------------------------------------------------------------------------

def check_env_file(path: Path) -> tuple[Status, str, str]:
    """Source it with a POSIX shell (as an entrypoint would) and compare what it sets with what it says."""
    sh = find_tool("sh")
    if sh is None:
        return "skipped", "sh not installed", ""
    written = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.match(r"^[A-Z_][A-Z0-9_]*$", key):
            return "failed", f"line {number} is not KEY=value: {line!r}", ""
        written[key] = value
    code, out = _run(["env", "-i", sh, "-c", 'set -a && . "$1" && env', "sh", str(path.resolve())])
    if code != 0:
        return "failed", f"sh: {_first_line(out)}", out
    read = dict(line.partition("=")[::2] for line in out.splitlines() if "=" in line)
    wrong = [key for key, value in written.items() if read.get(key) != value]
    if wrong:
        return "failed", f"sh reads {wrong[0]} as {read.get(wrong[0])!r}, the file says {written[wrong[0]]!r}", ""
    return "ok", f"sourced by sh, {len(written)} variables as written", ""



# --- consumers ----------------------------------------------------------------------------------------------

class Schemas(NamedTuple):
    """Schemas of formats kubernetes-validate does not know, given by the user (infragen does not ship them)."""

    crds: Path | None = None  # {group}/{kind}_{version}.json, the layout kubeconform and the CRDs catalog use
    dashboard: Path | None = None  # Grafana's dashboard JSON Schema


CRD_CATALOG = "https://github.com/datreeio/CRDs-catalog"
CRD_HINT = "no CRD schema directory given (--crd-schemas DIR or INFRAGEN_CRD_SCHEMAS, {group}/{kind}_{version}.json)"
DASHBOARD_HINT = "no Grafana dashboard schema given (--dashboard-schema FILE or INFRAGEN_DASHBOARD_SCHEMA)"


class CheckInput(NamedTuple):
    path: Path  # the built file
    directory: Path  # output/<env>: its sibling artifacts
    env: Environment
    tool: str | None  # the consumer's program, found on PATH (None for in-process consumers)
    custom_resources: frozenset[tuple[str, str]]  # (apiVersion, kind) the registry declares custom resources
    schemas: Schemas = Schemas()

    @property
    def program(self) -> str:
        """The consumer's program: `verify` runs a consumer that needs one only once it is found."""
        if self.tool is None:
            raise ToolError.single(f"{self.path}: the consumer's program was not found")
        return self.tool


@dataclass(frozen=True)
class Consumer:
    """A real consumer of an artifact: `tool` is the program it needs (None: nothing to install), `name` how the
    docs and `verify` call the check."""

    name: str
    tool: str | None
    run: Callable[[CheckInput], tuple[Status, str, str]]


KUBERNETES = Consumer("kubernetes-validate --strict (Kubernetes 1.27 to the newest bundled)", None,
                      lambda i: check_kubernetes(i.path))
NGINX_HTTP = Consumer("nginx -t, included in http {}", "nginx",
                      lambda i: check_nginx(i.program, i.env, [i.path], {}))
NGINX_LOCATION = Consumer("nginx -t, included in a location {} beside nginx/upstream.conf and nginx/server.conf",
                          "nginx", lambda i: check_nginx(
                              i.program, i.env, [i.directory / "nginx/upstream.conf"], {"/": [i.path]},
                              ", inside a location with upstream.conf and server.conf",
                              [i.directory / "nginx/server.conf"]))
NGINX_SERVER = Consumer("nginx -t, included in a server {} beside nginx/upstream.conf and nginx/location.conf", "nginx",
                        lambda i: check_nginx(i.program, i.env, [i.directory / "nginx/upstream.conf"],
                                              {"/": [i.directory / "nginx/location.conf"]},
                                              ", in a server with upstream.conf and location.conf", [i.path]))
PROMTOOL_RULES = Consumer("promtool check rules --lint=all --lint-fatal", "promtool", lambda i: check_rules(i.program, i.path))
PROMTOOL_TESTS = Consumer("promtool test rules", "promtool", lambda i: check_rule_tests(i.program, i.path))
AMTOOL = Consumer("amtool check-config and amtool config routes test for every severity and alert, and for other "
                  "services' alerts", "amtool", lambda i: check_alertmanager(i.program, i.path, i.env))
def _schema_errors(document: object, schema_path: Path) -> list[str]:
    import json

    import jsonschema

    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'.'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
            for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))]


def check_custom_resource(path: Path, crds: Path | None) -> tuple[Status, str, str]:
    """Each custom resource of the file against its CRD's schema, found as {group}/{kind}_{version}.json below `crds`."""
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    except yaml.YAMLError as exc:
        return "failed", f"not valid YAML: {_first_line(str(exc))}", str(exc)
    return check_custom_resources(documents, crds)


def check_custom_resources(documents: Sequence[object], crds: Path | None) -> tuple[Status, str, str]:
    kinds: list[str] = []
    for document in documents:
        try:
            group, _, version = document["apiVersion"].rpartition("/")  # type: ignore[index]
            kind = document["kind"]  # type: ignore[index]
        except (KeyError, TypeError, AttributeError) as exc:
            return "failed", f"not a Kubernetes object: {exc}", ""
        if crds is None:
            return "skipped", CRD_HINT, ""
        schema = crds / group / f"{kind.lower()}_{version}.json"
        if not schema.is_file():
            return "skipped", (f"no CRD schema for {kind} {group}/{version} at {schema}: add the CRD's JSON schema "
                               f"there (the CRDs catalog, {CRD_CATALOG}, has most); a core Kubernetes kind is "
                               "declared Kubernetes(apiVersion, kind) in infragen/artifacts.py, never checked here"), ""
        problems = _schema_errors(document, schema)
        if problems:
            return "failed", f"{kind} schema ({group}/{version}): {problems[0]}", "\n".join(problems)
        kinds.append(f"{kind} ({group}/{version})")
    return "ok", "CRD schema: " + ", ".join(dict.fromkeys(kinds)), ""


def check_prometheus_rule(promtool: str, path: Path, crds: Path | None) -> tuple[Status, str, str]:
    """The CRD schema, then the spec written out as a rules file through `promtool check rules` (promtool rejects
    the manifest itself)."""
    import yaml

    status, summary, details = check_custom_resource(path, crds)
    if status == "failed":
        return status, summary, details
    import tempfile  # here, like socket: build and check never import them (~20 ms of start-up)

    with tempfile.TemporaryDirectory(prefix="infragen-rules-") as tmp:
        rules = Path(tmp) / "rules.yaml"
        spec = yaml.safe_load(path.read_text(encoding="utf-8")).get("spec", {})
        rules.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
        rule_status, rule_summary, rule_details = check_rules(promtool, rules)
    if rule_status != "ok":
        return rule_status, f"spec: {rule_summary}", rule_details
    return status, f"{summary}; spec: {rule_summary}", ""


def check_scrape_config(path: Path) -> tuple[Status, str, str]:
    """`promtool check config` where the installed promtool has Kubernetes discovery; Debian's is built without it
    (it rejects `kubernetes_sd_configs`), so there the job is checked structurally: the keys Prometheus reads, the
    keep filters, and the `job` and `namespace` labels the alerts select by."""
    import yaml

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        [job] = config["scrape_configs"]
        relabel = job["relabel_configs"]
        sd = job["kubernetes_sd_configs"]
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        return "failed", f"not a scrape job: {_first_line(str(exc))}", str(exc)
    promtool = find_tool("promtool")
    if promtool is not None:
        code, out = _run([promtool, "check", "config", path.name], cwd=path.parent)
        if code == 0:
            return "ok", "promtool check config", ""
        if "kubernetes_sd_configs not found" not in out:
            return "failed", f"promtool check config: {_complaint(out)}", out
    problems = []
    if [c.get("role") for c in sd] != ["endpoints"]:
        problems.append("kubernetes_sd_configs must have one endpoints role")
    if not any(r.get("action") == "keep" and r.get("source_labels") == ["__meta_kubernetes_endpoint_port_name"] for r in relabel):
        problems.append("no keep filter on the metrics port")
    if not any(r.get("target_label") == "namespace" for r in relabel):
        problems.append("nothing sets the namespace label")
    pinned = [r for r in relabel if r.get("target_label") == "job"]
    if not pinned or "source_labels" in pinned[-1] or not pinned[-1].get("replacement"):
        problems.append("job is not pinned by a replacement")
    if problems:
        return "failed", f"scrape job: {problems[0]}", "\n".join(problems)
    return "ok", ("checked structurally (the installed promtool has no Kubernetes discovery: "
                  f"{'Debian build' if promtool else 'not installed'})"), ""


def check_dashboard(promtool: str, path: Path, schema: Path | None) -> tuple[Status, str, str]:
    """Grafana's dashboard schema when given, and every panel query through `promtool check rules` as a recording
    rule (Grafana sends them to Prometheus as they are)."""
    import json

    import yaml

    try:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    except (ValueError, KeyError, TypeError) as exc:
        return "failed", f"not a dashboard: {_first_line(str(exc))}", str(exc)
    if schema is not None:
        problems = _schema_errors(dashboard, schema)
        if problems:
            return "failed", f"Grafana dashboard schema: {problems[0]}", "\n".join(problems)
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"panel:query_{i}:value", "expr": q}
                                                        for i, q in enumerate(queries)]}]}
    import tempfile  # here, like socket: build and check never import them (~20 ms of start-up)

    with tempfile.TemporaryDirectory(prefix="infragen-dashboard-") as tmp:
        file = Path(tmp) / "queries.yaml"
        file.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
        status, summary, details = check_rules(promtool, file)
    if status != "ok":
        return status, f"panel queries: {summary}", details
    checked = "Grafana dashboard schema" if schema is not None else f"JSON ({DASHBOARD_HINT})"
    return ("ok" if schema is not None else "skipped"), f"{checked}; {len(queries)} panel queries: promtool check rules", ""


# --- Kustomize ----------------------------------------------------------------------------------------------

KUSTOMIZE_MIN = (1, 21)  # kubectl's first built-in Kustomize with Components (Debian's kubernetes-client 1.20 lacks them)


@lru_cache(maxsize=4)
def kubectl_version(kubectl: str) -> tuple[int, int] | None:
    import json

    code, out = _run([kubectl, "version", "--client", "-o", "json"])
    try:
        info = json.loads(out[out.index("{"):])["clientVersion"]
        return int(info["major"]), int(re.sub(r"\D.*", "", info["minor"]))
    except (ValueError, KeyError):
        return None


def render_component(kubectl: str, directory: Path, env: Environment) -> tuple[int, str]:
    """`kubectl kustomize` of an application kustomization (a stub Deployment and Service named as the environment
    says) that includes the generated Component: Kustomize silently skips a patch with no target, so the Component
    alone proves nothing."""
    import shutil
    import tempfile  # here, like socket: build and check never import them (~20 ms of start-up)

    import yaml

    with tempfile.TemporaryDirectory(prefix="infragen-kustomize-") as tmp:
        root = Path(tmp)
        shutil.copytree(directory / "kubernetes", root / "component")
        app = root / "app"
        app.mkdir()
        port = env.spec.service.port
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"name": env.service_name, "namespace": env.namespace},
                      "spec": {"selector": {"matchLabels": env.selector}, "template": {
                          "metadata": {"labels": env.selector},
                          "spec": {"containers": [{"name": env.container, "image": "registry.invalid/app:stub",
                                                   "ports": [{"name": env.spec.monitoring.port_name,
                                                              "containerPort": port}]}]}}}}
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": env.rollout.active_service, "namespace": env.namespace},
                   "spec": {"selector": env.selector, "ports": [{"name": env.spec.monitoring.port_name, "port": port}]}}
        (app / "app.yaml").write_text(yaml.safe_dump_all([deployment, service]), encoding="utf-8")
        (app / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["app.yaml"],
            "components": ["../component"]}), encoding="utf-8")
        return _run([kubectl, "kustomize", str(app)])


def load_kubectl_output(text: str) -> list[Any]:
    """The documents kubectl printed, read by PyYAML's safe loader without YAML 1.1's `=` "value" type: kubectl
    writes an AlertmanagerConfig matcher's `matchType: =` unquoted, which YAML 1.2 (Kubernetes) reads as "="."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.yaml_implicit_resolvers = {first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:value"]
                                      for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
    return [d for d in yaml.load_all(text, Loader=Loader) if d]


def check_kustomized(kubectl: str, directory: Path, env: Environment, crds: Path | None,
                     deployment_only: bool, custom_resources: frozenset[tuple[str, str]] = frozenset(),
                     ) -> tuple[Status, str, str]:
    """The Component rendered into an application: the Deployment carries the probes (and a rolling update's
    strategy); with `deployment_only` False every object passes its schema too."""
    import yaml

    version = kubectl_version(kubectl)
    if version is None or version < KUSTOMIZE_MIN:
        return "skipped", (f"kubectl {'.'.join(map(str, version)) if version else '?'} has no Kustomize Components: "
                           "install kubectl >= 1.21 (https://kubernetes.io/docs/tasks/tools/)"), ""
    code, out = render_component(kubectl, directory, env)
    if code != 0:
        return "failed", f"kubectl kustomize: {_complaint(out)}", out
    documents = load_kubectl_output(out)
    [deployment] = [d for d in documents if d.get("kind") == "Deployment"] or [None]
    container: dict[str, Any] = next((c for c in (deployment or {}).get("spec", {}).get("template", {}).get("spec", {})
                      .get("containers", []) if c.get("name") == env.container), {})
    missing = [p for p in ("startupProbe", "livenessProbe", "readinessProbe") if p not in container]
    if not env.rollout.argo and "strategy" not in (deployment or {}).get("spec", {}):
        missing.append("strategy")
    if missing:
        return ("failed", f"kubectl kustomize: the rendered Deployment lacks {', '.join(missing)} (did the patch "
                f"reach Deployment {env.service_name}?)", out)
    label = f"kubectl kustomize {'.'.join(map(str, version))} into a stub application"
    if deployment_only:
        status, summary, details = check_kubernetes_text(yaml.safe_dump(deployment))
        return status, f"{label}: Deployment with probes; {summary}", details
    # What the registry declares a custom resource is checked against its CRD; the rest (the stub application's
    # Deployment and Service too) is core Kubernetes.
    custom = [d for d in documents if (d.get("apiVersion"), d.get("kind")) in custom_resources]
    core = [d for d in documents if d not in custom]
    status, summary, details = check_kubernetes_text(yaml.safe_dump_all(core))
    if status != "ok":
        return status, f"{label}: {summary}", details
    if custom:
        status, custom_summary, details = check_custom_resources(custom, crds)
        if status != "ok":
            return status, f"{label}: {len(core)} core objects ok; {custom_summary}", details
    return "ok", f"{label}: {len(documents)} objects, each passes its schema", ""


ALERTMANAGER_CONFIG = Consumer("the CRD schema (--crd-schemas); the Prometheus Operator's merge of it into "
                               "kube-prometheus-stack's configuration, reproduced, through amtool check-config and "
                               "amtool config routes test", "amtool",
                               lambda i: check_alertmanager_resource(i.program, i.path, i.env, i.schemas.crds))
SHELL = Consumer("sh, sourcing the file with set -a: every variable reads back as written", None, lambda i: check_env_file(i.path))
CUSTOM_RESOURCE = Consumer("jsonschema against the resource's CRD schema (--crd-schemas)", None,
                           lambda i: check_custom_resource(i.path, i.schemas.crds))
PROMETHEUS_RULE = Consumer("promtool check rules on the spec, and the CRD schema (--crd-schemas)", "promtool",
                           lambda i: check_prometheus_rule(i.program, i.path, i.schemas.crds))
SCRAPE_CONFIG = Consumer("promtool check config where promtool has Kubernetes discovery, else checked structurally", None,
                         lambda i: check_scrape_config(i.path))
DEPLOYMENT_PATCH = Consumer("kubectl kustomize into a stub application, then kubernetes-validate of the patched Deployment",
                            "kubectl", lambda i: check_kustomized(i.program, i.directory, i.env, i.schemas.crds, True,
                                                                      i.custom_resources))
KUSTOMIZATION = Consumer("kubectl kustomize into a stub application: every object passes kubernetes-validate or its "
                         "CRD schema (--crd-schemas)", "kubectl",
                         lambda i: check_kustomized(i.program, i.directory, i.env, i.schemas.crds, False,
                                                    i.custom_resources))
DASHBOARD = Consumer("promtool check rules on every panel query, and Grafana's dashboard schema (--dashboard-schema)",
                     "promtool", lambda i: check_dashboard(i.program, i.path, i.schemas.dashboard))
