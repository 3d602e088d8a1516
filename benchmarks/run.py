"""Time infragen as whole processes, the way CI and pre-commit hooks run it.

    python benchmarks/run.py                 # the issue's three ratios at N=1000 (about 5 minutes)
    python benchmarks/run.py --sizes 1000,3000 --runs 5
    python benchmarks/run.py --table         # every scenario, N = 3, 100, 1000 plus the shipped environments

Default (the ratios): each figure is measured against its floor in the same run, the two alternating (A B,
B A, ...) so that other load on the machine hits both, and the ratio is the median of the per-pair ratios:
- `build` from empty (result cache off) against `cp -r` of the tree it wrote, on the virtual disk (the system
  temporary directory) and on a RAM disk (/dev/shm); `shutil.copytree` is also timed, as a second floor;
- the peak memory of that build: the parent's own (RUSAGE_SELF) and its largest worker's (RUSAGE_CHILDREN),
  read in the process itself when the command ends;
- cold `check` (`--no-cache`, an empty cache directory: a clean clone in CI) on the repository's three shipped
  environments against the import floor, `python -c "import pydantic, jinja2, click, yaml"`.

--table: for each N it writes N synthetic environments (benchmarks/fleet.py) into a temporary project and times
`build` from empty, `build` with nothing changed, `check` up to date, `check` with one environment changed
and `validate`; it also times `check` on the repository's shipped environments. The result cache
(infragen/cache.py) is on, as it is for a user, and warm after the first round; `check` and `validate`
are also timed with `--no-cache`, which is what a first run on a clean clone (CI) costs. Every round also times
the import floor, so each figure is also a ratio to it (rounds interleave all scenarios).

Children run this checkout's code (PYTHONPATH) with the real interpreter (sys.executable: a pyenv shim
would add its own start-up), and with bytecode cached in a temporary PYTHONPYCACHEPREFIX, as an installed
package has it, even when PYTHONDONTWRITEBYTECODE is set. Peak memory in the table is each child's ru_maxrss
from wait4(), which covers the child and any worker processes it waited for: the largest single process.

Results: Markdown on stdout and JSON in benchmarks/results/ (gitignored). No hyperfine needed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from fleet import write_fleet  # noqa: E402

FLOOR = "import floor"
SCENARIOS = ("build from empty", "build, nothing changed", "check, up to date", "check, up to date, --no-cache",
             "check, one env changed", "validate", "validate, --no-cache", "file-creation floor")
# What creating the same tree of files costs without infragen: a bare Python copying output/. On a slow
# disk this, not infragen, bounds `build from empty`.
COPY_TREE = "import shutil, sys; shutil.rmtree(sys.argv[2], ignore_errors=True); shutil.copytree(sys.argv[1], sys.argv[2])"


def child_env(pycache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PYTHONPATH"] = str(REPO)
    env["XDG_CACHE_HOME"] = str(pycache.parent / "cache")  # infragen's compiled templates, fresh per run
    for var in [v for v in env if v.startswith("INFRAGEN_")]:
        del env[var]
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str], expect: int = 0) -> tuple[float, float, float]:
    """(wall seconds, cpu seconds, peak RSS MiB) of one process."""
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: a long error report cannot block the child
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = code = os.waitstatus_to_exitcode(status)
        if code != expect:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv)} in {cwd}: exit {code}, expected {expect}\n"
                             f"{err.read().decode(errors='replace')[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def snapshot(output: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()}


class Project:
    """One temporary project (N environments or the shipped ones) and how to run each scenario in it."""

    def __init__(self, root: Path, label: str, names: list[str], env: dict[str, str]) -> None:
        self.root, self.label, self.names, self.env = root, label, names, env
        self.infragen = [sys.executable, "-m", "infragen"]

    def run(self, scenario: str) -> tuple[float, float, float]:
        out = self.root / "output"
        if scenario == "build from empty":
            shutil.rmtree(out, ignore_errors=True)
            return timed(self.infragen + ["build"], self.root, self.env)
        if scenario == "build, nothing changed":
            before = snapshot(out)
            result = timed(self.infragen + ["build"], self.root, self.env)
            if snapshot(out) != before:
                raise SystemExit(f"{self.label}: build with nothing changed rewrote files")
            return result
        if scenario == "check, up to date":
            return timed(self.infragen + ["check"], self.root, self.env)
        if scenario == "check, up to date, --no-cache":
            return timed(self.infragen + ["check", "--no-cache"], self.root, self.env)
        if scenario == "check, one env changed":
            path = self.root / "environments" / f"{self.names[len(self.names) // 2]}.yaml"
            original = path.read_text()
            path.write_text(original.replace("  namespace: ", "  namespace: changed-", 1))
            try:
                return timed(self.infragen + ["check"], self.root, self.env, expect=1)
            finally:
                path.write_text(original)
        if scenario == "validate":
            return timed(self.infragen + ["validate"], self.root, self.env)
        if scenario == "validate, --no-cache":
            return timed(self.infragen + ["validate", "--no-cache"], self.root, self.env)
        if scenario == "file-creation floor":
            copy = self.root / "output-copy"
            shutil.rmtree(copy, ignore_errors=True)
            try:
                return timed([sys.executable, "-c", COPY_TREE, "output", "output-copy"], self.root, self.env)
            finally:
                shutil.rmtree(copy, ignore_errors=True)
        raise ValueError(scenario)


def machine() -> dict[str, str]:
    info = {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "platform": platform.platform(), "cpus": str(os.cpu_count())}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Hypervisor vendor", "L2 cache", "L3 cache"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    from importlib.metadata import version

    for dist in ("pydantic", "pydantic-core", "pydantic-settings", "jinja2", "click", "pyyaml"):
        try:
            info[dist] = version(dist)
        except Exception:  # noqa: BLE001 - informational only
            pass
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    info["commit"] = commit.stdout.strip()
    return info


def bench(projects: list[Project], scenarios: dict[str, tuple[str, ...]], runs: int, floor_argv: list[str],
          env: dict[str, str], tmp: Path) -> dict[str, dict[str, list[tuple[float, float, float]]]]:
    samples: dict[str, dict[str, list]] = {p.label: {s: [] for s in scenarios[p.label]} for p in projects}
    samples[FLOOR] = {FLOOR: []}
    for round_ in range(runs + 1):  # round 0 warms caches (bytecode, page cache) and is discarded
        for project in projects:
            for scenario in scenarios[project.label]:
                if scenario.startswith(("check, up to date", "build, nothing changed")):
                    if not (project.root / "output").is_dir():
                        project.run("build from empty")
                result = project.run(scenario)
                if round_:
                    samples[project.label][scenario].append(result)
            floor = timed(floor_argv, tmp, env)
            if round_:
                samples[FLOOR][FLOOR].append(floor)
        print(f"  round {round_}/{runs} done", file=sys.stderr)
    return samples


def summarise(samples: dict[str, dict[str, list]], info: dict[str, str], runs: int) -> tuple[dict, str]:
    floor = statistics.median(w for w, _, _ in samples[FLOOR][FLOOR])
    rows, table = [], []
    for label, by_scenario in samples.items():
        for scenario, results in by_scenario.items():
            wall = statistics.median(w for w, _, _ in results)
            cpu = statistics.median(c for _, c, _ in results)
            rss = max(m for _, _, m in results)
            rows.append({"set": label, "scenario": scenario, "median_s": wall, "min_s": min(w for w, _, _ in results),
                         "cpu_s": cpu, "peak_rss_mib": rss, "x_floor": wall / floor, "runs": len(results)})
            table.append(f"| {label} | {scenario} | {wall * 1000:.0f} | {min(w for w, _, _ in results) * 1000:.0f} | "
                         f"{cpu * 1000:.0f} | {wall / floor:.2f} | {rss:.0f} |")
    header = ["| set | scenario | median ms | min ms | CPU ms (median) | x floor | peak RSS MiB |",
              "|---|---|---:|---:|---:|---:|---:|"]
    machine_lines = [f"- {k}: {v}" for k, v in info.items()]
    text = "\n".join(header + table) + f"\n\n{runs} timed runs per row (after one warm-up round).\n\n" + "\n".join(machine_lines)
    return {"machine": info, "runs": runs, "floor_median_s": floor, "rows": rows}, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--table", action="store_true", help="every scenario (see above) instead of the three ratios")
    parser.add_argument("--sizes", default=None, help="comma-separated numbers of environments [ratios: 1000; "
                        "--table: 3,100,1000]")
    parser.add_argument("--runs", type=int, default=None, help="timed runs per scenario, medians reported [ratios: 3 "
                        "pairs, 7 for check; --table: 7]")
    parser.add_argument("--no-shipped", action="store_true", help="skip `check` on the shipped environments")
    parser.add_argument("--keep", action="store_true", help="keep the temporary projects (path printed)")
    parser.add_argument("--tmpdir", default=None, help="where to make the projects (default: the system temp dir; "
                        "e.g. /dev/shm to leave the disk out)")
    args = parser.parse_args()
    sizes = [int(s) for s in (args.sizes or ("3,100,1000" if args.table else "1000")).split(",") if s.strip()]
    if not args.table:
        import ratios

        ratios.main(sizes, args.runs or 3, keep=args.keep)
        return
    args.runs = args.runs or 7

    tmp = Path(tempfile.mkdtemp(prefix="infragen-bench-", dir=args.tmpdir))
    env = child_env(tmp / "pycache")
    projects, scenarios = [], {}
    try:
        if not args.no_shipped:
            root = tmp / "shipped"
            root.mkdir()
            shutil.copytree(REPO / "environments", root / "environments")
            shutil.copytree(REPO / "output", root / "output")
            shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
            names = sorted(p.stem for p in (root / "environments").glob("[!_]*.yaml"))
            projects.append(Project(root, "shipped", names, env))
            scenarios["shipped"] = ("check, up to date", "check, up to date, --no-cache")
            # The same with the options in [tool.infragen], which brings in pydantic-settings to read them.
            configured = tmp / "shipped-configured"
            shutil.copytree(root, configured)
            with open(configured / "pyproject.toml", "a") as fh:
                fh.write('\n[tool.infragen]\nenvironments = "environments"\noutput = "output"\n')
            projects.append(Project(configured, "shipped + [tool.infragen]", names, env))
            scenarios["shipped + [tool.infragen]"] = ("check, up to date", "check, up to date, --no-cache")
        for n in sizes:
            root = tmp / f"n{n}"
            names = write_fleet(root, n)
            label = f"N={n}"
            projects.append(Project(root, label, names, env))
            scenarios[label] = SCENARIOS
        samples = bench(projects, scenarios, args.runs, [sys.executable, "-c", "import pydantic, jinja2, click, yaml"],
                        env, tmp)
        info = machine()
        fstype = subprocess.run(["stat", "-f", "-c", "%T", str(tmp)], capture_output=True, text=True).stdout.strip()
        info["projects in"] = f"{tmp.parent} ({fstype or 'unknown'} file system)"
        data, text = summarise(samples, info, args.runs)
        results = HERE / "results"
        results.mkdir(exist_ok=True)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        (results / f"{stamp}.json").write_text(json.dumps(data, indent=2) + "\n")
        (results / "latest.md").write_text(text + "\n")
        print(text)
        print(f"\nwritten: {results / (stamp + '.json')}", file=sys.stderr)
    finally:
        if args.keep:
            print(f"kept: {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
