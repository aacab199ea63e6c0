"""Keras's default initialisers, as Flax initialisers.

Glorot-uniform kernels, orthogonal recurrent kernels, zero biases, and ``RandomNormal(0.05)`` for
the notebook's attention weight (its ``"random_normal"``).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.custom_batching
import jax.numpy as jnp

glorot_uniform = nn.initializers.glorot_uniform()
zeros = nn.initializers.zeros
ones = nn.initializers.ones
attention_normal = nn.initializers.normal(stddev=0.05)
_orthogonal = nn.initializers.orthogonal()


def orthogonal(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """Keras's (and Flax's) orthogonal initialiser, drawn one matrix at a time under ``vmap``.

    A ``[H, kH]`` matrix is drawn whole, as Keras draws a fused recurrent kernel: its rows are
    orthonormal, not each gate's block.

    Under ``vmap`` over seeds, the QR factorisation becomes one batched LAPACK call that splits
    its batch over XLA's CPU thread pool. With the seeds sharded over several CPU devices, each
    device's program then waits inside that call for threads the other devices hold, and
    training hung (hidden=16, 64 seeds per device on 2 devices). Drawn one matrix at a time,
    the values are the same.

    >>> orthogonal(jax.random.key(0), (2, 2)).shape
    (2, 2)
    """
    draw = jax.custom_batching.sequential_vmap(lambda k: _orthogonal(k, shape, dtype))
    return draw(key)
