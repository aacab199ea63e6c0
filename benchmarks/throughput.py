"""Training throughput: many seeds in one compiled call against a Python loop over steps.

For each model and seed count it measures:
  - the compile time of the seeds' training (``fibjax.training.seeds.compile_seeds``, sharded over
    every device): the best of ``--compiles`` compilations from scratch (JAX's in-process caches
    cleared before each), whole and its XLA part (``fibjax.training.program.compile_program``); the
    rest is tracing and lowering. The training program is then compiled once more alone on the
    cores (``xla_training_alone_s``): beside it the programs a model also compiles share them,
  - the steady-state throughput in seed-epochs per second (the best of ``--repeats`` timed
    calls after a first, untimed one; shared machines make single calls noisy), each call
    drawing its seeds' orders of the windows, and again reading orders drawn before
    (``shared_seed_epochs_per_s``: what a comparison's or a sweep's other models see),
  - the compiled program's memory (arguments, outputs and temporaries, from XLA),
and, as the baseline, the same model trained the way Keras and PyTorch train: a jitted update
called from a Python loop once per batch. Results go to ``benchmarks/results/<machine>.json``.

With ``--baseline REF`` the code of git commit ``REF`` is measured in the same run: each version
runs in a process of its own (two versions of a package cannot share one), both compile the same
program, and their timed calls alternate, so that the ratio of the two is not the drift of a shared
machine between two runs.

Usage: ``python benchmarks/throughput.py [--seeds 1 16 64 256] [--epochs 5] [--repeats 3]
[--models vanilla attention] [--cells simple gru lstm] [--compiles 3] [--baseline REF]``.
Not a test.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import NoReturn

RESULTS = Path(__file__).parent / "results"
REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed call (5)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls; the best counts (3)")
    parser.add_argument(
        "--compiles", type=int, default=3, help="compilations of each program; the best counts (3)"
    )
    parser.add_argument("--models", nargs="+", default=["vanilla", "attention"], help="poolings")
    parser.add_argument(
        "--cells", "--cell", nargs="+", default=["simple", "gru", "lstm"], help="recurrent cells"
    )
    parser.add_argument("--cpu-devices", type=int, default=None, help="default: one per core")
    parser.add_argument("--machine", default=None, help="name of the results file")
    parser.add_argument(
        "--layout",
        choices=("auto", "cpu", "accelerator"),
        default="auto",
        help="the training program's layout (auto: the platform's; older versions: theirs)",
    )
    parser.add_argument("--output", type=Path, default=None, help="the results file (JSON)")
    parser.add_argument(
        "--baseline",
        metavar="REF",
        default=None,
        help="also measure fibjax as of git commit REF, interleaved, for the ratio",
    )
    parser.add_argument("--worker", metavar="ROOT", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the worker: one version of fibjax in one process, answering one JSON line per request ---


# Where each piece lives: fibjax in layers (issue 27), and the flat package before it, so that
# ``--baseline`` can measure a commit of either layout.
LAYOUTS = (
    {
        "runtime": "fibjax.training.runtime",
        "config": "fibjax.training.config",
        "seeds": "fibjax.training.seeds",
        "program_cache": "fibjax.training.program_cache",
        "optim": "fibjax.training.optim",
    },
    {
        "runtime": "fibjax.runtime",
        "config": "fibjax.train",
        "seeds": "fibjax.train",
        "program_cache": "fibjax.program_cache",
        "optim": "fibjax.optim",
    },
)


def fibjax_modules() -> dict:
    """The modules of the fibjax on ``sys.path``, by role, in whichever layout it has."""
    import importlib
    import importlib.util

    for layout in LAYOUTS:
        if importlib.util.find_spec(layout["runtime"].rpartition(".")[0] or "fibjax") is None:
            continue
        try:
            return {role: importlib.import_module(name) for role, name in layout.items()}
        except ModuleNotFoundError:
            continue
    raise RuntimeError("no known layout of fibjax's modules")


class Measurer:
    """Compiles and times the programs of the fibjax found at ``root``."""

    def __init__(self, root: str, cpu_devices: int | None, layout: str = "auto") -> None:
        sys.path.insert(0, root)
        import fibjax

        if not Path(fibjax.__file__).resolve().is_relative_to(Path(root).resolve()):
            raise RuntimeError(f"imported {fibjax.__file__}, not the fibjax in {root}")
        from fibjax.data import fibonacci_windows

        self.modules = fibjax_modules()
        self.modules["runtime"].configure(cache_dir=None, cpu_devices=cpu_devices)
        self.data = fibonacci_windows()
        self.run = None
        # Versions from before the layouts (issue 28) take no keyword: "auto" is their program.
        self.layout = {} if layout == "auto" else {"layout": layout}

    def config(self, cell: str, model: str, epochs: int):
        return self.modules["config"].TrainConfig(model, epochs=epochs, cell=cell)

    def describe(self) -> dict:
        import jax

        return {"devices": self.modules["runtime"].device_description(), "jax": jax.__version__}

    def compile(self, cell: str, model: str, epochs: int, seeds: int) -> dict:
        """Compiles the training of ``seeds`` seeds from scratch and calls it once, untimed."""
        import jax

        # compile_seeds looks compile_program up in its own module, which is patched below.
        seeds_module = self.modules["seeds"]

        # A compilation from scratch: neither this process's memo of compiled programs nor
        # JAX's caches of traced functions may answer it. (Versions from before the memo have
        # none to clear.)
        for name in ("COMPILED", "INITIALS"):
            memo = getattr(self.modules["program_cache"], name, None)
            if memo is not None:
                memo.clear()
        jax.clear_caches()
        # The training and orders programs are compiled in compile_seeds's module, the initial
        # weights' program (versions that draw them ahead) in its own; newer versions compile
        # them at once, in threads. The training program is the one that returns parameters.
        timings = {"training": [], "orders": [], "initial": []}
        training_programs = []
        patched = {"seeds": seeds_module}
        if importlib.util.find_spec("fibjax.training.initial") is not None:
            patched["initial"] = importlib.import_module("fibjax.training.initial")
        originals = {name: module.compile_program for name, module in patched.items()}

        def timed(name):
            def compile_timed(lowered, platform):
                start = time.perf_counter()
                compiled = originals[name](lowered, platform)
                kind = name
                if name == "seeds":
                    kind = "training" if hasattr(lowered.out_info, "params") else "orders"
                timings[kind].append(time.perf_counter() - start)
                if kind == "training":
                    training_programs.append((lowered, platform))
                return compiled

            return compile_timed

        for name, module in patched.items():
            module.compile_program = timed(name)
        try:
            start = time.perf_counter()
            self.run = seeds_module.compile_seeds(
                self.config(cell, model, epochs), self.data, list(range(seeds)), **self.layout
            )
            compile_s = time.perf_counter() - start
        finally:
            for name, module in patched.items():
                module.compile_program = originals[name]
        # The training program compiled once more, alone on the cores: its XLA time above is
        # measured while the programs beside it compile on the same cores.
        alone = []
        for lowered, target in training_programs:
            jax.clear_caches()  # JAX keeps the executable of a lowered program it compiled
            start = time.perf_counter()
            originals["seeds"](lowered, target)
            alone.append(time.perf_counter() - start)
        jax.block_until_ready(self.run())  # the first call pays one-off transfers
        memory = self.run.compiled.memory_analysis()
        program_bytes = memory.argument_size_in_bytes + memory.output_size_in_bytes
        program_bytes += memory.temp_size_in_bytes
        return {
            "compile_s": compile_s,
            # Each program's compile time; where they compile at once, they share the cores.
            "xla_s": sum(sum(times) for times in timings.values()),
            "xla_training_s": sum(timings["training"]),
            "xla_initial_s": sum(timings["initial"]),
            "xla_training_alone_s": sum(alone),
            "program_mib": program_bytes / 2**20,
        }

    def time(self) -> dict:
        """One call of the last compiled program, in seconds: ``run_s`` drawing the seeds'
        orders of the windows, ``shared_s`` reading those a first model drew (as a comparison's
        second model does; the same as ``run_s`` for versions that draw them in the program)."""
        import jax

        orders = getattr(self.modules["program_cache"], "ORDERS", None)
        if orders is not None:
            orders.clear()
        start = time.perf_counter()
        jax.block_until_ready(self.run())
        run_s = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(self.run())
        return {"run_s": run_s, "shared_s": time.perf_counter() - start}

    def python_loop(self, cell: str, model: str) -> dict:
        """One seed trained by a jitted update called once per batch from Python."""
        import jax
        import jax.numpy as jnp
        import optax

        from fibjax.models import make_model

        make_optimizer = self.modules["optim"].make_optimizer
        config = self.config(cell, model, 1)
        model = make_model(config.model, config.hidden, cell=config.cell)
        optimizer = make_optimizer(config.optimizer, config.learning_rate)
        x = jnp.asarray(self.data.train_x, jnp.float32)
        y = jnp.asarray(self.data.train_y, jnp.float32)
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

    def peak_rss(self) -> dict:
        return {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def serve(root: str, cpu_devices: int | None, layout: str) -> int:
    """The worker's loop: a request ``{"do": name, **arguments}`` per line in, a result out."""
    measurer = Measurer(root, cpu_devices, layout)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        result = getattr(measurer, request.pop("do"))(**request)
        print(json.dumps(result), flush=True)
    return 0


