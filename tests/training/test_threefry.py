"""The written-out threefry against jax.random itself: the same bits, on any backend."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fibjax.training import threefry

SEEDS = [0, 1, 7, 12345, 2**31 - 1, 2**32 - 1]


def data(keys):
    return np.asarray(jax.random.key_data(keys))


@pytest.mark.parametrize("seed", SEEDS)
def test_the_same_bits_as_jax_random(seed):
    key = jax.random.key(seed)
    for n in (1, 2, 5, 826, 1000):
        np.testing.assert_array_equal(
            threefry.bits(key, n), jax.random.bits(key, (n,), jnp.uint32), err_msg=str(n)
        )
    for num in (1, 2, 3, 9):
        np.testing.assert_array_equal(
            data(threefry.split(key, num)), data(jax.random.split(key, num))
        )
    for value in (0, 1, 29, 2**32 - 1):
        np.testing.assert_array_equal(
            data(threefry.fold_in(key, value)), data(jax.random.fold_in(key, value))
        )


def test_the_same_bits_under_jit_and_vmap_with_traced_values():
    keys = jax.vmap(jax.random.key)(jnp.arange(6, dtype=jnp.uint32))

    @jax.jit
    @chex.assert_max_traces(n=1)
    def ours(keys, epoch):
        epoch_keys = jax.vmap(lambda k: threefry.fold_in(k, epoch))(keys)
        rounds = jax.vmap(lambda k: threefry.split(k, 2))(epoch_keys)
        return jax.vmap(jax.vmap(lambda k: threefry.bits(k, 826)))(rounds)

    @jax.jit
    def theirs(keys, epoch):
        epoch_keys = jax.vmap(lambda k: jax.random.fold_in(k, epoch))(keys)
        rounds = jax.vmap(lambda k: jax.random.split(k, 2))(epoch_keys)
        return jax.vmap(jax.vmap(lambda k: jax.random.bits(k, (826,), jnp.uint32)))(rounds)

    for epoch in (0, 3, 29):
        np.testing.assert_array_equal(ours(keys, epoch), theirs(keys, epoch))


def test_other_keys_go_to_jax_random():
    # An rbg key: the written-out hash is threefry's only.
    key = jax.random.key(3, impl="rbg")
    np.testing.assert_array_equal(threefry.bits(key, 8), jax.random.bits(key, (8,), jnp.uint32))
    np.testing.assert_array_equal(data(threefry.split(key, 2)), data(jax.random.split(key, 2)))
