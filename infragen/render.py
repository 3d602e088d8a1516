"""Environments -> {relative path: file text}, one file per artifact of the registry (infragen.artifacts).

Pure: reads templates from the package, touches nothing else (but a cache of compiled templates in the user's
cache directory, as Python keeps __pycache__). Each template gets its artifact's context and nothing else."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Iterable
from functools import cache, lru_cache
from json.encoder import encode_basestring_ascii as _json_string
from pathlib import Path
from typing import Any

import jinja2
import yaml

from .artifacts import ARTIFACTS, for_environment
from .documents import Block, Flow, Note
from .errors import RenderError
from .fsutil import cache_home
from .models.environment import Environment
from .models.types import format_number

TEMPLATES = Path(__file__).parent / "templates"


_PLAIN = re.compile(r"^[A-Za-z0-9_/][A-Za-z0-9_./-]*$")
# Read as booleans or null by some YAML 1.1 parsers (Go's yaml.v2, which Prometheus tools use) but not PyYAML.
_YAML11_EXTRA = frozenset({"y", "Y", "n", "N", "~"})
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")
_RESOLVER = yaml.resolver.Resolver()
_NUMBER_START = frozenset("0123456789.+-iInN")  # what float()/int() accept first: digits, sign, inf, nan
_NGINX_WORD = re.compile(r"^[A-Za-z0-9_.:\[\]$/=%@-]+$")
# Inside nginx's single quotes: printable ASCII without the quote and the backslash that would end or escape it.
_NGINX_QUOTED = re.compile(r"^[\x20-\x26\x28-\x5b\x5d-\x7e]*$")
_ENV_VALUE = re.compile(r"^[A-Za-z0-9_.,:/@+-]*$")


def yaml_scalar(value: Any) -> str:
    """One YAML scalar on one line that reads back as exactly `value`, under YAML 1.1 and 1.2 alike."""
    if type(value) is str:  # most calls (160 per environment): straight to the cache
        return _yaml_string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return format_number(value)
    if not isinstance(value, str):
        raise RenderError(f"cannot write {type(value).__name__} as a YAML scalar")
    return _yaml_string(value)


@lru_cache(maxsize=4096)  # names, labels and receivers repeat in every file and environment
def _yaml_string(value: str) -> str:
    if (_PLAIN.fullmatch(value) and value not in _YAML11_EXTRA and not _numeric(value)
            and _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) == "tag:yaml.org,2002:str"):
        return value
    if _PRINTABLE_ASCII.fullmatch(value):
        return "'" + value.replace("'", "''") + "'"
    return _double_quoted(value)


_SHORT_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def _double_quoted(value: str) -> str:
    """A YAML double-quoted scalar in printable ASCII. Not json.dumps: its surrogate pairs (\\ud83d\\ude00) for
    characters beyond U+FFFF are rejected by Go's YAML parser (Prometheus, Alertmanager); YAML has \\U instead."""
    out = []
    for ch in value:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif 0x20 <= code < 0x7F:
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _numeric(text: str) -> bool:
    """Would any YAML 1.1 or 1.2 parser read this as a number? (1e3, 0x1f, 0o17, 1_000, nan ...)"""
    bare = text.replace("_", "").strip()
    if not bare or (bare.isascii() and bare[0] not in _NUMBER_START):
        return False  # fast path: float() and int() both refuse it, without raising two exceptions
    try:
        float(text.replace("_", ""))
        return True
    except ValueError:
        pass
    try:
        int(text.replace("_", ""), 0)
        return True
    except ValueError:
        return False


def nginx_word(value: Any) -> str:
    text = format_number(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)
    if not _NGINX_WORD.fullmatch(text):
        raise RenderError(f"{text!r} is not safe to write into an nginx directive")
    return text


def nginx_quoted(value: Any) -> str:
    """A single-quoted nginx string (a regex key of a map, the text of `return`). The caller passes only text
    without variables: `$` is kept as written."""
    text = str(value)
    if not _NGINX_QUOTED.fullmatch(text):
        raise RenderError(f"{text!r} is not safe to write as a quoted nginx string")
    return f"'{text}'"


def env_value(value: Any) -> str:
    text = str(value)
    if not _ENV_VALUE.fullmatch(text):
        raise RenderError(f"{text!r} is not safe to write as an env-file value")
    return text


def _inline(value: Any) -> str | None:
    """A value that fits on its key's line: a scalar, an empty mapping or list, or a Flow list of scalars."""
    kind = type(value)
    if kind is str:  # most values: straight to the cache
        return _yaml_string(value)
    if kind is dict:
        return "{}" if not value else None
    if kind is Flow:
        return "[" + ", ".join(yaml_scalar(item) for item in value) + "]"
    if isinstance(value, (list, tuple)):
        return "[]" if not value else None
    if isinstance(value, dict):
        return "{}" if not value else None
    return yaml_scalar(value)


def _note(text: str, pad: str) -> list[str]:
    return [(f"{pad}# {line}").rstrip() for line in text.split("\n")]


def _tree_lines(value: Any, indent: int, out: list[str]) -> None:
    """Append the lines of `value` at `indent` to `out`: one list for the whole document, so a line is written
    once however deep it sits (a list item's first line gets its "- " in place)."""
    pad = " " * indent
    if isinstance(value, dict):
        for key, child in value.items():
            if type(child) is Note:
                out.extend(_note(child.text, pad))
                child = child.value
            if type(child) is Block:
                out.append(f"{pad}{yaml_scalar(key)}: {yaml_block(child, indent + 2)}")
                continue
            inline = _inline(child)
            if inline is not None:
                out.append(f"{pad}{yaml_scalar(key)}: {inline}")
            else:
                out.append(f"{pad}{yaml_scalar(key)}:")
                _tree_lines(child, indent + 2, out)
    elif isinstance(value, (list, tuple)):
        for item in value:
            if type(item) is Note:
                out.extend(_note(item.text, pad))
                item = item.value
            inline = _inline(item)
            if inline is not None:
                out.append(f"{pad}- {inline}")
            else:
                first = len(out)
                _tree_lines(item, indent + 2, out)
                out[first] = f"{pad}- {out[first][indent + 2:]}"
    else:
        raise RenderError(f"yaml_tree takes a mapping or a list, not {type(value).__name__}")


