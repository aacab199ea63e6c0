"""keras_adam against Keras's update written out in NumPy, and the optimizer registry."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from fibjax.training.optim import OPTIMIZERS, keras_adam, make_optimizer


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
