"""`infragen new`: a minimal environment file that validates, passes the policy rules and builds, for every tier."""

from __future__ import annotations

import shutil

import pytest
import yaml
from conftest import SHIPPED_ENVIRONMENTS, artifact_paths, files_under

from infragen.cli import cli
from infragen.load import Loader
from infragen.models.settings import TIERS
from infragen.policy import check_environment

SERVERS = ["--server", "10.0.0.1:8080", "--server", "10.0.0.2:8080"]
PROMETHEUS = ["--prometheus-url", "http://prometheus.monitoring.svc:9090"]


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("partial", [None, "_base"])
def test_every_tier_scaffolds_validates_and_builds(project, runner, tier: str, partial: str | None) -> None:
    if partial:
        shutil.copy(SHIPPED_ENVIRONMENTS / f"{partial}.yaml", project / "environments")
    # The shipped _base names the Prometheus the analyses query; without it, a gated tier needs --prometheus-url.
    args = ["new", "fresh", "--tier", tier, *SERVERS] + (["--extends", partial] if partial else ["--service", "shop"])
    if not partial and tier != "development":
        args += PROMETHEUS
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "next: infragen build fresh"
    path = project / "environments" / "fresh.yaml"
    text = path.read_text()
    assert "must match what your database allows" in text
    data = yaml.safe_load(text)
    assert data["tier"] == tier and data["load_balancing"]["servers"] == ["10.0.0.1:8080", "10.0.0.2:8080"]
    assert "autoscaling" not in data  # the tier's defaults, as they are

    env = Loader(project / "environments").load("fresh")
    assert [f for f in check_environment(env) if f.level == "error"] == []
    assert env.capacity.peak_connections <= env.capacity.usable_connections  # the fleet rule holds ...
    smaller = env.spec.database.model_copy(update={"max_connections": data["database"]["max_connections"] - 1})
    assert env.capacity.peak_connections > smaller.usable_connections  # ... with nothing larger than needed

    result = runner.invoke(cli, ["build", "fresh"])
    assert result.exit_code == 0, result.output
    assert sorted(files_under(project / "output")) == sorted(artifact_paths(project / "environments", "fresh"))
    assert runner.invoke(cli, ["check"]).exit_code == 0


STRATEGIES = ("rolling", "canary", "blue-green")


@pytest.mark.parametrize("partial", [None, "_base"])
def test_every_tier_and_strategy_scaffolds_an_environment_that_passes_strict(project, runner,
                                                                              partial: str | None) -> None:
    """`infragen new` for every tier x strategy, then `validate --strict`: the tier defaults pass their own rules.
    Where a design default necessarily warns (the canary's 5% step at a tier's few replicas), the file carries the
    acknowledgement with its reason as a comment."""
    if partial:
        shutil.copy(SHIPPED_ENVIRONMENTS / f"{partial}.yaml", project / "environments")
    # The shipped _base acknowledges that its servers are NodePorts (affinity-through-nodeport): give it NodePorts.
    extra = (["--extends", partial, "--server", "10.0.0.1:30080", "--server", "10.0.0.2:30080"] if partial else
             ["--service", "shop", *PROMETHEUS, "--monitoring-label", "release=kube-prometheus-stack", *SERVERS])
    for tier in TIERS:
        for strategy in STRATEGIES:
            name = f"{tier}-{strategy}"
            result = runner.invoke(cli, ["new", name, "--tier", tier, "--strategy", strategy, *extra])
            assert result.exit_code == 0, (name, result.output)
            env = Loader(project / "environments").load(name)
            warned = {f.rule for f in check_environment(env) if f.level == "info"}
            text = (project / "environments" / f"{name}.yaml").read_text()
            data = yaml.safe_load(text)
            acknowledged = data.get("policy", {}).get("acknowledge", [])
            assert set(acknowledged) <= warned, (name, text)  # each one needed (a partial may acknowledge more)
            if acknowledged:  # the reason is in the file, above the list
                assert "splits pods, not requests" in text.split("acknowledge:")[0], text
            assert ("canary-step-share" in acknowledged) == (strategy == "canary"), name
    result = runner.invoke(cli, ["validate", "--strict"])
    assert result.exit_code == 0, result.output


