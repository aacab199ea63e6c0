"""The ``SimpleRNN`` recurrence as a function, with its backward pass written out.

``h_t = tanh(x_t W + b + h_{t-1} U)`` from ``h_0 = 0``, as Keras computes it. Training runs this
loop 20 times forward and 20 times backward for every update, so its cost is a training step's.
Automatic differentiation of the loop saves (or recomputes) every intermediate of every step and
accumulates the weight gradients inside the backward loop. Here the forward loop keeps only the
states, the backward loop carries only ``dL/dh``, and the weight gradients are sums over all
steps taken once after it. On a CPU that made training 1.4 to 1.8 times faster per seed
(``benchmarks/NOTES.md``). Under ``vmap`` over seeds on a CPU, both passes run with the seed axis
last (``_under_vmap``), for the same bits in less time; so does the forward pass without a gradient
(``_evaluated_under_vmap``: the evaluation after training).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from fibjax.models import seeds_last

# Up to this many hidden units, a product with the recurrent kernel is written as multiply-adds.
# Under ``vmap`` the matmul is a batched dot of tiny matrices, which XLA's CPU runtime runs as a
# kernel of its own per time step; the multiply-adds fuse with the tanh around them. Measured
# faster at 2, 4 and 6 units and slower at 8 (benchmarks/NOTES.md).
MULTIPLY_ADD_UNITS = 6

# Up to this many hidden units, training under vmap on a CPU runs the recurrence with the seed
# axis last (see _under_vmap), which gives the bits of vmap's own form: checked up to 4 units;
# at 5 and 6 the recurrent kernel's gradient differs in its last bits, so those keep vmap's form.
SEEDS_LAST_UNITS = 4
# The same for the GRU (gated_rnn): its backward pass multiplies by U^T [3H, H], a chain of
# multiply-adds in a seed's own form up to MULTIPLY_ADD_UNITS rows, so 2 units; above, a seed's own
# form is a dot, and the seed-last chain would not give its bits (checked at 3 and 4 units).
GATED_SEEDS_LAST_UNITS = MULTIPLY_ADD_UNITS // 3


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


def loop_unroll(unroll: int | bool) -> int | bool:
    """``unroll`` for ``lax.scan``: ``True`` (every step written out, no loop) or an int >= 1.

    >>> loop_unroll(True), loop_unroll(4.0)
    (True, 4)
    """
    return True if unroll is True else int(unroll)


def _seeds_last(recurrent_kernel, seeds_last_form):
    """Whether the passes run seed-last under vmap on a CPU (see :data:`SEEDS_LAST_UNITS`)."""
    return seeds_last_form and recurrent_kernel.shape[0] <= SEEDS_LAST_UNITS


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _simple_rnn(x, kernel, recurrent_kernel, bias, return_sequences, unroll, seeds_last_form):
    # Without a gradient nothing is kept that is not returned: evaluating a model on all 826
    # windows under vmap over seeds, stored states were arrays of tens of MB and the
    # evaluation took longer than two training epochs. Under vmap on a CPU it runs seed-last
    # too: the evaluation after training took 0.6-0.7 (vanilla) and 0.8-0.85 (attention) of
    # the time.
    if _seeds_last(recurrent_kernel, seeds_last_form):
        return _evaluated_under_vmap(return_sequences, unroll)(x, kernel, recurrent_kernel, bias)
    return _evaluated(return_sequences, unroll, x, kernel, recurrent_kernel, bias)


def _evaluated(return_sequences, unroll, x, kernel, recurrent_kernel, bias):
    """The layer's output, every state or the last, keeping nothing else."""
    last, states = _states(x, kernel, recurrent_kernel, bias, return_sequences, unroll)
    return jnp.swapaxes(states, 0, 1) if return_sequences else last


def _evaluated_last(return_sequences, unroll, x, kernel, recurrent_kernel, bias):
    """:func:`_evaluated` with the seed axis last: ``x [batch, time, in, seeds]``."""
    x = jnp.moveaxis(x, 1, 0)
    out = _states_last(x, kernel, recurrent_kernel, bias, unroll, return_sequences)
    return jnp.moveaxis(out, 0, 1) if return_sequences else out


@functools.cache
def _evaluated_under_vmap(return_sequences: bool, unroll: int):
    """:func:`_evaluated`, seed-last under vmap on a CPU."""
    forms = [functools.partial(f, return_sequences, unroll) for f in (_evaluated, _evaluated_last)]
    return seeds_last.under_vmap(*forms)


