"""Compare two checkouts of infragen on the same fleet, runs interleaved, cold (`--no-cache`).

    git worktree add /tmp/infragen-main main
    python benchmarks/compare.py /tmp/infragen-main . --size 1000 --runs 5

Per round and checkout: `build --no-cache` into an empty output/ (every file created), then `check --no-cache`
on it (up to date). Rounds alternate which checkout goes first, so a slow minute on the machine hits both.
Prints the median wall time of each, its spread (min-max) and the ratio of the second to the first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fleet import write_fleet  # noqa: E402


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {proc.returncode}\n{proc.stderr.decode(errors='replace')[-2000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkouts", nargs=2, type=Path, help="two infragen checkouts: the reference, then the candidate")
    parser.add_argument("--size", type=int, default=1000, help="environments in the fleet [1000]")
    parser.add_argument("--runs", type=int, default=5, help="rounds [5]")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to write the fleet and output (e.g. /dev/shm: a RAM disk takes the disk's noise out "
                             "of `build`) [the system temporary directory]")
    args = parser.parse_args()
    checkouts = [c.resolve() for c in args.checkouts]
    work = Path(tempfile.mkdtemp(prefix="infragen-compare-", dir=args.dir))
    try:
        write_fleet(work, args.size)
        (work / "pyproject.toml").unlink(missing_ok=True)
        times: dict[tuple[int, str], list[float]] = {}
        for round_ in range(args.runs):
            order = [0, 1] if round_ % 2 == 0 else [1, 0]
            for i in order:
                env = dict(os.environ, PYTHONPATH=str(checkouts[i]), XDG_CACHE_HOME=str(work / f"cache-{i}"),
                           PYTHONPYCACHEPREFIX=str(work / f"pycache-{i}"))
                env = {k: v for k, v in env.items() if not k.startswith("INFRAGEN_") and k != "PYTHONDONTWRITEBYTECODE"}
                shutil.rmtree(work / "output", ignore_errors=True)
                command = [sys.executable, "-m", "infragen"]
                times.setdefault((i, "build"), []).append(timed(command + ["build", "--no-cache"], work, env))
                times.setdefault((i, "check"), []).append(timed(command + ["check", "--no-cache"], work, env))
        print(f"N={args.size}, {args.runs} interleaved runs, wall seconds: median (min-max)")
        for what in ("build", "check"):
            medians = []
            for i, checkout in enumerate(checkouts):
                runs = times[(i, what)]
                medians.append(statistics.median(runs))
                print(f"  {what:5} --no-cache  {checkout}: {medians[-1]:.3f} ({min(runs):.3f}-{max(runs):.3f})")
            print(f"  {what:5} ratio (second / first): {medians[1] / medians[0]:.3f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
