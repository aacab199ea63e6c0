"""Training with the notebook's protocol, as one pure function of a PRNG key.

:func:`make_train` builds ``train(key) -> FitResult``: ``lax.scan`` over epochs, a fresh
permutation of the training windows each epoch, ``lax.scan`` over mini-batches with the Optax update
inside. :func:`fit` runs it once under ``jax.jit``; :func:`fit_seeds` runs it for many seeds in one
compiled call of ``jax.vmap(train)``, with the seed axis sharded over every local device.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import numbers
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P

from fibjax import program_cache as program_cache_lib
from fibjax import progress as progress_lib
from fibjax.data import FibonacciData
from fibjax.models import cell_entry, make_model, pooling_entry
from fibjax.optim import OPTIMIZERS, make_optimizer
from fibjax.sorting import sort_numbers

MAX_COUNT = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How one model is trained; validated when built. The defaults are the notebook's protocol.

    Attributes:
      model: the pooling, a name from :data:`fibjax.models.POOLINGS` (``"vanilla"``: the last
        state; ``"attention"``: the notebook's).
      hidden: hidden units of the recurrent cell.
      epochs: passes over the training windows.
      batch_size: windows per update; a last, smaller batch ends each epoch when it does not
        divide the training set, as in Keras.
      learning_rate: the optimizer's step size.
      optimizer: a name from :data:`fibjax.optim.OPTIMIZERS`.
      shuffle: a fresh permutation of the training windows each epoch (Keras's ``fit`` default).
      unroll: time steps unrolled per iteration of the RNN's scan; changes speed, not results
        beyond float32 rounding.
      record_step_losses: also return the loss of every update (memory grows with steps).
      cell: the recurrent cell, a name from :data:`fibjax.models.CELLS`.
    """

    model: str
    hidden: int = 2
    epochs: int = 30
    batch_size: int = 1
    learning_rate: float = 1e-3
    optimizer: str = "keras_adam"
    shuffle: bool = True
    unroll: int = 1
    record_step_losses: bool = False
    cell: str = "simple"

    def __post_init__(self) -> None:
        pooling_entry(self.model)
        cell_entry(self.cell)
        if self.optimizer not in OPTIMIZERS:
            known = tuple(sorted(OPTIMIZERS))
            raise ValueError(f"optimizer={self.optimizer!r} is unknown; choose one of {known}")
        for name in ("hidden", "epochs", "batch_size", "unroll"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name}={value!r} must be an integer >= 1")
            if value > MAX_COUNT:  # the programs count epochs, steps and units in int32
                raise ValueError(f"{name}={value!r} is too large; at most {MAX_COUNT}")
            # NumPy integers become Python ones, so the config compares and saves as one.
            object.__setattr__(self, name, int(value))
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not math.isfinite(lr):
            raise ValueError(f"learning_rate={lr!r} must be a positive finite number")
        if lr <= 0:
            raise ValueError(f"learning_rate={lr!r} must be a positive finite number")
        object.__setattr__(self, "learning_rate", float(lr))
        for name in ("shuffle", "record_step_losses"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")


@flax.struct.dataclass
class FitResult:
    """What one training run gives. Under :func:`fit_seeds` every field has a leading seed axis.

    Attributes:
      params: the trained parameters.
      epoch_losses: ``<float32>[epochs]`` mean training loss of each epoch, as Keras logs it.
      train_mse: ``<float32>[]`` MSE on the training windows after training (Keras's
        ``evaluate``).
      test_mse: ``<float32>[]`` MSE on the test windows after training.
      diverged_epoch: ``<int32>[]`` the first epoch (counting from 1) after which the loss or a
        parameter was not finite; 0 when training stayed finite.
      step_losses: ``<float32>[epochs, steps]`` the loss of every update, or ``None`` unless
        ``record_step_losses`` was set.
    """

    params: Any
    epoch_losses: jax.Array
    train_mse: jax.Array
    test_mse: jax.Array
    diverged_epoch: jax.Array
    step_losses: jax.Array | None = None

    def __repr__(self) -> str:
        """One line: the runs, epochs, test MSE (median and range over seeds) and divergences.

        >>> FitResult({}, np.full((3, 2), 0.5), np.zeros(3), np.array([1e-4, 2e-4, 4e-4]),
        ...           np.array([0, 0, 1]))
        FitResult(3 seeds, 2 epochs; test MSE median 1.50e-04 [1.00e-04, 2.00e-04]; 1 diverged)
        """
        try:
            test_mse = np.asarray(self.test_mse, np.float64)
            diverged = np.asarray(self.diverged_epoch) > 0
        except Exception:  # noqa: BLE001 - traced values have no numbers to show
            shapes = jax.tree.map(lambda leaf: getattr(leaf, "shape", None), self)
            return f"FitResult(traced; test_mse shape {shapes.test_mse})"
        epochs = np.shape(self.epoch_losses)[-1]
        runs = " x ".join(map(str, test_mse.shape)) or "1"
        kept = test_mse[~diverged & np.isfinite(test_mse)]
        if kept.size == 0:
            mse = "no finite test MSE"
        elif kept.size == 1:
            mse = f"test MSE {kept[0]:.2e}"
        else:
            mse = f"test MSE median {np.median(kept):.2e} [{kept.min():.2e}, {kept.max():.2e}]"
        return (
            f"FitResult({runs} seed{'s' if test_mse.size != 1 else ''}, {epochs} epochs;"
            f" {mse}; {int(diverged.sum())} diverged)"
        )


# Lets jax.export save programs that return a FitResult (fibjax.program_cache).
jax.export.register_pytree_node_serialization(
    FitResult,
    serialized_name="fibjax.train.FitResult",
    serialize_auxdata=lambda aux: b"",
    deserialize_auxdata=lambda data: (),
)

MAX_SEED = 2**32 - 1  # jax.random.key folds larger seeds onto smaller ones without x64


def check_seeds(seeds: Sequence[int]) -> tuple[int, ...]:
    """Validates a list of seeds: non-empty, distinct integers in ``[0, 2**32)``.

    >>> check_seeds([0, 1, 2])
    (0, 1, 2)
    """
    seeds = tuple(seeds)
    if not seeds:
        raise ValueError("seeds is empty; give at least one seed")
    # Plain ints are checked in bulk: a per-seed isinstance check of numbers.Integral costs
    # about a microsecond, a fifth of a second for 200,000 seeds.
    plain = all(type(s) is int for s in seeds)
    if not plain or min(seeds) < 0 or max(seeds) > MAX_SEED:
        for s in seeds:
            if isinstance(s, bool) or not isinstance(s, numbers.Integral) or not 0 <= s <= MAX_SEED:
                raise ValueError(f"seed {s!r} must be an integer from 0 to {MAX_SEED}")
        seeds = tuple(int(s) for s in seeds)
    if len(set(seeds)) != len(seeds):
        counts = collections.Counter(seeds)
        duplicated = sorted(s for s, n in counts.items() if n > 1)
        shown = ", ".join(map(str, duplicated[:10])) + (", ..." if len(duplicated) > 10 else "")
        raise ValueError(f"seeds must be distinct; repeated: [{shown}]")
    return seeds


def seed_keys(seeds: Sequence[int] | jax.Array) -> jax.Array:
    """One PRNG key per seed: seed ``s`` means ``jax.random.key(s)``; ``key<fry>[n_seeds]``."""
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))


