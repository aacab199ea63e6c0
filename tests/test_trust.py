"""Results that cannot lie: provenance, refusals before any work, and hostile input (issue 11)."""

import time

import numpy as np
import pytest

from fibjax.compare import CompareConfig
from fibjax.data import DataConfig
from fibjax.train import TrainConfig, check_seeds


def test_200000_seeds_are_checked_in_well_under_a_second():
    seeds = list(range(200_000))
    start = time.perf_counter()
    assert check_seeds(seeds) == tuple(seeds)
    CompareConfig(seeds=tuple(seeds), aa=True)
    assert time.perf_counter() - start < 1.0


def test_repeated_seeds_are_named_among_many():
    with pytest.raises(ValueError, match=r"repeated: \[7, 9\]"):
        check_seeds([*range(100_000), 7, 9])


def test_numpy_numbers_are_accepted_and_stored_as_python_numbers():
    config = CompareConfig(
        seeds=tuple(np.arange(3)),
        data=DataConfig(n_terms=np.int64(80), window=np.int32(6), train_fraction=np.float32(0.5)),
        hidden=np.int64(3),
        epochs=np.int32(2),
        learning_rate=np.float32(0.1),
        alpha=np.float32(0.05),
        stats_seed=np.uint8(4),
    )
    record = config.to_dict()
    assert record["learning_rate"] == pytest.approx(0.1) and type(record["learning_rate"]) is float
    assert type(record["hidden"]) is int and type(record["data"]["n_terms"]) is int
    assert type(record["alpha"]) is float and type(record["stats_seed"]) is int
    assert config == CompareConfig(**{**record, "data": config.data, "seeds": config.seeds})
    assert TrainConfig("vanilla", learning_rate=np.float64(0.01)).learning_rate == 0.01


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"epochs": 3_000_000_000}, "epochs=3000000000 is too large"),
        ({"hidden": 2**40}, "hidden=1099511627776 is too large"),
        ({"learning_rate": np.float32("nan")}, "learning_rate=.*nan"),
    ],
)
def test_numbers_too_large_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig("vanilla", **kwargs)
