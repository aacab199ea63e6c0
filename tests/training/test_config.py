"""The training configuration and the seed checks: validated when built."""

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
    ],
)
def test_bad_seeds(seeds, message):
    with pytest.raises(ValueError, match=message):
        check_seeds(seeds)
