"""The Python API as a notebook uses it: configure(), compiled programs reused, readable results."""

import dataclasses
import os
import subprocess
import sys
import textwrap

import chex
import numpy as np
import pytest

from fibjax.data import fibonacci_windows
from fibjax.stats import StatsConfig, compare
from fibjax.training import program_cache, runtime
from fibjax.training import seeds as seeds_lib
from fibjax.training.config import FitResult, TrainConfig
from fibjax.training.progress import Phases
from fibjax.training.seeds import fit_seeds

SMALL = fibonacci_windows(n_terms=70, window=6)
CONFIG = TrainConfig("vanilla", epochs=1)


def test_a_second_fit_seeds_compiles_nothing(monkeypatch):
    monkeypatch.setattr(program_cache, "COMPILED", program_cache.ProgramMemo(maxsize=8))
    compiled = []
    real = seeds_lib.compile_program
    monkeypatch.setattr(seeds_lib, "compile_program", lambda *a: compiled.append(1) or real(*a))
    first = fit_seeds(CONFIG, SMALL, [0, 1, 2], program_cache=False)
    again = fit_seeds(CONFIG, SMALL, [0, 1, 2], program_cache=False)
    others = fit_seeds(CONFIG, SMALL, [3, 4, 5], program_cache=False)  # keys are arguments
    assert len(compiled) == 2  # the training and, on a CPU, the orders of the windows
    chex.assert_trees_all_equal(again, first)
    program_cache.COMPILED.clear()
    fresh = fit_seeds(CONFIG, SMALL, [3, 4, 5], program_cache=False)
    assert len(compiled) == 4
    chex.assert_trees_all_equal(others, fresh)  # a reused program gives the same bits


def test_results_read_well(capsys):
    result = FitResult({}, np.ones((2, 1)), np.zeros(2), np.array([1e-4, 3e-4]), np.zeros(2))
    assert (
        repr(result)
        == "FitResult(2 seeds, 1 epochs; test MSE median 2.00e-04 [1.00e-04, 3.00e-04]; 0 diverged)"
    )
    attention = [1e-4, 2e-4, 5e-5, 1e-4, 3e-4, 8e-5]
    vanilla = [1e-3, 4e-3, 2e-3, 1e-3, 5e-3, 9e-4]
    comparison = compare(attention, vanilla, StatsConfig(n_resamples=200))
    assert repr(comparison).splitlines()[0].startswith("Comparison(attention vs vanilla: attention")
    pd = pytest.importorskip("pandas")
    frame = comparison.to_dataframe()
    assert isinstance(frame, pd.DataFrame)
    geometric_median = 10 ** np.median(np.log10(vanilla))
    assert frame.loc["median test MSE, vanilla", "estimate"] == pytest.approx(geometric_median)


def test_phases_show_on_stderr(capsys):
    with Phases(show=True) as phases:
        phases.phase("compiling")
        phases.phase("training")
    assert "training" in capsys.readouterr().err


def test_to_dataframe_without_pandas_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas then raises ImportError
    comparison = compare([1.0, 2.0, 3.0], [2.0, 3.0, 4.0], StatsConfig(n_resamples=100))
    with pytest.raises(ImportError, match="pip install pandas") as error:
        comparison.to_dataframe()
    assert "\n" not in str(error.value)


