"""fibjax against the hand-written C kernel (``../shared/limit/rnnlimit.c``), in one run.

Builds the kernel in a temporary folder (AVX-512 where the CPU has it, else AVX2), then for each
model alternates timed calls of the kernel and of fibjax's compiled training (the same seeds and
epochs), so that both see the same load. The kernel is a yardstick: the package does not use it
and the repository does not copy it. Results go to ``benchmarks/results/kernel-ratio-<cores>.json``.

Usage: ``python benchmarks/kernel_ratio.py [--kernel ../shared/limit/rnnlimit.c] [--seeds 256]
[--epochs 5] [--repeats 3]``. Not a test.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from throughput import Worker, commit_of, cpu_name, fail  # noqa: E402

RATE = re.compile(r"([\d.,]+)\s*seed-epochs", re.IGNORECASE)


def build(source: Path, into: Path) -> tuple[Path, str]:
    """The kernel compiled for this CPU, and which vector width it uses."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    wide = " avx512f" in flags
    width = ["-mprefer-vector-width=512", "-DVW=16"] if wide else ["-mprefer-vector-width=256"]
    width += [] if wide else ["-DVW=8"]
    binary = into / "rnnlimit"
    command = ["gcc", "-O3", "-march=native", "-ffast-math", "-fopenmp", "-DNB=4", *width]
    try:
        subprocess.run([*command, str(source), "-o", str(binary), "-lm"], check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        fail(f"cannot build {source}: {error}")
    return binary, "AVX-512" if wide else "AVX2"


def kernel_rate(binary: Path, model: str, seeds: int, epochs: int, threads: int) -> float:
    """Seed-epochs per second of one kernel call (its best of one)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = subprocess.run(
        [str(binary), model, str(seeds), str(epochs), "1"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    match = RATE.search(out)
    if match is None:
        fail(f"the kernel printed no rate: {out.strip()[-200:]}")
    return float(match.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel", type=Path, default=REPO.parent / "shared/limit/rnnlimit.c")
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    if not args.kernel.is_file():
        fail(f"{args.kernel}: no such file (the kernel is in the project's shared folder)")
    threads = os.cpu_count() or 1
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        binary, vectors = build(args.kernel, Path(folder))
        worker = Worker(REPO, None, "auto")
        try:
            for model in ("vanilla", "attention"):
                program = {"cell": "simple", "model": model, "epochs": args.epochs}
                worker.ask("compile", **program, seeds=args.seeds)
                ours, shared, theirs = [], [], []
                for _ in range(args.repeats):
                    timed = worker.ask("time")
                    ours.append(args.seeds * args.epochs / timed["run_s"])
                    shared.append(args.seeds * args.epochs / timed["shared_s"])
                    theirs.append(kernel_rate(binary, model, args.seeds, args.epochs, threads))
                rows.append(
                    {
                        "model": model,
                        "seeds": args.seeds,
                        "fibjax_seed_epochs_per_s": max(ours),
                        "kernel_seed_epochs_per_s": max(theirs),
                        "fibjax_all": ours,
                        "kernel_all": theirs,
                        "kernel_over_fibjax": max(theirs) / max(ours),
                        # Reading the orders of the windows a first model drew, as a comparison's
                        # second model does.
                        "fibjax_shared_seed_epochs_per_s": max(shared),
                        "fibjax_shared_all": shared,
                        "kernel_over_fibjax_shared": max(theirs) / max(shared),
                        # The best call of each can be one outlier; the medians are steadier.
                        "kernel_over_fibjax_medians": statistics.median(theirs)
                        / statistics.median(ours),
                        "kernel_over_fibjax_shared_medians": statistics.median(theirs)
                        / statistics.median(shared),
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
        finally:
            worker.close()
    record = {
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "kernel_vectors": vectors,
        "kernel_threads": threads,
        "epochs_per_call": args.epochs,
        "commit": commit_of("HEAD"),
        "rows": rows,
    }
    path = args.output or HERE / "results" / f"kernel-ratio-{os.cpu_count()}cores.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    for row in rows:
        print(
            f"{row['model']}: fibjax {row['fibjax_seed_epochs_per_s']:,.0f}, kernel"
            f" {row['kernel_seed_epochs_per_s']:,.0f} seed-epochs/s:"
            f" the kernel is {row['kernel_over_fibjax']:.2f}× fibjax"
            f" ({row['kernel_over_fibjax_shared']:.2f}× with the orders shared); by the medians"
            f" {row['kernel_over_fibjax_medians']:.2f}× and"
            f" {row['kernel_over_fibjax_shared_medians']:.2f}×"
        )
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
