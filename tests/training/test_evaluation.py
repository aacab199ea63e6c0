"""The evaluation after training: the MSEs are those of the trained models' predictions."""

import jax
import numpy as np
import pytest

from fibjax.data import fibonacci_windows
from fibjax.models import predict
from fibjax.training.config import TrainConfig
from fibjax.training.seeds import fit_seeds


# 80 terms: 74 windows, fewer than one evaluation block; 300: 294, two blocks and a part.
@pytest.mark.parametrize("n_terms", [80, 300])
def test_the_mses_are_those_of_the_models_predictions(n_terms):
    data = fibonacci_windows(n_terms=n_terms, window=6)
    result = fit_seeds(TrainConfig("attention", epochs=1), data, [0, 1])
    for split in ("train", "test"):
        x, y = (np.asarray(getattr(data, f"{split}_{v}"), np.float32) for v in "xy")
        got = np.asarray(getattr(result, f"{split}_mse"))
        for seed in range(2):
            params = jax.tree.map(lambda leaf, s=seed: leaf[s], result.params)
            errors = np.asarray(predict("attention", params, x), np.float64) - y
            np.testing.assert_allclose(got[seed], np.mean(errors**2), rtol=1e-5, err_msg=split)
