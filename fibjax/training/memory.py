"""The memory a training needs, checked against what the devices have before it compiles."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import jax
import jax.numpy as jnp

from fibjax.data import DataConfig, FibonacciData
from fibjax.models import make_model
from fibjax.training.config import TrainConfig
from fibjax.training.evaluation import eval_block
from fibjax.training.layout import (
    ProgramLayout,
    default_chunk,
    device_layout,
    orders_ahead_bytes,
    program_layout,
)

# What a training holds for its data, measured with `/usr/bin/time` on `fibjax compare --scaling log
# --seeds 2 --epochs 1` at 1e5 and 1e6 terms, on one and two CPU devices (32 and 64 seeds trained
# at once, padding included; benchmarks/NOTES.md): about 12 bytes per value of the windows (NumPy's
# float64 arrays, the device's float32 ones and the evaluation's copy), and about 11 words per
# window for each seed trained at once (the shuffle's sort, the evaluation's errors). An estimate
# that left them out was 4.6 MiB at a million terms against a measured peak of 3.1 GiB.
DATA_BYTES_PER_VALUE = 12
SEED_WORDS_PER_WINDOW = 11


def data_shape(data: FibonacciData | DataConfig) -> tuple[int, int, int]:
    """``(n_train, n_test, window)`` of built windows, or of a data set not built yet."""
    if isinstance(data, DataConfig):
        return (*data.split_sizes, data.window)
    return data.train_x.shape[0], data.test_x.shape[0], data.train_x.shape[1]


def param_count(config: TrainConfig, data: FibonacciData | DataConfig) -> int:
    """Parameters of ``config``'s model on ``data``'s windows, counted without allocating them.

    >>> from fibjax.data import fibonacci_windows
    >>> param_count(TrainConfig("vanilla"), fibonacci_windows(n_terms=60))
    11
    """
    model = make_model(config.model, config.hidden, cell=config.cell, unroll=config.unroll)
    x = jax.ShapeDtypeStruct((1, data_shape(data)[2], 1), jnp.float32)
    shapes = jax.eval_shape(lambda k: model.init(k, x)["params"], jax.random.key(0))
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes))


def memory_estimate(
    config: TrainConfig,
    data: FibonacciData | DataConfig,
    n_seeds: int,
    parallel: int | None = None,
    *,
    n_params: int | None = None,
) -> int:
    """A lower estimate, in bytes, of the memory that training ``n_seeds`` seeds needs.

    The windows take :data:`DATA_BYTES_PER_VALUE` a value. Each seed keeps its parameters,
    losses and test predictions, on the device and again on the host; the ``parallel`` seeds
    trained at once (all by default) each hold their optimizer state, gradients, the states of one
    batch and one evaluation block, and :data:`SEED_WORDS_PER_WINDOW` words a window. It is meant
    to refuse settings that cannot fit before anything is built or compiled, not to predict XLA's
    exact use. ``data`` may be a :class:`~fibjax.data.DataConfig` (nothing built);
    ``n_params``, when the caller knows it, saves tracing the model for :func:`param_count`.

    >>> from fibjax.data import DataConfig
    >>> big = memory_estimate(TrainConfig("vanilla"), DataConfig(n_terms=10**7, scaling="log"), 64)
    >>> round(big / 2**30, 1)
    29.9
    """
    if n_params is None:
        n_params = param_count(config, data)
    n_train, n_test, window = data_shape(data)
    n_windows = n_train + n_test
    steps = -(-n_train // config.batch_size)
    losses = config.epochs * (1 + (steps if config.record_step_losses else 0))
    per_seed = 2 * 4 * (n_params + losses + n_test)
    block = eval_block(n_train, n_test)
    states = (config.batch_size + block) * window * config.hidden
    per_parallel_seed = 4 * (4 * n_params + 4 * states + SEED_WORDS_PER_WINDOW * n_windows)
    parallel = n_seeds if parallel is None else min(parallel, n_seeds)
    windows = DATA_BYTES_PER_VALUE * n_windows * window
    return windows + n_seeds * per_seed + parallel * per_parallel_seed


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
    data: FibonacciData | DataConfig,
    n_seeds: int,
    devices: Sequence[jax.Device],
    *,
    n_params: int | None = None,
    layout: ProgramLayout | None = None,
) -> None:
    """Raises ``ValueError`` when :func:`memory_estimate` is above what the devices have.

    The seeds are counted as the devices train them: padded so that every device trains as many,
    in chunks of at least :data:`fibjax.training.layout.MIN_CHUNK`
    (:func:`fibjax.training.layout.device_layout`), with the orders of the windows that the
    layout draws ahead for every seed (:func:`fibjax.training.layout.orders_ahead_bytes`).
    ``layout``: the program's
    (:func:`fibjax.training.layout.program_layout`); by default the devices' platform's. ``data``
    may be a :class:`~fibjax.data.DataConfig`, so that a data set too large to hold is refused
    before it is built.
    """
    layout = layout or program_layout("auto", devices[0].platform)
    n_train, _, window = data_shape(data)
    per_device, chunk = device_layout(n_seeds, len(devices), default_chunk(config, window, layout))
    padded = per_device * len(devices)
    need = memory_estimate(config, data, padded, chunk * len(devices), n_params=n_params)
    need += orders_ahead_bytes(config, n_train, padded, layout)
    have = memory_available(devices[0])
    if have is not None and devices[0].platform != "cpu":
        have *= len(devices)
    if have is not None and need > have:
        where = "this machine has" if devices[0].platform == "cpu" else "the devices have"
        raise ValueError(
            f"training {n_seeds} seed(s) of {config.model} (cell={config.cell},"
            f" hidden={config.hidden}, epochs={config.epochs}, {n_train:,} training"
            f" windows) needs at least {need / 2**30:.3g} GiB, more than the"
            f" {have / 2**30:.3g} GiB {where}; use fewer seeds, epochs, units or terms"
        )