def _simple_rnn_fwd(x, kernel, recurrent_kernel, bias, return_sequences, unroll, seeds_last_form):
    if _seeds_last(recurrent_kernel, seeds_last_form):
        states = _under_vmap(return_sequences, unroll)[0](x, kernel, recurrent_kernel, bias)
    else:
        states = _states(x, kernel, recurrent_kernel, bias, True, unroll)[1]
    output = jnp.swapaxes(states, 0, 1) if return_sequences else states[-1]
    return output, (x, kernel, recurrent_kernel, states)


def _simple_rnn_bwd(return_sequences, unroll, seeds_last_form, residuals, cotangent):
    if _seeds_last(residuals[2], seeds_last_form):
        return _under_vmap(return_sequences, unroll)[1](*residuals, cotangent)
    return _gradients(return_sequences, unroll, residuals, cotangent)


def _backward_loop(times, recurrent_t, d_last, states, per_step, unroll):
    """dL/d(pre-activation) at every step, time first, from the last state's and each step's dL/dh.

    ``times(a, matrix)`` is the product with ``U^T`` in the arrays' layout.
    """

    # dL/d(pre-activation) at step t is (dL/dh_t)(1 - h_t^2); it sends dL/d(pre) U^T to h_{t-1}.
    def step(dh, inputs):
        h_t, g_t = inputs
        if g_t is not None:
            dh = dh + g_t
        d_pre = dh * (1 - h_t * h_t)
        return times(d_pre, recurrent_t), d_pre

    return jax.lax.scan(step, d_last, (states, per_step), reverse=True, unroll=unroll)[1]


def _gradients(return_sequences, unroll, residuals, cotangent):
    """dL/dx, dL/dW, dL/dU and dL/db from the kept states and the output's cotangent."""
    x, kernel, recurrent_kernel, states = residuals
    if return_sequences:
        dh_last = jnp.zeros_like(states[0])
        per_step = jnp.swapaxes(cotangent, 0, 1)
    else:
        dh_last, per_step = cotangent, None
    d_pre = _backward_loop(_times_matrix, recurrent_kernel.T, dh_last, states, per_step, unroll)

    previous = jnp.concatenate([jnp.zeros_like(states[:1]), states[:-1]])
    x_time_major = jnp.swapaxes(x, 0, 1)
    d_x = jnp.swapaxes(_times_matrix(d_pre, kernel.T), 0, 1)
    d_kernel = _outer_sum(x_time_major, d_pre)
    d_recurrent = _outer_sum(previous, d_pre)
    d_bias = jnp.sum(d_pre, axis=(0, 1))
    return d_x, d_kernel, d_recurrent, d_bias


_simple_rnn.defvjp(_simple_rnn_fwd, _simple_rnn_bwd)


# Under vmap over seeds on a CPU, the two passes run on arrays with the seed axis last. With the
# seed axis first (vmap's layout), XLA's CPU code computed the weight gradients' sums over time one
# seed at a time, a fifth of a training step, and read each step's input as one scalar load per
# seed: inside a loop compiled into one kernel, a dynamic_slice at the loop's counter is
# recomputed per vector lane. With the seeds last, the sums are reductions over the leading axis
# that keep the seeds in vector lanes, and the forward loop takes x_t from a switch over static
# slices. Same arithmetic in the same order, so the same bits; 1.24-1.30 times as fast for the
# notebook's vanilla model at 256 seeds (benchmarks/NOTES.md). Other platforms keep vmap's form.


def _states_last(x, kernel, recurrent_kernel, bias, unroll, keep=True):
    """Every state, ``<float32>[time, batch, units, seeds]``, from ``x [time, batch, in, seeds]``;
    without ``keep``, the last ``<float32>[batch, units, seeds]``.

    Each step takes ``x_t`` from a switch over static slices: a ``dynamic_slice`` at the loop's
    counter is, in a loop compiled into one kernel, one scalar load per seed.
    """
    inputs = [functools.partial(operator.getitem, x, t) for t in range(x.shape[0])]

    def step(h, t):
        x_t = jax.lax.switch(t, inputs)
        times = seeds_last.times_matrix
        h = jnp.tanh(times(x_t, kernel) + bias + times(h, recurrent_kernel))
        return h, (h if keep else None)

    h0 = jnp.zeros((x.shape[1], *recurrent_kernel.shape[1:]), x.dtype)
    last, states = jax.lax.scan(step, h0, jnp.arange(x.shape[0]), unroll=unroll)
    return states if keep else last


