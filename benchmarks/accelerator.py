"""One prepared check of fibjax on an accelerator, written to one JSON file.

Meant for a GPU machine with no network (the project's device runs: about 8 minutes on one H200).
Each part is timed and written to the JSON as soon as it ends, so a run cut short keeps what it
measured; a part that fails records its error in one line and the next part runs.

Parts:
  ``throughput``: ``benchmarks/throughput.py`` rows for the simple cell (both models) at 1,
    1,024, 16,384, 65,536 and 262,144 seeds, and the gated cells at 16,384;
  ``plain``: the plain-JAX program (``benchmarks/plain_jax.py``) at the same seed counts;
  ``steps``: the accelerator program with 1, 2 and 4 training steps per iteration of its step
    loop, at 16,384 seeds;
  ``comparison``: the README's default comparison (``python -m fibjax compare``), its wall time
    and verdict, on the accelerator and on the machine's CPU;
  ``drift``: from Keras's starting weights, the CPU program on the CPU against the accelerator
    program on the accelerator, after 1, 10, 30 and 826 unshuffled batch-1 steps (largest
    absolute difference of any weight);
  ``tests``: the tests that run on the accelerator (``tests/training/test_accelerator_*.py``, slow
    ones included), or the whole suite with ``--full-suite``.

Without an accelerator, ``--small`` runs every part on the CPU at small counts (the accelerator
program forced there), to show that the script works.

Usage: ``PYTHONPATH=$PWD XLA_PYTHON_CLIENT_PREALLOCATE=false python benchmarks/accelerator.py
[--small] [--parts ...] [--output FILE]``. Not a test.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PARTS = ("throughput", "plain", "steps", "comparison", "drift", "tests")
ACCELERATOR_TESTS = sorted((REPO / "tests" / "training").glob("test_accelerator_*.py"))


@dataclasses.dataclass(frozen=True)
class Counts:
    """The sizes a run measures at."""

    simple_seeds: tuple[int, ...]
    gated_seeds: int
    steps_seeds: int
    epochs: int
    drift_steps: tuple[int, ...]


FULL = Counts((1, 1024, 16384, 65536, 262144), 16384, 16384, 2, (1, 10, 30, 826))
SMALL = Counts((1, 64, 256), 64, 256, 1, (1, 10, 30))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="small counts (a CPU run)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--full-suite", action="store_true", help="run every test, not a subset")
    parser.add_argument("--output", type=Path, default=None, help="the JSON file to write")
    return parser.parse_args(argv)


def environment() -> dict:
    """The device, the versions and the commit."""
    import flax
    import jax
    import optax

    device = jax.devices()[0]
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "device": {"platform": device.platform, "kind": device.device_kind},
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "versions": {"jax": jax.__version__, "flax": flax.__version__, "optax": optax.__version__},
        "commit": commit or "unknown",
    }


def run_command(command: list[str], timeout: float, env: dict | None = None) -> dict:
    """A child process's exit status, wall time and last lines."""
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=REPO, env=env
        )
    except subprocess.TimeoutExpired:
        return {"command": command, "timed_out": True, "wall_s": time.perf_counter() - start}
    return {
        "command": command,
        "returncode": done.returncode,
        "wall_s": time.perf_counter() - start,
        "tail": (done.stdout + done.stderr).strip().splitlines()[-12:],
    }


def part_throughput(counts: Counts, scratch: Path) -> dict:
    out = {}
    runs = {
        "simple": ["--cells", "simple", "--seeds", *map(str, counts.simple_seeds)],
        "gated": ["--cells", "gru", "lstm", "--seeds", str(counts.gated_seeds)],
    }
    for name, selection in runs.items():
        path = scratch / f"throughput-{name}.json"
        command = [
            sys.executable,
            str(HERE / "throughput.py"),
            *selection,
            "--models",
            "vanilla",
            "attention",
            *("--epochs", str(counts.epochs), "--repeats", "2", "--compiles", "1"),
            *("--output", str(path)),
        ]
        out[name] = run_command(command, timeout=300)
        if path.exists():
            out[name]["rows"] = json.loads(path.read_text())["rows"]
    return out


def part_plain(counts: Counts, scratch: Path) -> dict:
    sys.path.insert(0, str(HERE))
    import plain_jax

    return {"rows": [plain_jax.measure(n, counts.epochs) for n in counts.simple_seeds]}


