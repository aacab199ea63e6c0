"""Training: configuration, determinism, tracing, batching and divergence."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fibjax.data import fibonacci_windows
from fibjax.models import init_params
from fibjax.train import FitResult, TrainConfig, fit, make_train

SMALL = fibonacci_windows(n_terms=80, window=6)  # 51 training windows, quick to compile


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"model": "gru"}, "model"),
        ({"hidden": 0}, "hidden"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"shuffle": "yes"}, "shuffle"),
    ],
)
def test_config_validation(kwargs, field):
    kwargs = {"model": "vanilla", **kwargs}
    with pytest.raises(ValueError, match=field):
        TrainConfig(**kwargs)


def test_config_is_frozen():
    config = TrainConfig("vanilla")
    with pytest.raises(AttributeError):
        config.epochs = 3


@pytest.mark.parametrize("name", ["vanilla", "attention"])
def test_result_shapes(name):
    assert SMALL.train_x.shape[0] == 51
    config = TrainConfig(name, epochs=3, record_step_losses=True, batch_size=5)
    result = fit(config, SMALL, key=jax.random.key(0))
    chex.assert_shape(result.epoch_losses, (3,))
    chex.assert_shape([result.train_mse, result.test_mse, result.diverged_epoch], ())
    # 51 windows in batches of 5: ten full batches and a last one of 1, as Keras does.
    chex.assert_shape(result.step_losses, (3, 11))
    chex.assert_tree_all_finite((result.params, result.epoch_losses, result.test_mse))
    chex.assert_trees_all_equal_shapes(
        result.params, init_params(name, jax.random.key(0), window=6)
    )
    assert int(result.diverged_epoch) == 0


def test_epoch_loss_is_batch_weighted_mean_of_step_losses():
    config = TrainConfig("vanilla", epochs=2, batch_size=5, record_step_losses=True)
    result = fit(config, SMALL, key=jax.random.key(1))
    sizes = np.array([5] * 10 + [1])
    expected = (np.asarray(result.step_losses) * sizes).sum(axis=1) / 51
    np.testing.assert_allclose(np.asarray(result.epoch_losses), expected, rtol=1e-6)


def test_step_losses_are_off_by_default():
    result = fit(TrainConfig("vanilla", epochs=1), SMALL, key=jax.random.key(0))
    assert result.step_losses is None


def test_same_key_gives_identical_results():
    config = TrainConfig("attention", epochs=2)
    first = fit(config, SMALL, key=jax.random.key(7))
    second = fit(config, SMALL, key=jax.random.key(7))
    chex.assert_trees_all_equal(first, second)
    other = fit(config, SMALL, key=jax.random.key(8))
    assert not np.array_equal(np.asarray(first.epoch_losses), np.asarray(other.epoch_losses))


def test_training_is_traced_once():
    train = make_train(TrainConfig("vanilla", epochs=1), SMALL)
    jitted = jax.jit(chex.assert_max_traces(train, n=1))
    for seed in range(3):
        jax.block_until_ready(jitted(jax.random.key(seed)))


def test_training_reduces_the_loss():
    config = TrainConfig("vanilla", epochs=20, learning_rate=1e-2)
    result = fit(
        config, fibonacci_windows(n_terms=80, window=6, scaling="log"), key=jax.random.key(0)
    )
    losses = np.asarray(result.epoch_losses)
    assert losses[-1] < 0.5 * losses[0]


def test_unshuffled_order_is_the_data_order():
    # With shuffle off the key only initialises: the same params give the same run for any key.
    config = TrainConfig("vanilla", epochs=1, shuffle=False)
    params = init_params("vanilla", jax.random.key(0), window=6)
    a = fit(config, SMALL, key=jax.random.key(1), params=params)
    b = fit(config, SMALL, key=jax.random.key(2), params=params)
    chex.assert_trees_all_equal(a, b)


def test_divergence_is_flagged():
    # Adam moves each weight by about the learning rate per step: at 1e38 some seeds push a
    # weight past float32's largest value within an epoch, others saturate tanh and stop.
    config = TrainConfig("vanilla", epochs=3, learning_rate=1e38)
    diverged = fit(config, SMALL, key=jax.random.key(1))
    assert int(diverged.diverged_epoch) == 1
    leaves = jax.tree_util.tree_leaves(diverged.params)
    assert not all(np.all(np.isfinite(leaf)) for leaf in leaves)
    stable = fit(config, SMALL, key=jax.random.key(0))
    assert int(stable.diverged_epoch) == 0
    chex.assert_tree_all_finite(stable.params)


def test_fit_result_is_a_pytree():
    result = fit(TrainConfig("vanilla", epochs=1), SMALL, key=jax.random.key(0))
    doubled = jax.tree.map(lambda leaf: leaf * 2, result)
    assert isinstance(doubled, FitResult)
    np.testing.assert_allclose(doubled.test_mse, 2 * result.test_mse)
    assert jnp.issubdtype(result.diverged_epoch.dtype, jnp.integer)
