"""The three ratios of `python benchmarks/run.py` (its docstring says what each measures and how)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from fleet import write_fleet  # noqa: E402

IMPORT_FLOOR = "import pydantic, jinja2, click, yaml"
TARGETS = {"build": 1.5, "peak": 120.0, "check": 2.0}
# Runs infragen's CLI and, when it ends, writes the peak RSS (KiB) of this process and of its largest waited-for
# child (a worker) to the file named by INFRAGEN_BENCH_PEAKS: the two are read apart, the target holding for each.
PEAKS = """\
import os, resource, sys
def _peaks():
    with open(os.environ["INFRAGEN_BENCH_PEAKS"], "w") as fh:
        fh.write(f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss} "
                 f"{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")
sys.argv[0] = "infragen"
try:
    from infragen.cli import main
    main()
finally:
    _peaks()
"""


def child_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFRAGEN_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPYCACHEPREFIX=str(work / "pycache"), PYTHONPATH=str(REPO), XDG_CACHE_HOME=str(work / "cache"))
    return env


def timed(argv: list[str], cwd: Path, env: dict[str, str], expect: int = 0) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != expect:
        raise SystemExit(f"{' '.join(argv)} in {cwd}: exit {proc.returncode}\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return wall


def paired(a: Callable[[], float], b: Callable[[], float], runs: int) -> tuple[list[float], list[float]]:
    """`runs` timings of each, alternating which goes first; one warm-up pair first, not counted."""
    a(), b()
    times_a, times_b = [], []
    for i in range(runs):
        if i % 2:
            times_b.append(b())
            times_a.append(a())
        else:
            times_a.append(a())
            times_b.append(b())
    return times_a, times_b


def ratio(times_a: list[float], times_b: list[float]) -> float:
    return statistics.median(x / y for x, y in zip(times_a, times_b, strict=True))


def build_vs_copy(root: Path, n: int, runs: int, env: dict[str, str]) -> dict[str, float]:
    """build --no-cache into an empty output/ against `cp -r` (and shutil.copytree) of that output/."""
    names = write_fleet(root, n)
    assert names
    infragen = [sys.executable, "-c", PEAKS, "build", "--no-cache"]
    peaks_file = root / "peaks"
    peaks: list[tuple[float, float]] = []

    def build() -> float:
        shutil.rmtree(root / "output", ignore_errors=True)
        wall = timed(infragen, root, {**env, "INFRAGEN_BENCH_PEAKS": str(peaks_file)})
        parent, child = (int(x) / 1024 for x in peaks_file.read_text().split())
        peaks.append((parent, child))
        return wall

    def copy(argv: list[str]) -> Callable[[], float]:
        def run() -> float:
            shutil.rmtree(root / "copy", ignore_errors=True)
            try:
                return timed(argv, root, env)
            finally:
                shutil.rmtree(root / "copy", ignore_errors=True)
        return run

    cp = copy(["cp", "-r", "output", "copy"])
    copytree = copy([sys.executable, "-c", "import shutil; shutil.copytree('output', 'copy')"])
    build_times, cp_times = paired(build, cp, runs)
    copytree_times = [copytree() for _ in range(runs)]
    files = sum(1 for p in (root / "output").rglob("*") if p.is_file())
    return {"build_s": statistics.median(build_times), "cp_s": statistics.median(cp_times),
            "copytree_s": statistics.median(copytree_times), "ratio_cp": ratio(build_times, cp_times),
            "parent_mib": max(p for p, _ in peaks), "worker_mib": max(c for _, c in peaks), "files": files}


def cold_check(root: Path, runs: int, env: dict[str, str]) -> dict[str, float]:
    """check --no-cache on the shipped environments against the import floor, run in turn: with infragen's
    compiled templates kept from the warm-up (as the issue measured it: only the result cache is off), and
    with an empty cache directory each time (nothing cached but bytecode: a clean clone in CI)."""
    for part in ("environments", "output"):
        shutil.copytree(REPO / part, root / part)
    argv = [sys.executable, "-m", "infragen", "check", "--no-cache"]
    counter = [0]

    def check() -> float:
        return timed(argv, root, env)

    def check_empty_cache() -> float:
        counter[0] += 1
        return timed(argv, root, {**env, "XDG_CACHE_HOME": str(root / f"cache-{counter[0]}")})

    def floor() -> float:
        return timed([sys.executable, "-c", IMPORT_FLOOR], root, env)

    check(), check_empty_cache(), floor()  # warm-up: bytecode, compiled templates, page cache
    times: dict[str, list[float]] = {"check": [], "empty": [], "floor": []}
    order = [("check", check), ("floor", floor), ("empty", check_empty_cache)]
    for i in range(runs):
        for name, run in order if i % 2 == 0 else order[::-1]:
            times[name].append(run())
    return {"check_s": statistics.median(times["check"]), "empty_s": statistics.median(times["empty"]),
            "floor_s": statistics.median(times["floor"]), "ratio": ratio(times["check"], times["floor"]),
            "ratio_empty": ratio(times["empty"], times["floor"])}


def report(sizes: list[int], runs: int, places: dict[str, Path], keep: bool) -> str:
    lines = ["| what | N | measured | floor | ratio or value | target |", "|---|---:|---:|---:|---:|---:|"]
    for n in sizes:
        for label, base in places.items():
            work = Path(tempfile.mkdtemp(prefix=f"infragen-ratios-{n}-", dir=base))
            try:
                r = build_vs_copy(work / "project", n, runs, child_env(work))
            finally:
                if not keep:
                    shutil.rmtree(work, ignore_errors=True)
            lines.append(f"| build from empty / `cp -r`, {label} | {n} | {r['build_s']:.2f} s | {r['cp_s']:.2f} s "
                         f"(copytree {r['copytree_s']:.2f} s; {r['files']} files) | **{r['ratio_cp']:.2f}x** | "
                         f"<= {TARGETS['build']}x |")
            lines.append(f"| peak memory of that build, {label} | {n} | parent {r['parent_mib']:.0f} MiB, largest worker "
                         f"{r['worker_mib']:.0f} MiB | | **{max(r['parent_mib'], r['worker_mib']):.0f} MiB** | "
                         f"<= {TARGETS['peak']:.0f} MiB |")
            print(f"  N={n} {label} done", file=sys.stderr)
    work = Path(tempfile.mkdtemp(prefix="infragen-ratios-check-"))
    try:
        c = cold_check(work / "project", max(runs, 7), child_env(work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    lines.append(f"| cold `check` (`--no-cache`) / import floor | 3 | {c['check_s'] * 1000:.0f} ms | "
                 f"{c['floor_s'] * 1000:.0f} ms | **{c['ratio']:.2f}x** | <= {TARGETS['check']}x |")
    lines.append(f"| the same, empty cache directory (templates compiled too) | 3 | {c['empty_s'] * 1000:.0f} ms | "
                 f"{c['floor_s'] * 1000:.0f} ms | {c['ratio_empty']:.2f}x | |")
    return "\n".join(lines)


def main(sizes: list[int], runs: int, keep: bool = False) -> None:
    places = {"disk": Path(tempfile.gettempdir())}
    if os.path.isdir("/dev/shm"):
        places["RAM disk"] = Path("/dev/shm")
    fstypes = {label: subprocess.run(["stat", "-f", "-c", "%T", str(p)], capture_output=True, text=True).stdout.strip()
               for label, p in places.items()}
    text = report(sizes, runs, places, keep)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    print(text)
    print(f"\n{runs} pairs per row (after one warm-up pair), medians; commit {commit}, {os.cpu_count()} CPUs, "
          + ", ".join(f"{label}: {places[label]} ({fstypes[label]})" for label in places) + ".")
