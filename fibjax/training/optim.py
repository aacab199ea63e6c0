"""Optimizers: Adam exactly as Keras computes it, and Optax's own, selectable by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from fibjax.models import seeds_last


class KerasAdamState(NamedTuple):
    """State of :func:`keras_adam`: the step count and the two moment estimates."""

    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates


def keras_adam(
    learning_rate: float = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7
) -> optax.GradientTransformation:
    """Adam in the form Keras computes it, so that training matches Keras to float32 rounding.

    Keras adds ``eps`` to ``sqrt(v)`` without bias-correcting ``v`` and folds both corrections
    into the step size:

    ``m ← m + (g − m)(1 − b1)``, ``v ← v + (g² − v)(1 − b2)``,
    ``α_t = lr·sqrt(1 − b2^t)/(1 − b1^t)``, ``update = −(m·α_t)/(sqrt(v) + eps)``.

    Most of this task's targets are near zero, so gradients are tiny and the place of ``eps``
    matters: ``optax.adam(eps=1e-7)`` drifts from Keras by about 1e-2 within one epoch.

    Args:
      learning_rate: the step size ``lr``.
      b1: decay of the first moment.
      b2: decay of the second moment.
      eps: added to ``sqrt(v)``.

    Returns:
      An ``optax.GradientTransformation``; apply its updates with ``optax.apply_updates``.

    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> opt = keras_adam(learning_rate=0.1)
    >>> state = opt.init(params)
    >>> updates, state = opt.update({"w": jnp.array([0.5, -0.5])}, state)
    >>> optax.apply_updates(params, updates)["w"].round(4)
    Array([ 0.9, -1.9], dtype=float32)
    """

    def init(params: optax.Params) -> KerasAdamState:
        mu = optax.tree.zeros_like(params)
        nu = optax.tree.zeros_like(params)
        return KerasAdamState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)

    def update(
        grads: optax.Updates, state: KerasAdamState, params: optax.Params | None = None
    ) -> tuple[optax.Updates, KerasAdamState]:
        del params
        count = state.count + 1
        alpha = _keras_step_size(count, learning_rate, b1, b2)
        mu = jax.tree.map(lambda m, g: _first_moment(m, g, b1), state.mu, grads)
        nu = jax.tree.map(lambda v, g: _second_moment(v, g, b2), state.nu, grads)
        updates = jax.tree.map(lambda m, v: _keras_update(m, v, alpha, eps), mu, nu)
        return updates, KerasAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def _keras_step_size(count: jax.Array, learning_rate: Any, b1: float, b2: float) -> jax.Array:
    step = count.astype(jnp.float32)
    return learning_rate * jnp.sqrt(1 - b2**step) / (1 - b1**step)


def _first_moment(m: jax.Array, g: jax.Array, b1: float) -> jax.Array:
    return m + (g - m) * (1 - b1)


def _second_moment(v: jax.Array, g: jax.Array, b2: float) -> jax.Array:
    return v + (jnp.square(g) - v) * (1 - b2)


def _keras_update(m: jax.Array, v: jax.Array, alpha: jax.Array, eps: float) -> jax.Array:
    return -(m * alpha) / (jnp.sqrt(v) + eps)


Step = Callable[[optax.Updates, Any, optax.Params], tuple[optax.Params, Any]]


def _seeds_last_leaf(shape: tuple[int, ...]) -> bool:
    """Whether :func:`keras_adam_step` runs a weight array of this shape (one seed's) seed-last.

    Seed-first, XLA's CPU loop runs along the innermost axis, four or more elements at a time
    when its length is a multiple of 4, one at a time otherwise; seed-last costs transposes
    every step. Measured (benchmarks/NOTES.md): seed-last, innermost axes of 1, 2 and 6 (the
    SimpleRNN's and the GRU's at 2 units, the per-step bias) trained up to 1.8 times as fast;
    of 4 and 8, 0.90-0.97 times; of 32 and 64, 0.63-0.73 times.
    """
    inner = shape[-1] if shape else 1
    return inner < 16 and inner % 4 != 0


def keras_adam_step(
    learning_rate: float = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-7
) -> Step:
    """:func:`keras_adam` and ``optax.apply_updates`` as one step, leaf by leaf, seeds last.

    The same arithmetic, so the same numbers up to the fused multiply-adds XLA forms. Under
    ``vmap`` over seeds a leaf's moments and weights are ``[seeds, 2, 2]`` or ``[seeds, 20, 1]``,
    and XLA's CPU code ran their square roots and divisions one element at a time along the
    small inner axes. Each leaf's whole update is one function whose ``vmap`` runs, on a CPU,
    with the seed axis last (:func:`fibjax.models.seeds_last.under_vmap`), so the seeds fill
    the vector lanes; the weights' update is in the same function because, applied apart,
    XLA fused the division into the seed-first addition again. The SimpleRNN's models trained at
    256 seeds 1.3-1.8 times as fast, the GRU's 1.2-1.5 times (benchmarks/NOTES.md). Arrays whose
    innermost axis XLA already vectorises stay seed-first (:func:`_seeds_last_leaf`).

    Args:
      learning_rate, b1, b2, eps: as :func:`keras_adam` takes them.

    Returns:
      ``step(grads, state, params) -> (params, state)``, with ``state`` from
      ``keras_adam(...).init(params)``.

    >>> params = {"w": jnp.array([1.0, -2.0])}
    >>> step = keras_adam_step(learning_rate=0.1)
    >>> params, state = step({"w": jnp.array([0.5, -0.5])}, keras_adam().init(params), params)
    >>> params["w"].round(4)
    Array([ 0.9, -1.9], dtype=float32)
    """

    def leaf(p, m, v, g, alpha):
        m = _first_moment(m, g, b1)
        v = _second_moment(v, g, b2)
        return p + _keras_update(m, v, alpha, eps), m, v

    leaf_last = seeds_last.under_vmap(leaf, leaf)

    def leaf_step(p, *args):
        return (leaf_last if _seeds_last_leaf(p.shape) else leaf)(p, *args)

    def step(grads, state, params):
        count = state.count + 1
        alpha = _keras_step_size(count, learning_rate, b1, b2)
        out = jax.tree.map(lambda *a: leaf_step(*a, alpha), params, state.mu, state.nu, grads)
        params, mu, nu = jax.tree.transpose(
            jax.tree.structure(params), jax.tree.structure((0, 0, 0)), out
        )
        return params, KerasAdamState(count=count, mu=mu, nu=nu)

    return step


def _optax_adam(learning_rate: float) -> optax.GradientTransformation:
    # Keras's hyper-parameters, Optax's arithmetic (eps added after bias correction).
    return optax.adam(learning_rate, b1=0.9, b2=0.999, eps=1e-7)


OPTIMIZERS: dict[str, Callable[[float], optax.GradientTransformation]] = {
    "keras_adam": keras_adam,
    "adam": _optax_adam,
    "adamw": optax.adamw,
    "sgd": optax.sgd,
    "rmsprop": optax.rmsprop,
}


# The optimizers whose training step is written out (:func:`make_step`); the others apply
# Optax's update with ``optax.apply_updates``.
STEPS: dict[str, Callable[[float], Step]] = {"keras_adam": keras_adam_step}


def make_optimizer(name: str, learning_rate: float) -> optax.GradientTransformation:
    """The optimizer registered under ``name`` (see ``OPTIMIZERS``) at ``learning_rate``.

    >>> sorted(OPTIMIZERS)
    ['adam', 'adamw', 'keras_adam', 'rmsprop', 'sgd']
    """
    if name not in OPTIMIZERS:
        raise ValueError(
            f"optimizer={name!r} is unknown; choose one of {tuple(sorted(OPTIMIZERS))}"
        )
    return OPTIMIZERS[name](learning_rate)


def make_step(name: str, learning_rate: Any, *, written_out: bool = True) -> tuple[Callable, Step]:
    """``(init, step)`` of the optimizer registered under ``name``, for a training loop.

    ``init(params)`` is the optimizer's state; ``step(grads, state, params) -> (params,
    state)`` one update. With ``written_out``, an optimizer in :data:`STEPS` steps by its
    written-out form; otherwise, and for every other optimizer, by Optax's ``update`` and
    ``optax.apply_updates``.

    >>> init, step = make_step("sgd", 0.5)
    >>> params, _ = step(jnp.ones(2), init(jnp.ones(2)), jnp.ones(2))
    >>> params.tolist()
    [0.5, 0.5]
    """
    optimizer = make_optimizer(name, learning_rate)
    if written_out and name in STEPS:
        return optimizer.init, STEPS[name](learning_rate)

    def step(grads, state, params):
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return optimizer.init, step
