"""Functions whose ``vmap`` over seeds runs, on a CPU, with the seed axis last.

Under ``vmap`` the seed axis comes first in every array, and XLA's CPU code runs an operation in
vector registers only along an array's innermost axis. For this task's models the inner axes are
small (2 units, 20 time steps), so sums over time or units ran one seed at a time. Written with
the seed axis last, the same arithmetic keeps the seeds in vector lanes (benchmarks/NOTES.md).
:func:`under_vmap` gives a function its per-seed form and its seed-last form; other platforms keep
``vmap``'s own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.extend
import jax.numpy as jnp

# Above this many rows, :func:`times_matrix` is one contraction instead of a chain of
# multiply-adds: the chain is traced one operation a row, and at 200,000 units tracing it alone
# took over a minute (the memory check traces the model to count its parameters). Up to here the
# chain is kept, for its bits and its speed (benchmarks/NOTES.md).
MULTIPLY_ADD_ROWS = 256


def seeds_last(value: jax.Array, batched: bool, size: int) -> jax.Array:
    """A ``custom_vmap`` argument (seed axis first, or shared by every seed) with the seeds last."""
    if not batched:
        value = jnp.broadcast_to(value, (size, *value.shape))
    return jnp.moveaxis(value, 0, -1)


def times_matrix(a: jax.Array, matrix: jax.Array) -> jax.Array:
    """``a @ matrix`` per seed as multiply-adds: ``<float32>[..., n, seeds]`` by ``[n, m, seeds]``.

    >>> times_matrix(jnp.ones((3, 2, 4)), jnp.ones((2, 5, 4))).shape
    (3, 5, 4)
    """
    if matrix.shape[0] > MULTIPLY_ADD_ROWS:
        return jnp.einsum("...ns,nms->...ms", a, matrix)
    total = a[..., 0:1, :] * matrix[0]
    for i in range(1, matrix.shape[0]):
        total = total + a[..., i : i + 1, :] * matrix[i]
    return total


def rows(v: jax.Array) -> jax.Array:
    """``v`` with its two leading axes flattened into one, in row-major order."""
    return v.reshape(-1, *v.shape[2:])


def outer_sum(a: jax.Array, b: jax.Array) -> jax.Array:
    """``Σ_r a_r^T b_r`` per seed: ``[r, n, seeds]`` and ``[r, m, seeds]`` → ``[n, m, seeds]``.

    A reduction over the leading axis, which XLA's CPU code keeps in vector lanes across seeds.

    >>> outer_sum(jnp.ones((20, 2, 4)), jnp.ones((20, 3, 4)))[0, 0].tolist()
    [20.0, 20.0, 20.0, 20.0]
    """
    return jnp.sum(a[:, :, None, :] * b[:, None, :, :], axis=0)


def per_seed(last: Callable) -> Callable:
    """The function of one seed that ``last`` computes for ``[..., seeds]`` arrays.

    The seed-last code with a seed axis of one, so that one seed alone and a seed among others
    go through the same operations.

    >>> total = per_seed(lambda a, b: (a + b, a * b))
    >>> total(jnp.ones(3), jnp.full(3, 2.0))[1]
    Array([2., 2., 2.], dtype=float32)
    """

    def plain(*args):
        out = last(*(arg[..., None] for arg in args))
        return jax.tree.map(lambda o: o[..., 0], out)

    return plain


def computed_once(f: Callable, *args: jax.Array) -> Any:
    """``f(*args)``, stored once instead of recomputed by each consumer.

    XLA's CPU compiler fuses an elementwise producer into every consumer, recomputing it in each,
    and may fuse a chain of producers into one kernel that recomputes the chain's first links
    many times over. A conditional's result is stored: both branches are ``f``, so whichever the
    predicate picks (it only has to be a value XLA cannot fold, here the first element of the
    first argument) the result is the same. (``optimization_barrier`` does not do this: XLA's
    CPU pipeline removes it before fusion.)

    >>> computed_once(lambda a, b: a * b, jnp.arange(3.0), jnp.full(3, 2.0)).tolist()
    [0.0, 2.0, 4.0]
    """
    return jax.lax.cond(args[0].reshape(-1)[0] > 0, f, f, *args)


def by_platform(*args: Any, cpu: Callable, default: Callable) -> Any:
    """``cpu(*args)`` in a program compiled for a CPU, ``default(*args)`` elsewhere.

    ``jax.lax.platform_dependent``, which traces and lowers both functions and leaves the choice to
    the compiled platform; except where the CPU is JAX's only platform, so that every program is
    lowered for it: there only ``cpu`` is traced. A training program traced the other function for
    nothing, about a tenth of its tracing time (benchmarks/NOTES.md). The same operations run
    either way, so the same bits.

    >>> by_platform(jnp.ones(2), cpu=lambda x: x + 1, default=lambda x: x - 1).tolist()
    [2.0, 2.0]
    """
    if set(jax.extend.backend.backends()) == {"cpu"}:
        return cpu(*args)
    return jax.lax.platform_dependent(*args, cpu=cpu, default=default)


def under_vmap(plain: Callable, last: Callable) -> Callable:
    """``plain``, whose ``vmap`` over its arguments' leading axis calls ``last`` on a CPU.

    Args:
      plain: the function of one seed's arrays.
      last: the same function of every seed's arrays with the seed axis last (arguments that
        ``vmap`` does not batch arrive broadcast to every seed); it returns its outputs with the
        seed axis last.

    Returns:
      A ``jax.custom_batching.custom_vmap`` function: ``plain`` outside ``vmap``; under ``vmap``
      on a CPU, ``last`` with the seed axis moved last and its outputs' moved first; under
      ``vmap`` elsewhere, ``vmap(plain)``. Not differentiable: wrap the forward and backward
      passes in a ``jax.custom_vjp``.

    >>> double = under_vmap(lambda x: 2 * x, lambda x: 2 * x)
    >>> jax.vmap(double)(jnp.ones((4, 3))).shape
    (4, 3)
    """
    function = jax.custom_batching.custom_vmap(plain)

    @function.def_vmap
    def _(size, in_batched, *args):
        def cpu(*args):
            out = last(*map(seeds_last, args, in_batched, [size] * len(args)))
            return jax.tree.map(lambda o: jnp.moveaxis(o, -1, 0), out)

        def default(*args):
            axes = tuple(0 if batched else None for batched in in_batched)
            return jax.vmap(plain, in_axes=axes)(*args)

        out = by_platform(*args, cpu=cpu, default=default)
        return out, jax.tree.map(lambda _: True, out)

    return function


@jax.custom_batching.custom_vmap
def take_rows(table: jax.Array, index: jax.Array) -> jax.Array:
    """``table[index]``, clamped, whose ``vmap`` over the index alone gathers seed-last on a CPU.

    Each training step gathers its window for every seed from the windows all seeds share.
    Under ``vmap`` the gather wrote the windows seed-first, and the seed-last passes that read
    them began with a copy that transposed them, every step; gathered seed-last, no copy is
    left, and the vanilla model trained 1.04-1.08 times as fast (benchmarks/NOTES.md). The same
    numbers either way: a gather only moves them. Indices are clamped, not counted from the end
    when negative: that select, recomputed for every element gathered, cost the vanilla model up
    to 5% of its training. Not differentiable.

    Args:
      table: ``<dtype>[rows, *item]``.
      index: ``<int>[*index]`` rows of ``table``, clamped to ``0 .. rows - 1`` (as
        ``jnp.take(..., mode="clip")``; a negative index is row 0, not a row from the end).

    Returns:
      ``<dtype>[*index, *item]``.

    >>> table = jnp.arange(6.0).reshape(3, 2)
    >>> jax.vmap(take_rows, in_axes=(None, 0))(table, jnp.array([[2], [0]])).tolist()
    [[[4.0, 5.0]], [[0.0, 1.0]]]
    """
    return _take_plain(table, index)


def _take_plain(table: jax.Array, index: jax.Array) -> jax.Array:
    return jnp.take(table, index, axis=0, mode="clip")


@take_rows.def_vmap
def _take_rows_vmap(size, in_batched, table, index):
    table_batched, index_batched = in_batched
    plain = jax.vmap(_take_plain, in_axes=tuple(0 if b else None for b in in_batched))
    if table_batched or not index_batched:
        return plain(table, index), True
    return by_platform(table, index, cpu=_take_last, default=plain), True


def _take_last(table, index):
    """``table [rows, *item]`` at ``index [seeds, *index]``, gathered as ``[*index, *item, seeds]``
    and returned with the seed axis first, as ``vmap`` expects (XLA cancels the two transposes)."""
    items = table.ndim - 1
    gathered = jnp.take(
        jnp.moveaxis(table, 0, -1), jnp.moveaxis(index, 0, -1), axis=-1, mode="clip"
    )  # [*item, *index, seeds]
    gathered = jnp.moveaxis(gathered, tuple(range(items)), tuple(range(-1 - items, -1)))
    return jnp.moveaxis(gathered, -1, 0)
