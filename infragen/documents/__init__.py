"""Each YAML and JSON artifact's document, one small module per artifact: the file's shape as plain data (dicts and
lists in the order they are written), placed from values the environment computed (infragen.models). No arithmetic
and no defaults here: a module only places values. Every document is written by one writer (`yaml_tree` or
`json_document` in infragen.render), so quoting, indentation and Kubernetes metadata (`Environment.metadata`) are
each done once.

A module has `NOTE` (the comment under the generated-file header, or None) and `documents(env)`: the YAML
documents of the file, in order (a JSON file has one). Comments inside a document are values wrapped in `Note`.
"""

from __future__ import annotations

from typing import Any


class Note:
    """A value written with a comment on the line(s) above its key or list item."""

    __slots__ = ("text", "value")

    def __init__(self, text: str, value: Any) -> None:
        self.text, self.value = text, value


class Flow(tuple[Any, ...]):
    """A list of scalars written on its key's line: `[a, b]`."""


class Block(str):
    """A string written as a YAML literal block (`|-`), one line of it per line: JSON inside a ConfigMap."""
