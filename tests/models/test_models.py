"""Shapes, parameter counts and the forward pass against NumPy, for every module."""

import functools

import chex
import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from fibjax.models import (
    CELLS,
    POOLINGS,
    AttentionPooling,
    SimpleRNN,
    SimpleRNNCell,
    attention_weights,
    count_params,
    describe_model,
    init_params,
    make_model,
    orthogonal,
    predict,
    repeat_steps,
)
from fibjax.models.poolings import _max_over_last, softmax
from fibjax.models.seeds_last import MULTIPLY_ADD_ROWS, by_platform, take_rows, times_matrix

import helpers

KEY = jax.random.key(0)


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
    x = helpers.normal(0, (3, 9, 1))
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


# Hidden sizes on both sides of fibjax.models.recurrence.MULTIPLY_ADD_UNITS, one and several inputs.
@pytest.mark.parametrize("features, in_features", [(1, 1), (3, 1), (2, 3), (6, 2)])
@pytest.mark.parametrize("sequences", [False, True])
def test_rnn_gradients_match_finite_differences(features, in_features, sequences):
    # The backward pass is written out (fibjax.models.recurrence); its gradients must be the loss's
    # derivatives, here by central differences of a float64 NumPy forward pass.
    x = helpers.normal(0, (2, 6, in_features))
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


# Under vmap over seeds on a CPU the written-out recurrences (SimpleRNN, GRU) run with the seed axis
# last, up to their layer's SEEDS_LAST_UNITS; each seed must get the bits it gets alone, with
# weights of its own or shared. Wider layers keep vmap's form, whose recurrent-kernel gradient
# differs from a seed's own in the last bits. 16 seeds: a whole number of vectors
# (fibjax.training.layout.SEED_ALIGN).
SEEDS_LAST_SIZES = [
    (cell, features, in_features)
    for cell, entry in CELLS.items()
    if entry.layer.SEEDS_LAST_UNITS
    for features, in_features in [
        (entry.layer.SEEDS_LAST_UNITS, 3),
        (entry.layer.SEEDS_LAST_UNITS + 2, 2),
    ]
]


@pytest.mark.parametrize("cell, features, in_features", SEEDS_LAST_SIZES)
@pytest.mark.parametrize("sequences", [False, True])
@pytest.mark.parametrize("shared", [False, True])
def test_rnn_gradients_under_vmap_are_each_seeds_own(
    cell, features, in_features, sequences, shared
):
    layer = CELLS[cell].layer
    seeds = 16
    xs = helpers.normal(0, (seeds, 2, 6, in_features))
    rnn = layer(features, return_sequences=sequences)
    keys = jax.random.split(jax.random.key(1), seeds)
    params = jax.vmap(rnn.init, in_axes=(0, None))(keys, xs[0])
    if shared:
        params = jax.tree.map(lambda p: p[0], params)
    steps = jnp.arange(1, 7, dtype=jnp.float32)[:, None]

    def loss(p, x):
        out = rnn.apply(p, x)
        return jnp.sum(jnp.sin(out * steps)) if sequences else jnp.sum(jnp.sin(out))

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    batched = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None if shared else 0, 0)))
    got = batched(params, xs)
    chex.assert_tree_all_finite(got)
    for s in range(seeds):
        own = params if shared else jax.tree.map(lambda p, s=s: p[s], params)
        want = grad(own, xs[s])
        if features <= layer.SEEDS_LAST_UNITS:
            chex.assert_trees_all_equal(jax.tree.map(lambda g, s=s: g[s], got), want)
        else:
            chex.assert_trees_all_close(
                jax.tree.map(lambda g, s=s: g[s], got), want, atol=1e-6, rtol=1e-5
            )


