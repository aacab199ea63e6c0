"""The data equal, element for element, a transcription of the notebook's own code."""

import numpy as np
import pytest
from sklearn.preprocessing import MinMaxScaler

from fibjax.data import DataConfig, fibonacci_windows


def notebook_get_fib_xy(total_fib_numbers, time_steps, train_percent):
    """The notebook's ``get_fib_seq`` and ``get_fib_XY``, transcribed as written there."""
    seq = np.zeros(total_fib_numbers)
    fib_n1, fib_n = 0.0, 1.0
    for i in range(total_fib_numbers):
        seq[i] = fib_n1 + fib_n
        fib_n1 = fib_n
        fib_n = seq[i]
    scaler = MinMaxScaler(feature_range=(0, 1))
    dat = scaler.fit_transform(np.reshape(seq, (total_fib_numbers, 1))).flatten()
    y_ind = np.arange(time_steps, len(dat), 1)
    y = dat[y_ind]
    rows_x = len(y)
    x = dat[0:rows_x]
    for i in range(time_steps - 1):
        x = np.column_stack((x, dat[i + 1 : rows_x + i + 1]))
    idx = np.random.RandomState(seed=13).permutation(rows_x)
    split = int(train_percent * rows_x)
    train_ind, test_ind = idx[0:split], idx[split:]
    train_x = np.reshape(x[train_ind], (len(train_ind), time_steps, 1))
    test_x = np.reshape(x[test_ind], (len(test_ind), time_steps, 1))
    return train_x, y[train_ind], test_x, y[test_ind], scaler


@pytest.mark.parametrize(
    "n_terms, window, fraction", [(1200, 20, 0.7), (300, 5, 0.5), (100, 2, 0.9)]
)
def test_windows_equal_the_notebook(n_terms, window, fraction):
    data = fibonacci_windows(n_terms, window, fraction)
    expected = notebook_get_fib_xy(n_terms, window, fraction)
    for got, want in zip(
        (data.train_x, data.train_y, data.test_x, data.test_y), expected[:4], strict=True
    ):
        assert got.dtype == np.float64
        assert got.shape == want.shape
        assert np.array_equal(got, want)


def test_default_sizes(notebook_data):
    assert notebook_data.train_x.shape == (826, 20, 1)
    assert notebook_data.train_y.shape == (826,)
    assert notebook_data.test_x.shape == (354, 20, 1)
    assert notebook_data.test_y.shape == (354,)


def test_scaler_maps_back_to_fibonacci_numbers(notebook_data):
    # Term k of the notebook's sequence is F(k + 2); F(2..26) are small integers held exactly.
    fib = [1, 2]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    values = notebook_data.to_fibonacci(notebook_data.scaler.transform(np.c_[fib[:30]]).ravel())
    np.testing.assert_allclose(values, fib[:30], rtol=1e-12)


def test_indices_point_at_the_targets(notebook_data):
    x_last = notebook_data.train_x[:, -1, 0]
    index = notebook_data.train_index
    # The window ends one term before its target.
    seq = (
        notebook_get_fib_xy(1200, 20, 0.7)[4]
        .transform(np.c_[np.asarray(_notebook_terms(1200))])
        .ravel()
    )
    assert np.array_equal(seq[index], notebook_data.train_y)
    assert np.array_equal(seq[index - 1], x_last)


def _notebook_terms(n):
    seq, a, b = [], 0.0, 1.0
    for _ in range(n):
        a, b = b, a + b
        seq.append(b)
    return seq


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"window": 0}, "window"),
        ({"n_terms": 21}, "n_terms"),
        ({"n_terms": 1476}, "n_terms"),
        ({"train_fraction": 1.0}, "train_fraction"),
        ({"train_fraction": 0.0}, "train_fraction"),
        ({"n_terms": 23, "train_fraction": 0.1}, "train_fraction"),
        ({"scaling": "zscore"}, "scaling"),
    ],
)
def test_invalid_options_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        DataConfig(**kwargs)


@pytest.mark.parametrize("scaling", ["minmax", "log"])
def test_scaling_is_sklearns_bit_for_bit(scaling):
    # The package scales with its own arithmetic; scikit-learn's MinMaxScaler is the reference.
    from fibjax.data import fibonacci_terms, log_fibonacci_terms

    seq = fibonacci_terms(1200) if scaling == "minmax" else log_fibonacci_terms(1200)
    reference = MinMaxScaler(feature_range=(0, 1)).fit(seq.reshape(-1, 1))
    data = fibonacci_windows(scaling=scaling)
    scaled = reference.transform(seq.reshape(-1, 1)).ravel()
    assert np.array_equal(data.scaler.transform(seq), scaled)
    assert np.array_equal(data.train_y, scaled[data.train_index])
    back = reference.inverse_transform(scaled.reshape(-1, 1)).ravel()
    assert np.array_equal(data.scaler.inverse_transform(scaled), back)


@pytest.mark.parametrize(
    "values", [[3.0, 3.0, 3.0], [0.0, 1e-300, 2e-300], [-5.0, 0.0, 7.5], [1.0, 1.0 + 1e-15]]
)
def test_min_max_matches_sklearn_on_edge_cases(values):
    # Constant and tiny ranges: scikit-learn scales by 1 below ten machine epsilons.
    from fibjax.data import MinMax

    values = np.asarray(values)
    reference = MinMaxScaler().fit(values.reshape(-1, 1))
    ours = MinMax.fit(values)
    assert np.array_equal(
        ours.transform(values), reference.transform(values.reshape(-1, 1)).ravel()
    )
