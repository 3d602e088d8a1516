"""JSON Schema of an environment file, for editors (yaml-language-server) and CI."""

from __future__ import annotations

from typing import Any

from .models.settings import EnvironmentSpec
from .models.tiers import TIER_DEFAULTS


def environment_schema() -> dict[str, Any]:
    schema = EnvironmentSpec.model_json_schema(mode="validation")
    # Sections the tier supplies are not required in a file, nor is anything a partial may supply:
    # a file is checked after layering, so only `tier` stays required for editors.
    tier_sections = set().union(*(d.keys() for d in TIER_DEFAULTS.values()))
    schema["required"] = [k for k in schema.get("required", []) if k not in tier_sections and k == "tier"]
    for definition in schema.get("$defs", {}).values():
        definition.pop("required", None) if definition.get("title") in {"Autoscaling", "Database", "Service", "LoadBalancing"} else None
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "infragen environment file"
    schema["description"] = ("One environment of a service: environments/<name>.yaml. Partials (_name.yaml) use the same "
                             "keys; defaults come from the tier. See README.md for every key.")
    return schema
