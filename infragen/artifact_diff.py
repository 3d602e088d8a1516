"""What changed inside one generated file, named by path rather than by line (for `infragen review`).

A unified diff shows lines; a reviewer wants `spec.maxReplicas: 10 -> 12`. Each artifact declares its structure
in the registry (infragen.artifacts: `structure`), and this module compares two versions of a file that way:

- "yaml": documents compared as data. A change is named by its YAML path; items of a list are named by their
  `alert`, `record`, `name` or `series` when they have one (`groups[fraud-api-production].rules[HighErrorRate].expr`),
  else by position. Comments (the generated header among them) are not data: a file whose only change is a
  comment has no entries.
- "nginx": directives, named by their block and name (`upstream fraud-api-production > keepalive`); directives that
  repeat (`server`, `proxy_set_header`) by their first argument too.
- "env": `KEY=value` lines, by key.

Anything that does not parse that way is compared by lines. Values are shown in one line; a long value shows the
part around the first difference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

ITEM_KEYS = ("alert", "record", "name", "series")  # what names an item of a YAML list, in preference order
REPEATED_DIRECTIVES = frozenset({"server", "proxy_set_header", "add_header", "set", "include"})
LONG = 60  # characters of a value shown whole; longer ones are cut around the first difference


@dataclass(frozen=True)
class Entry:
    """One change inside a file: `path` as the file's structure names it; old or new is None when absent."""

    path: str
    old: str | None
    new: str | None

    @property
    def kind(self) -> str:
        return "added" if self.old is None else "removed" if self.new is None else "changed"


def entries(structure: str, old: bytes | None, new: bytes | None) -> list[Entry]:
    """The changes from `old` to `new` (None: the file is absent on that side)."""
    old_text = (old or b"").decode("utf-8", "replace")
    new_text = (new or b"").decode("utf-8", "replace")
    try:
        if structure == "yaml":
            found = list(_yaml_entries(old_text, new_text))
        elif structure == "nginx":
            found = _keyed_entries(_nginx_directives(old_text), _nginx_directives(new_text))
        elif structure == "env":
            found = _keyed_entries(_env_keys(old_text), _env_keys(new_text))
        else:
            found = _line_entries(old_text, new_text)
    except (yaml.YAMLError, ValueError):
        found = _line_entries(old_text, new_text)
    return [_shorten(e) for e in found]


# --- YAML ---------------------------------------------------------------------------------------------

def _yaml_entries(old_text: str, new_text: str) -> Iterator[Entry]:
    old_docs = [d for d in yaml.safe_load_all(old_text)] if old_text else []
    new_docs = [d for d in yaml.safe_load_all(new_text)] if new_text else []
    if len(old_docs) <= 1 and len(new_docs) <= 1:
        yield from _diff(old_docs[0] if old_docs else None, new_docs[0] if new_docs else None, "")
        return
    for i in range(max(len(old_docs), len(new_docs))):
        yield from _diff(old_docs[i] if i < len(old_docs) else None, new_docs[i] if i < len(new_docs) else None,
                         f"[document {i + 1}]")


def _join(path: str, key: Any) -> str:
    key = str(key)
    return f"{path}.{key}" if path and not key.startswith("[") else f"{path}{key}"


def _item_ids(items: list[Any]) -> list[str] | None:
    """Names for a list's items, `[HighErrorRate]`, when every item has a distinct one; else None (positions)."""
    for key in ITEM_KEYS:
        ids = [item.get(key) if isinstance(item, dict) else None for item in items]
        if ids and all(isinstance(i, (str, int, float)) and not isinstance(i, bool) for i in ids) \
                and len(set(map(str, ids))) == len(ids):
            return [f"[{i}]" for i in ids]  # full names, to match items; shortened for display (_shorten)
    return None


