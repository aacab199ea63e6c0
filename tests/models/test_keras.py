"""fibjax against the Keras vectors: predictions, training from Keras's weights, interchange.

Every file of vectors found (tests/data/keras, and ../shared/keras_vectors when present) runs:
any cell and pooling in fibjax's registry, any seed, epoch count and batch size.
"""

import jax
import numpy as np
import pytest

from fibjax.models import CELLS, POOLINGS, count_params, predict
from fibjax.models.keras_compat import from_keras_weights, keras_order, to_keras_weights
from fibjax.training.config import TrainConfig
from fibjax.training.program import fit

from conftest import discover_keras_vectors, load_keras_vectors

VECTORS = discover_keras_vectors()


def test_every_cell_and_pooling_has_vectors():
    # The eight variants and the notebook's pair cover each registered cell and pooling.
    covered = {(v.model, v.cell) for v in VECTORS}
    assert {cell for _, cell in covered} == set(CELLS)
    assert {model for model, _ in covered} == set(POOLINGS)
    assert len(covered) >= 10


@pytest.fixture(scope="module", params=VECTORS, ids=[v.id for v in VECTORS])
def keras_run(request, notebook_data):
    """The vectors and fibjax's unshuffled training from their initial weights."""
    vectors = request.param
    keras = vectors.load()
    config = TrainConfig(
        vectors.model,
        cell=vectors.cell,
        epochs=keras["epochs"],
        batch_size=keras["batch_size"],
        shuffle=False,
    )
    params = from_keras_weights(vectors.model, keras["w0"], cell=vectors.cell)
    result = fit(config, notebook_data, key=jax.random.key(0), params=params)
    return vectors, keras, params, result


def test_predictions_at_keras_initial_weights(keras_run, notebook_data):
    vectors, keras, params, _ = keras_run
    for x, expected in (
        (notebook_data.test_x, "pred0_test"),
        (notebook_data.train_x, "pred0_train"),
    ):
        if expected in keras:
            got = np.asarray(predict(vectors.model, params, x, cell=vectors.cell))
            np.testing.assert_allclose(got, keras[expected], atol=1e-6, err_msg=expected)


def test_training_matches_keras_weights(keras_run):
    vectors, keras, _, result = keras_run
    got = to_keras_weights(vectors.model, result.params, cell=vectors.cell)
    assert len(got) == len(keras["w1"])
    for i, (mine, want) in enumerate(zip(got, keras["w1"], strict=True)):
        assert mine.shape == want.shape
        np.testing.assert_allclose(mine, want, atol=1e-5, rtol=0, err_msg=f"w1_{i}")


def test_training_matches_keras_losses(keras_run):
    _, keras, _, result = keras_run
    np.testing.assert_allclose(np.asarray(result.epoch_losses), keras["losses"], rtol=1e-5)


def test_training_matches_keras_predictions(keras_run, notebook_data):
    vectors, keras, _, result = keras_run
    got = np.asarray(predict(vectors.model, result.params, notebook_data.test_x, cell=vectors.cell))
    np.testing.assert_allclose(got, keras["pred1_test"], atol=1e-6)


def test_training_matches_keras_evaluate(keras_run, notebook_data):
    # FitResult's MSEs are computed in blocks of windows; Keras's predictions give them whole.
    _, keras, _, result = keras_run
    for split, got in (("train", result.train_mse), ("test", result.test_mse)):
        if f"pred1_{split}" not in keras:
            continue
        y = np.asarray(getattr(notebook_data, f"{split}_y"), np.float64)
        want = np.mean((keras[f"pred1_{split}"].astype(np.float64).reshape(y.shape) - y) ** 2)
        np.testing.assert_allclose(float(got), want, rtol=1e-4, atol=1e-9, err_msg=split)


@pytest.mark.parametrize("vectors", VECTORS, ids=[v.id for v in VECTORS])
def test_round_trip(vectors):
    keras = vectors.load()
    params = from_keras_weights(vectors.model, keras["w1"], cell=vectors.cell)
    assert count_params(params) == sum(w.size for w in keras["w1"])
    back = to_keras_weights(vectors.model, params, cell=vectors.cell)
    for got, want in zip(back, keras["w1"], strict=True):
        assert got.dtype == np.float32
        assert np.array_equal(got, want)


def test_notebook_parameter_counts():
    assert count_params(from_keras_weights("vanilla", load_keras_vectors("vanilla")["w0"])) == 11
    assert (
        count_params(from_keras_weights("attention", load_keras_vectors("attention")["w0"])) == 33
    )


def test_keras_order_covers_every_parameter():
    # The registry's Keras order names each parameter of every cell and pooling exactly once.
    from fibjax.models import init_params

    for cell in CELLS:
        for model in POOLINGS:
            params = init_params(model, jax.random.key(0), cell=cell, window=6)
            paths = {
                tuple(k.key for k in path)
                for path, _ in jax.tree_util.tree_flatten_with_path(params)[0]
            }
            order = keras_order(model, cell)
            assert len(order) == len(set(order))
            assert set(order) == paths, (model, cell)


def test_wrong_weight_lists_are_rejected():
    keras = load_keras_vectors("attention")
    with pytest.raises(ValueError, match="7 weight arrays, got 5"):
        from_keras_weights("attention", keras["w0"][:5])
    bad = list(keras["w0"])
    bad[2] = bad[2][None]  # a bias of rank 2
    with pytest.raises(ValueError, match="rnn/cell/bias"):
        from_keras_weights("attention", bad)
    gru = load_keras_vectors("vanilla", cell="gru")
    gru_bias = gru["w0"][2]
    assert gru_bias.ndim == 2  # [2, 3H]; an LSTM's is [4H]
    with pytest.raises(ValueError, match="rnn/cell/bias must have rank 1"):
        from_keras_weights("vanilla", gru["w0"], cell="lstm")
