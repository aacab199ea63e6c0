"""The evaluation after training: the mean squared errors on the training and test windows."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from fibjax.training.config import Windows

# Windows evaluated at once after training. Under vmap over seeds the attention model's states
# for all 826 windows are an array of tens of MB per chunk of seeds; blocks of this many windows
# stay in cache (benchmarks/NOTES.md).
EVAL_BLOCK = 128


def eval_block(n_train: int, n_test: int) -> int:
    """Windows a block in :func:`train_test_mse`: :data:`EVAL_BLOCK`, or all when fewer."""
    return min(EVAL_BLOCK, n_train + n_test)


def train_test_mse(model, params, windows: Windows) -> tuple[jax.Array, jax.Array]:
    """The mean squared errors ``<float32>[]`` on the training and on the test windows.

    Both sets go through the model in one ``lax.map`` of :data:`EVAL_BLOCK` windows a block,
    padded with zero windows to whole blocks whose errors are dropped. Each traced call of the
    model is more program to trace and compile: two sets, each ending in a smaller block, had
    traced it four times, one pass traces it once (at 256 seeds the attention model compiled in
    5.5 s instead of 7.2 s, the vanilla model in 4.9 s instead of 5.5 s; benchmarks/NOTES.md).
    """
    n_train, n_test = windows.train_y.shape[0], windows.test_y.shape[0]
    block = eval_block(n_train, n_test)
    pad = -(n_train + n_test) % block
    x = jnp.concatenate([windows.train_x, windows.test_x])
    y = jnp.concatenate([windows.train_y, windows.test_y])
    x = jnp.pad(x, ((0, pad), (0, 0), (0, 0)))
    y = jnp.pad(y, (0, pad))
    errors = jax.lax.map(
        lambda xy: jnp.square(model.apply({"params": params}, xy[0][None])[0] - xy[1]),
        (x, y),
        batch_size=block,
    )
    return jnp.mean(errors[:n_train]), jnp.mean(errors[n_train : n_train + n_test])
