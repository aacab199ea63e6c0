"""Shapes, parameter counts and the forward pass against NumPy, for every module."""

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fibjax.models import (
    AttentionPooling,
    SimpleRNN,
    SimpleRNNCell,
    attention_weights,
    count_params,
    init_params,
    make_model,
    orthogonal,
    predict,
)

KEY = jax.random.key(0)


def numpy_forward(name, params, x):
    """The notebook's models written out in NumPy (float64), from the parameters alone."""
    cell = params["rnn"]["cell"]
    w, u, b = (np.asarray(cell[k], np.float64) for k in ("kernel", "recurrent_kernel", "bias"))
    h = np.zeros((x.shape[0], u.shape[0]))
    states = []
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ w + h @ u + b)
        states.append(h)
    states = np.stack(states, axis=1)
    alpha = None
    if name == "attention":
        pool = params["pooling"]
        scores = np.tanh(states @ np.asarray(pool["kernel"], np.float64) + pool["bias"])[..., 0]
        alpha = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
        z = (states * alpha[..., None]).sum(axis=1)
    else:
        z = states[:, -1]
    dense = params["head"]["dense"]
    y = np.tanh(z @ np.asarray(dense["kernel"], np.float64) + dense["bias"])[:, 0]
    return y, alpha


@pytest.mark.parametrize("batch, features, in_features", [(1, 2, 1), (5, 3, 1), (4, 2, 3)])
def test_cell_shapes(batch, features, in_features):
    cell = SimpleRNNCell(features)
    h = jnp.zeros((batch, features))
    x = jnp.ones((batch, in_features))
    params = cell.init(KEY, h, x)
    new_h, out = cell.apply(params, h, x)
    chex.assert_shape([new_h, out], (batch, features))
    chex.assert_tree_all_finite(new_h)
    chex.assert_shape(params["params"]["recurrent_kernel"], (features, features))


def test_cell_initialisers_follow_keras():
    params = SimpleRNNCell(4).init(KEY, jnp.zeros((1, 4)), jnp.zeros((1, 1)))["params"]
    u = np.asarray(params["recurrent_kernel"])
    np.testing.assert_allclose(u @ u.T, np.eye(4), atol=1e-5)  # orthogonal
    assert np.all(np.asarray(params["bias"]) == 0)
    limit = np.sqrt(6 / (1 + 4))  # glorot-uniform bound for a [1, 4] kernel
    assert np.all(np.abs(np.asarray(params["kernel"])) <= limit)


def test_orthogonal_under_vmap_draws_what_each_key_draws():
    keys = jax.random.split(KEY, 5)
    batched = jax.jit(jax.vmap(lambda k: orthogonal(k, (3, 3))))(keys)
    reference = nn.initializers.orthogonal()
    for key, matrix in zip(keys, batched, strict=True):
        chex.assert_trees_all_close(matrix, reference(key, (3, 3)), atol=1e-6)


@pytest.mark.parametrize("batch, time, features", [(1, 20, 2), (7, 20, 2), (3, 5, 4), (2, 33, 1)])
def test_scanned_rnn_shapes(batch, time, features):
    rnn = SimpleRNN(features, return_sequences=True)
    x = jnp.ones((batch, time, 1))
    params = rnn.init(KEY, x)
    states = rnn.apply(params, x)
    chex.assert_shape(states, (batch, time, features))
    chex.assert_tree_all_finite(states)
    last = SimpleRNN(features).apply(params, x)  # Keras's default: the last state only
    chex.assert_shape(last, (batch, features))
    chex.assert_trees_all_equal(last, states[:, -1])


def test_scanned_rnn_follows_the_recurrence():
    # h_t = tanh(x_t W + h_{t-1} U + b) from h_0 = 0, in NumPy, step by step.
    x = jax.random.normal(KEY, (3, 9, 1))
    rnn = SimpleRNN(4, return_sequences=True)
    params = rnn.init(KEY, x)
    cell = jax.tree.map(np.asarray, params["params"]["cell"])
    h = np.zeros((3, 4), np.float32)
    expected = []
    for x_t in np.moveaxis(np.asarray(x), 1, 0):
        h = np.tanh(x_t @ cell["kernel"] + h @ cell["recurrent_kernel"] + cell["bias"])
        expected.append(h)
    np.testing.assert_allclose(rnn.apply(params, x), np.stack(expected, axis=1), atol=1e-6)


def _numpy_rnn_loss(cell, x, sequences):
    """A loss of every state (or of the last), by the recurrence written out in NumPy."""
    h = np.zeros((x.shape[0], cell["kernel"].shape[1]))
    total = 0.0
    for t in range(x.shape[1]):
        h = np.tanh(x[:, t] @ cell["kernel"] + h @ cell["recurrent_kernel"] + cell["bias"])
        if sequences:
            total += np.sum(np.sin(h * (t + 1)))
    return total if sequences else np.sum(np.sin(h))