def _gradients_last(x, kernel, recurrent_kernel, states, d_last, per_step, unroll):
    """:func:`_gradients` with the seeds last, and time first in ``x``, ``states``, ``per_step``.

    The weight gradients are reductions over the leading (time, batch) axis, which XLA keeps in
    vector lanes across seeds; over the seed-first arrays of ``vmap`` it took them a seed at a time.
    """
    recurrent_t = jnp.swapaxes(recurrent_kernel, 0, 1)
    d_pre = _backward_loop(seeds_last.times_matrix, recurrent_t, d_last, states, per_step, unroll)
    previous = jnp.concatenate([jnp.zeros_like(states[:1]), states[:-1]])
    d_x = seeds_last.times_matrix(d_pre, jnp.swapaxes(kernel, 0, 1))

    rows = seeds_last.rows
    d_kernel = seeds_last.outer_sum(rows(x), rows(d_pre))
    d_recurrent = seeds_last.outer_sum(rows(previous), rows(d_pre))
    return d_x, d_kernel, d_recurrent, jnp.sum(rows(d_pre), axis=0)


@functools.cache
def _under_vmap(return_sequences: bool, unroll: int):
    """The forward pass (kept states) and the backward pass, each seed-last under vmap on a CPU."""

    def plain_states(x, kernel, recurrent_kernel, bias):
        return _states(x, kernel, recurrent_kernel, bias, True, unroll)[1]

    def states_last(x, kernel, recurrent_kernel, bias):
        return _states_last(jnp.moveaxis(x, 1, 0), kernel, recurrent_kernel, bias, unroll)

    def plain_gradients(x, kernel, recurrent_kernel, states, cotangent):
        residuals = (x, kernel, recurrent_kernel, states)
        return _gradients(return_sequences, unroll, residuals, cotangent)

    def gradients_last(x, kernel, recurrent_kernel, states, cotangent):
        if return_sequences:
            d_last, per_step = jnp.zeros_like(states[0]), jnp.moveaxis(cotangent, 1, 0)
        else:
            d_last, per_step = cotangent, None
        d_x, *rest = _gradients_last(
            jnp.moveaxis(x, 1, 0), kernel, recurrent_kernel, states, d_last, per_step, unroll
        )
        return (jnp.moveaxis(d_x, 0, 1), *rest)

    return (
        seeds_last.under_vmap(plain_states, states_last),
        seeds_last.under_vmap(plain_gradients, gradients_last),
    )