def _diff(old: Any, new: Any, path: str) -> Iterator[Entry]:
    if old is None and new is None:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(new) + [k for k in old if k not in new]:
            child = _join(path, key)
            if key not in old:
                yield Entry(child, None, _show(new[key]))
            elif key not in new:
                yield Entry(child, _show(old[key]), None)
            else:
                yield from _diff(old[key], new[key], child)
        return
    if isinstance(old, list) and isinstance(new, list):
        old_ids, new_ids = _item_ids(old), _item_ids(new)
        if old_ids is not None and new_ids is not None:
            before = dict(zip(old_ids, old, strict=True))
            after = dict(zip(new_ids, new, strict=True))
            for key in new_ids + [k for k in old_ids if k not in after]:
                if key not in before:
                    yield Entry(_join(path, key), None, _show(after[key]))
                elif key not in after:
                    yield Entry(_join(path, key), _show(before[key]), None)
                else:
                    yield from _diff(before[key], after[key], _join(path, key))
            return
        for i in range(max(len(old), len(new))):
            child = _join(path, f"[{i}]")
            if i >= len(old):
                yield Entry(child, None, _show(new[i]))
            elif i >= len(new):
                yield Entry(child, _show(old[i]), None)
            else:
                yield from _diff(old[i], new[i], child)
        return
    if old != new or type(old) is not type(new):
        yield Entry(path or "(document)", None if old is None else _show(old), None if new is None else _show(new))


def _show(value: Any) -> str:
    """A value on one line, as YAML flow style would write it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json.dumps(value, sort_keys=False, ensure_ascii=False, separators=(", ", ": "), default=str)


# --- nginx --------------------------------------------------------------------------------------------

def _nginx_tokens(text: str) -> Iterator[str]:
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in "{};":
            yield c
            i += 1
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise ValueError("unterminated quote")
            yield text[i:j + 1]
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};#":
                j += 1
            yield text[i:j]
            i = j


def _nginx_directives(text: str) -> dict[str, str]:
    """`block > name [first arg]` -> the remaining arguments, for every directive."""
    found: dict[str, str] = {}
    stack: list[str] = []
    words: list[str] = []
    for token in _nginx_tokens(text):
        if token == "{":
            stack.append(" ".join(words))
            words = []
        elif token == "}":
            if not stack or words:
                raise ValueError("unbalanced block")
            stack.pop()
        elif token == ";":
            if not words:
                continue
            name, args = words[0], words[1:]
            if name in REPEATED_DIRECTIVES and args:
                name, args = f"{name} {args[0]}", args[1:]
            key = " > ".join(stack + [name])
            if key in found:  # the same directive twice in one block: number the later ones
                n = 2
                while f"{key} #{n}" in found:
                    n += 1
                key = f"{key} #{n}"
            found[key] = " ".join(args)
            words = []
        else:
            words.append(token)
    if stack or words:
        raise ValueError("unterminated directive")
    return found


# --- env files and lines ------------------------------------------------------------------------------

def _env_keys(text: str) -> dict[str, str]:
    found = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError("not KEY=value")
        found[key.strip()] = value
    return found


def _keyed_entries(old: dict[str, str], new: dict[str, str]) -> list[Entry]:
    out = []
    for key in list(new) + [k for k in old if k not in new]:
        if old.get(key) != new.get(key):
            out.append(Entry(key, old.get(key), new.get(key)))
    return out


def _line_entries(old_text: str, new_text: str) -> list[Entry]:
    import difflib

    old, new = old_text.splitlines(), new_text.splitlines()
    out = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag != "equal":
            out.append(Entry(f"line {i1 + 1}" if i2 > i1 else f"after line {i1}",
                             "\n".join(old[i1:i2]) or None, "\n".join(new[j1:j2]) or None))
    return out


# --- one-line values ----------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _excerpt(a: str, b: str) -> tuple[str, str]:
    """Both values cut to the part around their first difference when either is long."""
    if len(a) <= LONG and len(b) <= LONG:
        return a, b
    prefix = 0
    while prefix < min(len(a), len(b)) and a[prefix] == b[prefix]:
        prefix += 1
    suffix = 0
    while suffix < min(len(a), len(b)) - prefix and a[-1 - suffix] == b[-1 - suffix]:
        suffix += 1
    start = max(0, prefix - 20)

    def cut(text: str) -> str:
        end = min(len(text), max(len(text) - suffix + 20, start + 40))
        return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")

    return cut(a), cut(b)


_LONG_ID = re.compile(rf"\[([^\[\]]{{{LONG // 2}}})[^\[\]]{{2,}}\]")


def _shorten(entry: Entry) -> Entry:
    path = _LONG_ID.sub(lambda m: f"[{m.group(1)}…]", entry.path)
    old = None if entry.old is None else _one_line(entry.old)
    new = None if entry.new is None else _one_line(entry.new)
    if old is not None and new is not None:
        old, new = _excerpt(old, new)
    else:
        old = old if old is None or len(old) <= 2 * LONG else old[:2 * LONG] + "…"
        new = new if new is None or len(new) <= 2 * LONG else new[:2 * LONG] + "…"
    return Entry(path, old, new)
