"""The README documents every setting: a key added to the models without docs fails here."""

from __future__ import annotations

import typing

from pydantic import BaseModel

from infragen.models.settings import EnvironmentSpec

from conftest import REPO


def _model(annotation) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (list, dict):
        return None  # documented as a whole (list items / named entries)
    for arg in typing.get_args(annotation):
        found = _model(arg)
        if found:
            return found
    return None


def leaf_keys(model: type[BaseModel], prefix: str = "") -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        key = prefix + (info.alias or name)
        sub = _model(info.annotation)
        keys.extend(leaf_keys(sub, key + ".") if sub else [key])
    return keys


def test_readme_documents_every_setting() -> None:
    readme = (REPO / "README.md").read_text()
    missing = []
    for key in leaf_keys(EnvironmentSpec):
        if key.startswith("alerts.") and key.count(".") == 2:
            key = ".".join(key.split(".")[:2])  # per-alert keys are documented in the alerts table
        if f"`{key}`" not in readme:
            missing.append(key)
    assert not missing, f"README.md does not document: {missing}"
