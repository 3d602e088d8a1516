"""Every artifact of the shipped environments and of the edge-case fixtures, pinned by syrupy.

A change to a template or model shows up here as a readable diff of the generated file; update with
`python -m pytest tests/test_snapshots.py --snapshot-update` once the new output is what you want.
"""

from __future__ import annotations

import pytest
from conftest import FIXTURES, SHIPPED_ENVIRONMENTS

from infragen.artifacts import ARTIFACTS
from infragen.load import Loader
from infragen.render import render_environment

SHIPPED = Loader(SHIPPED_ENVIRONMENTS)
EDGE = Loader(FIXTURES / "environments")
ARTIFACT_PATHS = [a.path for a in ARTIFACTS]


@pytest.mark.parametrize("path", ARTIFACT_PATHS)
@pytest.mark.parametrize("name", SHIPPED.names())
def test_shipped_environment_artifact(name: str, path: str, snapshot) -> None:
    assert render_environment(SHIPPED.load(name)).get(f"{name}/{path}") == snapshot  # None: the environment has none


@pytest.mark.parametrize("path", ARTIFACT_PATHS)
@pytest.mark.parametrize("name", EDGE.names())
def test_edge_case_artifact(name: str, path: str, snapshot) -> None:
    assert render_environment(EDGE.load(name)).get(f"{name}/{path}") == snapshot


def test_edge_cases_cover_what_they_claim() -> None:
    """The fixtures exercise the branches their names promise (so a fixture edit cannot silently drop one)."""
    envs = {name: EDGE.load(name) for name in EDGE.names()}
    assert envs["affinity-off"].affinity_mode == "off"
    assert envs["sticky-nginx"].affinity_mode == "sticky"
    assert SHIPPED.load("production").affinity_mode == "hash"
    assert envs["memory-metric"].spec.autoscaling.target_memory_percent == 75
    assert SHIPPED.load("development").spec.autoscaling.target_memory_percent is None
    assert envs["percent-pdb"].pdb_field == ("maxUnavailable", "25%")