def test_new_refuses_a_monitoring_label_without_a_value(project, runner) -> None:
    result = runner.invoke(cli, ["new", "x", "--tier", "development", "--service", "shop", *SERVERS,
                                 "--monitoring-label", "release"])
    assert result.exit_code == 2 and "--monitoring-label takes KEY=VALUE" in result.stderr
    assert list((project / "environments").iterdir()) == []


def test_staging_scaffold_value(project, runner) -> None:
    """Staging's defaults open (5 + 2 surge) x (10 + 5) = 105 at peak: more than 90 usable of PostgreSQL's 100."""
    assert runner.invoke(cli, ["new", "stage", "--tier", "staging", "--service", "shop", *SERVERS, *PROMETHEUS]).exit_code == 0
    env = Loader(project / "environments").load("stage")
    assert env.rollout.strategy == "canary" and env.capacity.peak_connections == 105
    assert env.spec.database.max_connections == 117 == env.capacity.smallest_fitting_max_connections  # 117 x 90% = 105


def test_production_scaffold_fits_three_blue_green_stacks(project, runner) -> None:
    """A blue-green release inside the rollback window runs three stacks: 3 x 10 x (20 + 10) = 900, so 1000
    (x 90% = 900)."""
    assert runner.invoke(cli, ["new", "prod", "--tier", "production", "--service", "shop", *SERVERS, *PROMETHEUS]).exit_code == 0
    env = Loader(project / "environments").load("prod")
    assert env.rollout.strategy == "blue-green" and env.capacity.peak_connections == 900 and env.spec.database.max_connections == 1000


def test_a_gated_tier_without_prometheus_asks_for_it_or_rolling(project, runner) -> None:
    result = runner.invoke(cli, ["new", "stage", "--tier", "staging", "--service", "shop", *SERVERS])
    assert result.exit_code == 2 and "give --prometheus-url URL, or --strategy rolling" in result.stderr
    assert list((project / "environments").iterdir()) == []
    result = runner.invoke(cli, ["new", "stage", "--tier", "staging", "--service", "shop", "--strategy", "rolling", *SERVERS])
    assert result.exit_code == 0, result.output
    assert Loader(project / "environments").load("stage").rollout.strategy == "rolling"


def test_refuses_to_overwrite(project, write_env, runner) -> None:
    path = write_env("taken", "tier: staging\n")
    result = runner.invoke(cli, ["new", "taken", "--tier", "staging", "--service", "shop", *SERVERS])
    assert result.exit_code == 2
    assert "environments/taken.yaml: already exists; `infragen new` never overwrites" in result.stderr
    assert path.read_text() == "tier: staging\n"


@pytest.mark.parametrize(("args", "message"), [
    (["Bad_Name", "--tier", "staging", "--service", "shop", *SERVERS], "is not an environment name"),
    (["x", "--tier", "staging", *SERVERS], "give --service NAME: no partial sets service.name"),
    (["x", "--tier", "staging", "--service", "shop", "--extends", "_bse", *SERVERS], "partial '_bse' not found"),
    (["x", "--tier", "staging", "--service", "shop", "--extends", "base", *SERVERS], "is not a partial name"),
    (["x", "--tier", "staging", "--service", "Shop!", *SERVERS], "environments/x.yaml:5:9: service.name"),
    (["x", "--tier", "staging", "--service", "shop", "--server", "not an address"], "load_balancing.servers.0"),
    (["x", "--tier", "prod", "--service", "shop", *SERVERS], "'prod' is not one of"),
    (["x", "--tier", "staging", "--service", "shop"], "Missing option '--server'"),
])
def test_bad_arguments_exit_2_and_write_nothing(project, runner, args: list[str], message: str) -> None:
    result = runner.invoke(cli, ["new", *args])
    assert result.exit_code == 2
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert list((project / "environments").iterdir()) == []
