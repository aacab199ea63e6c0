"""Flax (Linen) modules of the notebook's two models, with Keras's semantics and initialisers.

Both models name their parts alike (``rnn``, ``head``), so that under one key the vanilla and the
attention model start from the same recurrent and output weights; only the pooling is extra.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.custom_batching
import jax.numpy as jnp

from fibjax.recurrence import simple_rnn, simple_rnn_step

MODEL_NAMES = ("vanilla", "attention")

# Keras's defaults: glorot-uniform kernels, orthogonal recurrent kernel, zero biases, and
# RandomNormal(stddev=0.05) for the attention layer's "random_normal" weight.
glorot_uniform = nn.initializers.glorot_uniform()
_orthogonal = nn.initializers.orthogonal()


def orthogonal(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """Keras's (and Flax's) orthogonal initialiser, drawn one matrix at a time under ``vmap``.

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


zeros = nn.initializers.zeros
attention_normal = nn.initializers.normal(stddev=0.05)


class SimpleRNNCell(nn.Module):
    """One step of Keras's ``SimpleRNN``: ``h_t = tanh(x_t W + b + h_{t-1} U)``.

    It owns the weights; :class:`SimpleRNN` reads them with :meth:`weights` and runs the whole
    loop at once with :func:`fibjax.recurrence.simple_rnn`.

    Attributes:
      features: hidden units.
    """

    features: int

    @nn.compact
    def weights(self, in_features: int) -> tuple[jax.Array, jax.Array, jax.Array]:
        """The kernel ``W``, recurrent kernel ``U`` and bias ``b``, created on first use.

        Returns:
          ``<float32>[in_features, features]``, ``<float32>[features, features]`` and
          ``<float32>[features]``.
        """
        kernel = self.param("kernel", glorot_uniform, (in_features, self.features))
        recurrent = self.param("recurrent_kernel", orthogonal, (self.features, self.features))
        bias = self.param("bias", zeros, (self.features,))
        return kernel, recurrent, bias

    def __call__(self, h: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Advances the state by one time step.

        Args:
          h: ``<float32>[batch, features]`` previous state.
          x: ``<float32>[batch, in_features]`` input at this step.

        Returns:
          The new state twice (as carry and as output), ``<float32>[batch, features]``.
        """
        h = simple_rnn_step(h, x, *self.weights(x.shape[-1]))
        return h, h


class SimpleRNN(nn.Module):
    """Keras's ``SimpleRNN``: the cell's step over every time step from a zero state.

    The loop and its gradient are :func:`fibjax.recurrence.simple_rnn`, whose backward pass is
    written out; on a CPU it trains 1.4 to 1.8 times faster than differentiating a scan of the
    cell (``benchmarks/NOTES.md``).

    Attributes:
      features: hidden units.
      return_sequences: return the state after every step, not only the last (as in Keras).
      unroll: time steps unrolled per iteration of the loop (a speed knob; 1 is a plain loop).
    """

    features: int
    return_sequences: bool = False
    unroll: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Runs the cell over every time step.

        Args:
          x: ``<float32>[batch, time, in_features]``.

        Returns:
          ``<float32>[batch, time, features]``, the state after each step, with
          ``return_sequences``; otherwise ``<float32>[batch, features]``, the last state.
        """
        cell = SimpleRNNCell(self.features, name="cell")
        kernel, recurrent, bias = cell.weights(x.shape[-1])
        return simple_rnn(
            x,
            kernel,
            recurrent,
            bias,
            return_sequences=self.return_sequences,
            unroll=self.unroll,
        )


class AttentionPooling(nn.Module):
    """The notebook's attention: ``α = softmax_t(tanh(h W_a + b_a))``, context ``Σ_t α_t h_t``.

    ``b_a`` has one entry per time step, as in the notebook, so the layer is tied to one window
    length. The weights α are sown into the ``"intermediates"`` collection under ``"alpha"``.
    """

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        """Pools the states over time.

        Args:
          h: ``<float32>[batch, time, features]``.

        Returns:
          ``<float32>[batch, features]``, the attention-weighted sum of the states.
        """
        kernel = self.param("kernel", attention_normal, (h.shape[-1], 1))
        bias = self.param("bias", zeros, (h.shape[1], 1))
        # A multiply-sum, not ``h @ kernel``: under ``vmap`` the matmul becomes a batched dot
        # of [time, features] x [features, 1] per seed, which XLA's CPU runtime calls as its
        # own kernel; the multiply-sum fuses with the tanh around it.
        scores = jnp.tanh(jnp.sum(h * kernel[:, 0], axis=-1) + bias[:, 0])
        alpha = jax.nn.softmax(scores, axis=-1)
        self.sow("intermediates", "alpha", alpha)
        return jnp.sum(h * alpha[..., None], axis=1)


class Head(nn.Module):
    """Keras's ``Dense(1, tanh)``, squeezed to one value per example."""

    @nn.compact
    def __call__(self, z: jax.Array) -> jax.Array:
        """``<float32>[batch, features]`` → ``<float32>[batch]``."""
        dense = nn.Dense(1, kernel_init=glorot_uniform, bias_init=zeros, name="dense")
        return jnp.tanh(dense(z))[..., 0]


class VanillaRNN(nn.Module):
    """``SimpleRNN(hidden)`` then ``Dense(1, tanh)`` on the last state (11 parameters at hidden=2).

    >>> model = VanillaRNN(hidden=2)
    >>> params = model.init(jax.random.key(0), jnp.zeros((1, 20, 1)))["params"]
    >>> model.apply({"params": params}, jnp.zeros((3, 20, 1))).shape
    (3,)
    """

    hidden: int = 2
    unroll: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``<float32>[batch, time, 1]`` → ``<float32>[batch]``."""
        last = SimpleRNN(self.hidden, unroll=self.unroll, name="rnn")(x)
        return Head(name="head")(last)


class AttentionRNN(nn.Module):
    """``SimpleRNN(hidden)`` over time, attention pooling, then ``Dense(1, tanh)`` (33 at hidden=2).

    >>> model = AttentionRNN(hidden=2)
    >>> params = model.init(jax.random.key(0), jnp.zeros((1, 20, 1)))["params"]
    >>> model.apply({"params": params}, jnp.zeros((3, 20, 1))).shape
    (3,)
    """

    hidden: int = 2
    unroll: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """``<float32>[batch, time, 1]`` → ``<float32>[batch]``."""
        states = SimpleRNN(self.hidden, return_sequences=True, unroll=self.unroll, name="rnn")(x)
        return Head(name="head")(AttentionPooling(name="pooling")(states))


def make_model(name: str, hidden: int = 2, unroll: int = 1) -> nn.Module:
    """The module for a model name, ``"vanilla"`` or ``"attention"``.

    >>> make_model("attention", hidden=3)
    AttentionRNN(
        # attributes
        hidden = 3
        unroll = 1
    )
    """
    if name == "vanilla":
        return VanillaRNN(hidden=hidden, unroll=unroll)
    if name == "attention":
        return AttentionRNN(hidden=hidden, unroll=unroll)
    raise ValueError(f"model={name!r} is unknown; choose one of {MODEL_NAMES}")


def hidden_size(params: Any) -> int:
    """Hidden units of a model's parameters (from the recurrent kernel's shape)."""
    return int(params["rnn"]["cell"]["recurrent_kernel"].shape[0])


def count_params(params: Any) -> int:
    """Number of scalar parameters in a parameter tree."""
    return int(sum(leaf.size for leaf in jax.tree_util.tree_leaves(params)))


def init_params(name: str, key: jax.Array, *, hidden: int = 2, window: int = 20) -> Any:
    """Keras-style initial parameters of a model for windows of ``window`` terms.

    >>> count_params(init_params("vanilla", jax.random.key(0)))
    11
    >>> count_params(init_params("attention", jax.random.key(0)))
    33
    """
    model = make_model(name, hidden)
    return model.init(key, jnp.zeros((1, window, 1), jnp.float32))["params"]


def predict(name: str, params: Any, x: jax.Array) -> jax.Array:
    """Predictions of a model given by name.

    Args:
      name: ``"vanilla"`` or ``"attention"``.
      params: the model's parameters.
      x: ``<float32>[batch, time, 1]`` windows.

    Returns:
      ``<float32>[batch]`` predicted next terms (scaled).
    """
    model = make_model(name, hidden_size(params))
    return model.apply({"params": params}, jnp.asarray(x, jnp.float32))


def attention_weights(params: Any, x: jax.Array) -> jax.Array:
    """The attention model's weights α, read from the pooling module's sown values.

    Args:
      params: parameters of the attention model.
      x: ``<float32>[batch, time, 1]`` windows.

    Returns:
      ``<float32>[batch, time]``, non-negative and summing to 1 over time.

    >>> params = init_params("attention", jax.random.key(0))
    >>> alpha = attention_weights(params, jnp.zeros((4, 20, 1)))
    >>> alpha.shape, bool(jnp.allclose(alpha.sum(-1), 1.0))
    ((4, 20), True)
    """
    model = make_model("attention", hidden_size(params))
    _, state = model.apply(
        {"params": params}, jnp.asarray(x, jnp.float32), mutable=["intermediates"]
    )
    (alpha,) = state["intermediates"]["pooling"]["alpha"]
    return alpha