def shuffled_order(key: jax.Array, n: int) -> jax.Array:
    """A uniformly random permutation of ``range(n)``, as ``jax.random.permutation`` draws it.

    ``jax.random.permutation`` sorts random keys paired with the indices. Here each index is
    packed into the low bits of one random ``uint32`` and the packed numbers are sorted alone:
    XLA's CPU runtime sorts one array of numbers about five times faster than key-value pairs,
    and the permutation had taken about a quarter of a training epoch. Equal random bits keep
    their index order, so, as JAX does, the sort is repeated until ties are negligible: rounds
    ``= ceil(3 ln n / ln 2^r)`` for ``r`` random bits. Under ``vmap`` over seeds the rows are
    sorted together (:func:`fibjax.sorting.sort_numbers`), with the same result.

    Args:
      key: a ``jax.random.key``.
      n: the length, at most ``2**24`` (room for 8 random bits).

    Returns:
      ``<int32>[n]``, each of ``0 .. n-1`` once.

    >>> order = shuffled_order(jax.random.key(0), 5)
    >>> sorted(order.tolist())
    [0, 1, 2, 3, 4]
    """
    if not 1 <= n <= 2**24:
        raise ValueError(f"n={n!r} must be from 1 to 2**24")
    index_bits = max(1, (n - 1).bit_length())
    random_bits = 32 - index_bits
    rounds = max(1, math.ceil(3 * math.log(n) / (random_bits * math.log(2))))
    index = jnp.arange(n, dtype=jnp.uint32)
    low = jnp.uint32((1 << index_bits) - 1)
    order = index
    for round_key in jax.random.split(key, rounds):
        noise = jax.random.bits(round_key, (n,), jnp.uint32) & ~low
        order = order[sort_numbers(noise | index) & low]
    return order.astype(jnp.int32)


