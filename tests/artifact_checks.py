"""Parse generated artifacts back and run their real consumers on them (issue 5's proofs).

Small local helpers: issue 3 builds `infragen/verify.py`; once it lands on main these should defer to it.
Every check raises AssertionError with the tool's own message, so a failing property shows why.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

REQUIRE_TOOLS = os.environ.get("INFRAGEN_REQUIRE_TOOLS") == "1"
K8S_VERSION = "1.30.0"


def tool(name: str) -> str:
    """Path of a validator binary; skip (or fail in CI) when it is missing."""
    path = shutil.which(name) or (f"/usr/sbin/{name}" if os.path.exists(f"/usr/sbin/{name}") else None)
    if path is None:
        message = f"{name} not installed (apt-get install prometheus prometheus-alertmanager nginx-light)"
        if REQUIRE_TOOLS:
            pytest.fail(message)
        pytest.skip(message)
    return path


# --- nginx -------------------------------------------------------------------------------------------

def nginx_test(confs: dict[str, tuple[str, str]]) -> None:
    """`nginx -t` on a wrapper that includes each environment's upstream.conf in http {} and its
    location.conf in its own location {}; all environments together, so name collisions fail too."""
    nginx = tool("nginx")
    with tempfile.TemporaryDirectory(prefix="infragen-nginx-") as tmp:
        root = Path(tmp)
        locations = []
        includes = []
        for i, (name, (upstream, location)) in enumerate(sorted(confs.items())):
            (root / f"{name}.upstream.conf").write_text(upstream, encoding="utf-8")
            (root / f"{name}.location.conf").write_text(location, encoding="utf-8")
            includes.append(f"    include {root}/{name}.upstream.conf;")
            locations.append(f"        location /{name}-{i}/ {{ include {root}/{name}.location.conf; }}")
        temp_paths = "\n".join(f"    {d}_temp_path {root}/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        wrapper = root / "nginx.conf"
        wrapper.write_text(
            f"pid {root}/nginx.pid;\nerror_log {root}/error.log;\nevents {{}}\nhttp {{\n    access_log off;\n"
            f"{temp_paths}\n" + "\n".join(includes) + "\n    server {\n        listen 127.0.0.1:18080;\n"
            + "\n".join(locations) + "\n    }\n}\n", encoding="utf-8")
        proc = subprocess.run([nginx, "-t", "-q", "-p", str(root), "-e", str(root / "error.log"), "-c", str(wrapper)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"nginx -t failed:\n{proc.stderr}"


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


def nginx_shape(tree: list) -> list:
    """Directive names, argument counts and nesting: what an injected value could change."""
    return [(name, len(args), nginx_shape(children)) for name, args, children in tree]


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
            value = re.split(r"\s#", value, 1)[0].strip()
        assert "$" not in value and "\\" not in value, f"env: compose would interpolate or unescape {value!r}"
        out[key.strip()] = value
    return out


# --- YAML consumers -----------------------------------------------------------------------------------

def yaml_load(text: str) -> Any:
    return yaml.safe_load(text)


def k8s_validate(text: str) -> None:
    import kubernetes_validate

    data = yaml.safe_load(text)
    # kubernetes-validate ignores `format: int32`; the API server does not. Every integer in an HPA or PDB is one.
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, int) and not isinstance(node, bool):
            assert -2**31 <= node < 2**31, f"kubernetes: {node} does not fit an int32 field"
    try:
        kubernetes_validate.validate(data, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        raise AssertionError(f"kubernetes-validate: {exc.message} at {list(exc.path)}") from None


def _run_on_files(argv: list[str], texts: list[str], what: str) -> None:
    """One tool run over several files (each rules/config file is checked on its own by the tool)."""
    with tempfile.TemporaryDirectory(prefix="infragen-check-") as tmp:
        paths = []
        for i, text in enumerate(texts):
            path = Path(tmp) / f"{i}.yaml"
            path.write_text(text, encoding="utf-8")
            paths.append(str(path))
        for start in range(0, len(paths), 200):  # stay far below ARG_MAX
            proc = subprocess.run(argv + paths[start:start + 200], capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, f"{what} failed:\n{proc.stdout}{proc.stderr}"


def promtool_check(*texts: str) -> None:
    _run_on_files([tool("promtool"), "check", "rules"], list(texts), "promtool check rules")


def amtool_check(*texts: str) -> None:
    _run_on_files([tool("amtool"), "check-config"], list(texts), "amtool check-config")


def nginx_installed_version() -> tuple[int, int, int] | None:
    path = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if path is None:
        return None
    out = subprocess.run([path, "-v"], capture_output=True, text=True).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def check_all(files: dict[str, str], nginx: bool = True) -> None:
    """Every artifact of every environment in `files` ({"<env>/<path>": text}) through its real consumer.
    nginx=False skips `nginx -t` (for files written for a newer nginx than the one installed)."""
    envs = sorted({path.split("/", 1)[0] for path in files})
    if nginx:
        nginx_test({e: (files[f"{e}/nginx/upstream.conf"], files[f"{e}/nginx/location.conf"]) for e in envs})
    promtool_check(*(files[f"{e}/prometheus/alerts.yaml"] for e in envs))
    amtool_check(*(files[f"{e}/alertmanager/alertmanager.yaml"] for e in envs))
    # kubernetes-validate reloads its schemas on every call: validate each distinct manifest once.
    for text in sorted({files[f"{e}/kubernetes/{n}"] for e in envs for n in ("hpa.yaml", "pdb.yaml")}):
        k8s_validate(text)
    for env in envs:
        nginx_parse(files[f"{env}/nginx/upstream.conf"])
        nginx_parse(files[f"{env}/nginx/location.conf"])
        assert env_docker(files[f"{env}/app.env"]) == env_compose(files[f"{env}/app.env"])
