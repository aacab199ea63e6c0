"""The shape of a training program for its backend, and how the seeds are spread over devices.

:func:`program_layout` makes the one choice between the CPU's program and the accelerators'
(:class:`ProgramLayout`), from the platform or forced by name. :func:`default_chunk` is the
preferred chunk of seeds for a model in a layout; :func:`device_layout` pads the seeds so that
every device trains as many and every chunk is at least :data:`MIN_CHUNK` seeds and a multiple
of :data:`SEED_ALIGN`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from fibjax.models import cell_entry, pooling_entry
from fibjax.training.config import TrainConfig

# What a user may ask for: the platform's own choice, or one of the two programs by name.
LAYOUTS = ("auto", "cpu", "accelerator")


@dataclasses.dataclass(frozen=True)
class ProgramLayout:
    """How the training program is written for a backend.

    A CPU runs a loop iteration for the cost of a jump, and vectorises only along an array's
    innermost axis. A GPU or TPU pays kernel launches for every iteration of a loop (and a round
    trip to the host for a conditional), and runs any layout of the seeds wide. So the CPU's
    program keeps the time loops as loops and runs the written-out passes with the seed axis last
    (:mod:`fibjax.models.seeds_last`), in cache-sized chunks of seeds; the accelerators' writes
    every time step out (no loop inside a training step), uses ``vmap``'s own layout, sorts with
    ``jax.lax.sort`` and trains all of a device's seeds at once.

    Attributes:
      name: ``"cpu"`` or ``"accelerator"``.
      seeds_last: the written-out passes and the shuffle's sort run seed-last under ``vmap``.
      unroll_time: every time step written out (``lax.scan(..., unroll=True)``), not a loop.
      steps_per_iteration: training steps per iteration of the step loop (``lax.scan``'s
        ``unroll`` over the mini-batches).
      chunked: a device trains its seeds in chunks (:func:`default_chunk`), not all at once.
      orders_ahead: every epoch's order of the windows is drawn before training, by a program
        of its own that every model trained on the same seeds shares, instead of inside each
        model's epoch loop.
      initials_ahead: the seeds' initial weights are drawn before training, by a program of
        their own that every window and scaling of a model shares
        (:mod:`fibjax.training.initial`), instead of inside each training program.
    """

    name: str
    seeds_last: bool
    unroll_time: bool
    steps_per_iteration: int = 1
    chunked: bool = True
    orders_ahead: bool = False
    initials_ahead: bool = False

    def time_unroll(self, config: TrainConfig) -> int | bool:
        """The recurrent loops' ``unroll``: ``True`` (no loop) or the config's."""
        return True if self.unroll_time else config.unroll


# On a CPU the shuffle was a fifth of a training program's XLA compile time (256 seeds: vanilla
# 1.52 s with it, 1.17 s without; attention 1.87 and 1.51 s) and of the vanilla model's epoch.
# Drawn ahead, it is compiled once for every model of a comparison or a sweep on the same seeds,
# and drawn once for all of them: a second model trained 1.29 (vanilla) and 1.13 (attention) times
# as fast (benchmarks/NOTES.md). The accelerators' program keeps it inside (not measured there;
# every epoch's orders of very many seeds at once take much memory).
# The initial weights likewise: a quarter to a third of a training program's compile time on a CPU
# (fibjax.training.initial). Not measured on an accelerator, whose program keeps them inside.
CPU_LAYOUT = ProgramLayout(
    "cpu", seeds_last=True, unroll_time=False, orders_ahead=True, initials_ahead=True
)
# One step per iteration of the step loop until measured otherwise on a GPU
# (benchmarks/accelerator.py measures 1, 2 and 4; benchmarks/NOTES.md).
ACCELERATOR_LAYOUT = ProgramLayout("accelerator", seeds_last=False, unroll_time=True, chunked=False)


def program_layout(layout: str | ProgramLayout, platform: str) -> ProgramLayout:
    """The program's layout: ``layout`` by name, or for ``"auto"`` the one of ``platform``.

    Args:
      layout: ``"auto"``, ``"cpu"``, ``"accelerator"`` or a :class:`ProgramLayout`.
      platform: the devices' platform (``"cpu"``, ``"gpu"``, ``"cuda"``, ``"tpu"``, ...).

    Returns:
      :data:`CPU_LAYOUT` for a CPU, :data:`ACCELERATOR_LAYOUT` for any other platform, or the
      layout named.

    Raises:
      ValueError: ``layout`` is not one of :data:`LAYOUTS`.

    >>> program_layout("auto", "cuda").name, program_layout("accelerator", "cpu").unroll_time
    ('accelerator', True)
    """
    if isinstance(layout, ProgramLayout):
        return layout
    if layout not in LAYOUTS:
        raise ValueError(f"layout={layout!r} is unknown; choose one of {LAYOUTS}")
    if layout == "auto":
        layout = "cpu" if platform == "cpu" else "accelerator"
    return CPU_LAYOUT if layout == "cpu" else ACCELERATOR_LAYOUT


# Orders drawn ahead are held for every seed and epoch at once, and this process keeps the last
# three sets (fibjax.training.program_cache.ORDERS): beyond this, about 2,700 seeds of the
# notebook's data at 30 epochs, the program draws them in its epoch loop instead, in memory that
# does not grow with the epochs. The same orders, so the same results, either way.
ORDERS_AHEAD_BYTES = 1 << 27


def order_dtype(n_train: int) -> np.dtype:
    """The type of a window's index in orders drawn ahead: ``uint16`` up to ``2**16`` windows.

    >>> order_dtype(826), order_dtype(10**5)
    (dtype('uint16'), dtype('int32'))
    """
    return np.dtype(np.uint16 if n_train <= 2**16 else np.int32)


def orders_ahead_bytes(
    config: TrainConfig, n_train: int, n_seeds: int, layout: ProgramLayout
) -> int:
    """The bytes of the orders drawn ahead for ``n_seeds`` seeds (padding included), or 0 when
    the program draws them in its epoch loop: the layout does not draw ahead, nothing is
    shuffled, or they would take more than :data:`ORDERS_AHEAD_BYTES`.

    >>> orders_ahead_bytes(TrainConfig("vanilla"), 826, 64, CPU_LAYOUT)
    3171840
    >>> orders_ahead_bytes(TrainConfig("vanilla"), 826, 64, ACCELERATOR_LAYOUT)
    0
    """
    if not (layout.orders_ahead and config.shuffle):
        return 0
    size = n_seeds * config.epochs * n_train * order_dtype(n_train).itemsize
    return size if size <= ORDERS_AHEAD_BYTES else 0


# On a CPU, seeds train fastest in chunks of one to two hundred: measured on 2 cores
# (benchmarks/NOTES.md), 256 vanilla or 128 attention seeds at window 20 and hidden 2 per chunk.
# Chunks also bound the program's memory, whatever the seed count. Other parts scale the work per
# seed by their registry entries: a cell's fused gates, a pooling's cost.
CPU_CHUNK_BUDGET = 10240


def default_chunk(config: TrainConfig, window: int, layout: ProgramLayout) -> int | None:
    """Seeds per vmapped chunk on one device: ``None`` (all at once) unless ``layout.chunked``."""
    if not layout.chunked:
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
# With each training loop compiled into one kernel (fibjax.training.runtime.xla_flags) the seed
# axis is the vectorised one, and the seeds past the last full vector of a chunk are computed by
# other code: with 70 seeds at once, seeds 65 and 66 differed in their last bits from the same
# seeds trained 128 at once, while every width that is a multiple of 8 gave the same bits. Devices
# and chunks take multiples of this many seeds (16: room for 512-bit vectors).
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
