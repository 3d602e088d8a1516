"""Read one YAML settings file into plain Python data, remembering where every value was written.

PyYAML's constructors lose line numbers, accept duplicate keys silently and resolve YAML 1.1 scalars
(`on`, `010`, `1:30`) into surprising values. We only use PyYAML's composer (C-accelerated when
available), which yields a node graph with marks and never expands aliases, and build values ourselves.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .discover import MAX_FILE_BYTES, read_settings_bytes
from .errors import InputError, Location
from .fsutil import NotRegularFile

try:  # the C composer is ~10x faster; same node graph, same marks
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML built without libyaml
    _Loader = yaml.SafeLoader

# Real environment files have a few hundred nodes. Counting every node visit (aliases included) bounds
# the work an anchor bomb ("billion laughs") can cause before we reject it.
MAX_NODES = 20_000
MAX_DEPTH = 32
MAX_SCALAR_CHARS = 1024  # URLs, paths and label values are far shorter; YAML itself caps plain keys at 1024

Path_ = tuple[str | int, ...]

_TAG = "tag:yaml.org,2002:"
_INT_AMBIGUOUS = re.compile(r"^[-+]?(0[0-9_]+|0[xXoObB].*|.*_.*|.*:.*)$")
_FLOAT_AMBIGUOUS = re.compile(r"^[-+]?(\.(inf|Inf|INF|nan|NaN|NAN)|.*:.*|.*_.*)$")
_SURROGATE = re.compile("[\ud800-\udfff]")
_TAB_INDENT = re.compile(r"^ *\t", re.MULTILINE)


@dataclass
class Document:
    """A parsed file: its data, and where each path's value (or key, for containers) was written."""

    data: dict[str, Any]
    locations: dict[Path_, Location]
    # The source text of numbers, so "1.30 was read as 1.3" can be reported in the user's own words.
    number_text: dict[Path_, str]
    display: str
    digest: bytes = b""  # of the file's bytes as read (read_file): what the result cache keys on


def _loc(display: str, mark: Any) -> Location:
    return Location(display, mark.line + 1, mark.column + 1)


