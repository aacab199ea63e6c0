"""The shuffle's sort: ``fibjax.training.sorting.sort_numbers`` against ``jax.lax.sort``, in one
process.

Compiles ``fibjax.training.seeds.compile_seeds`` twice for the same model and seeds, once with the
shuffle sorting through :func:`fibjax.training.sorting.sort_numbers` (a sorting network under
``vmap`` on a CPU) and once through ``jax.lax.sort``; checks that both give the same bits and times
them interleaved, best of ``--repeats`` 5-epoch calls.

Usage: ``python benchmarks/shuffle_sort.py [--models vanilla attention] [--seeds 256]
[--cells simple] [--repeats 7]``. Not a test.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vanilla", "attention"])
    parser.add_argument("--cells", nargs="+", default=["simple"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[256])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cpu-devices", type=int, default=None, help="default: one per core")
    return parser.parse_args()


def compare(config, data, n_seeds: int, repeats: int) -> tuple[float, float, bool]:
    """Seed-epochs per second with the network and with ``jax.lax.sort``, and bit equality."""
    import jax
    import numpy as np

    from fibjax.training import program, program_cache
    from fibjax.training import seeds as seeds_lib

    # The training's own draws (program) and the orders drawn ahead (seeds) read it when traced.
    users = (program, seeds_lib)
    network = program.sort_numbers
    runs = {}
    for name, sort in (("network", network), ("lax.sort", jax.lax.sort)):
        for module in users:
            module.sort_numbers = sort
        program_cache.COMPILED.clear()
        runs[name] = seeds_lib.compile_seeds(config, data, range(n_seeds))
    for module in users:
        module.sort_numbers = network
    results = {name: jax.tree.leaves(run()) for name, run in runs.items()}
    same = all(map(np.array_equal, results["network"], results["lax.sort"]))
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            # Each call draws its orders: from the memo, a call would not sort at all.
            program_cache.ORDERS.clear()
            start = time.perf_counter()
            jax.block_until_ready(run())
            best[name] = min(best[name], time.perf_counter() - start)
    rate = {name: n_seeds * config.epochs / seconds for name, seconds in best.items()}
    return rate["network"], rate["lax.sort"], same


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import fibjax

    fibjax.configure(cpu_devices=args.cpu_devices or os.cpu_count(), no_cache=True)
    from fibjax.data import fibonacci_windows
    from fibjax.training.config import TrainConfig

    data = fibonacci_windows()
    for cell in args.cells:
        for model in args.models:
            for n_seeds in args.seeds:
                config = TrainConfig(model, epochs=args.epochs, cell=cell)
                new, old, same = compare(config, data, n_seeds, args.repeats)
                print(
                    f"{cell} {model} {n_seeds} seeds: network {new:,.0f}, lax.sort {old:,.0f}"
                    f" seed-epochs/s, {new / old:.3f}x; same bits: {same}"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
