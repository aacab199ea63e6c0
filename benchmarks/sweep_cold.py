"""A sweep from cold (no compilation cache), one commit against another, in one run.

Each version runs ``python -m fibjax sweep ARGS`` in a process of its own with every cache off
(``FIBJAX_CACHE_DIR=off``, no JAX compilation cache), from a checkout of its package; the runs
alternate between the versions. For each run it records the wall time and what the sweep says
of its work (arms, programs, seconds compiling and training, programs compiled at once).
Results go to ``benchmarks/results/sweep-cold-<machine>.json``.

Usage: ``python benchmarks/sweep_cold.py [--baseline REF] [--repeats 1] [-- SWEEP ARGS...]``
(default: the default sweep against ``HEAD``). Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from throughput import checkout, commit_of, cpu_name  # noqa: E402

WORK = re.compile(
    r"trained (\d+) arms? with (\d+) compiled programs?(?:, (\d+) at a time)?:"
    r" ([\d.]+) s compiling(?: \(([\d.]+) s waited for\))?, ([\d.]+) s training"
)


def run_once(root: Path, sweep_args: list[str], scratch: Path) -> dict:
    """One cold sweep of the fibjax in ``root``; its wall time and work line."""
    out = Path(tempfile.mkdtemp(dir=scratch))
    env = dict(
        os.environ,
        PYTHONPATH=str(root),
        FIBJAX_CACHE_DIR="off",
        JAX_ENABLE_COMPILATION_CACHE="false",
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "fibjax", "sweep", *sweep_args, "--out", str(out / "sweep")],
        capture_output=True,
        text=True,
        env=env,
        cwd=scratch,
    )
    wall = time.perf_counter() - start
    match = WORK.search(done.stderr)
    if done.returncode != 0 or match is None:
        tail = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise SystemExit(f"sweep_cold.py: the sweep of {root} failed: {tail}")
    arms, programs, at_once, compile_s, wait_s, train_s = match.groups()
    return {
        "wall_s": wall,
        "arms": int(arms),
        "programs": int(programs),
        "compiled_at_once": int(at_once or 1),
        "compile_s": float(compile_s),
        "waited_for_programs_s": None if wait_s is None else float(wait_s),
        "train_s": float(train_s),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="HEAD", metavar="REF", help="the other commit")
    parser.add_argument("--repeats", type=int, default=1, help="cold runs of each version")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("sweep_args", nargs=argparse.REMAINDER, help="-- then sweep options")
    args = parser.parse_args()
    sweep_args = [a for a in args.sweep_args if a != "--"]
    runs: dict[str, list[dict]] = {"new": [], "baseline": []}
    with tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        roots = {"new": HERE.parent, "baseline": checkout(args.baseline, scratch / "baseline")}
        for repeat in range(args.repeats):
            order = ["baseline", "new"] if repeat % 2 == 0 else ["new", "baseline"]
            for name in order:
                runs[name].append(run_once(roots[name], sweep_args, scratch))
                print(f"{name}: {json.dumps(runs[name][-1])}", file=sys.stderr)
    best = {name: min(r["wall_s"] for r in rows) for name, rows in runs.items()}
    # The machine's speed moves between runs: the medians say more than the best runs alone.
    median = {name: statistics.median(r["wall_s"] for r in rows) for name, rows in runs.items()}
    record = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "sweep_args": sweep_args,
        "commit": commit_of("HEAD"),
        "baseline": {"ref": args.baseline, "commit": commit_of(args.baseline, False)},
        "runs": runs,
        "wall_ratio_new_to_baseline": best["new"] / best["baseline"],
        "wall_ratio_by_medians": median["new"] / median["baseline"],
    }
    machine = f"{os.cpu_count()}cores"
    path = args.output or HERE / "results" / f"sweep-cold-{machine}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(
        f"wall: new {best['new']:.1f} s, baseline {best['baseline']:.1f} s at best"
        f" ({best['new'] / best['baseline']:.3f}); medians {median['new']:.1f} s and"
        f" {median['baseline']:.1f} s ({median['new'] / median['baseline']:.3f}); written to {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
