"""``jax.random``'s ``fold_in``, ``split`` and 32-bit ``bits`` for threefry keys, written out.

The same bits as ``jax.random`` (for its default, partitionable threefry; tested), computed with
the Threefry-2x32 hash's twenty rounds written out as elementwise operations. On a CPU, JAX lowers
each call of the hash as a loop of five iterations, a loop to compile at every call site; the
shuffle calls it three times an epoch (``fibjax.training.program.shuffled_order``). Written out,
the rounds fuse into the code around them: the vanilla model's training program compiled in 1.37
s instead of 1.59 s and the attention model's in 1.63 s instead of 2.33 s, and both trained 5-10%
faster, with the same results (benchmarks/NOTES.md). On a CPU the shuffle has since moved to a
program of its own that draws every epoch's order ahead (``fibjax.training.seeds``); the
accelerators' program and ``fit`` still draw them in their epoch loop. Keys of another kind, or a
JAX configured for the older threefry, go to ``jax.random`` itself.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# The rotations of Threefry-2x32's rounds, four a round, alternating (Salmon et al., 2011).
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = np.uint32(0x1BD11BDA)


def _rotate_left(x: jax.Array, d: int) -> jax.Array:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def hash_2x32(
    k1: jax.Array, k2: jax.Array, x1: jax.Array, x2: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 (20 rounds) of the counter pairs ``(x1, x2)`` under the key ``(k1, k2)``.

    All ``<uint32>``; ``x1`` and ``x2`` of one shape, the keys scalars.

    >>> z = jnp.uint32(0)
    >>> [hex(int(v)) for v in hash_2x32(z, z, z, z)]
    ['0x6b200159', '0x99ba4efe']
    """
    keys = (k1, k2, k1 ^ k2 ^ _PARITY)
    x = [x1 + keys[0], x2 + keys[1]]
    for block in range(5):
        for rotation in _ROTATIONS[block % 2]:
            x[0] = x[0] + x[1]
            x[1] = x[0] ^ _rotate_left(x[1], rotation)
        x[0] = x[0] + keys[(block + 1) % 3]
        x[1] = x[1] + keys[(block + 2) % 3] + np.uint32(block + 1)
    return x[0], x[1]


def _written_out(key: jax.Array) -> bool:
    """Whether ``key`` is a typed threefry key and JAX uses the partitionable threefry."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    return (
        typed
        and str(jax.random.key_impl(key)) == "threefry2x32"
        and bool(jax.config.jax_threefry_partitionable)
    )


def _hash_counts(key: jax.Array, counts: jax.Array) -> tuple[jax.Array, jax.Array]:
    data = jax.random.key_data(key)
    return hash_2x32(data[0], data[1], jnp.zeros_like(counts), counts)


def fold_in(key: jax.Array, data: int | jax.Array) -> jax.Array:
    """``jax.random.fold_in(key, data)`` for ``data`` from 0 to ``2**32 - 1``.

    >>> key = jax.random.key(1)
    >>> bool((jax.random.key_data(fold_in(key, 7)) == jax.random.key_data(
    ...     jax.random.fold_in(key, 7))).all())
    True
    """
    if not _written_out(key):
        return jax.random.fold_in(key, data)
    high, low = _hash_counts(key, jnp.asarray(data, jnp.uint32))
    return jax.random.wrap_key_data(jnp.stack([high, low]), impl="threefry2x32")


def split(key: jax.Array, num: int) -> jax.Array:
    """``jax.random.split(key, num)``: ``num`` keys.

    >>> jax.random.key_data(split(jax.random.key(0), 3)).shape
    (3, 2)
    """
    if not _written_out(key):
        return jax.random.split(key, num)
    high, low = _hash_counts(key, jnp.arange(num, dtype=jnp.uint32))
    return jax.random.wrap_key_data(jnp.stack([high, low], axis=-1), impl="threefry2x32")


def bits(key: jax.Array, n: int) -> jax.Array:
    """``jax.random.bits(key, (n,), jnp.uint32)``: ``<uint32>[n]`` random bits, ``n < 2**32``.

    >>> bits(jax.random.key(0), 4).dtype
    dtype('uint32')
    """
    if not _written_out(key):
        return jax.random.bits(key, (n,), jnp.uint32)
    high, low = _hash_counts(key, jnp.arange(n, dtype=jnp.uint32))
    return high ^ low
