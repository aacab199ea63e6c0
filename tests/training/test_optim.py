"""keras_adam against Keras's update written out in NumPy, and the optimizer registry."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fibjax.training.optim import OPTIMIZERS, STEPS, keras_adam, make_optimizer, make_step


def numpy_keras_adam(grads, p0, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """Keras's Adam step by step, in float32 as Keras runs it."""
    f = np.float32
    p, m, v = p0.astype(f), np.zeros_like(p0, f), np.zeros_like(p0, f)
    for t, g in enumerate(grads, start=1):
        alpha = f(lr) * np.sqrt(f(1) - f(b2) ** f(t)) / (f(1) - f(b1) ** f(t))
        m = m + (g - m) * f(1 - b1)
        v = v + (np.square(g) - v) * f(1 - b2)
        p = p - (m * alpha) / (np.sqrt(v) + f(eps))
    return p


def test_matches_numpy_keras_adam():
    rng = np.random.default_rng(0)
    # Tiny gradients, as this task's near-zero targets give, where eps matters most.
    grads = (rng.normal(size=(50, 6)) * np.logspace(-9, -1, 6)).astype(np.float32)
    p0 = rng.normal(size=6).astype(np.float32)
    opt = keras_adam(1e-3)
    params, state = jnp.asarray(p0), opt.init(jnp.asarray(p0))
    for g in grads:
        updates, state = opt.update(jnp.asarray(g), state)
        params = optax.apply_updates(params, updates)
    np.testing.assert_allclose(np.asarray(params), numpy_keras_adam(grads, p0), rtol=0, atol=1e-7)


def test_differs_from_optax_adam_on_tiny_gradients():
    # The reason keras_adam exists: eps placement changes the step when gradients are tiny.
    g = {"w": jnp.full((3,), 1e-8)}
    params = {"w": jnp.zeros(3)}
    keras_step, _ = keras_adam().update(g, keras_adam().init(params))
    optax_step, _ = make_optimizer("adam", 1e-3).update(
        g, make_optimizer("adam", 1e-3).init(params)
    )
    assert not np.allclose(keras_step["w"], optax_step["w"], rtol=1e-2)


def test_registry():
    assert set(OPTIMIZERS) >= {"keras_adam", "adam", "sgd"}
    for name in OPTIMIZERS:
        assert isinstance(make_optimizer(name, 1e-2), optax.GradientTransformation)
    with pytest.raises(ValueError, match="optimizer='lion'"):
        make_optimizer("lion", 1e-3)


def _trained(step, init, p0, grads):
    """``p0`` after one ``step`` per gradient in ``grads [steps, *p0.shape]``, in one scan."""

    def body(carry, g):
        params, state = carry
        return step(g, state, params), None

    return jax.lax.scan(body, (p0, init(p0)), grads)[0][0]


@pytest.mark.parametrize("shape", [(2, 2), (20, 1), (2, 6), (3,), (), (2, 8)])
def test_written_out_keras_adam_under_vmap_matches_numpy_for_every_seed(shape):
    """On the CPU the written-out step's ``vmap`` runs seeds last (seed-first for an innermost
    axis of 8); every seed gets NumPy's Keras Adam, and the bits it gets among 5 seeds (37 does
    not fill whole vectors of 16)."""
    rng = np.random.default_rng(1)
    n_seeds, n_steps = 37, 30
    scale = np.logspace(-9, -1, n_seeds).reshape(n_seeds, *(1,) * len(shape))
    grads = (rng.normal(size=(n_steps, n_seeds, *shape)) * scale).astype(np.float32)
    p0 = rng.normal(size=(n_seeds, *shape)).astype(np.float32)
    init, step = make_step("keras_adam", 1e-3)
    train = jax.jit(jax.vmap(functools.partial(_trained, step, init), in_axes=(0, 1)))
    batched = np.asarray(train(p0, grads))
    chex.assert_shape(batched, p0.shape)
    for s in range(n_seeds):
        want = numpy_keras_adam(grads[:, s], p0[s])
        # NumPy rounds each operation; XLA fuses some multiply-adds: within two float32 ulps.
        np.testing.assert_allclose(batched[s], want, rtol=2.5e-7, atol=1e-7, err_msg=f"seed {s}")
    few = np.asarray(train(p0[-5:], grads[:, -5:]))
    np.testing.assert_array_equal(few, batched[-5:])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_make_step_is_the_optimizers_update_applied(name):
    """Written out or through Optax, one registered optimizer: the same state's structure and
    the same weights (the written-out Keras Adam to float32 rounding of its multiply-adds)."""
    rng = np.random.default_rng(2)
    params = {"w": jnp.asarray(rng.normal(size=(4, 2, 2)), jnp.float32), "b": jnp.zeros((4, 3))}
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=(6, *p.shape)) * 1e-3), params)
    grads = jax.tree.map(lambda g: g.astype(jnp.float32), grads)
    runs = {}
    for written_out in (True, False):
        init, step = make_step(name, 1e-2, written_out=written_out)
        chex.assert_trees_all_equal_structs(init(params), make_optimizer(name, 1e-2).init(params))
        train = jax.jit(jax.vmap(functools.partial(_trained, step, init), in_axes=(0, 1)))
        runs[written_out] = train(params, grads)
    chex.assert_trees_all_close(runs[True], runs[False], atol=1e-7, rtol=0)
    if name not in STEPS:
        chex.assert_trees_all_equal(runs[True], runs[False])
    # The reference: the registered transformation's own update and optax.apply_updates.
    optimizer = make_optimizer(name, 1e-2)

    def optax_step(g, state, p):
        updates, state = optimizer.update(g, state, p)
        return optax.apply_updates(p, updates), state

    reference = functools.partial(_trained, optax_step, optimizer.init)
    want = jax.jit(jax.vmap(reference, in_axes=(0, 1)))(params, grads)
    chex.assert_trees_all_equal(runs[False], want)
    chex.assert_trees_all_close(runs[True], want, atol=1e-7, rtol=0)
