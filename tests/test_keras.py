"""fibjax against the Keras vectors: predictions, one epoch of Adam, weight interchange."""

import jax
import numpy as np
import pytest

from fibjax.keras_compat import from_keras_weights, to_keras_weights
from fibjax.models import count_params, predict
from fibjax.train import TrainConfig, fit

from conftest import load_keras_vectors

MODELS = ["vanilla", "attention"]


@pytest.mark.parametrize("name", MODELS)
def test_predictions_at_keras_initial_weights(name, notebook_data):
    keras = load_keras_vectors(name)
    params = from_keras_weights(name, keras["w0"])
    for x, expected in (
        (notebook_data.test_x, "pred0_test"),
        (notebook_data.train_x, "pred0_train"),
    ):
        np.testing.assert_allclose(np.asarray(predict(name, params, x)), keras[expected], atol=1e-6)


@pytest.fixture(scope="module", params=MODELS)
def one_keras_epoch(request, notebook_data):
    name = request.param
    keras = load_keras_vectors(name)
    config = TrainConfig(name, epochs=1, batch_size=1, shuffle=False)
    params = from_keras_weights(name, keras["w0"])
    return name, keras, fit(config, notebook_data, key=jax.random.key(0), params=params)


def test_one_unshuffled_epoch_matches_keras_weights(one_keras_epoch):
    name, keras, result = one_keras_epoch
    for got, want in zip(to_keras_weights(name, result.params), keras["w1"], strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_one_unshuffled_epoch_matches_keras_loss(one_keras_epoch):
    _, keras, result = one_keras_epoch
    np.testing.assert_allclose(float(result.epoch_losses[0]), keras["losses"][0], rtol=1e-5)


def test_one_unshuffled_epoch_matches_keras_predictions(one_keras_epoch, notebook_data):
    name, keras, result = one_keras_epoch
    got = np.asarray(predict(name, result.params, notebook_data.test_x))
    np.testing.assert_allclose(got, keras["pred1_test"], atol=1e-6)


def test_one_unshuffled_epoch_matches_keras_evaluate(one_keras_epoch, notebook_data):
    # FitResult's MSEs are computed in blocks of windows; Keras's predictions give them whole.
    _, keras, result = one_keras_epoch
    for split, got in (("train", result.train_mse), ("test", result.test_mse)):
        y = np.asarray(getattr(notebook_data, f"{split}_y"), np.float64)
        want = np.mean((keras[f"pred1_{split}"].astype(np.float64).reshape(y.shape) - y) ** 2)
        np.testing.assert_allclose(float(got), want, rtol=1e-4, atol=1e-9, err_msg=split)


@pytest.mark.parametrize("name", MODELS)
def test_round_trip(name):
    keras = load_keras_vectors(name)
    params = from_keras_weights(name, keras["w1"])
    assert count_params(params) == {"vanilla": 11, "attention": 33}[name]
    back = to_keras_weights(name, params)
    for got, want in zip(back, keras["w1"], strict=True):
        assert got.dtype == np.float32
        assert np.array_equal(got, want)


def test_wrong_weight_lists_are_rejected():
    keras = load_keras_vectors("attention")
    with pytest.raises(ValueError, match="7 weight arrays, got 5"):
        from_keras_weights("attention", keras["w0"][:5])
    bad = list(keras["w0"])
    bad[2] = bad[2][None]  # a bias of rank 2
    with pytest.raises(ValueError, match="rnn/cell/bias"):
        from_keras_weights("attention", bad)