def _mse(model, params, x, y):
    return jnp.mean(jnp.square(model.apply({"params": params}, x) - y))


# Windows evaluated at once after training. Under vmap over seeds the attention model's states
# for all 826 windows are an array of tens of MB per chunk of seeds; blocks of this many windows
# stay in cache (benchmarks/NOTES.md).
EVAL_BLOCK = 128


def _eval_block(n_train: int, n_test: int) -> int:
    return min(EVAL_BLOCK, n_train + n_test)


def _train_test_mse(model, params, windows: Windows) -> tuple[jax.Array, jax.Array]:
    """The mean squared errors ``<float32>[]`` on the training and on the test windows.

    Both sets go through the model in one ``lax.map`` of :data:`EVAL_BLOCK` windows a block,
    padded with zero windows to whole blocks whose errors are dropped. Each traced call of the
    model is more program to trace and compile: two sets, each ending in a smaller block, had
    traced it four times, one pass traces it once (at 256 seeds the attention model compiled in
    5.5 s instead of 7.2 s, the vanilla model in 4.9 s instead of 5.5 s; benchmarks/NOTES.md).
    """
    n_train, n_test = windows.train_y.shape[0], windows.test_y.shape[0]
    block = _eval_block(n_train, n_test)
    pad = -(n_train + n_test) % block
    x = jnp.concatenate([windows.train_x, windows.test_x])
    y = jnp.concatenate([windows.train_y, windows.test_y])
    x = jnp.pad(x, ((0, pad), (0, 0), (0, 0)))
    y = jnp.pad(y, (0, pad))
    errors = jax.lax.map(
        lambda xy: jnp.square(model.apply({"params": params}, xy[0][None])[0] - xy[1]),
        (x, y),
        batch_size=block,
    )
    return jnp.mean(errors[:n_train]), jnp.mean(errors[n_train : n_train + n_test])


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def _first_failure(finite: jax.Array) -> jax.Array:
    """1-based index of the first False in ``<bool>[epochs]``, or 0 when all are True."""
    failed = ~finite
    return jnp.where(jnp.any(failed), jnp.argmax(failed) + 1, 0).astype(jnp.int32)


@flax.struct.dataclass
class Windows:
    """A data set's windows as float32 arrays: an argument of the compiled training.

    The training programs take the windows as an argument, not as constants, so one compiled
    program serves every data set of the same shapes (another scaling or split).

    Attributes:
      train_x: ``<float32>[n_train, window, 1]``.
      train_y: ``<float32>[n_train]``.
      test_x: ``<float32>[n_test, window, 1]``.
      test_y: ``<float32>[n_test]``.
    """

    train_x: jax.Array
    train_y: jax.Array
    test_x: jax.Array
    test_y: jax.Array

    @classmethod
    def of(cls, data: FibonacciData) -> Windows:
        """The windows of ``data``, cast to float32.

        >>> from fibjax.data import fibonacci_windows
        >>> Windows.of(fibonacci_windows(n_terms=60)).train_x.shape
        (28, 20, 1)
        """
        arrays = (data.train_x, data.train_y, data.test_x, data.test_y)
        return cls(*(jnp.asarray(a, jnp.float32) for a in arrays))

    def shapes(self) -> dict[str, list[int]]:
        """Each array's shape, by name (what a compiled program is specialised to)."""
        return {f.name: list(getattr(self, f.name).shape) for f in dataclasses.fields(self)}


# Lets jax.export save programs that take Windows (fibjax.program_cache).
jax.export.register_pytree_node_serialization(
    Windows,
    serialized_name="fibjax.train.Windows",
    serialize_auxdata=lambda aux: b"",
    deserialize_auxdata=lambda data: (),
)


