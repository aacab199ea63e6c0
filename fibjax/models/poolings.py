"""Poolings: from the recurrent states to one vector per window.

``LastState`` takes the last state (the notebook's vanilla model). The attention forms score each
state, take ``α = softmax_t(s)`` and return the context ``Σ_t α_t h_t``; α is sown into the
``"intermediates"`` collection under ``"alpha"``. Each creates its weights in Keras's order,
listed in ``KERAS_WEIGHTS``.
"""

from __future__ import annotations

from typing import ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from fibjax.models.attention import additive_pooling, attention_pooling, dot_pooling
from fibjax.models.initializers import attention_normal, glorot_uniform, zeros


@jax.custom_jvp
def softmax(scores: jax.Array) -> jax.Array:
    """``softmax`` over the last axis, as Keras computes it, with a derivative free of division.

    ``<float32>[..., time]`` → the same, summing to one over ``time``.

    Differentiated as it is written, ``e / Σe`` puts divisions by a broadcast sum into the
    backward pass, and XLA rewrites those into multiplications by a reciprocal in some programs
    and not in others (one device against a mesh of several), which changed results in their
    last bits with the number of devices. The derivative here, ``α ⊙ (ṡ - Σ α ṡ)`` (the one
    TensorFlow uses), has no division to rewrite.

    >>> [round(float(a), 4) for a in softmax(jnp.array([0.0, 2.0]))]
    [0.1192, 0.8808]
    """
    e = jnp.exp(scores - jax.lax.stop_gradient(_max_over_last(scores)))
    return e / jnp.sum(e, axis=-1, keepdims=True)


def _max_over_last(x: jax.Array) -> jax.Array:
    """``jnp.max(x, axis=-1, keepdims=True)`` as a chain of elementwise maxima over the slices.

    A maximum is exact in any order, so the result is the same bits as the reduction's. Under
    ``vmap`` over seeds the reduction over time is a row of 20 numbers per seed, which XLA's CPU
    code computes one seed at a time (a tenth of the attention model's training step); the chain
    is elementwise over the seeds and runs in vector registers (benchmarks/NOTES.md).
    """
    result = x[..., :1]
    for t in range(1, x.shape[-1]):
        result = jnp.maximum(result, x[..., t : t + 1])
    return result


@softmax.defjvp
def _softmax_jvp(primals: tuple[jax.Array], tangents: tuple[jax.Array]):
    (scores,), (ds,) = primals, tangents
    alpha = softmax(scores)
    return alpha, alpha * (ds - jnp.sum(alpha * ds, axis=-1, keepdims=True))


class Pooling(nn.Module):
    """Base of the poolings.

    Attributes:
      seeds_last_form: under ``vmap`` on a CPU, run written-out passes with the seed axis last
        (:mod:`fibjax.models.seeds_last`); ``False``: ``vmap``'s own form everywhere.
    """

    seeds_last_form: bool = True

    # The parameters with one row per time step (their first axis) whose initial rows are all
    # the same, so that drawn for a window of one step and repeated they are a longer window's
    # own initial values (:func:`fibjax.models.repeat_steps`). A pooling whose every per-step
    # parameter is named here has its initial weights drawn once for all windows
    # (:mod:`fibjax.training.initial`).
    STEP_ROWS: ClassVar[tuple[str, ...]] = ()


class LastState(Pooling):
    """The last state, as a Keras recurrent layer returns it without ``return_sequences``."""

    SEQUENCES: ClassVar[bool] = False  # takes the last state ``<float32>[batch, H]`` only
    KERAS_WEIGHTS: ClassVar[tuple[str, ...]] = ()

    def __call__(self, h: jax.Array) -> jax.Array:
        """``<float32>[batch, H]`` → the same."""
        return h


class Attention(Pooling):
    """Base of the attention forms: ``scores`` → α (sown) → context."""

    SEQUENCES: ClassVar[bool] = True  # takes every state ``<float32>[batch, time, H]``
    KERAS_WEIGHTS: ClassVar[tuple[str, ...]] = ()

    def scores(self, h: jax.Array) -> jax.Array:
        """``<float32>[batch, time, H]`` → ``<float32>[batch, time]``."""
        raise NotImplementedError

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        """Pools the states over time.

        Args:
          h: ``<float32>[batch, time, H]``.

        Returns:
          ``<float32>[batch, H]``, the attention-weighted sum of the states.
        """
        alpha = softmax(self.scores(h))
        self.sow("intermediates", "alpha", alpha)
        return jnp.sum(h * alpha[..., None], axis=1)


class AttentionPooling(Attention):
    """The notebook's attention: ``s_t = tanh(h_t W_a + b_t)``, ``W_a [H, 1]``, ``b [time, 1]``.

    ``b`` has one entry per time step, as in the notebook, so the layer is tied to one window
    length. Computed by :func:`fibjax.models.attention.attention_pooling`, whose passes are written
    out for speed under ``vmap`` over seeds.
    """

    KERAS_WEIGHTS: ClassVar[tuple[str, ...]] = ("kernel", "bias")
    STEP_ROWS: ClassVar[tuple[str, ...]] = ("bias",)  # zeros at every step

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        """``<float32>[batch, time, H]`` → ``<float32>[batch, H]``; α sown."""
        kernel = self.param("kernel", attention_normal, (h.shape[-1], 1))
        bias = self.param("bias", zeros, (h.shape[1], 1))
        context, alpha = attention_pooling(h, kernel, bias, seeds_last_form=self.seeds_last_form)
        self.sow("intermediates", "alpha", alpha)
        return context


class AdditiveAttention(Attention):
    """Bahdanau's attention with the last state as query: ``s_t = v · tanh(h_T W_q + h_t W_k + b)``.

    ``W_q``, ``W_k`` ``[H, H]`` and ``v`` ``[H, 1]`` glorot-uniform, ``b`` ``[H]`` zeros.
    """

    KERAS_WEIGHTS: ClassVar[tuple[str, ...]] = ("query_kernel", "key_kernel", "bias", "score")

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        """``<float32>[batch, time, H]`` → ``<float32>[batch, H]``; α sown."""
        units = h.shape[-1]
        query_kernel = self.param("query_kernel", glorot_uniform, (units, units))
        key_kernel = self.param("key_kernel", glorot_uniform, (units, units))
        bias = self.param("bias", zeros, (units,))
        score = self.param("score", glorot_uniform, (units, 1))
        weights = (query_kernel, key_kernel, bias, score)
        context, alpha = additive_pooling(h, *weights, seeds_last_form=self.seeds_last_form)
        self.sow("intermediates", "alpha", alpha)
        return context


class DotAttention(Attention):
    """Scaled dot-product attention with a learned query: ``s_t = (h_t W_k) · q / sqrt(H)``.

    ``W_k`` ``[H, H]`` and ``q`` ``[H, 1]`` glorot-uniform.
    """

    KERAS_WEIGHTS: ClassVar[tuple[str, ...]] = ("key_kernel", "query")

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        """``<float32>[batch, time, H]`` → ``<float32>[batch, H]``; α sown."""
        units = h.shape[-1]
        key_kernel = self.param("key_kernel", glorot_uniform, (units, units))
        query = self.param("query", glorot_uniform, (units, 1))
        context, alpha = dot_pooling(h, key_kernel, query, seeds_last_form=self.seeds_last_form)
        self.sow("intermediates", "alpha", alpha)
        return context
