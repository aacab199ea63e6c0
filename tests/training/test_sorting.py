"""Batched sorting for the shuffle: the same numbers as NumPy's sort, alone and under vmap."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fibjax.training.program import shuffled_order
from fibjax.training.sorting import NETWORK_ROWS, sort_numbers


def numbers(rows: int, n: int, seed: int) -> np.ndarray:
    """Random uint32 rows with repeats and both extremes, which a sort must place too."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2**32, (rows, n), dtype=np.uint32)
    x[:, : n // 4] = x[:, n - n // 4 :]  # repeated values
    x[:, n // 2] = np.iinfo(np.uint32).max  # the padding value
    x[:, -1] = 0
    return x


@pytest.mark.parametrize("n", [1, 2, 3, 5, 17, 513, 826, 1024, 1025])
@pytest.mark.parametrize("rows", [7, NETWORK_ROWS + 3])
def test_rows_sorted_under_vmap_equal_numpy(rows, n):
    x = numbers(rows, n, seed=rows * 10_000 + n)
    got = jax.jit(jax.vmap(sort_numbers))(x)
    np.testing.assert_array_equal(np.asarray(got), np.sort(x, axis=1))


def test_alone_and_nested_vmap_equal_numpy():
    x = numbers(3 * NETWORK_ROWS, 40, seed=0)
    np.testing.assert_array_equal(np.asarray(sort_numbers(x[0])), np.sort(x[0]))
    nested = jax.vmap(jax.vmap(sort_numbers))(x.reshape(3, NETWORK_ROWS, 40))
    np.testing.assert_array_equal(np.asarray(nested).reshape(x.shape), np.sort(x, axis=1))


def test_batched_shuffle_equals_one_seed_at_a_time():
    # Under vmap the shuffle sorts through the network; alone, through jax.lax.sort.
    keys = jax.random.split(jax.random.key(7), NETWORK_ROWS)
    batched = jax.jit(jax.vmap(lambda k: shuffled_order(k, 826)))(keys)
    one = jax.jit(lambda k: shuffled_order(k, 826))
    alone = jnp.stack([one(k) for k in keys[:5]])
    np.testing.assert_array_equal(np.asarray(batched[:5]), np.asarray(alone))
