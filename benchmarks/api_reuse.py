"""A second fit_seeds call against the first, in one process: what the compiled-program memo saves.

Usage: ``python benchmarks/api_reuse.py [--seeds 256] [--model attention]``. Run it twice with
``FIBJAX_CACHE_DIR`` set to one folder: the second process's first call shows what the caches save
across processes. Prints the seconds of each call and their ratio.
"""

from __future__ import annotations

import argparse
import time

import fibjax


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=256)
    parser.add_argument("--model", default="attention")
    args = parser.parse_args()
    runtime = fibjax.configure()
    from fibjax.data import fibonacci_windows
    from fibjax.training.config import TrainConfig
    from fibjax.training.seeds import fit_seeds

    data, config = fibonacci_windows(), TrainConfig(args.model)
    times = []
    for first_seed in (0, args.seeds):  # other seeds, same count: the same program
        start = time.perf_counter()
        fit_seeds(config, data, range(first_seed, first_seed + args.seeds), progress=False)
        times.append(time.perf_counter() - start)
    print(
        f"{args.model}, {args.seeds} seeds, {runtime.devices} devices, cache {runtime.cache_dir}:"
        f" first {times[0]:.2f} s, second {times[1]:.2f} s, ratio {times[0] / times[1]:.2f}"
    )


if __name__ == "__main__":
    main()
