"""The written-out threefry against jax.random itself: the same bits, on any backend."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import linen as nn

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


def _draws(key):
    """Every kind of draw the initialisers and the shuffle make, and a few more."""
    return {
        "uniform": jax.random.uniform(key, (3, 7)),
        "normal": jax.random.normal(key, (4, 4)),
        "truncated": jax.random.truncated_normal(key, -2.0, 2.0, (5,)),
        "bits8": jax.random.bits(key, (9,), jnp.uint8),
        "bits16": jax.random.bits(key, (2, 3), jnp.uint16),
        "permutation": jax.random.permutation(key, 11),
        "split": jax.random.key_data(jax.random.split(key, (2, 3))),
        "fold_in": jax.random.key_data(jax.random.fold_in(key, 2**31 + 5)),
        "glorot": nn.initializers.glorot_uniform()(key, (1, 6)),
        "orthogonal": nn.initializers.orthogonal()(key, (2, 6)),
    }


@pytest.mark.parametrize("seed", SEEDS)
def test_written_out_keys_draw_what_jax_random_draws(seed):
    # Bit for bit, under jit and vmap (as the training program draws the initial weights).
    keys = jax.vmap(jax.random.key)(jnp.asarray([seed, 3], jnp.uint32))
    ours = jax.jit(jax.vmap(lambda k: _draws(threefry.written_out(k))))(keys)
    theirs = jax.jit(jax.vmap(_draws))(keys)
    assert str(jax.random.key_impl(threefry.written_out(keys[0]))) != "threefry2x32"
    chex.assert_trees_all_equal(ours, theirs)


def test_written_out_keys_draw_64_bit_numbers_as_jax_random_does():
    # 64-bit draws (with 64-bit types on) take both words of the hash, high first.
    with jax.enable_x64(True):
        key = jax.random.key(5)
        for draw in (
            lambda k: jax.random.bits(k, (7,), jnp.uint64),
            lambda k: jax.random.uniform(k, (2, 3), jnp.float64),
        ):
            ours, theirs = draw(threefry.written_out(key)), draw(key)
            assert ours.dtype == theirs.dtype
            np.testing.assert_array_equal(ours, theirs)
