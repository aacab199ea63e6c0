"""How many seeds each device trains, and in chunks of how many at once.

:func:`default_chunk` is the preferred chunk for a model on a platform; :func:`device_layout`
pads the seeds so that every device trains as many and every chunk is at least
:data:`MIN_CHUNK` seeds and a multiple of :data:`SEED_ALIGN`.
"""

from __future__ import annotations

from fibjax.models import cell_entry, pooling_entry
from fibjax.training.config import TrainConfig

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
