"""Whole trainings in the accelerator's program against the CPU's: the claims over seeds.

The accelerator program runs on the accelerator when there is one, otherwise forced on the CPU
(``accelerator_target``); the CPU program runs on the CPU. Per-seed test MSEs agree to a median
relative difference of 1e-4 (the seeds that part further are batch-1 Adam amplifying rounding:
a relative nudge of 1e-7 to the starting weights changes a seed's test MSE after two epochs by up
to 3e-2), and the default comparison reaches the same verdict.
"""

import chex
import jax
import numpy as np
import pytest
import scipy.stats

from fibjax.data import fibonacci_windows
from fibjax.models import CELLS, POOLINGS
from fibjax.stats import compare
from fibjax.training.config import TrainConfig
from fibjax.training.seeds import compile_seeds

from conftest import make_target

SMALL = fibonacci_windows(n_terms=80, window=6)
NOTEBOOK = ("vanilla", "attention")
# The notebook's pair runs with the rest of the suite; with the slow runs, pairs that put every
# other registered cell and pooling in a whole training (about ten seconds each on 2 cores, two
# programs to compile). Every pairing of a cell with a pooling is compared step by step in
# tests/training/test_accelerator_program.py.
_CELLS = [c for c in CELLS if c != "simple"]
_POOLINGS = [p for p in POOLINGS if p not in NOTEBOOK]
OTHER_PARTS = [
    (_CELLS[i % len(_CELLS)], _POOLINGS[i % len(_POOLINGS)])
    for i in range(max(len(_CELLS), len(_POOLINGS)))
]
SEEDS = range(32)


def _median_relative(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.median(np.abs(a - b) / np.abs(b)))


def _agreement(config: TrainConfig, data, devices) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed test MSEs of the CPU program on the CPU and the accelerator program on
    ``devices``."""
    cpu = compile_seeds(config, data, SEEDS, devices=jax.devices("cpu")[:1], layout="cpu")()
    other = compile_seeds(config, data, SEEDS, devices=devices, layout="accelerator")()
    chex.assert_tree_all_finite(other.params)
    return np.asarray(cpu.test_mse), np.asarray(other.test_mse)


@pytest.mark.parametrize("pooling", NOTEBOOK)
def test_the_accelerator_program_trains_as_the_cpu_program(accelerator_target, pooling):
    cpu, other = _agreement(TrainConfig(pooling, epochs=2), SMALL, accelerator_target.devices)
    assert _median_relative(other, cpu) <= 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("cell, pooling", OTHER_PARTS)
def test_every_part_trains_alike_in_the_accelerator_program(accelerator_target, cell, pooling):
    config = TrainConfig(pooling, cell=cell, epochs=2)
    cpu, other = _agreement(config, SMALL, accelerator_target.devices)
    assert _median_relative(other, cpu) <= 1e-4


@pytest.mark.slow
def test_the_default_comparison_comes_out_alike(accelerator_target, notebook_data):
    # The notebook's protocol at 64 seeds: per-seed test MSEs agree to a median relative
    # difference of 1e-4, a paired test finds no difference between the programs, and the
    # verdict is the same. (On a GPU a few seeds part further: batch-1 Adam amplifies rounding.)
    seeds = range(64)
    mse = {}
    for target in (make_target("cpu"), accelerator_target):
        for pooling in ("attention", "vanilla"):
            run = compile_seeds(
                TrainConfig(pooling),
                notebook_data,
                seeds,
                devices=target.devices,
                layout=target.layout,
            )
            mse[target.name, pooling] = np.asarray(run().test_mse, np.float64)
    for pooling in ("attention", "vanilla"):
        cpu, other = mse["cpu", pooling], mse["accelerator", pooling]
        assert _median_relative(other, cpu) <= 1e-4
        if not np.array_equal(cpu, other):
            assert scipy.stats.wilcoxon(np.log(other), np.log(cpu)).pvalue > 0.01
    verdicts = {
        name: compare(mse[name, "attention"], mse[name, "vanilla"]).decision
        for name in ("cpu", "accelerator")
    }
    assert verdicts["cpu"] == verdicts["accelerator"] == "b_better"