class Worker:
    """A worker process measuring the fibjax at ``root``."""

    def __init__(self, root: Path, cpu_devices: int | None, layout: str) -> None:
        command = [sys.executable, __file__, "--worker", str(root), "--layout", layout]
        if cpu_devices is not None:
            command += ["--cpu-devices", str(cpu_devices)]
        # The worker's own directory must not shadow the version under test.
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root
        )
        self.ask_raw()

    def ask_raw(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            fail(f"the worker measuring {self.process.args[3]} stopped")
        return json.loads(line)

    def ask(self, do: str, **arguments) -> dict:
        self.process.stdin.write(json.dumps({"do": do, **arguments}) + "\n")
        self.process.stdin.flush()
        return self.ask_raw()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


# --- the driver ---


def fail(message: str) -> NoReturn:
    """One line on standard error and exit status 2."""
    print(f"throughput.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def checkout(ref: str, into: Path) -> Path:
    """The package ``fibjax/`` as of git commit ``ref``, written under ``into``."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", ref, "fibjax"],
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        stderr = getattr(error, "stderr", b"") or b""
        reason = stderr.decode().strip().splitlines()[-1:] or [str(error)]
        fail(f"cannot read --baseline {ref}: {reason[0]}")
    # Pythons before 3.10.12 have no extraction filters; the archive is this repository's own.
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, **safe)
    return into


def git(*arguments: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *arguments], capture_output=True, text=True)
    return done.stdout.strip()


def commit_of(ref: str, working_tree: bool = True) -> str:
    """``ref``'s short hash; for ``HEAD`` measured from the working tree (``working_tree``),
    with ``+changes`` when the package has edits. A baseline is checked out clean: no mark."""
    commit = git("rev-parse", "--short", ref) or ref
    if working_tree and ref == "HEAD" and git("status", "--porcelain", "--", "fibjax"):
        commit += "+changes"
    return commit


def measure_row(workers: dict[str, Worker], args, cell: str, model: str, seeds: int) -> dict:
    """One row: every version compiles the program, then their timed calls alternate."""
    names = list(workers)
    if seeds % 2:  # alternate which version goes first, row by row
        names.reverse()
    program = {"cell": cell, "model": model, "epochs": args.epochs, "seeds": seeds}
    compiles = {name: [] for name in names}
    for repeat in range(args.compiles):
        for name in names if repeat % 2 == 0 else names[::-1]:
            compiles[name].append(workers[name].ask("compile", **program))
    times = {name: [] for name in names}
    shared = {name: [] for name in names}
    for repeat in range(args.repeats):
        for name in names if repeat % 2 == 0 else names[::-1]:
            timed = workers[name].ask("time")
            times[name].append(timed["run_s"])
            shared[name].append(timed["shared_s"])
    row = {"cell": cell, "model": model, "seeds": seeds}
    for name in names:
        prefix = "" if name == "new" else "baseline_"
        run_s = min(times[name])
        fastest = min(compiles[name], key=lambda c: c["compile_s"])
        row.update(
            {
                f"{prefix}compile_s": fastest["compile_s"],
                f"{prefix}xla_compile_s": fastest["xla_s"],
                f"{prefix}xla_training_s": fastest.get("xla_training_s", fastest["xla_s"]),
                f"{prefix}xla_initial_s": fastest.get("xla_initial_s", 0.0),
                f"{prefix}xla_training_alone_s": min(
                    c.get("xla_training_alone_s", c["xla_s"]) for c in compiles[name]
                ),
                f"{prefix}compile_s_all": [c["compile_s"] for c in compiles[name]],
                f"{prefix}run_s": run_s,
                f"{prefix}run_s_all": times[name],
                f"{prefix}seed_epochs_per_s": seeds * args.epochs / run_s,
                f"{prefix}shared_s_all": shared[name],
                f"{prefix}shared_seed_epochs_per_s": seeds * args.epochs / min(shared[name]),
                f"{prefix}program_mib": fastest["program_mib"],
            }
        )
    if "baseline" in workers:
        row["ratio"] = row["seed_epochs_per_s"] / row["baseline_seed_epochs_per_s"]
        row["shared_ratio"] = (
            row["shared_seed_epochs_per_s"] / row["baseline_shared_seed_epochs_per_s"]
        )
    return row


def machine_name(given: str | None, devices: dict) -> str:
    if given:
        return given
    kind = str(devices["device_kind"]).replace(" ", "-").lower()
    return f"{devices['backend']}-{kind}-{os.cpu_count()}cores"


def cpu_name() -> str:
    """The processor's model name, as Linux reports it (benchmarks/NOTES.md says which CPU)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _xla(row: dict, prefix: str) -> str:
    """XLA's compile time: the training program's, ``+`` the orders program's and the initial
    weights' program's where there are those."""
    whole, training = row[f"{prefix}xla_compile_s"], row[f"{prefix}xla_training_s"]
    initial = row.get(f"{prefix}xla_initial_s", 0.0)
    orders = whole - training - initial
    parts = [training] + [s for s in (orders, initial) if s > 0.005]
    return " + ".join(f"{s:.2f}" for s in parts)


def print_table(rows: list[dict]) -> None:
    ratio = "ratio" in rows[0]
    extra = " | previous | × previous | previous compile (s)" if ratio else ""
    print(
        "| cell | model | seeds | compile (s): all (XLA: training + orders + initial weights)"
        " | seed-epochs/s"
        " | × Python loop"
        " | program (MiB)"
        f"{extra} |\n|---|---|---:|---:|---:|---:|---:{'|---:|---:|---:' if ratio else ''}|"
    )
    for r in rows:
        line = (
            f"| {r['cell']} | {r['model']} | {r['seeds']}"
            f" | {r['compile_s']:.2f} ({_xla(r, '')})"
            f" | {r['seed_epochs_per_s']:,.0f}"
            f" | {r['speedup_vs_python_loop']:,.0f} | {r['program_mib']:.2f}"
        )
        if ratio:
            line += (
                f" | {r['baseline_seed_epochs_per_s']:,.0f} | {r['ratio']:.2f}"
                f" | {r['baseline_compile_s']:.2f} ({_xla(r, 'baseline_')})"
            )
        print(line + " |")


def print_alone(rows: list[dict]) -> None:
    """The training programs' XLA times compiled alone, over the baseline's, row by row."""
    ratios = [r["xla_training_alone_s"] / r["baseline_xla_training_alone_s"] for r in rows]
    print(
        "\ntraining program compiled alone, over the previous commit's:"
        f" {min(ratios):.2f}-{max(ratios):.2f} (median {statistics.median(ratios):.2f}):"
        + ",".join(
            f" {r['cell']} {r['model']} {r['seeds']} {q:.2f}"
            for r, q in zip(rows, ratios, strict=True)
        )
    )


def run_rows(workers: dict[str, Worker], args) -> tuple[list[dict], dict]:
    rows, loops = [], {}
    for cell in args.cells:
        for model in args.models:
            name = model if cell == "simple" else f"{cell}-{model}"
            loops[name] = workers["new"].ask("python_loop", cell=cell, model=model)
            for seeds in args.seeds:
                row = measure_row(workers, args, cell, model, seeds)
                row["speedup_vs_python_loop"] = (
                    row["seed_epochs_per_s"] / loops[name]["seed_epochs_per_s"]
                )
                rows.append(row)
                versus = (
                    f" (previous {row['baseline_seed_epochs_per_s']:,.0f})"
                    if "ratio" in row
                    else ""
                )
                print(
                    f"{cell} {model} {seeds} seeds: {row['seed_epochs_per_s']:,.0f}"
                    f" seed-epochs/s{versus}",
                    file=sys.stderr,
                )
    return rows, loops


def main() -> int:
    args = parse_args()
    if min(args.repeats, args.compiles, args.epochs, *args.seeds) < 1:
        fail("--repeats, --compiles, --epochs and --seeds take positive numbers")
    if args.worker:
        return serve(args.worker, args.cpu_devices, args.layout)
    with tempfile.TemporaryDirectory() as scratch:
        roots = {"new": REPO}
        if args.baseline:
            roots["baseline"] = checkout(args.baseline, Path(scratch))
        workers = {
            name: Worker(root, args.cpu_devices, args.layout) for name, root in roots.items()
        }
        try:
            described = workers["new"].ask("describe")
            rows, loops = run_rows(workers, args)
            rss = {name: worker.ask("peak_rss")["peak_rss_mib"] for name, worker in workers.items()}
        finally:
            for worker in workers.values():
                worker.close()
    record = {
        "machine": machine_name(args.machine, described["devices"]),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "devices": described["devices"],
        "jax": described["jax"],
        "epochs_per_call": args.epochs,
        "repeats": args.repeats,
        "compiles": args.compiles,
        "layout": args.layout,
        "protocol": "826 training windows, t=20, batch size 1, keras_adam",
        "cpu": cpu_name(),
        "commit": commit_of("HEAD"),
        "python_loop_baseline": loops,
        "rows": rows,
        "peak_rss_mib": rss["new"],
    }
    if args.baseline:
        record["baseline"] = {"ref": args.baseline, "commit": commit_of(args.baseline, False)}
        record["baseline_peak_rss_mib"] = rss["baseline"]
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.output or RESULTS / f"{record['machine']}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print_table(rows)
    if args.baseline:
        print_alone(rows)
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