def simple_rnn(
    x: jax.Array,
    kernel: jax.Array,
    recurrent_kernel: jax.Array,
    bias: jax.Array,
    *,
    return_sequences: bool = False,
    unroll: int | bool = 1,
    seeds_last_form: bool = True,
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
      unroll: time steps per iteration of the loops (a speed knob); ``True``: every step
        written out, no loop (for accelerators, where a loop iteration costs kernel launches).
      seeds_last_form: under ``vmap`` on a CPU, run both passes with the seed axis last (the
        same bits, faster there); ``False``: ``vmap``'s own form on every platform.

    Returns:
      ``<float32>[batch, time, units]`` with ``return_sequences``, else ``<float32>[batch, units]``.

    >>> x = jnp.ones((3, 5, 1))
    >>> w, u, b = jnp.ones((1, 2)), jnp.eye(2), jnp.zeros(2)
    >>> simple_rnn(x, w, u, b).shape, simple_rnn(x, w, u, b, return_sequences=True).shape
    ((3, 2), (3, 5, 2))
    """
    return _simple_rnn(
        x,
        kernel,
        recurrent_kernel,
        bias,
        bool(return_sequences),
        loop_unroll(unroll),
        bool(seeds_last_form),
    )


# Gated cells: the same treatment, kept for the GRU (for the LSTM it did not pay; see
# benchmarks/NOTES.md). A step is ``core(state, x_t W, h U, bias)``, two products with the weights
# and an elementwise rest. The forward loop keeps the states and, per
# step, the few coefficients that the step's derivative reduces to; the backward loop only
# multiplies the carried gradient by them and by ``U^T``. The kernels' and bias's gradients are
# sums taken after it. Like the SimpleRNN's, both passes run with the seed axis last under vmap on
# a CPU, written once for either layout (_Form): the gates are elementwise over [batch, 3H] per
# seed, six numbers, which in vmap's layout filled a vector register one seed at a time.


class _Form(NamedTuple):
    """Where the features are in a pass's arrays, and the matrix product and transpose there."""

    axis: int  # the features' axis: last, or before the seeds
    times: Callable[[jax.Array, jax.Array], jax.Array]
    transpose: Callable[[jax.Array], jax.Array]


_PLAIN = _Form(-1, _times_matrix, lambda matrix: matrix.T)
_LAST = _Form(-2, seeds_last.times_matrix, lambda matrix: jnp.swapaxes(matrix, 0, 1))


def _gru_gates(form, h, xp, hp, bias):
    x_z, x_r, x_h = jnp.split(xp + bias[0], 3, axis=form.axis)
    h_z, h_r, h_h = jnp.split(hp + bias[1], 3, axis=form.axis)
    z = jax.nn.sigmoid(x_z + h_z)
    r = jax.nn.sigmoid(x_r + h_r)
    candidate = jnp.tanh(x_h + r * h_h)
    return z * h + (1 - z) * candidate, (z, r, candidate, h_h)


def gru_core(h: jax.Array, xp: jax.Array, hp: jax.Array, bias: jax.Array) -> jax.Array:
    """Keras's ``GRU(reset_after=True)`` step after its products ``xp = x_t W``, ``hp = h U``.

    ``z = σ(xp_z + b_z + hp_z + c_z)``, ``r = σ(xp_r + b_r + hp_r + c_r)``,
    ``ĥ = tanh(xp_h + b_h + r (hp_h + c_h))``, ``h' = z h + (1 − z) ĥ``, gates in the order z, r,
    h and ``b``, ``c`` the two rows of ``bias [2, 3H]``.

    >>> gru_core(jnp.zeros((1, 2)), jnp.ones((1, 6)), jnp.ones((1, 6)), jnp.zeros((2, 6))).shape
    (1, 2)
    """
    return _gru_gates(_PLAIN, h, xp, hp, bias)[0]


def _gru_saving(form, h, xp, hp, bias):
    """The new state and what the backward pass keeps of the step: the state, ``z``, the
    coefficients of dL/dh' in dL/d(h U + b_1) ``[3H]`` and in dL/d(candidate's input)."""
    new, (z, r, n, h_h) = _gru_gates(form, h, xp, hp, bias)
    a_z = (h - n) * z * (1 - z)
    a_n = (1 - z) * (1 - n * n)
    a_r = a_n * h_h * r * (1 - r)
    return new, (new, z, jnp.concatenate([a_z, a_r, a_n * r], axis=form.axis), a_n)


def _gru_backward(form, saved, recurrent_kernel, d_last, per_step, unroll):
    """dL/d(x W + b_0), dL/d(h U + b_1) (``[time, batch, 3H]``), dL/d bias, the previous states."""
    states, z, coefficients, a_n = saved
    recurrent_t = form.transpose(recurrent_kernel)

    # dL/dh_{t-1} = dL/dh_t z_t + (dL/dh_t · coefficients_t) U^T.
    def step(dh, inputs):
        z_t, coefficients_t, g_t = inputs
        if g_t is not None:
            dh = dh + g_t
        d_hp = jnp.concatenate([dh, dh, dh], axis=form.axis) * coefficients_t
        return dh * z_t + form.times(d_hp, recurrent_t), dh

    _, dh = jax.lax.scan(step, d_last, (z, coefficients, per_step), reverse=True, unroll=unroll)
    d_hp = jnp.concatenate([dh, dh, dh], axis=form.axis) * coefficients
    units = dh.shape[form.axis]
    d_reset = jax.lax.slice_in_dim(d_hp, 0, 2 * units, axis=form.axis % d_hp.ndim)
    d_xp = jnp.concatenate([d_reset, dh * a_n], axis=form.axis)
    d_bias = jnp.stack([jnp.sum(d_xp, axis=(0, 1)), jnp.sum(d_hp, axis=(0, 1))])
    return d_xp, d_hp, d_bias, _previous(states)


def _output(state):
    return state[0] if isinstance(state, tuple) else state


def _previous(states):
    """The state before each step (time-major): zero, then every state but the last."""
    return jnp.concatenate([jnp.zeros_like(states[:1]), states[:-1]])


# Each cell: its step after the products, the same keeping what its backward pass needs (both of
# the form first), that backward pass, the arrays in its state, and the most units for which
# its passes run seed-last under vmap.
_GATED = {
    "gru": (gru_core, _gru_saving, _gru_backward, 1, GATED_SEEDS_LAST_UNITS),
}


def _gated_scan(cell, step, x, kernel, recurrent_kernel, bias, unroll):
    """Runs ``step(state, x_t W, h U, bias) -> (state, per-step output)`` from the zero state."""
    zero = jnp.zeros((x.shape[0], recurrent_kernel.shape[0]), x.dtype)
    initial = zero if _GATED[cell][3] == 1 else (zero,) * _GATED[cell][3]

    def body(state, x_t):
        hp = _times_matrix(_output(state), recurrent_kernel)
        return step(state, _times_matrix(x_t, kernel), hp, bias)

    return jax.lax.scan(body, initial, jnp.swapaxes(x, 0, 1), unroll=unroll)


def _gated_scan_last(cell, x, kernel, recurrent_kernel, bias, unroll):
    """What the GRU's forward pass keeps, seed axis last: ``x [time, batch, in, seeds]``.

    Each step takes ``x_t`` from a switch over static slices, as :func:`_states_last` does.
    """
    inputs = [functools.partial(operator.getitem, x, t) for t in range(x.shape[0])]
    saving = functools.partial(_GATED[cell][1], _LAST)

    def body(h, t):
        x_t = jax.lax.switch(t, inputs)
        times = seeds_last.times_matrix
        return saving(h, times(x_t, kernel), times(h, recurrent_kernel), bias)

    h0 = jnp.zeros((x.shape[1], *recurrent_kernel.shape[:1], x.shape[-1]), x.dtype)
    return jax.lax.scan(body, h0, jnp.arange(x.shape[0]), unroll=unroll)[1]


def _gated_gradients(form, cell, x_tm, kernel, recurrent_kernel, saved, d_last, per_step, unroll):
    """dL/dx (time-major), dL/dW, dL/dU, dL/d bias from ``x`` and the saved arrays, time first."""
    backward = _GATED[cell][2]
    d_xp, d_hp, d_bias, h_previous = backward(
        form, saved, recurrent_kernel, d_last, per_step, unroll
    )
    d_x = form.times(d_xp, form.transpose(kernel))
    if form is _LAST:
        rows = seeds_last.rows
        d_kernel = seeds_last.outer_sum(rows(x_tm), rows(d_xp))
        return d_x, d_kernel, seeds_last.outer_sum(rows(h_previous), rows(d_hp)), d_bias
    return d_x, _outer_sum(x_tm, d_xp), _outer_sum(h_previous, d_hp), d_bias


def _gated_backward(
    form, cell, return_sequences, unroll, x, kernel, recurrent_kernel, cotangent, saved
):
    """dL/dx, dL/dW, dL/dU, dL/d bias in ``form``'s layout (``x [batch, time, ...]``, ``saved``
    time first), from the output's cotangent."""
    if return_sequences:
        d_last, per_step = jnp.zeros_like(saved[0][0]), jnp.swapaxes(cotangent, 0, 1)
    else:
        d_last, per_step = cotangent, None
    args = (kernel, recurrent_kernel, saved, d_last, per_step, unroll)
    d_x, *rest = _gated_gradients(form, cell, jnp.swapaxes(x, 0, 1), *args)
    return (jnp.swapaxes(d_x, 0, 1), *rest)


@functools.cache
def _gated_under_vmap(cell: str, return_sequences: bool, unroll: int):
    """The gated forward pass (what it keeps) and backward pass, each seed-last under vmap."""

    def plain_saved(x, kernel, recurrent_kernel, bias):
        saving = functools.partial(_GATED[cell][1], _PLAIN)
        return _gated_scan(cell, saving, x, kernel, recurrent_kernel, bias, unroll)[1]

    def saved_last(x, kernel, recurrent_kernel, bias):
        return _gated_scan_last(cell, jnp.moveaxis(x, 1, 0), kernel, recurrent_kernel, bias, unroll)

    def gradients(form):
        def backward(x, kernel, recurrent_kernel, cotangent, *saved):
            args = (x, kernel, recurrent_kernel, cotangent, saved)
            return _gated_backward(form, cell, return_sequences, unroll, *args)

        return backward

    return (
        seeds_last.under_vmap(plain_saved, saved_last),
        seeds_last.under_vmap(gradients(_PLAIN), gradients(_LAST)),
    )


def _seeds_last_gated(cell, recurrent_kernel, seeds_last_form):
    return seeds_last_form and recurrent_kernel.shape[0] <= _GATED[cell][4]


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 5, 6, 7))
def _gated_rnn(cell, x, kernel, recurrent_kernel, bias, return_sequences, unroll, seeds_last_form):
    # Without a gradient only what is returned is kept (see _simple_rnn).
    core = _GATED[cell][0]

    def step(state, xp, hp, b):
        state = core(state, xp, hp, b)
        return state, (_output(state) if return_sequences else None)

    last, hs = _gated_scan(cell, step, x, kernel, recurrent_kernel, bias, unroll)
    return jnp.swapaxes(hs, 0, 1) if return_sequences else _output(last)


