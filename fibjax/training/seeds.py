"""Many seeds in one compiled call: ``jax.vmap`` of one seed's training, sharded over devices.

:func:`compile_seeds` compiles the training of a list of seeds (at one or more learning rates)
as one ``jit(shard_map(...))`` program, the seeds in chunks (:mod:`fibjax.training.layout`) and
checked against memory first (:mod:`fibjax.training.memory`); :class:`CompiledSeeds` runs it.
:func:`fit_seeds` compiles and runs it at once.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import PartitionSpec as P

from fibjax.data import FibonacciData
from fibjax.training import program_cache as program_cache_lib
from fibjax.training import progress as progress_lib
from fibjax.training import runtime as runtime_lib
from fibjax.training.config import FitResult, TrainConfig, Windows, check_seeds, seed_keys
from fibjax.training.initial import SeedInitials, initials_program, to_window
from fibjax.training.layout import (
    ProgramLayout,
    default_chunk,
    device_layout,
    order_dtype,
    orders_ahead_bytes,
    program_layout,
)
from fibjax.training.memory import check_memory
from fibjax.training.program import (
    compile_program,
    epoch_key,
    make_train_on,
    order_of_sorted,
    shuffle_numbers,
    shuffle_rounds,
    split_key,
)
from fibjax.training.sorting import sort_numbers


def _global(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """NumPy arrays placed with ``sharding``; each process gives only its own devices' parts."""

    def place(value):
        value = np.asarray(value)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    return jax.tree.map(place, tree)


# Rows of numbers sorted at once by the orders program (each order's shuffle rounds): the bitonic
# network's batch (fibjax.training.sorting), 0.4 MB of 826 windows, which stays in cache.
ORDER_ROWS = 128


@dataclasses.dataclass(frozen=True)
class SeedOrders:
    """Every epoch's order of the training windows for a list of seeds, drawn by a compiled
    program of its own; call it with the seeds to draw them.

    The orders depend only on the seeds, the number of training windows and the epochs, so
    every model trained on the same seeds shares them: the last ones drawn are kept in
    :data:`fibjax.training.program_cache.ORDERS`, and a comparison's or a sweep's second model
    reads them instead of drawing them again.

    Attributes:
      compiled: the program, ``<uint32>[padded] -> <uint16|int32>[padded, epochs, n_train]``.
      key: what the orders are drawn from (the program and the seeds), for the memo.
    """

    compiled: Any
    key: str

    def __call__(self, seeds: jax.Array) -> jax.Array:
        """The orders of ``seeds``, the seeds of :attr:`key` placed as the training's are."""
        return program_cache_lib.ORDERS.get_or_make(self.key, lambda: self.compiled(seeds))


