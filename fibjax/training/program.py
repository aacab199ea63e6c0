"""Training with the notebook's protocol, as one pure function of a PRNG key.

:func:`make_train` builds ``train(key) -> FitResult``: ``lax.scan`` over epochs, a fresh
permutation of the training windows each epoch (:func:`shuffled_order`, drawn by
:func:`make_window_order`), ``lax.scan`` over mini-batches with the Optax update inside.
:func:`make_train_on` is the same training with the windows, the learning rate and optionally
every epoch's order (drawn ahead) as arguments. :func:`compile_program` compiles a lowered program
with fibjax's XLA options; :func:`fit` runs one seed under ``jax.jit``
(:func:`fibjax.training.seeds.fit_seeds` runs many).
"""

from __future__ import annotations

import functools
import logging
import math
import operator
import re
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from fibjax.data import FibonacciData
from fibjax.models import make_model, seeds_last
from fibjax.training import threefry
from fibjax.training.config import FitResult, TrainConfig, Windows
from fibjax.training.evaluation import train_test_mse
from fibjax.training.layout import ProgramLayout, program_layout
from fibjax.training.optim import make_step
from fibjax.training.sorting import sort_numbers


def shuffled_order(key: jax.Array, n: int, *, network: bool = True) -> jax.Array:
    """A uniformly random permutation of ``range(n)``, as ``jax.random.permutation`` draws it.

    ``jax.random.permutation`` sorts random keys paired with the indices. Here each index is
    packed into the low bits of one random ``uint32`` and the packed numbers are sorted alone:
    XLA's CPU runtime sorts one array of numbers about five times faster than key-value pairs,
    and the permutation had taken about a quarter of a training epoch. Equal random bits keep
    their index order, so, as JAX does, the sort is repeated until ties are negligible: rounds
    ``= ceil(3 ln n / ln 2^r)`` for ``r`` random bits (:func:`shuffle_numbers` draws each round's
    numbers, :func:`order_of_sorted` composes the sorted rounds). Under ``vmap`` over seeds the
    rows are sorted together (:func:`fibjax.training.sorting.sort_numbers`), with the same result.
    The random bits are ``jax.random``'s, computed by :mod:`fibjax.training.threefry`.

    Args:
      key: a ``jax.random.key``.
      n: the length, at most ``2**24`` (room for 8 random bits).
      network: under ``vmap`` on a CPU, sort by the bitonic network; ``False``: by
        ``jax.lax.sort`` everywhere. The same permutation either way.

    Returns:
      ``<int32>[n]``, each of ``0 .. n-1`` once.

    >>> order = shuffled_order(jax.random.key(0), 5)
    >>> sorted(order.tolist())
    [0, 1, 2, 3, 4]
    """
    sort = sort_numbers if network else jax.lax.sort
    return order_of_sorted(jnp.stack([sort(numbers) for numbers in shuffle_numbers(key, n)]))


def _index_bits(n: int) -> int:
    """Low bits of a shuffle's number that hold the index, for ``n`` indices."""
    if not 1 <= n <= 2**24:
        raise ValueError(f"n={n!r} must be from 1 to 2**24")
    return max(1, (n - 1).bit_length())


def shuffle_rounds(n: int) -> int:
    """The rounds of sorting a shuffle of ``n`` indices takes: ``ceil(3 ln n / ln 2^r)`` for ``r``
    random bits.

    >>> shuffle_rounds(826), shuffle_rounds(51)
    (2, 1)
    """
    random_bits = 32 - _index_bits(n)
    return max(1, math.ceil(3 * math.log(n) / (random_bits * math.log(2))))


def shuffle_numbers(key: jax.Array, n: int) -> jax.Array:
    """The numbers each round of :func:`shuffled_order` sorts, ``<uint32>[rounds, n]``.

    Round ``r``'s numbers are the random bits of the key's ``r``-th split with the index
    ``0 .. n-1`` in their low bits; sorted (in any way: a sort of numbers has one result), they go
    to :func:`order_of_sorted`.
    """
    index_bits = _index_bits(n)
    index = jnp.arange(n, dtype=jnp.uint32)
    high = ~jnp.uint32((1 << index_bits) - 1)
    rounds = threefry.split(key, shuffle_rounds(n))
    return jnp.stack([threefry.bits(round_key, n) & high | index for round_key in rounds])


