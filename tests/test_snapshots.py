"""Every artifact of the shipped environments and of the edge-case fixtures, pinned by syrupy, each distinct
content stored once.

One snapshot per (environment, artifact path), in one of these forms:

- **full**: the file's text, for the shipped environments and for the fixture `ROOT`;
- **diff**: every other fixture stores a unified diff of its file against the same file of its base fixture
  (`BASES`, else `ROOT`), with each environment's name replaced by `{env}` on both sides, or the line `same as
  <base>` when nothing else differs. The base's own snapshot pins the base, so base + diff pins the fixture's
  file byte for byte: a fixture's snapshot shows exactly what the fixture changes;
- in either form, a file that another artifact of the same environment embeds verbatim (the dashboard
  ConfigMap holds `grafana/dashboard.json`) is not stored twice: the embedded copy is stored as one line
  `<<< embeds PATH >>>` at the copy's indentation, and the embedded file has its own snapshot;
- `None`: the environment has no such artifact.

`test_stored_forms_reconstruct_every_file` rebuilds every file from the stored forms alone, so nothing is
pinned less than a full copy would pin it. A new artifact or fixture needs no change here; regenerate with
`python -m pytest tests/test_snapshots.py --snapshot-update` and review the snapshot diff.
"""

from __future__ import annotations

import difflib
import functools
import re
from pathlib import Path

import pytest
from conftest import FIXTURES, SHIPPED_ENVIRONMENTS

from infragen.artifacts import ARTIFACTS
from infragen.load import Loader
from infragen.render import render_environment

SHIPPED = Loader(SHIPPED_ENVIRONMENTS)
EDGE = Loader(FIXTURES / "environments")
ARTIFACT_PATHS = [a.path for a in ARTIFACTS]

ROOT = "memory-metric"  # the fixture stored in full
BASES = {"operator-labels": "affinity-off"}  # the fixture each one differs least from; the others: ROOT
PLACEHOLDER = "{env}"
EMBED = re.compile(r"^(?P<indent>[ \t]*)<<< embeds (?P<path>\S+) >>>$")
MIN_EMBEDDED_LINES = 10  # shorter repeats are not worth a reference


@functools.cache
def rendered(loader: Loader, name: str) -> dict[str, str]:
    """artifact path -> text of one environment (rendered once per test session; never mutated)."""
    return {path.split("/", 1)[1]: text for path, text in render_environment(loader.load(name)).items()}


def elide(files: dict[str, str], path: str) -> str:
    """The file's text with each verbatim, indented copy of another file of the environment replaced by a
    reference line."""
    lines = files[path].split("\n")
    for other, text in sorted(files.items()):
        inner = text.rstrip("\n").split("\n")
        if other == path or len(inner) < MIN_EMBEDDED_LINES:
            continue
        i = 0
        while i <= len(lines) - len(inner):
            indent = lines[i][: len(lines[i]) - len(inner[0])]
            if lines[i].endswith(inner[0]) and not indent.strip() and lines[i:i + len(inner)] == [
                    indent + line if line else line for line in inner]:
                lines[i:i + len(inner)] = [f"{indent}<<< embeds {other} >>>"]
            i += 1
    return "\n".join(lines)


def unelide(files: dict[str, str], stored: str) -> str:
    """elide's inverse, given the other files."""
    out = []
    for line in stored.split("\n"):
        match = EMBED.match(line)
        if match is None:
            out.append(line)
            continue
        indent = match["indent"]
        out += [indent + inner if inner else inner for inner in files[match["path"]].rstrip("\n").split("\n")]
    return "\n".join(out)


def base_of(name: str) -> str | None:
    return None if name == ROOT else BASES.get(name, ROOT)


def normalised(name: str, text: str) -> str:
    assert PLACEHOLDER not in text, f"{name}: the output holds {PLACEHOLDER}, which the stored diffs use"
    return text.replace(name, PLACEHOLDER)


def stored_form(name: str, path: str) -> str | None:
    """What the snapshot of a fixture's artifact holds (module docstring)."""
    files = rendered(EDGE, name)
    if path not in files:
        return None
    text = elide(files, path)
    base = base_of(name)
    base_files = rendered(EDGE, base) if base else {}
    if path not in base_files:
        return text
    old, new = normalised(base, elide(base_files, path)), normalised(name, text)
    if old == new:
        return f"same as {base}"
    diff = difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                f"{base}/{path}", f"{name}/{path}", n=2)
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in diff)


