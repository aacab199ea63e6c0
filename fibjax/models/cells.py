"""Recurrent cells as tf-keras 2 defines them, and the layers that run them over time.

Each cell owns its weights (``kernel [in, kH]``, ``recurrent_kernel [H, kH]``, ``bias``, created
in Keras's order so that a cell's parameters under one key do not depend on what follows it) and
has its step as a pure function of ``(state, x_t, kernel, recurrent_kernel, bias)``, which a
written-out backward pass can reuse. A layer runs the step over every time step from a zero state.
"""

from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from fibjax.models import recurrence
from fibjax.models.initializers import glorot_uniform, orthogonal, zeros
from fibjax.models.recurrence import gated_rnn, gru_core, simple_rnn, simple_rnn_step

State = Any  # an array ``<float32>[batch, H]``, or a tuple of them (LSTM: ``(h, c)``)


def gru_step(
    h: jax.Array, x_t: jax.Array, kernel: jax.Array, recurrent_kernel: jax.Array, bias: jax.Array
) -> jax.Array:
    """One step of Keras's ``GRU(reset_after=True)``, gates fused in the order z, r, h.

    ``z = σ(x W_z + b_z + h U_z + c_z)``, ``r = σ(x W_r + b_r + h U_r + c_r)``,
    ``ĥ = tanh(x W_h + b_h + r (h U_h + c_h))``, ``h' = z h + (1 − z) ĥ``, with ``b`` and ``c``
    the two rows of the bias.

    Args:
      h: ``<float32>[batch, H]`` the previous state.
      x_t: ``<float32>[batch, in]`` the input at this step.
      kernel: ``<float32>[in, 3H]``.
      recurrent_kernel: ``<float32>[H, 3H]``.
      bias: ``<float32>[2, 3H]``, the input bias then the recurrent bias.

    Returns:
      ``<float32>[batch, H]``, the new state.

    >>> gru_step(jnp.zeros((1, 2)), jnp.ones((1, 1)), jnp.ones((1, 6)), jnp.ones((2, 6)),
    ...          jnp.zeros((2, 6))).shape
    (1, 2)
    """
    return gru_core(h, x_t @ kernel, h @ recurrent_kernel, bias)


