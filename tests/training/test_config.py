"""The training configuration and the seed checks: validated when built."""

import numpy as np
import pytest

from fibjax.training.config import TrainConfig, check_seeds


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"model": "gru"}, "model"),
        ({"cell": "rnn"}, "cell"),
        ({"hidden": 0}, "hidden"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        # At the precision training uses: zero (nothing trains) or infinite.
        ({"learning_rate": 1e-50}, "0.0 in float32"),
        ({"learning_rate": 1e300}, "inf in float32"),
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


@pytest.mark.parametrize(
    "seeds, message",
    [
        ([], "empty"),
        ([1, 1], "repeated"),
        ([-1], "seed -1"),
        ([1.5], "seed 1.5"),
        ([2**32], "seed"),
        ({3, 1, 2}, "not a set"),
        (frozenset([1]), "not a frozenset"),
        ({0: "a"}, "not a dict"),
        (np.ones((2, 2), np.int32), "one-dimensional integers"),
        (np.array([0.0, 1.0]), "one-dimensional integers"),
        (np.int64(3), "one-dimensional integers"),
    ],
)
def test_bad_seeds(seeds, message):
    with pytest.raises(ValueError, match=message):
        check_seeds(seeds)


@pytest.mark.parametrize(
    "seeds",
    [
        [4, 0, 7],
        (4, 0, 7),
        (s for s in (4, 0, 7)),
        np.array([4, 0, 7], np.uint32),
        np.array([4, 0, 7], np.int64),
        "jax",
    ],
)
def test_seeds_in_any_ordered_form_give_the_same_tuple(seeds):
    if isinstance(seeds, str):
        import jax.numpy as jnp

        seeds = jnp.array([4, 0, 7])
    checked = check_seeds(seeds)
    assert checked == (4, 0, 7) and all(type(s) is int for s in checked)