def order_of_sorted(ranked: jax.Array) -> jax.Array:
    """The permutation ``<int32>[n]`` from each round's numbers sorted, ``<uint32>[rounds, n]``.

    Each sorted round's low bits are the indices in that round's order; the rounds apply one
    after another.

    >>> order_of_sorted(jnp.array([[2, 0, 1], [0, 2, 1]], jnp.uint32)).tolist()
    [2, 1, 0]
    """
    n = ranked.shape[1]
    low = jnp.uint32((1 << _index_bits(n)) - 1)
    order = jnp.arange(n, dtype=jnp.uint32)
    for sorted_round in ranked:
        order = order[sorted_round & low]
    return order.astype(jnp.int32)


def split_key(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A seed's key split into the keys of its initial weights and of its windows' order.

    Both are drawn from, and draw, threefry's bits through the written-out hash
    (:func:`fibjax.training.threefry.written_out`): the same bits, less to compile.

    >>> init_key, order_key = split_key(jax.random.key(0))
    """
    init_key, order_key = jax.random.split(threefry.written_out(key))
    return init_key, order_key


def make_window_order(
    config: TrainConfig, n_train: int, layout: str | ProgramLayout = "auto"
) -> Callable[[jax.Array, jax.Array], jax.Array]:
    """Builds ``order(order_key, epoch) -> <int32>[n_train]``, an epoch's order of the windows.

    The order in which a seed's training reads its training windows in epoch ``epoch``
    (``<int32>[]``, from 0): a fresh :func:`shuffled_order` under the epoch's key, or the windows
    in turn when ``config.shuffle`` is off. ``order_key`` is the second key of
    :func:`split_key`. Training draws it inside its epoch loop, or takes every epoch's order
    drawn ahead (``orders`` of :func:`make_train_on`).

    >>> order = make_window_order(TrainConfig("vanilla"), 5)
    >>> sorted(order(split_key(jax.random.key(0))[1], 0).tolist())
    [0, 1, 2, 3, 4]
    """
    layout = program_layout(layout, default_platform())

    def order(order_key: jax.Array, epoch: jax.Array) -> jax.Array:
        if not config.shuffle:
            return jnp.arange(n_train, dtype=jnp.int32)
        return shuffled_order(epoch_key(order_key, epoch), n_train, network=layout.seeds_last)

    return order


def epoch_key(order_key: jax.Array, epoch: jax.Array) -> jax.Array:
    """The key of epoch ``epoch``'s shuffle (:func:`make_window_order`) from a seed's order key.

    >>> epoch_key(split_key(jax.random.key(0))[1], 3).shape
    ()
    """
    return threefry.fold_in(order_key, epoch)


def default_platform() -> str:
    """The platform of the device that ``jax.jit`` runs on by default (``jax.default_device``
    when set, else the default backend's).

    >>> with jax.default_device(jax.devices("cpu")[0]):
    ...     default_platform()
    'cpu'
    """
    device = jax.config.jax_default_device
    if isinstance(device, str):  # a platform's name
        return jax.devices(device)[0].platform
    return (device or jax.devices()[0]).platform


def _mse(model, params, x, y):
    return jnp.mean(jnp.square(model.apply({"params": params}, x) - y))


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves]))


def _first_failure(finite: jax.Array) -> jax.Array:
    """1-based index of the first False in ``<bool>[epochs]``, or 0 when all are True."""
    failed = ~finite
    return jnp.where(jnp.any(failed), jnp.argmax(failed) + 1, 0).astype(jnp.int32)


def make_train_on(
    config: TrainConfig, layout: str | ProgramLayout = "auto"
) -> Callable[..., FitResult]:
    """Builds ``train(key, windows, learning_rate, params=None, orders=None) -> FitResult``.

    The same training as :func:`make_train`, with the windows (:class:`Windows`) and the
    learning rate as arguments: traced, a compiled program serves every data set of the same
    shapes and every learning rate (``config.learning_rate`` is not used). ``orders``
    (``<int>[epochs, n_train]``): every epoch's order of the training windows, drawn ahead by
    :func:`make_window_order` from the key's :func:`split_key`; ``None``: each epoch draws its
    own inside the epoch loop. The same orders give the same training either way.

    Args:
      config: the training protocol.
      layout: the program's shape (:func:`fibjax.training.layout.program_layout`; ``"auto"``:
        the default device's platform's).

    Returns:
      A pure function of a key, windows, a ``<float32>[]`` learning rate, optional starting
      parameters and optional orders, to be jitted or vmapped.

    >>> from fibjax.data import fibonacci_windows
    >>> train = make_train_on(TrainConfig("vanilla", epochs=2))
    >>> windows = Windows.of(fibonacci_windows(n_terms=60))
    >>> result = jax.jit(train)(jax.random.key(0), windows, 1e-2)
    >>> result.epoch_losses.shape
    (2,)
    """
    layout = program_layout(layout, default_platform())
    model = make_model(
        config.model,
        config.hidden,
        cell=config.cell,
        unroll=layout.time_unroll(config),
        seeds_last_form=layout.seeds_last,
    )

    def train(
        key: jax.Array,
        windows: Windows,
        learning_rate: Any,
        params: Any = None,
        orders: jax.Array | None = None,
    ) -> FitResult:
        init, step = make_step(config.optimizer, learning_rate, written_out=layout.seeds_last)
        init_key, order_key = split_key(key)
        if params is None:
            params = model.init(init_key, windows.train_x[:1])["params"]
        params = jax.tree.map(lambda p: jnp.asarray(p, jnp.float32), params)
        if orders is None:
            # Each epoch draws its order inside the epoch loop.
            window_order = make_window_order(config, windows.train_x.shape[0], layout)
            epochs = jnp.arange(config.epochs)
            xs, order_of = epochs, functools.partial(window_order, order_key)
        else:
            xs, order_of = orders, lambda order: order.astype(jnp.int32)
        run_epoch = _epoch_runner(config, layout, model, step, windows, order_of)
        carry = (params, init(params))
        (params, _), (losses, finite, steps) = jax.lax.scan(run_epoch, carry, xs)
        train_mse, test_mse = train_test_mse(model, params, windows)
        return FitResult(
            params=params,
            epoch_losses=losses,
            train_mse=train_mse,
            test_mse=test_mse,
            diverged_epoch=_first_failure(finite),
            step_losses=steps,
        )

    return train


def _epoch_runner(config, layout, model, step, windows: Windows, order_of) -> Callable:
    """``run_epoch(carry, x) -> (carry, (loss, finite, step_losses))`` for ``lax.scan``;
    ``step`` is the optimizer's (:func:`fibjax.training.optim.make_step`), ``order_of(x)`` the
    epoch's order of the training windows."""
    n_train, batch = windows.train_x.shape[0], config.batch_size
    n_full, remainder = divmod(n_train, batch)

    # Seed-last, each step's windows are gathered in the layout its seed-last passes read.
    take = seeds_last.take_rows if layout.seeds_last else operator.getitem

    def update(carry, indices):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(_mse, argnums=1)(
            model, params, take(windows.train_x, indices), windows.train_y[indices]
        )
        return step(grads, opt_state, params), loss

    def run_epoch(carry, x):
        order = order_of(x)
        batches = order[: n_full * batch].reshape(n_full, batch)
        carry, losses = jax.lax.scan(update, carry, batches, unroll=layout.steps_per_iteration)
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
    layout: str | ProgramLayout = "auto",
) -> Callable[..., FitResult]:
    """Builds ``train(key, params=None) -> FitResult``, the whole training of one seed.

    ``key`` is split into one key for the initial weights and one for the data order, so two
    models trained under the same key see the same sequence of training windows. With
    ``params`` given, training starts from them instead (the first key goes unused).

    Args:
      config: the training protocol.
      data: the windows; cast to float32 here.
      layout: the program's shape, as in :func:`make_train_on`.

    Returns:
      A pure function of a key (and optional parameters), to be jitted or vmapped.

    >>> from fibjax.data import fibonacci_windows
    >>> train = make_train(TrainConfig("vanilla", epochs=2), fibonacci_windows(n_terms=60))
    >>> result = jax.jit(train)(jax.random.key(0))
    >>> result.epoch_losses.shape
    (2,)
    """
    train_on = make_train_on(config, layout)
    windows = Windows.of(data)

    def train(key: jax.Array, params: Any = None) -> FitResult:
        return train_on(key, windows, config.learning_rate, params)

    return train


