"""``jax.random``'s threefry keys with the hash written out: :data:`WRITTEN_OUT`, a PRNG of JAX's.

The same bits as ``jax.random`` (for its default, partitionable threefry; tested), computed with
the Threefry-2x32 hash's twenty rounds written out as elementwise operations. On a CPU, JAX lowers
each call of the hash as a loop of five iterations, a loop to compile at every call site. Written
out, the rounds fuse into the code around them. For the shuffle, which calls the hash three times
an epoch (``fibjax.training.program.shuffled_order``), the vanilla model's training program
compiled in 1.37 s instead of 1.59 s and the attention model's in 1.63 s instead of 2.33 s, and
both trained 5-10% faster. For the initial weights (every initialiser's draw and every fold-in of
Flax's module names is a call) it compiled 0.1-0.2 s faster again, with the same results
(benchmarks/NOTES.md).

:data:`WRITTEN_OUT` is a PRNG implementation (``jax.extend.random.define_prng_impl``) whose key
data are threefry's: :func:`written_out` re-labels a threefry key, for free, and every
``jax.random`` function then draws the same bits through the written-out hash.
:func:`fibjax.training.program.split_key` does so for every seed's key. Keys of another kind, or
a JAX configured for the older threefry, are left to ``jax.random`` itself.
"""

from __future__ import annotations

import math

import jax
import jax.extend.random
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


def _counts(shape: tuple[int, ...]) -> jax.Array:
    """The counters threefry hashes for an array of ``shape``: its row-major index, high word 0."""
    return jnp.arange(math.prod(shape), dtype=jnp.uint32).reshape(shape)


def _hash_shape(key_data: jax.Array, shape: tuple[int, ...]) -> tuple[jax.Array, jax.Array]:
    counts = _counts(shape)
    return hash_2x32(key_data[0], key_data[1], jnp.zeros_like(counts), counts)


def _random_bits(key_data: jax.Array, bit_width: int, shape: tuple[int, ...]) -> jax.Array:
    if math.prod(shape) >= 2**32:  # a high word of the counters: JAX's own path
        return jax.extend.random.threefry_prng_impl.random_bits(key_data, bit_width, shape)
    high, low = _hash_shape(key_data, shape)
    if bit_width == 64:
        return (high.astype(jnp.uint64) << np.uint64(32)) | low.astype(jnp.uint64)
    mixed = high ^ low
    return mixed if bit_width == 32 else mixed.astype(np.dtype(f"uint{bit_width}"))


def _split(key_data: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    high, low = _hash_shape(key_data, shape)
    return jnp.stack([high, low], axis=-1)


def _fold_in(key_data: jax.Array, data: jax.Array) -> jax.Array:
    high, low = hash_2x32(key_data[0], key_data[1], jnp.uint32(0), jnp.asarray(data, jnp.uint32))
    return jnp.stack([high, low])


# Partitionable threefry (JAX's default) with the hash written out; its seeding is threefry's.
WRITTEN_OUT = jax.extend.random.define_prng_impl(
    key_shape=(2,),
    seed=jax.extend.random.threefry_prng_impl.seed,
    split=_split,
    random_bits=_random_bits,
    fold_in=_fold_in,
    name="fibjax_threefry2x32",
    tag="fibjax_fry",
)


def written_out(key: jax.Array) -> jax.Array:
    """``key`` as a :data:`WRITTEN_OUT` key, when it is a threefry key and JAX's threefry is the
    partitionable one; any other key as it is. The key data stay the same.

    >>> key = written_out(jax.random.key(0))
    >>> bool((jax.random.uniform(key, (3,)) == jax.random.uniform(jax.random.key(0), (3,))).all())
    True
    """
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    if (
        typed
        and str(jax.random.key_impl(key)) == "threefry2x32"
        and bool(jax.config.jax_threefry_partitionable)
    ):
        return jax.random.wrap_key_data(jax.random.key_data(key), impl=WRITTEN_OUT)
    return key


def fold_in(key: jax.Array, data: int | jax.Array) -> jax.Array:
    """``jax.random.fold_in(key, data)`` through the written-out hash, for ``data`` from 0 to
    ``2**32 - 1``.

    >>> key = jax.random.key(1)
    >>> bool((jax.random.key_data(fold_in(key, 7)) == jax.random.key_data(
    ...     jax.random.fold_in(key, 7))).all())
    True
    """
    return jax.random.fold_in(written_out(key), data)


def split(key: jax.Array, num: int) -> jax.Array:
    """``jax.random.split(key, num)`` through the written-out hash: ``num`` keys.

    >>> jax.random.key_data(split(jax.random.key(0), 3)).shape
    (3, 2)
    """
    return jax.random.split(written_out(key), num)


def bits(key: jax.Array, n: int) -> jax.Array:
    """``jax.random.bits(key, (n,), jnp.uint32)`` through the written-out hash.

    >>> bits(jax.random.key(0), 4).dtype
    dtype('uint32')
    """
    return jax.random.bits(written_out(key), (n,), jnp.uint32)