def yaml_tree(value: Any, indent: int = 0) -> str:
    """A mapping or list as block-style YAML, in the order given, every key and scalar through yaml_scalar: every
    YAML artifact's document (infragen.documents) written out whole, never by pasting raw strings. A `Note` value
    gets its comment above it, a `Flow` list is written `[a, b]`, a `Block` string as a literal block."""
    out: list[str] = []
    _tree_lines(value, indent, out)
    return "\n".join(out)


def json_document(value: Any) -> str:
    """Canonical JSON: keys sorted, two-space indent, ASCII only (every other character escaped): byte for byte
    `json.dumps(value, indent=2, sort_keys=True, ensure_ascii=True, allow_nan=False)`, at twice its speed (with an
    indent, json.dumps falls back to its pure-Python encoder; a dashboard is the largest file a build writes)."""
    global _last_json
    if _last_json is not None and _last_json[0] is value:
        return _last_json[1]
    out: list[str] = []
    _json(value, "\n", out)
    text = "".join(out)
    _last_json = (value, text)
    return text


# The last value json_document wrote, and its text: the dashboard (one object per environment, built once by
# the model and never changed after) is written twice, as grafana/dashboard.json and inside its ConfigMap, and
# serialised once. Held by identity, so the object cannot be freed and its id reused while it is remembered.
_last_json: tuple[Any, str] | None = None


def _json(value: Any, newline: str, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_json_string(value))
    elif isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = newline + "  "
        separator = "{" + inner
        for key in sorted(value):
            out.append(separator)
            out.append(_json_string(key))
            out.append(": ")
            _json(value[key], inner, out)
            separator = "," + inner
        out.append(newline + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            out.append(separator)
            _json(item, inner, out)
            separator = "," + inner
        out.append(newline + "]")
    elif value is None or isinstance(value, bool):
        out.append("null" if value is None else "true" if value else "false")
    elif isinstance(value, int):
        out.append(int.__repr__(value))
    elif isinstance(value, float) and math.isfinite(value):
        out.append(float.__repr__(value))
    else:
        raise RenderError(f"cannot write {value!r} as JSON")


def yaml_block(text: str, indent: int) -> str:
    """`text` as a YAML literal block scalar (`|-`) indented by `indent` spaces: reads back exactly as `text`
    when it is printable ASCII without trailing newline, leading blanks or blank-only lines (JSON is)."""
    if not text or text[0] in " \n" or not _PRINTABLE_ASCII_LINES.fullmatch(text) or _BLANK_LINE.search(text):
        raise RenderError("text cannot be written as a YAML literal block exactly")
    pad = " " * indent
    return "|-\n" + pad + text.replace("\n", "\n" + pad)  # whole-text operations: a dashboard is ~800 lines


_PRINTABLE_ASCII_LINES = re.compile(r"[\x20-\x7e\n]*")
_BLANK_LINE = re.compile(r"\n *(?:\n|\Z)")  # a later line empty or spaces only; starts at a newline: fast


def comment(text: str) -> str:
    """Every line of `text` as a `#` comment (all our formats use `#`)."""
    return "\n".join(("# " + line).rstrip() for line in text.split("\n"))


class _CompiledTemplates(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between runs: compiling all of them costs a run ~25 ms, loading them ~1 ms.
    Entries are keyed by template source and Python version. A cache that cannot be read or written only
    means compiling again; like __pycache__, nothing is written when Python itself writes no bytecode
    (PYTHONDONTWRITEBYTECODE). The result cache (infragen.cache) does not follow that variable."""

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except Exception:  # noqa: BLE001 - a damaged entry: compile instead
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if sys.dont_write_bytecode:
            return
        try:
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _template_cache() -> jinja2.BytecodeCache | None:
    home = cache_home()
    return None if home is None else _CompiledTemplates(os.fspath(home / "templates"), "%s.jinja")


@lru_cache(maxsize=1)
def jinja_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,  # a typo in a template is an error, not an empty string
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates ship with the package: no stat() per render to see if they changed
        bytecode_cache=_template_cache(),
    )
    env.filters.update(yaml=yaml_scalar, nginx=nginx_word, nginx_quoted=nginx_quoted, env_value=env_value, comment=comment, json=json_document,
                       yaml_block=yaml_block, yaml_tree=yaml_tree)
    return env


def _normalise(text: str) -> str:
    text = text.replace("\r\n", "\n")
    return text.rstrip("\n") + "\n"


@cache
def template(name: str) -> jinja2.Template:
    """A template compiled once per process."""
    return jinja_env().get_template(name)


def render_environment(env: Environment) -> dict[str, str]:
    """The artifacts of one environment, keyed by path relative to the output directory."""
    return {f"{env.name}/{artifact.path}": _normalise(template(artifact.template).render(artifact.context(env)))
            for artifact in for_environment(env)}


def render_all(environments: Iterable[Environment]) -> dict[str, str]:
    files: dict[str, str] = {}
    for env in environments:
        files.update(render_environment(env))
    return dict(sorted(files.items()))


def compile_all() -> None:
    """Compile every artifact's template now (before forking workers, which then share them)."""
    for artifact in ARTIFACTS:
        template(artifact.template)