def make_train_on(config: TrainConfig) -> Callable[..., FitResult]:
    """Builds ``train(key, windows, learning_rate, params=None) -> FitResult``.

    The same training as :func:`make_train`, with the windows (:class:`Windows`) and the
    learning rate as arguments: traced, a compiled program serves every data set of the same
    shapes and every learning rate (``config.learning_rate`` is not used).

    Args:
      config: the training protocol.

    Returns:
      A pure function of a key, windows, a ``<float32>[]`` learning rate and optional starting
      parameters, to be jitted or vmapped.

    >>> from fibjax.data import fibonacci_windows
    >>> train = make_train_on(TrainConfig("vanilla", epochs=2))
    >>> windows = Windows.of(fibonacci_windows(n_terms=60))
    >>> result = jax.jit(train)(jax.random.key(0), windows, 1e-2)
    >>> result.epoch_losses.shape
    (2,)
    """
    model = make_model(config.model, config.hidden, cell=config.cell, unroll=config.unroll)

    def train(
        key: jax.Array, windows: Windows, learning_rate: Any, params: Any = None
    ) -> FitResult:
        optimizer = make_optimizer(config.optimizer, learning_rate)
        init_key, order_key = jax.random.split(key)
        if params is None:
            params = model.init(init_key, windows.train_x[:1])["params"]
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)
        run_epoch = _epoch_runner(config, model, optimizer, windows, order_key)
        carry = (params, optimizer.init(params))
        epochs = jnp.arange(config.epochs)
        (params, _), (losses, finite, steps) = jax.lax.scan(run_epoch, carry, epochs)
        train_mse, test_mse = _train_test_mse(model, params, windows)
        return FitResult(
            params=params,
            epoch_losses=losses,
            train_mse=train_mse,
            test_mse=test_mse,
            diverged_epoch=_first_failure(finite),
            step_losses=steps,
        )

    return train


def _epoch_runner(config, model, optimizer, windows: Windows, order_key) -> Callable:
    """``run_epoch(carry, epoch) -> (carry, (loss, finite, step_losses))`` for ``lax.scan``."""
    n_train, batch = windows.train_x.shape[0], config.batch_size
    n_full, remainder = divmod(n_train, batch)

    def update(carry, indices):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(_mse, argnums=1)(
            model, params, windows.train_x[indices], windows.train_y[indices]
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def epoch_order(epoch):
        if not config.shuffle:
            return jnp.arange(n_train)
        return shuffled_order(jax.random.fold_in(order_key, epoch), n_train)

    def run_epoch(carry, epoch):
        order = epoch_order(epoch)
        batches = order[: n_full * batch].reshape(n_full, batch)
        carry, losses = jax.lax.scan(update, carry, batches)
        total = jnp.sum(losses) * batch
        if remainder:
            carry, last = update(carry, order[n_full * batch :])
            losses = jnp.append(losses, last)
            total = total + last * remainder
        # Keras logs the mean of batch losses weighted by batch size.
        epoch_loss = total / n_train
        finite = jnp.isfinite(epoch_loss) & _all_finite(carry[0])
        step_losses = losses if config.record_step_losses else None
        return carry, (epoch_loss, finite, step_losses)

    return run_epoch


def make_train(
    config: TrainConfig,
    data: FibonacciData,
) -> Callable[..., FitResult]:
    """Builds ``train(key, params=None) -> FitResult``, the whole training of one seed.

    ``key`` is split into one key for the initial weights and one for the data order, so two
    models trained under the same key see the same sequence of training windows. With
    ``params`` given, training starts from them instead (the first key goes unused).

    Args:
      config: the training protocol.
      data: the windows; cast to float32 here.

    Returns:
      A pure function of a key (and optional parameters), to be jitted or vmapped.

    >>> from fibjax.data import fibonacci_windows
    >>> train = make_train(TrainConfig("vanilla", epochs=2), fibonacci_windows(n_terms=60))
    >>> result = jax.jit(train)(jax.random.key(0))
    >>> result.epoch_losses.shape
    (2,)
    """
    train_on = make_train_on(config)
    windows = Windows.of(data)

    def train(key: jax.Array, params: Any = None) -> FitResult:
        return train_on(key, windows, config.learning_rate, params)

    return train


# XLA's CPU backend hands larger reductions to the YNNPACK library. For this model's reductions
# (over 20 time steps and 2 units) the library call costs far more than the work: with it, the
# attention model trained 4.5 times slower per seed once a device ran more than about 100 seeds
# at once (benchmarks/NOTES.md). fibjax's programs opt out; XLA's own loops do the reductions.
# XLA asks LLVM for 256-bit vectors by default. The seed-last loops (fibjax.seeds_last) run 128
# seeds side by side, so on a CPU with AVX-512 twice as many lanes per instruction trained the
# vanilla model 1.08-1.11 and the attention model 1.20 times as fast, with the same bits; a
# CPU without 512-bit vectors uses its widest. Some of XLA's reductions follow the width: the
# additive and dot forms trained on 5 seeds of a small data set differ in their last bits.
CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "",
    "xla_cpu_prefer_vector_width": 512,
}
_UNKNOWN_OPTION = re.compile(r"No such compile option: '([^']+)'")


