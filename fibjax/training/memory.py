"""The memory a training needs, checked against what the devices have before it compiles."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from fibjax.data import FibonacciData
from fibjax.models import make_model
from fibjax.training.config import TrainConfig
from fibjax.training.evaluation import eval_block
from fibjax.training.layout import ProgramLayout, default_chunk, program_layout


def param_count(config: TrainConfig, data: FibonacciData) -> int:
    """Parameters of ``config``'s model on ``data``'s windows, counted without allocating them.

    >>> from fibjax.data import fibonacci_windows
    >>> param_count(TrainConfig("vanilla"), fibonacci_windows(n_terms=60))
    11
    """
    model = make_model(config.model, config.hidden, cell=config.cell, unroll=config.unroll)
    x = jax.ShapeDtypeStruct((1, *data.train_x.shape[1:]), jnp.float32)
    shapes = jax.eval_shape(lambda k: model.init(k, x)["params"], jax.random.key(0))
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))


def memory_estimate(
    config: TrainConfig,
    data: FibonacciData,
    n_seeds: int,
    parallel: int | None = None,
    *,
    n_params: int | None = None,
) -> int:
    """A lower estimate, in bytes, of the memory that training ``n_seeds`` seeds needs.

    Each seed keeps its parameters and losses, on the device and again on the host; the
    ``parallel`` seeds trained at once (all by default) each hold their optimizer state,
    gradients and the states of one batch and one evaluation block. It is meant to refuse
    settings that cannot fit before anything compiles, not to predict XLA's exact use.
    ``n_params``, when the caller knows it, saves tracing the model for :func:`param_count`.
    """
    if n_params is None:
        n_params = param_count(config, data)
    n_train, window = data.train_x.shape[:2]
    steps = -(-n_train // config.batch_size)
    losses = config.epochs * (1 + (steps if config.record_step_losses else 0))
    per_seed = 2 * 4 * (n_params + losses + data.test_x.shape[0])
    block = eval_block(n_train, data.test_x.shape[0])
    states = (config.batch_size + block) * window * config.hidden
    per_parallel_seed = 4 * (4 * n_params + 4 * states)
    parallel = n_seeds if parallel is None else min(parallel, n_seeds)
    return n_seeds * per_seed + parallel * per_parallel_seed


def memory_available(device: jax.Device) -> int | None:
    """The memory of ``device`` in bytes (the machine's for a CPU), or ``None`` if unknown."""
    if device.platform == "cpu":
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
    stats = device.memory_stats() or {}
    return stats.get("bytes_limit")


def check_memory(
    config: TrainConfig,
    data: FibonacciData,
    n_seeds: int,
    devices: Sequence[jax.Device],
    *,
    n_params: int | None = None,
    layout: ProgramLayout | None = None,
) -> None:
    """Raises ``ValueError`` when :func:`memory_estimate` is above what the devices have.

    ``layout``: the program's (:func:`fibjax.training.layout.program_layout`); by default the
    devices' platform's. It says how many seeds train at once.
    """
    layout = layout or program_layout("auto", devices[0].platform)
    chunk = default_chunk(config, data.train_x.shape[1], layout)
    parallel = None if chunk is None else chunk * len(devices)
    need = memory_estimate(config, data, n_seeds, parallel, n_params=n_params)
    have = memory_available(devices[0])
    if have is not None and devices[0].platform != "cpu":
        have *= len(devices)
    if have is not None and need > have:
        raise ValueError(
            f"training {n_seeds} seed(s) of {config.model} (cell={config.cell},"
            f" hidden={config.hidden}, epochs={config.epochs}) needs at least"
            f" {need / 2**30:.3g} GiB, more than the {have / 2**30:.3g} GiB this machine has;"
            " use fewer seeds, epochs or units"
        )