def patch(old: str, diff: str) -> str:
    """Apply a unified diff made by stored_form to old (the inverse the reconstruction test relies on)."""
    old_lines, out, at, last = old.splitlines(keepends=True), [], 0, ""
    for line in diff.splitlines(keepends=True)[2:]:  # after the ---/+++ header
        if line.startswith("@@"):
            start = int(line.split()[1].split(",")[0][1:]) - 1
            out += old_lines[at:start]
            at = start
        elif line.startswith("\\"):
            if last in " +":  # the new side's last line has no newline (the old side's alone: nothing to do)
                out[-1] = out[-1].rstrip("\n")
        else:
            at += line[0] in " -"
            if line[0] in " +":
                out.append(line[1:])
            last = line[0]
    return "".join(out + old_lines[at:])


@pytest.mark.parametrize("path", ARTIFACT_PATHS)
@pytest.mark.parametrize("name", SHIPPED.names())
def test_shipped_environment_artifact(name: str, path: str, snapshot) -> None:
    files = rendered(SHIPPED, name)
    assert (elide(files, path) if path in files else None) == snapshot  # None: the environment has none


@pytest.mark.parametrize("path", ARTIFACT_PATHS)
@pytest.mark.parametrize("name", EDGE.names())
def test_edge_case_artifact(name: str, path: str, snapshot) -> None:
    assert stored_form(name, path) == snapshot


def unelide_all(texts: dict[str, str]) -> dict[str, str]:
    """Resolve every reference, embedded files first (a file that embeds none is final as stored)."""
    done = {path: text for path, text in texts.items() if "<<< embeds " not in text}
    while len(done) < len(texts):
        ready = {path: text for path, text in texts.items() if path not in done
                 and all(m["path"] in done for m in map(EMBED.match, text.split("\n")) if m)}
        assert ready, "references that never resolve"
        done |= {path: unelide(done, text) for path, text in ready.items()}
    return done


@pytest.mark.parametrize("name", EDGE.names())
def test_stored_forms_reconstruct_every_file(name: str) -> None:
    """Every file of every fixture comes back byte for byte from the stored forms alone (its base's files,
    its diffs, the embedded files): storing each content once pins as much as a full copy of each file."""

    def rebuild(fixture: str) -> dict[str, str]:
        base = base_of(fixture)
        base_files = rebuild(base) if base else {}
        texts = {}
        for path in ARTIFACT_PATHS:
            form = stored_form(fixture, path)
            if form is None or path not in base_files:
                if form is not None:
                    texts[path] = form
                continue
            assert base is not None
            old = normalised(base, elide(base_files, path))
            texts[path] = (old if form == f"same as {base}" else patch(old, form)).replace(PLACEHOLDER, fixture)
        return unelide_all(texts)

    assert rebuild(name) == rendered(EDGE, name)


def test_embedded_dashboard_is_stored_once() -> None:
    """The dashboard ConfigMap's copy of the dashboard is a reference in every stored form that has one."""
    files = rendered(SHIPPED, "production")
    stored = elide(files, "kubernetes/dashboard-configmap.yaml")
    assert "<<< embeds grafana/dashboard.json >>>" in stored
    assert len(stored) < len(files["kubernetes/dashboard-configmap.yaml"]) - len(files["grafana/dashboard.json"]) // 2
    assert unelide(files, stored) == files["kubernetes/dashboard-configmap.yaml"]


def test_snapshots_stay_near_one_copy_of_the_output() -> None:
    """The point of the forms above: the snapshot file holds about one copy of the shipped output plus the ROOT
    fixture and small diffs (it held 3.1 copies when every file was stored in full). A fixture that differs much
    from ROOT should name a closer base in BASES."""
    stored = (Path(__file__).parent / "__snapshots__" / "test_snapshots.ambr").stat().st_size
    output = sum(len(text.encode()) for name in SHIPPED.names() for text in rendered(SHIPPED, name).values())
    assert stored < 1.6 * output, f"snapshots {stored} bytes for {output} bytes of shipped output"


def test_edge_cases_cover_what_they_claim() -> None:
    """The fixtures exercise the branches their names promise (so a fixture edit cannot silently drop one)."""
    envs = {name: EDGE.load(name) for name in EDGE.names()}
    assert envs["affinity-off"].edge.affinity_mode == "off"
    assert envs["sticky-nginx"].edge.affinity_mode == "sticky"
    assert SHIPPED.load("production").edge.affinity_mode == "hash"
    assert envs["memory-metric"].spec.autoscaling.target_memory_percent == 75
    assert SHIPPED.load("development").spec.autoscaling.target_memory_percent is None
    assert envs["percent-pdb"].capacity.pdb_field == ("maxUnavailable", "25%")