def compile_program(lowered: jax.stages.Lowered, platform: str) -> jax.stages.Compiled:
    """Compiles a lowered training program with fibjax's options for ``platform``.

    On a CPU the options are :data:`CPU_COMPILER_OPTIONS`; those an XLA does not know (an older
    JAX, without YNNPACK fusions) are left out, one by one.

    >>> lowered = jax.jit(lambda x: x.sum()).lower(jnp.ones(3))
    >>> compile_program(lowered, "cpu")(jnp.ones(3))
    Array(3., dtype=float32)
    """
    if platform != "cpu":
        return lowered.compile()
    options = dict(CPU_COMPILER_OPTIONS)
    while True:
        try:
            return lowered.compile(compiler_options=options)
        except jax.errors.JaxRuntimeError as error:
            unknown = _UNKNOWN_OPTION.search(str(error))
            if unknown is None or unknown.group(1) not in options:
                raise
            del options[unknown.group(1)]


def fit(
    config: TrainConfig,
    data: FibonacciData,
    *,
    key: jax.Array,
    params: Any = None,
) -> FitResult:
    """Trains one model under one key, as one jitted call.

    Args:
      config: the training protocol.
      data: the windows.
      key: a ``jax.random.key``; see :func:`make_train` for how it is used.
      params: optional starting weights (for example from
        :func:`fibjax.keras_compat.from_keras_weights`); otherwise initialised from ``key``.

    Returns:
      The :class:`FitResult` of the run.

    >>> from fibjax.data import fibonacci_windows
    >>> config = TrainConfig("attention", epochs=1)
    >>> result = fit(config, fibonacci_windows(n_terms=60), key=jax.random.key(0))
    >>> result.test_mse.shape
    ()
    """
    lowered = jax.jit(make_train(config, data)).lower(key, params)
    return compile_program(lowered, jax.default_backend())(key, params)


# On a CPU, seeds train fastest in chunks of one to two hundred: measured on 2 cores
# (benchmarks/NOTES.md), 256 vanilla or 128 attention seeds at window 20 and hidden 2 per chunk.
# Chunks also bound the program's memory, whatever the seed count. Other parts scale the work per
# seed by their registry entries: a cell's fused gates, a pooling's cost.
CPU_CHUNK_BUDGET = 10240