# Without a gradient (the evaluation after training) the SimpleRNN also runs seed-last under vmap on
# a CPU; the evaluation's windows are shared by every seed, so inputs shared are checked too. Bits
# on the CPU up to SEEDS_LAST_UNITS, wherever the layer runs seed-last; close beyond.
@pytest.mark.parametrize("cell, features, in_features", SEEDS_LAST_SIZES)
@pytest.mark.parametrize("sequences", [False, True])
@pytest.mark.parametrize("shared", ["weights", "inputs"])
def test_rnn_outputs_under_vmap_are_each_seeds_own(cell, features, in_features, sequences, shared):
    layer = CELLS[cell].layer
    seeds = 16
    xs = helpers.normal(2, (seeds, 3, 6, in_features))
    rnn = layer(features, return_sequences=sequences)
    params = jax.vmap(rnn.init, in_axes=(0, None))(jax.random.split(KEY, seeds), xs[0])
    if shared == "weights":
        params = jax.tree.map(lambda p: p[0], params)
    if shared == "inputs":
        xs = xs[0]
    axes = (None if shared == "weights" else 0, None if shared == "inputs" else 0)
    got = jax.jit(jax.vmap(rnn.apply, in_axes=axes))(params, xs)
    chex.assert_shape(got, (seeds, 3, 6, features) if sequences else (seeds, 3, features))
    chex.assert_tree_all_finite(got)
    alone = jax.jit(rnn.apply)
    for s in range(seeds):
        own = params if shared == "weights" else jax.tree.map(lambda p, s=s: p[s], params)
        want = alone(own, xs if shared == "inputs" else xs[s])
        if features <= layer.SEEDS_LAST_UNITS:
            chex.assert_trees_all_equal(got[s], want)
        else:
            chex.assert_trees_all_close(got[s], want, atol=1e-6, rtol=1e-5)


WRITTEN_OUT_ATTENTION = [name for name, entry in POOLINGS.items() if entry.has_attention]


def _pooled(name, params, h):
    """An attention pooling's context and α."""
    context, state = POOLINGS[name].module().apply({"params": params}, h, mutable=["intermediates"])
    return context, state["intermediates"]["alpha"][0]


def _numpy_pooling_loss(name, params, h, w):
    alpha = helpers.softmax(helpers.attention_scores(name, params, h))
    context = (h * alpha[..., None]).sum(axis=1)
    return np.sum(np.tanh(context @ w)) + 0.3 * np.sum(alpha[:, 0] ** 2)


def _pooling_inputs(name, batch, time, features, seeds=None):
    lead = () if seeds is None else (seeds,)
    h = np.tanh(helpers.normal(10, (*lead, batch, time, features)))
    params = POOLINGS[name].module().init(KEY, h[0] if seeds else h)["params"]
    params = {
        key: 0.5 * helpers.normal(11 + i, (*lead, *np.shape(value)))
        for i, (key, value) in enumerate(sorted(params.items()))
    }
    return h, params


# The attention poolings' backward passes are written out (fibjax.models.attention); from the
# notebook's 2 units to 8, and windows of 5 to 20. The loss also reads α, so the gradient through
# α's output is checked too.
@pytest.mark.parametrize("name", WRITTEN_OUT_ATTENTION)
@pytest.mark.parametrize("batch, time, features", [(1, 20, 2), (3, 7, 4), (2, 5, 8)])
def test_attention_pooling_gradients_match_finite_differences(name, batch, time, features):
    h, params = _pooling_inputs(name, batch, time, features)
    w = helpers.normal(13, (features,))

    def loss(h, params):
        context, alpha = _pooled(name, params, h)
        return jnp.sum(jnp.tanh(context @ w)) + 0.3 * jnp.sum(alpha[:, 0] ** 2)

    got_h, got_params = jax.grad(loss, argnums=(0, 1))(h, params)
    h64 = np.asarray(h, np.float64)
    p64 = {key: np.asarray(value, np.float64) for key, value in params.items()}
    w64 = np.asarray(w, np.float64)
    numeric = helpers.central_differences(lambda v: _numpy_pooling_loss(name, p64, v, w64), h64)
    np.testing.assert_allclose(got_h, numeric, atol=2e-5, err_msg="h")
    for key in params:

        def numpy_loss(value, key=key):
            return _numpy_pooling_loss(name, {**p64, key: value}, h64, w64)

        numeric = helpers.central_differences(numpy_loss, p64[key])
        np.testing.assert_allclose(got_params[key], numeric, atol=2e-5, err_msg=key)