def _orders_program(
    config: TrainConfig, n_train: int, layout: ProgramLayout, mesh: jax.sharding.Mesh
) -> Callable[[jax.Array], jax.Array]:
    """``jit(shard_map(...))`` drawing every epoch's order of each seed's windows (shuffled).

    A device's seeds × epochs orders are drawn as one list of rows, in blocks (padded to whole
    blocks, the padding dropped) whose shuffle rounds are sorted together, :data:`ORDER_ROWS`
    numbers' rows at once: the sort runs as wide as the network wants whatever the seeds and
    epochs, and the program has one sort to compile, not one a round. Each row is the same bits as
    the one the training would draw in its epoch loop
    (:func:`fibjax.training.program.make_window_order`): a sort of numbers has one result.
    """
    if not config.shuffle:
        raise ValueError("the orders program draws shuffled orders: config.shuffle is off")
    dtype, epochs = order_dtype(n_train), config.epochs
    sort = sort_numbers if layout.seeds_last else jax.lax.sort

    def block_orders(keys, block_epochs):
        numbers = jax.vmap(lambda k, e: shuffle_numbers(epoch_key(k, e), n_train))(
            keys, block_epochs
        )
        ranked = jax.vmap(sort)(numbers.reshape(-1, n_train)).reshape(numbers.shape)
        return jax.vmap(order_of_sorted)(ranked).astype(dtype)

    def orders_seeds(local_seeds):
        order_keys = jax.vmap(lambda key: split_key(key)[1])(seed_keys(local_seeds))
        rows = local_seeds.shape[0] * epochs
        block = min(max(1, ORDER_ROWS // shuffle_rounds(n_train)), rows)
        row = (jnp.arange(-(-rows // block) * block) % rows).reshape(-1, block)
        drawn = jax.lax.map(lambda r: block_orders(order_keys[r // epochs], r % epochs), row)
        return drawn.reshape(-1, n_train)[:rows].reshape(local_seeds.shape[0], epochs, n_train)

    seeds = P("seeds")
    return jax.jit(
        jax.shard_map(orders_seeds, mesh=mesh, in_specs=seeds, out_specs=seeds, check_vma=False)
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
      orders: the seeds' orders of the windows, drawn ahead (:class:`SeedOrders`), or ``None``
        when the program draws them in its epoch loop.
      initials: the program drawing the seeds' initial weights ahead
        (:class:`fibjax.training.initial.SeedInitials`), or ``None`` when the training
        program draws them.
    """

    compiled: Any
    seeds: jax.Array
    rates: jax.Array
    windows: Windows
    n_seeds: int
    n_rates: int | None = None
    orders: SeedOrders | None = None
    initials: SeedInitials | None = None

    @property
    def devices(self) -> tuple[jax.Device, ...]:
        """The devices the seeds are sharded over."""
        return tuple(self.seeds.sharding.mesh.devices.flat)

    def __call__(self, data: FibonacciData | None = None) -> FitResult:
        """Trains every seed, on the windows compiled for or on ``data`` of the same shapes.

        Returns:
          A :class:`FitResult` whose fields lead with ``[n_seeds]``, or ``[n_rates, n_seeds]``
          when compiled for a list of learning rates.
        """
        windows = self.windows if data is None else self._same_shapes(data)
        orders = () if self.orders is None else (self.orders(self.seeds),)
        initials = () if self.initials is None else (self.initials(self.seeds),)
        result = self.compiled(self.seeds, self.rates, windows, *orders, *initials)
        one_rate = self.n_rates is None
        if self.seeds.is_fully_addressable:
            return _unpadded(result, self.n_seeds, one_rate)
        # Seeds trained by other processes (jax.distributed): every process gets them all.
        result = multihost_utils.process_allgather(result, tiled=True)
        return jax.tree.map(lambda leaf: _real_seeds(leaf, self.n_seeds, one_rate), result)

    def _same_shapes(self, data: FibonacciData) -> Windows:
        windows = Windows.of(data)
        if windows.shapes() != self.windows.shapes():
            raise ValueError(
                f"the data's windows {windows.shapes()} differ in shape from those the program"
                f" was compiled for {self.windows.shapes()}"
            )
        return _global(windows, self.windows.train_x.sharding)


def _real_seeds(leaf: Any, n_seeds: int, one_rate: bool) -> Any:
    """A result ``[n_rates, padded, ...]`` without its padding seeds (and its rate axis when
    ``one_rate``)."""
    return leaf[0, :n_seeds] if one_rate else leaf[:, :n_seeds]


@functools.partial(jax.jit, static_argnames=("n_seeds", "one_rate"))
def _unpadded(result: FitResult, n_seeds: int, one_rate: bool) -> FitResult:
    """:func:`_real_seeds` of every field, in one compiled call: sliced one by one, the fields
    of a sharded result took an eager dispatch each, 3-4 ms a call (a tenth of a 5-epoch call of
    the vanilla model at 256 seeds; benchmarks/NOTES.md)."""
    return jax.tree.map(lambda leaf: _real_seeds(leaf, n_seeds, one_rate), result)


def _seeds_program(
    train_on: Callable[..., FitResult],
    mesh: jax.sharding.Mesh,
    chunk: int,
    orders: bool,
    initials: Callable[[Any], Any] | None,
) -> Callable[..., FitResult]:
    """``jit(shard_map(...))`` of ``train_on`` over seeds sharded on ``mesh``, one learning rate
    after another; the learning rates and the windows replicated, the orders (when ``orders``)
    and the initial weights as drawn ahead (when ``initials``, which makes them the model's)
    sharded with the seeds, in that order."""

    def train_seeds(local_seeds, rates, windows, *ahead):
        local_orders = ahead[0] if orders else None
        local_initials = None if initials is None else initials(ahead[-1])
        # A device's seeds go vmapped in chunks, one chunk after another: a working set that
        # stays in cache trains faster than one wide vmap.
        local_keys = seed_keys(local_seeds)
        batch_size = chunk or local_seeds.shape[0]

        def at_rate(learning_rate):
            # The rate is one traced scalar for the whole chunk, not a vmapped value: so each
            # seed's arithmetic is the same whatever the chunk's width, and a seed's result
            # does not depend on how the seeds were spread over devices.
            def train(each):
                key, order, params = each
                return train_on(key, windows, learning_rate, params, order)

            each = (local_keys, local_orders, local_initials)
            return jax.lax.map(train, each, batch_size=batch_size)

        return jax.lax.map(at_rate, rates)

    seeds = P("seeds")
    return jax.jit(
        jax.shard_map(
            train_seeds,
            mesh=mesh,
            in_specs=(seeds, P(), P(), *([seeds] * (orders + (initials is not None)))),
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
    layout: str | ProgramLayout = "auto",
    initials_along: Sequence[str] = (),
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
    :data:`fibjax.training.layout.MIN_CHUNK` (:func:`fibjax.training.layout.device_layout`): a
    seed's result is then the same bits however many devices and processes share the work. In
    the CPU layout the seeds' orders of the windows are drawn ahead by a program of their own,
    which every model on the same seeds shares (:class:`SeedOrders`); the same orders the
    training would draw in its epoch loop.

    Args:
      config: the training protocol (its ``learning_rate`` unless ``learning_rates`` is given).
      data: the windows.
      seeds: distinct integers; seed ``s`` means ``jax.random.key(s)``.
      learning_rates: positive step sizes to train every seed at, or ``None`` for the config's.
      devices: the devices to shard over.
      chunk: seeds vmapped at once on a device (``jax.lax.map``'s ``batch_size``); a device's
        seeds go in chunks one after another (default:
        :func:`fibjax.training.layout.default_chunk`; in the accelerator layout all at
        once), never fewer than :data:`fibjax.training.layout.MIN_CHUNK`.
      program_cache: a folder where the traced program is kept between runs
        (:mod:`fibjax.training.program_cache`), or ``None`` to trace it in every new process.
      layout: the program's shape: ``"auto"`` (the devices' platform's), ``"cpu"`` (time loops,
        seeds last, chunks) or ``"accelerator"`` (every time step written out, ``vmap``'s
        layout, all seeds at once); see :func:`fibjax.training.layout.program_layout`. Forced
        on a CPU, the accelerator program is how CI tests the program a GPU runs.
      initials_along: other models (pooling names) that a study trains with the same cell,
        hidden size and seeds: in the CPU layout, one program draws their initial weights with
        this model's (:func:`fibjax.training.initial.initials_program`), and their own calls
        find it compiled.

    Within a process, the compiled program is kept in :data:`fibjax.training.program_cache.COMPILED`
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
    layout = program_layout(layout, platform)
    if chunk is None:
        chunk = default_chunk(config, data.train_x.shape[1], layout)
    per_device, chunk = device_layout(len(seeds), len(devices), chunk)
    padded = seeds + (seeds[-1],) * (per_device * len(devices) - len(seeds))
    mesh = jax.sharding.Mesh(np.array(devices), ("seeds",))
    replicated = jax.sharding.NamedSharding(mesh, P())
    seeds_arg = _global(np.asarray(padded, np.uint32), jax.sharding.NamedSharding(mesh, P("seeds")))
    rates_arg = _global(np.asarray(rates, np.float32), replicated)
    windows = _global(Windows.of(data), replicated)

    orders_args = _orders_spec(config, data, len(padded), layout, mesh)
    # The programs beside the training program: compiled in threads while it compiles (XLA
    # releases Python's lock), each from this process's memo when it has it. They start once
    # the training program is lowered: started before, their tracing took Python's lock from
    # the training program's, which is the longer path (benchmarks/NOTES.md).
    beside = {}
    if orders_args:
        beside["orders"] = lambda: _compile_orders(
            config, data, padded, layout, mesh, program_cache
        )
    initials_args, initials = (), None
    if layout.initials_ahead:
        window, in_features = data.train_x.shape[1:]
        beside["initials"], shapes, repeat_to = initials_program(
            config, window, in_features, len(padded), mesh, program_cache, initials_along
        )
        initials_args = (shapes,)
        initials = functools.partial(to_window, model=config.model, window=repeat_to)
    ahead = (*orders_args, *initials_args)

    def trace() -> Callable[..., FitResult]:
        train_on = make_train_on(config, layout)
        return _seeds_program(train_on, mesh, chunk, bool(orders_args), initials)

    parts = {
        # The learning rates and the windows' values are arguments: not part of the key.
        "config": {**dataclasses.asdict(config), "learning_rate": None},
        "windows": windows.shapes(),
        "rates": len(rates),
        "padded_seeds": len(padded),
        "chunk": chunk,
        "layout": dataclasses.asdict(layout),
        "orders_ahead": [str(spec.dtype) for spec in orders_args],
        "devices": [platform, devices[0].device_kind, len(devices)],
    }
    memo_key = program_cache_lib.memo_key(parts, devices, program_cache)

    def make() -> Any:
        if program_cache is None:
            lowered = trace().lower(seeds_arg, rates_arg, windows, *ahead)
        else:
            lowered = program_cache_lib.lower_cached(
                program_cache, parts, trace, seeds_arg, rates_arg, windows, *ahead
            )
        # Checked once the program is traced, from its parameters' shapes: before XLA's
        # compilation, the long part, without tracing the model once more to count them.
        n_params = sum(math.prod(p.shape[2:]) for p in jax.tree.leaves(lowered.out_info.params))
        check_memory(
            config, data, len(seeds) * len(rates), devices, n_params=n_params, layout=layout
        )
        start_beside()
        return compile_program(lowered, platform)

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(beside))) as pool:
        futures = {}

        def start_beside():
            # Called from make() once the training program is lowered, and again after it for
            # a program found in the memo (make() did not run): each program starts once.
            for name, compile_beside in beside.items():
                if name not in futures:
                    futures[name] = pool.submit(compile_beside)

        # Two threads compiling the same program (a study compiles ahead) wait for one.
        compiled = program_cache_lib.COMPILED.get_or_make(memo_key, make)
        start_beside()
        done = {name: future.result() for name, future in futures.items()}
    return CompiledSeeds(
        compiled=compiled,
        seeds=seeds_arg,
        rates=rates_arg,
        windows=windows,
        n_seeds=len(seeds),
        n_rates=None if learning_rates is None else len(rates),
        orders=done.get("orders"),
        initials=done.get("initials"),
    )


def _orders_spec(
    config: TrainConfig,
    data: FibonacciData,
    n_padded: int,
    layout: ProgramLayout,
    mesh: jax.sharding.Mesh,
) -> tuple[jax.ShapeDtypeStruct, ...]:
    """The orders argument of the training program: ``()`` when it draws them in its epoch loop
    (the layout does not draw ahead, nothing is shuffled, or they would take too much memory),
    else the shape of the seeds' orders drawn ahead, sharded with the seeds."""
    n_train = data.train_x.shape[0]
    if not orders_ahead_bytes(config, n_train, n_padded, layout):
        return ()
    shape = (n_padded, config.epochs, n_train)
    sharding = jax.sharding.NamedSharding(mesh, P("seeds"))
    return (jax.ShapeDtypeStruct(shape, order_dtype(n_train), sharding=sharding),)


def _compile_orders(
    config: TrainConfig,
    data: FibonacciData,
    padded: Sequence[int],
    layout: ProgramLayout,
    mesh: jax.sharding.Mesh,
    program_cache: Path | None,
) -> SeedOrders:
    """The compiled program that draws the orders of the seeds ``padded`` ahead
    (:func:`_orders_program`), from this process's memo when it has it."""
    devices = list(mesh.devices.flat)
    n_train = data.train_x.shape[0]
    parts = {
        "orders": {
            "n_train": n_train,
            "epochs": config.epochs,
            "layout": layout.name,
            "dtype": str(order_dtype(n_train)),
        },
        "padded_seeds": len(padded),
        "devices": [devices[0].platform, devices[0].device_kind, len(devices)],
    }
    key = program_cache_lib.memo_key(parts, devices, program_cache)

    def make():
        seeds = jax.ShapeDtypeStruct(
            (len(padded),), np.uint32, sharding=jax.sharding.NamedSharding(mesh, P("seeds"))
        )
        lowered = _orders_program(config, n_train, layout, mesh).lower(seeds)
        return compile_program(lowered, devices[0].platform)

    compiled = program_cache_lib.COMPILED.get_or_make(key, make)
    drawn = key + program_cache_lib.array_digest([np.asarray(padded, np.uint32)])
    return SeedOrders(compiled=compiled, key=drawn)


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
    layout: str | ProgramLayout = "auto",
) -> FitResult:
    """Trains one model under every seed in one compiled, vmapped and sharded call.

    Each seed's result equals what :func:`fibjax.training.program.fit` gives for
    ``jax.random.key(seed)`` (to float32 rounding), and two models trained under the same seed
    see the same order of windows. The compiled program is reused: within a process from
    :data:`fibjax.training.program_cache.COMPILED`, across processes from the folders
    :func:`fibjax.configure` turned on (see :func:`compile_seeds`).

    Args:
      config: the training protocol.
      data: the windows.
      seeds: distinct integers; seed ``s`` means ``jax.random.key(s)``.
      devices: the devices to shard over (by default every device of every process).
      program_cache: ``True``: the folder of traced programs that :func:`fibjax.configure` set
        up, if it was called; ``False``: none; or a folder.
      progress: show the phases (compiling, training) and their time, on a widget in Jupyter
        or a line on stderr (``tqdm.auto``); ``None``: only inside a Jupyter kernel.
      layout: ``"auto"``, ``"cpu"`` or ``"accelerator"``, as in :func:`compile_seeds`.

    Returns:
      A :class:`FitResult` whose fields have a leading ``[n_seeds]`` axis.

    >>> from fibjax.data import fibonacci_windows
    >>> result = fit_seeds(TrainConfig("vanilla", epochs=2), fibonacci_windows(n_terms=60), [0, 1])
    >>> result.epoch_losses.shape, result.test_mse.shape
    ((2, 2), (2,))
    """
    folder = runtime_lib.programs_dir() if program_cache is True else program_cache or None
    with progress_lib.Phases(show=progress) as phases:
        phases.phase(f"{config.model}: compiling for {len(seeds)} seeds")
        run = compile_seeds(
            config, data, seeds, devices=devices, program_cache=folder, layout=layout
        )
        on = runtime_lib.devices_in_words(run.devices)
        what = f"{len(seeds)} seeds, {config.epochs} epochs"
        phases.phase(f"{config.model}: training {what}, on {on}")
        return jax.block_until_ready(run())
