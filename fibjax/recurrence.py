"""The ``SimpleRNN`` recurrence as a function, with its backward pass written out.

``h_t = tanh(x_t W + b + h_{t-1} U)`` from ``h_0 = 0``, as Keras computes it. Training runs this
loop 20 times forward and 20 times backward for every update, so its cost is a training step's.
Automatic differentiation of the loop saves (or recomputes) every intermediate of every step and
accumulates the weight gradients inside the backward loop. Here the forward loop keeps only the
states, the backward loop carries only ``dL/dh``, and the weight gradients are sums over all
steps taken once after it. On a CPU that made training 1.4 to 1.8 times faster per seed
(``benchmarks/NOTES.md``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

# Up to this many hidden units, a product with the recurrent kernel is written as multiply-adds.
# Under ``vmap`` the matmul is a batched dot of tiny matrices, which XLA's CPU runtime runs as a
# kernel of its own per time step; the multiply-adds fuse with the tanh around them. Measured
# faster at 2, 4 and 6 units and slower at 8 (benchmarks/NOTES.md).
MULTIPLY_ADD_UNITS = 6


def _times_matrix(a: jax.Array, matrix: jax.Array) -> jax.Array:
    """``a @ matrix`` for ``<float32>[..., n]`` times ``<float32>[n, m]``."""
    n = matrix.shape[0]
    if n > MULTIPLY_ADD_UNITS:
        return a @ matrix
    total = a[..., 0:1] * matrix[0]
    for i in range(1, n):
        total = total + a[..., i : i + 1] * matrix[i]
    return total


def _outer_sum(a: jax.Array, b: jax.Array) -> jax.Array:
    """``Σ a^T b`` over the leading axes of ``<float32>[..., n]`` and ``<float32>[..., m]``.

    A broadcast multiply-sum, which XLA fuses into one reduction; as a ``dot_general`` under
    ``vmap`` it was a batched matmul with a contraction of 20 and ran several times slower.
    """
    axes = tuple(range(a.ndim - 1))
    return jnp.sum(a[..., :, None] * b[..., None, :], axis=axes)


def simple_rnn_step(
    h: jax.Array, x_t: jax.Array, kernel: jax.Array, recurrent_kernel: jax.Array, bias: jax.Array
) -> jax.Array:
    """One step, ``tanh(x_t W + b + h U)``, in Keras's order of additions.

    Args:
      h: ``<float32>[batch, units]`` the previous state.
      x_t: ``<float32>[batch, in_features]`` the input at this step.
      kernel, recurrent_kernel, bias: ``W``, ``U`` and ``b`` as in :func:`simple_rnn`.

    Returns:
      ``<float32>[batch, units]``, the new state.

    >>> h = simple_rnn_step(jnp.zeros((1, 2)), jnp.ones((1, 1)), jnp.ones((1, 2)), jnp.eye(2),
    ...                     jnp.zeros(2))
    >>> h.shape, bool(jnp.allclose(h, jnp.tanh(1.0)))
    ((1, 2), True)
    """
    return jnp.tanh(_times_matrix(x_t, kernel) + bias + _times_matrix(h, recurrent_kernel))


def _states(x, kernel, recurrent_kernel, bias, keep, unroll):
    """The last state ``<float32>[batch, units]`` and, if ``keep``, every state, time-major."""

    def step(h, x_t):
        h = simple_rnn_step(h, x_t, kernel, recurrent_kernel, bias)
        return h, (h if keep else None)

    h0 = jnp.zeros((x.shape[0], recurrent_kernel.shape[0]), x.dtype)
    return jax.lax.scan(step, h0, jnp.swapaxes(x, 0, 1), unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5))
def _simple_rnn(x, kernel, recurrent_kernel, bias, return_sequences, unroll):
    # Without a gradient nothing is kept that is not returned: evaluating a model on all 826
    # windows under vmap over seeds, stored states were arrays of tens of MB and the
    # evaluation took longer than two training epochs.
    last, states = _states(x, kernel, recurrent_kernel, bias, return_sequences, unroll)
    return jnp.swapaxes(states, 0, 1) if return_sequences else last


def _simple_rnn_fwd(x, kernel, recurrent_kernel, bias, return_sequences, unroll):
    last, states = _states(x, kernel, recurrent_kernel, bias, True, unroll)
    output = jnp.swapaxes(states, 0, 1) if return_sequences else last
    return output, (x, kernel, recurrent_kernel, states)


def _simple_rnn_bwd(return_sequences, unroll, residuals, cotangent):
    x, kernel, recurrent_kernel, states = residuals
    recurrent_t = recurrent_kernel.T

    # dL/d(pre-activation) at step t is (dL/dh_t)(1 - h_t^2); it sends dL/d(pre) U^T to h_{t-1}.
    def step(dh, inputs):
        h_t, g_t = inputs
        if g_t is not None:
            dh = dh + g_t
        d_pre = dh * (1 - h_t * h_t)
        return _times_matrix(d_pre, recurrent_t), d_pre

    if return_sequences:
        dh_last = jnp.zeros_like(states[0])
        per_step = jnp.swapaxes(cotangent, 0, 1)
    else:
        dh_last, per_step = cotangent, None
    _, d_pre = jax.lax.scan(step, dh_last, (states, per_step), reverse=True, unroll=unroll)

    previous = jnp.concatenate([jnp.zeros_like(states[:1]), states[:-1]])
    x_time_major = jnp.swapaxes(x, 0, 1)
    d_x = jnp.swapaxes(_times_matrix(d_pre, kernel.T), 0, 1)
    d_kernel = _outer_sum(x_time_major, d_pre)
    d_recurrent = _outer_sum(previous, d_pre)
    d_bias = jnp.sum(d_pre, axis=(0, 1))
    return d_x, d_kernel, d_recurrent, d_bias


_simple_rnn.defvjp(_simple_rnn_fwd, _simple_rnn_bwd)


def simple_rnn(
    x: jax.Array,
    kernel: jax.Array,
    recurrent_kernel: jax.Array,
    bias: jax.Array,
    *,
    return_sequences: bool = False,
    unroll: int = 1,
) -> jax.Array:
    """Runs Keras's ``SimpleRNN`` over every time step from a zero state.

    Differentiable in reverse mode (``jax.grad``, ``jax.vjp``) with respect to every array
    argument; forward mode (``jax.jvp``) is not defined.

    Args:
      x: ``<float32>[batch, time, in_features]``.
      kernel: ``<float32>[in_features, units]``, ``W``.
      recurrent_kernel: ``<float32>[units, units]``, ``U``.
      bias: ``<float32>[units]``, ``b``.
      return_sequences: return every state, not only the last (as in Keras).
      unroll: time steps per iteration of the loops (a speed knob).

    Returns:
      ``<float32>[batch, time, units]`` with ``return_sequences``, else ``<float32>[batch, units]``.

    >>> x = jnp.ones((3, 5, 1))
    >>> w, u, b = jnp.ones((1, 2)), jnp.eye(2), jnp.zeros(2)
    >>> simple_rnn(x, w, u, b).shape, simple_rnn(x, w, u, b, return_sequences=True).shape
    ((3, 2), (3, 5, 2))
    """
    return _simple_rnn(x, kernel, recurrent_kernel, bias, bool(return_sequences), int(unroll))