def default_chunk(config: TrainConfig, window: int, platform: str) -> int | None:
    """Seeds per vmapped chunk on one device: ``None`` (all at once) except on a CPU."""
    if platform != "cpu":
        return None
    cost = pooling_entry(config.model).cost * cell_entry(config.cell).gates
    per_seed = window * config.hidden * cost
    return max(1, CPU_CHUNK_BUDGET // per_seed)


# Seeds vmapped at once. XLA's CPU code for a small batch reduces in another order than for a
# wide one: an attention model's gradient changed in its last bits between 4 and 8 seeds at once
# on one device, while every width from 8 to 128 gave the same bits (benchmarks/NOTES.md). So no
# chunk is narrower than this, and a seed's result does not depend on how many devices or
# processes share the seeds.
MIN_CHUNK = 32
# With each training loop compiled into one kernel (fibjax.runtime.xla_flags) the seed axis is
# the vectorised one, and the seeds past the last full vector of a chunk are computed by other
# code: with 70 seeds at once, seeds 65 and 66 differed in their last bits from the same seeds
# trained 128 at once, while every width that is a multiple of 8 gave the same bits. Devices and
# chunks take multiples of this many seeds (16: room for 512-bit vectors).
SEED_ALIGN = 16


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def device_layout(n_seeds: int, n_devices: int, chunk: int | None) -> tuple[int, int]:
    """Seeds per device (padded) and per chunk: every chunk at least :data:`MIN_CHUNK` seeds and
    a multiple of :data:`SEED_ALIGN`.

    A device's seeds are split into as few chunks as ``chunk`` allows, of equal width where they
    can be: a preferred chunk of 42 for 128 seeds gives four chunks of 32, not three of 42 and a
    last one padded from 2 to 32 seeds.

    Args:
      n_seeds: the seeds to train.
      n_devices: the devices they are sharded over.
      chunk: the preferred (largest) chunk (``None``: all of a device's seeds at once).

    Returns:
      ``(per_device, chunk)``: each device trains ``per_device`` seeds (real or padding) in
      chunks of ``chunk``, and a last, smaller chunk of at least :data:`MIN_CHUNK`.

    >>> device_layout(4, 2, 128)
    (32, 32)
    >>> device_layout(256, 2, 128)
    (128, 128)
    >>> device_layout(256, 2, 42)
    (128, 32)
    >>> device_layout(300, 1, 128)
    (304, 112)
    >>> device_layout(1024, 2, 85)
    (512, 80)
    >>> device_layout(70, 1, 40)
    (80, 48)
    """
    per_device = _round_up(max(-(-n_seeds // n_devices), MIN_CHUNK), SEED_ALIGN)
    n_chunks = -(-per_device // min(chunk or per_device, per_device))
    chunk = max(MIN_CHUNK, _round_up(-(-per_device // n_chunks), SEED_ALIGN))
    remainder = per_device % chunk
    if 0 < remainder < MIN_CHUNK:
        per_device += MIN_CHUNK - remainder
    return per_device, chunk


def _global(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """NumPy arrays placed with ``sharding``; each process gives only its own devices' parts."""

    def place(value):
        value = np.asarray(value)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(place, tree)


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
    block = _eval_block(n_train, data.test_x.shape[0])
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
) -> None:
    """Raises ``ValueError`` when :func:`memory_estimate` is above what the devices have."""
    chunk = default_chunk(config, data.train_x.shape[1], devices[0].platform)
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


@dataclasses.dataclass(frozen=True)
class CompiledSeeds:
    """The compiled training of a list of seeds (at one or more learning rates); call it to run.

    Attributes:
      compiled: the ahead-of-time compiled program (``memory_analysis()`` and
        ``cost_analysis()`` describe it).
      seeds: ``<uint32>[padded]`` the seeds, padded and sharded over the devices.
      rates: ``<float32>[n_rates]`` the learning rates, replicated on every device.
      windows: the windows it was compiled for (replicated on every device).
      n_seeds: how many leading results are real; the rest is padding.
      n_rates: learning rates, or ``None`` when it was compiled for the config's one.
    """

    compiled: Any
    seeds: jax.Array
    rates: jax.Array
    windows: Windows
    n_seeds: int
    n_rates: int | None = None

    def __call__(self, data: FibonacciData | None = None) -> FitResult:
        """Trains every seed, on the windows compiled for or on ``data`` of the same shapes.

        Returns:
          A :class:`FitResult` whose fields lead with ``[n_seeds]``, or ``[n_rates, n_seeds]``
          when compiled for a list of learning rates.
        """
        windows = self.windows if data is None else self._same_shapes(data)
        result = self.compiled(self.seeds, self.rates, windows)
        if not self.seeds.is_fully_addressable:
            # Seeds trained by other processes (jax.distributed): every process gets them all.
            result = multihost_utils.process_allgather(result, tiled=True)
        if self.n_rates is None:
            return jax.tree.map(lambda leaf: leaf[0, : self.n_seeds], result)
        return jax.tree.map(lambda leaf: leaf[:, : self.n_seeds], result)

    def _same_shapes(self, data: FibonacciData) -> Windows:
        windows = Windows.of(data)
        if windows.shapes() != self.windows.shapes():
            raise ValueError(
                f"the data's windows {windows.shapes()} differ in shape from those the program"
                f" was compiled for {self.windows.shapes()}"
            )
        return _global(windows, self.windows.train_x.sharding)


def _seeds_program(
    train_on: Callable[..., FitResult], mesh: jax.sharding.Mesh, chunk: int
) -> Callable[[jax.Array, jax.Array, Windows], FitResult]:
    """``jit(shard_map(...))`` of ``train_on`` over seeds sharded on ``mesh``, one learning rate
    after another; the learning rates and the windows replicated."""

    def train_seeds(local_seeds, rates, windows):
        # A device's seeds go vmapped in chunks, one chunk after another: a working set that
        # stays in cache trains faster than one wide vmap.
        local_keys = seed_keys(local_seeds)
        batch_size = chunk or local_seeds.shape[0]

        def at_rate(learning_rate):
            # The rate is one traced scalar for the whole chunk, not a vmapped value: so each
            # seed's arithmetic is the same whatever the chunk's width, and a seed's result
            # does not depend on how the seeds were spread over devices.
            train = functools.partial(train_on, windows=windows, learning_rate=learning_rate)
            return jax.lax.map(train, local_keys, batch_size=batch_size)

        return jax.lax.map(at_rate, rates)

    seeds = P("seeds")
    return jax.jit(
        jax.shard_map(
            train_seeds,
            mesh=mesh,
            in_specs=(seeds, P(), P()),
            out_specs=P(None, "seeds"),
            check_vma=False,
        )
    )


def compile_seeds(
    config: TrainConfig,
    data: FibonacciData,
    seeds: Sequence[int],
    *,
    learning_rates: Sequence[float] | None = None,
    devices: Sequence[jax.Device] | None = None,
    chunk: int | None = None,
    program_cache: Path | None = None,
) -> CompiledSeeds:
    """Compiles the training of every seed as one call; returns what runs it.

    The seed axis is a ``jax.vmap`` axis, sharded over ``devices`` (by default every device of
    every process, after :func:`jax.distributed.initialize`) on a one-dimensional mesh with
    ``jax.shard_map``; each process places only its own devices' seeds, and every process gets
    every result. With ``learning_rates``, every seed trains
    at each rate in the same call, one rate after another (``jax.lax.map``). The windows and the
    learning rates are arguments of the compiled program, not constants: it serves any data of
    the same shapes (:meth:`CompiledSeeds.__call__`), and a program cache entry serves every
    learning rate. The seeds are padded with copies of the last one, whose results are
    dropped, so that every device trains as many and no chunk is narrower than
    :data:`MIN_CHUNK` (:func:`device_layout`): a seed's result is then the same bits however
    many devices and processes share the work.

    Args:
      config: the training protocol (its ``learning_rate`` unless ``learning_rates`` is given).
      data: the windows.
      seeds: distinct integers; seed ``s`` means ``jax.random.key(s)``.
      learning_rates: positive step sizes to train every seed at, or ``None`` for the config's.
      devices: the devices to shard over.
      chunk: seeds vmapped at once on a device (``jax.lax.map``'s ``batch_size``); a device's
        seeds go in chunks one after another (default: :func:`default_chunk`; ``None`` on
        other platforms: all at once), never fewer than :data:`MIN_CHUNK`.
      program_cache: a folder where the traced program is kept between runs
        (:mod:`fibjax.program_cache`), or ``None`` to trace it in every new process.

    Within a process, the compiled program is kept in :data:`fibjax.program_cache.COMPILED`
    (the last few, by configuration, data shapes, run count, chunk and devices): a second call
    that differs only in seeds, learning rates or the windows' values compiles nothing.

    Returns:
      A :class:`CompiledSeeds`; calling it gives a :class:`FitResult` with a leading seed axis
      on every field (``[n_rates, n_seeds]`` with ``learning_rates``), in the order given.

    >>> from fibjax.data import fibonacci_windows
    >>> run = compile_seeds(TrainConfig("vanilla", epochs=1), fibonacci_windows(n_terms=60),
    ...                     [0, 1, 2], learning_rates=[1e-3, 1e-2])
    >>> run().test_mse.shape
    (2, 3)
    """
    seeds = check_seeds(seeds)
    rates = _check_rates(config, learning_rates)
    devices = list(devices if devices is not None else jax.devices())
    platform = devices[0].platform
    if chunk is None:
        chunk = default_chunk(config, data.train_x.shape[1], platform)
    per_device, chunk = device_layout(len(seeds), len(devices), chunk)
    padded = seeds + (seeds[-1],) * (per_device * len(devices) - len(seeds))
    mesh = jax.sharding.Mesh(np.array(devices), ("seeds",))
    replicated = jax.sharding.NamedSharding(mesh, P())
    seeds_arg = _global(np.asarray(padded, np.uint32), jax.sharding.NamedSharding(mesh, P("seeds")))
    rates_arg = _global(np.asarray(rates, np.float32), replicated)
    windows = _global(Windows.of(data), replicated)

    def trace() -> Callable[..., FitResult]:
        return _seeds_program(make_train_on(config), mesh, chunk)

    parts = {
        # The learning rates and the windows' values are arguments: not part of the key.
        "config": {**dataclasses.asdict(config), "learning_rate": None},
        "windows": windows.shapes(),
        "rates": len(rates),
        "padded_seeds": len(padded),
        "chunk": chunk,
        "devices": [platform, devices[0].device_kind, len(devices)],
    }
    memo_key = program_cache_lib.memo_key(parts, devices, program_cache)
    compiled = program_cache_lib.COMPILED.get(memo_key)
    if compiled is None:
        if program_cache is None:
            lowered = trace().lower(seeds_arg, rates_arg, windows)
        else:
            lowered = program_cache_lib.lower_cached(
                program_cache, parts, trace, seeds_arg, rates_arg, windows
            )
        # Checked once the program is traced, from its parameters' shapes: before XLA's
        # compilation, the long part, without tracing the model once more to count them.
        n_params = sum(math.prod(p.shape[2:]) for p in jax.tree.leaves(lowered.out_info.params))
        check_memory(config, data, len(seeds) * len(rates), devices, n_params=n_params)
        compiled = compile_program(lowered, platform)
        program_cache_lib.COMPILED.put(memo_key, compiled)
    return CompiledSeeds(
        compiled=compiled,
        seeds=seeds_arg,
        rates=rates_arg,
        windows=windows,
        n_seeds=len(seeds),
        n_rates=None if learning_rates is None else len(rates),
    )


def _check_rates(config: TrainConfig, learning_rates: Sequence[float] | None) -> tuple[float, ...]:
    """The learning rates to train at, each validated as :class:`TrainConfig` validates one."""
    if learning_rates is None:
        return (config.learning_rate,)
    rates = tuple(learning_rates)
    if not rates:
        raise ValueError("learning_rates is empty; give at least one")
    return tuple(dataclasses.replace(config, learning_rate=lr).learning_rate for lr in rates)


def fit_seeds(
    config: TrainConfig,
    data: FibonacciData,
    seeds: Sequence[int],
    *,
    devices: Sequence[jax.Device] | None = None,
    program_cache: Path | bool = True,
    progress: bool | None = None,
) -> FitResult:
    """Trains one model under every seed in one compiled, vmapped and sharded call.

    Each seed's result equals what :func:`fit` gives for ``jax.random.key(seed)`` (to float32
    rounding), and two models trained under the same seed see the same order of windows. The
    compiled program is reused: within a process from :data:`fibjax.program_cache.COMPILED`,
    across processes from the folders :func:`fibjax.configure` turned on (see
    :func:`compile_seeds`).

    Args:
      config: the training protocol.
      data: the windows.
      seeds: distinct integers; seed ``s`` means ``jax.random.key(s)``.
      devices: the devices to shard over (by default every device of every process).
      program_cache: ``True``: the folder of traced programs that :func:`fibjax.configure` set
        up, if it was called; ``False``: none; or a folder.
      progress: show the phases (compiling, training) and their time, on a widget in Jupyter
        or a line on stderr (``tqdm.auto``); ``None``: only inside a Jupyter kernel.

    Returns:
      A :class:`FitResult` whose fields have a leading ``[n_seeds]`` axis.

    >>> from fibjax.data import fibonacci_windows
    >>> result = fit_seeds(TrainConfig("vanilla", epochs=2), fibonacci_windows(n_terms=60), [0, 1])
    >>> result.epoch_losses.shape, result.test_mse.shape
    ((2, 2), (2,))
    """
    if program_cache is True:
        from fibjax import runtime

        folder = runtime.programs_dir()
    else:
        folder = program_cache or None
    with progress_lib.Phases(show=progress) as phases:
        phases.phase(f"{config.model}: compiling for {len(seeds)} seeds")
        run = compile_seeds(config, data, seeds, devices=devices, program_cache=folder)
        phases.phase(f"{config.model}: training {len(seeds)} seeds, {config.epochs} epochs")
        return jax.block_until_ready(run())