# Under vmap over seeds on a CPU the poolings run with the seed axis last (fibjax.models.attention);
# each seed must get its own outputs and gradients, with weights of its own or shared. (Alone it
# runs the same code without storing the scores' gradient, which can change the last bits.)
@pytest.mark.parametrize("name", WRITTEN_OUT_ATTENTION)
@pytest.mark.parametrize(
    "batch, time, features, shared", [(1, 20, 2, False), (3, 7, 4, True), (2, 5, 8, False)]
)
def test_attention_pooling_under_vmap_is_each_seeds_own(name, batch, time, features, shared):
    seeds = 16
    h, params = _pooling_inputs(name, batch, time, features, seeds)
    if shared:
        params = jax.tree.map(lambda p: p[0], params)
    d_context = helpers.normal(20, (seeds, batch, features))
    d_alpha = helpers.normal(21, (seeds, batch, time))

    @jax.jit
    def outputs_and_gradients(h, params, d_context, d_alpha):
        out, vjp = jax.vjp(functools.partial(_pooled, name), params, h)
        return out, vjp((d_context, d_alpha))

    axes = (0, None, 0, 0) if shared else 0
    got = jax.vmap(outputs_and_gradients, in_axes=axes)(h, params, d_context, d_alpha)
    chex.assert_tree_all_finite(got)
    for s in range(seeds):
        own = params if shared else jax.tree.map(lambda p, s=s: p[s], params)
        want = outputs_and_gradients(h[s], own, d_context[s], d_alpha[s])
        chex.assert_trees_all_close(jax.tree.map(lambda g, s=s: g[s], got), want, atol=1e-6)


@pytest.mark.parametrize("batch, time, features", [(1, 20, 2), (6, 20, 2), (2, 7, 5)])
def test_pooling_shapes_and_weights(batch, time, features):
    h = helpers.normal(0, (batch, time, features))
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


# Shapes of the notebook's models; every cell and pooling: test_every_model_matches_numpy.
@pytest.mark.parametrize("name", ["vanilla", "attention"])
@pytest.mark.parametrize("batch, window, hidden", [(1, 20, 2), (2, 40, 1)])
def test_models_match_numpy(name, batch, window, hidden):
    params = init_params(name, KEY, hidden=hidden, window=window)
    x = np.asarray(helpers.uniform(1, (batch, window, 1)))
    y = predict(name, params, x)
    chex.assert_shape(y, (batch,))
    chex.assert_type(y, jnp.float32)
    want = helpers.forward(name, "simple", params, x)[0]
    np.testing.assert_allclose(np.asarray(y), want, atol=1e-6)


def test_attention_weights_match_numpy():
    params = init_params("attention", KEY)
    # Random attention biases so that α is far from uniform.
    params["pooling"]["bias"] = helpers.normal(2, (20, 1))
    x = np.asarray(helpers.uniform(3, (5, 20, 1)))
    alpha = attention_weights(params, x)
    chex.assert_shape(alpha, (5, 20))
    assert np.all(np.asarray(alpha) >= 0)
    np.testing.assert_allclose(np.asarray(alpha).sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(alpha), helpers.forward("attention", "simple", params, x)[1], atol=1e-6
    )


def test_softmax_maximum_is_the_reductions_bits():
    """The softmax's maximum over time, a chain of elementwise maxima, equals the reduction."""
    x = np.array(helpers.normal(4, (3, 7, 20)), np.float32)
    x[0, 0, 5] = x[0, 0, 9] = 4.0  # a tie
    x[0, 1, :] = -np.inf
    x[0, 2, 3] = np.inf
    x[0, 3, 11] = np.nan
    got = np.asarray(jax.jit(jax.vmap(_max_over_last))(x))
    np.testing.assert_array_equal(got, np.max(x, axis=-1, keepdims=True))
    scores = x[1:]

    def reduced(s):
        e = jnp.exp(s - jnp.max(s, axis=-1, keepdims=True))
        return e / jnp.sum(e, axis=-1, keepdims=True)

    want = np.asarray(jax.jit(jax.vmap(reduced))(scores))
    np.testing.assert_array_equal(np.asarray(jax.jit(jax.vmap(softmax))(scores)), want)


def test_unknown_model_is_rejected():
    with pytest.raises(ValueError, match="model='gru'"):
        make_model("gru")


# --- Every cell and pooling of the registry -------------------------------------------------

CELL_NAMES = list(CELLS)
POOLING_NAMES = list(POOLINGS)
ATTENTION_NAMES = [name for name, entry in POOLINGS.items() if entry.has_attention]

# Parameters by the layers' formulas: a cell with k fused gates has k*H*(1 + H) weights and
# k*H biases (GRU two rows of them); the poolings as the issue defines them; Dense H + 1.
_GATES = {"simple": 1, "gru": 3, "lstm": 4}
_BIAS_ROWS = {"simple": 1, "gru": 2, "lstm": 1}