class _Builder:
    def __init__(self, display: str) -> None:
        self.display = display
        self.locations: dict[Path_, Location] = {}
        self.number_text: dict[Path_, str] = {}
        self.visits = 0

    def fail(self, node: Any, message: str) -> InputError:
        return InputError.single(message, _loc(self.display, node.start_mark))

    def build(self, node: Any, path: Path_, depth: int = 0) -> Any:
        self.visits += 1
        if self.visits > MAX_NODES:
            raise self.fail(node, f"document expands to more than {MAX_NODES} values (anchors and aliases?); refusing to read it")
        if depth > MAX_DEPTH:
            raise self.fail(node, f"nesting deeper than {MAX_DEPTH} levels; an environment file is never that deep")
        if isinstance(node, yaml.MappingNode):
            if node.tag != _TAG + "map":  # !!set, !!omap-like or custom tags on a mapping would be silently ignored
                raise self.fail(node, f"YAML tag {node.tag!r} on a mapping is not supported; remove the tag")
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _TAG + "seq":
                raise self.fail(node, f"YAML tag {node.tag!r} on a list is not supported; remove the tag")
            if path:
                self.locations.setdefault(path, _loc(self.display, node.start_mark))
            items = []
            for i, item in enumerate(node.value):
                self.locations[path + (i,)] = _loc(self.display, item.start_mark)
                items.append(self.build(item, path + (i,), depth + 1))
            return items
        return self.scalar(node, path)

    def mapping(self, node: Any, path: Path_, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG + "merge":
                raise self.fail(key_node, "YAML merge keys (<<) are not supported; use `extends:` to share settings")
            if not isinstance(key_node, yaml.ScalarNode):
                raise self.fail(key_node, "a mapping key must be a plain name, not a list or mapping")
            key = key_node.value
            if len(key) > MAX_SCALAR_CHARS:
                raise self.fail(key_node, f"a key of {len(key)} characters; no setting's name is longer than {MAX_SCALAR_CHARS}")
            if key in first_seen:
                first = first_seen[key].start_mark.line + 1
                raise InputError.single(
                    f"duplicate key {key!r} (first set on line {first}); YAML would silently keep the last one",
                    _loc(self.display, key_node.start_mark),
                    ".".join(str(p) for p in path + (key,)),
                )
            first_seen[key] = key_node
            child = path + (key,)
            # Containers are located at their key; scalars at their value (where the bad text is).
            if isinstance(value_node, yaml.ScalarNode):
                self.locations[child] = _loc(self.display, value_node.start_mark)
            else:
                self.locations[child] = _loc(self.display, key_node.start_mark)
            result[key] = self.build(value_node, child, depth + 1)
        return result

    def scalar(self, node: Any, path: Path_) -> Any:
        tag: str = node.tag
        text: str = node.value
        field = ".".join(str(p) for p in path)
        if len(text) > MAX_SCALAR_CHARS:  # bounds the cost of every later per-value scan (secrets, messages)
            raise InputError.single(f"a value of {len(text)} characters; no setting is longer than {MAX_SCALAR_CHARS}",
                                    _loc(self.display, node.start_mark), field)
        if not tag.startswith(_TAG):
            raise self.fail(node, f"custom YAML tag {tag!r} is not supported")
        kind = tag[len(_TAG):]
        if kind == "str":
            if _SURROGATE.search(text):  # libyaml refuses "\ud800" escapes; PyYAML's pure-Python parser does not
                raise InputError.single("contains a lone UTF-16 surrogate (an escape like \\ud800); write the character itself",
                                        _loc(self.display, node.start_mark), field)
            return text
        if kind == "null":
            return None
        if kind == "bool":
            if text in ("true", "True", "TRUE", "false", "False", "FALSE"):
                return text.lower() == "true"
            raise InputError.single(
                f"{text!r} is read as a boolean by YAML 1.1; write true or false, or quote it ({text!r}) if you mean text",
                _loc(self.display, node.start_mark), field)
        if kind == "int":
            if _INT_AMBIGUOUS.match(text):
                raise InputError.single(
                    f"{text[:40]!r} is an ambiguous number in YAML (octal, hex, base-60 or digit groups); "
                    f"write it in plain decimal, or quote it ('{text[:40]}') if you mean text",
                    _loc(self.display, node.start_mark), field)
            # Bounded before int(): a 5000-digit number would otherwise hit Python's int-conversion limit.
            digits = text.lstrip("+-")
            if len(digits) > 18 or not digits.isascii() or not digits.isdigit():
                raise InputError.single(f"{text[:40]!r} is not a whole number this tool can use (at most 18 digits)",
                                        _loc(self.display, node.start_mark), field)
            self.number_text[path] = text
            return int(text)
        if kind == "float":
            if _FLOAT_AMBIGUOUS.match(text):
                raise InputError.single(
                    f"{text[:40]!r} is not a finite decimal number; quote it ('{text[:40]}') if you mean text",
                    _loc(self.display, node.start_mark), field)
            try:
                number = float(text)
            except ValueError:  # explicit `!!float abc`
                number = math.nan
            if not math.isfinite(number):
                raise InputError.single(
                    f"{text[:40]!r} is not a finite decimal number; quote it ('{text[:40]}') if you mean text",
                    _loc(self.display, node.start_mark), field)
            self.number_text[path] = text
            return number
        if kind == "timestamp":
            return text  # no setting is a date; keep the user's text and let the model judge it
        raise self.fail(node, f"YAML type !!{kind} is not supported")


def _check_depth(text: str, display: str) -> None:
    """Refuse deep nesting before composing: PyYAML's composer recurses in C and crashes the interpreter
    (SIGSEGV, not RecursionError) on a few tens of thousands of nested `[`/`{`. libyaml's event parser
    keeps its own stack, so walking events first is safe and cheap."""
    # Every nesting level needs one of these characters, and the composer survives 10,000 levels: a file
    # with few of them (every real one) skips the walk.
    if sum(text.count(c) for c in "[{-:?") <= 2000:
        return
    loader = _Loader(text)
    depth = 0
    try:
        while True:
            event = loader.get_event()
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise InputError.single(f"nesting deeper than {MAX_DEPTH} levels; an environment file is never that deep",
                                            _loc(display, event.start_mark))
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            elif event is None or isinstance(event, yaml.StreamEndEvent):
                return
    finally:
        loader.dispose()


def parse_text(raw: bytes, display: str) -> Document:
    """Parse one environment or partial file's bytes. Raises InputError with file:line:column."""
    if len(raw) > MAX_FILE_BYTES:
        raise InputError.single(f"file is {len(raw)} bytes, over the {MAX_FILE_BYTES}-byte limit for a settings file",
                                Location(display, 1, 1))
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InputError.single("file starts with a UTF-8 byte-order mark; save it as UTF-8 without BOM",
                                Location(display, 1, 1))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise InputError.single(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8",
                                Location(display, line, column)) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise InputError.single("file contains a NUL byte; it is not a text file", Location(display, line, 1))
    tab = _TAB_INDENT.search(text)
    if tab:
        line = text.count("\n", 0, tab.start()) + 1
        raise InputError.single("tab used for indentation; YAML indents with spaces only", Location(display, line, tab.end() - tab.start()))
    try:
        _check_depth(text, display)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.reader.ReaderError as exc:  # a character YAML forbids; its str() spans two lines
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character)
        raise InputError.single(f"invalid YAML: control character {code:#04x} is not allowed; remove it",
                                Location(display, line, column)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        message = exc.problem or exc.context or "invalid YAML"
        if "expected a single document" in str(exc):
            message = "more than one YAML document (---); an environment file holds exactly one mapping"
        if "maximum nesting depth" in str(exc):  # libyaml >= 0.2.5 stops at 1000 levels while scanning ahead
            raise InputError.single(f"nesting deeper than {MAX_DEPTH} levels; an environment file is never that deep",
                                    _loc(display, mark) if mark else Location(display, 1, 1)) from None
        raise InputError.single(f"invalid YAML: {message}",
                                _loc(display, mark) if mark else Location(display, 1, 1)) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError.single(f"invalid YAML: {first}", Location(display, 1, 1)) from None
    if node is None:
        raise InputError.single("file is empty; an environment file is a YAML mapping (at least `tier:` and `service:`)",
                                Location(display, 1, 1))
    builder = _Builder(display)
    data = builder.build(node, ())
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"a single value ({data!r})"
        raise InputError.single(f"the top level must be a mapping of settings, not {kind}",
                                _loc(display, node.start_mark))
    return Document(data=data, locations=builder.locations, number_text=builder.number_text, display=display)


def read_file(path: Path, display: str) -> Document:
    try:
        raw = read_settings_bytes(path)
    except FileNotFoundError:
        raise InputError.single("file not found", Location(display)) from None
    except IsADirectoryError:
        raise InputError.single("is a directory, not a settings file", Location(display)) from None
    except NotRegularFile:
        raise InputError.single("is not a regular file (a pipe or device?); a settings file must be a plain file",
                                Location(display)) from None
    except OSError as exc:
        raise InputError.single(f"cannot read: {exc.strerror}", Location(display)) from None
    doc = parse_text(raw, display)
    from .cache import digest

    doc.digest = digest(raw)
    return doc