def _gated_rnn_fwd(cell, x, kernel, recurrent_kernel, bias, return_sequences, unroll, last_form):
    if _seeds_last_gated(cell, recurrent_kernel, last_form):
        forward = _gated_under_vmap(cell, return_sequences, unroll)[0]
        saved = forward(x, kernel, recurrent_kernel, bias)
        out = saved[0][-1]
    else:
        saving = functools.partial(_GATED[cell][1], _PLAIN)
        last, saved = _gated_scan(cell, saving, x, kernel, recurrent_kernel, bias, unroll)
        out = _output(last)
    out = jnp.swapaxes(saved[0], 0, 1) if return_sequences else out
    return out, (x, kernel, recurrent_kernel, saved)


def _gated_rnn_bwd(cell, return_sequences, unroll, last_form, residuals, cotangent):
    x, kernel, recurrent_kernel, saved = residuals
    if _seeds_last_gated(cell, recurrent_kernel, last_form):
        backward = _gated_under_vmap(cell, return_sequences, unroll)[1]
        return backward(x, kernel, recurrent_kernel, cotangent, *saved)
    args = (x, kernel, recurrent_kernel, cotangent, saved)
    return _gated_backward(_PLAIN, cell, return_sequences, unroll, *args)


_gated_rnn.defvjp(_gated_rnn_fwd, _gated_rnn_bwd)