def part_steps(counts: Counts, scratch: Path) -> dict:
    import jax

    from fibjax.data import fibonacci_windows
    from fibjax.training.config import TrainConfig
    from fibjax.training.layout import ACCELERATOR_LAYOUT
    from fibjax.training.seeds import compile_seeds

    data, rows = fibonacci_windows(), []
    config = TrainConfig("vanilla", epochs=counts.epochs)
    for steps in (1, 2, 4):
        layout = dataclasses.replace(ACCELERATOR_LAYOUT, steps_per_iteration=steps)
        start = time.perf_counter()
        run = compile_seeds(config, data, range(counts.steps_seeds), layout=layout)
        compile_s = time.perf_counter() - start
        jax.block_until_ready(run())
        start = time.perf_counter()
        jax.block_until_ready(run())
        run_s = time.perf_counter() - start
        rate = counts.steps_seeds * counts.epochs / run_s
        rows.append(
            {"steps_per_iteration": steps, "compile_s": compile_s, "seed_epochs_per_s": rate}
        )
    return {"seeds": counts.steps_seeds, "rows": rows}


def _decision(summary: object) -> object:
    """The first ``decision`` in a report's summary."""
    if isinstance(summary, dict):
        if "decision" in summary:
            return summary["decision"]
        summary = list(summary.values())
    if isinstance(summary, list):
        for value in summary:
            found = _decision(value)
            if found is not None:
                return found
    return None


def part_comparison(counts: Counts, scratch: Path) -> dict:
    out = {}
    for backend in ("default", "cpu"):
        folder = scratch / f"compare-{backend}"
        env = dict(os.environ, FIBJAX_CACHE_DIR="off")
        if backend == "cpu":
            env["JAX_PLATFORMS"] = "cpu"
        command = [sys.executable, "-m", "fibjax", "compare", "--out", str(folder)]
        if counts is SMALL:
            command += ["--seeds", "8", "--epochs", "2"]
        out[backend] = run_command(command, timeout=300, env=env)
        summary = folder / "summary.json"
        if summary.exists():
            out[backend]["decision"] = _decision(json.loads(summary.read_text()))
    return out


def _keras_weights(model: str) -> list:
    import numpy as np

    for folder in (REPO.parent / "shared" / "keras_vectors", REPO / "tests" / "data" / "keras"):
        path = folder / f"keras_{model}_seed0.npz"
        if path.exists():
            raw = np.load(path)
            return [raw[f"w0_{i}"] for i in range(sum(k.startswith("w0_") for k in raw.files))]
    raise FileNotFoundError(f"no Keras vectors for {model}")


def part_drift(counts: Counts, scratch: Path) -> dict:
    import jax
    import numpy as np

    from fibjax.data import fibonacci_windows
    from fibjax.models.keras_compat import from_keras_weights
    from fibjax.training.config import TrainConfig
    from fibjax.training.program import fit

    data, rows = fibonacci_windows(), []
    accelerator = [d for d in jax.devices() if d.platform != "cpu"][:1] or jax.devices("cpu")[:1]
    for model in ("vanilla", "attention"):
        params = from_keras_weights(model, _keras_weights(model))
        config = TrainConfig(model, epochs=1, shuffle=False)
        for steps in counts.drift_steps:
            part = dataclasses.replace(
                data, train_x=data.train_x[:steps], train_y=data.train_y[:steps]
            )
            trained = {}
            for name, device in (("cpu", jax.devices("cpu")[0]), ("accelerator", accelerator[0])):
                with jax.default_device(device):
                    result = fit(config, part, key=jax.random.key(0), params=params, layout=name)
                trained[name] = jax.tree.map(np.asarray, result.params)
            gaps = jax.tree.map(
                lambda a, b: float(np.max(np.abs(a - b))), trained["cpu"], trained["accelerator"]
            )
            rows.append({"model": model, "steps": steps, "max_abs": max(jax.tree.leaves(gaps))})
    return {"accelerator": accelerator[0].platform, "rows": rows}


def part_tests(counts: Counts, scratch: Path, full_suite: bool = False) -> dict:
    selection = [] if full_suite else [str(p.relative_to(REPO)) for p in ACCELERATOR_TESTS]
    workers = "2" if counts is SMALL else "8"
    command = [sys.executable, "-m", "pytest", "-q", "-n", workers, "-p", "no:cacheprovider"]
    return run_command([*command, *selection], timeout=420)


def main() -> int:
    args = parse_args()
    counts = SMALL if args.small else FULL
    record = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **environment()}
    name = f"accelerator-{record['device']['platform']}-{record['device']['kind']}"
    name = name.replace(" ", "-").lower() + ("-small" if args.small else "")
    output = args.output or HERE / "results" / f"{name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for part in args.parts:
            start = time.perf_counter()
            try:
                if part == "tests":
                    result = part_tests(counts, Path(folder), args.full_suite)
                else:
                    result = globals()[f"part_{part}"](counts, Path(folder))
            except Exception as error:  # a failed part is a result; the others still run
                lines = traceback.format_exception_only(error)
                result = {"error": lines[-1].strip()}
            result["part_s"] = time.perf_counter() - start
            record[part] = result
            output.write_text(json.dumps(record, indent=2) + "\n")
            print(f"{part}: {result['part_s']:.1f} s", file=sys.stderr, flush=True)
    print(f"written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