# XLA's CPU backend hands larger reductions to the YNNPACK library. For this model's reductions
# (over 20 time steps and 2 units) the library call costs far more than the work: with it, the
# attention model trained 4.5 times slower per seed once a device ran more than about 100 seeds
# at once (benchmarks/NOTES.md). fibjax's programs opt out; XLA's own loops do the reductions.
# XLA asks LLVM for 256-bit vectors by default. The seed-last loops (fibjax.models.seeds_last)
# run 128 seeds side by side, so on a CPU with AVX-512 twice as many lanes per instruction trained
# the vanilla model 1.08-1.11 and the attention model 1.20 times as fast, with the same bits; a
# CPU without 512-bit vectors uses its widest. Some of XLA's reductions follow the width: the
# additive and dot forms trained on 5 seeds of a small data set differ in their last bits.
# XLA's older fusion code generator (LLVM IR written directly, not through MLIR) compiles the same
# programs in less time with the same bits and the same speed: a model's programs in 0.73-0.94 of
# the time, the initial weights' and the orders' in 0.5-0.7 (benchmarks/NOTES.md).
CPU_COMPILER_OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "",
    "xla_cpu_prefer_vector_width": 512,
    "xla_cpu_use_fusion_emitters": False,
}
_UNKNOWN_OPTION = re.compile(r"No such compile option: '([^']+)'")
_LOG = logging.getLogger(__name__)