def _central_differences(loss, value):
    numeric = np.zeros_like(value)
    for i in np.ndindex(value.shape):
        step = np.zeros_like(value)
        step[i] = 1e-6
        numeric[i] = (loss(value + step) - loss(value - step)) / 2e-6
    return numeric


# Hidden sizes on both sides of fibjax.recurrence.MULTIPLY_ADD_UNITS, one and several inputs.
@pytest.mark.parametrize("features, in_features", [(1, 1), (3, 1), (2, 3), (6, 2)])
@pytest.mark.parametrize("sequences", [False, True])
def test_rnn_gradients_match_finite_differences(features, in_features, sequences):
    # The backward pass is written out (fibjax.recurrence); its gradients must be the loss's
    # derivatives, here by central differences of a float64 NumPy forward pass.
    x = jax.random.normal(KEY, (2, 6, in_features))
    rnn = SimpleRNN(features, return_sequences=sequences)
    params = rnn.init(KEY, x)
    steps = jnp.arange(1, 7, dtype=jnp.float32)[:, None]

    def loss(p, x):
        out = rnn.apply(p, x)
        return jnp.sum(jnp.sin(out * steps)) if sequences else jnp.sum(jnp.sin(out))

    got, got_x = jax.grad(loss, argnums=(0, 1))(params, x)
    cell = {k: np.asarray(v, np.float64) for k, v in params["params"]["cell"].items()}
    x64 = np.asarray(x, np.float64)
    for name, value in cell.items():
        numeric = _central_differences(
            lambda v, name=name: _numpy_rnn_loss({**cell, name: v}, x64, sequences), value
        )
        np.testing.assert_allclose(got["params"]["cell"][name], numeric, atol=2e-5, err_msg=name)
    numeric_x = _central_differences(lambda v: _numpy_rnn_loss(cell, v, sequences), x64)
    np.testing.assert_allclose(got_x, numeric_x, atol=2e-5, err_msg="x")


@pytest.mark.parametrize("batch, time, features", [(1, 20, 2), (6, 20, 2), (2, 7, 5)])
def test_pooling_shapes_and_weights(batch, time, features):
    h = jax.random.normal(KEY, (batch, time, features))
    pooling = AttentionPooling()
    params = pooling.init(KEY, h)
    chex.assert_shape(params["params"]["kernel"], (features, 1))
    chex.assert_shape(params["params"]["bias"], (time, 1))
    context, state = pooling.apply(params, h, mutable=["intermediates"])
    (alpha,) = state["intermediates"]["alpha"]
    chex.assert_shape(context, (batch, features))
    chex.assert_shape(alpha, (batch, time))
    assert np.all(np.asarray(alpha) >= 0)
    np.testing.assert_allclose(np.asarray(alpha).sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("name, expected", [("vanilla", 11), ("attention", 33)])
def test_parameter_counts(name, expected):
    assert count_params(init_params(name, KEY)) == expected


def test_parameter_counts_grow_as_keras():
    # SimpleRNN: h(1 + h + 1); attention: h + window; Dense: h + 1.
    assert count_params(init_params("vanilla", KEY, hidden=4)) == 4 * 6 + 5
    assert count_params(init_params("attention", KEY, hidden=4, window=8)) == 4 * 6 + 4 + 8 + 5


@pytest.mark.parametrize("name", ["vanilla", "attention"])
@pytest.mark.parametrize("batch, window, hidden", [(1, 20, 2), (9, 20, 2), (4, 6, 3), (2, 40, 1)])
def test_models_match_numpy(name, batch, window, hidden):
    params = init_params(name, KEY, hidden=hidden, window=window)
    x = np.asarray(jax.random.uniform(jax.random.key(1), (batch, window, 1)))
    y = predict(name, params, x)
    chex.assert_shape(y, (batch,))
    chex.assert_type(y, jnp.float32)
    np.testing.assert_allclose(np.asarray(y), numpy_forward(name, params, x)[0], atol=1e-6)


def test_attention_weights_match_numpy():
    params = init_params("attention", KEY)
    # Random attention biases so that α is far from uniform.
    params["pooling"]["bias"] = jax.random.normal(jax.random.key(2), (20, 1))
    x = np.asarray(jax.random.uniform(jax.random.key(3), (5, 20, 1)))
    alpha = attention_weights(params, x)
    chex.assert_shape(alpha, (5, 20))
    assert np.all(np.asarray(alpha) >= 0)
    np.testing.assert_allclose(np.asarray(alpha).sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(alpha), numpy_forward("attention", params, x)[1], atol=1e-6
    )


def test_same_key_shares_rnn_and_head_weights():
    # Pairing by seed: both models start from the same recurrent and output weights.
    vanilla, attention = init_params("vanilla", KEY), init_params("attention", KEY)
    chex.assert_trees_all_equal(vanilla["rnn"], attention["rnn"])
    chex.assert_trees_all_equal(vanilla["head"], attention["head"])


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="model='gru'"):
        make_model("gru")
