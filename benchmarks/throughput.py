"""Training throughput: many seeds in one compiled call against a Python loop over steps.

For each model and seed count it measures, in one process:
  - the compile time of ``jit(vmap(train))`` (sharded over every device),
  - the steady-state throughput in seed-epochs per second (the best of ``--repeats`` timed
    calls after a first, untimed one; shared machines make single calls noisy),
  - the compiled program's memory (arguments, outputs and temporaries, from XLA),
and, as the baseline, the same model trained the way Keras and PyTorch train: a jitted update
called from a Python loop once per batch. Results go to ``benchmarks/results/<machine>.json``.

Usage: ``python benchmarks/throughput.py [--seeds 1 16 64 256] [--epochs 5] [--repeats 3]
[--models vanilla attention] [--cells simple gru lstm]``.
Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed call (5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls; the best counts (3)")
    parser.add_argument("--models", nargs="+", default=["vanilla", "attention"], help="poolings")
    parser.add_argument(
        "--cells", "--cell", nargs="+", default=["simple", "gru", "lstm"], help="recurrent cells"
    )
    parser.add_argument("--cpu-devices", type=int, default=None, help="default: one per core")
    parser.add_argument("--machine", default=None, help="name of the results file")
    return parser.parse_args()


def time_seeds(config, data, n_seeds: int, repeats: int) -> dict:
    """Compile time, steady-state throughput and program memory for one seed count."""
    import jax

    from fibjax.train import compile_seeds

    start = time.perf_counter()
    run = compile_seeds(config, data, list(range(n_seeds)))
    compile_s = time.perf_counter() - start
    jax.block_until_ready(run())  # first call pays one-off transfers
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(run())
        times.append(time.perf_counter() - start)
    run_s = min(times)
    memory = run.compiled.memory_analysis()
    program_bytes = memory.argument_size_in_bytes + memory.output_size_in_bytes
    program_bytes += memory.temp_size_in_bytes
    return {
        "seeds": n_seeds,
        "compile_s": compile_s,
        "run_s": run_s,
        "run_s_all": times,
        "seed_epochs_per_s": n_seeds * config.epochs / run_s,
        "program_mib": program_bytes / 2**20,
    }


def time_python_loop(config, data) -> dict:
    """One seed trained by a jitted update called once per batch from Python."""
    import jax
    import jax.numpy as jnp
    import optax

    from fibjax.models import make_model
    from fibjax.optim import make_optimizer

    model = make_model(config.model, config.hidden, cell=config.cell)
    optimizer = make_optimizer(config.optimizer, config.learning_rate)
    x, y = jnp.asarray(data.train_x, jnp.float32), jnp.asarray(data.train_y, jnp.float32)
    params = model.init(jax.random.key(0), x[:1])["params"]
    opt_state = optimizer.init(params)

    @jax.jit
    def update(params, opt_state, xb, yb):
        def loss(p):
            return jnp.mean(jnp.square(model.apply({"params": p}, xb) - yb))

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    def epoch(params, opt_state, order):
        for i in order:
            params, opt_state, _ = update(params, opt_state, x[i : i + 1], y[i : i + 1])
        return jax.block_until_ready((params, opt_state))

    order = range(x.shape[0])
    params, opt_state = epoch(params, opt_state, order[:5])  # compile
    start = time.perf_counter()
    epoch(params, opt_state, order)
    seconds = time.perf_counter() - start
    return {"epoch_s": seconds, "seed_epochs_per_s": 1 / seconds}


def machine_name(given: str | None) -> str:
    import jax

    if given:
        return given
    kind = jax.devices()[0].device_kind.replace(" ", "-").lower()
    return f"{jax.default_backend()}-{kind}-{os.cpu_count()}cores"


def cpu_name() -> str:
    """The processor's model name, as Linux reports it (benchmarks/NOTES.md says which CPU)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def print_table(rows: list[dict]) -> None:
    header = (
        "| cell | model | seeds | compile (s) | seed-epochs/s | × Python loop | program (MiB) |\n"
        "|---|---|---:|---:|---:|---:|---:|"
    )
    print(header)
    for r in rows:
        print(
            f"| {r['cell']} | {r['model']} | {r['seeds']} | {r['compile_s']:.2f}"
            f" | {r['seed_epochs_per_s']:,.0f}"
            f" | {r['speedup_vs_python_loop']:,.0f} | {r['program_mib']:.2f} |"
        )


def main() -> int:
    args = parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from fibjax import runtime

    runtime.configure(cache_dir=None, cpu_devices=args.cpu_devices)
    import jax

    from fibjax.data import fibonacci_windows
    from fibjax.train import TrainConfig

    data = fibonacci_windows()
    rows, baselines = [], {}
    for cell in args.cells:
        for model in args.models:
            config = TrainConfig(model, epochs=args.epochs, cell=cell)
            name = model if cell == "simple" else f"{cell}-{model}"
            baselines[name] = time_python_loop(config, data)
            for n_seeds in args.seeds:
                row = {"cell": cell, "model": model}
                row.update(time_seeds(config, data, n_seeds, args.repeats))
                row["speedup_vs_python_loop"] = (
                    row["seed_epochs_per_s"] / baselines[name]["seed_epochs_per_s"]
                )
                rows.append(row)
                print(
                    f"{cell} {model} {n_seeds} seeds: {row['seed_epochs_per_s']:,.0f}"
                    " seed-epochs/s",
                    file=sys.stderr,
                )
    record = {
        "machine": machine_name(args.machine),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "devices": runtime.device_description(),
        "jax": jax.__version__,
        "epochs_per_call": args.epochs,
        "repeats": args.repeats,
        "protocol": "826 training windows, t=20, batch size 1, keras_adam",
        "cpu": cpu_name(),
        "python_loop_baseline": baselines,
        "rows": rows,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{record['machine']}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print_table(rows)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
