"""Sorting many short rows of numbers at once, as the per-epoch shuffle needs.

Each epoch, every seed sorts two rows of 826 random ``uint32``
(``fibjax.training.program.shuffled_order``). Under ``vmap`` that is one batched sort, and XLA's CPU
runtime sorts each row on its own with ``std::stable_sort``: about a seventh of a training epoch
(benchmarks/NOTES.md). A bitonic sorting network over the whole batch, with the batch axis
innermost, does the comparisons as minimum and maximum of contiguous vectors: with two CPU devices
each sorting 128 rows of 826 at once, 3.9 ms a round against 4.8 ms (one device alone: 4.6 against
4.2 ms). With the training loops compiled whole (fibjax.training.runtime.xla_flags) the vanilla
model trains 1.14 and the attention model 1.08 times as fast with it at 256 seeds. In the network's
all-ascending form the rows past ``n`` need no work, which trained the vanilla model 1.04-1.09 times
as fast again. A sort of numbers (no values carried along) has one result, so every correct sort
gives the same bits.
"""

from __future__ import annotations

import jax
import jax.custom_batching
import jax.numpy as jnp

from fibjax.models.seeds_last import by_platform, computed_once


def _network(x: jax.Array) -> jax.Array:
    """Sorts ``<dtype>[n, batch]`` ascending along the first axis, for any ``n``.

    The bitonic network in its all-ascending form, for ``m``, the power of two at or above
    ``n``: to merge two sorted runs of ``size // 2``, element ``i`` is first compared with its
    mirror image in the block (``i ^ (size - 1)``), then with ``i ^ half`` for ``half = size //
    4, ..., 1``; the lower index of a pair keeps the smaller number. Rows ``n .. m - 1`` would
    hold the largest number and every comparison keeps them where they are, so they are left
    out (the work is ``n``, not ``m``, rows a stage).

    A stage reads every row's partner, so XLA cannot write its result over its input: a loop of
    one stage an iteration copied the whole array back into the loop's buffer after every stage.
    An iteration runs four stages as two pairs instead (XLA fuses a pair into one pass); the
    first pair's result is stored by a conditional (:func:`fibjax.models.seeds_last.computed_once`),
    so that XLA neither fuses all four, recomputing the first stages many times over, nor copies:
    the second pair reads the stored array and writes the loop's. The drawn orders took 0.62 times
    as long (benchmarks/NOTES.md). The stages are padded to whole iterations with mask 0, which
    compares every element with itself.
    """
    n = x.shape[0]
    m = 1 << (n - 1).bit_length()
    masks = _partner_masks(m)
    masks += [0] * (-len(masks) % 4)
    table = jnp.asarray(masks, jnp.int32).reshape(-1, 4)
    i = jnp.arange(n, dtype=jnp.int32)

    def stage(x, mask):
        partner = i ^ mask
        # A partner beyond the rows would be the largest number: the element stays.
        partner = jnp.where(partner < n, partner, i)
        other = jnp.take(x, partner, axis=0)
        first = (i < partner)[:, None]
        return jnp.where(first, jnp.minimum(x, other), jnp.maximum(x, other))

    def pair(x, first_mask, second_mask):
        return stage(stage(x, first_mask), second_mask)

    def iteration(x, masks):
        x = computed_once(pair, x, masks[0], masks[1])
        return pair(x, masks[2], masks[3]), None

    return jax.lax.scan(iteration, x, table)[0]


def _partner_masks(m: int) -> list[int]:
    """The stages of :func:`_network` for ``m`` rows: each compares ``i`` with ``i ^ mask``."""
    masks = []
    for size in _powers(2, m):
        masks.append(size - 1)
        masks.extend(reversed(_powers(1, size // 4)))
    return masks


def _powers(first: int, last: int) -> list[int]:
    """``first, 2 first, ...`` up to ``last``."""
    out = []
    while first <= last:
        out.append(first)
        first *= 2
    return out


def _sort_rows(rows: jax.Array) -> jax.Array:
    """``<dtype>[batch, n]`` with each row sorted ascending, through :func:`_network`."""
    if rows.shape[1] <= 1:
        return rows
    return _network(rows.T).T


# Fewer rows than this go to jax.lax.sort: the network's fixed cost per stage is then larger
# than the comparison sort's (training with chunks of 32 seeds ran at 0.6 times the speed).
NETWORK_ROWS = 128


@jax.custom_batching.custom_vmap
def sort_numbers(x: jax.Array) -> jax.Array:
    """``jax.lax.sort`` of a one-dimensional array of unsigned integers; faster under ``vmap``.

    Alone it is ``jax.lax.sort``. Under ``vmap`` on a CPU, the rows are sorted together by a
    bitonic network; elsewhere by ``jax.lax.sort``. The bits are the same either way.

    Args:
      x: ``<uint32>[n]``.

    Returns:
      ``<uint32>[n]``, ascending.

    >>> jax.vmap(sort_numbers)(jnp.array([[3, 1, 2], [9, 7, 8]], jnp.uint32)).tolist()
    [[1, 2, 3], [7, 8, 9]]
    """
    return jax.lax.sort(x)


@sort_numbers.def_vmap
def _sort_numbers_vmap(axis_size, in_batched, x):
    # JAX calls this only with x batched (along its first axis).
    if axis_size < NETWORK_ROWS:
        return jax.lax.sort(x, dimension=1), True
    by_row = by_platform(x, cpu=_sort_rows, default=lambda rows: jax.lax.sort(rows, dimension=1))
    return by_row, True
