"""Where one process's time goes, stage by stage (the profile behind docs/benchmarks.md).

    python benchmarks/stages.py 1000          # CPU ms per stage for 1000 synthetic environments, serial
    python benchmarks/stages.py 1000 --cprofile   # and the top functions by own time

Start-up stages are measured once, in order, in a fresh process; per-environment stages are the best of
three passes with the cyclic GC paused as the pipeline pauses it. CPU time (not wall time), so other load
on the machine changes the figures less.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

T = time.process_time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int, nargs="?", default=1000)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()

    rows: list[tuple[str, float]] = []
    t = T()
    import click  # noqa: F401
    import jinja2  # noqa: F401
    import pydantic  # noqa: F401
    import yaml  # noqa: F401
    rows.append(("import floor (pydantic, jinja2, click, yaml)", T() - t))
    t = T()
    from infragen import cli  # noqa: F401
    from infragen.config import load_settings

    load_settings()
    rows.append(("cli + tool settings (pydantic's model machinery, first use)", T() - t))
    t = T()
    from infragen import pipeline, policy  # noqa: F401
    from infragen.load import Loader
    rows.append(("import models, loader, policy (schema building of ~30 models)", T() - t))
    t = T()
    from infragen.artifacts import ARTIFACTS
    from infragen.render import compile_all, render_all
    compile_all()
    rows.append(("import render, load compiled templates", T() - t))

    from fleet import write_fleet

    from infragen import load
    from infragen.load import _tier_layer, merge
    from infragen.models.settings import EnvironmentSpec
    from infragen.plan import scan_output
    from infragen.secrets import find_inline_secrets
    from infragen.yamlsource import read_file

    root = Path(tempfile.mkdtemp(prefix="infragen-stages-"))
    write_fleet(root, args.count)
    env_dir = root / "environments"
    os.chdir(root)
    names = Loader(env_dir).names()
    paths = sorted(env_dir.glob("*.yaml"))
    best: dict[str, float] = {}

    def stage(name: str, fn):
        start = T()
        result = fn()
        best[name] = min(best.get(name, 1e9), T() - start)
        return result

    gc.disable()
    for _ in range(3):
        # Each stage's lambda runs inside stage(), before the loop moves on: the defaults only pin that down.
        docs = stage("parse YAML (C composer) into values + locations", lambda: [read_file(p, p.name) for p in paths])
        stage("scan every file for inline secrets", lambda docs=docs: [find_inline_secrets(d) for d in docs])
        loader = Loader(env_dir)
        layers = stage("read + layer partials (extends), incl. parse",
                       lambda loader=loader: [loader._layers(n)[0] for n in names])
        merged = stage("merge tier defaults",
                       lambda layers=layers: [merge(_tier_layer(layer.data["tier"]), layer) for layer in layers])
        stage("pydantic validation", lambda merged=merged: [
            EnvironmentSpec.model_validate(layer.data, context=load._VALIDATION_CONTEXT) for layer in merged])
        envs = stage("load_many (all of loading, layers cached)", lambda loader=loader: loader.load_many(names))
        stage("alert rules and promtool alert tests (models)",
              lambda envs=envs: [(e.monitoring.alert_rules, e.monitoring.alert_tests) for e in envs])
        from infragen.documents import slo_rules
        stage("SLO rules and promtool SLO tests (models; timelines cached per objective)",
              lambda envs=envs: [(slo_rules.groups(e), e.monitoring.slo_tests) for e in envs])
        files = stage(f"render {len(ARTIFACTS)} templates each (after the models above)", lambda envs=envs: render_all(envs))
        stage("policy check", lambda envs=envs: policy.check(envs))
        (root / "output").mkdir(exist_ok=True)
    gc.enable()
    from infragen.plan import apply, make_plan
    apply(make_plan(files, Path("output"), None))
    for _ in range(3):
        stage(f"read existing output ({len(ARTIFACTS)} files each)", lambda: scan_output(Path("output"), None))

    print(f"start-up, CPU ms (Python {sys.version.split()[0]}, pid {os.getpid()}):")
    for name, seconds in rows:
        print(f"  {seconds * 1000:7.1f}  {name}")
    print(f"per environment, CPU ms (N={args.count}, best of 3, one process):")
    for name, seconds in best.items():
        print(f"  {seconds * 1000 / args.count:7.3f}  {name}  ({seconds * 1000:.0f} ms in all)")

    per_artifact(envs)

    if args.cprofile:
        import cProfile
        import pstats

        gc.disable()
        profiler = cProfile.Profile()
        profiler.enable()
        pipeline.Job(env_dir).run(names)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


def per_artifact(envs: list) -> None:
    """CPU ms per environment that has it, and KB, of each artifact: rendered one environment at a time in
    registry order, as a build does (so the dashboard's ConfigMap reuses the JSON just written)."""
    from infragen.artifacts import ARTIFACTS, for_environment
    from infragen.render import _normalise, template

    spent = {a.path: 0.0 for a in ARTIFACTS}
    count = dict.fromkeys(spent, 0)
    size = dict.fromkeys(spent, 0)
    gc.disable()
    for env in envs:
        for artifact in for_environment(env):
            start = T()
            text = _normalise(template(artifact.template).render(artifact.context(env)))
            spent[artifact.path] += T() - start
            count[artifact.path] += 1
            size[artifact.path] += len(text.encode())
    gc.enable()
    print(f"rendering, per environment that has the artifact (N={len(envs)}, models built first):")
    print("| artifact | environments | CPU ms | KB |")
    print("|---|---:|---:|---:|")
    for path in sorted(spent, key=lambda p: -spent[p] / max(count[p], 1)):
        if count[path]:
            print(f"| `{path}` | {count[path]} | {spent[path] * 1000 / count[path]:.3f} | "
                  f"{size[path] / count[path] / 1024:.1f} |")


if __name__ == "__main__":
    main()
