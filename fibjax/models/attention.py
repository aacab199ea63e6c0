"""The notebook's attention pooling as a function, with its backward pass written out.

``s_t = tanh(h_t W_a + b_t)``, ``α = softmax_t(s)``, context ``Σ_t α_t h_t``, as Keras computes
them. Both passes are written with the seed axis last and run so under ``vmap`` on a CPU
(:mod:`fibjax.models.seeds_last`); one seed alone runs the same code with a seed axis of one. In
``vmap``'s layout the pooling took about 40% of the attention model's training step on a CPU, its
scores computed one seed at a time; seed-last, training at 256 seeds ran 1.23 times as fast
(benchmarks/NOTES.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fibjax.models import seeds_last


def _forward_last(h, kernel, bias):
    """The context ``[batch, H, seeds]``, α and the scores ``[batch, time, seeds]``.

    ``h [batch, time, H, seeds]``, ``kernel [H, 1, seeds]``, ``bias [time, 1, seeds]``.
    """
    scores = jnp.tanh(seeds_last.times_matrix(h, kernel)[:, :, 0] + bias[:, 0])
    e = jnp.exp(scores - jnp.max(scores, axis=1, keepdims=True))
    alpha = e / jnp.sum(e, axis=1, keepdims=True)
    return jnp.sum(h * alpha[:, :, None], axis=1), alpha, scores


def _tanh_derivative(d, s):
    # As JAX differentiates tanh: (g + g s)(1 - s).
    return (d + d * s) * (1 - s)


def _computed_once(f, *args):
    """``f(*args)``, stored once instead of recomputed by each consumer.

    XLA's CPU compiler fuses an elementwise producer into every consumer, recomputing it in each:
    the scores' gradient feeds three sums and Adam's three updates of ``b``, and recomputed from
    seed-last arrays it cost more than the layout saved. A conditional's result is stored; both
    branches are ``f``, so whichever the predicate picks (it only has to be a value XLA cannot
    fold) the result is the same. (``optimization_barrier`` does not do this: XLA's CPU pipeline
    removes it before fusion.)
    """
    return jax.lax.cond(args[0].reshape(-1)[0] > 0, f, f, *args)


def _backward_last(h, kernel, scores, alpha, d_context, d_alpha, store=True):
    """dL/dh, dL/dW_a and dL/db from the residuals and the cotangents, seed axis last.

    ``store``: compute the scores' gradient once (:func:`_computed_once`). One seed alone runs
    without: with the conditional, its training gave other last bits when XLA ran the loops
    kernel by kernel than when it compiled them whole; many seeds gave the same in both
    (tests/training/test_program.py). So a seed trained alone and the same seed among others can
    differ in their last bits.
    """
    g = d_context[:, None]
    d_alpha = jnp.sum(g * h, axis=2) + d_alpha
    t1 = alpha * d_alpha
    d_scores = t1 - alpha * jnp.sum(t1, axis=1, keepdims=True)
    if store:
        d_pre = _computed_once(_tanh_derivative, d_scores, scores)
    else:
        d_pre = _tanh_derivative(d_scores, scores)

    d_kernel = seeds_last.outer_sum(seeds_last.rows(h), seeds_last.rows(d_pre)[:, None])
    d_h = g * alpha[:, :, None] + d_pre[:, :, None] * kernel[:, 0]
    return d_h, d_kernel, jnp.sum(d_pre, axis=0)[:, None]


# The passes under vmap: seed-last on a CPU (the two under_vmap functions), or vmap's own form
# everywhere (the per-seed functions, which vmap batches as they are).
_PER_SEED = (
    seeds_last.per_seed(_forward_last),
    seeds_last.per_seed(functools.partial(_backward_last, store=False)),
)
_SEEDS_LAST = (
    seeds_last.under_vmap(_PER_SEED[0], _forward_last),
    seeds_last.under_vmap(_PER_SEED[1], _backward_last),
)


def _passes(seeds_last_form: bool) -> tuple:
    return _SEEDS_LAST if seeds_last_form else _PER_SEED


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _attention(h, kernel, bias, seeds_last_form):
    context, alpha, _ = _passes(seeds_last_form)[0](h, kernel, bias)
    return context, alpha


def _attention_fwd(h, kernel, bias, seeds_last_form):
    context, alpha, scores = _passes(seeds_last_form)[0](h, kernel, bias)
    return (context, alpha), (h, kernel, scores, alpha)


def _attention_bwd(seeds_last_form, residuals, cotangents):
    return _passes(seeds_last_form)[1](*residuals, *cotangents)


_attention.defvjp(_attention_fwd, _attention_bwd)


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
    return _attention(h, kernel, bias, bool(seeds_last_form))
