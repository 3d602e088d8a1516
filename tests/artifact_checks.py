"""Parse generated artifacts back and run their real consumers on them (issue 5's proofs).

The consumers run through infragen.verify, as `infragen verify` runs them, with tools.require's rule for a
missing tool; what is here is test-only: an nginx config parser, docker's and compose's env-file rules, and
check_all, which puts many environments' artifacts through each tool in one run.
Every check raises AssertionError with the tool's own message, so a failing property shows why.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import yaml
from tools import require

from infragen.artifacts import ARTIFACTS, Kubernetes
from infragen.consumers import (
    KUBERNETES,
    check_alertmanager_config,
    check_kubernetes_text,
    check_rules,
    find_tool,
    nginx_test,
    nginx_version,
    placeholder_secrets,
)
from infragen.operator_merge import generate

K8S_VERSION = "1.30.0"


# --- nginx -------------------------------------------------------------------------------------------

_NGINX_TOKEN = re.compile(r"""\s+|#[^\n]*|"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|([;{}])|((?:[^\s;{}"'\\]|\\.)+)""", re.S)


def nginx_parse(text: str) -> list[tuple[str, tuple[str, ...], list]]:
    """nginx's config grammar (ngx_conf_read_token): directives are words ended by `;` or a `{...}` block,
    `#` starts a comment, quotes group. Returns [(name, args, children)]; raises on leftover text."""
    tokens: list[str] = []
    pos = 0
    while pos < len(text):
        m = _NGINX_TOKEN.match(text, pos)
        assert m, f"nginx: cannot tokenize at {text[pos:pos + 30]!r}"
        pos = m.end()
        if m.group(1) is not None or m.group(2) is not None:
            tokens.append("W" + (m.group(1) if m.group(1) is not None else m.group(2)))
        elif m.group(3):
            tokens.append(m.group(3))
        elif m.group(4):
            tokens.append("W" + m.group(4))

    def block(i: int, closed: bool) -> tuple[list, int]:
        out: list = []
        words: list[str] = []
        while i < len(tokens):
            tok = tokens[i]
            i += 1
            if tok == ";":
                assert words, "nginx: empty directive"
                out.append((words[0], tuple(words[1:]), []))
                words = []
            elif tok == "{":
                assert words, "nginx: block without a name"
                children, i = block(i, True)
                out.append((words[0], tuple(words[1:]), children))
                words = []
            elif tok == "}":
                assert closed and not words, "nginx: unbalanced }"
                return out, i
            else:
                words.append(tok[1:])
        assert not closed and not words, "nginx: unterminated directive or block"
        return out, i

    return block(0, False)[0]


# --- env file ---------------------------------------------------------------------------------------

def env_docker(text: str) -> dict[str, str]:
    """`docker run --env-file`: KEY=VAL per line, `#` lines and blank lines skipped, the value taken literally."""
    out = {}
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        assert "=" in line, f"env: not KEY=VALUE: {line!r}"
        key, value = line.split("=", 1)
        out[key] = value
    return out


def env_compose(text: str) -> dict[str, str]:
    """Compose's env_file rules (docs.docker.com/compose/env-file): quotes stripped, ` #` starts an inline
    comment in unquoted values, `$` interpolates in unquoted and double-quoted values, escapes in double quotes.
    Anything those rules would transform is reported as a difference, not emulated."""
    out = {}
    for line in text.split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, value = line.split("=", 1)
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()), f"env: bad key {key!r}"
        if value[:1] in ("'", '"'):
            assert value.endswith(value[0]) and len(value) > 1, f"env: unbalanced quotes {value!r}"
            value = value[1:-1]
        else:
            value = re.split(r"\s#", value, maxsplit=1)[0].strip()
        assert "$" not in value and "\\" not in value, f"env: compose would interpolate or unescape {value!r}"
        out[key.strip()] = value
    return out


# --- every consumer at once ---------------------------------------------------------------------------

def nginx_installed_version() -> tuple[int, int, int] | None:
    nginx = find_tool("nginx")
    return nginx_version(nginx) if nginx else None


def _assert_ok(result: tuple[str, str, str]) -> None:
    status, summary, details = result
    assert status == "ok", f"{summary}\n{details}"


def alertmanager_file(directory: Path) -> Path:
    """The Alertmanager configuration of a built environment: alertmanager/alertmanager.yaml in file mode; in
    operator mode what the Prometheus Operator generates from kubernetes/alertmanagerconfig.yaml (written beside)."""
    plain = directory / "alertmanager/alertmanager.yaml"
    if plain.exists():
        return plain
    resource = yaml.safe_load((directory / "kubernetes/alertmanagerconfig.yaml").read_text(encoding="utf-8"))
    generated = directory / "alertmanager/generated.yaml"
    generated.parent.mkdir(parents=True, exist_ok=True)
    generated.write_text(yaml.safe_dump(generate([resource], placeholder_secrets(resource))), encoding="utf-8")
    return generated


def check_all(files: dict[str, str], nginx: bool = True) -> None:
    """Every artifact of every environment in `files` ({"<env>/<path>": text}) through its real consumer.
    nginx=False skips `nginx -t` (for files written for a newer nginx than the one installed)."""
    envs = sorted({path.split("/", 1)[0] for path in files})
    with tempfile.TemporaryDirectory(prefix="infragen-check-") as tmp:
        root = Path(tmp)
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text, encoding="utf-8")
        if nginx:
            # Each environment's upstream.conf in http {}, its location.conf in a location of its own: all
            # environments in one nginx, so name collisions fail too.
            code, out = nginx_test(require("nginx"), [root / e / "nginx/upstream.conf" for e in envs],
                                   {f"/{e}/": [root / e / "nginx/location.conf"] for e in envs})
            assert code == 0, f"nginx -t failed (warnings count):\n{out}"
        _assert_ok(check_rules(require("promtool"), *(root / e / "prometheus/alerts.yaml" for e in envs)))
        amtool = require("amtool")
        _assert_ok(check_alertmanager_config(amtool, *(alertmanager_file(root / e) for e in envs)))
    # kubernetes-validate reloads its schemas on every call: validate each distinct manifest once.
    core = [a.path for a in ARTIFACTS if isinstance(a.resource, Kubernetes) and a.consumer is KUBERNETES]
    for text in sorted({files[f"{e}/{path}"] for e in envs for path in core if f"{e}/{path}" in files}):
        _assert_ok(check_kubernetes_text(text, [K8S_VERSION]))
    for env in envs:
        nginx_parse(files[f"{env}/nginx/upstream.conf"])
        nginx_parse(files[f"{env}/nginx/location.conf"])
        assert env_docker(files[f"{env}/app.env"]) == env_compose(files[f"{env}/app.env"])