def _expected_count(model, cell, hidden, window):
    k = _GATES[cell]
    rnn = k * hidden * (1 + hidden) + _BIAS_ROWS[cell] * k * hidden
    pooling = {
        "vanilla": 0,
        "attention": hidden + window,
        "additive": 2 * hidden * hidden + 2 * hidden,
        "dot": hidden * hidden + hidden,
    }[model]
    return rnn + pooling + hidden + 1


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("model", POOLING_NAMES)
def test_every_model_matches_numpy(model, cell):
    params = init_params(model, KEY, hidden=3, window=6, cell=cell)
    assert count_params(params) == _expected_count(model, cell, 3, 6)
    # Larger weights than the initial ones, so that gates and scores are far from uniform.
    params = jax.tree.map(lambda p: p + 0.5 * helpers.normal(p.size, p.shape), params)
    x = np.asarray(helpers.uniform(1, (4, 6, 1)))
    y = predict(model, params, x, cell=cell)
    chex.assert_shape(y, (4,))
    chex.assert_type(y, jnp.float32)
    want_y, want_alpha = helpers.forward(model, cell, params, x)
    np.testing.assert_allclose(np.asarray(y), want_y, atol=2e-6)
    if POOLINGS[model].has_attention:
        alpha = np.asarray(attention_weights(params, x, model=model, cell=cell))
        chex.assert_shape(alpha, (4, 6))
        assert np.all(alpha >= 0)
        np.testing.assert_allclose(alpha.sum(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(alpha, want_alpha, atol=2e-6)


@pytest.mark.parametrize("model", [n for n in ATTENTION_NAMES if not POOLINGS[n].window_bound])
@pytest.mark.parametrize("time", [1, 40])
def test_additive_and_dot_work_for_any_window(model, time):
    params = init_params(model, KEY, window=20)
    x = helpers.uniform(0, (2, time, 1))
    alpha = attention_weights(params, x, model=model)
    chex.assert_shape(alpha, (2, time))
    np.testing.assert_allclose(np.asarray(alpha).sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_same_key_shares_rnn_and_head_weights_for_every_pooling(cell):
    first, *others = [init_params(m, KEY, cell=cell) for m in POOLING_NAMES]
    for params in others:
        chex.assert_trees_all_equal(params["rnn"], first["rnn"])
        chex.assert_trees_all_equal(params["head"], first["head"])


def _glorot_limit(shape):
    return np.sqrt(6 / (shape[0] + shape[1]))


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_cell_initialisers_follow_keras_for_every_cell(cell):
    hidden, k = 16, _GATES[cell]
    params = init_params("vanilla", KEY, hidden=hidden, cell=cell)["rnn"]["cell"]
    kernel, u, bias = (np.asarray(params[n]) for n in ("kernel", "recurrent_kernel", "bias"))
    chex.assert_shape([kernel, u], [(1, k * hidden), (hidden, k * hidden)])
    # Keras draws the fused [H, kH] matrix as one orthogonal matrix: orthonormal rows.
    np.testing.assert_allclose(u @ u.T, np.eye(hidden), atol=1e-5)
    # Glorot-uniform: U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)).
    limit = _glorot_limit(kernel.shape)
    assert stats.kstest(kernel.ravel(), stats.uniform(-limit, 2 * limit).cdf).pvalue > 1e-3
    expected_bias = {
        "simple": np.zeros(hidden),
        "gru": np.zeros((2, 3 * hidden)),
        "lstm": np.concatenate([np.zeros(hidden), np.ones(hidden), np.zeros(2 * hidden)]),
    }[cell]
    np.testing.assert_array_equal(bias, expected_bias)


@pytest.mark.parametrize("model", ["additive", "dot"])
def test_pooling_initialisers_follow_keras(model):
    hidden = 24
    pooling = jax.tree.map(np.asarray, init_params(model, KEY, hidden=hidden)["pooling"])
    for name, value in pooling.items():
        if name == "bias":
            np.testing.assert_array_equal(value, np.zeros(hidden))
            continue
        limit = _glorot_limit(value.shape)
        uniform = stats.uniform(-limit, 2 * limit).cdf
        assert stats.kstest(value.ravel(), uniform).pvalue > 1e-3, name
    expected = {
        "additive": {"query_kernel", "key_kernel", "bias", "score"},
        "dot": {"key_kernel", "query"},
    }
    assert set(pooling) == expected[model]


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_cell_steps_match_numpy(cell):
    cell_class = CELLS[cell].layer.CELL
    module = cell_class(3)
    x = helpers.normal(1, (5, 2))
    zero = module.initial_state(5)
    params = module.init(KEY, zero, x)
    weights = jax.tree.map(lambda p: p + 0.3, params["params"])  # non-zero biases
    w, u, b = (np.asarray(weights[n], np.float64) for n in ("kernel", "recurrent_kernel", "bias"))
    state = jax.tree.map(lambda z: helpers.normal(z.size, z.shape), zero)
    new_state, out = module.apply({"params": weights}, state, x)
    numpy_state = jax.tree.map(lambda s: np.asarray(s, np.float64), state)
    want = helpers.STEPS[cell](numpy_state, np.asarray(x, np.float64), w, u, b)
    chex.assert_trees_all_close(new_state, want, atol=1e-6)
    np.testing.assert_allclose(out, want[0] if cell == "lstm" else want, atol=1e-6)


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("sequences", [False, True])
def test_cell_gradients_match_central_differences(cell, sequences):
    layer = CELLS[cell].layer(3, return_sequences=sequences)
    x = helpers.normal(0, (2, 5, 2))
    params = layer.init(KEY, x)
    params = jax.tree.map(lambda p: p + 0.2, params)  # non-zero biases, every path active
    weights = np.arange(1, 6, dtype=np.float64)[:, None]

    def numpy_loss(cell_params, x):
        hs = helpers.states(cell, cell_params, x)
        return np.sum(np.sin(hs * weights)) if sequences else np.sum(np.sin(hs[:, -1]))

    def loss(p, x):
        out = layer.apply(p, x)
        return (
            jnp.sum(jnp.sin(out * weights.astype(np.float32)))
            if sequences
            else jnp.sum(jnp.sin(out))
        )

    got, got_x = jax.grad(loss, argnums=(0, 1))(params, x)
    cell_params = {k: np.asarray(v, np.float64) for k, v in params["params"]["cell"].items()}
    x64 = np.asarray(x, np.float64)
    for name, value in cell_params.items():
        numeric = helpers.central_differences(
            lambda v, name=name: numpy_loss({**cell_params, name: v}, x64), value
        )
        np.testing.assert_allclose(got["params"]["cell"][name], numeric, atol=3e-5, err_msg=name)
    numeric_x = helpers.central_differences(lambda v: numpy_loss(cell_params, v), x64)
    np.testing.assert_allclose(got_x, numeric_x, atol=3e-5, err_msg="x")


def test_describe_model():
    assert describe_model("attention", "simple", 2) == "SimpleRNN(2) → attention → Dense"
    assert describe_model("vanilla", "lstm", 8) == "LSTM(8) → Dense"
    assert describe_model("dot", "gru", 4) == "GRU(4) → dot-product attention → Dense"


# --- Wrong inputs and parameters: one ValueError that says what was expected ----------------


@pytest.mark.parametrize("shape", [(4, 20), (4, 20, 2), (20,), (4, 0, 1)])
def test_wrongly_shaped_inputs_are_rejected(shape):
    params = init_params("attention", KEY)
    with pytest.raises(ValueError, match=r"x must have shape \[batch, time, 1\]"):
        predict("attention", params, np.zeros(shape))
    with pytest.raises(ValueError, match=r"x must have shape \[batch, time, 1\]"):
        attention_weights(params, np.zeros(shape))


def test_a_window_the_notebook_attention_does_not_fit_is_rejected():
    params = init_params("attention", KEY, window=20)
    x = np.zeros((3, 6, 1))
    with pytest.raises(ValueError, match=r"pooling/bias has shape \(20, 1\), expected \(6, 1\)"):
        predict("attention", params, x)
    with pytest.raises(ValueError, match="at 6 time steps"):
        attention_weights(params, x)


@pytest.mark.parametrize(
    "made, used",
    [
        (("attention", "simple"), ("vanilla", "simple")),
        (("vanilla", "simple"), ("dot", "simple")),
        (("vanilla", "gru"), ("vanilla", "simple")),
        (("additive", "lstm"), ("additive", "gru")),
    ],
)
def test_another_models_parameters_are_rejected(made, used):
    params = init_params(made[0], KEY, cell=made[1])
    with pytest.raises(ValueError, match=f"model='{used[0]}', cell='{used[1]}'"):
        predict(used[0], params, np.zeros((2, 20, 1)), cell=used[1])


def test_attention_weights_need_an_attention_model():
    params = init_params("vanilla", KEY)
    with pytest.raises(ValueError, match="model='vanilla' has no attention weights"):
        attention_weights(params, np.zeros((2, 20, 1)), model="vanilla")
    with pytest.raises(ValueError, match="rnn/cell/recurrent_kernel is missing"):
        predict("vanilla", {"head": params["head"]}, np.zeros((2, 20, 1)))


def test_unknown_cell_is_rejected():
    with pytest.raises(ValueError, match="cell='rnn'"):
        make_model("vanilla", cell="rnn")


@pytest.mark.parametrize("rows", [1, 3, MULTIPLY_ADD_ROWS, MULTIPLY_ADD_ROWS + 1])
def test_seed_last_product_is_the_matrix_product(rows):
    # Both forms (a chain of multiply-adds, and one contraction past MULTIPLY_ADD_ROWS rows)
    # against NumPy in float64, seed by seed.
    a = np.asarray(helpers.normal(0, (3, rows, 4)))
    m = np.asarray(helpers.normal(1, (rows, 5, 4)))
    got = np.asarray(times_matrix(jnp.asarray(a), jnp.asarray(m)))
    chex.assert_shape(got, (3, 5, 4))
    want = np.stack([a[..., s].astype(np.float64) @ m[..., s] for s in range(4)], axis=-1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.sqrt(rows))


@pytest.mark.parametrize("item", [(), (3,), (20, 1)])
@pytest.mark.parametrize("index_shape", [(), (1,), (2, 3)])
@pytest.mark.parametrize("batched", ["index", "table", "both"])
def test_take_rows_under_vmap_gathers_each_seeds_rows(item, index_shape, batched):
    # Claim (any backend, exact: a gather moves numbers): under vmap, in whichever form the
    # batching picks (seed-last on a CPU when only the index is batched), each seed gets NumPy's
    # table[index] with the index clamped to the rows (negative ones to row 0).
    seeds, rows = 5, 7
    table = helpers.normal(0, (seeds, rows, *item) if batched != "index" else (rows, *item))
    index = np.random.default_rng(1).integers(-rows, rows + 3, (seeds, *index_shape))
    if batched == "table":
        index = index[0]
    axes = (None if batched == "index" else 0, None if batched == "table" else 0)
    got = np.asarray(jax.jit(jax.vmap(take_rows, in_axes=axes))(table, jnp.asarray(index)))
    chex.assert_shape(got, (seeds, *index_shape, *item))
    for s in range(seeds):
        seed_table = table if batched == "index" else table[s]
        seed_index = index if batched == "table" else index[s]
        want = seed_table[np.clip(seed_index, 0, rows - 1)]
        np.testing.assert_array_equal(got[s], want)


def test_by_platform_traces_only_the_cpu_function_where_the_cpu_is_the_only_platform():
    # Claim (CPU-only JAX, as in CI): the other platforms' function is never traced, under jit
    # and vmap, and the CPU function's value comes out. With another platform both are traced.
    if set(jax.extend.backend.backends()) != {"cpu"}:
        pytest.skip("a claim about a JAX whose only platform is the CPU")

    def elsewhere(x):
        raise AssertionError("traced the function for other platforms")

    got = jax.jit(jax.vmap(lambda x: by_platform(x, cpu=lambda v: 2 * v + 1, default=elsewhere)))(
        jnp.arange(6.0).reshape(2, 3)
    )
    np.testing.assert_array_equal(np.asarray(got), 2 * np.arange(6.0).reshape(2, 3) + 1)


@pytest.mark.parametrize("model", [name for name in POOLINGS if POOLINGS[name].module.STEP_ROWS])
@pytest.mark.parametrize("cell", list(CELLS))
def test_per_step_rows_repeated_are_a_longer_windows_initial_weights(model, cell):
    # The contract of STEP_ROWS, against Flax's own init at each window: bit for bit, every leaf.
    one = init_params(model, KEY, hidden=3, window=1, cell=cell)
    for window in (2, 20):
        want = init_params(model, KEY, hidden=3, window=window, cell=cell)
        jax.tree.map(np.testing.assert_array_equal, repeat_steps(one, model, window), want)


@pytest.mark.parametrize("model", list(POOLINGS))
def test_a_pooling_with_per_step_weights_is_window_bound_and_names_repeated_rows(model):
    # Its weights that change shape with the window: there exactly when it is window_bound, and
    # when it names STEP_ROWS, exactly those (fibjax.training.initial draws it for one step then).
    def pooling_shapes(window):
        params = init_params(model, KEY, window=window)
        return {name: np.shape(leaf) for name, leaf in params.get("pooling", {}).items()}

    short, long = pooling_shapes(3), pooling_shapes(5)
    changing = {name for name in short if short[name] != long[name]}
    assert bool(changing) == POOLINGS[model].window_bound
    if POOLINGS[model].module.STEP_ROWS:
        assert changing == set(POOLINGS[model].module.STEP_ROWS)
