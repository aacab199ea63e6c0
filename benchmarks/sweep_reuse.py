"""Compile reuse in sweeps: a sweep over scalings × learning rates against one grid point alone.

The target (issue 13): a sweep over 2 scalings × 4 learning rates (8 grid points, 16 model runs)
takes at most 2× the wall time of one of its grid points alone, both with the caches off. Both
are whole ``fibjax sweep`` commands in fresh processes (import, compile, train, report), run in
turn ``--repeats`` times; the best of each counts.

    python benchmarks/sweep_reuse.py [--seeds 32] [--epochs 30] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
ONE_POINT = ["--scaling", "minmax", "--learning-rate", "1e-3"]
GRID = ["--scaling", "minmax,log", "--learning-rate", "1e-3,3e-3,1e-2,3e-2"]
WORK = re.compile(r"trained (\d+) arm\(s\) with (\d+) compiled program\(s\): ([\d.]+) s compiling")


def run_sweep(grid: list[str], common: list[str], folder: Path) -> dict[str, float]:
    """Runs one ``fibjax sweep`` in a fresh process; its wall time and what it says it did."""
    command = [sys.executable, "-m", "fibjax", "sweep", *common, *grid, "--out", str(folder)]
    env = dict(os.environ, FIBJAX_CACHE_DIR="off")
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"fibjax sweep failed ({done.returncode}): {done.stderr[-2000:]}")
    arms, programs, compile_s = WORK.search(done.stderr).groups()
    return {
        "wall_s": wall,
        "arms": int(arms),
        "programs": int(programs),
        "compile_s": float(compile_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--cell", default="simple")
    parser.add_argument("--model", default="attention")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--machine", default=f"cpu-{os.cpu_count()}cores")
    args = parser.parse_args()
    common = ["--cell", args.cell, "--models", args.model, "--window", "20", "--no-cache"]
    common += ["--seeds", str(args.seeds), "--epochs", str(args.epochs)]
    best: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, grid in (("one_point", ONE_POINT), ("grid_2x4", GRID)):
                run = run_sweep(grid, common, Path(tmp) / f"{name}-{repeat}")
                print(f"{name}: {run}", flush=True)
                if name not in best or run["wall_s"] < best[name]["wall_s"]:
                    best[name] = run
    ratio = best["grid_2x4"]["wall_s"] / best["one_point"]["wall_s"]
    print(f"8 grid points / 1 grid point, wall time: {ratio:.2f}x (target <= 2)")
    record = {
        "machine": args.machine,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "settings": vars(args),
        "best": best,
        "ratio": ratio,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"sweep-reuse-{args.machine}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written to {path}")


if __name__ == "__main__":
    main()