def compile_program(lowered: jax.stages.Lowered, platform: str) -> jax.stages.Compiled:
    """Compiles a lowered training program with fibjax's options for ``platform``.

    On a CPU the options are :data:`CPU_COMPILER_OPTIONS`; those an XLA does not know (an older
    JAX, without YNNPACK fusions) are left out, one by one, each logged at the ``DEBUG`` level
    (a misspelt option would otherwise be dropped unseen while tuning).

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
            _LOG.debug("XLA has no compile option %r; compiling without it", unknown.group(1))
            del options[unknown.group(1)]


def fit(
    config: TrainConfig,
    data: FibonacciData,
    *,
    key: jax.Array,
    params: Any = None,
    layout: str | ProgramLayout = "auto",
) -> FitResult:
    """Trains one model under one key, as one jitted call.

    Args:
      config: the training protocol.
      data: the windows.
      key: a ``jax.random.key``; see :func:`make_train` for how it is used.
      params: optional starting weights (for example from
        :func:`fibjax.models.keras_compat.from_keras_weights`); otherwise initialised from ``key``.
      layout: ``"auto"`` (the default backend's program), ``"cpu"`` or ``"accelerator"``
        (:func:`fibjax.training.layout.program_layout`).

    Returns:
      The :class:`FitResult` of the run.

    >>> from fibjax.data import fibonacci_windows
    >>> config = TrainConfig("attention", epochs=1)
    >>> result = fit(config, fibonacci_windows(n_terms=60), key=jax.random.key(0))
    >>> result.test_mse.shape
    ()
    """
    lowered = jax.jit(make_train(config, data, layout)).lower(key, params)
    return compile_program(lowered, default_platform())(key, params)