def gated_rnn(
    cell: str,
    x: jax.Array,
    kernel: jax.Array,
    recurrent_kernel: jax.Array,
    bias: jax.Array,
    *,
    return_sequences: bool = False,
    unroll: int | bool = 1,
    seeds_last_form: bool = True,
) -> jax.Array:
    """Runs a gated Keras cell (the ``GRU``) over every time step from a zero state.

    The loop is :func:`gru_core` after the two products; its backward pass
    is written out. Differentiable in reverse mode with respect to every array argument.

    Args:
      cell: ``"gru"``.
      x: ``<float32>[batch, time, in_features]``.
      kernel: ``<float32>[in_features, 3H]``.
      recurrent_kernel: ``<float32>[H, 3H]``.
      bias: ``<float32>[2, 3H]``, the input then the recurrent bias.
      return_sequences: return every ``h``, not only the last.
      unroll: time steps per iteration of the loops (a speed knob; ``True``: no loop).
      seeds_last_form: under ``vmap`` on a CPU, run both passes of the training with the seed
        axis last (the same bits, faster there) up to 2 units; ``False``: ``vmap``'s own form.

    Returns:
      ``<float32>[batch, time, H]`` with ``return_sequences``, else ``<float32>[batch, H]``.

    >>> x, w, u = jnp.ones((3, 5, 1)), jnp.ones((1, 6)), jnp.ones((2, 6))
    >>> gated_rnn("gru", x, w, u, jnp.zeros((2, 6)), return_sequences=True).shape
    (3, 5, 2)
    """
    if cell not in _GATED:
        raise ValueError(f"cell={cell!r} has no written-out backward pass; one of {tuple(_GATED)}")
    sequences, last_form = bool(return_sequences), bool(seeds_last_form)
    return _gated_rnn(
        cell, x, kernel, recurrent_kernel, bias, sequences, loop_unroll(unroll), last_form
    )