def test_configure_in_a_fresh_process(tmp_path):
    script = textwrap.dedent(
        """
        import gc, os, sys
        import fibjax
        assert "jax" not in sys.modules, "import fibjax imported JAX"
        default_collector = gc.get_threshold()
        if hasattr(os, "sched_setaffinity"):  # as a job scheduler gives a task one core
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        runtime = fibjax.configure()
        import jax
        from fibjax.data import fibonacci_windows
        from fibjax.training.config import TrainConfig
        from fibjax.training.seeds import fit_seeds
        fit_seeds(TrainConfig("vanilla", epochs=1), fibonacci_windows(n_terms=60, window=6), [0])
        loop = jax.jit(lambda x: jax.lax.fori_loop(0, 9, lambda i, c: jax.numpy.tanh(c), x))
        whole = "xla_cpu_small_call" in loop.lower(jax.numpy.ones(4096)).compile().as_text()
        collector = gc.get_threshold()
        print(jax.device_count(), runtime.programs_dir, whole, collector != default_collector)
        print(*collector)
        try:
            fibjax.configure(cpu_devices=jax.device_count() + 1)
        except ValueError as error:
            print("ValueError:", error)
        from fibjax.training import runtime as runtime_lib
        runtime_lib.available_cores = lambda: 99  # JAX has started with fewer devices than cores
        late = fibjax.configure(no_cache=True)
        print(late.started_late, late.cache_dir)
        """
    )
    env = {**os.environ, "FIBJAX_CACHE_DIR": str(tmp_path)}
    env.pop("XLA_FLAGS", None)  # configure() sets XLA's loops to compile whole (a 16 KB one here)
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    devices, collector, error, late = done.stdout.splitlines()
    # One device per core the process may run on, not per core of the machine.
    cores = 1 if hasattr(os, "sched_setaffinity") else os.cpu_count()
    assert devices.split() == [str(cores), str(tmp_path / "programs"), "True", "True"]
    assert tuple(map(int, collector.split())) == runtime.COLLECTOR_THRESHOLDS
    assert error.startswith(f"ValueError: cpu_devices={int(cores) + 1}: JAX has started already")
    # The late call says its devices and its cache stay as JAX started with them, and its
    # Runtime names the folder JAX still uses, not the one asked for.
    assert late == f"True {tmp_path}"
    cache_line, devices_line = done.stderr.strip().splitlines()
    stays = f"with its compilation cache in {tmp_path}; it stays there (JAX reads the folder once)"
    assert (
        cache_line.startswith("fibjax.configure(): JAX had started already") and stays in cache_line
    )
    assert devices_line.startswith("fibjax.configure(): JAX had started already, with")
    assert list((tmp_path / "programs").glob(f"*{program_cache.SUFFIX}"))


TINY = ["--seeds", "2", "--epochs", "2", "--n-terms", "80", "--window", "6", "--no-cache"]


@pytest.mark.slow
def test_the_studies_as_functions_equal_the_command_line(tmp_path, capsys):
    # fibjax.compare_models on the configuration the command line saved gives the same tables,
    # byte for byte; a second call on the finished folder trains nothing, and a folder of another
    # configuration is refused. fibjax.sweep_grid writes a sweep's table and report the same way.
    import fibjax
    from fibjax.cli import entry
    from fibjax.studies import compare as compare_lib

    assert entry.main(["compare", *TINY, "--out", str(tmp_path / "cli")]) == 0
    config = compare_lib.load_run(tmp_path / "cli")[0]
    summary = fibjax.compare_models(config, tmp_path / "api", show=False)
    assert summary["verdicts"] == json_of(tmp_path / "cli" / "summary.json")["verdicts"]
    for name in ("results.csv", "curves.npz"):
        assert (tmp_path / "api" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes()
    before = (tmp_path / "api" / "arm_attention.npz").stat().st_mtime_ns
    assert fibjax.compare_models(config, tmp_path / "api", show=False) == summary
    assert (tmp_path / "api" / "arm_attention.npz").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="another configuration"):
        fibjax.compare_models(dataclasses.replace(config, seeds=(5, 6)), tmp_path / "api")
    grid = fibjax.SweepConfig(
        cells=("simple",),
        models=("dot",),
        windows=(6,),
        scalings=("log",),
        n_terms=60,
        seeds=(0, 1),
        epochs=1,
    )
    table = fibjax.sweep_grid(grid, tmp_path / "sweep", show=False)
    assert len(table["rows"]) == 1 and (tmp_path / "sweep" / "report.md").exists()


def json_of(path):
    import json

    return json.loads(path.read_text())