def lstm_step(
    state: tuple[jax.Array, jax.Array],
    x_t: jax.Array,
    kernel: jax.Array,
    recurrent_kernel: jax.Array,
    bias: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """One step of Keras's ``LSTM``, gates fused in the order i, f, c, o.

    ``[i, f, g, o] = x W + h U + b``; ``c' = σ(f) c + σ(i) tanh(g)``, ``h' = σ(o) tanh(c')``.

    Args:
      state: ``(h, c)``, each ``<float32>[batch, H]``.
      x_t: ``<float32>[batch, in]`` the input at this step.
      kernel: ``<float32>[in, 4H]``.
      recurrent_kernel: ``<float32>[H, 4H]``.
      bias: ``<float32>[4H]``.

    Returns:
      The new ``(h, c)``.

    >>> h, c = lstm_step((jnp.zeros((1, 2)), jnp.zeros((1, 2))), jnp.ones((1, 1)),
    ...                  jnp.ones((1, 8)), jnp.ones((2, 8)), jnp.zeros(8))
    >>> h.shape, c.shape
    ((1, 2), (1, 2))
    """
    h, c = state
    i, f, g, o = jnp.split(x_t @ kernel + h @ recurrent_kernel + bias, 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c), c


def _lstm_bias(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """Keras's ``unit_forget_bias``: zeros, except ones for the forget gate's block."""
    del key
    units = shape[0] // 4
    return jnp.zeros(shape, dtype).at[units : 2 * units].set(1)


class RecurrentCell(nn.Module):
    """The weights and step of one kind of cell; subclasses set the class variables.

    Attributes:
      features: hidden units ``H``.
    """

    features: int

    GATES: ClassVar[int] = 1  # k in the fused [in, kH] and [H, kH] kernels
    KERAS_NAME: ClassVar[str] = ""
    KERAS_WEIGHTS: ClassVar[tuple[str, ...]] = ("kernel", "recurrent_kernel", "bias")
    bias_init: ClassVar[Any] = staticmethod(zeros)

    def bias_shape(self) -> tuple[int, ...]:
        return (self.GATES * self.features,)

    @nn.compact
    def weights(self, in_features: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The kernel, recurrent kernel and bias, created on first use, in Keras's order.

        Returns:
          ``<float32>[in_features, kH]``, ``<float32>[H, kH]`` and the bias.
        """
        width = self.GATES * self.features
        kernel = self.param("kernel", glorot_uniform, (in_features, width))
        recurrent = self.param("recurrent_kernel", orthogonal, (self.features, width))
        bias = self.param("bias", self.bias_init, self.bias_shape())
        return kernel, recurrent, bias

    @staticmethod
    def step(state: State, x_t: jax.Array, *weights: jax.Array) -> State:
        raise NotImplementedError

    GATED: ClassVar[str] = ""  # its name in fibjax.models.recurrence.gated_rnn, if it has one there

    def initial_state(self, batch: int, dtype: Any = jnp.float32) -> State:
        """The zero state, ``<float32>[batch, H]`` (a pair of them for LSTM)."""
        return jnp.zeros((batch, self.features), dtype)

    @staticmethod
    def output(state: State) -> jax.Array:
        """The hidden state ``h`` within a state."""
        return state

    def __call__(self, state: State, x: jax.Array) -> tuple[State, jax.Array]:
        """Advances the state by one step of ``x`` (``<float32>[batch, in]``).

        Returns:
          The new state (the carry) and ``h`` (``<float32>[batch, H]``), as ``nn.RNN`` expects.
        """
        state = self.step(state, x, *self.weights(x.shape[-1]))
        return state, self.output(state)


class SimpleRNNCell(RecurrentCell):
    """One step of Keras's ``SimpleRNN``: ``h_t = tanh(x_t W + b + h_{t-1} U)``."""

    KERAS_NAME: ClassVar[str] = "SimpleRNN"
    step = staticmethod(simple_rnn_step)


class GRUCell(RecurrentCell):
    """One step of Keras's ``GRU`` (``reset_after=True``), bias ``[2, 3H]``: :func:`gru_step`."""

    GATES: ClassVar[int] = 3
    KERAS_NAME: ClassVar[str] = "GRU"
    step = staticmethod(gru_step)
    GATED: ClassVar[str] = "gru"

    def bias_shape(self) -> tuple[int, ...]:
        return (2, self.GATES * self.features)


class LSTMCell(RecurrentCell):
    """One step of Keras's ``LSTM`` (``unit_forget_bias=True``); see :func:`lstm_step`."""

    GATES: ClassVar[int] = 4
    KERAS_NAME: ClassVar[str] = "LSTM"
    bias_init: ClassVar[Any] = staticmethod(_lstm_bias)
    step = staticmethod(lstm_step)

    def initial_state(self, batch: int, dtype: Any = jnp.float32) -> State:
        zero = jnp.zeros((batch, self.features), dtype)
        return zero, zero

    @staticmethod
    def output(state: State) -> jax.Array:
        return state[0]


def scan_cell(
    cell: RecurrentCell,
    x: jax.Array,
    weights: tuple[jax.Array, ...],
    *,
    return_sequences: bool,
    unroll: int | bool,
) -> jax.Array:
    """Runs ``cell.step`` over every time step of ``x`` from the zero state, with ``lax.scan``.

    Args:
      cell: gives the step, the zero state and the output of a state.
      x: ``<float32>[batch, time, in]``.
      weights: the cell's ``(kernel, recurrent_kernel, bias)``.
      return_sequences: return every ``h``, not only the last.
      unroll: time steps per iteration of the loop (``True``: no loop).

    Returns:
      ``<float32>[batch, time, H]`` with ``return_sequences``, else ``<float32>[batch, H]``.
    """

    def step(state, x_t):
        state = cell.step(state, x_t, *weights)
        return state, (cell.output(state) if return_sequences else None)

    initial = cell.initial_state(x.shape[0], x.dtype)
    last, states = jax.lax.scan(step, initial, jnp.swapaxes(x, 0, 1), unroll=unroll)
    return jnp.swapaxes(states, 0, 1) if return_sequences else cell.output(last)


class RecurrentLayer(nn.Module):
    """A Keras recurrent layer: its cell (named ``cell``) over every time step from zero.

    Attributes:
      features: hidden units.
      return_sequences: return the state after every step, not only the last (as in Keras).
      unroll: time steps unrolled per iteration of the loop (a speed knob; 1 is a plain loop,
        ``True`` no loop).
      seeds_last_form: under ``vmap`` on a CPU, run a written-out loop with the seed axis last
        (:mod:`fibjax.models.seeds_last`); ``False``: ``vmap``'s own form everywhere.
    """

    features: int
    return_sequences: bool = False
    unroll: int | bool = 1
    seeds_last_form: bool = True

    CELL: ClassVar[type[RecurrentCell]] = RecurrentCell
    # Up to this many units, vmap over seeds runs the layer's training passes seed-last on a CPU,
    # with each seed's own bits; 0: the layer has no seed-last form.
    SEEDS_LAST_UNITS: ClassVar[int] = 0

    def run(self, cell: RecurrentCell, x: jax.Array, weights: tuple[jax.Array, ...]) -> jax.Array:
        return scan_cell(
            cell, x, weights, return_sequences=self.return_sequences, unroll=self.unroll
        )

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Runs the cell over every time step.

        Args:
          x: ``<float32>[batch, time, in_features]``.

        Returns:
          ``<float32>[batch, time, features]``, the state after each step, with
          ``return_sequences``; otherwise ``<float32>[batch, features]``, the last state.
        """
        cell = self.CELL(self.features, name="cell")
        return self.run(cell, x, cell.weights(x.shape[-1]))


class SimpleRNN(RecurrentLayer):
    """Keras's ``SimpleRNN``.

    The loop and its gradient are :func:`fibjax.models.recurrence.simple_rnn`, whose backward pass
    is written out; on a CPU it trains 1.4 to 1.8 times faster than differentiating a scan of the
    cell (``benchmarks/NOTES.md``).
    """

    CELL: ClassVar[type[RecurrentCell]] = SimpleRNNCell
    SEEDS_LAST_UNITS: ClassVar[int] = recurrence.SEEDS_LAST_UNITS

    def run(self, cell: RecurrentCell, x: jax.Array, weights: tuple[jax.Array, ...]) -> jax.Array:
        return simple_rnn(
            x,
            *weights,
            return_sequences=self.return_sequences,
            unroll=self.unroll,
            seeds_last_form=self.seeds_last_form,
        )


class GatedLayer(RecurrentLayer):
    """A layer whose loop and gradient are :func:`fibjax.models.recurrence.gated_rnn` of its cell's
    ``core``: the backward pass written out around the cell's elementwise step."""

    def run(self, cell: RecurrentCell, x: jax.Array, weights: tuple[jax.Array, ...]) -> jax.Array:
        return gated_rnn(
            cell.GATED,
            x,
            *weights,
            return_sequences=self.return_sequences,
            unroll=self.unroll,
            seeds_last_form=self.seeds_last_form,
        )


class GRU(GatedLayer):
    """Keras's ``GRU`` (``reset_after=True``); its backward pass is written out
    (:func:`fibjax.models.recurrence.gated_rnn`), 1.2 to 1.5 times faster on a CPU than
    differentiating a scan of :class:`GRUCell`, and at up to 2 units seed-last under ``vmap``,
    1.5 to 2.2 times faster again (``benchmarks/NOTES.md``)."""

    CELL: ClassVar[type[RecurrentCell]] = GRUCell
    SEEDS_LAST_UNITS: ClassVar[int] = recurrence.GATED_SEEDS_LAST_UNITS


class LSTM(RecurrentLayer):
    """Keras's ``LSTM`` (``unit_forget_bias=True``), a scan of :class:`LSTMCell`."""

    CELL: ClassVar[type[RecurrentCell]] = LSTMCell
