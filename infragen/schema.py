"""JSON Schema of an environment file, for editors (yaml-language-server) and CI."""

from __future__ import annotations

from typing import Any

from .models.settings import EnvironmentSpec
from .models.types import SERVER_ADDRESS_RE
from .policy import ACKNOWLEDGEABLE, ALLOWABLE

_LIST_ITEMS = {"ScalingPolicy", "UpstreamServer"}


def environment_schema() -> dict[str, Any]:
    schema = EnvironmentSpec.model_json_schema(mode="validation")
    # A file is complete only after partials and tier defaults are merged beneath it, so per file no
    # mapping key is required. List items are replaced whole, never merged: they keep their required keys.
    schema.pop("required", None)
    for name, definition in schema.get("$defs", {}).items():
        if name not in _LIST_ITEMS:
            definition.pop("required", None)
    # `servers` items may be written as "host:port" strings; the model turns them into mappings.
    servers = schema["$defs"]["LoadBalancing"]["properties"]["servers"]
    servers["items"] = {"anyOf": [{"type": "string", "pattern": SERVER_ADDRESS_RE}, servers["items"]]}
    # The rules `policy.allow` may name come from the rule registry, which the models cannot import.
    schema["$defs"]["Policy"]["properties"]["allow"]["items"]["enum"] = list(ALLOWABLE)
    schema["$defs"]["Policy"]["properties"]["acknowledge"]["items"]["enum"] = list(ACKNOWLEDGEABLE)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "infragen environment file"
    schema["description"] = ("One environment of a service: environments/<name>.yaml. Partials (_name.yaml) use the same "
                             "keys; defaults come from the tier. See README.md for every key.")
    return schema
