"""The README documents every setting: a key added to the models without docs fails here."""

from __future__ import annotations

import typing

from conftest import REPO
from pydantic import BaseModel

from infragen.models.settings import EnvironmentSpec


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


def _table_rows(text: str, header: str) -> list[str]:
    start = text.index(header)
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return rows


def test_readme_lists_exactly_the_registered_artifacts() -> None:
    """The "What it generates" table is the registry's: each artifact's path and one-line description, in order."""
    from infragen.artifacts import ARTIFACTS

    rows = _table_rows((REPO / "README.md").read_text(), "| file | contents |")
    assert rows == [f"| `{a.path}` | {a.description} |" for a in ARTIFACTS]


def test_verification_docs_name_a_consumer_for_every_artifact() -> None:
    from infragen.artifacts import ARTIFACTS

    rows = _table_rows((REPO / "docs" / "verification.md").read_text(), "| artifact | consumer | what is checked |")
    for artifact in ARTIFACTS:
        row = next((r for r in rows if f"`{artifact.path}`" in r.split("|")[1]), None)
        assert row is not None, f"docs/verification.md has no row for {artifact.path}"
        program = artifact.consumer.tool or artifact.consumer.name.split()[0].rstrip(",:")
        assert program in row.split("|")[2], f"{artifact.path}: the row does not name {program}"


def test_readme_code_layout_names_every_module() -> None:
    layout = (REPO / "README.md").read_text().split("## Code layout", 1)[1].split("\n## ", 1)[0]
    missing = [p.relative_to(REPO).as_posix() for p in sorted((REPO / "infragen").rglob("*.py"))
               if p.name != "__init__.py" and p.name not in layout]
    assert not missing, f"README.md's Code layout does not name: {missing}"
