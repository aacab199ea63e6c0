"""Attention poolings as functions, with their backward passes written out.

The notebook's (:func:`attention_pooling`): ``s_t = tanh(h_t W_a + b_t)``; the additive
(:func:`additive_pooling`) and the scaled dot-product (:func:`dot_pooling`) forms; then
``α = softmax_t(s)`` and the context ``Σ_t α_t h_t``, as Keras computes them. Both passes are
written with the seed axis last and run so under ``vmap`` on a CPU
(:mod:`fibjax.models.seeds_last`); one seed alone runs the same code with a seed axis of one.
In ``vmap``'s layout the notebook's pooling took about 40% of the attention model's training
step on a CPU, its scores computed one seed at a time; seed-last, training at 256 seeds ran 1.23
times as fast. The additive and dot forms, differentiated by JAX in ``vmap``'s layout, had
trained 2 to 3 times slower than it (benchmarks/NOTES.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fibjax.models import seeds_last


def _context(h, scores):
    """The context ``[batch, H, seeds]`` and α ``[batch, time, seeds]`` of the scores."""
    e = jnp.exp(scores - jnp.max(scores, axis=1, keepdims=True))
    alpha = e / jnp.sum(e, axis=1, keepdims=True)
    return jnp.sum(h * alpha[:, :, None], axis=1), alpha


def _scores_gradient(h, alpha, d_context, d_alpha):
    """dL/d(scores) ``[batch, time, seeds]`` from the context's and α's cotangents.

    Softmax's derivative as TensorFlow takes it, ``α ⊙ (ṡ - Σ α ṡ)``: no division.
    """
    d_alpha = jnp.sum(d_context[:, None] * h, axis=2) + d_alpha
    t1 = alpha * d_alpha
    return t1 - alpha * jnp.sum(t1, axis=1, keepdims=True)


def _forward_last(h, kernel, bias):
    """The context ``[batch, H, seeds]``, α and the scores ``[batch, time, seeds]``.

    ``h [batch, time, H, seeds]``, ``kernel [H, 1, seeds]``, ``bias [time, 1, seeds]``.
    """
    scores = jnp.tanh(seeds_last.times_matrix(h, kernel)[:, :, 0] + bias[:, 0])
    return (*_context(h, scores), scores)


def _tanh_derivative(d, s):
    # As JAX differentiates tanh: (g + g s)(1 - s).
    return (d + d * s) * (1 - s)


def _backward_last(h, kernel, bias, scores, alpha, d_context, d_alpha, store=True):
    """dL/dh, dL/dW_a and dL/db from the residuals and the cotangents, seed axis last.

    ``store``: compute the scores' gradient once (:func:`fibjax.models.seeds_last.computed_once`):
    it feeds three sums and Adam's three updates of ``b``, and recomputed from seed-last arrays it
    cost more than the layout saved. One seed alone runs without: with the conditional, its
    training gave other last bits when XLA ran the loops kernel by kernel than when it compiled
    them whole; many seeds gave the same in both (tests/training/test_program.py). So a seed
    trained alone and the same seed among others can differ in their last bits.
    """
    del bias  # the gradients do not depend on it
    g = d_context[:, None]
    d_scores = _scores_gradient(h, alpha, d_context, d_alpha)
    if store:
        d_pre = seeds_last.computed_once(_tanh_derivative, d_scores, scores)
    else:
        d_pre = _tanh_derivative(d_scores, scores)

    d_kernel = seeds_last.outer_sum(seeds_last.rows(h), seeds_last.rows(d_pre)[:, None])
    d_h = g * alpha[:, :, None] + d_pre[:, :, None] * kernel[:, 0]
    return d_h, d_kernel, jnp.sum(d_pre, axis=0)[:, None]


def attention_pooling(
    h: jax.Array, kernel: jax.Array, bias: jax.Array, *, seeds_last_form: bool = True
) -> tuple[jax.Array, jax.Array]:
    """The notebook's attention over every state: the context and the weights α.

    Differentiable in reverse mode (``jax.grad``, ``jax.vjp``) with respect to every array.

    Args:
      h: ``<float32>[batch, time, H]``, the states.
      kernel: ``<float32>[H, 1]``, ``W_a``.
      bias: ``<float32>[time, 1]``, ``b``, one entry per time step.
      seeds_last_form: under ``vmap`` on a CPU, run both passes with the seed axis last;
        ``False``: ``vmap``'s own form on every platform (no conditional in the backward pass,
        which on a GPU costs a round trip to the host).

    Returns:
      ``<float32>[batch, H]``, the context ``Σ_t α_t h_t``, and ``<float32>[batch, time]``, α.

    >>> context, alpha = attention_pooling(jnp.ones((3, 5, 2)), jnp.ones((2, 1)), jnp.zeros((5, 1)))
    >>> context.shape, alpha.shape, bool(jnp.allclose(alpha, 0.2))
    ((3, 2), (3, 5), True)
    """
    return _ATTENTION(bool(seeds_last_form), h, (kernel, bias))


# The additive and dot forms. Their weights, seed-last: ``[H, H, seeds]`` kernels, ``[H, seeds]``
# bias, ``[H, 1, seeds]`` score and query vectors.


def _swap(matrix):
    return jnp.swapaxes(matrix, 0, 1)


def _additive_forward(h, query_kernel, key_kernel, bias, score):
    """The context, α and ``tanh(h_T W_q + h_t W_k + b)`` ``[batch, time, H, seeds]``."""
    times = seeds_last.times_matrix
    # The last step kept as an axis of one: taken away, one seed alone (every other axis of one)
    # got other bits than the same seed among others.
    query = times(h[:, -1:], query_kernel)
    hidden = jnp.tanh(query + times(h, key_kernel) + bias)
    return (*_context(h, times(hidden, score)[:, :, 0]), hidden)


def _additive_backward(
    h, query_kernel, key_kernel, bias, score, hidden, alpha, d_context, d_alpha, store=True
):
    """dL/dh and the weights' gradients of :func:`_additive_forward`, seed axis last.

    ``store``: the gradients of the scores and of tanh's input computed once each
    (:func:`fibjax.models.seeds_last.computed_once`), as in :func:`_backward_last`.
    """
    del bias  # the gradients do not depend on it
    once = seeds_last.computed_once if store else lambda f, *args: f(*args)
    d_scores = once(_scores_gradient, h, alpha, d_context, d_alpha)
    rows, outer_sum, times = seeds_last.rows, seeds_last.outer_sum, seeds_last.times_matrix
    d_score = outer_sum(rows(hidden), rows(d_scores)[:, None])
    d_pre = once(_tanh_derivative, d_scores[:, :, None] * score[:, 0], hidden)
    d_query = jnp.sum(d_pre, axis=1, keepdims=True)
    d_h = d_context[:, None] * alpha[:, :, None] + times(d_pre, _swap(key_kernel))
    d_h = d_h.at[:, -1:].add(times(d_query, _swap(query_kernel)))
    return (
        d_h,
        outer_sum(rows(h[:, -1:]), rows(d_query)),
        outer_sum(rows(h), rows(d_pre)),
        jnp.sum(rows(d_pre), axis=0),
        d_score,
    )


def _dot_forward(h, key_kernel, query):
    """The context, α and the keys ``h_t W_k`` ``[batch, time, H, seeds]``."""
    keys = seeds_last.times_matrix(h, key_kernel)
    scale = jnp.sqrt(jnp.asarray(h.shape[2], h.dtype))
    return (*_context(h, seeds_last.times_matrix(keys, query)[:, :, 0] / scale), keys)


def _dot_backward(h, key_kernel, query, keys, alpha, d_context, d_alpha, store=True):
    """dL/dh and the weights' gradients of :func:`_dot_forward`, seed axis last; ``store`` as in
    :func:`_additive_backward`."""
    scale = jnp.sqrt(jnp.asarray(h.shape[2], h.dtype))
    once = seeds_last.computed_once if store else lambda f, *args: f(*args)
    d_raw = once(lambda *args: _scores_gradient(*args) / scale, h, alpha, d_context, d_alpha)
    rows, outer_sum, times = seeds_last.rows, seeds_last.outer_sum, seeds_last.times_matrix
    d_keys = d_raw[:, :, None] * query[:, 0]
    d_h = d_context[:, None] * alpha[:, :, None] + times(d_keys, _swap(key_kernel))
    return d_h, outer_sum(rows(h), rows(d_keys)), outer_sum(rows(keys), rows(d_raw)[:, None])


def _written_out(forward, backward):
    """``pooled(seeds_last_form, h, weights) -> (context, α)``, differentiable in reverse mode,
    from a seed-last ``forward -> (context, α, kept)`` and ``backward(h, *weights, kept, α,
    d_context, d_α, store) -> (dL/dh, *dL/dweights)``.

    Under ``vmap`` on a CPU the passes run seed-last (the backward storing what it computes
    once); otherwise, and for one seed alone, the same code with a seed axis of one, without
    storing (``vmap``'s own form everywhere, as it batches them).
    """
    plain = (
        seeds_last.per_seed(forward),
        seeds_last.per_seed(functools.partial(backward, store=False)),
    )
    last = (seeds_last.under_vmap(plain[0], forward), seeds_last.under_vmap(plain[1], backward))

    @functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
    def pooled(seeds_last_form, h, weights):
        context, alpha, _ = (last if seeds_last_form else plain)[0](h, *weights)
        return context, alpha

    def pooled_fwd(seeds_last_form, h, weights):
        context, alpha, kept = (last if seeds_last_form else plain)[0](h, *weights)
        return (context, alpha), (h, weights, kept, alpha)

    def pooled_bwd(seeds_last_form, residuals, cotangents):
        h, weights, kept, alpha = residuals
        backward = (last if seeds_last_form else plain)[1]
        d_h, *d_weights = backward(h, *weights, kept, alpha, *cotangents)
        return d_h, tuple(d_weights)

    pooled.defvjp(pooled_fwd, pooled_bwd)
    return pooled


_ATTENTION = _written_out(_forward_last, _backward_last)
_ADDITIVE = _written_out(_additive_forward, _additive_backward)
_DOT = _written_out(_dot_forward, _dot_backward)


def additive_pooling(
    h: jax.Array,
    query_kernel: jax.Array,
    key_kernel: jax.Array,
    bias: jax.Array,
    score: jax.Array,
    *,
    seeds_last_form: bool = True,
) -> tuple[jax.Array, jax.Array]:
    """Additive attention with the last state as query: the context and the weights α.

    ``s_t = tanh(h_T W_q + h_t W_k + b) v``. Differentiable in reverse mode with respect to every
    array.

    Args:
      h: ``<float32>[batch, time, H]``, the states.
      query_kernel, key_kernel: ``<float32>[H, H]``, ``W_q`` and ``W_k``.
      bias: ``<float32>[H]``, ``b``.
      score: ``<float32>[H, 1]``, ``v``.
      seeds_last_form: under ``vmap`` on a CPU, run both passes with the seed axis last.

    Returns:
      ``<float32>[batch, H]``, the context ``Σ_t α_t h_t``, and ``<float32>[batch, time]``, α.

    >>> w, b, v = jnp.ones((2, 2)), jnp.zeros(2), jnp.ones((2, 1))
    >>> context, alpha = additive_pooling(jnp.ones((3, 5, 2)), w, w, b, v)
    >>> context.shape, alpha.shape, bool(jnp.allclose(alpha, 0.2))
    ((3, 2), (3, 5), True)
    """
    weights = (query_kernel, key_kernel, bias, score)
    return _ADDITIVE(bool(seeds_last_form), h, weights)


def dot_pooling(
    h: jax.Array, key_kernel: jax.Array, query: jax.Array, *, seeds_last_form: bool = True
) -> tuple[jax.Array, jax.Array]:
    """Scaled dot-product attention with a learned query: the context and the weights α.

    ``s_t = (h_t W_k) q / sqrt(H)``. Differentiable in reverse mode with respect to every array.

    Args:
      h: ``<float32>[batch, time, H]``, the states.
      key_kernel: ``<float32>[H, H]``, ``W_k``.
      query: ``<float32>[H, 1]``, ``q``.
      seeds_last_form: under ``vmap`` on a CPU, run both passes with the seed axis last.

    Returns:
      ``<float32>[batch, H]``, the context, and ``<float32>[batch, time]``, α.

    >>> context, alpha = dot_pooling(jnp.ones((3, 5, 2)), jnp.ones((2, 2)), jnp.ones((2, 1)))
    >>> context.shape, alpha.shape
    ((3, 2), (3, 5))
    """
    return _DOT(bool(seeds_last_form), h, (key_kernel, query))
